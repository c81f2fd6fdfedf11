import Access
import Archive
import ArgumentParser
import Foundation

// `percrec token init`, `percrec token issue`, `percrec authority audit` (docs/access.md).

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Access tokens (ES256 JWTs) the archive authority accepts for key requests.",
        subcommands: [TokenInit.self, TokenIssue.self])
}

struct TokenInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the service provider's token signing key pair (ES256, P-256).",
        discussion: """
        Writes DIR/token-signing.key (PKCS#8 PEM, mode 0600: keep it with whoever issues tokens) \
        and DIR/token-signing.pub (SubjectPublicKeyInfo PEM: give it to the archive authority). \
        Refuses to overwrite either. Exit codes: 0 ok, 1 failure, 2 usage (a key file exists).
        """)

    @Option(help: "Directory for token-signing.key and token-signing.pub.")
    var out: String?

    func run() throws {
        guard let out else { throw usageError("token init needs --out DIR") }
        let key = TokenSigningKey.generate()
        do {
            let (priv, pub) = try key.write(to: out)
            print("token key id: \(key.publicKey.keyID)")
            print("private key: \(priv) (0600; only the token issuer keeps it)")
            print("public key:  \(pub) (give this to the archive authority)")
        } catch {
            if case let .keyFile(_, reason) = error, reason == TokenSigningKey.existsReason { throw usageError("\(error)") }
            throw operationalError("\(error)")
        }
    }
}

struct TokenIssue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue an access token for one principal and conference; prints the JWT.",
        discussion: """
        --ttl is the lifetime: 90 or 90s (seconds), 15m, 2h, 7d; at most 30d. With --json the \
        token is printed with its claims (times in ISO 8601). Exit codes: 0 ok, 1 the signing key \
        cannot be read, 2 usage.
        """)

    @Option(help: "The service provider's signing key (token-signing.key).")
    var signingKey: String?
    @Option(help: "Who the token is for (its \"sub\"): the name the conference roster and policy use.")
    var principal: String?
    @Option(help: "The conference the token is good for.")
    var conference: String?
    @Option(help: "participant or admin.")
    var role: String?
    @Option(parsing: .unconditional, help: "Lifetime: 90, 90s, 15m, 2h or 7d (at most 30d).")
    var ttl: String?
    @Option(help: "The \"iss\" claim.")
    var issuer: String = "percrec"
    @Flag(help: "Print the token and its claims as JSON.")
    var json = false

    func run() async throws {
        guard let signingKey, let principal, let conference, let role, let ttl else {
            throw usageError("token issue needs --signing-key, --principal, --conference, --role and --ttl")
        }
        guard !principal.isEmpty else { throw usageError("--principal is empty") }
        guard !conference.isEmpty else { throw usageError("--conference is empty") }
        guard let accessRole = AccessRole(rawValue: role) else {
            throw usageError("--role \(role): must be one of \(AccessRole.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let lifetime = try parseTTL(ttl)
        let key: TokenSigningKey
        do { key = try TokenSigningKey(contentsOf: signingKey) } catch { throw operationalError("--signing-key: \(error)") }
        let token: String
        do {
            token = try await AccessToken.issue(principal: principal, conference: conference, role: accessRole, lifetime: lifetime,
                                                signingKey: key, issuer: issuer)
        } catch { throw operationalError("\(error)") }
        guard json else { print(token); return }
        guard let claims = AccessToken.unverifiedClaims(token) else { throw operationalError("cannot decode the token just issued") }
        try printJSON(IssuedToken(token: token, claims: .init(claims), keyID: key.publicKey.keyID))
    }

    struct IssuedToken: Encodable {
        struct Claims: Encodable {
            var principal, conference, role, issuedAt, expiresAt, tokenID, issuer: String
            init(_ c: AccessClaims) {
                principal = c.principal
                conference = c.conference
                role = c.role.rawValue
                issuedAt = isoTime(c.issuedAt)
                expiresAt = isoTime(c.expiresAt)
                tokenID = c.tokenID
                issuer = c.issuer
            }
        }
        var token: String
        var claims: Claims
        var keyID: String
    }
}

/// `--ttl`: a whole number of seconds, minutes, hours or days (90, 90s, 15m, 2h, 7d), at most 30 days.
func parseTTL(_ text: String) throws -> TimeInterval {
    var digits = Substring(text)
    var unit: Double = 1
    if let last = text.last, !last.isNumber {
        switch last {
        case "s": unit = 1
        case "m": unit = 60
        case "h": unit = 3600
        case "d": unit = 86_400
        default: throw usageError("--ttl \(text): not a duration (90, 90s, 15m, 2h, 7d)")
        }
        digits = digits.dropLast()
    }
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let count = Int(digits) else {
        throw usageError("--ttl \(text): not a duration (90, 90s, 15m, 2h, 7d)")
    }
    let seconds = Double(count) * unit
    guard seconds > 0 else { throw usageError("--ttl \(text): must be longer than zero") }
    guard seconds <= AccessToken.maximumLifetime else { throw usageError("--ttl \(text): longer than the maximum of 30 days") }
    return seconds
}

func isoTime(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false))
}

struct AuthorityAudit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify the hash-chained log of key releases and print it.",
        discussion: """
        Checks the whole chain (every entry's hash, the links between entries, sequence and row \
        order, and SQLite's AUTOINCREMENT high-water mark), prints the entries (only those of \
        --conference when given), then the head hash. Keep the head somewhere else: a log \
        rewritten as a whole is consistent again, and only a different head shows it. \
        Exit codes: 0 intact (or empty), 1 problems found (each is located), 2 usage (no archive).
        """)

    @Option(help: "The archive (SQLite).")
    var archive: String = Archive.defaultPath
    @Option(help: "Print only this conference's entries (the whole chain is verified regardless).")
    var conference: String?
    @Flag(help: "Machine-readable output.")
    var json = false

    func run() throws {
        let store = try openArchive(archive, create: false)
        let report: AuditReport
        do { report = try AuditLog(archive: store).verify() } catch { throw operationalError("\(error)") }
        let shown = report.entries.filter { conference == nil || $0.record.conference == conference }
        if json {
            try printJSON(AuditJSON(intact: report.isIntact, entries: report.entries.count, head: report.head.map(hexText),
                                    shown: shown.map(AuditJSON.Entry.init), problems: report.problems.map(AuditJSON.Problem.init)))
        } else {
            for e in shown { print(Self.line(e)) }
            for p in report.problems { print(p.description) }
            if report.isIntact {
                if report.entries.isEmpty {
                    print("audit log empty")
                } else {
                    let filtered = conference.map { " (\(shown.count) for conference \"\($0)\")" } ?? ""
                    print("audit log intact: \(report.entries.count) entries\(filtered), head \(report.head.map(hexText) ?? "-")")
                }
            }
        }
        if !report.isIntact {
            fflush(nil)   // flush stdout: the entries come before the error line
            throw operationalError("audit log NOT intact: \(report.problems.count) problem\(report.problems.count == 1 ? "" : "s") "
                                   + "in \(report.entries.count) entries")
        }
    }

    static func line(_ e: AuditEntry) -> String {
        let r = e.record
        return "#\(e.sequence) \(isoTime(r.at)) \(r.principal) \(r.role) \(r.conference) \(r.decision.rawValue) "
            + "granted=[\(r.granted.joined(separator: ","))] refused=[\(r.refused.joined(separator: ","))] "
            + "reason=\(quoted(r.reason)) hash=\(hexText(e.hash.prefix(8)))"
    }

    static func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    struct AuditJSON: Encodable {
        struct Entry: Encodable {
            var sequence: Int64, row: Int64, at: String, principal, role, conference, requester, tokenId: String
            var granted, refused: [String]
            var decision, reason, previousHash, hash: String
            init(_ e: AuditEntry) {
                sequence = e.sequence
                row = e.rowID
                at = isoTime(e.record.at)
                principal = e.record.principal
                role = e.record.role
                conference = e.record.conference
                requester = e.record.requester
                tokenId = e.record.tokenID
                granted = e.record.granted
                refused = e.record.refused
                decision = e.record.decision.rawValue
                reason = e.record.reason
                previousHash = hexText(e.previousHash)
                hash = hexText(e.hash)
            }
        }
        struct Problem: Encodable {
            var kind: String, sequence: Int64, row: Int64, detail: String
            init(_ p: AuditProblem) { kind = p.kind.rawValue; sequence = p.sequence; row = p.rowID; detail = p.detail }
        }
        var intact: Bool
        var entries: Int
        var head: String?
        var shown: [Entry]
        var problems: [Problem]
    }
}

