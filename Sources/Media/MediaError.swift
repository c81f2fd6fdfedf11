/// Why a codec or a synthetic source refused to work: a library failure or a bad argument.
///
/// Library cases carry the C function, its numeric result and the library's own error text.
public enum MediaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A libopus call failed; `message` is `opus_strerror(code)`.
    case opus(function: String, code: Int32, message: String)
    /// A libvpx call failed; `message` is the codec's error string, `detail` its detail text if any.
    case vpx(function: String, code: Int32, message: String, detail: String?)
    /// An argument outside what the codec or source supports (checked before calling C).
    case invalidArgument(name: String, reason: String)

    public var description: String {
        switch self {
        case let .opus(function, code, message):
            return "\(function) failed (\(code)): \(message)"
        case let .vpx(function, code, message, detail):
            return "\(function) failed (\(code)): \(message)" + (detail.map { " — \($0)" } ?? "")
        case let .invalidArgument(name, reason):
            return "invalid \(name): \(reason)"
        }
    }
}
