import Dispatch
import Foundation
import KeyExchange
@testable import Lab
import Net
import Synchronization
import Testing
import TestSupport

// The key plane over real sockets: `KeyDistributorServer` behind a TLS tunnel (pinned both
// ways), `MediaDistributorServer` relaying each endpoint's DTLS over UDP, endpoints on their
// own UDP sockets.

/// Runs `body` on a new thread; `wait()` joins it.
final class Background: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    init(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [done] in body(); done.signal() }
        thread.name = name
        thread.start()
    }
    func wait(timeout: Duration = .seconds(10)) -> Bool {
        done.wait(timeout: .now() + .milliseconds(Int(timeout.components.seconds * 1000))) == .success
    }
}

/// Participants started so far, for cleanup.
final class Started: @unchecked Sendable {
    private let lock = NSLock()
    private var r: [ParticipantRunner] = [], t: [Background] = []
    func add(_ runner: ParticipantRunner, _ thread: Background) { lock.withLock { r.append(runner); t.append(thread) } }
    var runners: [ParticipantRunner] { lock.withLock { r } }
    var threads: [Background] { lock.withLock { t } }
}

final class LogSink: @unchecked Sendable {
    private let lines = Mutex<[LogLine]>([])
    func append(_ line: LogLine) { lines.withLock { $0.append(line) } }
    var all: [LogLine] { lines.withLock { $0 } }
}

@Suite("Key plane over loopback: KD server, TLS tunnel, MD server, UDP endpoints", .serialized)
struct LoopbackKeyPlaneTests {
    struct Setup {
        let kd: KeyDistributorServer
        let md: MediaDistributorServer
        let kdLog = LogSink(), mdLog = LogSink()
        let threads: [Background]
        let identities: [DTLSIdentity]
        let kdIdentity: DTLSIdentity

        init(participants: Int = 3, mdIdentity: DTLSIdentity? = nil) throws {
            let kdID = try DTLSIdentity(commonName: "kd"), mdID = try DTLSIdentity(commonName: "md")
            let ids = try (0 ..< participants).map { try DTLSIdentity(commonName: "p\($0)") }
            let config = KeyDistributorConfig(listen: "127.0.0.1:0", mediaDistributors: [mdID.fingerprint.description], conferences: [
                ConferenceConfig(id: "loop", participants: ids.enumerated().map {
                    InvitedParticipant(name: "p\($0.offset)", fingerprint: $0.element.fingerprint.description)
                }),
            ])
            let kdLog = self.kdLog, mdLog = self.mdLog
            let core = try KeyDistributor(config: config, identity: kdID, initialRetransmitTimeout: .milliseconds(100),
                                          joinGrace: .milliseconds(300), log: { kdLog.append($0) })
            kd = try KeyDistributorServer(core: core, listen: .loopback(port: 0), mediaDistributors: [mdID.fingerprint],
                                          log: { kdLog.append($0) })
            md = try MediaDistributorServer(core: MediaDistributor(), listen: .loopback(port: 0), kd: kd.localAddress,
                                            kdFingerprint: kdID.fingerprint, identity: mdIdentity ?? mdID,
                                            idleTimeout: .seconds(30), log: { mdLog.append($0) })
            let kd = self.kd, md = self.md
            threads = [Background("kd") { kd.run() }, Background("md") { md.run() }]
            identities = ids
            kdIdentity = kdID
        }

        func participant(_ i: Int, identity: DTLSIdentity? = nil) throws -> (ParticipantRunner, Background) {
            let session = try ParticipantSession(name: "p\(i)", identity: identity ?? identities[i], kdFingerprint: kdIdentity.fingerprint,
                                                 conference: "loop", sendingSSRCs: [0x100 + UInt32(i)],
                                                 initialRetransmitTimeout: .milliseconds(100))
            let runner = try ParticipantRunner(session: session, mediaDistributor: md.localAddress)
            return (runner, Background("p\(i)") { runner.run() })
        }

        func spi() -> UInt16? { kd.withCore { $0.currentSPI(of: "loop") } }

        func shutdown(_ runners: [ParticipantRunner], _ threads: [Background]) {
            for r in runners { r.stop() }
            for t in threads { _ = t.wait() }
            md.stop(); kd.stop()
            for t in self.threads { _ = t.wait() }
        }
    }

    @Test("Three endpoints are keyed through the MD; a leave and a join each rekey, and every member gets the new key")
    func rekeyOverLoopback() async throws {
        let setup = try Setup(participants: 4)
        let started = Started()
        try await withCleanup({ setup.shutdown(started.runners, started.threads) }) {
        var runners: [ParticipantRunner] = [], threads: [Background] = []
        for i in 0 ..< 3 { let (r, t) = try setup.participant(i); runners.append(r); threads.append(t); started.add(r, t) }

        let allKeyed = try await eventually {
            guard let spi = setup.spi() else { return false }
            return runners.allSatisfy { $0.withSession { $0.currentSPI } == spi } && setup.kd.withCore { $0.members(of: "loop").count } == 3
        }
        #expect(allKeyed)
        if !allKeyed { print("KD log:\n" + setup.kdLog.all.map(\.description).joined(separator: "\n") + "\nMD log:\n" + setup.mdLog.all.map(\.description).joined(separator: "\n")) }
        #expect(setup.md.isTunnelUp)
        #expect(setup.md.withCore { $0.keyedEndpointCount } == 3)
        let first = try #require(setup.spi())

        runners[1].leave()
        let afterLeave = try await eventually {
            guard let spi = setup.spi(), spi != first else { return false }
            return [runners[0], runners[2]].allSatisfy { $0.withSession { $0.currentSPI } == spi }
        }
        #expect(afterLeave)
        #expect(setup.kd.withCore { $0.members(of: "loop") } == ["p0", "p2"])

        let (late, lateThread) = try setup.participant(3)
        runners.append(late); threads.append(lateThread); started.add(late, lateThread)
        let afterJoin = try await eventually {
            guard let spi = setup.spi() else { return false }
            return [runners[0], runners[2], late].allSatisfy { $0.withSession { $0.currentSPI } == spi }
                && setup.kd.withCore { $0.members(of: "loop").count } == 3
        }
        #expect(afterJoin)
        // Each remaining endpoint holds the roster with the leave and the join.
        let roster = runners[0].withSession { $0.keyPlane.roster }
        #expect(roster.map(\.kind) == [.join, .join, .join, .leave, .join])
        #expect(roster.last?.displayName == "p3")
        }
    }

    @Test("An endpoint with an unknown certificate is refused by the KD with a log line naming its fingerprint")
    func unknownFingerprint() async throws {
        let setup = try Setup(participants: 1)
        let stranger = try DTLSIdentity(commonName: "stranger")
        let (runner, thread) = try setup.participant(0, identity: stranger)
        try await withCleanup({ setup.shutdown([runner], [thread]) }) {
        let refused = try await eventually {
            setup.kdLog.all.contains { $0.event == "association.refused" && $0.value("fingerprint") == stranger.fingerprint.description }
        }
        #expect(refused)
        #expect(runner.withSession { $0.isReady } == false)
        #expect(setup.kd.withCore { $0.counters.refusedUnknownFingerprint } >= 1)
        #expect(setup.md.withCore { $0.keyedEndpointCount } == 0)
        }
    }

    @Test("A Media Distributor whose certificate the KD does not pin never gets a tunnel")
    func unpinnedMediaDistributor() async throws {
        let setup = try Setup(participants: 1, mdIdentity: try DTLSIdentity(commonName: "rogue-md"))
        let (runner, thread) = try setup.participant(0)
        try await withCleanup({ setup.shutdown([runner], [thread]) }) {
        let logged = try await eventually(.seconds(5)) {
            setup.kdLog.all.contains { $0.event == "tunnel.closed" || $0.event == "tunnel.refused" }
        }
        #expect(logged)
        try await Task.sleep(for: .milliseconds(500))
        #expect(runner.withSession { $0.isReady } == false)
        #expect(setup.kd.withCore { $0.counters.handshakes } == 0)
        }
    }
}
