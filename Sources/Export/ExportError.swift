import Archive
import Media

/// Why an export stopped. The command line maps `.unauthorized` to exit code 3, `.invalidRequest`
/// to 2 and everything else to 1 (DESIGN §7).
public enum ExportError: Error, Equatable, CustomStringConvertible {
    /// The key material presented does not open the conference's epoch keys (or is missing).
    case unauthorized(String)
    /// The request names something the archive does not hold, or a time range that is empty.
    case invalidRequest(String)
    /// The archive could not be read.
    case archive(ArchiveError)
    /// Nothing in the selection can be written (no decryptable media in range).
    case nothingToExport(String)
    /// An output file could not be created or written.
    case output(ContainerError)
    /// A codec failed (libopus while mixing).
    case media(MediaError)

    public var description: String {
        switch self {
        case let .unauthorized(reason): "not authorized: \(reason)"
        case let .invalidRequest(reason): reason
        case let .archive(e): "archive: \(e)"
        case let .nothingToExport(reason): "nothing to export: \(reason)"
        case let .output(e): "output: \(e)"
        case let .media(e): "codec: \(e)"
        }
    }
}
