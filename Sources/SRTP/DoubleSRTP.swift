import RTPWire

/// The double (E2E inner + hop-by-hop outer) AES-GCM transforms of RFC 8723 §10.1.
public enum DoubleSRTPProfile: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    case doubleAeadAes128Gcm = 0x0009
    case doubleAeadAes256Gcm = 0x000A

    public var name: String {
        self == .doubleAeadAes128Gcm ? "DOUBLE_AEAD_AES_128_GCM_AEAD_AES_128_GCM" : "DOUBLE_AEAD_AES_256_GCM_AEAD_AES_256_GCM"
    }
    public var description: String { name }
    /// The profile each layer runs (both layers use the same one).
    public var layerProfile: SRTPProfile { self == .doubleAeadAes128Gcm ? .aeadAes128Gcm : .aeadAes256Gcm }
    /// Double master key length: inner half ‖ outer half.
    public var masterKeyLength: Int { 2 * layerProfile.masterKeyLength }
    /// Double master salt length: inner 12 ‖ outer 12.
    public var masterSaltLength: Int { 2 * layerProfile.masterSaltLength }
    /// DTLS-SRTP keying material length (112 or 176 bytes).
    public var keyingMaterialLength: Int { 2 * (masterKeyLength + masterSaltLength) }
    /// Bytes a sender adds to an RTP packet: inner tag, empty OHB, outer tag (the EKT field is extra).
    public static let senderOverhead = 16 + 1 + 16
}

/// The Original Header Block (RFC 8723 §4): original PT, SEQ and marker the Media Distributor changed.
///
/// ```
/// [PT (1)] [SEQ (2, big endian)] Config (1)      ← the last byte of the outer payload
/// Config bits: R R R R B M P Q
///   Q 0x01 SEQ present   P 0x02 PT present   M 0x04 marker recorded   B 0x08 original marker
/// ```
/// Config values with B set but M clear (0x08–0x0B), or any R bit set, are invalid. (The RFC's
/// literal rule "C & 0x0C != 0x80" cannot be met by any byte; 0x08 is meant.) The PT byte holds a
/// 7-bit payload type; a set top bit is rejected.
public struct OriginalHeaderBlock: Sendable, Equatable, CustomStringConvertible {
    public var payloadType: UInt8?
    public var sequenceNumber: UInt16?
    public var marker: Bool?

    public init(payloadType: UInt8? = nil, sequenceNumber: UInt16? = nil, marker: Bool? = nil) {
        self.payloadType = payloadType
        self.sequenceNumber = sequenceNumber
        self.marker = marker
    }

    /// The empty OHB a sender appends: one byte 0x00.
    public static let empty = OriginalHeaderBlock()

    public var config: UInt8 {
        var c: UInt8 = 0
        if sequenceNumber != nil { c |= 0x01 }
        if payloadType != nil { c |= 0x02 }
        if let m = marker { c |= 0x04; if m { c |= 0x08 } }
        return c
    }

    public var serializedSize: Int { 1 + (payloadType == nil ? 0 : 1) + (sequenceNumber == nil ? 0 : 2) }

    /// Writes the OHB at `p` (`serializedSize` bytes).
    public func write(to p: UnsafeMutableRawPointer) {
        var o = 0
        if let pt = payloadType { p.storeBytes(of: pt & 0x7F, toByteOffset: o, as: UInt8.self); o += 1 }
        if let s = sequenceNumber {
            p.storeBytes(of: UInt8(s >> 8), toByteOffset: o, as: UInt8.self)
            p.storeBytes(of: UInt8(s & 0xFF), toByteOffset: o + 1, as: UInt8.self); o += 2
        }
        p.storeBytes(of: config, toByteOffset: o, as: UInt8.self)
    }

    public func serialized() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: serializedSize)
        out.withUnsafeMutableBytes { write(to: $0.baseAddress!) }
        return out
    }

    /// Parses the OHB that ends `bytes`; returns it and its length.
    public static func parse(trailerOf bytes: UnsafeRawBufferPointer) throws(SRTPError) -> (OriginalHeaderBlock, Int) {
        guard let c = bytes.last else { throw .packetTooShort(field: .ohb, needed: 1, available: 0) }
        guard c & 0xF0 == 0 else { throw .invalidOHB(config: c, reason: "reserved bits set") }
        guard c & 0x0C != 0x08 else { throw .invalidOHB(config: c, reason: "original marker given without the M flag") }
        let length = 1 + (c & 0x02 != 0 ? 1 : 0) + (c & 0x01 != 0 ? 2 : 0)
        guard bytes.count >= length else { throw .packetTooShort(field: .ohb, needed: length, available: bytes.count) }
        var ohb = OriginalHeaderBlock()
        var o = bytes.count - length
        if c & 0x02 != 0 {
            let pt = bytes[o]
            guard pt & 0x80 == 0 else { throw .invalidOHB(config: c, reason: "PT byte 0x\(String(pt, radix: 16)) has its top bit set") }
            ohb.payloadType = pt; o += 1
        }
        if c & 0x01 != 0 { ohb.sequenceNumber = UInt16(bytes[o]) << 8 | UInt16(bytes[o + 1]) }
        if c & 0x04 != 0 { ohb.marker = c & 0x08 != 0 }
        return (ohb, length)
    }

    /// Parses bytes that hold exactly one OHB.
    public init(parsing bytes: [UInt8]) throws(SRTPError) {
        let result: Result<(OriginalHeaderBlock, Int), SRTPError> = bytes.withUnsafeBytes { raw in
            do throws(SRTPError) { return .success(try OriginalHeaderBlock.parse(trailerOf: raw)) } catch { return .failure(error) }
        }
        let (ohb, length) = try result.get()
        guard length == bytes.count else { throw .invalidOHB(config: bytes.last ?? 0, reason: "\(bytes.count - length) bytes before the OHB") }
        self = ohb
    }

    public var description: String {
        var parts: [String] = []
        if let pt = payloadType { parts.append("PT=\(pt)") }
        if let s = sequenceNumber { parts.append("SEQ=\(s)") }
        if let m = marker { parts.append("M=\(m ? 1 : 0)") }
        return "OHB(config 0x\(String(config, radix: 16))\(parts.isEmpty ? "" : ": " + parts.joined(separator: ", ")))"
    }
}

/// A double master key and salt split into the inner (E2E) and outer (HBH) halves (RFC 8723 §3).
public struct DoubleMasterKey: Sendable {
    public let profile: DoubleSRTPProfile
    public let innerKey: SecretBytes, innerSalt: SecretBytes
    public let outerKey: SecretBytes, outerSalt: SecretBytes

    /// Splits `key` (inner ‖ outer) and `salt` (inner ‖ outer).
    public init(profile: DoubleSRTPProfile, key: SecretBytes, salt: SecretBytes) throws(SRTPError) {
        guard key.count == profile.masterKeyLength else {
            throw .invalidKeyLength(what: "\(profile) master key", expected: profile.masterKeyLength, got: key.count)
        }
        guard salt.count == profile.masterSaltLength else {
            throw .invalidKeyLength(what: "\(profile) master salt", expected: profile.masterSaltLength, got: salt.count)
        }
        let k = key.count / 2, s = salt.count / 2
        self.profile = profile
        innerKey = key.slice(0..<k); outerKey = key.slice(k..<2 * k)
        innerSalt = salt.slice(0..<s); outerSalt = salt.slice(s..<2 * s)
    }
}

/// Changes a Media Distributor makes to a forwarded header (only these are allowed, RFC 8723 §5.2).
public struct HeaderRewrite: Sendable, Equatable {
    public var payloadType: UInt8?
    public var sequenceNumber: UInt16?
    public var marker: Bool?
    public init(payloadType: UInt8? = nil, sequenceNumber: UInt16? = nil, marker: Bool? = nil) {
        self.payloadType = payloadType; self.sequenceNumber = sequenceNumber; self.marker = marker
    }
    public static let none = HeaderRewrite()
}

// MARK: - Sender

/// The sending endpoint's side of RFC 8723 §5.1: inner E2E seal of a synthetic packet (header
/// without extension, X=0), empty OHB, then outer HBH seal of the whole packet.
///
/// Inner and outer layers keep separate ROC state (`innerStream(for:)`, `outer`).
public final class DoubleSRTPSender {
    public let profile: DoubleSRTPProfile
    public private(set) var inner: SRTPCryptoContext
    /// The hop-by-hop session towards the Media Distributor.
    public let outer: SRTPSession
    private var innerStreams: [UInt32: SRTPStream] = [:]

    public init(profile: DoubleSRTPProfile, innerKey: SecretBytes, innerSalt: SecretBytes,
                outerKey: SecretBytes, outerSalt: SecretBytes) throws(SRTPError) {
        self.profile = profile
        inner = try SRTPCryptoContext(profile: profile.layerProfile, masterKey: innerKey, masterSalt: innerSalt, direction: .outbound)
        outer = try SRTPSession(profile: profile.layerProfile, masterKey: outerKey, masterSalt: outerSalt, direction: .outbound)
    }

    public convenience init(key: DoubleMasterKey) throws(SRTPError) {
        try self.init(profile: key.profile, innerKey: key.innerKey, innerSalt: key.innerSalt, outerKey: key.outerKey, outerSalt: key.outerSalt)
    }

    /// Switches to a new E2E master key (for example after a new EKTKey, RFC 8871 §4.5.2).
    /// The inner ROC continues (RFC 3711 §3.3.1).
    public func replaceInnerKey(_ key: SecretBytes, salt: SecretBytes) throws(SRTPError) {
        inner = try SRTPCryptoContext(profile: profile.layerProfile, masterKey: key, masterSalt: salt, direction: .outbound)
    }

    /// The inner stream for `ssrc` (its ROC is what an EKT field carries).
    public func innerStream(for ssrc: UInt32) throws(SRTPError) -> SRTPStream {
        if let s = innerStreams[ssrc] { return s }
        guard innerStreams.count < outer.maxStreams else { throw .tooManyStreams(limit: outer.maxStreams) }
        let s = SRTPStream(ssrc: ssrc)
        innerStreams[ssrc] = s
        return s
    }

    /// The inner ROC the next packet with sequence number `seq` from `ssrc` will use.
    public func innerRolloverCounter(ssrc: UInt32, sequence seq: UInt16) -> UInt32 {
        innerStreams[ssrc]?.estimate(sequence: seq).rolloverCounter ?? 0
    }

    /// Double-protects the RTP packet in the first `length` bytes of `buffer` (room for
    /// `DoubleSRTPProfile.senderOverhead` more). Returns the new length.
    public func protect(_ buffer: UnsafeMutableRawBufferPointer, length: Int) throws(SRTPError) -> Int {
        let layout: RTPHeaderLayout
        do { layout = try RTPHeaderLayout(buffer.view(0..<length)) } catch { throw .malformed(error) }
        guard buffer.count >= length + DoubleSRTPProfile.senderOverhead else {
            throw .packetTooShort(field: .srtpTag, needed: length + DoubleSRTPProfile.senderOverhead, available: buffer.count)
        }
        let stream = try innerStream(for: layout.ssrc)
        let e = stream.estimate(sequence: layout.sequenceNumber)
        // Synthetic inner header: fixed header + CSRCs with X cleared (at most 12 + 15·4 = 72 bytes).
        var synthetic: (IVBlock, IVBlock, IVBlock, IVBlock, IVBlock) = ((0, 0), (0, 0), (0, 0), (0, 0), (0, 0))
        let sealed = withUnsafeMutableBytes(of: &synthetic) { hdr -> Bool in
            hdr.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: layout.baseLength)
            hdr[0] &= ~0x10
            return inner.sealPayload(aad: UnsafeRawBufferPointer(rebasing: hdr[0..<layout.baseLength]),
                                     body: buffer.mutableView(layout.headerLength..<length),
                                     tag: buffer.baseAddress! + length, ssrc: layout.ssrc, index: e.index)
        }
        guard sealed else { throw .cryptoLibrary(openSSLErrorText("inner seal")) }
        stream.commit(sequence: layout.sequenceNumber, estimate: e)
        buffer[length + 16] = 0x00   // empty OHB
        return try outer.protect(buffer, length: length + 17)
    }

    /// Double-protects `packet` in place.
    public func protect(_ packet: inout [UInt8]) throws(SRTPError) {
        let length = packet.count
        packet.append(contentsOf: repeatElement(0, count: DoubleSRTPProfile.senderOverhead))
        let n = try packet.withSRTPBytes { (b) throws(SRTPError) in try protect(b, length: length) }
        packet.removeLast(packet.count - n)
    }
}

// MARK: - Media Distributor

/// One Media Distributor link (RFC 8723 §5.2): opens the outer layer with the sending hop's key,
/// rewrites PT/SEQ/M recording originals in the OHB, and seals with the receiving hop's key.
///
/// It holds only hop-by-hop sessions; it has no way to hold or use an inner key.
public final class DoubleSRTPRelay {
    public let inbound: SRTPSession
    public let outbound: SRTPSession

    /// `inbound` and `outbound` must be keyed independently (never re-seal with the sender's key).
    public init(inbound: SRTPSession, outbound: SRTPSession) {
        precondition(inbound.direction == .inbound && outbound.direction == .outbound, "relay needs an inbound and an outbound session")
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Forwards the double-SRTP packet filling the first `length` bytes of `buffer` (room for 3 more
    /// OHB bytes plus nothing else). Returns the new length.
    public func forward(_ buffer: UnsafeMutableRawBufferPointer, length: Int, rewrite: HeaderRewrite) throws(SRTPError) -> Int {
        let n = try inbound.unprotect(buffer.mutableView(0..<length))
        return try DoubleSRTPRelay.sealHop(buffer, length: n, rewrite: rewrite, outbound: outbound)
    }

    /// The second half of `forward` for a fan-out: `buffer` holds, in its first `length` bytes,
    /// a packet whose outer layer `inbound.unprotect` already opened (header ‖ inner ciphertext
    /// ‖ inner tag ‖ OHB). Rewrites PT/SEQ/M recording the originals in the OHB, and seals with
    /// `outbound`. `buffer` needs room for 3 more OHB bytes plus the outbound overhead.
    /// Returns the sealed length. A Media Distributor opens each packet once and calls this
    /// once per receiver on a copy.
    public static func sealHop(_ buffer: UnsafeMutableRawBufferPointer, length n: Int, rewrite: HeaderRewrite,
                               outbound: SRTPSession) throws(SRTPError) -> Int {
        let layout: RTPHeaderLayout
        do { layout = try RTPHeaderLayout(buffer.view(0..<n)) } catch { throw .malformed(error) }
        var (ohb, ohbLength) = try OriginalHeaderBlock.parse(trailerOf: buffer.view(layout.headerLength..<n))
        guard n - ohbLength - layout.headerLength >= 16 else {
            throw .packetTooShort(field: .srtpTag, needed: layout.headerLength + 16 + ohbLength, available: n)
        }
        let base = buffer.baseAddress!
        if let pt = rewrite.payloadType, pt != layout.payloadType {
            let original = ohb.payloadType ?? layout.payloadType
            ohb.payloadType = pt == original ? nil : original
            buffer[1] = (buffer[1] & 0x80) | (pt & 0x7F)
        }
        if let seq = rewrite.sequenceNumber, seq != layout.sequenceNumber {
            let original = ohb.sequenceNumber ?? layout.sequenceNumber
            ohb.sequenceNumber = seq == original ? nil : original
            buffer[2] = UInt8(seq >> 8); buffer[3] = UInt8(seq & 0xFF)
        }
        if let m = rewrite.marker, m != layout.marker {
            let original = ohb.marker ?? layout.marker
            ohb.marker = m == original ? nil : original
            buffer[1] = (buffer[1] & 0x7F) | (m ? 0x80 : 0)
        }
        let bodyEnd = n - ohbLength
        let newLength = bodyEnd + ohb.serializedSize
        guard buffer.count >= newLength + outbound.crypto.srtpOverhead else {
            throw .packetTooShort(field: .ohb, needed: newLength + outbound.crypto.srtpOverhead, available: buffer.count)
        }
        ohb.write(to: base + bodyEnd)
        return try outbound.protect(buffer, length: newLength)
    }

    /// Forwards `packet` in place. The last `trailerLength` bytes (an EKT field) pass through untouched.
    public func forward(_ packet: inout [UInt8], trailerLength: Int = 0, rewrite: HeaderRewrite) throws(SRTPError) {
        guard trailerLength >= 0, trailerLength <= packet.count else {
            throw .packetTooShort(field: .ektField, needed: trailerLength, available: packet.count)
        }
        let original = packet   // copy-on-write: the copy is made only when the bytes change below
        let trailer = Array(packet[(packet.count - trailerLength)...])
        let length = packet.count - trailerLength
        packet.removeLast(trailerLength)
        packet.append(contentsOf: repeatElement(0, count: 3 + outbound.crypto.srtpOverhead))
        let result: Result<Int, SRTPError> = packet.withUnsafeMutableBytes { raw in
            do throws(SRTPError) { return .success(try forward(raw, length: length, rewrite: rewrite)) } catch { return .failure(error) }
        }
        switch result {
        case let .success(n):
            packet.removeLast(packet.count - n)
            packet.append(contentsOf: trailer)
        case let .failure(e):
            packet = original   // unchanged on failure (the outer layer may already have been opened)
            throw e
        }
    }
}

// MARK: - Receiver

/// What the outer layer said about a packet, beyond the inner packet itself.
public struct OuterLayerInfo: Sendable, Equatable {
    /// The header fields as forwarded (the outer SEQ orders packets, the outer PT maps the codec).
    public var outerSequenceNumber: UInt16
    public var outerPayloadType: UInt8
    public var outerMarker: Bool
    public var ohb: OriginalHeaderBlock
    /// The header extension block as received (outer-authenticated only), including its 4-byte header.
    public var headerExtension: [UInt8]
}

/// The receiving endpoint's outer side of RFC 8723 §5.3: opens the HBH layer, checks the OHB and
/// restores the original header, leaving the inner packet — original header (X=0, no extension)
/// ‖ E2E ciphertext ‖ E2E tag — which is an ordinary RFC 7714 SRTP packet under the E2E key.
///
/// The recorder archives exactly that inner packet.
public final class DoubleSRTPReceiver {
    /// The hop-by-hop session from the Media Distributor.
    public let outer: SRTPSession

    public init(outer: SRTPSession) {
        precondition(outer.direction == .inbound, "receiver needs an inbound HBH session")
        self.outer = outer
    }

    public convenience init(profile: DoubleSRTPProfile, outerKey: SecretBytes, outerSalt: SecretBytes,
                            replayWindowSize: Int = SRTPSession.defaultReplayWindow) throws(SRTPError) {
        self.init(outer: try SRTPSession(profile: profile.layerProfile, masterKey: outerKey, masterSalt: outerSalt,
                                         direction: .inbound, replayWindowSize: replayWindowSize))
    }

    /// Opens the outer layer of the packet filling `buffer` and rewrites the buffer's first bytes
    /// into the inner packet. Returns its length and the outer-layer facts.
    public func openOuter(_ buffer: UnsafeMutableRawBufferPointer) throws(SRTPError) -> (innerLength: Int, info: OuterLayerInfo) {
        let n = try outer.unprotect(buffer)
        let layout: RTPHeaderLayout
        do { layout = try RTPHeaderLayout(buffer.view(0..<n)) } catch { throw .malformed(error) }
        let (ohb, ohbLength) = try OriginalHeaderBlock.parse(trailerOf: buffer.view(layout.headerLength..<n))
        let bodyLength = n - ohbLength - layout.headerLength
        guard bodyLength >= 16 else {
            throw .packetTooShort(field: .srtpTag, needed: layout.headerLength + 16 + ohbLength, available: n)
        }
        let info = OuterLayerInfo(outerSequenceNumber: layout.sequenceNumber, outerPayloadType: layout.payloadType,
                                  outerMarker: layout.marker, ohb: ohb,
                                  headerExtension: layout.hasExtension ? Array(buffer.view(layout.baseLength..<layout.headerLength)) : [])
        // Restore the original header fields and drop the extension block (RFC 8723 §5.3 step 4).
        if let pt = ohb.payloadType { buffer[1] = (buffer[1] & 0x80) | pt }
        if let seq = ohb.sequenceNumber { buffer[2] = UInt8(seq >> 8); buffer[3] = UInt8(seq & 0xFF) }
        if let m = ohb.marker { buffer[1] = (buffer[1] & 0x7F) | (m ? 0x80 : 0) }
        buffer[0] &= ~0x10
        if layout.hasExtension {
            (buffer.baseAddress! + layout.baseLength).copyMemory(from: buffer.baseAddress! + layout.headerLength, byteCount: bodyLength)
        }
        return (layout.baseLength + bodyLength, info)
    }

    /// Opens the outer layer of `packet` in place, leaving the inner packet. Unchanged on failure.
    public func openOuter(_ packet: inout [UInt8]) throws(SRTPError) -> OuterLayerInfo {
        let original = packet   // copy-on-write: shares storage until the first write
        let result: Result<(innerLength: Int, info: OuterLayerInfo), SRTPError> = packet.withUnsafeMutableBytes { raw in
            do throws(SRTPError) { return .success(try openOuter(raw)) } catch { return .failure(error) }
        }
        switch result {
        case let .success((n, info)):
            packet.removeLast(packet.count - n)
            return info
        case let .failure(e):
            packet = original
            throw e
        }
    }
}
