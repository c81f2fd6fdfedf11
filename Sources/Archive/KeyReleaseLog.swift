import Foundation
import GRDB

/// One row of `key_release`: a decision of the archive authority, with its place in the hash
/// chain. The archive stores rows as given; computing and checking the chain is the Access
/// module's `AuditLog` (docs/access.md).
public struct KeyReleaseRow: Sendable, Equatable {
    /// The row id (AUTOINCREMENT): 0 before the row is inserted.
    public var id: Int64
    public var sequence: Int64
    /// Unix seconds.
    public var at: Double
    public var principal: String
    public var role: String
    public var conference: String
    public var requester: String
    public var tokenID: String
    /// "SPI/key id" strings.
    public var granted: [String]
    public var refused: [String]
    public var decision: String
    public var reason: String
    public var previousHash: [UInt8]
    public var hash: [UInt8]

    public init(id: Int64 = 0, sequence: Int64, at: Double, principal: String, role: String, conference: String,
                requester: String, tokenID: String, granted: [String], refused: [String], decision: String, reason: String,
                previousHash: [UInt8], hash: [UInt8]) {
        self.id = id
        self.sequence = sequence
        self.at = at
        self.principal = principal
        self.role = role
        self.conference = conference
        self.requester = requester
        self.tokenID = tokenID
        self.granted = granted
        self.refused = refused
        self.decision = decision
        self.reason = reason
        self.previousHash = previousHash
        self.hash = hash
    }
}

extension Archive {
    /// Appends one row in a single IMMEDIATE transaction: `make` receives the current last row
    /// (highest id) and returns the row to insert, so two writers (two processes) can never fork
    /// the chain. The returned row carries the id SQLite assigned.
    public func appendKeyRelease(_ make: (KeyReleaseRow?) throws -> KeyReleaseRow) throws(ArchiveError) -> KeyReleaseRow {
        let operation = "append key release"
        do {
            return try pool.writeWithoutTransaction { db in
                var inserted: KeyReleaseRow?
                try db.inTransaction(.immediate) {
                    let last = try Row.fetchOne(db, sql: "SELECT * FROM key_release ORDER BY id DESC LIMIT 1").map(Self.keyReleaseRow)
                    var row = try make(last)
                    try db.execute(sql: """
                        INSERT INTO key_release (sequence, at, principal, role, conference, requester, token_id, granted, refused,
                                                 decision, reason, previous_hash, hash)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """, arguments: [row.sequence, row.at, row.principal, row.role, row.conference, row.requester, row.tokenID,
                                         Self.jsonArray(row.granted), Self.jsonArray(row.refused), row.decision, row.reason,
                                         Data(row.previousHash), Data(row.hash)])
                    row.id = db.lastInsertedRowID
                    inserted = row
                    return .commit
                }
                guard let inserted else { throw ArchiveError.database(operation: operation, reason: "no row inserted") }
                return inserted
            }
        } catch let e as ArchiveError { throw e } catch {
            throw .database(operation: operation, reason: Self.reason(error))
        }
    }

    /// All rows by id.
    public func keyReleases() throws(ArchiveError) -> [KeyReleaseRow] {
        try keyReleaseSnapshot().rows
    }

    /// The highest id AUTOINCREMENT ever handed out for key_release (from sqlite_sequence), nil if none.
    public func keyReleaseHighWater() throws(ArchiveError) -> Int64? {
        try keyReleaseSnapshot().highWater
    }

    /// `keyReleases()` and `keyReleaseHighWater()` read in one transaction, so an append between
    /// the two reads cannot look like a deleted last row.
    public func keyReleaseSnapshot() throws(ArchiveError) -> (rows: [KeyReleaseRow], highWater: Int64?) {
        try read("read key releases") { db in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM key_release ORDER BY id").map(Self.keyReleaseRow)
            let hasSequenceTable = try Bool.fetchOne(db, sql: "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'sqlite_sequence'") ?? false
            let highWater = hasSequenceTable
                ? try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'key_release'") : nil
            return (rows, highWater)
        }
    }

    /// Reads a row leniently: the table may have been edited by hand (that is what the audit looks
    /// for), so a value of an unexpected type becomes a placeholder the hash check then rejects,
    /// never a crash.
    static func keyReleaseRow(_ r: Row) -> KeyReleaseRow {
        func text(_ column: String) -> String {
            let value: DatabaseValue = r[column]
            switch value.storage {
            case let .string(s): return s
            case let .int64(i): return String(i)
            case let .double(d): return String(d)
            case let .blob(b): return String(decoding: b, as: UTF8.self)
            case .null: return ""
            }
        }
        func integer(_ column: String) -> Int64 {
            let value: DatabaseValue = r[column]
            switch value.storage {
            case let .int64(i): return i
            case let .double(d): return Int64(exactly: d) ?? -1
            case let .string(s): return Int64(s) ?? -1
            default: return -1
            }
        }
        func real(_ column: String) -> Double {
            let value: DatabaseValue = r[column]
            switch value.storage {
            case let .double(d): return d
            case let .int64(i): return Double(i)
            case let .string(s): return Double(s) ?? .nan
            default: return .nan
            }
        }
        func bytes(_ column: String) -> [UInt8] {
            let value: DatabaseValue = r[column]
            switch value.storage {
            case let .blob(b): return [UInt8](b)
            case let .string(s): return Array(s.utf8)
            default: return []
            }
        }
        func strings(_ column: String) -> [String] {
            let raw = text(column)
            if let decoded = try? JSONDecoder().decode([String].self, from: Data(raw.utf8)) { return decoded }
            return ["<not a JSON array of strings: \(raw)>"]
        }
        return KeyReleaseRow(id: integer("id"), sequence: integer("sequence"), at: real("at"), principal: text("principal"),
                             role: text("role"), conference: text("conference"), requester: text("requester"),
                             tokenID: text("token_id"), granted: strings("granted"), refused: strings("refused"),
                             decision: text("decision"), reason: text("reason"), previousHash: bytes("previous_hash"),
                             hash: bytes("hash"))
    }
}
