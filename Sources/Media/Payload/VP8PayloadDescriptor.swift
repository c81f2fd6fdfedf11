/// The VP8 payload descriptor at the start of every VP8 RTP payload (RFC 7741 §4.2).
///
/// ```
///  byte 0        X (0x80) | R (0x40) | N (0x20) | S (0x10) | R (0x08) | PID (0x07)
///  if X          I (0x80) | L (0x40) | T (0x20) | K (0x10) | RSV (0x0F)
///  if I          M (0x80) | PictureID, 7 bits; if M, a second byte: 15-bit PictureID, big-endian
///  if L          TL0PICIDX (8 bits)
///  if T or K     TID (0xC0) | Y (0x20) | KEYIDX (0x1F)
/// ```
/// Length = 1 + X + I·(1 + M) + L + (T or K). Reserved bits are written as 0 and ignored when
/// read (RFC 7741 §4.2), as are TID/Y when only K is set and KEYIDX when only T is set; an X byte
/// with none of I, L, T, K set is accepted and not kept. So parsing then serializing returns the
/// input exactly when it is canonical in those respects.
public struct VP8PayloadDescriptor: Sendable, Equatable {
    /// A picture identifier in its 7-bit (M = 0) or 15-bit (M = 1) form.
    public enum PictureID: Sendable, Equatable, Hashable {
        case short(UInt8)
        case long(UInt16)

        /// The numeric value.
        public var value: UInt16 {
            switch self {
            case let .short(v): return UInt16(v)
            case let .long(v): return v
            }
        }

        /// The following picture's ID in the same form (wraps at 2⁷ or 2¹⁵).
        public var next: PictureID {
            switch self {
            case let .short(v): return .short((v &+ 1) & 0x7F)
            case let .long(v): return .long((v &+ 1) & 0x7FFF)
            }
        }
    }

    /// TID and Y: the temporal layer of the frame and whether it only depends on the base layer.
    public struct TemporalLayer: Sendable, Equatable {
        /// 0...3.
        public let index: UInt8
        public let layerSync: Bool

        /// Throws `.invalidValue` if `index` exceeds 3.
        public init(index: UInt8, layerSync: Bool) throws(PayloadFormatError) {
            guard index <= 3 else { throw .invalidValue(field: .vp8TemporalKey, reason: "TID \(index) above 3") }
            self.index = index
            self.layerSync = layerSync
        }
    }

    // Byte 0.
    static let extensionBit: UInt8 = 0x80
    static let nonReferenceBit: UInt8 = 0x20
    static let startBit: UInt8 = 0x10
    static let partitionMask: UInt8 = 0x07
    // Extension byte.
    static let pictureIDBit: UInt8 = 0x80
    static let tl0PicIndexBit: UInt8 = 0x40
    static let tidBit: UInt8 = 0x20
    static let keyIndexBit: UInt8 = 0x10
    // PictureID byte.
    static let longPictureIDBit: UInt8 = 0x80
    // T/K byte.
    static let tidShift: UInt8 = 6
    static let layerSyncBit: UInt8 = 0x20
    static let keyIndexMask: UInt8 = 0x1F

    /// N: the frame is not used as a reference; it can be dropped alone.
    public let nonReference: Bool
    /// S: the packet starts a VP8 partition.
    public let startOfPartition: Bool
    /// PID: index (0...7) of the partition the payload's first byte belongs to.
    public let partitionIndex: UInt8
    public let pictureID: PictureID?
    /// TL0PICIDX: running index of base-layer frames.
    public let tl0PicIndex: UInt8?
    /// TID and Y (present iff T = 1).
    public let temporalLayer: TemporalLayer?
    /// KEYIDX, 0...31 (present iff K = 1).
    public let keyIndex: UInt8?

    /// Builds a descriptor; throws `.invalidValue` if PID exceeds 7, a PictureID does not fit its
    /// form, or KEYIDX exceeds 31.
    public init(nonReference: Bool = false, startOfPartition: Bool, partitionIndex: UInt8 = 0,
                pictureID: PictureID? = nil, tl0PicIndex: UInt8? = nil, temporalLayer: TemporalLayer? = nil,
                keyIndex: UInt8? = nil) throws(PayloadFormatError) {
        guard partitionIndex <= 7 else { throw .invalidValue(field: .vp8Descriptor, reason: "PID \(partitionIndex) above 7") }
        switch pictureID {
        case let .short(v) where v > 0x7F:
            throw .invalidValue(field: .vp8PictureID, reason: "7-bit PictureID \(v) above 127")
        case let .long(v) where v > 0x7FFF:
            throw .invalidValue(field: .vp8PictureID, reason: "15-bit PictureID \(v) above 32767")
        default: break
        }
        if let keyIndex, keyIndex > 0x1F {
            throw .invalidValue(field: .vp8TemporalKey, reason: "KEYIDX \(keyIndex) above 31")
        }
        self.nonReference = nonReference
        self.startOfPartition = startOfPartition
        self.partitionIndex = partitionIndex
        self.pictureID = pictureID
        self.tl0PicIndex = tl0PicIndex
        self.temporalLayer = temporalLayer
        self.keyIndex = keyIndex
    }

    /// True for the first packet of a frame: S = 1 and PID = 0 (RFC 7741 §4.2).
    public var startsFrame: Bool { startOfPartition && partitionIndex == 0 }

    private var hasExtension: Bool { pictureID != nil || tl0PicIndex != nil || temporalLayer != nil || keyIndex != nil }

    /// Bytes `write(to:)` produces: 1 + X + I·(1 + M) + L + (T or K).
    public var serializedSize: Int {
        var size = 1
        if hasExtension { size += 1 }
        switch pictureID {
        case .short: size += 1
        case .long: size += 2
        case nil: break
        }
        if tl0PicIndex != nil { size += 1 }
        if temporalLayer != nil || keyIndex != nil { size += 1 }
        return size
    }

    /// Appends the descriptor's bytes.
    public func write(to out: inout [UInt8]) {
        var b0 = partitionIndex & Self.partitionMask
        if hasExtension { b0 |= Self.extensionBit }
        if nonReference { b0 |= Self.nonReferenceBit }
        if startOfPartition { b0 |= Self.startBit }
        out.append(b0)
        guard hasExtension else { return }
        var x: UInt8 = 0
        if pictureID != nil { x |= Self.pictureIDBit }
        if tl0PicIndex != nil { x |= Self.tl0PicIndexBit }
        if temporalLayer != nil { x |= Self.tidBit }
        if keyIndex != nil { x |= Self.keyIndexBit }
        out.append(x)
        switch pictureID {
        case let .short(v): out.append(v & 0x7F)
        case let .long(v): out.append(Self.longPictureIDBit | UInt8((v >> 8) & 0x7F)); out.append(UInt8(v & 0xFF))
        case nil: break
        }
        if let tl0PicIndex { out.append(tl0PicIndex) }
        if temporalLayer != nil || keyIndex != nil {
            var tk: UInt8 = 0
            if let temporalLayer {
                tk |= temporalLayer.index << Self.tidShift
                if temporalLayer.layerSync { tk |= Self.layerSyncBit }
            }
            if let keyIndex { tk |= keyIndex & Self.keyIndexMask }
            out.append(tk)
        }
    }

    /// The descriptor's bytes.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(serializedSize)
        write(to: &out)
        return out
    }

    /// Reads the descriptor at the start of `payload`; returns it with its length in bytes (where
    /// the VP8 data begins). Throws `.emptyPayload` or `.truncated(field:…)` naming the field that
    /// did not fit. Does not require VP8 data after the descriptor.
    public static func parse(_ payload: ArraySlice<UInt8>) throws(PayloadFormatError) -> (descriptor: VP8PayloadDescriptor, length: Int) {
        let start = payload.startIndex, end = payload.endIndex
        var i = start
        guard i < end else { throw .emptyPayload }
        let b0 = payload[i]; i += 1
        var pictureID: PictureID?
        var tl0: UInt8?
        var temporal: TemporalLayer?
        var keyIndex: UInt8?
        if b0 & extensionBit != 0 {
            guard i < end else { throw .truncated(field: .vp8Extension, needed: 1, available: 0) }
            let x = payload[i]; i += 1
            if x & pictureIDBit != 0 {
                guard i < end else { throw .truncated(field: .vp8PictureID, needed: 1, available: 0) }
                let p0 = payload[i]
                if p0 & longPictureIDBit != 0 {
                    guard i + 1 < end else { throw .truncated(field: .vp8PictureID, needed: 2, available: end - i) }
                    pictureID = .long(UInt16(p0 & 0x7F) << 8 | UInt16(payload[i + 1]))
                    i += 2
                } else {
                    pictureID = .short(p0)
                    i += 1
                }
            }
            if x & tl0PicIndexBit != 0 {
                guard i < end else { throw .truncated(field: .vp8TL0PicIndex, needed: 1, available: 0) }
                tl0 = payload[i]; i += 1
            }
            if x & (tidBit | keyIndexBit) != 0 {
                guard i < end else { throw .truncated(field: .vp8TemporalKey, needed: 1, available: 0) }
                let tk = payload[i]; i += 1
                if x & tidBit != 0 {
                    // Two bits cannot exceed 3: the initialiser's check cannot fail here.
                    temporal = try TemporalLayer(index: tk >> tidShift, layerSync: tk & layerSyncBit != 0)
                }
                if x & keyIndexBit != 0 { keyIndex = tk & keyIndexMask }
            }
        }
        // Every field was read within its bit width, so the range checks cannot fail.
        let descriptor = try VP8PayloadDescriptor(
            nonReference: b0 & nonReferenceBit != 0, startOfPartition: b0 & startBit != 0,
            partitionIndex: b0 & partitionMask, pictureID: pictureID, tl0PicIndex: tl0,
            temporalLayer: temporal, keyIndex: keyIndex)
        return (descriptor, i - start)
    }

    /// `parse(_:)` over a whole array.
    public static func parse(_ payload: [UInt8]) throws(PayloadFormatError) -> (descriptor: VP8PayloadDescriptor, length: Int) {
        try parse(payload[...])
    }
}
