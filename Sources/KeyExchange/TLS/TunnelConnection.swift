import Net

/// Why a tunnel connection operation failed.
public enum TunnelConnectionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The socket failed (connect refused, reset, …).
    case network(NetError)
    /// TLS failed: the peer is not pinned, refused us, or broke the protocol.
    case tls(TLSError)
    /// A blocking helper's deadline passed while waiting for `what`.
    case timedOut(String)
    /// The peer closed the TCP connection before the TLS handshake completed.
    case closedDuringHandshake
    /// The connection was already closed (by `close()`, the peer or an earlier error).
    case closed

    public var description: String {
        switch self {
        case let .network(error): "tunnel socket: \(error)"
        case let .tls(error): "tunnel TLS: \(error)"
        case let .timedOut(what): "timed out waiting for \(what)"
        case .closedDuringHandshake: "the peer closed the tunnel connection during the TLS handshake"
        case .closed: "the tunnel connection is closed"
        }
    }
}

/// One TLS connection of the DTLS tunnel between a Media Distributor (TLS client) and a Key
/// Distributor (TLS server), draft-ietf-perc-dtls-tunnel-12 §5.1: a connected `TCPStream`,
/// a pinned `TLSStream` and a `TunnelFramer`, made for a poll loop.
///
/// Register `fd` for reading (and for writing while `wantsWrite`), then call
/// `handleReadable()` / `handleWritable()` when poll says so. `send(_:)` encrypts at once and
/// writes what the socket takes; the rest waits for `handleWritable()`. Messages sent before
/// the handshake completes are queued and go out right after it.
///
/// Malformed frames do not end the connection: the framer skips exactly the bad frame
/// (`TunnelFramer`), and the error is kept in `framingErrors` for the caller to log or act on
/// (a Key Distributor answers an unsupported version with UnsupportedVersion, §5.5). TLS and
/// socket errors do end it: the TLS alert is sent if the socket takes it, and the state becomes
/// closed. The socket itself stays open until `close()`, so the descriptor the caller
/// registered remains valid until the caller removes it.
///
/// Decrypted plaintext is wiped once the framer has it (MediaKeys carry keys); the framer's
/// own buffer is not under this type's control. Not thread-safe: one owner.
public final class TunnelConnection {
    /// Where the connection is in its life.
    public enum State: Sendable, Equatable {
        case handshaking, established, closed
    }

    public let role: TLSRole
    public let localAddress: SocketAddress
    public let peerAddress: SocketAddress
    public private(set) var state: State = .handshaking
    /// Frames the framer refused since the last `takeFramingErrors()`, oldest first.
    public private(set) var framingErrors: [TunnelError] = []
    /// After the peer closed: whether it sent close_notify first (false: TCP end of stream
    /// only, so the last messages may be truncated). Nil while the peer has not closed.
    public private(set) var peerClosedCleanly: Bool?

    private let stream: TCPStream
    private let tls: TLSStream
    private var framer: TunnelFramer
    /// Ciphertext not yet taken by the socket, from `outgoingOffset` on.
    private var outgoing: [UInt8] = []
    private var outgoingOffset = 0
    /// Plaintext of messages sent before the handshake completed.
    private var queuedPlaintext: [UInt8] = []
    /// Messages received while a blocking helper waited, returned by the next read.
    private var inbox: [TunnelMessage] = []
    /// An error that ended the connection after messages were decoded in the same read; the
    /// next `handleReadable()` throws it.
    private var pendingError: TunnelConnectionError?
    /// Ciphertext read buffer, reused.
    private var readBuffer = [UInt8](repeating: 0, count: 65_536)
    /// At most this much is read per `handleReadable()`, so one busy peer cannot starve a loop.
    private static let readBudget = 1 << 20

    /// Wraps a connected stream and starts the TLS handshake (a client's ClientHello is written
    /// at once). The connection owns `stream` from now on.
    public init(stream: TCPStream, role: TLSRole, identity: DTLSIdentity, pinnedPeers: Set<DTLSFingerprint>,
                maximumMessageLength: Int = TunnelMessage.maximumMessageLength) throws(TunnelConnectionError) {
        do {
            tls = try TLSStream(role: role, identity: identity, pinnedPeers: pinnedPeers)
        } catch {
            throw .tls(error)
        }
        self.stream = stream
        self.role = role
        localAddress = stream.localAddress
        peerAddress = stream.peerAddress
        framer = TunnelFramer(maximumMessageLength: maximumMessageLength)
        do {
            enqueue(try tls.start())
        } catch {
            state = .closed
            throw .tls(error)
        }
        try flushNow()
    }

    deinit {
        TLSStream.cleanse(&queuedPlaintext)
    }

    // MARK: - Poll loop interface

    /// The socket descriptor to poll; -1 after `close()`.
    public var fd: Int32 { stream.fileDescriptor }
    /// Ciphertext is waiting for the socket: poll `fd` for writing too.
    public var wantsWrite: Bool { state != .closed && outgoingOffset < outgoing.count && !stream.isClosed }
    public var isEstablished: Bool { state == .established }
    public var isClosed: Bool { state == .closed }
    /// The peer's certificate fingerprint, once the handshake completed.
    public var peerFingerprint: DTLSFingerprint? { tls.negotiation?.peerFingerprint }
    /// TLS version and cipher suite, once the handshake completed.
    public var negotiation: TLSNegotiation? { tls.negotiation }
    /// Ciphertext bytes waiting for the socket (back pressure: stop sending when this grows).
    public var pendingWriteByteCount: Int { outgoing.count - outgoingOffset }

    /// Reads what the socket has (up to 1 MiB per call), runs it through TLS and the framer,
    /// and returns the complete messages in order. Framing errors go to `framingErrors`. When
    /// the peer closes, returns the last messages and the state becomes `.closed`. A TLS or
    /// socket error closes the connection too and is thrown, by this call if it decoded no
    /// message, else by the next one (so messages read before the error are not lost).
    public func handleReadable() throws(TunnelConnectionError) -> [TunnelMessage] {
        var messages = inbox
        inbox = []
        guard state != .closed else {
            if !messages.isEmpty { return messages }
            let error = pendingError ?? .closed
            pendingError = nil
            throw error
        }
        do throws(TunnelConnectionError) {
            try readAvailable(into: &messages)
        } catch {
            guard messages.isEmpty else {
                pendingError = error
                return messages
            }
            throw error
        }
        return messages
    }

    /// Writes queued ciphertext until the socket would block.
    public func handleWritable() throws(TunnelConnectionError) {
        try flushNow()
    }

    /// Sends one message (queued until the handshake completes).
    public func send(_ message: TunnelMessage) throws(TunnelConnectionError) {
        var plaintext = message.serialized()
        defer { TLSStream.cleanse(&plaintext) }
        try send(plaintext: plaintext)
    }

    /// Sends several messages in one TLS write (fewer, fuller records than one call each).
    public func send(_ messages: [TunnelMessage]) throws(TunnelConnectionError) {
        var plaintext: [UInt8] = []
        plaintext.reserveCapacity(messages.reduce(0) { $0 + $1.serializedSize })
        for message in messages { message.write(to: &plaintext) }
        defer { TLSStream.cleanse(&plaintext) }
        try send(plaintext: plaintext)
    }

    /// Sends close_notify if the socket takes it now, then closes the socket. Idempotent.
    public func close() {
        if !stream.isClosed {
            enqueue(tls.close())   // close_notify once; nothing after a TLS failure
            try? flushNow()
            stream.close()
        }
        state = .closed
        TLSStream.cleanse(&queuedPlaintext)
    }

    /// Returns and forgets the framing errors recorded so far.
    public func takeFramingErrors() -> [TunnelError] {
        defer { framingErrors = [] }
        return framingErrors
    }

    // MARK: - Blocking conveniences (tests and simple tools)

    /// Connects to a Key Distributor at `address` and completes the TLS handshake within
    /// `timeout`. In TLS 1.3 the server checks the client certificate after the client has
    /// finished, so a server that refuses this client shows up as `.tls(.peerAlert)` on the
    /// first read, not here.
    public static func connect(to address: SocketAddress, identity: DTLSIdentity, pinnedPeers: Set<DTLSFingerprint>,
                               timeout: Duration) throws(TunnelConnectionError) -> TunnelConnection {
        let deadline = ContinuousClock.now + timeout
        let stream: TCPStream
        do {
            stream = try TCPStream.connect(to: address, timeout: timeout)
        } catch {
            throw .network(error)
        }
        let connection = try TunnelConnection(stream: stream, role: .client, identity: identity, pinnedPeers: pinnedPeers)
        try connection.completeHandshake(by: deadline, waitingFor: "the TLS handshake with \(address)")
        return connection
    }

    /// Accepts one connection on `listener` and completes the TLS handshake as the server,
    /// both within `timeout`. A peer that fails the handshake is closed and its error thrown.
    public static func accept(from listener: TCPListener, identity: DTLSIdentity, pinnedPeers: Set<DTLSFingerprint>,
                              timeout: Duration) throws(TunnelConnectionError) -> TunnelConnection {
        let deadline = ContinuousClock.now + timeout
        let accepted: TCPStream?
        do {
            accepted = try listener.accept(timeout: timeout)
        } catch {
            throw .network(error)
        }
        guard let stream = accepted else { throw .timedOut("a tunnel connection on \(listener.localAddress)") }
        let connection = try TunnelConnection(stream: stream, role: .server, identity: identity, pinnedPeers: pinnedPeers)
        try connection.completeHandshake(by: deadline, waitingFor: "the TLS handshake with \(stream.peerAddress)")
        return connection
    }

    /// Waits up to `timeout` for at least one message (writing pending output meanwhile).
    /// Returns them, or an empty array on timeout or once the peer has closed.
    public func receive(timeout: Duration) throws(TunnelConnectionError) -> [TunnelMessage] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let messages = try handleReadable()
            if !messages.isEmpty || isClosed { return messages }
            guard try wait(until: deadline) else { return [] }
        }
    }

    /// Waits up to `timeout` until every queued byte is with the socket. Reads meanwhile (TLS
    /// may need to answer); messages read are kept for the next `handleReadable()`.
    public func flush(timeout: Duration) throws(TunnelConnectionError) {
        let deadline = ContinuousClock.now + timeout
        while wantsWrite || (state == .handshaking && !queuedPlaintext.isEmpty) {
            guard try wait(until: deadline) else { throw .timedOut("\(pendingWriteByteCount) bytes to reach \(peerAddress)") }
            inbox += try handleReadable()
        }
        guard state != .closed || outgoingOffset == outgoing.count else { throw .closed }
    }

    // MARK: - Internals

    /// The body of `handleReadable()`: read, decrypt, frame until the socket would block, the
    /// budget is spent or the connection ends.
    private func readAvailable(into messages: inout [TunnelMessage]) throws(TunnelConnectionError) {
        var budget = TunnelConnection.readBudget
        reading: while budget > 0, state != .closed {
            let result: TCPReadResult
            do {
                result = try readBuffer.withUnsafeMutableBytes { raw in
                    Result { () throws(NetError) in try stream.read(into: raw) }
                }.get()
            } catch {
                abort()
                throw .network(error)
            }
            switch result {
            case .wouldBlock:
                break reading
            case .endOfStream:
                try peerEnded()
                break reading
            case let .read(n):
                budget -= n
                let output: TLSOutput
                do {
                    output = try readBuffer.withUnsafeBytes { raw in
                        Result { () throws(TLSError) in try tls.receive(UnsafeRawBufferPointer(rebasing: raw[..<n])) }
                    }.get()
                } catch {
                    enqueue(tls.drainOutgoing())   // the alert, if any
                    try? flushNow()
                    abort()
                    throw .tls(error)
                }
                try absorb(output, into: &messages)
            }
        }
        // After the peer closed, its socket may be gone: what does not go out is moot.
        if state == .closed { try? flushNow() } else { try flushNow() }
    }

    /// Sends bytes as if they were serialized messages (internal: tests use it for malformed frames).
    func send(plaintext: [UInt8]) throws(TunnelConnectionError) {
        switch state {
        case .closed:
            throw .closed
        case .handshaking:
            queuedPlaintext.append(contentsOf: plaintext)
        case .established:
            do {
                enqueue(try tls.send(plaintext))
            } catch {
                abort()
                throw .tls(error)
            }
            try flushNow()
        }
    }

    /// Hands TLS output on: bytes to the socket queue, plaintext to the framer (then wiped),
    /// events to the state.
    private func absorb(_ output: TLSOutput, into messages: inout [TunnelMessage]) throws(TunnelConnectionError) {
        var output = output
        enqueue(output.toSend)
        if !output.plaintext.isEmpty {
            framer.append(output.plaintext)
            TLSStream.cleanse(&output.plaintext)
        }
        while true {
            do {
                guard let message = try framer.next() else { break }
                messages.append(message)
            } catch {
                framingErrors.append(error)   // the framer dropped exactly that frame
            }
        }
        for event in output.events {
            switch event {
            case .handshakeCompleted:
                state = .established
                if !queuedPlaintext.isEmpty {
                    var queued: [UInt8] = []
                    swap(&queued, &queuedPlaintext)   // unique storage, so the wipe reaches it
                    defer { TLSStream.cleanse(&queued) }
                    do {
                        enqueue(try tls.send(queued))
                    } catch {
                        abort()
                        throw .tls(error)
                    }
                }
            case .peerClosed:
                peerClosedCleanly = true
                enqueue(tls.close())   // answer close_notify
                try? flushNow()
                try? stream.shutdownWrite()
                state = .closed
            }
        }
    }

    /// TCP end of stream from the peer.
    private func peerEnded() throws(TunnelConnectionError) {
        let wasHandshaking = state == .handshaking
        if peerClosedCleanly == nil { peerClosedCleanly = false }
        state = .closed
        if wasHandshaking { throw .closedDuringHandshake }
    }

    /// A fatal error: nothing more is sent or read.
    private func abort() {
        state = .closed
        TLSStream.cleanse(&queuedPlaintext)
    }

    private func enqueue(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if outgoingOffset > 0 && outgoingOffset * 2 >= outgoing.count {
            outgoing.removeFirst(outgoingOffset)
            outgoingOffset = 0
        }
        outgoing.append(contentsOf: bytes)
    }

    /// Writes until done or the socket would block.
    private func flushNow() throws(TunnelConnectionError) {
        while outgoingOffset < outgoing.count, !stream.isClosed {
            let result: TCPWriteResult
            do {
                result = try stream.write(outgoing[outgoingOffset...])
            } catch {
                abort()
                throw .network(error)
            }
            guard case let .wrote(n) = result else { return }
            outgoingOffset += n
        }
        if outgoingOffset == outgoing.count {
            outgoing.removeAll(keepingCapacity: outgoing.capacity <= 1 << 20)
            outgoingOffset = 0
        }
    }

    /// Drives reads and writes until the handshake completes or `deadline` passes; on failure
    /// the connection is closed and the error thrown.
    private func completeHandshake(by deadline: ContinuousClock.Instant, waitingFor what: String) throws(TunnelConnectionError) {
        do throws(TunnelConnectionError) {
            while state == .handshaking {
                guard try wait(until: deadline) else { throw .timedOut(what) }
                inbox += try handleReadable()
                try handleWritable()
            }
            if state == .closed { throw .closed }
        } catch {
            close()
            throw error
        }
    }

    /// Polls `fd` for reading (and writing while output waits); false if `deadline` passed.
    private func wait(until deadline: ContinuousClock.Instant) throws(TunnelConnectionError) -> Bool {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { return false }
        let ready: PollReadiness
        do {
            ready = try Poller.wait(for: fd, interest: wantsWrite ? [.read, .write] : .read, timeout: left)
        } catch {
            throw .network(error)
        }
        if ready.contains(.writable) { try flushNow() }
        return !ready.isEmpty
    }
}
