import Archive
import ArgumentParser
import Authority
import Foundation
import KeyExchange
import Lab
import Recorder

/// `percrec demo`: the media-plane self-test, then the main job on the embedded default — a
/// lab conference on loopback recorded by the recorder into storage/archive.sqlite.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record a 3-participant lab conference (with a join and a leave, so rekeys) into the archive.",
        discussion: """
        First runs the media-plane self-test (one packet sender → Media Distributor → receiver, \
        every step checked). Then starts a Key Distributor, a Media Distributor and three \
        synthetic participants on loopback, records the conference with `percrec record`'s \
        runner into --archive (the authority key pair is created in --authority on first use), \
        has a fourth participant join and the first leave, ends the conference, and prints \
        what `percrec inspect` shows. Export to Ogg/WebM follows (issue 6).
        """)

    @Option(help: "The archive to record into.")
    var archive = Archive.defaultPath
    @Option(help: "Directory of the demo's archive authority key pair (created if missing).")
    var authority = "storage/authority"
    @Option(help: "Seconds of conference before the join, between join and leave, and after.")
    var phase = 4

    func run() throws {
        var test = MediaPlaneSelfTest()
        test.run()
        let width = test.steps.map(\.actor.count).max() ?? 0
        for step in test.steps {
            let pad = String(repeating: " ", count: width - step.actor.count)
            print("\(step.ok ? "ok  " : "FAIL") \(step.actor)\(pad)  \(step.text)")
        }
        print(test.passed ? "media-plane self-test passed (\(test.steps.count) steps)" : "media-plane self-test FAILED")
        if !test.passed { throw ExitCode(1) }
        try record()
    }

    private func record() throws {
        let authorityKey: AuthorityPublicKey
        do {
            let pub = (authority as NSString).appendingPathComponent("authority.pub")
            if FileManager.default.fileExists(atPath: pub) {
                authorityKey = try AuthorityPublicKey(contentsOf: pub)
            } else {
                let key = AuthorityPrivateKey()
                try key.write(to: authority)
                authorityKey = key.publicKey
                print("created the demo's archive authority in \(authority)/ (authority.key is the administrator's)")
            }
        } catch { throw operationalError("\(error)") }
        let store = try openArchive(archive, create: true)
        let recorderIdentity: DTLSIdentity
        do { recorderIdentity = try DTLSIdentity(commonName: "demo-recorder") } catch { throw operationalError("\(error)") }
        var options = LabConference.Options()
        options.conference = "demo-" + Self.timestamp()
        options.participants = 3
        options.spareIdentities = 1
        options.width = 320
        options.height = 180
        options.extraInvitations = [InvitedParticipant(name: "recorder", fingerprint: recorderIdentity.fingerprint.description, role: .recorder)]
        let lab: LabConference
        do { lab = try LabConference(options: options, log: { _ in }) } catch { throw operationalError("lab: \(error)") }
        let runner = RecorderRunner(configuration: .init(mediaDistributor: lab.md.localAddress, kdFingerprint: lab.kdIdentity.fingerprint,
                                                         identity: recorderIdentity, conference: options.conference,
                                                         authority: authorityKey),
                                    archive: store, log: { _ in })
        print("\nrecording conference \(options.conference) into \(store.path)")
        do { try lab.start() } catch { throw operationalError("lab: \(error)") }
        let finished = DispatchSemaphore(value: 0)
        let outcome = OutcomeHolder()
        Thread.detachNewThread {
            outcome.value = runner.run()
            finished.signal()
        }
        let signals = onTerminationSignals { runner.stop() }
        func phaseWait(_ what: String) {
            Thread.sleep(forTimeInterval: Double(phase))
            let s = runner.withSession { ($0?.receiver?.storedPackets ?? 0, $0?.epochsSealed ?? 0) }
            print("  \(what): \(s.0) packets archived, \(s.1) epoch keys sealed so far")
        }
        phaseWait("alice, bob and carol are talking")
        try? lab.join(3)
        phaseWait("dave joined (rekey)")
        lab.leave(0)
        phaseWait("alice left (rekey)")
        print("  everyone leaves; the recorder sees the conference end")
        for i in lab.activeIndices { lab.leave(i) }
        if finished.wait(timeout: .now() + 15) == .timedOut { runner.stop(); finished.wait() }
        lab.stop()
        _ = signals
        let report: ConferenceReport
        do { report = try store.inspect(conference: options.conference) } catch { throw operationalError("\(error)") }
        let packets = report.segments.reduce(0) { $0 + $1.packets }
        print("\nrecorded: \(packets) packets from \(report.sources.count) sources of \(report.participants.filter { $0.role == "participant" }.count) participants, "
              + "\(report.epochs.count) epochs (keys sealed to authority \(authorityKey.keyID)), \(report.totalDrops) datagrams refused")
        print("ended: \(report.segments.last?.endReason ?? "?")")
        print("\nnext: percrec inspect \(options.conference) --archive \(store.path)")
        if case .stopped? = outcome.value { throw ExitCode(1) }
        if packets == 0 { throw operationalError("nothing was recorded") }
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: Date())
    }
}

final class OutcomeHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: RecorderOutcome?
    var value: RecorderOutcome? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
