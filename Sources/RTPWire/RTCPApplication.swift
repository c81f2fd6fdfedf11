/// An application-defined packet, APP (RFC 3550 §6.7).
///
/// ```
///  header      V P subtype | PT=204 | length
///  bytes 4-7   SSRC/CSRC
///  bytes 8-11  name, four ASCII characters
///  then        application-dependent data up to the padding (kept raw)
/// ```
public struct RTCPApplication: Sendable, Equatable {
    /// 5-bit subtype (0...31).
    public var subtype: UInt8
    public var ssrc: UInt32
    /// The four name bytes, big-endian (`0x4D415253` is "MARS").
    public var name: UInt32
    public var data: [UInt8]
    /// Raw padding, the last byte being its count; empty when P is clear.
    public var padding: [UInt8]

    public init(subtype: UInt8, ssrc: UInt32, name: UInt32, data: [UInt8] = [], padding: [UInt8] = []) {
        self.subtype = subtype
        self.ssrc = ssrc
        self.name = name
        self.data = data
        self.padding = padding
    }

    /// The name as four bytes.
    public var nameBytes: [UInt8] {
        [UInt8(truncatingIfNeeded: name >> 24), UInt8(truncatingIfNeeded: name >> 16),
         UInt8(truncatingIfNeeded: name >> 8), UInt8(truncatingIfNeeded: name)]
    }

    init(body: inout ByteReader, _ context: RTCPBodyContext) throws(RTPParseError) {
        guard let ssrc = body.readUInt32() else { throw .invalidLength(field: .rtcpBody, value: context.lengthField) }
        guard let name = body.readUInt32() else { throw .invalidLength(field: .appName, value: context.lengthField) }
        self.subtype = context.count
        self.ssrc = ssrc
        self.name = name
        self.data = body.readRest()
        self.padding = context.padding
    }

    var bodySize: Int { 8 + data.count }

    /// Bytes `write(to:)` appends, header and padding included.
    public var serializedSize: Int { 4 + bodySize + padding.count }

    /// Appends the packet. Requires `subtype <= 31` and a whole number of 32-bit words in total.
    public func write(to out: inout [UInt8]) {
        writeRTCPHeader(count: Int(subtype), packetType: RTCPPacketType.application, bodySize: bodySize, padding: padding, to: &out)
        out.appendBigEndian(ssrc)
        out.appendBigEndian(name)
        out.append(contentsOf: data)
        out.append(contentsOf: padding)
    }
}

/// An RTCP packet of a type this module does not model (e.g. RTPFB 205, PSFB 206, XR 207), kept verbatim.
///
/// ```
///  header      V P count | PT | length
///  then        body up to the padding (kept raw)
/// ```
public struct RTCPOpaque: Sendable, Equatable {
    /// Packet type, in 192...223 but none of 200...204.
    public let packetType: UInt8
    /// The 5-bit count/format field (e.g. FMT for feedback messages).
    public var count: UInt8
    /// Everything after the 4-byte header, padding excluded.
    public var body: [UInt8]
    /// Raw padding, the last byte being its count; empty when P is clear.
    public var padding: [UInt8]

    /// Throws `.invalidPacketType` for a type outside 192...223 or one of 200...204 (which parse
    /// to their own cases), `.invalidValue(field: .rtcpHeader, …)` if `count` exceeds 31.
    public init(packetType: UInt8, count: UInt8, body: [UInt8], padding: [UInt8] = []) throws(RTPParseError) {
        guard RTCPPacketType.validRange.contains(packetType),
              !(RTCPPacketType.senderReport ... RTCPPacketType.application).contains(packetType)
        else { throw .invalidPacketType(packetType) }
        guard count <= 31 else { throw .invalidValue(field: .rtcpHeader, reason: "count \(count) does not fit in 5 bits") }
        self.init(packetType: packetType, count: count, body: body, uncheckedPadding: padding)
    }

    init(packetType: UInt8, count: UInt8, body: [UInt8], uncheckedPadding padding: [UInt8]) {
        self.packetType = packetType
        self.count = count
        self.body = body
        self.padding = padding
    }

    /// Bytes `write(to:)` appends, header and padding included.
    public var serializedSize: Int { 4 + body.count + padding.count }

    /// Appends the packet. Requires `count <= 31` and a whole number of 32-bit words in total.
    public func write(to out: inout [UInt8]) {
        writeRTCPHeader(count: Int(count), packetType: packetType, bodySize: body.count, padding: padding, to: &out)
        out.append(contentsOf: body)
        out.append(contentsOf: padding)
    }
}

extension RTCPApplication {
    /// percrec's recorder subscription (an RTCP APP packet, RFC 3550 §6.7): name "PRCR",
    /// subtype 1, no data. A receive-only recorder puts it in every compound RTCP packet it
    /// sends; the Media Distributor, which opens RTCP hop by hop, then forwards every source to
    /// that endpoint instead of its usual selection. The packet is hop-authenticated (SRTCP
    /// under the endpoint's HBH key), so only an admitted endpoint can ask.
    public static let recorderSubscriptionName: UInt32 = 0x5052_4352   // "PRCR"
    public static let recorderSubscriptionSubtype: UInt8 = 1

    public static func recorderSubscription(ssrc: UInt32) -> RTCPApplication {
        RTCPApplication(subtype: recorderSubscriptionSubtype, ssrc: ssrc, name: recorderSubscriptionName)
    }

    /// Whether the compound RTCP packet `compound` (hop layer removed) holds a recorder
    /// subscription. Walks the packets by their length fields; stops at the first malformed one.
    public static func containsRecorderSubscription(_ compound: [UInt8]) -> Bool {
        var offset = 0
        while offset + 12 <= compound.count {
            let length = 4 * (Int(compound[offset + 2]) << 8 | Int(compound[offset + 3]) + 1)
            guard offset + length <= compound.count else { return false }
            let name = UInt32(compound[offset + 8]) << 24 | UInt32(compound[offset + 9]) << 16
                | UInt32(compound[offset + 10]) << 8 | UInt32(compound[offset + 11])
            if compound[offset + 1] == RTCPPacketType.application, compound[offset] & 0x1F == recorderSubscriptionSubtype,
               name == recorderSubscriptionName {
                return true
            }
            offset += length
        }
        return false
    }
}
