/// Why a container writer (Ogg Opus, WebM) refused an input or could not write its file.
public enum ContainerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file operation failed; `errno` and its text come from the C library.
    case io(path: String, operation: String, errno: Int32, message: String)
    /// An argument the container cannot express (checked before anything is written).
    case invalidArgument(name: String, reason: String)
    /// A block or packet earlier than the previous one on the same track.
    case outOfOrder(track: String, previous: Int64, next: Int64)
    /// The writer was used after `finish()`.
    case finished(path: String)

    public var description: String {
        switch self {
        case let .io(path, operation, errno, message):
            return "\(operation) \(path) failed (errno \(errno)): \(message)"
        case let .invalidArgument(name, reason):
            return "invalid \(name): \(reason)"
        case let .outOfOrder(track, previous, next):
            return "\(track): timestamp \(next) comes before the previous one, \(previous)"
        case let .finished(path):
            return "\(path) is already finished"
        }
    }
}
