import ArgumentParser
import Foundation
import Lab
import Synchronization

/// Set from a signal handler, read by the main loop.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .relaxed) }
    var isSet: Bool { flag.load(ordering: .relaxed) }
}

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Run a Key Distributor, a Media Distributor and N synthetic participants on loopback.",
        discussion: """
        Participants send Opus voice (talk spurts, DTX, RFC 6464 levels) and VP8 video (a moving \
        pattern with a frame counter), double-encrypted under their own E2E keys with EKT. With \
        --churn, participants leave and new ones join during the run, and each change rekeys the \
        conference. A summary line is printed every second; at the end, what each participant \
        decrypted from each other. Exits 1 if a participant present for the whole run decrypted \
        nothing from someone else who was.
        """)

    @Option(help: "Participants at the start (1–8).")
    var participants = 3
    @Option(help: "How long to run, in seconds.")
    var duration = 20.0
    @Flag(help: "Participants leave and join during the run (each change rekeys).")
    var churn = false
    @Option(help: "Video size, WIDTHxHEIGHT.")
    var video = "640x360"
    @Option(help: "Video frame rate.")
    var fps = 15
    @Flag(help: "Print every KD and MD log line.")
    var verbose = false

    func validate() throws {
        guard (1 ... 8).contains(participants) else { throw usageError("--participants must be 1…8") }
        guard duration > 0, duration <= 3600 else { throw usageError("--duration must be in (0, 3600] seconds") }
        guard parsedVideo != nil else { throw usageError("--video must look like 640x360 (even numbers, 16…1920)") }
        guard (1 ... 60).contains(fps) else { throw usageError("--fps must be 1…60") }
    }

    var parsedVideo: (Int, Int)? {
        let parts = video.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ $0 >= 16 && $0 <= 1920 && $0 % 2 == 0 }) else { return nil }
        return (parts[0], parts[1])
    }

    func run() throws {
        var options = LabConference.Options()
        options.participants = participants
        let churnEvery = 4.0
        let churnSteps = churn ? max(1, Int(duration / churnEvery)) : 0
        options.spareIdentities = churnSteps
        if let (w, h) = parsedVideo { options.width = w; options.height = h }
        options.framesPerSecond = fps
        let verbose = self.verbose
        let lab = try LabConference(options: options, log: { line in
            if verbose || line.event.hasSuffix("refused") || line.event.contains("error") { logLine("lab")(line) }
        })
        print("lab: KD \(lab.kd.localAddress) (\(lab.kdIdentity.fingerprint)), MD \(lab.md.localAddress), conference \"\(options.conference)\"")
        try lab.start()
        let start = Date()
        var nextChurn = churnEvery
        var nextJoin = participants
        var presentThroughout = Set(0 ..< participants)
        let interrupted = StopFlag()
        let signals = onTerminationSignals { interrupted.set() }
        _ = signals
        while Date().timeIntervalSince(start) < duration, !interrupted.isSet {
            Thread.sleep(forTimeInterval: 1)
            let t = Date().timeIntervalSince(start)
            if churn, t >= nextChurn, nextJoin < lab.identities.count {
                nextChurn += churnEvery
                if let leaving = lab.activeIndices.first, lab.activeIndices.count > 1 {
                    lab.leave(leaving)
                    presentThroughout.remove(leaving)
                }
                try lab.join(nextJoin)
                nextJoin += 1
            }
            printSummary(lab, elapsed: t)
        }
        let finalStats = lab.stats()
        lab.stop()
        print("\nper participant (decrypted packets by sender):")
        var failed = false
        for s in finalStats {
            let bySender = finalStats.filter { $0.name != s.name }.map { other -> String in
                let n = (s.decryptedBySource[other.audioSSRC] ?? 0) + (s.decryptedBySource[other.videoSSRC] ?? 0)
                return "\(other.name)=\(n)"
            }.joined(separator: " ")
            print("  \(s.name): sent \(s.sent) (\(s.sendErrors) send errors), received \(s.received), rtcp \(s.rtcpReceived), from \(bySender); drops: \(s.drops)")
        }
        for i in presentThroughout {
            guard let me = finalStats.first(where: { $0.name == LabConference.name(of: i) }) else { continue }
            for j in presentThroughout where j != i {
                guard let other = finalStats.first(where: { $0.name == LabConference.name(of: j) }) else { continue }
                if (me.decryptedBySource[other.audioSSRC] ?? 0) + (me.decryptedBySource[other.videoSSRC] ?? 0) == 0 {
                    print("FAIL: \(me.name) decrypted nothing from \(other.name)")
                    failed = true
                }
            }
        }
        if failed { throw ExitCode(1) }
        print("lab: ok")
    }

    private func printSummary(_ lab: LabConference, elapsed: Double) {
        let stats = lab.stats()
        let kd = lab.kd.withCore { ($0.counters, $0.currentSPI(of: lab.options.conference), $0.members(of: lab.options.conference).count) }
        let md = lab.md.withCore { $0.counters }
        let sent = stats.reduce(0) { $0 + $1.sent }, received = stats.reduce(0) { $0 + $1.received }
        print(String(format: "t=%5.1fs", elapsed)
              + " members=\(kd.2) spi=\(kd.1.map(String.init) ?? "-") rekeys=\(kd.0.rekeys)"
              + " sent=\(sent) received=\(received)"
              + " md_in=\(md.rtpReceived) forwarded=\(md.rtpForwarded) not_selected=\(md.rtpNotSelected)"
              + " speaker_changes=\(md.speakerChanges) hbh_failures=\(md.hbhAuthenticationFailures)")
    }
}
