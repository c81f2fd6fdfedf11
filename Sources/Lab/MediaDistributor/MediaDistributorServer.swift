import KeyExchange
import Net
import Synchronization

/// The Media Distributor on the network: one UDP socket for every endpoint (each source
/// address is one endpoint), and a TLS tunnel to the Key Distributor, pinned to the KD's
/// fingerprint, reconnected with backoff when it drops. Drives a `MediaDistributor` from one
/// poll loop. Run `run()` on a thread of its own; `stop()` ends it.
public final class MediaDistributorServer: @unchecked Sendable {
    public let core: MediaDistributor
    public let localAddress: SocketAddress
    public let kdAddress: SocketAddress
    /// An endpoint silent for this long is forgotten (and the KD told, EndpointDisconnect).
    public let idleTimeout: Duration
    private let socket: UDPSocket
    private let identity: DTLSIdentity
    private let kdFingerprint: DTLSFingerprint
    private let log: (LogLine) -> Void
    private var tunnel: TunnelConnection?
    private var reconnectAt = ContinuousClock.now
    private var backoff: Duration = .milliseconds(200)
    private var idByAddress: [SocketAddress: MediaDistributor.EndpointID] = [:]
    private var addressByID: [MediaDistributor.EndpointID: SocketAddress] = [:]
    private var lastHeard: [MediaDistributor.EndpointID: ContinuousClock.Instant] = [:]
    private var nextID = 1
    private var lastSweep = ContinuousClock.now
    private var buffer = [UInt8](repeating: 0, count: 65_536)
    private let stopping = Atomic<Bool>(false)
    private let lock = Mutex<Void>(())
    public private(set) var tunnelConnects = 0

    public init(core: MediaDistributor, listen: SocketAddress, kd: SocketAddress, kdFingerprint: DTLSFingerprint,
                identity: DTLSIdentity, idleTimeout: Duration = .seconds(10), log: @escaping (LogLine) -> Void) throws(NetError) {
        self.core = core
        kdAddress = kd
        self.kdFingerprint = kdFingerprint
        self.identity = identity
        self.idleTimeout = idleTimeout
        self.log = log
        socket = try UDPSocket(bindingTo: listen)
        try? socket.setReceiveBufferSize(4 << 20)
        localAddress = socket.localAddress
    }

    public func stop() { stopping.store(true, ordering: .relaxed) }
    /// Sees every datagram the MD sends (destination, bytes), on the MD's thread, in order.
    /// Set it before `run()`. Tests use it to check what reached a recorder.
    public nonisolated(unsafe) var onSend: ((SocketAddress, [UInt8]) -> Void)?

    /// Runs `body` with the core while the loop is not touching it (for status and tests).
    public func withCore<R>(_ body: (MediaDistributor) -> R) -> R { lock.withLock { _ in body(core) } }

    public var isTunnelUp: Bool { lock.withLock { _ in tunnel?.isEstablished ?? false } }

    public func run() {
        log(LogLine("md.listening", ["address": localAddress.description, "kd": kdAddress.description,
                                     "fingerprint": identity.fingerprint.description]))
        while !stopping.load(ordering: .relaxed) {
            // Poll without the lock, so `withCore` callers are never starved; handle with it.
            var (poller, wait) = lock.withLock { _ in pollSet() }
            let ready = (try? poller.poll(timeout: wait)) ?? []
            lock.withLock { _ in handle(ready) }
        }
        lock.withLock { _ in
            tunnel?.close()
            tunnel = nil
            socket.close()
        }
        log(LogLine("md.stopped"))
    }

    /// (Re)connects the tunnel when due; returns the descriptors to wait on and for how long.
    private func pollSet() -> (Poller, Duration) {
        let now = ContinuousClock.now
        if tunnel == nil, now >= reconnectAt { connectTunnel() }
        var poller = Poller()
        poller.register(socket.fileDescriptor, interest: .read)
        if let tunnel, !tunnel.isClosed { poller.register(tunnel.fd, interest: tunnel.wantsWrite ? [.read, .write] : .read) }
        var wait: Duration = .milliseconds(50)
        if let next = core.nextTimeout { wait = max(.zero, min(wait, next - now)) }
        return (poller, wait)
    }

    private func handle(_ ready: [PollEvent]) {
        let now = ContinuousClock.now
        for event in ready {
            if event.fd == socket.fileDescriptor {
                readDatagrams()
            } else if let t = tunnel, event.fd == t.fd {
                do {
                    if event.isWritable { try t.handleWritable() }
                    for m in try t.handleReadable() { perform(core.receive(tunnel: m)) }
                    for e in t.takeFramingErrors() { log(LogLine("tunnel.framing_error", ["error": "\(e)"])) }
                    if t.isClosed { tunnelLost("the Key Distributor closed the tunnel") }
                } catch {
                    tunnelLost("\(error)")
                }
            }
        }
        perform(core.handleTimeouts())
        if now - lastSweep > .seconds(1) { sweepIdle(now) }
    }

    private func readDatagrams() {
        for _ in 0 ..< 256 {   // bounded so the tunnel is never starved
            let received: ReceivedDatagram?
            do {
                received = try buffer.withUnsafeMutableBytes { try socket.receive(into: $0, timeout: .zero) }
            } catch { return }
            guard let received else { return }
            let id: MediaDistributor.EndpointID
            if let known = idByAddress[received.source] {
                id = known
            } else {
                guard idByAddress.count < core.config.maximumEndpoints else { continue }
                id = nextID
                nextID += 1
                idByAddress[received.source] = id
                addressByID[id] = received.source
                log(LogLine("endpoint.new", ["endpoint": "\(id)", "address": received.source.description]))
            }
            lastHeard[id] = .now
            perform(core.receive(datagram: Array(buffer[0 ..< received.count]), from: id))
        }
    }

    private func perform(_ actions: [MediaDistributor.Action]) {
        for action in actions {
            switch action {
            case let .udp(id, bytes):
                guard let address = addressByID[id] else { continue }
                onSend?(address, bytes)
                try? socket.send(bytes, to: address)
            case let .tunnel(message):
                guard let tunnel else { continue }
                do { try tunnel.send(message) } catch { tunnelLost("\(error)") }
            }
        }
    }

    private func connectTunnel() {
        do {
            let t = try TunnelConnection.connect(to: kdAddress, identity: identity, pinnedPeers: [kdFingerprint], timeout: .seconds(2))
            tunnel = t
            tunnelConnects += 1
            backoff = .milliseconds(200)
            log(LogLine("tunnel.connected", ["kd": kdAddress.description, "fingerprint": kdFingerprint.description]))
            perform(core.start())
        } catch {
            log(LogLine("tunnel.connect_failed", ["kd": kdAddress.description, "error": "\(error)", "retry_in": "\(backoff)"]))
            reconnectAt = .now + backoff
            backoff = min(backoff * 2, .seconds(5))
        }
    }

    private func tunnelLost(_ reason: String) {
        log(LogLine("tunnel.lost", ["reason": reason]))
        tunnel?.close()
        tunnel = nil
        reconnectAt = .now + backoff
    }

    private func sweepIdle(_ now: ContinuousClock.Instant) {
        lastSweep = now
        for (id, heard) in lastHeard where now - heard > idleTimeout {
            lastHeard[id] = nil
            if let address = addressByID.removeValue(forKey: id) { idByAddress[address] = nil }
            log(LogLine("endpoint.idle", ["endpoint": "\(id)"]))
            perform(core.endpointGone(id))
        }
    }
}
