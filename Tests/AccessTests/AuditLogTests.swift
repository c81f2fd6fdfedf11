import Access
import Archive
import Foundation
import Testing
import TestSupport

@Suite("Audit log: the hash chain of key releases, and tampering located with raw SQL")
struct AuditLogTests {
    static func record(_ i: Int, conference: String = "c1") -> AuditRecord {
        AuditRecord(at: Date(timeIntervalSince1970: 1_800_000_000 + Double(i) * 1.25 + 0.1), principal: "user\(i)",
                    role: i == 4 ? "admin" : "participant", conference: conference, requester: String(format: "%016x", i * 0x1111),
                    tokenID: String(format: "%032x", i), granted: i == 3 ? [] : ["4660/00112233445566\(i)\(i)", "4661/aabbccddeeff00\(i)\(i)"],
                    refused: i % 2 == 0 ? ["4662/0102030405060708"] : [], decision: i == 3 ? .refused : (i % 2 == 0 ? .partial : .granted),
                    reason: i == 3 ? "token expired" : "policy: present \(i)")
    }

    /// A fresh archive with `count` entries; closed, so sqlite3 can edit it.
    static func makeLog(_ count: Int = 5) throws -> (path: String, entries: [AuditEntry]) {
        let path = makeTemporaryDirectory("audit") + "/archive.sqlite"
        let archive = try Archive(path: path)
        let log = AuditLog(archive: archive)
        let entries = try (1 ... count).map { try log.append(record($0)) }
        archive.close()
        return (path, entries)
    }

    static func sql(_ path: String, _ statements: String) async throws {
        let result = try await runTool("sqlite3", [path, statements])
        #expect(result.status == 0, "sqlite3 failed (apt install sqlite3, or run Scripts/bootstrap.sh): \(result.stderr)")
    }

    static func verify(_ path: String) throws -> AuditReport {
        let archive = try Archive(path: path, create: false)
        defer { archive.close() }
        return try AuditLog(archive: archive).verify()
    }

    static func summary(_ report: AuditReport) -> [String] {
        report.problems.map { "\($0.kind.rawValue) \($0.sequence) row \($0.rowID)" }
    }

    static let columns = "sequence, at, principal, role, conference, requester, token_id, granted, refused, decision, reason, previous_hash, hash"

    @Test("five appends: sequences 1…5, each linked to the previous hash, intact, head = the last hash")
    func intact() throws {
        let (path, appended) = try Self.makeLog()
        #expect(appended.map(\.sequence) == [1, 2, 3, 4, 5])
        #expect(appended[0].previousHash == [UInt8](repeating: 0, count: 32))
        for i in 1 ..< 5 { #expect(appended[i].previousHash == appended[i - 1].hash) }
        let report = try Self.verify(path)
        #expect(report.isIntact, "\(report.problems)")
        #expect(report.problems.isEmpty)
        #expect(report.head == appended[4].hash)
        #expect(report.entries == appended)
        #expect(report.entries.map(\.record) == (1 ... 5).map { Self.record($0) })
        for e in report.entries {
            #expect(AuditLog.hash(sequence: e.sequence, record: e.record, previousHash: e.previousHash) == e.hash)
            #expect(e.hash.count == 32)
        }
        // Every field is in the hash.
        let e = report.entries[1]
        var changed = e.record
        for change in [{ (r: inout AuditRecord) in r.principal += "x" }, { $0.role = "admin" }, { $0.conference += "x" }, { $0.requester += "0" },
                       { $0.tokenID += "0" }, { $0.granted.removeLast() }, { $0.refused.append("1/2") }, { $0.decision = .granted },
                       { $0.reason += "." }, { $0.at = $0.at.addingTimeInterval(1e-6) }, { $0.granted = [$0.granted.joined()] }] {
            changed = e.record
            change(&changed)
            #expect(AuditLog.hash(sequence: e.sequence, record: changed, previousHash: e.previousHash) != e.hash)
        }
        #expect(AuditLog.hash(sequence: e.sequence + 1, record: e.record, previousHash: e.previousHash) != e.hash)
        #expect(AuditLog.hash(sequence: e.sequence, record: e.record, previousHash: e.hash) != e.hash)
    }

    @Test("the hash follows the documented layout: Python recomputes every stored hash from the rows sqlite3 holds")
    func independentHash() async throws {
        let (path, _) = try Self.makeLog()
        let script = """
            import hashlib, json, sqlite3, struct, sys
            def text(s): b = s.encode(); return struct.pack(">I", len(b)) + b
            def blob(b): return struct.pack(">I", len(b)) + b
            def lst(l): return struct.pack(">I", len(l)) + b"".join(text(x) for x in l)
            db = sqlite3.connect(sys.argv[1])
            previous = bytes(32)
            for row in db.execute("SELECT sequence, at, principal, role, conference, requester, token_id, granted, refused, decision, reason, previous_hash, hash FROM key_release ORDER BY id"):
                seq, at, principal, role, conference, requester, token, granted, refused, decision, reason, prev, stored = row
                assert prev == previous, (seq, "link")
                data = (text("percrec audit v1") + blob(prev) + struct.pack(">q", seq) + struct.pack(">d", at) + text(principal) + text(role)
                        + text(conference) + text(requester) + text(token) + lst(json.loads(granted)) + lst(json.loads(refused))
                        + text(decision) + text(reason))
                assert hashlib.sha256(data).digest() == stored, (seq, "hash")
                previous = stored
            print(previous.hex())
            """
        let result = try await runTool("python3", ["-c", script, path])
        #expect(result.status == 0, "python3: \(result.stderr)")
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == (try Self.verify(path).head ?? []).map { String(format: "%02x", $0) }.joined())
    }

    @Test("a modified field is located at its entry")
    func modifiedField() async throws {
        let (path, _) = try Self.makeLog()
        try await Self.sql(path, "UPDATE key_release SET granted = '[\"4660/ffffffffffffffff\"]' WHERE sequence = 3")
        let report = try Self.verify(path)
        #expect(Self.summary(report) == ["modified 3 row 3"])
        #expect(report.problems.first?.description.hasPrefix("entry 3 (row 3): modified — ") == true)
        // The time column too (one ulp is enough).
        let (path2, _) = try Self.makeLog()
        try await Self.sql(path2, "UPDATE key_release SET at = at + 0.000001 WHERE sequence = 2")
        #expect(Self.summary(try Self.verify(path2)) == ["modified 2 row 2"])
    }

    @Test("a modified entry whose hash was recomputed is located through the next entry's link")
    func modifiedAndRehashed() async throws {
        let (path, entries) = try Self.makeLog()
        var forged = entries[2].record
        forged.decision = .granted
        forged.reason = "looks fine"
        let hash = AuditLog.hash(sequence: 3, record: forged, previousHash: entries[2].previousHash)
        let hex = hash.map { String(format: "%02x", $0) }.joined()
        try await Self.sql(path, "UPDATE key_release SET decision = 'granted', reason = 'looks fine', hash = X'\(hex)' WHERE sequence = 3")
        let report = try Self.verify(path)
        #expect(Self.summary(report) == ["modified 3 row 3"])
    }

    @Test("a deleted middle entry is located at the gap")
    func deletedMiddle() async throws {
        let (path, _) = try Self.makeLog()
        try await Self.sql(path, "DELETE FROM key_release WHERE sequence = 3")
        let report = try Self.verify(path)
        #expect(Self.summary(report) == ["deleted 3 row 3"])
        #expect(report.entries.map(\.sequence) == [1, 2, 4, 5])
    }

    @Test("a deleted last entry shows through sqlite_sequence, and still after the log was appended to")
    func deletedLast() async throws {
        let (path, _) = try Self.makeLog()
        try await Self.sql(path, "DELETE FROM key_release WHERE sequence = 5")
        #expect(Self.summary(try Self.verify(path)) == ["truncated 5 row 5"])
        try await Self.sql(path, "DELETE FROM key_release WHERE sequence = 4")
        #expect(Self.summary(try Self.verify(path)) == ["truncated 4 row 4"])

        let archive = try Archive(path: path, create: false)
        let appended = try AuditLog(archive: archive).append(Self.record(9))
        archive.close()
        #expect(appended.sequence == 4 && appended.rowID == 6)
        #expect(Self.summary(try Self.verify(path)) == ["deleted 4 row 4"])

        let (all, _) = try Self.makeLog(3)
        try await Self.sql(all, "DELETE FROM key_release")
        let report = try Self.verify(all)
        #expect(report.entries.isEmpty)
        #expect(Self.summary(report) == ["truncated 1 row 1"])
    }

    @Test("reordering is located: two rows' contents swapped, or only their sequence numbers swapped")
    func reordered() async throws {
        let (path, _) = try Self.makeLog()
        try await Self.sql(path, """
            BEGIN;
            CREATE TEMP TABLE moved AS SELECT * FROM key_release WHERE id IN (2, 4);
            UPDATE key_release SET sequence = -id WHERE id IN (2, 4);
            UPDATE key_release SET (\(Self.columns)) = (SELECT \(Self.columns) FROM moved WHERE moved.id = 6 - key_release.id) WHERE id IN (2, 4);
            COMMIT;
            """)
        let swapped = try Self.verify(path)
        #expect(swapped.entries.map(\.sequence) == [1, 4, 3, 2, 5])
        #expect(Self.summary(swapped) == ["reordered 2 row 4", "reordered 4 row 2"])

        let (path2, _) = try Self.makeLog()
        try await Self.sql(path2, """
            BEGIN;
            UPDATE key_release SET sequence = -1 WHERE id = 2;
            UPDATE key_release SET sequence = 2 WHERE id = 3;
            UPDATE key_release SET sequence = 3 WHERE id = 2;
            COMMIT;
            """)
        #expect(Self.summary(try Self.verify(path2)) == ["reordered 2 row 2", "reordered 3 row 3"])
    }

    @Test("an inserted entry (an earlier grant replayed at the end) is located")
    func inserted() async throws {
        let (path, _) = try Self.makeLog()
        try await Self.sql(path, "INSERT INTO key_release (\(Self.columns)) SELECT 6, at, principal, role, conference, requester, token_id, granted, refused, decision, reason, previous_hash, hash FROM key_release WHERE sequence = 2")
        let report = try Self.verify(path)
        #expect(Self.summary(report) == ["inserted 6 row 6"])
        #expect(report.problems.first?.detail.contains("entry 2") == true)

        // A forged row carrying a made-up hash, chained onto nothing.
        let (path2, _) = try Self.makeLog()
        try await Self.sql(path2, "INSERT INTO key_release (\(Self.columns)) VALUES (6, 1800000100, 'mallory', 'admin', 'c1', 'ff', 'ff', '[\"4660/0011223344556677\"]', '[]', 'granted', 'ok', randomblob(32), randomblob(32))")
        #expect(Self.summary(try Self.verify(path2)) == ["inserted 6 row 6"])
    }

    @Test("an empty log is intact and has no head")
    func empty() throws {
        let path = makeTemporaryDirectory("audit") + "/archive.sqlite"
        let archive = try Archive(path: path)
        defer { archive.close() }
        let report = try AuditLog(archive: archive).verify()
        #expect(report.isIntact && report.entries.isEmpty && report.head == nil)
        #expect(try archive.keyReleaseHighWater() == nil)
        #expect(try archive.keyReleases().isEmpty)
    }

    @Test("two archives on one file appending from two threads keep a single unbroken chain")
    func concurrentAppends() async throws {
        let path = makeTemporaryDirectory("audit") + "/archive.sqlite"
        let first = try Archive(path: path)
        let second = try Archive(path: path, create: false)
        let logs = [AuditLog(archive: first), AuditLog(archive: second)]
        let perWriter = 40
        let failures = Failures()
        await offPool {
            DispatchQueue.concurrentPerform(iterations: 2) { w in
                for i in 0 ..< perWriter {
                    do { try logs[w].append(Self.record(w * 100 + i, conference: "c\(w)")) } catch { failures.add("\(error)") }
                }
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        let report = try logs[0].verify()
        #expect(report.isIntact, "\(report.problems)")
        #expect(report.entries.map(\.sequence) == (1 ... Int64(2 * perWriter)).map { $0 })
        #expect(report.entries.map(\.rowID) == (1 ... Int64(2 * perWriter)).map { $0 })
        #expect(Set(report.entries.map(\.record.conference)) == ["c0", "c1"])
        #expect(try second.keyReleaseHighWater() == Int64(2 * perWriter))
        first.close()
        second.close()
    }

    final class Failures: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [String] = []
        func add(_ s: String) { lock.withLock { items.append(s) } }
        var all: [String] { lock.withLock { items } }
    }
}
