/// A goodbye packet, BYE (RFC 3550 §6.6).
///
/// ```
///  header      V P SC | PT=203 | length
///  then        SC SSRC/CSRC identifiers, 4 bytes each
///  optional    reason length (1 byte), reason text, 0x00 octets up to the 32-bit boundary
/// ```
public struct RTCPGoodbye: Sendable, Equatable {
    /// At most 31 sources.
    public var ssrcs: [UInt32]
    /// The reason for leaving, at most 255 bytes; `nil` when absent.
    public var reason: [UInt8]?
    /// Null octets after the reason.
    public var reasonPadding: Int
    /// Raw padding, the last byte being its count; empty when P is clear.
    public var padding: [UInt8]

    /// A BYE whose reason (if any) is followed by the null octets that reach a 32-bit boundary.
    public init(ssrcs: [UInt32], reason: [UInt8]? = nil, padding: [UInt8] = []) {
        self.ssrcs = ssrcs
        self.reason = reason
        self.reasonPadding = reason.map { (4 - (1 + $0.count) % 4) % 4 } ?? 0
        self.padding = padding
    }

    /// A BYE with explicit reason padding, as parsed.
    public init(ssrcs: [UInt32], reason: [UInt8]?, reasonPadding: Int, padding: [UInt8] = []) {
        self.ssrcs = ssrcs
        self.reason = reason
        self.reasonPadding = reasonPadding
        self.padding = padding
    }

    init(body: inout ByteReader, _ context: RTCPBodyContext) throws(RTPParseError) {
        var ssrcs: [UInt32] = []
        for _ in 0 ..< context.count {
            guard let ssrc = body.readUInt32() else { throw .invalidLength(field: .rtcpBody, value: context.lengthField) }
            ssrcs.append(ssrc)
        }
        self.ssrcs = ssrcs
        self.reason = nil
        self.reasonPadding = 0
        if let length = body.readUInt8() {
            guard let reason = body.readBytes(Int(length)) else {
                throw .invalidLength(field: .byeReason, value: context.lengthField)
            }
            self.reason = reason
            while let octet = body.readUInt8() {
                guard octet == 0 else {
                    throw .invalidValue(field: .byeReason, reason: "non-zero octet \(octet) after the reason")
                }
                reasonPadding += 1
            }
        }
        self.padding = context.padding
    }

    var bodySize: Int { 4 * ssrcs.count + (reason.map { 1 + $0.count + reasonPadding } ?? 0) }

    /// Bytes `write(to:)` appends, header and padding included.
    public var serializedSize: Int { 4 + bodySize + padding.count }

    /// Appends the packet. Requires at most 31 sources, a reason of at most 255 bytes and a
    /// whole number of 32-bit words in total.
    public func write(to out: inout [UInt8]) {
        writeRTCPHeader(count: ssrcs.count, packetType: RTCPPacketType.goodbye, bodySize: bodySize, padding: padding, to: &out)
        for ssrc in ssrcs { out.appendBigEndian(ssrc) }
        if let reason {
            precondition(reason.count <= 255, "BYE reason over 255 bytes")
            out.append(UInt8(reason.count))
            out.append(contentsOf: reason)
            out.appendZeros(reasonPadding)
        }
        out.append(contentsOf: padding)
    }
}
