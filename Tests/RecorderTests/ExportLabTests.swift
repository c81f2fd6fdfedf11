import Archive
import Authority
import EKT
import Export
import Foundation
import KeyExchange
import Lab
import Media
import RTPWire
import Testing
import TestSupport

/// One lab conference recorded once, exported in several ways by the tests below.
final class ExportFixture: @unchecked Sendable {
    let directory: String
    let archivePath: String
    let authority: AuthorityPrivateKey
    let conference: String
    /// What each participant sent: SSRC → sequence number → packet.
    let sent: [UInt32: [UInt16: RTPPacket]]
    /// Stored packets that can be opened: (SSRC, sequence) pairs tied to a Full EKT field whose
    /// epoch key the recorder sealed (the first packets after the recorder's own join still use
    /// the epoch before it, whose key a newcomer is never given); and each source's last arrival.
    let stored: Set<[UInt32]>
    /// Stored packets under an epoch the recorder never had.
    let withoutKey: [UInt32: Int]
    let lastArrival: [UInt32: Double]
    /// The SPIs whose sealed keys the archive holds.
    let archivedSPIs: Set<UInt16>
    /// The SPI of the Full EKT field each stored packet is tied to: [SSRC, sequence] → SPI.
    let ties: [[UInt32]: UInt16]
    /// What each lab participant sent and was given (its `receivedSPIs`), at the end.
    let participantStats: [LabConference.ParticipantStats]
    /// The Key Distributor's own roster log.
    let kdRoster: [RosterEvent]

    /// Shared by the suite: recording a lab takes ~20 s, so it is done once.
    static let shared = Task { try await ExportFixture.record() }

    init(directory: String, archivePath: String, authority: AuthorityPrivateKey, conference: String,
         sent: [UInt32: [UInt16: RTPPacket]], stored: [StoredPacket], sealedSPIs: Set<UInt16>,
         participantStats: [LabConference.ParticipantStats], kdRoster: [RosterEvent]) {
        archivedSPIs = sealedSPIs
        self.participantStats = participantStats
        self.kdRoster = kdRoster
        var ties: [[UInt32]: UInt16] = [:]
        for p in stored { if let t = p.tie { ties[[p.record.ssrc, UInt32(p.record.sequence)]] = t.spi } }
        self.ties = ties
        self.directory = directory
        self.archivePath = archivePath
        self.authority = authority
        self.conference = conference
        self.sent = sent
        let openable = stored.filter { $0.tie.map { sealedSPIs.contains($0.spi) } ?? false }
        self.stored = Set(openable.map { [$0.record.ssrc, UInt32($0.record.sequence)] })
        var without: [UInt32: Int] = [:]
        for p in stored where !(p.tie.map { sealedSPIs.contains($0.spi) } ?? false) { without[p.record.ssrc, default: 0] += 1 }
        withoutKey = without
        var last: [UInt32: Double] = [:]
        for p in stored { last[p.record.ssrc] = max(last[p.record.ssrc] ?? 0, p.record.arrival) }
        lastArrival = last
    }

    /// alice, bob, carol talk; dave joins at ~4 s, alice leaves at ~8 s, everyone leaves at ~12 s.
    static func record() async throws -> ExportFixture {
        // The KD's policy, which the authority tests rely on: no catch-up, one administrator.
        let setup = try RecordedLab(policy: ConferencePolicyConfig(allowCatchUp: false, administrators: ["oscar"]))
        let lab = setup.lab
        let result = Box<ExportFixture>()
        try await withCleanup({ setup.runner.stop(); lab.stop() }) {
            await offPool { try? lab.start() }
            setup.startRecorder()
            #expect(try await eventually(.seconds(20)) { setup.isRecording }, "the recorder never got media")
            #expect(try await eventually(.seconds(10)) { lab.md.withCore { $0.counters.recorderSubscriptions } == 1 })
            try await Task.sleep(for: .seconds(4))
            await offPool { try? lab.join(3) }
            try await Task.sleep(for: .seconds(4))
            await offPool { lab.leave(0) }
            try await Task.sleep(for: .seconds(4))
            // One by one, half a second apart: each leave rekeys, and the ones still present
            // install that key before they leave in turn (the authority tests compare what the
            // policy grants with the SPIs each participant was actually given).
            await offPool { for i in lab.activeIndices { lab.leave(i); Thread.sleep(forTimeInterval: 0.5) } }
            #expect(try await eventually(.seconds(15)) { setup.outcome.get != nil }, "the recorder did not see the conference end")
            let stored = try setup.archive.packets(conference: lab.options.conference)
            let sealed = Set(try setup.archive.epochs(conference: lab.options.conference).map(\.spi))
            let stats = lab.stats()
            let roster = lab.kd.withCore { $0.roster(of: lab.options.conference) }
            setup.archive.close()
            result.set(ExportFixture(directory: setup.directory, archivePath: setup.archive.path, authority: setup.authority,
                                     conference: lab.options.conference, sent: lab.sentPackets(), stored: stored, sealedSPIs: sealed,
                                     participantStats: stats, kdRoster: roster))
        }
        return try #require(result.get)
    }

    func export(_ name: String, _ configure: (inout ExportRequest) -> Void = { _ in }) throws -> ExportSummary {
        var request = ExportRequest(conference: conference, outputDirectory: directory + "/" + name)
        configure(&request)
        let archive = try Archive(path: archivePath, create: false)
        defer { archive.close() }
        return try Exporter(archive: archive, authority: authority).run(request)
    }

    /// The Opus payloads bob (index 1) sent that the archive holds under one of `spis`, in order.
    func bobOpusPayloads(underSPIs spis: Set<UInt16>) -> [[UInt8]] {
        let ssrc = LabConference.audioSSRC(of: 1)
        return storedOpus(of: 1).filter { ties[[ssrc, UInt32($0.sequenceNumber)]].map(spis.contains) ?? false }.map { Array($0.payload) }
    }

    /// When the KD logged `name`'s first join (Unix seconds, the KD's clock).
    func joinTime(of name: String) -> Double? {
        kdRoster.first { $0.displayName == name && $0.kind == .join }.map { Double($0.timeMillis) / 1000 }
    }

    /// The archived SPIs the KD put in force before `name`'s first join.
    func spisPutInForce(beforeJoinOf name: String) -> Set<UInt16> {
        guard let join = kdRoster.firstIndex(where: { $0.displayName == name && $0.kind == .join }) else { return [] }
        return Set(kdRoster[..<join].map(\.spi)).intersection(archivedSPIs)
    }

    /// The archived SPIs the KD put in force from `name`'s last leave on (its own rekey included).
    func spisPutInForce(afterLeaveOf name: String) -> Set<UInt16> {
        guard let leave = kdRoster.lastIndex(where: { $0.displayName == name && $0.kind == .leave }) else { return [] }
        let before = Set(kdRoster[..<leave].map(\.spi))
        return Set(kdRoster[leave...].map(\.spi)).subtracting(before).intersection(archivedSPIs)
    }

    /// Opens an archived epoch key with the authority's key.
    func open(_ epoch: ArchivedEpoch) throws -> EKTKeyMessage {
        let cipher = try #require(EKTCipher.allCases.first { "\($0)" == epoch.cipher })
        return try SealedEpochKey(conference: conference, spi: epoch.spi, cipher: cipher, authorityKeyID: epoch.authorityKeyID,
                                  encapsulatedKey: epoch.encapsulatedKey, ciphertext: epoch.sealedKey).open(with: authority)
    }

    /// The Opus packets the participant at `index` sent and the recorder stored, in order.
    func storedOpus(of index: Int) -> [RTPPacket] {
        let ssrc = LabConference.audioSSRC(of: index)
        return (sent[ssrc] ?? [:]).values.filter { stored.contains([ssrc, UInt32($0.sequenceNumber)]) }
            .sorted { Int16(bitPattern: $0.sequenceNumber &- $1.sequenceNumber) < 0 }
    }
}

/// The packets of a one-stream Ogg file, and its pages' granule positions.
func oggPackets(_ path: String) throws -> (packets: [[UInt8]], granules: [Int64]) {
    let pages = try OggPage.pages(in: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    return (OggPage.packets(in: pages), pages.map(\.granulePosition))
}

/// A zero-length-frame packet (ogg-opus.md §8): concealment, not something a participant sent.
func isConcealment(_ packet: [UInt8]) -> Bool {
    guard let parsed = try? OpusPayload(parsing: packet) else { return false }
    return parsed.frameLengths.allSatisfy { $0 == 0 }
}

/// Runs the reference inspectors on a produced file (each must be content); returns ffprobe's duration.
func checkWithTools(_ path: String) async throws -> Double {
    let inspection = try await inspectMediaFile(path)
    #expect(inspection.problems.isEmpty, "\(path): \(inspection.problems)")
    return try #require(inspection.duration)
}

extension RecorderLabSuites {
    @Suite("Export: a recorded lab conference to Ogg Opus and WebM", .serialized)
    struct ExportLabTests {
        @Test("every participant's Ogg and WebM decode cleanly, pass the inspectors, and last as long as recorded")
        func exportsEveryParticipant() async throws {
            let fixture = try await ExportFixture.shared.value
            let summary = try fixture.export("all")
            #expect(summary.files.count == 8, "\(summary.files.map(\.path))")   // 4 participants × (Ogg + WebM)
            for s in summary.sources {
                // Everything opens except packets under the epoch before the recorder's join.
                #expect(s.decryption.authenticationFailed == 0 && s.decryption.other.isEmpty && s.decryption.opened > 0, "\(s)")
                #expect(s.decryption.noKey == fixture.withoutKey[s.ssrc] ?? 0, "\(s)")
                #expect(s.timing == "rtcp-sr", "\(s)")
            }
            for file in summary.files {
                let index = try #require((0 ..< 4).first { LabConference.name(of: $0) == file.participant })
                let duration = try await checkWithTools(file.path)
                // What was recorded: up to the end of the participant's last stored packet.
                let audioEnd = try #require(fixture.lastArrival[LabConference.audioSSRC(of: index)]) - summary.origin + 0.020
                let videoEnd = (fixture.lastArrival[LabConference.videoSSRC(of: index)] ?? 0) - summary.origin + 0.1
                let expected = file.format == .ogg ? audioEnd : max(audioEnd, videoEnd)
                let frame = file.format == .ogg ? 0.020 : 0.1
                #expect(abs(duration - expected) <= frame + 0.015, "\(file.path): ffprobe \(duration) s, recorded \(expected) s")
            }
        }

        @Test("the Opus packets in a participant's Ogg are the ones they sent, in order; concealment only fills gaps")
        func oggHoldsTheSentPackets() async throws {
            let fixture = try await ExportFixture.shared.value
            let summary = try fixture.export("packets") { $0.formats = [.ogg] }
            for index in 0 ..< 4 {
                let name = LabConference.name(of: index)
                let file = try #require(summary.files.first { $0.participant == name })
                let packets = try oggPackets(file.path).packets.dropFirst(2)   // OpusHead, OpusTags
                let real = packets.filter { !isConcealment($0) }
                let expected = fixture.storedOpus(of: index)
                #expect(expected.count > 100)
                #expect(real.count == expected.count, "\(name): \(real.count) packets in the Ogg, \(expected.count) stored")
                #expect(Array(real) == expected.map(\.payload), "\(name): the Ogg's packets differ from what was sent")
                // Concealment stands only where the sender's timestamps leave a gap (DTX or loss).
                var previous: RTPPacket?
                var concealmentBefore = false
                var next = 0
                for p in packets {
                    if isConcealment(p) { concealmentBefore = true; continue }
                    let sentPacket = expected[next]
                    if concealmentBefore, let previous {
                        let samples = try OpusPayload(parsing: previous.payload).sampleCount
                        #expect(Int32(bitPattern: sentPacket.timestamp &- previous.timestamp) > Int32(samples),
                                "\(name): concealment before seq \(sentPacket.sequenceNumber) without a gap")
                    }
                    previous = sentPacket
                    concealmentBefore = false
                    next += 1
                }
            }
        }

        @Test("in WebM the lab's sync marks (beep and white frame) line up within 40 ms")
        func webmLipSync() async throws {
            let fixture = try await ExportFixture.shared.value
            let summary = try fixture.export("sync") { $0.formats = [.webm] }
            var pairs = 0
            var worst = 0.0
            for file in summary.files where file.media == "audio+video" {
                // Audio from time zero (padding before the first packet), 48 kHz mono.
                let raw = try await rawOutput("ffmpeg", ["-v", "error", "-i", file.path, "-map", "0:a", "-af", "aresample=async=1:first_pts=0",
                                                          "-ac", "1", "-ar", "48000", "-f", "s16le", "-"])
                let samples = raw.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
                let beeps = SyntheticVoice.syncBeepOnsets(in: samples).map { Double($0) / 48_000 }
                // Video frames: showinfo prints each frame's time and mean Y/U/V.
                let video = try await runTool("ffmpeg", ["-v", "info", "-i", file.path, "-map", "0:v", "-vf", "showinfo", "-f", "null", "-"])
                var flashes: [Double] = []
                for line in video.stderr.split(separator: "\n") where line.contains("pts_time:") && line.contains("mean:[") {
                    guard let t = Double(line.components(separatedBy: "pts_time:")[1].split(separator: " ")[0]) else { continue }
                    let means = line.components(separatedBy: "mean:[")[1].split(separator: "]")[0].split(separator: " ").compactMap { Double($0) }
                    if means.count == 3, means[0] >= 200, abs(means[1] - 128) <= 8, abs(means[2] - 128) <= 8 { flashes.append(t) }
                }
                for beep in beeps {
                    guard let flash = flashes.min(by: { abs($0 - beep) < abs($1 - beep) }), abs(flash - beep) < 1 else { continue }
                    #expect(abs(flash - beep) <= 0.040, "\(file.path): beep at \(beep) s, white frame at \(flash) s")
                    worst = max(worst, abs(flash - beep))
                    pairs += 1
                }
            }
            #expect(pairs >= 3, "too few sync marks found to judge")
            print("export lip sync: \(pairs) beep/white-frame pairs, largest offset \(Int((worst * 1000).rounded())) ms")
        }

        @Test("a tampered stored packet fails end-to-end authentication, is reported, and is not written")
        func tamperedPacketIsSkipped() async throws {
            let fixture = try await ExportFixture.shared.value
            let copy = fixture.directory + "/tampered.sqlite"
            try? FileManager.default.removeItem(atPath: copy)
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: fixture.archivePath + suffix) {
                try? FileManager.default.removeItem(atPath: copy + suffix)
                try FileManager.default.copyItem(atPath: fixture.archivePath + suffix, toPath: copy + suffix)
            }
            let ssrc = LabConference.audioSSRC(of: 1)
            let victim = fixture.storedOpus(of: 1)[40]
            // Flip one byte of the ciphertext in place (after the 12-byte header and extension).
            let sql = """
                UPDATE packet SET data = substr(data, 1, length(data) - 20) ||
                  CASE WHEN substr(data, length(data) - 19, 1) = X'00' THEN X'01' ELSE X'00' END || substr(data, length(data) - 18)
                WHERE ssrc = \(ssrc) AND sequence = \(victim.sequenceNumber);
                SELECT changes();
                """
            let update = try await runTool("sqlite3", [copy, sql])
            #expect(update.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(update.stdout) \(update.stderr)")
            let archive = try Archive(path: copy, create: false)
            defer { archive.close() }
            let summary = try Exporter(archive: archive, authority: fixture.authority)
                .run(ExportRequest(conference: fixture.conference, outputDirectory: fixture.directory + "/tampered", participants: ["bob"], formats: [.ogg]))
            let source = try #require(summary.sources.first { $0.ssrc == ssrc })
            #expect(source.decryption.authenticationFailed == 1)
            #expect(source.decryption.failedSequences == [victim.sequenceNumber])
            let file = try #require(summary.files.first)
            let real = try oggPackets(file.path).packets.dropFirst(2).filter { !isConcealment($0) }
            #expect(!real.contains(victim.payload))
            #expect(real.count == fixture.storedOpus(of: 1).count - 1)
            _ = try await checkWithTools(file.path)
        }

        @Test("--from/--to cut at the right times: the cut file is the full export shifted by --from")
        func cutsAtTimes() async throws {
            let fixture = try await ExportFixture.shared.value
            let full = try fixture.export("uncut") { $0.participants = ["bob"] }
            let cut = try fixture.export("cut") { r in
                r.participants = ["bob"]
                r.from = .offset(3)
                r.to = .wallClock(full.conferenceStart + 7)
            }
            #expect(abs(cut.origin - (full.conferenceStart + 3)) < 1e-6)
            let fullOgg = try #require(full.files.first { $0.format == .ogg }), cutOgg = try #require(cut.files.first { $0.format == .ogg })
            // Start time of every real packet, from the granule positions (48 kHz).
            func timed(_ path: String) throws -> [(Double, [UInt8])] {
                var t = 0, out: [(Double, [UInt8])] = []
                for p in try oggPackets(path).packets.dropFirst(2) {
                    let n = try OpusPayload(parsing: p).sampleCount
                    if !isConcealment(p) { out.append((Double(t) / 48_000, p)) }
                    t += n
                }
                return out
            }
            let shift = cut.origin - full.origin
            let expected = try timed(fullOgg.path).filter { $0.0 >= shift - 1e-9 && $0.0 + 0.020 <= shift + 4 + 1e-9 }
            let got = try timed(cutOgg.path)
            #expect(got.count == expected.count && got.count > 50, "\(got.count) packets in the cut, \(expected.count) expected")
            for (g, e) in zip(got, expected) {
                #expect(g.1 == e.1 && abs(g.0 - (e.0 - shift)) <= 1.0 / 48_000 * 2, "packet at \(e.0) s in the full export, \(g.0) s in the cut")
            }
            for file in cut.files {
                let duration = try await checkWithTools(file.path)
                #expect(duration <= 4.0 + 0.1 && duration >= 4.0 - 0.1, "\(file.path): \(duration) s")
            }
        }

        @Test("percrec export: a wrong or missing key exits 3 and writes nothing; --mix writes one aligned Ogg Opus file")
        func commandLine() async throws {
            let fixture = try await ExportFixture.shared.value
            let tool = RecorderProcessTests.executable
            let wrong = AuthorityPrivateKey()
            let keyDirectory = fixture.directory + "/wrong-key"
            try wrong.write(to: keyDirectory)
            let out = fixture.directory + "/cli-denied"
            let denied = try await runTool(tool, ["export", "--archive", fixture.archivePath, "--conference", fixture.conference,
                                                  "--authority-key", keyDirectory + "/authority.key", "--out", out])
            #expect(denied.status == 3, "\(denied.stderr)")
            #expect(denied.stderr.contains("not authorized") && denied.stderr.contains(wrong.publicKey.keyID), "\(denied.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
            let missing = try await runTool(tool, ["export", "--archive", fixture.archivePath, "--conference", fixture.conference,
                                                   "--authority-key", keyDirectory + "/nope.key", "--out", out])
            #expect(missing.status == 3 && !FileManager.default.fileExists(atPath: out), "\(missing.stderr)")

            try fixture.authority.write(to: fixture.directory + "/admin")
            let mixed = try await runTool(tool, ["export", "--archive", fixture.archivePath, "--conference", fixture.conference,
                                                 "--authority-key", fixture.directory + "/admin/authority.key", "--out", fixture.directory + "/cli-mix", "--mix"])
            #expect(mixed.status == 0, "\(mixed.stderr)")
            #expect(mixed.stderr.contains("progress:"), "no progress lines: \(mixed.stderr)")
            let path = mixed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(path.hasSuffix("_mix_audio.ogg"), "\(mixed.stdout)")
            let duration = try await checkWithTools(path)
            let perParticipant = try fixture.export("for-mix") { $0.formats = [.ogg] }
            let longest = perParticipant.files.map(\.durationSeconds).max() ?? 0
            #expect(abs(duration - longest) <= 0.021, "mix \(duration) s, longest participant \(longest) s")
            // Every participant's beep is in the mix at the same time (both files share time zero).
            // Beeps of different participants less than a beep apart merge in the mix. Two equal
            // tones a few ms apart can cancel each other at first (a 7.6 ms offset of the 1 kHz beep
            // is 0.6 of a period, seen in a CI run), so the mix's onset may be any of the cluster's.
            let mix = try await decodedBeeps(path)
            var beeps: [Double] = []
            for file in perParticipant.files { beeps += try await decodedBeeps(file.path) }
            var clusters: [[Double]] = []
            for b in beeps.sorted() {
                if let last = clusters.last?.last, b - last < 0.060 { clusters[clusters.count - 1].append(b) } else { clusters.append([b]) }
            }
            var matched = 0
            for cluster in clusters {
                let onset = cluster[0]
                #expect(mix.contains { $0 >= onset - 0.005 && $0 <= (cluster.last ?? onset) + 0.005 },
                        "a beep at \(onset) s (\(cluster)) is not in the mix: \(mix)")
                matched += cluster.count
            }
            #expect(matched >= 3)
        }
    }
}

/// Beep onsets (seconds from time zero) in a decoded Ogg Opus file.
func decodedBeeps(_ path: String) async throws -> [Double] {
    let raw = try await rawOutput("ffmpeg", ["-v", "error", "-i", path, "-af", "aresample=async=1:first_pts=0", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"])
    let samples = raw.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
    return SyntheticVoice.syncBeepOnsets(in: samples).map { Double($0) / 48_000 }
}

/// What a tool wrote to the file named by its last argument (given as "-"), as bytes:
/// runTool decodes stdout as text, which would mangle PCM.
func rawOutput(_ tool: String, _ arguments: [String]) async throws -> Data {
    let file = NSTemporaryDirectory() + "percrec-raw-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: file) }
    let result = try await runTool(tool, arguments.dropLast() + [file])
    #expect(result.status == 0, "\(tool): \(result.stderr)")
    return try Data(contentsOf: URL(fileURLWithPath: file))
}
