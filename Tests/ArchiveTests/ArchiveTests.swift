import Archive
import Foundation
import Testing
import TestSupport

@Suite("SQLite archive: schema, batched segment writer, reports")
struct ArchiveTests {
    static func packet(_ ssrc: UInt32, _ seq: UInt16, pt: UInt8 = 111, at arrival: Double = 1_700_000_000) -> (PacketRecord, [UInt8]) {
        let header: [UInt8] = [0x80, pt, UInt8(seq >> 8), UInt8(seq & 0xFF), 0, 0, 3, 0xC0,
                               UInt8(ssrc >> 24), UInt8((ssrc >> 16) & 0xFF), UInt8((ssrc >> 8) & 0xFF), UInt8(ssrc & 0xFF)]
        let body = (0 ..< 40).map { UInt8(truncatingIfNeeded: Int(seq) &* 7 &+ $0) }
        return (PacketRecord(ssrc: ssrc, sequence: seq, extendedSequence: Int64(seq), rtpTimestamp: 960,
                             payloadType: pt, marker: seq % 10 == 0, arrival: arrival + Double(seq) / 50), header + body)
    }

    static func epoch(spi: UInt16, keyID: String) -> ArchivedEpoch {
        ArchivedEpoch(spi: spi, keyID: keyID, cipher: "AESKW128", ttl: 3600, hpkeSuite: "test", authorityKeyID: "a1",
                      encapsulatedKey: [UInt8](repeating: 9, count: 32), sealedKey: [UInt8](repeating: 8, count: 45), seenAt: 1_700_000_000)
    }

    @Test("a new archive is in WAL mode with every migration applied, and sqlite3 sees the tables")
    func schema() async throws {
        let path = makeTemporaryDirectory("archive") + "/a.sqlite"
        let archive = try Archive(path: path)
        #expect(try archive.journalMode() == "wal")
        #expect(try archive.appliedMigrations().count == 2)
        #expect(try archive.integrityCheck() == ["ok"])
        let tables = try await runTool("sqlite3", [path, ".tables"])
        for t in ["conference", "recording_segment", "participant", "roster_event", "source", "epoch", "ekt_field", "packet", "rtcp", "drop_counter",
                  "conference_policy", "key_release"] {
            #expect(tables.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).contains(Substring(t)), "missing table \(t)")
        }
        #expect(throws: ArchiveError.notFound(path: path + ".nope")) { try Archive(path: path + ".nope", create: false) }
    }

    @Test("rows wait in memory until the commit deadline (100 ms), then a second connection sees them all")
    func batching() throws {
        let path = makeTemporaryDirectory("archive") + "/a.sqlite"
        let archive = try Archive(path: path)
        let writer = try SegmentWriter(archive: archive, conference: "c1", origin: .live(recorder: "r"), authorityKeyID: "a1")
        #expect(writer.commitDeadline == nil)
        for seq in UInt16(1) ... 20 { let (r, d) = Self.packet(0x1111, seq); #expect(writer.append(r, data: d)) }
        let deadline = try #require(writer.commitDeadline)
        try writer.commitIfDue(now: deadline - .milliseconds(1))
        let other = try Archive(path: path, create: false)
        #expect(try other.packets(conference: "c1").isEmpty)
        #expect(writer.pendingRows == 20)
        try writer.commitIfDue(now: deadline)
        #expect(writer.pendingRows == 0 && writer.commits == 1)
        let stored = try other.packets(conference: "c1")
        #expect(stored.count == 20)
        #expect(stored.map(\.data) == (UInt16(1) ... 20).map { Self.packet(0x1111, $0).1 })
        #expect(stored.map(\.record) == (UInt16(1) ... 20).map { Self.packet(0x1111, $0).0 })
        #expect(stored.allSatisfy { $0.tie == nil })
    }

    @Test("packets before an SSRC's first Full EKT field are kept and tied to it when it arrives, across commits")
    func lateTie() throws {
        let archive = try Archive(path: makeTemporaryDirectory("archive") + "/a.sqlite")
        let writer = try SegmentWriter(archive: archive, conference: "c1", origin: .live(recorder: "r"), authorityKeyID: "a1")
        for seq in UInt16(1) ... 5 { let (r, d) = Self.packet(0xAAAA, seq); writer.append(r, data: d) }
        try writer.commit()
        for seq in UInt16(6) ... 8 { let (r, d) = Self.packet(0xAAAA, seq); writer.append(r, data: d) }
        let field: [UInt8] = [UInt8](repeating: 0xEE, count: 24) + [0, 3, 0, 0, 0, 31, 2]
        field.withUnsafeBytes { writer.noteFullEKTField(ssrc: 0xAAAA, spi: 3, epoch: 0, field: $0, sequence: 9, arrival: 1) }
        for seq in UInt16(9) ... 12 { let (r, d) = Self.packet(0xAAAA, seq); writer.append(r, data: d) }
        // The same field again (senders repeat it) is not stored twice; a new epoch is.
        field.withUnsafeBytes { writer.noteFullEKTField(ssrc: 0xAAAA, spi: 3, epoch: 0, field: $0, sequence: 13, arrival: 1) }
        try writer.commit()
        let field2: [UInt8] = [UInt8](repeating: 0xDD, count: 24) + [0, 4, 0, 0, 0, 31, 2]
        field2.withUnsafeBytes { writer.noteFullEKTField(ssrc: 0xAAAA, spi: 4, epoch: 0, field: $0, sequence: 13, arrival: 2) }
        for seq in UInt16(13) ... 14 { let (r, d) = Self.packet(0xAAAA, seq); writer.append(r, data: d) }
        try writer.finish(reason: "test")
        let stored = try archive.packets(conference: "c1")
        #expect(stored.count == 14)
        #expect(stored.prefix(12).allSatisfy { $0.tie?.spi == 3 && $0.tie?.epoch == 0 })
        #expect(stored.suffix(2).allSatisfy { $0.tie?.spi == 4 })
        let fields = try archive.ektFields(conference: "c1")
        #expect(fields.map(\.spi) == [3, 4])
        #expect(fields[0].field == field && fields[0].firstSequence == 9)
        #expect(try archive.inspect(conference: "c1").segments[0].untiedPackets == 0)
    }

    @Test("a second segment reuses the conference, its epochs and fields; inspect reports gaps, duplicates and drops")
    func segmentsAndReport() throws {
        let archive = try Archive(path: makeTemporaryDirectory("archive") + "/a.sqlite")
        for segment in 0 ..< 2 {
            let writer = try SegmentWriter(archive: archive, conference: "c1", origin: .live(recorder: "r"), authorityKeyID: "a1")
            writer.record(epoch: Self.epoch(spi: 1, keyID: "k1"))
            writer.record(roster: [ArchivedRosterEvent(sequence: 1, kind: "join", fingerprint: "sha-256 AA", name: "alice",
                                                       role: "participant", ssrcs: [0x1234, 0x5678], receivedAt: 1)])
            let missing: Set<UInt16> = segment == 0 ? [5, 6, 7, 20] : []
            for seq in UInt16(1) ... 30 where !missing.contains(seq) {
                let (r, d) = Self.packet(0x1234, seq)
                writer.append(r, data: d)
                if seq == 10 { writer.append(r, data: d) }   // a duplicate
            }
            let (v, vd) = Self.packet(0x5678, 1, pt: 96)
            writer.append(v, data: vd)
            writer.appendRTCP([0x80, 200, 0, 6] + [UInt8](repeating: 1, count: 24), arrival: 2)
            writer.setDropCounters(["replay": 2 + segment, "hop_authentication_failed": 1])
            try writer.finish(reason: "test end")
        }
        let list = try archive.conferences()
        #expect(list.map(\.name) == ["c1"])
        #expect(list[0].segments == 2 && list[0].epochs == 1 && list[0].participants == 1 && list[0].sources == 2)
        #expect(list[0].packets == (26 + 1 + 1) + (30 + 1 + 1))
        let report = try archive.inspect(conference: "c1")
        #expect(report.segments.map(\.endReason) == ["test end", "test end"])
        #expect(report.segments[0].drops == ["replay": 2, "hop_authentication_failed": 1])
        #expect(report.segments[1].drops["replay"] == 3)
        #expect(report.totalDrops == 7)
        let audio = try #require(report.sources.first { $0.ssrc == 0x1234 })
        #expect(audio.media == "audio" && audio.participant == "alice")
        #expect(audio.missingPackets == 4 && audio.gaps == 2 && audio.duplicates == 2)
        #expect(report.sources.first { $0.ssrc == 0x5678 }?.media == "video")
        #expect(report.participants.map(\.name) == ["alice"] && report.participants[0].joins == 2)
        #expect(report.epochs.count == 1 && report.epochs[0].spi == 1)
        #expect(report.policy == ConferenceReport.Policy(nil))
        #expect(!report.policy.announced && !report.policy.allowCatchUp && report.policy.administrators.isEmpty)
        #expect(try archive.rtcpPackets(conference: "c1").count == 2)
        #expect(throws: ArchiveError.unknownConference("zz")) { try archive.inspect(conference: "zz") }
    }

    @Test("a policy waits in the batch like any row and is committed with this segment's id; accessFacts merges the segments' roster copies and returns the newest policy")
    func policyAndAccessFacts() async throws {
        let path = makeTemporaryDirectory("archive") + "/a.sqlite"
        let archive = try Archive(path: path)
        let first = ArchivedPolicy(allowCatchUp: false, administrators: ["carol"], receivedAt: 1_700_000_010)
        let second = ArchivedPolicy(allowCatchUp: true, administrators: ["carol", "ops@example.com"], receivedAt: 1_700_000_020)
        func event(_ sequence: UInt32, _ kind: String, _ name: String, spi: UInt16) -> ArchivedRosterEvent {
            ArchivedRosterEvent(sequence: sequence, kind: kind, fingerprint: "sha-256 \(name)", name: name,
                                role: name == "archive" ? "recorder" : "participant", ssrcs: name == "archive" ? [] : [sequence],
                                receivedAt: 1_700_000_000 + Double(sequence), spi: spi)
        }
        let log = [event(1, "join", "alice", spi: 1), event(2, "join", "archive", spi: 2), event(3, "join", "bob", spi: 3)]
        var segments: [Int64] = []
        for (i, policy) in [first, second].enumerated() {
            let writer = try SegmentWriter(archive: archive, conference: "c1", origin: .live(recorder: "r"), authorityKeyID: "a1")
            segments.append(writer.segmentID)
            writer.record(epoch: Self.epoch(spi: UInt16(i + 2), keyID: "k\(i)"))
            // The second segment's copy repeats 1…3 (the KD sends a new member the whole log) and adds 4.
            writer.record(roster: i == 0 ? log : log + [event(4, "leave", "alice", spi: 4)])
            writer.record(policy: policy)
            #expect(writer.pendingRows == 1 + (i == 0 ? 3 : 4) + 1)   // epoch, roster, policy
            let deadline = try #require(writer.commitDeadline)
            try writer.commitIfDue(now: deadline - .milliseconds(1))
            #expect(try archive.conferencePolicy(conference: "c1") == (i == 0 ? nil : first), "visible before its commit")
            try writer.commitIfDue(now: deadline)
            #expect(writer.pendingRows == 0)
            #expect(try archive.conferencePolicy(conference: "c1") == policy)
            try writer.finish(reason: "test")
        }
        let rows = try await runTool("sqlite3", [path, "SELECT recording_segment_id, allow_catch_up, administrators FROM conference_policy ORDER BY id"])
        #expect(rows.stdout == "\(segments[0])|0|[\"carol\"]\n\(segments[1])|1|[\"carol\",\"ops@example.com\"]\n")

        let facts = try archive.accessFacts(conference: "c1")
        #expect(facts.conference == "c1")
        #expect(facts.policy == second)
        #expect(facts.roster.map(\.sequence) == [1, 2, 3, 4])
        #expect(facts.roster.map(\.kind) == ["join", "join", "join", "leave"])
        #expect(facts.roster.map(\.name) == ["alice", "archive", "bob", "alice"])
        #expect(facts.roster.map(\.spi) == [1, 2, 3, 4])
        #expect(facts.roster[1].role == "recorder" && facts.roster[1].fingerprint == "sha-256 archive")
        #expect(facts.roster.map(\.time) == [1, 2, 3, 4].map { 1_700_000_000 + Double($0) })
        #expect(facts.epochs.map(\.spi) == [2, 3] && facts.epochs.map(\.keyID) == ["k0", "k1"])

        let report = try archive.inspect(conference: "c1")
        #expect(report.policy == ConferenceReport.Policy(second))
        #expect(report.policy.announced && report.policy.receivedAt == second.receivedAt)
        // recordPolicy (outside a segment) is newer still, and wins.
        let third = ArchivedPolicy(allowCatchUp: false, administrators: [], receivedAt: 1_700_000_030)
        try archive.recordPolicy(conference: "c1", segment: nil, third)
        #expect(try archive.accessFacts(conference: "c1").policy == third)
        #expect(throws: ArchiveError.unknownConference("zz")) { try archive.accessFacts(conference: "zz") }
    }

    @Test("a segment that stored nothing can be discarded (with its conference if it was the only one); one with rows cannot")
    func discardEmpty() throws {
        let archive = try Archive(path: makeTemporaryDirectory("archive") + "/a.sqlite")
        let empty = try SegmentWriter(archive: archive, conference: "c1", origin: .live(recorder: "r"), authorityKeyID: "a1")
        #expect(try empty.discardIfEmpty(reason: "never keyed"))
        #expect(try archive.conferences().isEmpty)
        let used = try SegmentWriter(archive: archive, conference: "c2", origin: .live(recorder: "r"), authorityKeyID: "a1")
        let (r, d) = Self.packet(1, 1)
        used.append(r, data: d)
        #expect(try used.discardIfEmpty(reason: "done") == false)
        #expect(try archive.inspect(conference: "c2").segments.map(\.endReason) == ["done"])
    }

    @Test("two connections opening a new archive at the same moment both succeed (a recorder starting while list runs)")
    func concurrentOpen() async throws {
        let dir = makeTemporaryDirectory("archive-race")
        let failures = await withCheckedContinuation { (done: CheckedContinuation<[String], Never>) in
            Thread.detachNewThread {
                let failures = FailureList()
                for i in 0 ..< 30 {
                    let path = dir + "/a\(i).sqlite"
                    let group = DispatchGroup()
                    for _ in 0 ..< 2 {
                        group.enter()
                        Thread.detachNewThread {
                            do { _ = try Archive(path: path) } catch { failures.append("\(error)") }
                            group.leave()
                        }
                    }
                    group.wait()
                }
                done.resume(returning: failures.all)
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(3))")
    }
}

final class FailureList: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ s: String) { lock.withLock { items.append(s) } }
    var all: [String] { lock.withLock { items } }
}
