import Glibc

/// What a non-blocking read did.
public enum TCPReadResult: Sendable, Hashable {
    /// This many bytes (at least 1) were read.
    case read(Int)
    /// Nothing to read now; poll for `.read`.
    case wouldBlock
    /// The peer closed its side (FIN); no more bytes will come.
    case endOfStream
}

/// What a non-blocking write did.
public enum TCPWriteResult: Sendable, Hashable {
    /// This many bytes (at least 1, maybe fewer than offered) were queued.
    case wrote(Int)
    /// The send buffer is full; poll for `.write`.
    case wouldBlock
}

/// A listening TCP socket with `SO_REUSEADDR`, non-blocking: `accept()` returns nil when no
/// connection is waiting. Not thread-safe: one owner.
public final class TCPListener {
    /// The bound address, with the port the kernel picked for port 0.
    public let localAddress: SocketAddress
    /// The descriptor, for polling (readable means a connection is waiting); -1 once closed.
    public private(set) var fileDescriptor: Int32
    public var isClosed: Bool { fileDescriptor < 0 }

    /// Binds to `address` (port 0: ephemeral) and listens with `backlog` pending connections.
    public init(bindingTo address: SocketAddress, backlog: Int32 = 128) throws(NetError) {
        let resource = "TCP listener \(address)"
        let fd = try SocketCalls.open(address.family, type: SOCK_STREAM, resource: resource)
        do throws(NetError) {
            try SocketCalls.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)", resource)
            try SocketCalls.bind(fd, to: address, resource: resource)
            guard listen(fd, backlog) == 0 else { throw NetError.lastError("listen", resource) }
            localAddress = try SocketCalls.localAddress(fd, resource: resource)
        } catch {
            SocketCalls.close(fd)
            throw error
        }
        fileDescriptor = fd
    }

    deinit { close() }

    /// Closes the listening socket; connections already accepted stay open.
    public func close() {
        guard fileDescriptor >= 0 else { return }
        SocketCalls.close(fileDescriptor)
        fileDescriptor = -1
    }

    private var resource: String { "TCP listener \(localAddress)" }

    /// Accepts one waiting connection (non-blocking, `TCP_NODELAY` set), or nil if none is
    /// waiting. Connections that died in the queue (ECONNABORTED) are skipped.
    public func accept() throws(NetError) -> TCPStream? {
        guard fileDescriptor >= 0 else { throw NetError(code: .closed, operation: "accept", message: resource) }
        while true {
            // accept4 is hidden behind _GNU_SOURCE; fcntl does the same on the new descriptor.
            let fd = Glibc.accept(fileDescriptor, nil, nil)
            if fd >= 0 {
                let description = "TCP accepted on \(localAddress)"
                guard fcntl(fd, F_SETFD, FD_CLOEXEC) == 0, fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0 else {
                    let error = NetError.lastError("fcntl(O_NONBLOCK)", description)
                    SocketCalls.close(fd)
                    throw error
                }
                return try TCPStream(adopting: fd, description: description)
            }
            let number = Glibc.errno
            switch number {
            case EINTR, ECONNABORTED: continue
            case EAGAIN: return nil
            default: throw .system("accept", resource, errno: number)
            }
        }
    }

    /// Waits up to `timeout` (nil: no limit) for a connection; nil if none came.
    public func accept(timeout: Duration?) throws(NetError) -> TCPStream? {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            if let stream = try accept() { return stream }
            let left = deadline.map { $0 - ContinuousClock.now }
            if let left, left <= .zero { return nil }
            _ = try Poller.wait(for: fileDescriptor, interest: .read, timeout: left)
        }
    }
}

/// A connected TCP socket, non-blocking, with `TCP_NODELAY` (the tunnel sends small
/// messages that must not wait for Nagle). Reads and writes return `.wouldBlock` rather than
/// waiting; poll `fileDescriptor` for readiness. Writes never raise SIGPIPE (`MSG_NOSIGNAL`):
/// a dead peer throws `.connectionReset`. Not thread-safe: one owner.
public final class TCPStream {
    public let localAddress: SocketAddress
    public let peerAddress: SocketAddress
    /// The descriptor, for polling; -1 once closed.
    public private(set) var fileDescriptor: Int32
    public var isClosed: Bool { fileDescriptor < 0 }

    /// Takes over a connected descriptor (closing it on failure).
    init(adopting fd: Int32, description: String) throws(NetError) {
        do throws(NetError) {
            try SocketCalls.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)", description)
            localAddress = try SocketCalls.localAddress(fd, resource: description)
            peerAddress = try SocketCalls.peerAddress(fd, resource: description)
        } catch {
            SocketCalls.close(fd)
            throw error
        }
        fileDescriptor = fd
    }

    /// Connects to `address`, waiting at most `timeout`. Throws `.connectionRefused` when
    /// nobody listens, `.timedOut` when the deadline passes first.
    public static func connect(to address: SocketAddress, timeout: Duration) throws(NetError) -> TCPStream {
        let resource = "TCP \(address)"
        let fd = try SocketCalls.open(address.family, type: SOCK_STREAM, resource: resource)
        do {
            try finishConnect(fd, to: address, timeout: timeout, resource: resource)
        } catch {
            SocketCalls.close(fd)
            throw error
        }
        return try TCPStream(adopting: fd, description: resource)   // closes fd if it throws
    }

    /// Starts a non-blocking connect and waits for its outcome (`SO_ERROR`).
    private static func finishConnect(_ fd: Int32, to address: SocketAddress, timeout: Duration,
                                      resource: String) throws(NetError) {
        guard address.withSockAddr({ Glibc.connect(fd, $0, $1) }) != 0 else { return }
        let number = Glibc.errno
        // EINTR: the connect goes on in the background, as with EINPROGRESS.
        guard number == EINPROGRESS || number == EINTR else { throw .system("connect", resource, errno: number) }
        let ready = try Poller.wait(for: fd, interest: .write, timeout: timeout)
        guard !ready.isEmpty else {
            throw NetError(code: .timedOut, operation: "connect", message: resource, cause: "no answer within \(timeout)")
        }
        let pending = try SocketCalls.option(fd, SOL_SOCKET, SO_ERROR, "getsockopt(SO_ERROR)", resource)
        guard pending == 0 else { throw .system("connect", resource, errno: pending) }
    }

    deinit { close() }

    /// Closes the socket. Unsent data still goes out (no `SO_LINGER` reset).
    public func close() {
        guard fileDescriptor >= 0 else { return }
        SocketCalls.close(fileDescriptor)
        fileDescriptor = -1
    }

    /// Sends FIN: the peer reads end of stream; reading here goes on.
    public func shutdownWrite() throws(NetError) {
        guard shutdown(try openDescriptor("shutdown"), Int32(SHUT_WR)) == 0 else { throw .lastError("shutdown", resource) }
    }

    private var resource: String { "TCP \(localAddress) ⇄ \(peerAddress)" }

    private func openDescriptor(_ operation: String) throws(NetError) -> Int32 {
        guard fileDescriptor >= 0 else { throw NetError(code: .closed, operation: operation, message: resource) }
        return fileDescriptor
    }

    /// Reads what is there into `buffer`, without waiting.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(NetError) -> TCPReadResult {
        let fd = try openDescriptor("recv")
        guard buffer.count > 0 else { return .read(0) }
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n > 0 { return .read(n) }
            if n == 0 { return .endOfStream }
            let number = Glibc.errno
            switch number {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            default: throw .system("recv", resource, errno: number)
            }
        }
    }

    /// Writes as much of `bytes` as the send buffer takes, without waiting.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(NetError) -> TCPWriteResult {
        let fd = try openDescriptor("send")
        guard bytes.count > 0 else { return .wrote(0) }
        while true {
            let n = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return .wrote(n) }
            let number = Glibc.errno
            switch number {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            default: throw .system("send", resource, errno: number)
            }
        }
    }

    /// Writes from an array slice (see `write(_: UnsafeRawBufferPointer)`).
    public func write(_ bytes: ArraySlice<UInt8>) throws(NetError) -> TCPWriteResult {
        try bytes.withRawBytes { (raw) throws(NetError) in try write(raw) }
    }

    /// Asks for a receive buffer of `bytes` (`SO_RCVBUF`, doubled and capped by Linux).
    public func setReceiveBufferSize(_ bytes: Int) throws(NetError) {
        try SocketCalls.setOption(openDescriptor("setsockopt"), SOL_SOCKET, SO_RCVBUF, Int32(clamping: bytes),
                                  "setsockopt(SO_RCVBUF)", resource)
    }

    /// Asks for a send buffer of `bytes` (`SO_SNDBUF`, doubled and capped by Linux).
    public func setSendBufferSize(_ bytes: Int) throws(NetError) {
        try SocketCalls.setOption(openDescriptor("setsockopt"), SOL_SOCKET, SO_SNDBUF, Int32(clamping: bytes),
                                  "setsockopt(SO_SNDBUF)", resource)
    }
}
