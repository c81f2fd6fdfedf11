import Access
import Archive
import ArgumentParser
import Authority
import AuthorityService
import Export
import Foundation
import KeyExchange
import Lab
import Recorder

/// `percrec demo`: the media-plane self-test, then the whole product on the embedded default:
/// a lab conference on loopback, recorded by a `percrec record` process into
/// storage/archive.sqlite, then exported by the administrator to Ogg Opus and WebM files.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record a 3-participant lab conference (a join and a leave, so rekeys), then export it to Ogg/WebM.",
        discussion: """
        First runs the media-plane self-test (one packet sender → Media Distributor → receiver, \
        every step checked). Then starts a Key Distributor, a Media Distributor and three \
        synthetic participants on loopback and records the conference with a `percrec record` \
        process into --archive (the authority key pair is created in --authority on first use). \
        A fourth participant joins and the first leaves; when everyone has left the recorder \
        ends by itself. Then the administrator's key exports every participant to Ogg Opus \
        and WebM, plus a mixed Ogg Opus file, into --out, and the paths are printed. Finally the \
        authority service (`percrec authority serve`) answers dave, the late joiner, with a \
        participant token: the conference does not allow catch-up, so asking for the whole \
        conference is refused for the epochs before his join (exit 3), asking from his join \
        succeeds, and `percrec authority audit` shows both decisions in the hash-chained log.
        """)

    @Option(help: "The archive to record into.")
    var archive = Archive.defaultPath
    @Option(help: "Directory of the demo's archive authority key pair (created if missing).")
    var authority = "storage/authority"
    @Option(help: "Directory for the exported files (a subdirectory per conference).")
    var out = "storage/export"
    @Option(help: "Seconds of conference before the join, between join and leave, and after.")
    var phase = 10

    func run() async throws {
        var test = MediaPlaneSelfTest()
        test.run()
        let width = test.steps.map(\.actor.count).max() ?? 0
        for step in test.steps {
            let pad = String(repeating: " ", count: width - step.actor.count)
            print("\(step.ok ? "ok  " : "FAIL") \(step.actor)\(pad)  \(step.text)")
        }
        print(test.passed ? "media-plane self-test passed (\(test.steps.count) steps)" : "media-plane self-test FAILED")
        if !test.passed { throw ExitCode(1) }
        let conference = try record()
        try export(conference)
        try await accessByToken(conference)
    }

    /// The demo authority: created on first use; the administrator holds authority.key.
    private func authorityKey() throws -> AuthorityPrivateKey {
        let keyPath = (authority as NSString).appendingPathComponent("authority.key")
        do {
            if FileManager.default.fileExists(atPath: keyPath) { return try AuthorityPrivateKey(contentsOf: keyPath) }
            let key = AuthorityPrivateKey()
            try key.write(to: authority)
            print("created the demo's archive authority in \(authority)/ (authority.key is the administrator's)")
            return key
        } catch { throw operationalError("\(error)") }
    }

    private func record() throws -> String {
        let authorityKey = try authorityKey().publicKey
        let store = try openArchive(archive, create: true)
        store.close()
        // The recorder's DTLS identity, as `percrec identity` would write it.
        let identityDirectory = (authority as NSString).deletingLastPathComponent + "/demo-recorder"
        let recorderIdentity: DTLSIdentity
        let certificate = identityDirectory + "/recorder-cert.pem", privateKey = identityDirectory + "/recorder-key.pem"
        do {
            recorderIdentity = try DTLSIdentity(commonName: "demo-recorder")
            try FileManager.default.createDirectory(atPath: identityDirectory, withIntermediateDirectories: true)
            try recorderIdentity.certificatePEM.write(toFile: certificate, atomically: true, encoding: .utf8)
            try? FileManager.default.removeItem(atPath: privateKey)
            guard FileManager.default.createFile(atPath: privateKey, contents: nil, attributes: [.posixPermissions: 0o600]),
                  let handle = FileHandle(forWritingAtPath: privateKey) else { throw operationalError("cannot create \(privateKey)") }
            recorderIdentity.privateKeyPEM.withUnsafeBytes { handle.write(Data($0)) }
            try handle.close()
        } catch let e as ExitCode { throw e } catch { throw operationalError("\(error)") }
        var options = LabConference.Options()
        options.conference = "demo-" + Self.timestamp()
        options.participants = 3
        options.spareIdentities = 1
        options.width = 320
        options.height = 180
        options.extraInvitations = [InvitedParticipant(name: "recorder", fingerprint: recorderIdentity.fingerprint.description, role: .recorder)]
        // What the KD announces and the archive authority applies: no catch-up; "admin" sees everything.
        options.policy = ConferencePolicyConfig(allowCatchUp: false, administrators: ["admin"])
        let lab: LabConference
        do { lab = try LabConference(options: options, log: { _ in }) } catch { throw operationalError("lab: \(error)") }
        do { try lab.start() } catch { throw operationalError("lab: \(error)") }
        defer { lab.stop() }

        let logPath = identityDirectory + "/record.log"
        let recorder = Process()
        recorder.executableURL = URL(fileURLWithPath: Self.executablePath())
        recorder.arguments = ["record", "--md", lab.md.localAddress.description, "--conference", options.conference,
                              "--kd-fingerprint", lab.kdIdentity.fingerprint.description, "--certificate", certificate,
                              "--private-key", privateKey, "--authority-public-key", (authority as NSString).appendingPathComponent("authority.pub"),
                              "--archive", store.path]
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        recorder.standardError = FileHandle(forWritingAtPath: logPath)
        recorder.standardOutput = FileHandle.nullDevice
        print("\nrecording conference \(options.conference) into \(store.path) with: percrec \(recorder.arguments?.prefix(5).joined(separator: " ") ?? "") …")
        do { try recorder.run() } catch { throw operationalError("cannot start percrec record: \(error)") }
        let signals = onTerminationSignals { recorder.terminate() }
        func archived() -> (Int, Int) {
            guard let a = try? Archive(path: store.path, create: false) else { return (0, 0) }
            defer { a.close() }
            let c = (try? a.conferences())?.first { $0.name == options.conference }
            return (c?.packets ?? 0, c?.epochs ?? 0)
        }
        func phaseWait(_ what: String) {
            Thread.sleep(forTimeInterval: Double(phase))
            let s = archived()
            print("  \(what): \(s.0) packets archived, \(s.1) epoch keys sealed so far")
        }
        phaseWait("alice, bob and carol are talking")
        try? lab.join(3)
        phaseWait("dave joined (rekey)")
        lab.leave(0)
        phaseWait("alice left (rekey)")
        print("  everyone leaves; the recorder sees the conference end")
        for i in lab.activeIndices { lab.leave(i) }
        let deadline = Date().addingTimeInterval(20)
        while recorder.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if recorder.isRunning { recorder.terminate(); recorder.waitUntilExit() }
        _ = signals
        guard recorder.terminationStatus == 0 else {
            throw operationalError("percrec record exited with \(recorder.terminationStatus); its log is \(logPath)")
        }
        let reopened = try openArchive(store.path, create: false)
        let report: ConferenceReport
        do { report = try reopened.inspect(conference: options.conference) } catch { throw operationalError("\(error)") }
        let packets = report.segments.reduce(0) { $0 + $1.packets }
        print("\nrecorded: \(packets) packets from \(report.sources.count) sources of \(report.participants.filter { $0.role == "participant" }.count) participants, "
              + "\(report.epochs.count) epochs (keys sealed to authority \(authorityKey.keyID)), \(report.totalDrops) datagrams refused")
        print("ended: \(report.segments.last?.endReason ?? "?") (recorder log: \(logPath))")
        if packets == 0 { throw operationalError("nothing was recorded") }
        return options.conference
    }

    private func export(_ conference: String) throws {
        let key = try authorityKey()
        let store = try openArchive(archive, create: false)
        let directory = (out as NSString).appendingPathComponent(conference)
        print("\nexporting with the administrator's key (\(authority)/authority.key) into \(directory)/")
        var written: [String] = []
        for mix in [false, true] {
            let request = ExportRequest(conference: conference, outputDirectory: directory, mix: mix, overwrite: true)
            let meter = ProgressMeter(linesWhenNotTerminal: false)   // plain lines would interleave with stdout
            do {
                let summary = try Exporter(archive: store, authority: key).run(request) { meter.update($0) }
                meter.end()
                for s in summary.sources where !mix && (s.decryption.refused > 0 || s.lostPackets > 0) {
                    let d = s.decryption
                    print(String(format: "  source 0x%08x (%@ %@): %d opened, %d lost in transit, %d under a key the recorder never had "
                                 + "(sent before its join's rekey took effect), %d failed authentication",
                                 s.ssrc, s.participant, s.media, d.opened, s.lostPackets, d.noKey, d.authenticationFailed))
                }
                for n in summary.notes { print("  note: \(n)") }
                for f in summary.files {
                    print(String(format: "  %-60@ %@, %.1f s%@", f.path as NSString, f.media,
                                 f.durationSeconds, f.videoFrames > 0 ? ", \(f.videoFrames) video frames" : ""))
                    written.append(f.path)
                }
            } catch {
                meter.end()
                throw operationalError("export: \(error)")
            }
        }
        print("\nexported \(written.count) files. Play one with: ffplay \(written.first ?? "")")
        print("next: percrec inspect \(conference) --archive \(archive)")
    }

    /// The token path: `percrec authority serve` as a process, a participant token for dave
    /// (who joined late), and `percrec export --token` twice: the whole conference (refused for
    /// the epochs before his join: exit 3) and from his join on (exit 0). Then the audit log.
    private func accessByToken(_ conference: String) async throws {
        let keyPath = (authority as NSString).appendingPathComponent("authority.key")
        let certificate = (authority as NSString).appendingPathComponent(AuthorityTLS.certificateFile)
        let issuer = ((authority as NSString).deletingLastPathComponent as NSString).appendingPathComponent("issuer")
        let signingPath = (issuer as NSString).appendingPathComponent("token-signing.key")
        let signing: TokenSigningKey
        do {
            if !FileManager.default.fileExists(atPath: certificate) { _ = try AuthorityTLS.generate(in: authority) }
            if !FileManager.default.fileExists(atPath: signingPath) {
                try FileManager.default.createDirectory(atPath: issuer, withIntermediateDirectories: true)
                _ = try TokenSigningKey.generate().write(to: issuer)
            }
            signing = try TokenSigningKey(contentsOf: signingPath)
        } catch { throw operationalError("\(error)") }
        let store = try openArchive(archive, create: false)
        let facts: ConferenceAccessFacts
        do { facts = try store.accessFacts(conference: conference) } catch { throw operationalError("\(error)") }
        store.close()
        guard let join = facts.roster.first(where: { $0.name == "dave" && $0.kind == "join" })?.time else {
            throw operationalError("the archived roster has no join of dave")
        }

        let logPath = (authority as NSString).deletingLastPathComponent + "/demo-recorder/authority.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: Self.executablePath())
        serve.arguments = ["authority", "serve", "--archive", archive, "--authority-key", keyPath,
                           "--token-public-key", (issuer as NSString).appendingPathComponent("token-signing.pub"), "--listen", "127.0.0.1:0"]
        let announced = Pipe()
        serve.standardOutput = announced
        serve.standardError = FileHandle(forWritingAtPath: logPath)
        do { try serve.run() } catch { throw operationalError("cannot start percrec authority serve: \(error)") }
        defer { if serve.isRunning { serve.terminate(); serve.waitUntilExit() } }
        let signals = onTerminationSignals { serve.terminate() }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = announced.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "https://"), let end = text[range.lowerBound...].firstIndex(of: " ") else {
            throw operationalError("percrec authority serve did not start; its log is \(logPath)")
        }
        let url = String(text[range.lowerBound..<end])
        print("\nthe archive authority serves key releases at \(url) (percrec authority serve; log: \(logPath))")

        let token: String
        do {
            token = try await AccessToken.issue(principal: "dave", conference: conference, role: .participant, lifetime: 600, signingKey: signing)
        } catch { throw operationalError("\(error)") }
        print("dave joined late and the conference does not allow catch-up; his token: "
              + "percrec token issue --principal dave --role participant --conference \(conference) --ttl 10m")
        let directory = (out as NSString).appendingPathComponent(conference) + "/dave"
        let common = ["export", "--archive", archive, "--conference", conference, "--token", token, "--authority", url,
                      "--authority-ca", certificate, "--participant", "bob", "--format", "ogg", "--out", directory, "--overwrite"]
        for (what, extra) in [("bob's whole recording", [String]()),
                              ("bob from dave's join on", ["--from", ISO8601DateFormatter.percrec.string(from: Date(timeIntervalSince1970: join))])] {
            let result = Self.runChild(common + extra)
            print("\n  dave asks for \(what): percrec export --token … --participant bob\(extra.isEmpty ? "" : " --from <his join>") → exit \(result.status)")
            for l in result.stderr.split(separator: "\n") where l.hasPrefix("authority:") || l.hasPrefix("refused:") || l.hasPrefix("error:") {
                print("    \(l)")
            }
            for path in result.stdout.split(separator: "\n") { print("    wrote \(path)") }
        }
        let audit = Self.runChild(["authority", "audit", "--archive", archive, "--conference", conference])
        print("\n  percrec authority audit → exit \(audit.status)")
        for l in (audit.stdout + audit.stderr).split(separator: "\n").suffix(4) { print("    \(l)") }
        _ = signals
    }

    /// Runs this executable with `arguments` to the end.
    static func runChild(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executablePath())
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch { return (-1, "", "\(error)") }
        // stdout on another thread, so a full pipe cannot stall the child while stderr is read.
        let group = DispatchGroup()
        final class Sink: @unchecked Sendable { var data = Data() }
        let stdoutSink = Sink()
        group.enter()
        DispatchQueue.global().async { stdoutSink.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let stderrData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdoutSink.data, as: UTF8.self), String(decoding: stderrData, as: UTF8.self))
    }

    /// This executable, so the demo runs the very `percrec record` it ships.
    static func executablePath() -> String {
        if let path = Bundle.main.executablePath { return path }
        return CommandLine.arguments[0]
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: Date())
    }
}
