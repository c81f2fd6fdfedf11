import Foundation
import GRDB

/// The conference policy as the Key Distributor announced it to the recorder.
public struct ArchivedPolicy: Sendable, Codable, Equatable {
    /// Late joiners may obtain the epochs before they joined.
    public var allowCatchUp: Bool
    /// Principals (names) who may obtain every epoch.
    public var administrators: [String]
    /// When the recorder received it (Unix seconds).
    public var receivedAt: Double

    public init(allowCatchUp: Bool, administrators: [String], receivedAt: Double) {
        self.allowCatchUp = allowCatchUp
        self.administrators = administrators
        self.receivedAt = receivedAt
    }
}

/// What the access policy needs to know about one conference, read from the archive: its
/// epochs, the Key Distributor's roster log, and the announced policy.
public struct ConferenceAccessFacts: Sendable, Equatable {
    /// One stored conference key epoch.
    public struct Epoch: Sendable, Equatable {
        public var spi: UInt16
        public var keyID: String
        /// When the recorder received the EKTKey (Unix seconds).
        public var firstSeen: Double
        public init(spi: UInt16, keyID: String, firstSeen: Double) {
            self.spi = spi
            self.keyID = keyID
            self.firstSeen = firstSeen
        }
    }
    /// One roster event, in the KD's log order.
    public struct RosterEntry: Sendable, Equatable {
        public var sequence: UInt32
        /// join, sources, leave
        public var kind: String
        public var name: String
        public var fingerprint: String
        /// participant or recorder
        public var role: String
        /// The KD's time of the event (Unix seconds).
        public var time: Double
        /// The EKT SPI in force once the event took effect; nil if the archive does not know it.
        public var spi: UInt16?
        public init(sequence: UInt32, kind: String, name: String, fingerprint: String, role: String, time: Double, spi: UInt16?) {
            self.sequence = sequence
            self.kind = kind
            self.name = name
            self.fingerprint = fingerprint
            self.role = role
            self.time = time
            self.spi = spi
        }
    }

    public var conference: String
    /// Oldest first.
    public var epochs: [Epoch]
    /// The roster log: every segment's copy merged by sequence number (the KD sends its whole log
    /// to each new member, so a later segment repeats the earlier events).
    public var roster: [RosterEntry]
    /// The newest announced policy; nil when the archive holds none.
    public var policy: ArchivedPolicy?

    public init(conference: String, epochs: [Epoch], roster: [RosterEntry], policy: ArchivedPolicy?) {
        self.conference = conference
        self.epochs = epochs
        self.roster = roster
        self.policy = policy
    }
}

extension Archive {
    /// Records a policy announcement for `conference` (the recorder and the import call this).
    public func recordPolicy(conference: String, segment: Int64?, _ policy: ArchivedPolicy) throws(ArchiveError) {
        let admins = Self.jsonArray(policy.administrators)
        try write("record policy") { db in
            let cid = try conferenceID(db, conference)
            try db.execute(sql: """
                INSERT INTO conference_policy (conference_id, recording_segment_id, received_at, allow_catch_up, administrators)
                VALUES (?, ?, ?, ?, ?)
                """, arguments: [cid, segment, policy.receivedAt, policy.allowCatchUp, admins])
        }
    }

    /// The newest policy announced for `conference`, or nil.
    public func conferencePolicy(conference: String) throws(ArchiveError) -> ArchivedPolicy? {
        try unwrapArchiveError("read policy") { db in
            let cid = try conferenceID(db, conference)
            return try Self.policy(db, cid)
        }
    }

    static func policy(_ db: Database, _ cid: Int64) throws -> ArchivedPolicy? {
        guard let r = try Row.fetchOne(db, sql: """
            SELECT * FROM conference_policy WHERE conference_id = ? ORDER BY received_at DESC, id DESC LIMIT 1
            """, arguments: [cid]) else { return nil }
        let names = (try? JSONDecoder().decode([String].self, from: Data((r["administrators"] as String).utf8))) ?? []
        return ArchivedPolicy(allowCatchUp: r["allow_catch_up"], administrators: names, receivedAt: r["received_at"])
    }

    /// Epochs, roster log and policy of `conference` (see `ConferenceAccessFacts`).
    public func accessFacts(conference: String) throws(ArchiveError) -> ConferenceAccessFacts {
        try unwrapArchiveError("read access facts") { db in
            let cid = try conferenceID(db, conference)
            var epochs: [ConferenceAccessFacts.Epoch] = []
            for r in try Row.fetchAll(db, sql: "SELECT spi, key_id, first_seen FROM epoch WHERE conference_id = ? ORDER BY first_seen, id",
                                      arguments: [cid]) {
                let spi: Int64 = r["spi"], keyID: String = r["key_id"], firstSeen: Double = r["first_seen"]
                epochs.append(.init(spi: UInt16(truncatingIfNeeded: spi), keyID: keyID, firstSeen: firstSeen))
            }
            // Each segment holds the KD's log from 1 (a new member gets it whole), so the copies
            // overlap: the first copy of each sequence number is kept (the log is append-only, so
            // the copies agree).
            var bySequence: [UInt32: ConferenceAccessFacts.RosterEntry] = [:]
            for r in try Row.fetchAll(db, sql: """
                SELECT e.sequence, e.kind, e.received_at, e.spi, p.name, p.fingerprint, p.role
                FROM roster_event e JOIN participant p ON p.id = e.participant_id
                WHERE e.conference_id = ? ORDER BY e.recording_segment_id, e.sequence
                """, arguments: [cid]) {
                let stored: Int64 = r["sequence"]
                let sequence = UInt32(truncatingIfNeeded: stored)
                guard bySequence[sequence] == nil else { continue }
                let kind: String = r["kind"], name: String = r["name"], fingerprint: String = r["fingerprint"], role: String = r["role"]
                let time: Double = r["received_at"]
                let spi: Int64? = r["spi"]
                bySequence[sequence] = ConferenceAccessFacts.RosterEntry(
                    sequence: sequence, kind: kind, name: name, fingerprint: fingerprint, role: role, time: time,
                    spi: spi.map { UInt16(truncatingIfNeeded: $0) })
            }
            return ConferenceAccessFacts(conference: conference, epochs: epochs,
                                         roster: bySequence.keys.sorted().compactMap { bySequence[$0] },
                                         policy: try Self.policy(db, cid))
        }
    }

    static func jsonArray(_ strings: [String]) -> String {
        guard let data = try? JSONEncoder().encode(strings) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }
}

extension Archive {
    /// How many stored packets of `ssrcs` that arrived in [`from`, `to`) are tied to each SPI:
    /// what a span of an export actually needs (the exporter's check of a token's coverage).
    public func tiedPacketCounts(conference: String, ssrcs: [UInt32], from: Double, to: Double) throws(ArchiveError) -> [UInt16: Int] {
        guard !ssrcs.isEmpty else { return [:] }
        return try unwrapArchiveError("count packets by epoch") { db in
            let cid = try conferenceID(db, conference)
            let list = ssrcs.map { String(Int64($0)) }.joined(separator: ",")
            var counts: [UInt16: Int] = [:]
            for r in try Row.fetchAll(db, sql: """
                SELECT f.spi AS spi, count(*) AS n FROM packet p
                JOIN recording_segment s ON s.id = p.recording_segment_id
                JOIN ekt_field f ON f.id = p.ekt_field_id
                WHERE s.conference_id = ? AND p.ssrc IN (\(list)) AND p.arrival >= ? AND p.arrival < ?
                GROUP BY f.spi
                """, arguments: [cid, from, to.isFinite ? to : Double.greatestFiniteMagnitude]) {
                let spi: Int64 = r["spi"], n: Int = r["n"]
                counts[UInt16(truncatingIfNeeded: spi)] = n
            }
            return counts
        }
    }
}
