import Access
import Archive
import Foundation
import Testing
import TestSupport

/// `percrec token init|issue` and `percrec authority audit` as processes (the built binary).
@Suite("percrec token and authority audit as processes")
struct AccessCommandTests {
    static var executable: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/percrec").path
    }

    static func percrec(_ arguments: String...) async throws -> ToolResult {
        #expect(FileManager.default.isExecutableFile(atPath: executable), "build percrec first (swift build)")
        return try await runTool(executable, arguments)
    }

    @Test("token init writes the key pair once; token issue prints a JWT that AccessToken.verify accepts; usage errors exit 2")
    func tokens() async throws {
        let dir = makeTemporaryDirectory("token-cli")
        let initialized = try await Self.percrec("token", "init", "--out", dir)
        #expect(initialized.status == 0, "\(initialized.stderr)")
        #expect(initialized.stdout.contains(dir + "/token-signing.key") && initialized.stdout.contains(dir + "/token-signing.pub"))
        let again = try await Self.percrec("token", "init", "--out", dir)
        #expect(again.status == 2 && again.stderr.contains("refusing to overwrite"), "\(again.status) \(again.stderr)")

        let key = dir + "/token-signing.key"
        let issued = try await Self.percrec("token", "issue", "--signing-key", key, "--principal", "alice", "--conference", "c1",
                                            "--role", "participant", "--ttl", "2h")
        #expect(issued.status == 0, "\(issued.stderr)")
        let token = issued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let claims = try await AccessToken.verify(token, conference: "c1", key: try TokenVerificationKey(contentsOf: dir + "/token-signing.pub"))
        #expect(claims.principal == "alice" && claims.role == .participant)
        #expect(claims.expiresAt.timeIntervalSince(claims.issuedAt) == 7200)

        let json = try await Self.percrec("token", "issue", "--signing-key", key, "--principal", "root", "--conference", "c1",
                                          "--role", "admin", "--ttl", "15m", "--json")
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let printed = try #require(object["token"] as? String)
        let printedClaims = try #require(object["claims"] as? [String: Any])
        #expect(printedClaims["principal"] as? String == "root")
        #expect(printedClaims["role"] as? String == "admin")
        let verified = try await AccessToken.verify(printed, conference: "c1", key: try TokenVerificationKey(contentsOf: dir + "/token-signing.pub"))
        #expect(printedClaims["expires_at"] as? String == verified.expiresAt.formatted(.iso8601))
        #expect(printedClaims["token_id"] as? String == verified.tokenID)

        for (ttl, seconds) in [("90", 90.0), ("90s", 90), ("7d", 7 * 86_400), ("30d", 30 * 86_400)] {
            let r = try await Self.percrec("token", "issue", "--signing-key", key, "--principal", "a", "--conference", "c", "--role", "admin", "--ttl", ttl)
            #expect(r.status == 0, "--ttl \(ttl): \(r.stderr)")
            let c = AccessToken.unverifiedClaims(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(c.map { $0.expiresAt.timeIntervalSince($0.issuedAt) } == seconds, "--ttl \(ttl)")
        }
        for ttl in ["31d", "5x", "1.5h", "-3", "0", "h", "99999999999999999999d"] {
            let r = try await Self.percrec("token", "issue", "--signing-key", key, "--principal", "a", "--conference", "c", "--role", "admin", "--ttl", ttl)
            #expect(r.status == 2 && r.stderr.contains(ttl), "--ttl \(ttl): exit \(r.status), \(r.stderr)")
        }
        let role = try await Self.percrec("token", "issue", "--signing-key", key, "--principal", "a", "--conference", "c", "--role", "boss", "--ttl", "1h")
        #expect(role.status == 2 && role.stderr.contains("boss"), "\(role.stderr)")
        let missing = try await Self.percrec("token", "issue", "--signing-key", key, "--principal", "a", "--role", "admin", "--ttl", "1h")
        #expect(missing.status == 2, "\(missing.stderr)")
        let unreadable = try await Self.percrec("token", "issue", "--signing-key", dir + "/nope.key", "--principal", "a", "--conference", "c",
                                                "--role", "admin", "--ttl", "1h")
        #expect(unreadable.status == 1 && unreadable.stderr.contains("nope.key"), "\(unreadable.stderr)")
    }

    @Test("authority audit: intact (exit 0, head printed), filtered, tampered (exit 1, located), empty, missing archive (exit 2)")
    func audit() async throws {
        let dir = makeTemporaryDirectory("audit-cli")
        let path = dir + "/archive.sqlite"
        let archive = try Archive(path: path)
        let log = AuditLog(archive: archive)
        for i in 1 ... 3 {
            try log.append(AuditRecord(at: Date(timeIntervalSince1970: 1_800_000_000 + Double(i)), principal: "user\(i)", role: "participant",
                                       conference: i == 2 ? "other" : "c1", requester: "00112233aabbccdd", tokenID: "t\(i)",
                                       granted: ["4660/0011223344556677"], refused: [], decision: .granted, reason: "present"))
        }
        let head = try #require(try log.verify().head).map { String(format: "%02x", $0) }.joined()
        archive.close()

        let intact = try await Self.percrec("authority", "audit", "--archive", path)
        #expect(intact.status == 0, "\(intact.stderr)")
        #expect(intact.stdout.contains("audit log intact: 3 entries, head \(head)"), "\(intact.stdout)")
        #expect(intact.stdout.contains("#1 2027-01-15T08:00:01Z user1 participant c1 granted granted=[4660/0011223344556677] refused=[]"),
                "\(intact.stdout)")

        let filtered = try await Self.percrec("authority", "audit", "--archive", path, "--conference", "other")
        #expect(filtered.status == 0)
        #expect(filtered.stdout.contains("user2") && !filtered.stdout.contains("user1"), "\(filtered.stdout)")

        let json = try await Self.percrec("authority", "audit", "--archive", path, "--json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["intact"] as? Bool == true && object["head"] as? String == head)

        let tamper = try await runTool("sqlite3", [path, "UPDATE key_release SET principal = 'mallory' WHERE sequence = 2"])
        #expect(tamper.status == 0, "\(tamper.stderr)")
        let broken = try await Self.percrec("authority", "audit", "--archive", path)
        #expect(broken.status == 1)
        #expect(broken.stdout.contains("entry 2 (row 2): modified"), "\(broken.stdout)")
        #expect(!broken.stdout.contains("audit log intact"))

        let emptyPath = dir + "/empty.sqlite"
        try Archive(path: emptyPath).close()
        let empty = try await Self.percrec("authority", "audit", "--archive", emptyPath)
        #expect(empty.status == 0 && empty.stdout.contains("audit log empty"), "\(empty.stdout) \(empty.stderr)")

        let none = try await Self.percrec("authority", "audit", "--archive", dir + "/missing.sqlite")
        #expect(none.status == 2 && none.stderr.contains("missing.sqlite"), "\(none.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/missing.sqlite"))
    }
}
