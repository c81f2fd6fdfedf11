/// Why bytes could not be read as an Ogg page (RFC 3533 §6) or an Ogg Opus header (RFC 7845 §5).
public enum OggFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended inside `field`: `needed` bytes were required, `available` remained.
    case truncated(field: OggField, needed: Int, available: Int)
    /// A value the format forbids, with the rule it breaks.
    case invalidValue(field: OggField, reason: String)
    /// A value that is legal but that this implementation does not read (a newer version, a
    /// channel mapping family other than 0).
    case unsupported(field: OggField, reason: String)
    /// The page's CRC-32 field does not match the CRC of its bytes (RFC 3533 §6).
    case crcMismatch(stored: UInt32, computed: UInt32)

    public var description: String {
        switch self {
        case let .truncated(field, needed, available):
            return "truncated \(field): needed \(needed) bytes, \(available) available"
        case let .invalidValue(field, reason):
            return "invalid \(field): \(reason)"
        case let .unsupported(field, reason):
            return "unsupported \(field): \(reason)"
        case let .crcMismatch(stored, computed):
            return "Ogg page CRC mismatch: stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16))"
        }
    }
}

/// The Ogg and Ogg Opus fields that errors refer to.
public enum OggField: String, Sendable, Equatable, CustomStringConvertible {
    case pageHeader = "Ogg page header"
    case capturePattern = "Ogg capture pattern"
    case streamStructureVersion = "Ogg stream structure version"
    case headerType = "Ogg header type flags"
    case segmentTable = "Ogg segment table"
    case pageBody = "Ogg page body"
    case opusHead = "OpusHead packet"
    case opusHeadVersion = "OpusHead version"
    case channelCount = "OpusHead channel count"
    case channelMappingFamily = "OpusHead channel mapping family"
    case opusTags = "OpusTags packet"
    case vendorString = "OpusTags vendor string"
    case userComment = "OpusTags user comment"

    public var description: String { rawValue }
}
