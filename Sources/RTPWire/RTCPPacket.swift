/// RTCP packet type codes (RFC 3550 §12.1) and the range RFC 5761 §4 reserves for RTCP.
public enum RTCPPacketType {
    public static let senderReport: UInt8 = 200
    public static let receiverReport: UInt8 = 201
    public static let sourceDescription: UInt8 = 202
    public static let goodbye: UInt8 = 203
    public static let application: UInt8 = 204
    /// Packet types that can be RTCP when RTP and RTCP share a port (RFC 5761 §4).
    public static let validRange: ClosedRange<UInt8> = 192 ... 223
}

/// One RTCP packet of a compound packet (RFC 3550 §6.4–§6.7).
///
/// Types other than SR, RR, SDES, BYE and APP inside 192...223 (feedback, XR, …) are kept as
/// `.unknown` opaque blocks.
public enum RTCPPacket: Sendable, Equatable {
    case senderReport(RTCPSenderReport)
    case receiverReport(RTCPReceiverReport)
    case sourceDescription(RTCPSourceDescription)
    case goodbye(RTCPGoodbye)
    case application(RTCPApplication)
    case unknown(RTCPOpaque)

    /// The packet type octet.
    public var packetType: UInt8 {
        switch self {
        case .senderReport: RTCPPacketType.senderReport
        case .receiverReport: RTCPPacketType.receiverReport
        case .sourceDescription: RTCPPacketType.sourceDescription
        case .goodbye: RTCPPacketType.goodbye
        case .application: RTCPPacketType.application
        case let .unknown(opaque): opaque.packetType
        }
    }

    /// Raw padding at the end of this packet; non-empty exactly when its P bit is set.
    public var padding: [UInt8] {
        switch self {
        case let .senderReport(p): p.padding
        case let .receiverReport(p): p.padding
        case let .sourceDescription(p): p.padding
        case let .goodbye(p): p.padding
        case let .application(p): p.padding
        case let .unknown(p): p.padding
        }
    }

    /// Bytes `write(to:)` appends, header and padding included.
    public var serializedSize: Int {
        switch self {
        case let .senderReport(p): p.serializedSize
        case let .receiverReport(p): p.serializedSize
        case let .sourceDescription(p): p.serializedSize
        case let .goodbye(p): p.serializedSize
        case let .application(p): p.serializedSize
        case let .unknown(p): p.serializedSize
        }
    }

    /// Appends this packet's wire form to `out`.
    public func write(to out: inout [UInt8]) {
        switch self {
        case let .senderReport(p): p.write(to: &out)
        case let .receiverReport(p): p.write(to: &out)
        case let .sourceDescription(p): p.write(to: &out)
        case let .goodbye(p): p.write(to: &out)
        case let .application(p): p.write(to: &out)
        case let .unknown(p): p.write(to: &out)
        }
    }

    /// The wire form as a new array.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    /// Parses a single RTCP packet that fills all of `bytes`.
    ///
    /// Throws `.invalidLength(field: .rtcpHeader, …)` if its length field covers less than `bytes`.
    public init(parsing bytes: [UInt8]) throws(RTPParseError) {
        self = try bytes.parsingBytes { raw throws(RTPParseError) in
            let (packet, length) = try RTCPPacket.parse(raw, at: 0)
            guard length == raw.count else {
                throw .invalidLength(field: .rtcpHeader, value: length / 4 - 1)
            }
            return packet
        }
    }

    // Byte 0 of the common header.
    static let versionShift: UInt8 = 6
    static let paddingBit: UInt8 = 0x20
    static let countMask: UInt8 = 0x1F

    /// Reads the packet starting at `start` and returns it with its length in bytes (RFC 3550 §6.4.1).
    ///
    /// ```
    ///  byte 0     V: top 2 bits (must be 2) | P: 0x20 | count or subtype: low 5 bits
    ///  byte 1     packet type (192...223 accepted)
    ///  bytes 2-3  length: packet size in 32-bit words minus one, header included
    ///  then       the body; if P, the packet's last byte counts the padding bytes, itself included
    /// ```
    /// The datagram ending before the length says → `.truncated(field: .rtcpBody, …)`. A body
    /// too short for what its counts promise → `.invalidLength(field: <part>, value: <length field>)`.
    static func parse(_ bytes: UnsafeRawBufferPointer, at start: Int) throws(RTPParseError) -> (RTCPPacket, Int) {
        var header = ByteReader(bytes, from: start)
        guard let b0 = header.readUInt8(), let type = header.readUInt8(), let lengthField = header.readUInt16() else {
            throw .truncated(field: .rtcpHeader, needed: 4, available: bytes.count - start)
        }
        guard b0 >> versionShift == 2 else { throw .unsupportedVersion(b0 >> versionShift) }
        guard RTCPPacketType.validRange.contains(type) else { throw .invalidPacketType(type) }

        let total = 4 * (Int(lengthField) + 1)
        let bodyLength = total - 4
        guard header.remaining >= bodyLength else {
            throw .truncated(field: .rtcpBody, needed: bodyLength, available: header.remaining)
        }
        let end = start + total
        var padding: [UInt8] = []
        var contentEnd = end
        if b0 & paddingBit != 0 {
            let padCount = Int(bytes[end - 1])
            guard padCount >= 1, padCount <= bodyLength else {
                throw .invalidPadding(count: padCount, available: bodyLength)
            }
            contentEnd = end - padCount
            padding = Array(bytes[contentEnd ..< end])
        }

        var body = ByteReader(bytes, from: start + 4, to: contentEnd)
        let count = b0 & countMask
        let context = RTCPBodyContext(count: count, lengthField: Int(lengthField), packetStart: start, padding: padding)
        let packet: RTCPPacket
        switch type {
        case RTCPPacketType.senderReport:
            packet = .senderReport(try RTCPSenderReport(body: &body, context))
        case RTCPPacketType.receiverReport:
            packet = .receiverReport(try RTCPReceiverReport(body: &body, context))
        case RTCPPacketType.sourceDescription:
            packet = .sourceDescription(try RTCPSourceDescription(body: &body, context))
        case RTCPPacketType.goodbye:
            packet = .goodbye(try RTCPGoodbye(body: &body, context))
        case RTCPPacketType.application:
            packet = .application(try RTCPApplication(body: &body, context))
        default:
            packet = .unknown(RTCPOpaque(packetType: type, count: count, body: body.readRest(), uncheckedPadding: padding))
        }
        return (packet, total)
    }
}

/// What a body parser needs from the common header.
struct RTCPBodyContext {
    /// The 5-bit count/subtype field.
    var count: UInt8
    /// The header's length field, echoed in `.invalidLength` errors.
    var lengthField: Int
    /// Offset of the packet's first byte, for 32-bit alignment inside the body.
    var packetStart: Int
    var padding: [UInt8]
}

/// Appends an RTCP common header for a body of `bodySize` bytes followed by `padding`.
///
/// The caller's values must fit the wire (count ≤ 31, padding well formed, total a whole number
/// of 32-bit words); parsed packets always do, so a violation is a programming error.
func writeRTCPHeader(count: Int, packetType: UInt8, bodySize: Int, padding: [UInt8], to out: inout [UInt8]) {
    let total = 4 + bodySize + padding.count
    precondition((0 ... 31).contains(count), "RTCP count field above 31")
    precondition(padding.count <= 255 && isWellFormedPadding(padding), "RTCP padding must end in its own length")
    precondition(total % 4 == 0 && total / 4 - 1 <= Int(UInt16.max), "RTCP packet is not a whole number of 32-bit words")
    out.reserveCapacity(out.count + total)
    out.append(2 << RTCPPacket.versionShift | (padding.isEmpty ? 0 : RTCPPacket.paddingBit) | UInt8(count))
    out.append(packetType)
    out.appendBigEndian(UInt16(total / 4 - 1))
}

/// A compound RTCP packet: RTCP packets stacked back to back in one datagram (RFC 3550 §6.1).
///
/// Parsing then serializing returns the input byte for byte. The compound-packet rules of
/// RFC 3550 §6.1/A.2 (SR or RR first, padding only on the last packet) are not enforced, so
/// reduced-size RTCP (RFC 5506) parses too.
public struct RTCPCompoundPacket: Sendable, Equatable {
    public var packets: [RTCPPacket]

    public init(packets: [RTCPPacket]) {
        self.packets = packets
    }

    /// Parses packets until the datagram ends; each must be complete. Empty input throws `.truncated`.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(RTPParseError) {
        var packets: [RTCPPacket] = []
        var offset = 0
        repeat {
            let (packet, length) = try RTCPPacket.parse(bytes, at: offset)
            packets.append(packet)
            offset += length
        } while offset < bytes.count
        self.packets = packets
    }

    public init(parsing bytes: [UInt8]) throws(RTPParseError) {
        self = try bytes.parsingBytes { raw throws(RTPParseError) in try RTCPCompoundPacket(parsing: raw) }
    }

    public init(parsing bytes: ArraySlice<UInt8>) throws(RTPParseError) {
        self = try bytes.parsingBytes { raw throws(RTPParseError) in try RTCPCompoundPacket(parsing: raw) }
    }

    /// Bytes `write(to:)` appends.
    public var serializedSize: Int { packets.reduce(0) { $0 + $1.serializedSize } }

    /// Appends every packet in order.
    public func write(to out: inout [UInt8]) {
        out.reserveCapacity(out.count + serializedSize)
        for packet in packets { packet.write(to: &out) }
    }

    /// The wire form as a new array.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }
}
