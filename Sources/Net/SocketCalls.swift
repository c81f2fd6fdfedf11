import Glibc

/// The system calls every socket type shares, each turning a -1 into a `NetError` that names
/// the call and the socket. Descriptors are always created close-on-exec and non-blocking:
/// the socket types wait with poll(2), never inside a blocking call.
enum SocketCalls {
    /// `socket(2)` with `SOCK_NONBLOCK | SOCK_CLOEXEC`.
    static func open(_ family: SocketAddress.Family, type: __socket_type, resource: String) throws(NetError) -> Int32 {
        let fd = socket(family.rawValue, Int32(type.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .lastError("socket", resource) }
        return fd
    }

    /// `setsockopt(2)` with an `int` value.
    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32,
                          _ operation: String, _ resource: String) throws(NetError) {
        var v = value
        guard setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw .lastError(operation, resource)
        }
    }

    /// `getsockopt(2)` of an `int` value.
    static func option(_ fd: Int32, _ level: Int32, _ name: Int32,
                       _ operation: String, _ resource: String) throws(NetError) -> Int32 {
        var v: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, name, &v, &length) == 0 else { throw .lastError(operation, resource) }
        return v
    }

    /// `bind(2)`.
    static func bind(_ fd: Int32, to address: SocketAddress, resource: String) throws(NetError) {
        let r = address.withSockAddr { Glibc.bind(fd, $0, $1) }
        guard r == 0 else { throw .lastError("bind", resource) }
    }

    /// `getsockname(2)`: the bound address (with the port the kernel picked for port 0).
    static func localAddress(_ fd: Int32, resource: String) throws(NetError) -> SocketAddress {
        try address(fd, resource: resource, operation: "getsockname", getsockname)
    }

    /// `getpeername(2)`: the connected peer.
    static func peerAddress(_ fd: Int32, resource: String) throws(NetError) -> SocketAddress {
        try address(fd, resource: resource, operation: "getpeername", getpeername)
    }

    private static func address(_ fd: Int32, resource: String, operation: String,
                                _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32)
        throws(NetError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
        }
        guard r == 0 else { throw .lastError(operation, resource) }
        guard let address = SocketAddress(storage: storage, length: length) else {
            throw NetError(code: .system, operation: operation, message: resource, cause: "not an IPv4 or IPv6 address")
        }
        return address
    }

    /// `close(2)`. EINTR is not retried: on Linux the descriptor is released either way.
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }
}

extension Duration {
    /// Milliseconds for poll(2), rounded up so that a short wait does not become a busy loop,
    /// clamped to `Int32.max`; negative durations count as zero.
    var pollMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        guard seconds >= 0, self > .zero else { return 0 }
        let (whole, fraction) = attoseconds.quotientAndRemainder(dividingBy: 1_000_000_000_000_000)
        let ms = seconds.multipliedReportingOverflow(by: 1000)
        guard !ms.overflow else { return .max }
        return Int32(clamping: ms.partialValue + whole + (fraction > 0 ? 1 : 0))
    }
}

// The standard library's `withUnsafeBytes` rethrows as `any Error`; these keep the typed error.
extension Array where Element == UInt8 {
    func withRawBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { raw in Result { () throws(E) in try body(raw) } }.get()
    }

    mutating func withMutableRawBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeMutableBytes { raw in Result { () throws(E) in try body(raw) } }.get()
    }
}

extension ArraySlice where Element == UInt8 {
    func withRawBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { raw in Result { () throws(E) in try body(raw) } }.get()
    }
}
