/// `MsgType` of the DTLS tunnel (draft-ietf-perc-dtls-tunnel-12 §6.1, IANA registry §8).
public enum TunnelMessageType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case supportedProfiles = 1
    case unsupportedVersion = 2
    case mediaKeys = 3
    case tunneledDtls = 4
    case endpointDisconnect = 5

    public var description: String {
        switch self {
        case .supportedProfiles: return "SupportedProfiles"
        case .unsupportedVersion: return "UnsupportedVersion"
        case .mediaKeys: return "MediaKeys"
        case .tunneledDtls: return "TunneledDtls"
        case .endpointDisconnect: return "EndpointDisconnect"
        }
    }
}

/// One message of the TLS tunnel between Media Distributor and Key Distributor
/// (draft-ietf-perc-dtls-tunnel-12 §6), big endian in the TLS presentation language.
public enum TunnelMessage: Equatable, Sendable {
    /// MD -> KD, first message on every tunnel connection (§5.3, §6.2).
    case supportedProfiles(SupportedProfiles)
    /// KD -> MD, then the KD closes the connection (§5.5, §6.3).
    case unsupportedVersion(UnsupportedVersion)
    /// KD -> MD, HBH keys of one association (§5.4, §6.4).
    case mediaKeys(MediaKeys)
    /// Either direction, one endpoint datagram's DTLS records (§6.5).
    case tunneledDtls(TunneledDtls)
    /// Either direction, the association is over (§5.3, §5.4, §6.6).
    case endpointDisconnect(EndpointDisconnect)

    /// Bytes before the body: `msg_type` (1) and `length` (2).
    public static let headerLength = 3
    /// `length` is a uint16 (§6.1).
    public static let maximumBodyLength = 0xFFFF
    public static let maximumMessageLength = headerLength + maximumBodyLength

    public var messageType: TunnelMessageType {
        switch self {
        case .supportedProfiles: return .supportedProfiles
        case .unsupportedVersion: return .unsupportedVersion
        case .mediaKeys: return .mediaKeys
        case .tunneledDtls: return .tunneledDtls
        case .endpointDisconnect: return .endpointDisconnect
        }
    }

    /// The association the message is about; nil for the per-tunnel messages.
    public var associationID: AssociationID? {
        switch self {
        case .supportedProfiles, .unsupportedVersion: return nil
        case let .mediaKeys(m): return m.associationID
        case let .tunneledDtls(m): return m.associationID
        case let .endpointDisconnect(m): return m.associationID
        }
    }

    /// Body length, the value of the `length` field.
    public var bodySize: Int {
        switch self {
        case let .supportedProfiles(m): return m.bodySize
        case let .unsupportedVersion(m): return m.bodySize
        case let .mediaKeys(m): return m.bodySize
        case let .tunneledDtls(m): return m.bodySize
        case let .endpointDisconnect(m): return m.bodySize
        }
    }

    /// Header plus body. At most `maximumMessageLength`: the body types' initializers refuse
    /// anything larger.
    public var serializedSize: Int { TunnelMessage.headerLength + bodySize }

    /// The message on the wire.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(serializedSize)
        write(to: &out)
        return out
    }

    /// Appends the message (§6.1):
    /// ```
    /// +----------+--------------+----------------------+
    /// | msg_type | length (u16) | body (length bytes)  |
    /// +----------+--------------+----------------------+
    /// ```
    public func write(to out: inout [UInt8]) {
        let size = bodySize
        out.append(messageType.rawValue)
        out.append(UInt8(truncatingIfNeeded: size >> 8))
        out.append(UInt8(truncatingIfNeeded: size))
        switch self {
        case let .supportedProfiles(m): m.writeBody(to: &out)
        case let .unsupportedVersion(m): m.writeBody(to: &out)
        case let .mediaKeys(m): m.writeBody(to: &out)
        case let .tunneledDtls(m): m.writeBody(to: &out)
        case let .endpointDisconnect(m): m.writeBody(to: &out)
        }
    }

    /// Parses exactly one message; bytes after it are `.trailingBytes(after: .message, ...)`.
    /// Checks, in order: `msg_type` known, header complete, body complete, body fields.
    public init(parsing bytes: [UInt8]) throws(TunnelError) {
        try self.init(parsing: bytes[...])
    }

    /// As `init(parsing: [UInt8])`, for a slice.
    public init(parsing bytes: ArraySlice<UInt8>) throws(TunnelError) {
        let n = bytes.count
        guard let typeByte = bytes.first else {
            throw .truncated(field: .messageType, needed: 1, available: 0)
        }
        guard TunnelMessageType(rawValue: typeByte) != nil else { throw .unknownMessageType(typeByte) }
        guard n >= TunnelMessage.headerLength else {
            throw .truncated(field: .length, needed: TunnelMessage.headerLength, available: n)
        }
        let s = bytes.startIndex
        let length = Int(bytes[s + 1]) << 8 | Int(bytes[s + 2])
        let end = TunnelMessage.headerLength + length
        guard n >= end else { throw .truncated(field: .body, needed: end, available: n) }
        self = try TunnelMessage.parse(type: typeByte, body: bytes[(s + 3) ..< (s + end)])
        guard n == end else { throw .trailingBytes(after: .message, count: n - end) }
    }

    /// Parses a body whose `msg_type` and `length` were already read.
    static func parse(type: UInt8, body: ArraySlice<UInt8>) throws(TunnelError) -> TunnelMessage {
        guard let messageType = TunnelMessageType(rawValue: type) else { throw .unknownMessageType(type) }
        var reader = TunnelReader(body)
        let message: TunnelMessage
        let lastField: TunnelField
        switch messageType {
        case .supportedProfiles:
            message = .supportedProfiles(try SupportedProfiles(reading: &reader))
            lastField = .protectionProfiles
        case .unsupportedVersion:
            message = .unsupportedVersion(try UnsupportedVersion(reading: &reader))
            lastField = .highestVersion
        case .mediaKeys:
            message = .mediaKeys(try MediaKeys(reading: &reader))
            lastField = .serverWriteMasterSalt
        case .tunneledDtls:
            message = .tunneledDtls(try TunneledDtls(reading: &reader))
            lastField = .dtlsMessage
        case .endpointDisconnect:
            message = .endpointDisconnect(try EndpointDisconnect(reading: &reader))
            lastField = .associationID
        }
        guard reader.remaining == 0 else { throw .trailingBytes(after: lastField, count: reader.remaining) }
        return message
    }
}

extension TunnelMessage: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .supportedProfiles(m): return m.description
        case let .unsupportedVersion(m): return m.description
        case let .mediaKeys(m): return m.description
        case let .tunneledDtls(m): return m.description
        case let .endpointDisconnect(m): return m.description
        }
    }
}

/// Big-endian reader over one message body. Error offsets count from the message start
/// (the body starts after the 3-byte header).
struct TunnelReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int

    init(_ body: ArraySlice<UInt8>) {
        bytes = body
        index = body.startIndex
    }

    var remaining: Int { bytes.endIndex - index }
    /// Offset of the next byte within the message.
    private var offset: Int { TunnelMessage.headerLength + index - bytes.startIndex }
    private var messageLength: Int { TunnelMessage.headerLength + bytes.count }

    mutating func take(_ count: Int, field: TunnelField) throws(TunnelError) -> ArraySlice<UInt8> {
        guard remaining >= count else {
            throw .truncated(field: field, needed: offset + count, available: messageLength)
        }
        defer { index += count }
        return bytes[index ..< index + count]
    }

    mutating func uint8(_ field: TunnelField) throws(TunnelError) -> UInt8 {
        try take(1, field: field).first!  // take returned exactly one byte
    }

    mutating func uint16(_ field: TunnelField) throws(TunnelError) -> UInt16 {
        let b = try take(2, field: field)
        return UInt16(b[b.startIndex]) << 8 | UInt16(b[b.startIndex + 1])
    }

    /// A TLS vector `<lo..hi>` with a 1- or 2-byte length prefix; `allowed` is checked
    /// before the contents are taken.
    mutating func vector(_ field: TunnelField, prefix: Int, allowed: ClosedRange<Int>) throws(TunnelError) -> ArraySlice<UInt8> {
        let length = prefix == 1 ? Int(try uint8(field)) : Int(try uint16(field))
        guard allowed.contains(length) else {
            throw .invalidVectorLength(field: field, length: length, allowed: allowed)
        }
        return try take(length, field: field)
    }

    mutating func associationID() throws(TunnelError) -> AssociationID {
        try AssociationID(bytes: take(AssociationID.byteCount, field: .associationID))
    }
}

extension Array where Element == UInt8 {
    mutating func appendTunnelUInt16(_ value: Int) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }
}
