import Archive
import Authority
import Capture
import Foundation
import KeyExchange
import Lab
import Net
import RTPWire
import Testing
import TestSupport

/// `percrec record` as a real process against an in-process lab: SIGKILL mid-conference, then a
/// restart that continues the conference as a new segment, then SIGTERM.
extension RecorderLabSuites {
    @Suite("percrec record as a process: kill -9 and restart", .serialized)
    struct RecorderProcessTests {
        static var executable: String {
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/percrec").path
        }

        /// Starts `percrec record`; stderr (its structured log) is collected.
        final class RecordProcess: @unchecked Sendable {
            let process = Process()
            private let stderr = Pipe()
            private let lock = NSLock()
            private var text = ""

            init(arguments: [String]) throws {
                process.executableURL = URL(fileURLWithPath: RecorderProcessTests.executable)
                process.arguments = ["record"] + arguments
                process.standardError = stderr
                process.standardOutput = FileHandle.nullDevice
                stderr.fileHandleForReading.readabilityHandler = { [weak self] h in
                    let d = h.availableData
                    guard let self, !d.isEmpty else { return }
                    self.lock.withLock { self.text += String(decoding: d, as: UTF8.self) }
                }
                try process.run()
            }

            var log: String { lock.withLock { text } }

            /// The recorder's local UDP port, from its `recorder.session.start` log line.
            var localPort: UInt16? {
                guard let line = log.split(separator: "\n").last(where: { $0.contains("recorder.session.start") }),
                      let field = line.split(separator: " ").first(where: { $0.hasPrefix("local=") }),
                      let port = field.split(separator: ":").last else { return nil }
                return UInt16(port)
            }
        }

        @Test("kill -9 loses at most the last 100 ms of packets and leaves a sound file; a restart is a new segment")
        func killAndRestart() async throws {
            #expect(FileManager.default.isExecutableFile(atPath: Self.executable), "build percrec first (swift build)")
            let dir = makeTemporaryDirectory("record-process")
            let recorder = try DTLSIdentity(commonName: "recorder")
            try recorder.certificatePEM.write(toFile: dir + "/rec-cert.pem", atomically: true, encoding: .utf8)
            try Data(recorder.privateKeyPEM.unsafeCopiedBytes).write(to: URL(fileURLWithPath: dir + "/rec-key.pem"))
            let authority = AuthorityPrivateKey()
            try authority.write(to: dir)
            var options = LabConference.Options()
            options.participants = 3
            options.width = 160
            options.height = 120
            options.framesPerSecond = 10
            options.extraInvitations = [InvitedParticipant(name: "archive", fingerprint: recorder.fingerprint.description, role: .recorder)]
            let lab = try LabConference(options: options, log: { _ in })
            let sent = Collected<(to: SocketAddress, at: Double, rtp: Bool)>()
            lab.md.onSend = { to, bytes in sent.append((to, Date().timeIntervalSince1970, DatagramKind.classify(bytes) == .rtp)) }
            let archivePath = dir + "/archive.sqlite"
            let arguments = ["--md", lab.md.localAddress.description, "--conference", options.conference,
                             "--kd-fingerprint", lab.kdIdentity.fingerprint.description, "--certificate", dir + "/rec-cert.pem",
                             "--private-key", dir + "/rec-key.pem", "--authority-public-key", dir + "/authority.pub",
                             "--archive", archivePath]
            try await withCleanup({ lab.stop() }) {
                await offPool { try? lab.start() }
                let first = try RecordProcess(arguments: arguments)
                let storedCount = { () -> Int in
                    guard let a = try? Archive(path: archivePath, create: false) else { return 0 }
                    defer { a.close() }
                    return (try? a.conferences().first?.packets) ?? 0
                }
                #expect(try await eventually(.seconds(30)) { storedCount() > 200 }, "no packets archived: \(first.log)")
                try await Task.sleep(for: .milliseconds(1500))
                let port = try #require(first.localPort, "no session log line: \(first.log)")
                let killedAt = Date().timeIntervalSince1970
                kill(first.process.processIdentifier, SIGKILL)
                first.process.waitUntilExit()
                #expect(first.process.terminationReason == .uncaughtSignal)

                // Everything the MD sent the recorder more than 100 ms before the kill is stored.
                let toRecorder = sent.all.filter { $0.to.port == port && $0.rtp && $0.at <= killedAt }.map(\.at).sorted()
                let archive = try Archive(path: archivePath, create: false)
                #expect(try archive.integrityCheck() == ["ok"])
                let stored = try archive.packets(conference: options.conference).count
                #expect(stored <= toRecorder.count)
                let lossWindow = stored < toRecorder.count ? killedAt - toRecorder[stored] : 0
                print("kill -9: \(toRecorder.count) RTP datagrams sent to the recorder, \(stored) stored, loss window \(Int(lossWindow * 1000)) ms")
                #expect(lossWindow <= 0.100, "lost the packets of the last \(Int(lossWindow * 1000)) ms (\(toRecorder.count - stored) packets)")
                let killedSegment = try archive.inspect(conference: options.conference).segments
                #expect(killedSegment.count == 1 && killedSegment[0].endedAt == nil)
                archive.close()

                // A restart during the conference continues it as a new segment (this time also
                // writing what it receives to a pcap file).
                let capturePath = dir + "/second.pcap"
                let second = try RecordProcess(arguments: arguments + ["--capture", capturePath])
                #expect(try await eventually(.seconds(30)) { storedCount() > stored + 100 }, "the restarted recorder stored nothing: \(second.log)")
                kill(second.process.processIdentifier, SIGTERM)
                second.process.waitUntilExit()
                #expect(second.process.terminationStatus == 0, "\(second.log)")
                let after = try Archive(path: archivePath, create: false)
                let report = try after.inspect(conference: options.conference)
                #expect(report.segments.count == 2)
                #expect(report.segments[1].endReason == "stopped by signal")
                #expect(report.totalDrops == 0)
                #expect(try after.integrityCheck() == ["ok"])
                #expect(try after.conferences().map(\.name) == [options.conference])
                // The capture holds what the second recorder received: at least every datagram it stored.
                let captured = try CaptureReader(path: capturePath).readAll()
                let secondPort = try #require(second.localPort)
                #expect(captured.count >= report.segments[1].packets + report.segments[1].rtcpPackets)
                #expect(captured.allSatisfy { $0.destinationPort == secondPort && $0.sourcePort == lab.md.localAddress.port })
            }
        }
    }
}
