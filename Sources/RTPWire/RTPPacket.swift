/// An RTP packet as a value: fixed header, CSRCs, header extension, payload and padding (RFC 3550 §5.1).
///
/// Parsing then serializing returns the input byte for byte: the extension body and the padding
/// bytes (including the count octet) are kept verbatim.
public struct RTPPacket: Sendable, Equatable {
    /// The only RTP version this type reads and writes.
    public static let version: UInt8 = 2

    public var marker: Bool
    /// 7-bit payload type (0...127).
    public var payloadType: UInt8
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32
    /// Contributing sources, at most 15.
    public var csrcs: [UInt32]
    public var headerExtension: RTPHeaderExtension?
    /// The payload without any padding.
    public var payload: [UInt8]
    /// Raw padding bytes after the payload, the last one being their count; empty when P is clear.
    public var padding: [UInt8]

    /// The P bit: set exactly when `padding` is non-empty.
    public var hasPadding: Bool { !padding.isEmpty }
    /// Number of padding bytes including the count octet (0 = no padding).
    public var paddingLength: Int { padding.count }

    /// Builds a packet; `paddingLength` bytes of standard padding (zeros, then the count) are added.
    ///
    /// Throws `.invalidValue` if `payloadType` exceeds 127, there are more than 15 CSRCs, or
    /// `paddingLength` is outside 0...255.
    public init(
        marker: Bool = false,
        payloadType: UInt8,
        sequenceNumber: UInt16,
        timestamp: UInt32,
        ssrc: UInt32,
        csrcs: [UInt32] = [],
        headerExtension: RTPHeaderExtension? = nil,
        payload: [UInt8] = [],
        paddingLength: Int = 0
    ) throws(RTPParseError) {
        guard payloadType <= Self.payloadTypeMask else {
            throw .invalidValue(field: .fixedHeader, reason: "payload type \(payloadType) does not fit in 7 bits")
        }
        guard csrcs.count <= Self.maxCSRCs else {
            throw .invalidValue(field: .csrcList, reason: "\(csrcs.count) CSRCs, at most 15 fit in CC")
        }
        guard (0 ... 255).contains(paddingLength) else {
            throw .invalidValue(field: .padding, reason: "padding length \(paddingLength) outside 0...255")
        }
        self.marker = marker
        self.payloadType = payloadType
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrcs = csrcs
        self.headerExtension = headerExtension
        self.payload = payload
        self.padding = makePadding(length: paddingLength)
    }

    // Byte 0 and byte 1 of the fixed header.
    static let versionShift: UInt8 = 6
    static let paddingBit: UInt8 = 0x20
    static let extensionBit: UInt8 = 0x10
    static let csrcCountMask: UInt8 = 0x0F
    static let markerBit: UInt8 = 0x80
    static let payloadTypeMask: UInt8 = 0x7F
    static let fixedHeaderSize = 12
    static let maxCSRCs = 15

    /// Parses one RTP packet that fills all of `bytes` (RFC 3550 §5.1, §5.3.1).
    ///
    /// ```
    ///  byte 0      V: top 2 bits (must be 2) | P: 0x20 | X: 0x10 | CC: low 4 bits
    ///  byte 1      M: 0x80 | PT: low 7 bits
    ///  bytes 2-3   sequence number            bytes 4-7   timestamp
    ///  bytes 8-11  SSRC
    ///  then        CC CSRCs, 4 bytes each
    ///  if X        profile (2 bytes), length in 32-bit words (2 bytes), that many words of body
    ///  then        payload up to the end of the datagram
    ///  if P        the last byte counts the padding bytes at the end, itself included (1...255)
    /// ```
    /// Header errors match `RTPHeaderLayout` exactly. The extension body is not checked here;
    /// read `headerExtension?.elements` for that.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(RTPParseError) {
        let count = bytes.count
        var reader = ByteReader(bytes)
        guard let b0 = reader.readUInt8(), let b1 = reader.readUInt8(),
              let seq = reader.readUInt16(), let ts = reader.readUInt32(), let ssrc = reader.readUInt32()
        else { throw .truncated(field: .fixedHeader, needed: Self.fixedHeaderSize, available: count) }
        guard b0 >> Self.versionShift == Self.version else { throw .unsupportedVersion(b0 >> Self.versionShift) }

        let csrcCount = Int(b0 & Self.csrcCountMask)
        guard reader.remaining >= 4 * csrcCount else {
            throw .truncated(field: .csrcList, needed: 4 * csrcCount, available: reader.remaining)
        }
        var csrcs: [UInt32] = []
        csrcs.reserveCapacity(csrcCount)
        for _ in 0 ..< csrcCount {
            guard let csrc = reader.readUInt32() else { throw .truncated(field: .csrcList, needed: 4, available: reader.remaining) }
            csrcs.append(csrc)
        }

        var headerExtension: RTPHeaderExtension?
        if b0 & Self.extensionBit != 0 {
            let available = reader.remaining
            guard let profile = reader.readUInt16(), let words = reader.readUInt16() else {
                throw .truncated(field: .extensionHeader, needed: 4, available: available)
            }
            guard let body = reader.readBytes(4 * Int(words)) else {
                throw .truncated(field: .extensionBody, needed: 4 * Int(words), available: reader.remaining)
            }
            headerExtension = RTPHeaderExtension(uncheckedProfile: profile, body: body)
        }

        var padding: [UInt8] = []
        var payloadEnd = count
        if b0 & Self.paddingBit != 0 {
            let available = reader.remaining
            guard available >= 1 else { throw .truncated(field: .padding, needed: 1, available: 0) }
            let padCount = Int(bytes[count - 1])
            guard padCount >= 1, padCount <= available else {
                throw .invalidPadding(count: padCount, available: available)
            }
            payloadEnd = count - padCount
            padding = Array(bytes[payloadEnd ..< count])
        }
        var payloadReader = ByteReader(bytes, from: reader.offset, to: payloadEnd)

        self.marker = b1 & Self.markerBit != 0
        self.payloadType = b1 & Self.payloadTypeMask
        self.sequenceNumber = seq
        self.timestamp = ts
        self.ssrc = ssrc
        self.csrcs = csrcs
        self.headerExtension = headerExtension
        self.payload = payloadReader.readRest()
        self.padding = padding
    }

    /// Parses one RTP packet that fills all of `bytes`.
    public init(parsing bytes: [UInt8]) throws(RTPParseError) {
        self = try bytes.parsingBytes { raw throws(RTPParseError) in try RTPPacket(parsing: raw) }
    }

    /// Parses one RTP packet that fills all of `bytes`.
    public init(parsing bytes: ArraySlice<UInt8>) throws(RTPParseError) {
        self = try bytes.parsingBytes { raw throws(RTPParseError) in try RTPPacket(parsing: raw) }
    }

    /// Bytes of the header: fixed part, CSRCs and the extension block.
    public var headerSize: Int {
        Self.fixedHeaderSize + 4 * csrcs.count + (headerExtension?.serializedSize ?? 0)
    }

    /// Bytes `write(to:)` appends.
    public var serializedSize: Int { headerSize + payload.count + padding.count }

    /// Appends the wire form to `out`.
    ///
    /// Requires what parsing guarantees: `payloadType <= 127`, at most 15 CSRCs, and `padding`
    /// empty or ending in its own length (at most 255). Breaking these is a programming error.
    public func write(to out: inout [UInt8]) {
        precondition(payloadType <= Self.payloadTypeMask, "RTP payload type above 127")
        precondition(csrcs.count <= Self.maxCSRCs, "more than 15 CSRCs")
        precondition(padding.count <= 255 && isWellFormedPadding(padding), "RTP padding must end in its own length")
        out.reserveCapacity(out.count + serializedSize)
        var b0 = Self.version << Self.versionShift | UInt8(csrcs.count)
        if hasPadding { b0 |= Self.paddingBit }
        if headerExtension != nil { b0 |= Self.extensionBit }
        out.append(b0)
        out.append((marker ? Self.markerBit : 0) | payloadType)
        out.appendBigEndian(sequenceNumber)
        out.appendBigEndian(timestamp)
        out.appendBigEndian(ssrc)
        for csrc in csrcs { out.appendBigEndian(csrc) }
        headerExtension?.write(to: &out)
        out.append(contentsOf: payload)
        out.append(contentsOf: padding)
    }

    /// The wire form as a new array.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    /// Standard padding of `length` bytes (zeros, then the count), for assigning to `padding`.
    public static func standardPadding(length: Int) -> [UInt8] {
        makePadding(length: min(max(length, 0), 255))
    }
}
