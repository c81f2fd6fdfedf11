import Archive
import Authority
import Foundation
import KeyExchange
import Net
import Synchronization

/// How a recording ended.
public enum RecorderOutcome: Sendable, Equatable {
    /// The conference ended (everyone left, or the KD closed the association).
    case conferenceEnded(reason: String)
    /// `stop()` was called (a signal).
    case stopped
}

/// `percrec record` for one conference on a real UDP socket: runs `RecorderSession`s against
/// the Media Distributor, each a new archive segment, until the conference ends or `stop()`.
/// A session that fails (MD or KD restarted or silent, DTLS failed) is closed and a new one
/// starts after a backoff that doubles from 1 s to 30 s, and resets once a session has
/// recorded for 30 s. Logs are structured `LogLine`s.
public final class RecorderRunner: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var mediaDistributor: SocketAddress
        public var kdFingerprint: DTLSFingerprint
        public var identity: DTLSIdentity
        public var conference: String
        public var authority: AuthorityPublicKey
        public var session = RecorderSession.Options()
        public var segment = SegmentWriter.Options()
        public var initialBackoff: Duration = .seconds(1)
        public var maximumBackoff: Duration = .seconds(30)
        /// Kernel receive buffer for the media socket (the kernel caps it at net.core.rmem_max):
        /// at 160k datagrams/s, a 300 ms stall in a commit queues about 64 MB.
        public var receiveBufferBytes = 128 << 20

        public init(mediaDistributor: SocketAddress, kdFingerprint: DTLSFingerprint, identity: DTLSIdentity,
                    conference: String, authority: AuthorityPublicKey) {
            self.mediaDistributor = mediaDistributor
            self.kdFingerprint = kdFingerprint
            self.identity = identity
            self.conference = conference
            self.authority = authority
        }
    }

    public let configuration: Configuration
    public let archive: Archive
    private let log: @Sendable (LogLine) -> Void
    private let stopping = Atomic<Bool>(false)
    private let lock = Mutex<Void>(())
    private var current: RecorderSession?
    /// Every datagram received from the MD, before processing, with its arrival time and the
    /// session's local address (pcap capture, tests). Called on the loop's thread, under its
    /// lock: it must not call back into the runner.
    public var onDatagram: ((UnsafeRawBufferPointer, Double, SocketAddress) -> Void)?
    public private(set) var sessions = 0
    /// The current session's local UDP address (nil between sessions).
    public var localAddress: SocketAddress? { lock.withLock { _ in currentAddress } }
    private var currentAddress: SocketAddress?
    /// Totals over finished sessions.
    public private(set) var totalStored = 0
    public private(set) var totalDrops = RecorderDrops()

    public init(configuration: Configuration, archive: Archive, log: @escaping @Sendable (LogLine) -> Void = { _ in }) {
        self.configuration = configuration
        self.archive = archive
        self.log = log
    }

    public func stop() { stopping.store(true, ordering: .relaxed) }
    public var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Runs `body` with the current session (nil between sessions), under the loop's lock.
    public func withSession<R>(_ body: (RecorderSession?) -> R) -> R { lock.withLock { _ in body(current) } }

    /// Records until the conference ends or `stop()`. Blocks the calling thread.
    public func run() -> RecorderOutcome {
        var backoff = configuration.initialBackoff
        while !isStopping {
            let started = ContinuousClock.now
            let result = runSession()
            switch result {
            case let .ended(reason):
                return .conferenceEnded(reason: reason)
            case .stopped:
                return .stopped
            case let .failed(reason):
                if ContinuousClock.now - started > .seconds(30) { backoff = configuration.initialBackoff }
                log(LogLine("recorder.rejoin", ["conference": configuration.conference, "reason": reason, "backoff": "\(backoff)"]))
                sleep(backoff)
                backoff = min(backoff * 2, configuration.maximumBackoff)
            }
        }
        return .stopped
    }

    private enum SessionResult { case ended(String), stopped, failed(String) }

    private func runSession() -> SessionResult {
        let c = configuration
        let socket: UDPSocket, writer: SegmentWriter, session: RecorderSession
        do {
            socket = try UDPSocket(bindingTo: c.mediaDistributor.isLoopback ? .loopback(c.mediaDistributor.family, port: 0)
                                                                             : .any(c.mediaDistributor.family), reportsKernelDrops: true)
            try? socket.setReceiveBufferSize(c.receiveBufferBytes)
            writer = try SegmentWriter(archive: archive, conference: c.conference, origin: .live(recorder: "\(c.identity.fingerprint)"),
                                       authorityKeyID: c.authority.keyID, options: c.segment)
            session = try RecorderSession(identity: c.identity, kdFingerprint: c.kdFingerprint, conference: c.conference,
                                          authority: c.authority, writer: writer, options: c.session)
        } catch {
            return .failed("cannot start a session: \(error)")
        }
        defer { socket.close() }
        lock.withLock { _ in current = session; currentAddress = socket.localAddress; sessions += 1 }
        log(LogLine("recorder.session.start", ["conference": c.conference, "segment": "\(writer.segmentID)",
                                                "md": "\(c.mediaDistributor)", "local": "\(socket.localAddress)"]))
        send(lock.withLock { _ in session.start() }, on: socket)

        var buffer = [UInt8](repeating: 0, count: 65_536)
        var lastStatus = RecorderStatus.connecting
        var result: SessionResult?
        while result == nil {
            if isStopping { result = .stopped; break }
            let wait = lock.withLock { _ in session.nextTimeout }.map { max(.zero, min($0 - .now, .milliseconds(50))) } ?? .milliseconds(50)
            // Wait without the lock, then drain what is queued (bounded) under it.
            _ = try? Poller.wait(for: socket.fileDescriptor, interest: .read, timeout: wait)
            lock.withLock { _ in
                var replies: [[UInt8]] = []
                for _ in 0 ..< 512 {
                    let got: ReceivedDatagram?
                    do {
                        got = try buffer.withUnsafeMutableBytes { (raw) throws(NetError) in try socket.receive(into: raw, timeout: .zero) }
                    } catch { break }
                    guard let got else { break }
                    guard got.source == c.mediaDistributor else { continue }   // only the MD may feed us
                    let arrival = Date().timeIntervalSince1970
                    buffer.withUnsafeMutableBytes { raw in
                        let d = UnsafeMutableRawBufferPointer(rebasing: raw[0 ..< got.count])
                        onDatagram?(UnsafeRawBufferPointer(d), arrival, socket.localAddress)
                        replies += session.receive(d, arrival: arrival)
                    }
                }
                replies += session.handleTimeout()
                send(replies, on: socket)
                let status = session.status
                if status != lastStatus {
                    lastStatus = status
                    switch status {
                    case .recording:
                        log(LogLine("recorder.keyed", ["conference": c.conference, "segment": "\(writer.segmentID)"]))
                    case let .ended(reason): result = .ended(reason)
                    case let .failed(reason): result = .failed(reason)
                    case .connecting: break
                    }
                }
            }
        }
        let reason: String
        switch result {
        case let .ended(r)?: reason = "conference ended: \(r)"
        case let .failed(r)?: reason = "rejoining: \(r)"
        default: reason = "stopped by signal"
        }
        lock.withLock { _ in
            send(session.finish(reason: reason), on: socket)
            totalStored += session.receiver?.storedPackets ?? 0
            totalDrops.add(session.drops)
            current = nil
            currentAddress = nil
        }
        log(LogLine("recorder.session.end", ["conference": c.conference, "segment": "\(writer.segmentID)", "reason": reason,
                                              "packets": "\(writer.committedPackets)", "rtcp": "\(writer.committedRTCP)",
                                              "epochs": "\(session.epochsSealed)", "drops": "\(session.drops.total)",
                                              "kernel_drops": "\(socket.kernelDropCount ?? 0)"]))
        return result ?? .stopped
    }

    private func send(_ datagrams: [[UInt8]], on socket: UDPSocket) {
        for d in datagrams { try? socket.send(d, to: configuration.mediaDistributor) }
    }

    /// Sleeps up to `duration`, waking early on `stop()`.
    private func sleep(_ duration: Duration) {
        let end = ContinuousClock.now + duration
        while !isStopping, ContinuousClock.now < end { Thread.sleep(forTimeInterval: 0.05) }
    }
}
