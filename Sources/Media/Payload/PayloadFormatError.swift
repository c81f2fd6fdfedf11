/// Why an RTP payload could not be read as Opus (RFC 7587 / RFC 6716 §3) or VP8 (RFC 7741).
public enum PayloadFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The payload has no bytes at all (an Opus payload needs at least the TOC byte).
    case emptyPayload
    /// The payload ended inside `field`: `needed` bytes were required, `available` remained.
    case truncated(field: PayloadField, needed: Int, available: Int)
    /// A value the format forbids, with the rule it breaks.
    case invalidValue(field: PayloadField, reason: String)

    public var description: String {
        switch self {
        case .emptyPayload:
            return "empty RTP payload"
        case let .truncated(field, needed, available):
            return "truncated \(field): needed \(needed) bytes, \(available) available"
        case let .invalidValue(field, reason):
            return "invalid \(field): \(reason)"
        }
    }
}

/// The payload-format fields that errors refer to.
public enum PayloadField: String, Sendable, Equatable, CustomStringConvertible {
    case opusTOC = "Opus TOC byte"
    case opusFrameCount = "Opus frame count byte"
    case opusPadding = "Opus padding length"
    case opusFrameLength = "Opus frame length"
    case opusFrames = "Opus frame data"
    case vp8Descriptor = "VP8 payload descriptor"
    case vp8Extension = "VP8 descriptor extension byte"
    case vp8PictureID = "VP8 PictureID"
    case vp8TL0PicIndex = "VP8 TL0PICIDX"
    case vp8TemporalKey = "VP8 TID/Y/KEYIDX byte"
    case vp8Data = "VP8 data after the descriptor"
    case vp8FrameTag = "VP8 frame tag"
    case vp8KeyFrameHeader = "VP8 key frame header"

    public var description: String { rawValue }
}
