/// Why bytes could not be read as an RTP or RTCP structure.
///
/// Each case names the field that was wrong and, for short input, how many bytes the field
/// needed and how many were left.
public enum RTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended inside `field`: `needed` bytes were required, `available` remained.
    case truncated(field: RTPField, needed: Int, available: Int)
    /// The version bits were not 2 (RFC 3550 §5.1).
    case unsupportedVersion(UInt8)
    /// The padding count is zero or larger than the payload (RFC 3550 §5.1).
    case invalidPadding(count: Int, available: Int)
    /// A header-extension element uses a reserved ID (RFC 8285 §4.2: 15 in the one-byte form).
    case reservedExtensionID(Int)
    /// An extension element overruns its block (RFC 8285 §4.2/§4.3).
    case extensionElementOverrun(id: Int, needed: Int, available: Int)
    /// An RTCP length field disagrees with the bytes present (RFC 3550 §6.4.1).
    case invalidLength(field: RTPField, value: Int)
    /// An RTCP packet type outside the RTCP range (RFC 5761 §4: 192–223 … used as a guard).
    case invalidPacketType(UInt8)
    /// A value that the protocol forbids, with the rule it breaks.
    case invalidValue(field: RTPField, reason: String)

    public var description: String {
        switch self {
        case let .truncated(field, needed, available):
            return "truncated \(field): needed \(needed) bytes, \(available) available"
        case let .unsupportedVersion(v):
            return "unsupported RTP version \(v) (expected 2)"
        case let .invalidPadding(count, available):
            return "invalid padding count \(count) with \(available) payload bytes"
        case let .reservedExtensionID(id):
            return "reserved header extension ID \(id)"
        case let .extensionElementOverrun(id, needed, available):
            return "header extension element \(id) needs \(needed) bytes, \(available) left in block"
        case let .invalidLength(field, value):
            return "invalid length \(value) in \(field)"
        case let .invalidPacketType(t):
            return "invalid RTCP packet type \(t)"
        case let .invalidValue(field, reason):
            return "invalid \(field): \(reason)"
        }
    }
}

/// The wire fields that errors refer to.
public enum RTPField: String, Sendable, Equatable, CustomStringConvertible {
    case fixedHeader = "RTP fixed header"
    case csrcList = "CSRC list"
    case extensionHeader = "header extension header"
    case extensionBody = "header extension body"
    case payload = "payload"
    case padding = "padding"
    case rtcpHeader = "RTCP header"
    case rtcpBody = "RTCP packet body"
    case senderInfo = "sender info"
    case reportBlock = "report block"
    case sdesChunk = "SDES chunk"
    case sdesItem = "SDES item"
    case byeReason = "BYE reason"
    case appName = "APP name"
    case srtpTag = "SRTP authentication tag"
    case srtcpIndex = "SRTCP index"
    case ohb = "original header block"
    case ektField = "EKT field"

    public var description: String { rawValue }
}
