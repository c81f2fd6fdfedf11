import KeyExchange
import Net
import RTPWire
import Synchronization

/// Produces a participant's outgoing RTP (and RTCP) on a schedule: the lab's synthetic
/// Opus/VP8 sources, or simple generators in tests.
public protocol MediaGenerator: AnyObject {
    /// When the next packets are due; nil when nothing is scheduled.
    var nextDue: ContinuousClock.Instant? { get }
    /// The packets due at `now` (RTP, plaintext, header extensions included).
    func packets(now: ContinuousClock.Instant) -> [RTPPacket]
    /// RTCP compound packets due at `now` (SR, SDES), plaintext.
    func rtcp(now: ContinuousClock.Instant) -> [[UInt8]]
    /// The MD or a receiver asked for a key frame on `ssrc`.
    func keyFrameRequested(ssrc: UInt32)
    /// The key changed: start a new sender report cycle, if the generator cares.
    func rekeyed()
}

/// One participant on a real UDP socket: a `ParticipantSession` talking to the Media
/// Distributor, fed by an optional `MediaGenerator`, driven by its own poll loop. Received
/// media goes to `onMedia` (on the loop's thread).
public final class ParticipantRunner: @unchecked Sendable {
    public let session: ParticipantSession
    public let mediaDistributor: SocketAddress
    private let socket: UDPSocket
    private let generator: MediaGenerator?
    private let stopping = Atomic<Bool>(false)
    private let leaving = Atomic<Bool>(false)
    private let lock = Mutex<Void>(())
    private var buffer = [UInt8](repeating: 0, count: 65_536)
    public var onMedia: ((RTPPacket, ContinuousClock.Instant) -> Void)?
    public var onEvent: ((ParticipantEvent) -> Void)?
    public private(set) var sentPackets = 0
    public private(set) var receivedPackets = 0
    public private(set) var sendErrors = 0
    /// RTCP compound packets from other participants (SR, SDES), opened hop by hop.
    public private(set) var rtcpReceived = 0

    public init(session: ParticipantSession, mediaDistributor: SocketAddress, generator: MediaGenerator? = nil) throws(NetError) {
        self.session = session
        self.mediaDistributor = mediaDistributor
        self.generator = generator
        socket = try UDPSocket(bindingTo: .loopback(mediaDistributor.family, port: 0))
        try? socket.setReceiveBufferSize(2 << 20)
    }

    public var localAddress: SocketAddress { socket.localAddress }
    public func stop() { stopping.store(true, ordering: .relaxed) }
    /// Sends close_notify to the KD (a leave) and stops.
    public func leave() { leaving.store(true, ordering: .relaxed) }
    public func withSession<R>(_ body: (ParticipantSession) -> R) -> R { lock.withLock { _ in body(session) } }

    public func run() {
        lock.withLock { _ in
            do { send(try session.start()) } catch { onEvent?(.closed) }
        }
        while !stopping.load(ordering: .relaxed) {
            if leaving.load(ordering: .relaxed) {
                lock.withLock { _ in send(session.leave()) }
                break
            }
            // Wait without the lock, so `withSession` callers are never starved.
            let wait = lock.withLock { _ in nextWait() }
            let readable = (try? Poller.wait(for: socket.fileDescriptor, interest: .read, timeout: wait))?.contains(.readable) == true
            lock.withLock { _ in step(readable: readable) }
        }
        socket.close()
    }

    private func nextWait() -> Duration {
        let now = ContinuousClock.now
        var wait: Duration = .milliseconds(20)
        for due in [session.nextTimeout, session.isReady ? generator?.nextDue : nil] {
            if let due { wait = max(.zero, min(wait, due - now)) }
        }
        return wait
    }

    private func step(readable: Bool) {
        if readable {
            for _ in 0 ..< 256 {
                let received = try? buffer.withUnsafeMutableBytes { try socket.receive(into: $0, timeout: .zero) }
                guard let r = received ?? nil else { break }
                let (replies, events) = session.receive(datagram: Array(buffer[0 ..< r.count]), now: .now)
                send(replies)
                for e in events { handle(e) }
            }
        }
        let later = ContinuousClock.now
        if let due = session.nextTimeout, later >= due {
            do { send(try session.handleTimeout(now: later)) } catch { onEvent?(.closed) }
        }
        // Read the clock after asking: a generator that has not started says "due now".
        guard session.isReady, let generator, let due = generator.nextDue else { return }
        let now = ContinuousClock.now
        guard now >= due else { return }
        for packet in generator.packets(now: now) {
            do {
                try socket.send(try session.protect(packet), to: mediaDistributor)
                sentPackets += 1
            } catch { sendErrors += 1 }
        }
        for compound in generator.rtcp(now: now) {
            if let bytes = try? session.protectRTCP(compound) { try? socket.send(bytes, to: mediaDistributor) }
        }
    }

    private func handle(_ event: ParticipantEvent) {
        switch event {
        case let .media(packet, arrival):
            receivedPackets += 1
            onMedia?(packet, arrival)
        case let .keyFrameRequested(ssrc):
            generator?.keyFrameRequested(ssrc: ssrc)
        case .rekeyed:
            generator?.rekeyed()
        case .rtcp:
            rtcpReceived += 1
        default:
            break
        }
        onEvent?(event)
    }

    private func send(_ datagrams: [[UInt8]]) {
        for d in datagrams { try? socket.send(d, to: mediaDistributor) }
    }
}
