import Foundation
import GRDB

/// One conference in `percrec list`.
public struct ConferenceSummary: Sendable, Codable, Equatable {
    public var name: String
    public var createdAt: Double
    public var segments: Int
    public var participants: Int
    public var sources: Int
    public var epochs: Int
    public var packets: Int
    public var rtcpPackets: Int
    public var firstArrival: Double?
    public var lastArrival: Double?
    public var durationSeconds: Double { (lastArrival ?? 0) - (firstArrival ?? 0) }
}

/// Everything `percrec inspect` shows about a conference. None of it needs a key.
public struct ConferenceReport: Sendable, Codable, Equatable {
    public struct Segment: Sendable, Codable, Equatable {
        public var id: Int64
        public var origin: String
        public var detail: String
        public var authorityKeyID: String
        public var startedAt: Double
        public var endedAt: Double?
        public var endReason: String?
        public var lastCommitAt: Double?
        public var packets: Int
        public var rtcpPackets: Int
        public var bytes: Int
        public var untiedPackets: Int
        public var drops: [String: Int]
    }
    public struct Participant: Sendable, Codable, Equatable {
        public var name: String
        public var fingerprint: String
        public var role: String
        public var ssrcs: [UInt32]
        public var joins: Int
        public var leaves: Int
    }
    public struct Source: Sendable, Codable, Equatable {
        public var ssrc: UInt32
        public var media: String
        public var payloadType: Int
        public var participant: String?
        public var packets: Int
        public var bytes: Int
        public var firstSeen: Double
        public var lastSeen: Double
        public var durationSeconds: Double
        /// Sequence numbers missing inside each segment's received range, summed.
        public var missingPackets: Int
        /// Runs of missing sequence numbers (each is one gap).
        public var gaps: Int
        public var duplicates: Int
    }
    public struct Epoch: Sendable, Codable, Equatable {
        public var spi: Int
        public var keyID: String
        public var cipher: String
        public var ttl: Int
        public var hpkeSuite: String
        public var authorityKeyID: String
        public var firstSeen: Double
        public var lastSeen: Double
        /// Distinct Full EKT fields (SSRC, epoch) under this SPI.
        public var ektFields: Int
        /// Packets tied to a Full EKT field under this SPI.
        public var packets: Int
    }
    public struct RosterEntry: Sendable, Codable, Equatable {
        public var segment: Int64
        public var sequence: Int
        public var kind: String
        public var participant: String
        public var ssrcs: [UInt32]
        public var receivedAt: Double
    }
    /// The policy in force: the newest announcement, or the defaults when none is archived
    /// (always present, so a reader of `--json` need not know the defaults).
    public struct Policy: Sendable, Codable, Equatable {
        /// False: nothing was announced and the other fields are the defaults.
        public var announced: Bool
        public var allowCatchUp: Bool
        public var administrators: [String]
        /// When the newest announcement was received (Unix seconds); nil when none was.
        public var receivedAt: Double?

        public init(_ archived: ArchivedPolicy?) {
            announced = archived != nil
            allowCatchUp = archived?.allowCatchUp ?? false
            administrators = archived?.administrators ?? []
            receivedAt = archived?.receivedAt
        }
    }

    public var conference: String
    public var policy: Policy
    public var segments: [Segment]
    public var participants: [Participant]
    public var sources: [Source]
    public var epochs: [Epoch]
    public var roster: [RosterEntry]
    public var totalDrops: Int { segments.reduce(0) { $0 + $1.drops.values.reduce(0, +) } }
}

/// A stored packet row (tests, import comparison, export).
public struct StoredPacket: Sendable, Equatable {
    public var segment: Int64
    public var record: PacketRecord
    /// SPI and EKT epoch of the Full field the packet is tied to (nil: untied).
    public var tie: (spi: UInt16, epoch: UInt16)?
    public var data: [UInt8]

    public static func == (a: Self, b: Self) -> Bool {
        a.segment == b.segment && a.record == b.record && a.tie?.spi == b.tie?.spi && a.tie?.epoch == b.tie?.epoch && a.data == b.data
    }
}

/// A stored Full EKT field.
public struct StoredEKTField: Sendable, Equatable {
    public var ssrc: UInt32, spi: UInt16, epoch: UInt16
    public var field: [UInt8]
    public var firstSequence: UInt16
}

extension Archive {
    /// Every conference, by name.
    public func conferences() throws(ArchiveError) -> [ConferenceSummary] {
        try read("list") { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT c.name, c.created_at,
                    (SELECT count(*) FROM recording_segment s WHERE s.conference_id = c.id) AS segments,
                    (SELECT count(*) FROM participant p WHERE p.conference_id = c.id) AS participants,
                    (SELECT count(*) FROM source o WHERE o.conference_id = c.id) AS sources,
                    (SELECT count(*) FROM epoch e WHERE e.conference_id = c.id) AS epochs,
                    (SELECT coalesce(sum(packets), 0) FROM recording_segment s WHERE s.conference_id = c.id) AS packets,
                    (SELECT coalesce(sum(rtcp_packets), 0) FROM recording_segment s WHERE s.conference_id = c.id) AS rtcp,
                    (SELECT min(first_seen) FROM source o WHERE o.conference_id = c.id) AS first_arrival,
                    (SELECT max(last_seen) FROM source o WHERE o.conference_id = c.id) AS last_arrival
                FROM conference c ORDER BY c.name
                """)
            return rows.map { r in
                ConferenceSummary(name: r["name"], createdAt: r["created_at"], segments: r["segments"], participants: r["participants"],
                                  sources: r["sources"], epochs: r["epochs"], packets: r["packets"], rtcpPackets: r["rtcp"],
                                  firstArrival: r["first_arrival"], lastArrival: r["last_arrival"])
            }
        }
    }

    func conferenceID(_ db: Database, _ name: String) throws -> Int64 {
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM conference WHERE name = ?", arguments: [name]) else {
            throw ArchiveError.unknownConference(name)
        }
        return id
    }

    func unwrapArchiveError<T>(_ operation: String, _ body: (Database) throws -> T) throws(ArchiveError) -> T {
        do { return try pool.read(body) } catch let e as ArchiveError { throw e } catch {
            throw .database(operation: operation, reason: Self.reason(error))
        }
    }

    /// The whole report for `conference`.
    public func inspect(conference: String) throws(ArchiveError) -> ConferenceReport {
        try unwrapArchiveError("inspect") { db in
            let cid = try conferenceID(db, conference)
            var segments: [ConferenceReport.Segment] = []
            for r in try Row.fetchAll(db, sql: "SELECT * FROM recording_segment WHERE conference_id = ? ORDER BY id", arguments: [cid]) {
                let sid: Int64 = r["id"]
                var drops: [String: Int] = [:]
                for d in try Row.fetchAll(db, sql: "SELECT reason, count FROM drop_counter WHERE recording_segment_id = ?", arguments: [sid]) {
                    drops[d["reason"]] = d["count"]
                }
                let untied = try Int.fetchOne(db, sql: "SELECT count(*) FROM packet WHERE recording_segment_id = ? AND ekt_field_id IS NULL",
                                              arguments: [sid]) ?? 0
                segments.append(.init(id: sid, origin: r["origin"], detail: r["detail"], authorityKeyID: r["authority_key_id"],
                                      startedAt: r["started_at"], endedAt: r["ended_at"], endReason: r["end_reason"],
                                      lastCommitAt: r["last_commit_at"], packets: r["packets"], rtcpPackets: r["rtcp_packets"],
                                      bytes: r["bytes"], untiedPackets: untied, drops: drops))
            }
            var participants: [ConferenceReport.Participant] = []
            var names: [Int64: String] = [:]
            for p in try Row.fetchAll(db, sql: "SELECT * FROM participant WHERE conference_id = ? ORDER BY name, id", arguments: [cid]) {
                let pid: Int64 = p["id"]
                names[pid] = p["name"]
                let events = try Row.fetchAll(db, sql: "SELECT kind, ssrcs FROM roster_event WHERE participant_id = ?", arguments: [pid])
                var ssrcs = Set<UInt32>()
                for e in events { ssrcs.formUnion(Self.parseSSRCs(e["ssrcs"])) }
                participants.append(.init(name: p["name"], fingerprint: p["fingerprint"], role: p["role"], ssrcs: ssrcs.sorted(),
                                          joins: events.filter { ($0["kind"] as String) == "join" }.count,
                                          leaves: events.filter { ($0["kind"] as String) == "leave" }.count))
            }
            var sources: [ConferenceReport.Source] = []
            for s in try Row.fetchAll(db, sql: "SELECT * FROM source WHERE conference_id = ? ORDER BY ssrc", arguments: [cid]) {
                let ssrc: Int64 = s["ssrc"]
                var missing = 0, gaps = 0, duplicates = 0
                for g in try Row.fetchAll(db, sql: """
                    SELECT p.recording_segment_id AS seg, count(*) AS n, count(DISTINCT extended_sequence) AS distinct_n,
                           min(extended_sequence) AS lo, max(extended_sequence) AS hi
                    FROM packet p JOIN recording_segment r ON r.id = p.recording_segment_id
                    WHERE r.conference_id = ? AND p.ssrc = ? GROUP BY p.recording_segment_id
                    """, arguments: [cid, ssrc]) {
                    let n: Int = g["n"], distinct: Int = g["distinct_n"], lo: Int64 = g["lo"], hi: Int64 = g["hi"]
                    missing += Int(hi - lo + 1) - distinct
                    duplicates += n - distinct
                    gaps += try Int.fetchOne(db, sql: """
                        SELECT count(*) FROM (SELECT extended_sequence - lag(extended_sequence) OVER (ORDER BY extended_sequence) AS d
                                              FROM (SELECT DISTINCT extended_sequence FROM packet WHERE recording_segment_id = ? AND ssrc = ?))
                        WHERE d > 1
                        """, arguments: [g["seg"] as Int64, ssrc]) ?? 0
                }
                let first: Double = s["first_seen"], last: Double = s["last_seen"]
                sources.append(.init(ssrc: UInt32(truncatingIfNeeded: ssrc), media: s["media"], payloadType: s["payload_type"],
                                     participant: (s["participant_id"] as Int64?).flatMap { names[$0] }, packets: s["packets"],
                                     bytes: s["bytes"], firstSeen: first, lastSeen: last, durationSeconds: last - first,
                                     missingPackets: missing, gaps: gaps, duplicates: duplicates))
            }
            var epochs: [ConferenceReport.Epoch] = []
            for e in try Row.fetchAll(db, sql: "SELECT * FROM epoch WHERE conference_id = ? ORDER BY first_seen, spi", arguments: [cid]) {
                let spi: Int64 = e["spi"]
                let fields = try Int.fetchOne(db, sql: "SELECT count(*) FROM ekt_field WHERE conference_id = ? AND spi = ?",
                                              arguments: [cid, spi]) ?? 0
                let packets = try Int.fetchOne(db, sql: """
                    SELECT count(*) FROM packet p JOIN ekt_field f ON f.id = p.ekt_field_id WHERE f.conference_id = ? AND f.spi = ?
                    """, arguments: [cid, spi]) ?? 0
                epochs.append(.init(spi: Int(spi), keyID: e["key_id"], cipher: e["cipher"], ttl: e["ttl"], hpkeSuite: e["hpke_suite"],
                                    authorityKeyID: e["authority_key_id"], firstSeen: e["first_seen"], lastSeen: e["last_seen"],
                                    ektFields: fields, packets: packets))
            }
            let roster = try Row.fetchAll(db, sql: """
                SELECT e.recording_segment_id AS seg, e.sequence, e.kind, p.name, e.ssrcs, e.received_at
                FROM roster_event e JOIN participant p ON p.id = e.participant_id
                WHERE e.conference_id = ? ORDER BY e.recording_segment_id, e.sequence
                """, arguments: [cid]).map { r in
                ConferenceReport.RosterEntry(segment: r["seg"], sequence: r["sequence"], kind: r["kind"], participant: r["name"],
                                             ssrcs: Self.parseSSRCs(r["ssrcs"]), receivedAt: r["received_at"])
            }
            return ConferenceReport(conference: conference, policy: .init(try Self.policy(db, cid)), segments: segments,
                                    participants: participants, sources: sources, epochs: epochs, roster: roster)
        }
    }

    static func parseSSRCs(_ text: String?) -> [UInt32] {
        guard let text else { return [] }
        return text.trimmingCharacters(in: CharacterSet(charactersIn: "[] ")).split(separator: ",")
            .compactMap { UInt32($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// Every stored packet of `conference`, by segment, SSRC and extended sequence number.
    public func packets(conference: String) throws(ArchiveError) -> [StoredPacket] {
        try unwrapArchiveError("read packets") { db in
            let cid = try conferenceID(db, conference)
            return try Row.fetchAll(db, sql: """
                SELECT p.*, f.spi AS tie_spi, f.epoch AS tie_epoch FROM packet p
                JOIN recording_segment r ON r.id = p.recording_segment_id
                LEFT JOIN ekt_field f ON f.id = p.ekt_field_id
                WHERE r.conference_id = ? ORDER BY p.recording_segment_id, p.ssrc, p.extended_sequence, p.id
                """, arguments: [cid]).map(Self.storedPacket)
        }
    }

    /// Stored Full EKT fields of `conference`.
    public func ektFields(conference: String) throws(ArchiveError) -> [StoredEKTField] {
        try unwrapArchiveError("read EKT fields") { db in
            let cid = try conferenceID(db, conference)
            return try Row.fetchAll(db, sql: "SELECT * FROM ekt_field WHERE conference_id = ? ORDER BY ssrc, spi, epoch",
                                    arguments: [cid]).map { r in
                StoredEKTField(ssrc: UInt32(truncatingIfNeeded: r["ssrc"] as Int64), spi: UInt16(truncatingIfNeeded: r["spi"] as Int64),
                               epoch: UInt16(truncatingIfNeeded: r["epoch"] as Int64), field: [UInt8](r["field"] as Data),
                               firstSequence: UInt16(truncatingIfNeeded: r["first_sequence"] as Int64))
            }
        }
    }

    /// Stored epochs (sealed keys) of `conference`, oldest first (`seenAt`: first seen).
    public func epochs(conference: String) throws(ArchiveError) -> [ArchivedEpoch] {
        try unwrapArchiveError("read epochs") { db in
            let cid = try conferenceID(db, conference)
            return try Row.fetchAll(db, sql: "SELECT * FROM epoch WHERE conference_id = ? ORDER BY first_seen, spi", arguments: [cid]).map { r in
                ArchivedEpoch(spi: UInt16(truncatingIfNeeded: r["spi"] as Int64), keyID: r["key_id"], cipher: r["cipher"],
                              ttl: UInt32(truncatingIfNeeded: r["ttl"] as Int64), hpkeSuite: r["hpke_suite"],
                              authorityKeyID: r["authority_key_id"], encapsulatedKey: [UInt8](r["hpke_enc"] as Data),
                              sealedKey: [UInt8](r["sealed_key"] as Data), seenAt: r["first_seen"])
            }
        }
    }

    /// Stored RTCP of `conference`: (segment, arrival, compound packet), in arrival order.
    public func rtcpPackets(conference: String) throws(ArchiveError) -> [(segment: Int64, arrival: Double, data: [UInt8])] {
        try unwrapArchiveError("read RTCP") { db in
            let cid = try conferenceID(db, conference)
            return try Row.fetchAll(db, sql: """
                SELECT t.* FROM rtcp t JOIN recording_segment r ON r.id = t.recording_segment_id
                WHERE r.conference_id = ? ORDER BY t.recording_segment_id, t.id
                """, arguments: [cid]).map { r in (r["recording_segment_id"], r["arrival"], [UInt8](r["data"] as Data)) }
        }
    }
}
