import Archive
import Crypto
import Foundation

// The hash-chained audit log of the archive authority's decisions (docs/access.md, "Audit log").
// Rows live in the archive's `key_release` table; this file computes and checks the chain.

/// What the authority decided for one key request.
public enum AuditDecision: String, Sendable, Codable {
    /// Every epoch asked for was released.
    case granted
    /// Some were released, some refused.
    case partial
    /// Nothing was released.
    case refused
}

/// One decision of the authority, as it is logged.
public struct AuditRecord: Sendable, Equatable, Codable {
    public var at: Date
    public var principal: String
    public var role: String
    public var conference: String
    /// Key id of the requester's public key (the one the epoch keys are re-sealed to).
    public var requester: String
    public var tokenID: String
    /// "SPI/keyid" strings, e.g. "4660/0011223344556677".
    public var granted: [String]
    public var refused: [String]
    public var decision: AuditDecision
    public var reason: String

    public init(at: Date, principal: String, role: String, conference: String, requester: String, tokenID: String,
                granted: [String], refused: [String], decision: AuditDecision, reason: String) {
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
    }
}

/// A record in its place in the chain.
public struct AuditEntry: Sendable, Equatable {
    /// 1, 2, 3, … in append order.
    public var sequence: Int64
    public var record: AuditRecord
    /// The previous entry's hash; 32 zero bytes for the first.
    public var previousHash: [UInt8]
    /// `AuditLog.hash(sequence:record:previousHash:)`.
    public var hash: [UInt8]
    /// The `key_release` row id (0 if unknown).
    public var rowID: Int64

    public init(sequence: Int64, record: AuditRecord, previousHash: [UInt8], hash: [UInt8], rowID: Int64 = 0) {
        self.sequence = sequence
        self.record = record
        self.previousHash = previousHash
        self.hash = hash
        self.rowID = rowID
    }
}

/// Something `AuditLog.verify` found wrong, and where.
public struct AuditProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        /// A stored entry no longer matches its hash, or its hash is not the one the next entry was chained to.
        case modified
        /// An entry in the middle is gone (a sequence gap, or a row id handed out and missing).
        case deleted
        /// Entries are not in the order they were appended.
        case reordered
        /// An entry that does not belong to the chain (forged or replayed).
        case inserted
        /// The last entries are gone (`sqlite_sequence` handed out more row ids than remain).
        case truncated
    }

    public var kind: Kind
    /// The entry's sequence number; for `deleted` and `truncated`, the first missing one.
    public var sequence: Int64
    /// The entry's row id in `key_release`; for `deleted` and `truncated`, the first missing one.
    public var rowID: Int64
    public var detail: String

    public init(kind: Kind, sequence: Int64, rowID: Int64, detail: String) {
        self.kind = kind
        self.sequence = sequence
        self.rowID = rowID
        self.detail = detail
    }

    /// "entry 3 (row 3): modified — …"
    public var description: String { "entry \(sequence) (row \(rowID)): \(kind.rawValue) — \(detail)" }
}

/// The result of checking the whole chain.
public struct AuditReport: Sendable {
    /// Every stored entry, in row order, whether or not it checks out.
    public var entries: [AuditEntry]
    /// Empty when the log is intact.
    public var problems: [AuditProblem]
    public var isIntact: Bool { problems.isEmpty }
    /// The last entry's hash (nil for an empty log). Keep it outside the archive: it is what
    /// shows a log rewritten as a whole (docs/access.md).
    public var head: [UInt8]?

    public init(entries: [AuditEntry], problems: [AuditProblem], head: [UInt8]?) {
        self.entries = entries
        self.problems = problems
        self.head = head
    }
}

public enum AuditError: Error, CustomStringConvertible {
    case archive(ArchiveError)
    /// The record cannot be logged (a time that is not a finite number).
    case invalidRecord(String)

    public var description: String {
        switch self {
        case let .archive(e): "audit log: \(e)"
        case let .invalidRecord(reason): "audit log: cannot append the record: \(reason)"
        }
    }
}

/// The archive's key-release audit log. Appends are serialized by SQLite (one IMMEDIATE
/// transaction each), so any number of `AuditLog`s, in any number of processes, can share one
/// archive file and still extend a single chain.
public final class AuditLog: Sendable {
    public let archive: Archive

    public init(archive: Archive) { self.archive = archive }

    static let domain = "percrec audit v1"
    static let zeroHash = [UInt8](repeating: 0, count: 32)

    /// Appends `record` after the current last entry.
    @discardableResult
    public func append(_ record: AuditRecord) throws(AuditError) -> AuditEntry {
        let seconds = Self.canonicalSeconds(record.at)
        guard seconds.isFinite else { throw .invalidRecord("the time is not a finite number of seconds") }
        var record = record
        record.at = Date(timeIntervalSince1970: seconds)
        let row: KeyReleaseRow
        do {
            row = try archive.appendKeyRelease { last in
                let sequence = (last?.sequence ?? 0) + 1
                let previous = last?.hash ?? Self.zeroHash
                let hash = Self.hash(sequence: sequence, seconds: seconds, record: record, previousHash: previous)
                return KeyReleaseRow(sequence: sequence, at: seconds, principal: record.principal, role: record.role,
                                     conference: record.conference, requester: record.requester, tokenID: record.tokenID,
                                     granted: record.granted, refused: record.refused, decision: record.decision.rawValue,
                                     reason: record.reason, previousHash: previous, hash: hash)
            }
        } catch { throw .archive(error) }
        return AuditEntry(sequence: row.sequence, record: record, previousHash: row.previousHash, hash: row.hash, rowID: row.id)
    }

    /// SHA-256 over the domain label, the previous hash and a length-prefixed encoding of the
    /// sequence and every field (docs/access.md gives the layout).
    public static func hash(sequence: Int64, record: AuditRecord, previousHash: [UInt8]) -> [UInt8] {
        hash(sequence: sequence, seconds: record.at.timeIntervalSince1970, record: record, previousHash: previousHash)
    }

    /// The time enters as the bit pattern of its Unix seconds, exactly as the REAL column keeps it.
    static func hash(sequence: Int64, seconds: Double, record: AuditRecord, previousHash: [UInt8]) -> [UInt8] {
        hash(sequence: sequence, seconds: seconds, principal: record.principal, role: record.role, conference: record.conference,
             requester: record.requester, tokenID: record.tokenID, granted: record.granted, refused: record.refused,
             decision: record.decision.rawValue, reason: record.reason, previousHash: previousHash)
    }

    static func hash(sequence: Int64, seconds: Double, principal: String, role: String, conference: String, requester: String,
                     tokenID: String, granted: [String], refused: [String], decision: String, reason: String,
                     previousHash: [UInt8]) -> [UInt8] {
        var h = SHA256()
        func u32(_ v: Int) { h.update(data: withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).bigEndian) { Array($0) }) }
        func u64(_ v: UInt64) { h.update(data: withUnsafeBytes(of: v.bigEndian) { Array($0) }) }
        func bytes(_ b: [UInt8]) { u32(b.count); h.update(data: b) }
        func text(_ s: String) { bytes(Array(s.utf8)) }
        func list(_ l: [String]) { u32(l.count); l.forEach(text) }
        text(domain)
        bytes(previousHash)
        u64(UInt64(bitPattern: sequence))
        u64(seconds.bitPattern)
        text(principal)
        text(role)
        text(conference)
        text(requester)
        text(tokenID)
        list(granted)
        list(refused)
        text(decision)
        text(reason)
        return Array(h.finalize())
    }

    /// Unix seconds that survive Date → Double → Date unchanged, so the hash computed from the
    /// record and the one recomputed from the stored REAL agree.
    static func canonicalSeconds(_ date: Date) -> Double {
        var seconds = date.timeIntervalSince1970
        for _ in 0 ..< 4 {
            let again = Date(timeIntervalSince1970: seconds).timeIntervalSince1970
            if again.bitPattern == seconds.bitPattern { break }
            seconds = again
        }
        return seconds
    }

    /// Checks the whole chain and locates every problem (see `AuditProblem.Kind`).
    public func verify() throws(AuditError) -> AuditReport {
        let snapshot: (rows: [KeyReleaseRow], highWater: Int64?)
        do { snapshot = try archive.keyReleaseSnapshot() } catch { throw .archive(error) }
        return Self.verify(rows: snapshot.rows, highWater: snapshot.highWater)
    }

    // MARK: - Verification

    private struct Checked {
        var row: KeyReleaseRow
        /// The hash matches the content (with the stored sequence, or with `trueSequence`).
        var contentOK: Bool
        /// The sequence the hash was made with (the stored one unless only the sequence column changed).
        var trueSequence: Int64
        var reordered = false
    }

    static func verify(rows: [KeyReleaseRow], highWater: Int64?) -> AuditReport {
        var problems: [AuditProblem] = []
        func report(_ kind: AuditProblem.Kind, _ sequence: Int64, _ rowID: Int64, _ detail: String) {
            if let i = problems.firstIndex(where: { $0.kind == kind && $0.sequence == sequence && $0.rowID == rowID }) {
                problems[i].detail += "; " + detail
            } else {
                problems.append(AuditProblem(kind: kind, sequence: sequence, rowID: rowID, detail: detail))
            }
        }
        func rehash(_ r: KeyReleaseRow, sequence: Int64, previous: [UInt8]? = nil) -> [UInt8] {
            hash(sequence: sequence, seconds: r.at, principal: r.principal, role: r.role, conference: r.conference, requester: r.requester,
                 tokenID: r.tokenID, granted: r.granted, refused: r.refused, decision: r.decision, reason: r.reason,
                 previousHash: previous ?? r.previousHash)
        }

        // 1. Each row against its own hash. A row whose hash matches only with its row id as the
        //    sequence had its sequence column rewritten.
        var checked: [Checked] = rows.map { r in
            if rehash(r, sequence: r.sequence) == r.hash { return Checked(row: r, contentOK: true, trueSequence: r.sequence) }
            if r.id != r.sequence, rehash(r, sequence: r.id) == r.hash { return Checked(row: r, contentOK: true, trueSequence: r.id) }
            return Checked(row: r, contentOK: false, trueSequence: r.sequence)
        }
        let trueSequences = Set(checked.map(\.trueSequence))
        for i in checked.indices where checked[i].trueSequence != checked[i].row.sequence {
            let c = checked[i]
            if trueSequences.contains(c.row.sequence) {
                checked[i].reordered = true
                report(.reordered, c.trueSequence, c.row.id,
                       "its sequence column says \(c.row.sequence), but it was hashed as entry \(c.trueSequence): sequence numbers were swapped")
            } else {
                report(.modified, c.trueSequence, c.row.id, "its sequence was changed from \(c.trueSequence) to \(c.row.sequence)")
            }
        }

        // 2. Row order (append order) against sequence order.
        let sortedSequences = checked.map(\.trueSequence).sorted()
        for i in checked.indices where checked[i].trueSequence != sortedSequences[i] && !checked[i].reordered {
            checked[i].reordered = true
            let c = checked[i]
            report(.reordered, c.trueSequence, c.row.id,
                   "it is number \(i + 1) in row (append) order, where entry \(sortedSequences[i]) belongs: rows were moved")
        }

        // 3. The chain, in sequence order: gaps, links, row ids.
        let chain = checked.sorted { ($0.trueSequence, $0.row.id) < ($1.trueSequence, $1.row.id) }
        let hashes = Dictionary(chain.map { ($0.row.hash, $0.trueSequence) }, uniquingKeysWith: { a, _ in a })
        var previous: Checked?
        for c in chain {
            let r = c.row
            let s = c.trueSequence
            let prevSequence = previous?.trueSequence ?? 0
            let prevHash = previous?.row.hash ?? zeroHash
            let prevID = previous?.row.id ?? 0
            let linked = r.previousHash == prevHash
            let where_ = previous.map { "entry \($0.trueSequence) (row \($0.row.id))" } ?? "the start of the log"
            var gap = false
            if s <= prevSequence {
                report(.inserted, s, r.id, "a second entry \(s) (the first is row \(prevID)): not part of the chain")
                continue
            } else if s > prevSequence + 1 {
                gap = true
                let missing = s - prevSequence - 1
                let firstMissingRow = r.id > prevID + 1 ? prevID + 1 : prevSequence + 1
                report(.deleted, prevSequence + 1, firstMissingRow,
                       missing == 1 ? "entry \(s) (row \(r.id)) follows \(where_): entry \(prevSequence + 1) is missing"
                                    : "entry \(s) (row \(r.id)) follows \(where_): entries \(prevSequence + 1)–\(s - 1) are missing")
            } else if !c.reordered, previous.map({ !$0.reordered }) ?? true, r.id > prevID + 1 {
                // Sequences continue but row ids skip: rows were deleted and the log appended to since.
                report(.deleted, prevID + 1, prevID + 1,
                       (r.id - prevID > 2 ? "rows \(prevID + 1)–\(r.id - 1) were" : "row \(prevID + 1) was") + " handed out but is gone, and entry \(s) (row \(r.id)) "
                       + "continues the chain from \(where_): the last entry was deleted and the log appended to afterwards")
            }
            if !c.contentOK {
                if !linked, !gap, rehash(r, sequence: s, previous: prevHash) != r.hash {
                    let replay = hashes[r.hash].map { $0 != s ? " (its hash is entry \($0)'s: a replayed entry)" : "" } ?? ""
                    report(.inserted, s, r.id, "neither its hash nor its link to \(where_) is genuine\(replay)")
                } else {
                    report(.modified, s, r.id, "its stored hash does not match its content")
                }
            } else if !linked, !gap {
                if let other = hashes[r.previousHash], other != prevSequence {
                    report(.inserted, s, r.id, "it chains onto entry \(other), not onto \(where_)")
                } else if let previous {
                    report(.modified, previous.trueSequence, previous.row.id,
                           "entry \(s) (row \(r.id)) was chained to a different hash: this entry was rewritten and its hash recomputed")
                } else {
                    report(.modified, s, r.id, "the first entry does not start from the zero hash")
                }
            }
            previous = c
        }

        // 4. The end: AUTOINCREMENT's high-water mark shows deleted last rows.
        let lastID = rows.map(\.id).max() ?? 0
        let lastSequence = chain.last?.trueSequence ?? 0
        if let highWater, highWater > lastID {
            let missing = highWater - lastID
            report(.truncated, lastSequence + 1, lastID + 1,
                   "sqlite_sequence says row \(highWater) was handed out, but " + (lastID == 0 ? "no row is left: " : "the last row is \(lastID): ")
                   + (missing == 1 ? "the last entry was deleted" : "the last \(missing) entries were deleted"))
        } else if let highWater, highWater < lastID {
            report(.modified, lastSequence, lastID, "sqlite_sequence (\(highWater)) is below the last row id: it was edited")
        }

        let entries = rows.map { r in
            AuditEntry(sequence: r.sequence,
                       record: AuditRecord(at: Date(timeIntervalSince1970: r.at), principal: r.principal, role: r.role, conference: r.conference,
                                           requester: r.requester, tokenID: r.tokenID, granted: r.granted, refused: r.refused,
                                           decision: AuditDecision(rawValue: r.decision) ?? .refused, reason: r.reason),
                       previousHash: r.previousHash, hash: r.hash, rowID: r.id)
        }
        problems.sort { ($0.sequence, $0.rowID, $0.kind.rawValue) < ($1.sequence, $1.rowID, $1.kind.rawValue) }
        return AuditReport(entries: entries, problems: problems, head: chain.last?.row.hash)
    }
}
