/// A named field of a DTLS tunnel message (draft-ietf-perc-dtls-tunnel-12 §6), used in
/// error reports. Raw values are the draft's field names.
public enum TunnelField: String, Sendable, Equatable, CustomStringConvertible {
    /// `TunnelMessage.msg_type` (§6.1).
    case messageType = "msg_type"
    /// `TunnelMessage.length`, the 2-byte body length (§6.1).
    case length = "length"
    /// `TunnelMessage.body`, as announced by `length` (§6.1).
    case body = "body"
    /// A whole `TunnelMessage` (used for bytes after it).
    case message = "TunnelMessage"
    case version = "version"
    case protectionProfiles = "protection_profiles"
    case highestVersion = "highest_version"
    case associationID = "association_id"
    case protectionProfile = "protection_profile"
    case mki = "mki"
    case clientWriteMasterKey = "client_write_SRTP_master_key"
    case serverWriteMasterKey = "server_write_SRTP_master_key"
    case clientWriteMasterSalt = "client_write_SRTP_master_salt"
    case serverWriteMasterSalt = "server_write_SRTP_master_salt"
    case dtlsMessage = "dtls_message"

    public var description: String { rawValue }
}

/// Why a tunnel message could not be parsed or built. Offsets count from the first byte
/// of the message (the `msg_type` byte).
public enum TunnelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input (or the body announced by `length`) ended inside `field`: the field needs
    /// the message to be `needed` bytes long, only `available` are there.
    case truncated(field: TunnelField, needed: Int, available: Int)
    /// `msg_type` is not 1...5 (§8: 0 is reserved, 6...255 unassigned).
    case unknownMessageType(UInt8)
    /// An opaque or list vector whose byte length is outside what the draft allows (or
    /// what fits the 16-bit body length).
    case invalidVectorLength(field: TunnelField, length: Int, allowed: ClosedRange<Int>)
    /// A list vector whose byte length is not a multiple of its element size.
    case misalignedVector(field: TunnelField, length: Int, elementSize: Int)
    /// Bytes left after the last field of a body, or after the message in
    /// `TunnelMessage(parsing:)`.
    case trailingBytes(after: TunnelField, count: Int)
    /// A `SupportedProfiles` with a `version` this implementation does not speak (it speaks
    /// 0, §6.2). A Key Distributor answers with `UnsupportedVersion` and closes (§5.5).
    case unsupportedVersion(UInt8)
    /// A message (header + body) longer than the framer's bound; the frame is dropped.
    case messageTooLong(length: Int, maximum: Int)

    public var description: String {
        switch self {
        case let .truncated(field, needed, available):
            return "tunnel message truncated in \(field): needed \(needed) bytes, \(available) available"
        case let .unknownMessageType(type):
            return "unknown tunnel message type \(type)"
        case let .invalidVectorLength(field, length, allowed):
            return "\(field) length \(length) outside \(allowed.lowerBound)...\(allowed.upperBound)"
        case let .misalignedVector(field, length, elementSize):
            return "\(field) length \(length) is not a multiple of \(elementSize)"
        case let .trailingBytes(after, count):
            return "\(count) unexpected bytes after \(after)"
        case let .unsupportedVersion(version):
            return "unsupported tunnel protocol version \(version)"
        case let .messageTooLong(length, maximum):
            return "tunnel message of \(length) bytes exceeds the \(maximum)-byte limit"
        }
    }
}
