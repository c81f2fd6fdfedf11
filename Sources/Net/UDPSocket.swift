import Glibc

/// Where a datagram written into a caller's buffer came from.
public struct ReceivedDatagram: Sendable, Hashable {
    /// Bytes written into the buffer.
    public let count: Int
    public let source: SocketAddress
    /// The datagram was longer than the buffer; the rest is lost (`MSG_TRUNC`).
    public let truncated: Bool
}

/// A datagram and its source, as an array.
public struct Datagram: Sendable, Hashable {
    public var bytes: [UInt8]
    public var source: SocketAddress
    /// The datagram was longer than `maximumLength`; the rest is lost.
    public var truncated: Bool
}

/// A bound UDP socket (IPv4 or IPv6). The descriptor is non-blocking; `receive` waits with
/// poll(2) for at most its timeout.
///
/// Kernel drops: with `reportsKernelDrops`, the socket asks for `SO_RXQ_OVFL` and every
/// receive reads the kernel's count of datagrams dropped because the receive buffer was full
/// (a cumulative `uint32`, wrapping). Linux attaches it only once something was dropped, so
/// `kernelDropCount` is 0 until then.
///
/// An IPv6 socket bound to `::` also receives IPv4 traffic as `::ffff:a.b.c.d` (the Linux
/// default, `IPV6_V6ONLY` off). Not thread-safe: one owner.
public final class UDPSocket {
    /// The bound address, with the port the kernel picked for port 0.
    public let localAddress: SocketAddress
    /// Whether receives read the kernel's drop count (`SO_RXQ_OVFL`).
    public let reportsKernelDrops: Bool
    /// Datagrams the kernel dropped for this socket since it was opened, as last reported with a
    /// received datagram; nil unless `reportsKernelDrops`.
    public private(set) var kernelDropCount: UInt32?

    /// The descriptor, for polling; -1 once closed.
    public private(set) var fileDescriptor: Int32
    public var isClosed: Bool { fileDescriptor < 0 }

    /// Room for one `SO_RXQ_OVFL` control message (CMSG_SPACE(4) is 24 on LP64).
    private static let controlCapacity = 64
    private let control: UnsafeMutableRawBufferPointer

    /// Opens a socket of `address`'s family and binds it. Port 0 picks an ephemeral port.
    /// `reuseAddress` sets `SO_REUSEADDR` (rebinding a port in TIME_WAIT is a TCP matter; for
    /// UDP it lets several sockets share a port).
    public init(bindingTo address: SocketAddress, reuseAddress: Bool = false, reportsKernelDrops: Bool = false) throws(NetError) {
        let resource = "UDP \(address)"
        let fd = try SocketCalls.open(address.family, type: SOCK_DGRAM, resource: resource)
        do throws(NetError) {
            if reuseAddress { try SocketCalls.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)", resource) }
            if reportsKernelDrops { try SocketCalls.setOption(fd, SOL_SOCKET, SO_RXQ_OVFL, 1, "setsockopt(SO_RXQ_OVFL)", resource) }
            try SocketCalls.bind(fd, to: address, resource: resource)
            localAddress = try SocketCalls.localAddress(fd, resource: resource)
        } catch {
            SocketCalls.close(fd)
            throw error
        }
        fileDescriptor = fd
        self.reportsKernelDrops = reportsKernelDrops
        kernelDropCount = reportsKernelDrops ? 0 : nil
        control = .allocate(byteCount: UDPSocket.controlCapacity, alignment: MemoryLayout<Int>.alignment)
    }

    deinit {
        close()
        control.deallocate()
    }

    /// Closes the descriptor; later calls throw `.closed`. Closing twice does nothing.
    public func close() {
        guard fileDescriptor >= 0 else { return }
        SocketCalls.close(fileDescriptor)
        fileDescriptor = -1
    }

    private var resource: String { "UDP \(localAddress)" }

    private func openDescriptor(_ operation: String) throws(NetError) -> Int32 {
        guard fileDescriptor >= 0 else { throw NetError(code: .closed, operation: operation, message: resource) }
        return fileDescriptor
    }

    // MARK: - Sending

    /// Sends one datagram. A full send buffer throws `.wouldBlock` (rare for UDP: the kernel
    /// usually drops silently instead); an oversized datagram throws `.messageTooLarge`.
    public func send(_ bytes: UnsafeRawBufferPointer, to destination: SocketAddress) throws(NetError) {
        let fd = try openDescriptor("sendto")
        while true {
            let n = destination.withSockAddr { address, length in
                sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), address, length)
            }
            if n >= 0 { return }
            let number = Glibc.errno
            if number == EINTR { continue }
            throw .system("sendto", "\(resource) to \(destination)", errno: number)
        }
    }

    /// Sends one datagram from an array.
    public func send(_ bytes: [UInt8], to destination: SocketAddress) throws(NetError) {
        try bytes.withRawBytes { (raw) throws(NetError) in try send(raw, to: destination) }
    }

    // MARK: - Receiving

    /// Receives one datagram into `buffer`, waiting up to `timeout` (nil: no limit; `.zero`:
    /// do not wait). Returns nil when nothing arrived in time.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration?) throws(NetError) -> ReceivedDatagram? {
        let fd = try openDescriptor("recvmsg")
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            if let received = try receiveNow(fd, into: buffer) { return received }
            let left = deadline.map { $0 - ContinuousClock.now }
            if let left, left <= .zero { return nil }
            _ = try Poller.wait(for: fd, interest: .read, timeout: left)
        }
    }

    /// Receives one datagram of at most `maximumLength` bytes, waiting up to `timeout`.
    public func receive(maximumLength: Int = 65_535, timeout: Duration?) throws(NetError) -> Datagram? {
        var bytes = [UInt8](repeating: 0, count: max(1, maximumLength))
        let received = try bytes.withMutableRawBytes { (raw) throws(NetError) in try receive(into: raw, timeout: timeout) }
        guard let received else { return nil }
        bytes.removeLast(bytes.count - received.count)
        return Datagram(bytes: bytes, source: received.source, truncated: received.truncated)
    }

    /// One `recvmsg` without waiting; nil on EAGAIN. EINTR is retried.
    private func receiveNow(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(NetError) -> ReceivedDatagram? {
        var storage = sockaddr_storage()
        var iov = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
        while true {
            var message = msghdr()
            let n = withUnsafeMutablePointer(to: &storage) { name in
                withUnsafeMutablePointer(to: &iov) { iovPointer in
                    message.msg_name = UnsafeMutableRawPointer(name)
                    message.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                    message.msg_iov = iovPointer
                    message.msg_iovlen = 1
                    if reportsKernelDrops {
                        message.msg_control = control.baseAddress
                        message.msg_controllen = control.count
                    }
                    return recvmsg(fd, &message, 0)
                }
            }
            if n < 0 {
                let number = Glibc.errno
                if number == EINTR { continue }
                if number == EAGAIN { return nil }
                throw .system("recvmsg", resource, errno: number)
            }
            guard let source = SocketAddress(storage: storage, length: message.msg_namelen) else {
                throw NetError(code: .system, operation: "recvmsg", message: resource, cause: "source is not an IP address")
            }
            if reportsKernelDrops, let drops = readDropCount(controlLength: message.msg_controllen) {
                kernelDropCount = drops
            }
            return ReceivedDatagram(count: min(n, buffer.count), source: source,
                                    truncated: message.msg_flags & Int32(MSG_TRUNC) != 0)
        }
    }

    /// Walks the control messages for `SOL_SOCKET`/`SO_RXQ_OVFL` (a `uint32`). The layout is
    /// `struct cmsghdr { size_t len; int level; int type; }` followed by data, each message
    /// padded to `size_t` alignment (CMSG_ALIGN); the CMSG_* macros are not importable.
    private func readDropCount(controlLength: Int) -> UInt32? {
        let align = MemoryLayout<Int>.size
        func aligned(_ n: Int) -> Int { (n + align - 1) & ~(align - 1) }
        let header = aligned(MemoryLayout<cmsghdr>.size)
        let end = min(controlLength, control.count)
        var offset = 0
        while offset + header <= end {
            let length = control.loadUnaligned(fromByteOffset: offset, as: Int.self)
            let level = control.loadUnaligned(fromByteOffset: offset + align, as: Int32.self)
            let type = control.loadUnaligned(fromByteOffset: offset + align + 4, as: Int32.self)
            guard length >= header, offset + length <= end else { return nil }
            if level == SOL_SOCKET, type == SO_RXQ_OVFL, length >= header + 4 {
                return control.loadUnaligned(fromByteOffset: offset + header, as: UInt32.self)
            }
            offset += aligned(length)
        }
        return nil
    }

    // MARK: - Options

    /// Asks for a receive buffer of `bytes` (`SO_RCVBUF`). Linux doubles the request for its
    /// bookkeeping and caps it at `net.core.rmem_max`; read the result with `receiveBufferSize()`.
    public func setReceiveBufferSize(_ bytes: Int) throws(NetError) {
        try SocketCalls.setOption(openDescriptor("setsockopt"), SOL_SOCKET, SO_RCVBUF, Int32(clamping: bytes),
                                  "setsockopt(SO_RCVBUF)", resource)
    }

    /// The receive buffer size the kernel uses, in bytes.
    public func receiveBufferSize() throws(NetError) -> Int {
        Int(try SocketCalls.option(openDescriptor("getsockopt"), SOL_SOCKET, SO_RCVBUF, "getsockopt(SO_RCVBUF)", resource))
    }

    /// Asks for a send buffer of `bytes` (`SO_SNDBUF`; doubled and capped like the receive buffer).
    public func setSendBufferSize(_ bytes: Int) throws(NetError) {
        try SocketCalls.setOption(openDescriptor("setsockopt"), SOL_SOCKET, SO_SNDBUF, Int32(clamping: bytes),
                                  "setsockopt(SO_SNDBUF)", resource)
    }

    /// The send buffer size the kernel uses, in bytes.
    public func sendBufferSize() throws(NetError) -> Int {
        Int(try SocketCalls.option(openDescriptor("getsockopt"), SOL_SOCKET, SO_SNDBUF, "getsockopt(SO_SNDBUF)", resource))
    }
}
