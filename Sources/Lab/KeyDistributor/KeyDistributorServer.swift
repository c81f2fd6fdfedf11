import KeyExchange
import Net
import Synchronization

/// The Key Distributor on the network: a TCP listener for Media Distributors' tunnel
/// connections (TLS, both sides pinned: the KD accepts only the configured MD fingerprints),
/// driving a `KeyDistributor` from one poll loop. Run `run()` on a thread of its own; `stop()`
/// from anywhere ends it.
public final class KeyDistributorServer: @unchecked Sendable {
    public let core: KeyDistributor
    public let localAddress: SocketAddress
    private let listener: TCPListener
    private let identity: DTLSIdentity
    private let mediaDistributors: Set<DTLSFingerprint>
    private let log: (LogLine) -> Void
    private var tunnels: [KeyDistributor.TunnelID: TunnelConnection] = [:]
    private var nextTunnel = 1
    private let stopping = Atomic<Bool>(false)
    private let lock = Mutex<Void>(())

    /// Binds the listener now (so `localAddress` is known, port 0 allowed).
    public init(core: KeyDistributor, listen: SocketAddress, mediaDistributors: Set<DTLSFingerprint>,
                log: @escaping (LogLine) -> Void) throws(NetError) {
        self.core = core
        identity = core.identity
        self.mediaDistributors = mediaDistributors
        self.log = log
        listener = try TCPListener(bindingTo: listen)
        localAddress = listener.localAddress
    }

    public func stop() { stopping.store(true, ordering: .relaxed) }

    /// Runs `body` with the core while the loop is not touching it (for status and tests).
    public func withCore<R>(_ body: (KeyDistributor) -> R) -> R { lock.withLock { _ in body(core) } }

    /// Serves until `stop()`.
    public func run() {
        log(LogLine("kd.listening", ["address": localAddress.description, "fingerprint": identity.fingerprint.description,
                                     "media_distributors": "\(mediaDistributors.count)"]))
        while !stopping.load(ordering: .relaxed) {
            // Poll without the lock, so `withCore` callers are never starved; handle with it.
            var poller = lock.withLock { _ in pollSet() }
            let wait = lock.withLock { _ in core.nextTimeout.map { max(.zero, min(.milliseconds(50), $0 - .now)) } ?? .milliseconds(50) }
            let ready: [PollEvent]
            do { ready = try poller.poll(timeout: wait) } catch {
                log(LogLine("kd.poll_error", ["error": "\(error)"]))
                continue
            }
            lock.withLock { _ in handle(ready) }
        }
        lock.withLock { _ in
            for (id, t) in tunnels { _ = core.tunnelClosed(id); t.close() }
            tunnels = [:]
            listener.close()
        }
        log(LogLine("kd.stopped"))
    }

    /// The descriptors to wait on: the listener and every open tunnel.
    private func pollSet() -> Poller {
        var poller = Poller()
        poller.register(listener.fileDescriptor, interest: .read)
        for t in tunnels.values where !t.isClosed {
            poller.register(t.fd, interest: t.wantsWrite ? [.read, .write] : .read)
        }
        return poller
    }

    /// Handles what poll reported ready, then the timers that are due.
    private func handle(_ ready: [PollEvent]) {
        for event in ready {
            if event.fd == listener.fileDescriptor { acceptAll(); continue }
            guard let (id, tunnel) = tunnels.first(where: { $0.value.fd == event.fd }) else { continue }
            if event.isWritable {
                do { try tunnel.handleWritable() } catch { drop(id, tunnel, reason: "\(error)"); continue }
            }
            if event.isReadable || !event.readiness.isEmpty {
                let wasEstablished = tunnel.isEstablished
                do {
                    let messages = try tunnel.handleReadable()
                    if !wasEstablished, tunnel.isEstablished {
                        log(LogLine("tunnel.established", ["tunnel": "\(id)", "peer": tunnel.peerAddress.description,
                                                           "fingerprint": tunnel.peerFingerprint?.description ?? "?"]))
                    }
                    for e in tunnel.takeFramingErrors() { log(LogLine("tunnel.framing_error", ["tunnel": "\(id)", "error": "\(e)"])) }
                    for m in messages { send(core.receive(m, on: id)) }
                    if tunnel.isClosed { drop(id, tunnel, reason: "the Media Distributor closed the tunnel") }
                } catch {
                    drop(id, tunnel, reason: "\(error)")
                }
            }
        }
        send(core.handleTimeouts())
    }

    private func acceptAll() {
        while true {
            let stream: TCPStream?
            do { stream = try listener.accept() } catch {
                log(LogLine("kd.accept_error", ["error": "\(error)"]))
                return
            }
            guard let stream else { return }
            do {
                let tunnel = try TunnelConnection(stream: stream, role: .server, identity: identity, pinnedPeers: mediaDistributors)
                tunnels[nextTunnel] = tunnel
                log(LogLine("tunnel.accepted", ["tunnel": "\(nextTunnel)", "peer": stream.peerAddress.description]))
                nextTunnel += 1
            } catch {
                log(LogLine("tunnel.refused", ["peer": stream.peerAddress.description, "error": "\(error)"]))
                stream.close()
            }
        }
    }

    private func send(_ outgoing: [KeyDistributor.Outgoing]) {
        for o in outgoing {
            guard let tunnel = tunnels[o.tunnel] else { continue }
            do { try tunnel.send(o.message) } catch { drop(o.tunnel, tunnel, reason: "\(error)") }
        }
    }

    private func drop(_ id: KeyDistributor.TunnelID, _ tunnel: TunnelConnection, reason: String) {
        guard tunnels.removeValue(forKey: id) != nil else { return }
        log(LogLine("tunnel.closed", ["tunnel": "\(id)", "reason": reason]))
        tunnel.close()
        send(core.tunnelClosed(id))
    }
}
