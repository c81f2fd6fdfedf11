import Glibc

/// Why a socket operation failed: what kind of failure (`code`), which call (`operation`), on
/// what (`message`, naming the address or socket), and the system's reason (`errno`, `cause`).
///
/// `code` sorts the errno values a caller usually reacts to (refused, timed out, reset, would
/// block); everything else is `.system` with the errno attached.
public struct NetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure, for `switch`.
    public enum Code: Sendable, Equatable, CustomStringConvertible {
        /// The address text is not `host:port`, `[v6]:port` or a resolvable name.
        case invalidAddress
        /// Name resolution (getaddrinfo) found nothing or failed.
        case resolutionFailed
        /// Nobody listens at the address (ECONNREFUSED), or an ICMP port unreachable came back.
        case connectionRefused
        /// A deadline passed before the operation completed.
        case timedOut
        /// The peer reset the connection or it broke (ECONNRESET, EPIPE, ECONNABORTED).
        case connectionReset
        /// The local address is taken (EADDRINUSE) or not available (EADDRNOTAVAIL).
        case addressUnavailable
        /// A non-blocking call could not proceed now (EAGAIN); only from calls that cannot
        /// report it in their return value.
        case wouldBlock
        /// The datagram is larger than the socket can send (EMSGSIZE).
        case messageTooLarge
        /// The socket was closed with `close()` before this call.
        case closed
        /// Any other system call failure; see `errno`.
        case system

        public var description: String {
            switch self {
            case .invalidAddress: "invalid address"
            case .resolutionFailed: "name resolution failed"
            case .connectionRefused: "connection refused"
            case .timedOut: "timed out"
            case .connectionReset: "connection reset"
            case .addressUnavailable: "address unavailable"
            case .wouldBlock: "would block"
            case .messageTooLarge: "message too large"
            case .closed: "socket closed"
            case .system: "system error"
            }
        }
    }

    public let code: Code
    /// The call or step that failed: `"bind"`, `"connect"`, `"recvmsg"`, `"parse address"`.
    public let operation: String
    /// The resource: an address (`"127.0.0.1:5000"`), a socket (`"UDP 0.0.0.0:4000"`), or the
    /// text that failed to parse.
    public let message: String
    /// The system's error number, when a system call failed.
    public let errno: Int32?
    /// The reason in words: `strerror(errno)`, the resolver's text, or why parsing stopped.
    public let cause: String?

    public init(code: Code, operation: String, message: String, errno: Int32? = nil, cause: String? = nil) {
        self.code = code
        self.operation = operation
        self.message = message
        self.errno = errno
        self.cause = cause
    }

    /// A failed system call: `code` from `errno`, `cause` from `strerror`.
    static func system(_ operation: String, _ resource: String, errno number: Int32) -> NetError {
        NetError(code: Code(errno: number), operation: operation, message: resource,
                 errno: number, cause: NetError.text(errno: number))
    }

    /// `system(_:_:errno:)` with the calling thread's current `errno`.
    static func lastError(_ operation: String, _ resource: String) -> NetError {
        system(operation, resource, errno: Glibc.errno)
    }

    /// `strerror_r` without sharing strerror's static buffer between threads.
    static func text(errno number: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        // Glibc exports the XSI strerror_r to Swift: 0 on success, the text in `buffer`.
        guard strerror_r(number, &buffer, buffer.count) == 0 else { return "errno \(number)" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var description: String {
        var text = "\(operation) \(message) failed: \(code)"
        if let cause { text += " (\(cause)" + (errno.map { ", errno \($0))" } ?? ")") }
        return text
    }
}

extension NetError.Code {
    /// Sorts an errno value into a code.
    init(errno number: Int32) {
        switch number {
        case ECONNREFUSED: self = .connectionRefused
        case ETIMEDOUT: self = .timedOut
        case ECONNRESET, EPIPE, ECONNABORTED, ENOTCONN: self = .connectionReset
        case EADDRINUSE, EADDRNOTAVAIL: self = .addressUnavailable
        case EAGAIN, EINPROGRESS: self = .wouldBlock   // EWOULDBLOCK == EAGAIN on Linux
        case EMSGSIZE: self = .messageTooLarge
        case EBADF: self = .closed
        default: self = .system
        }
    }
}
