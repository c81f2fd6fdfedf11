import Foundation
import GRDB
import GRDBSQLite

/// One archived RTP packet's header facts (the bytes go alongside).
public struct PacketRecord: Sendable, Equatable {
    public var ssrc: UInt32
    /// Original (inner) sequence number, restored from the OHB.
    public var sequence: UInt16
    /// `sequence` unwrapped within the segment.
    public var extendedSequence: Int64
    public var rtpTimestamp: UInt32
    /// Original payload type.
    public var payloadType: UInt8
    public var marker: Bool
    /// Arrival, Unix time in seconds.
    public var arrival: Double

    public init(ssrc: UInt32, sequence: UInt16, extendedSequence: Int64, rtpTimestamp: UInt32,
                payloadType: UInt8, marker: Bool, arrival: Double) {
        self.ssrc = ssrc
        self.sequence = sequence
        self.extendedSequence = extendedSequence
        self.rtpTimestamp = rtpTimestamp
        self.payloadType = payloadType
        self.marker = marker
        self.arrival = arrival
    }
}

/// An epoch's EKTKey as the ledger stores it: sealed to the archive authority (never plaintext).
public struct ArchivedEpoch: Sendable, Equatable {
    public var spi: UInt16
    /// A non-secret digest that tells two epochs with the same SPI apart (a restarted KD).
    public var keyID: String
    public var cipher: String
    public var ttl: UInt32
    public var hpkeSuite: String
    public var authorityKeyID: String
    public var encapsulatedKey: [UInt8]
    public var sealedKey: [UInt8]
    public var seenAt: Double

    public init(spi: UInt16, keyID: String, cipher: String, ttl: UInt32, hpkeSuite: String, authorityKeyID: String,
                encapsulatedKey: [UInt8], sealedKey: [UInt8], seenAt: Double) {
        self.spi = spi
        self.keyID = keyID
        self.cipher = cipher
        self.ttl = ttl
        self.hpkeSuite = hpkeSuite
        self.authorityKeyID = authorityKeyID
        self.encapsulatedKey = encapsulatedKey
        self.sealedKey = sealedKey
        self.seenAt = seenAt
    }
}

/// One authenticated roster event from the Key Distributor.
public struct ArchivedRosterEvent: Sendable, Equatable {
    public var sequence: UInt32
    public var kind: String
    public var fingerprint: String
    public var name: String
    public var role: String
    public var ssrcs: [UInt32]
    public var receivedAt: Double
    /// The EKT SPI in force once the event took effect (the roster says; nil when unknown, as in
    /// an import). The access policy uses it to tell which epoch keys a member was given.
    public var spi: UInt16?

    public init(sequence: UInt32, kind: String, fingerprint: String, name: String, role: String, ssrcs: [UInt32], receivedAt: Double,
                spi: UInt16? = nil) {
        self.spi = spi
        self.sequence = sequence
        self.kind = kind
        self.fingerprint = fingerprint
        self.name = name
        self.role = role
        self.ssrcs = ssrcs
        self.receivedAt = receivedAt
    }
}

/// Writes one recording segment: rows are batched in memory and committed in one transaction
/// when the oldest uncommitted row is `commitInterval` old (call `commitIfDue`), when the
/// batch is full, or on `commit()`/`finish`. Owned by one thread.
///
/// Packets are tied to the Full EKT field that keys them (`ekt_field_id`): the last Full field
/// seen for their SSRC. A recorder that joins late stores packets it cannot tie yet with a
/// NULL tie, and ties them when the SSRC's first Full field arrives.
public final class SegmentWriter {
    public struct Options: Sendable {
        /// The longest a row waits for its commit (DESIGN §6: ≤ 100 ms end to end).
        /// 80 ms: with the commit itself and the poll loop's slack, a row is durable within 100 ms.
        public var commitInterval: Duration = .milliseconds(80)
        /// Commit early when this many rows are waiting.
        public var maximumBatch = 50_000
        /// Refuse new packets (the caller counts them dropped) when this many wait because
        /// commits keep failing: memory stays bounded and accepted rows are never discarded.
        public var maximumBacklog = 1_000_000
        /// Media kind by original payload type.
        public var mediaKinds: [UInt8: String] = [111: "audio", 96: "video"]
        public init() {}
    }

    public enum Origin: Sendable, Equatable {
        case live(recorder: String)
        case imported(capture: String)
        var name: String { if case .live = self { "live" } else { "import" } }
        var detail: String {
            switch self {
            case let .live(r): r
            case let .imported(c): c
            }
        }
    }

    public let archive: Archive
    public let conference: String
    public let conferenceID: Int64
    public let segmentID: Int64
    public let options: Options

    public private(set) var committedPackets = 0
    public private(set) var committedRTCP = 0
    public private(set) var commits = 0
    public private(set) var finished = false

    // The batch.
    private struct PendingPacket {
        var record: PacketRecord
        var offset: Int
        var length: Int
        /// > 0 a stored ekt_field id, 0 untied, < 0 −(index + 1) into `newFields`.
        var tie: Int64
    }
    private struct FieldKey: Hashable { var ssrc: UInt32, spi: UInt16, epoch: UInt16 }
    private struct PendingField { var key: FieldKey, bytes: [UInt8], firstSeen: Double, firstSequence: UInt16 }
    private struct SourceTotals { var payloadType: UInt8, first: Double, last: Double, packets: Int, bytes: Int }

    private var arena: [UInt8] = []
    private var packets: [PendingPacket] = []
    private var rtcp: [(arrival: Double, offset: Int, length: Int)] = []
    private var newFields: [PendingField] = []
    private var newFieldIndex: [FieldKey: Int] = [:]
    private var retie: [(ssrc: UInt32, field: Int)] = []
    private var epochs: [ArchivedEpoch] = []
    private var roster: [ArchivedRosterEvent] = []
    private var policies: [ArchivedPolicy] = []
    private var drops: [String: Int]?
    private var sources: [UInt32: SourceTotals] = [:]
    private var batchStarted: ContinuousClock.Instant?

    // Across batches.
    private var fieldIDs: [FieldKey: Int64] = [:]
    private var currentTie: [UInt32: Int64] = [:]
    private var untiedStored: Set<UInt32> = []
    private var ssrcOwner: [UInt32: Int64] = [:]

    /// Starts a new segment of `conference` (created if new) at `startedAt` (Unix seconds).
    public init(archive: Archive, conference: String, origin: Origin, authorityKeyID: String,
                startedAt: Double = Date().timeIntervalSince1970, options: Options = .init()) throws(ArchiveError) {
        self.archive = archive
        self.conference = conference
        self.options = options
        (conferenceID, segmentID) = try archive.write("start segment") { db in
            try db.execute(sql: "INSERT INTO conference (name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                           arguments: [conference, startedAt])
            guard let cid = try Int64.fetchOne(db, sql: "SELECT id FROM conference WHERE name = ?", arguments: [conference]) else {
                throw ArchiveError.unknownConference(conference)
            }
            try db.execute(sql: """
                INSERT INTO recording_segment (conference_id, origin, detail, authority_key_id, started_at)
                VALUES (?, ?, ?, ?, ?)
                """, arguments: [cid, origin.name, origin.detail, authorityKeyID, startedAt])
            return (cid, db.lastInsertedRowID)
        }
        arena.reserveCapacity(1 << 20)
        packets.reserveCapacity(4096)
    }

    /// Rows waiting for their commit.
    public var pendingRows: Int { packets.count + rtcp.count + newFields.count + epochs.count + roster.count + policies.count }

    /// When `commitIfDue` must run next (nil: nothing waits).
    public var commitDeadline: ContinuousClock.Instant? { batchStarted.map { $0 + options.commitInterval } }

    // MARK: - Appending

    /// A Full EKT field seen on a packet of `ssrc` (call before `append` of that packet). Each
    /// (SSRC, SPI, epoch) is stored once; it becomes the key tie for the SSRC's packets.
    public func noteFullEKTField(ssrc: UInt32, spi: UInt16, epoch: UInt16, field: UnsafeRawBufferPointer,
                                 sequence: UInt16, arrival: Double) {
        let key = FieldKey(ssrc: ssrc, spi: spi, epoch: epoch)
        if let id = fieldIDs[key] { currentTie[ssrc] = id; return }
        if let i = newFieldIndex[key] { currentTie[ssrc] = -Int64(i + 1); return }
        let i = newFields.count
        newFields.append(PendingField(key: key, bytes: Array(field), firstSeen: arrival, firstSequence: sequence))
        newFieldIndex[key] = i
        let tie = -Int64(i + 1)
        if currentTie[ssrc] == nil {
            // The SSRC's first Full field: tie the packets that came before it.
            for j in packets.indices where packets[j].record.ssrc == ssrc && packets[j].tie == 0 { packets[j].tie = tie }
            if untiedStored.contains(ssrc) { retie.append((ssrc, i)) }
        }
        currentTie[ssrc] = tie
        markPending()
    }

    /// Appends one inner packet (`data`: original header ‖ E2E ciphertext ‖ tag). Returns false
    /// (and stores nothing) only when the backlog is full because commits keep failing.
    @discardableResult
    public func append(_ record: PacketRecord, data: UnsafeRawBufferPointer) -> Bool {
        guard packets.count < options.maximumBacklog else { return false }
        packets.append(PendingPacket(record: record, offset: arena.count, length: data.count, tie: currentTie[record.ssrc] ?? 0))
        arena.append(contentsOf: data)
        if var s = sources[record.ssrc] {
            s.last = max(s.last, record.arrival)
            s.first = min(s.first, record.arrival)
            s.packets += 1
            s.bytes += data.count
            sources[record.ssrc] = s
        } else {
            sources[record.ssrc] = SourceTotals(payloadType: record.payloadType, first: record.arrival, last: record.arrival,
                                                packets: 1, bytes: data.count)
        }
        markPending()
        return true
    }

    @discardableResult
    public func append(_ record: PacketRecord, data: [UInt8]) -> Bool {
        data.withUnsafeBytes { append(record, data: $0) }
    }

    /// Appends a compound RTCP packet with the hop layer removed.
    @discardableResult
    public func appendRTCP(_ data: UnsafeRawBufferPointer, arrival: Double) -> Bool {
        guard rtcp.count < options.maximumBacklog else { return false }
        rtcp.append((arrival, arena.count, data.count))
        arena.append(contentsOf: data)
        markPending()
        return true
    }

    @discardableResult
    public func appendRTCP(_ data: [UInt8], arrival: Double) -> Bool { data.withUnsafeBytes { appendRTCP($0, arrival: arrival) } }

    /// A sealed epoch key (stored once per conference, SPI and key id; `last_seen` advances).
    public func record(epoch: ArchivedEpoch) {
        epochs.append(epoch)
        markPending()
    }

    /// Roster events in log order.
    public func record(roster events: [ArchivedRosterEvent]) {
        roster += events
        if !events.isEmpty { markPending() }
    }

    /// A policy announcement from the Key Distributor (or a keys file), stored as a
    /// `conference_policy` row of this segment. Each segment keeps its own copy, like the
    /// roster, so a segment read on its own still says which rules applied to it.
    public func record(policy: ArchivedPolicy) {
        policies.append(policy)
        markPending()
    }

    /// The segment's drop counters so far (cumulative, by reason).
    public func setDropCounters(_ counters: [String: Int]) {
        drops = counters
    }

    private func markPending() {
        if batchStarted == nil { batchStarted = .now }
    }

    // MARK: - Committing

    /// Commits if the oldest waiting row is due or the batch is full.
    public func commitIfDue(now: ContinuousClock.Instant = .now) throws(ArchiveError) {
        if let d = commitDeadline, now >= d { try commit(); return }
        if packets.count + rtcp.count >= options.maximumBatch { try commit() }
    }

    /// Commits everything waiting in one transaction. On failure nothing is lost: the batch
    /// stays and the next commit retries it.
    public func commit() throws(ArchiveError) {
        guard pendingRows > 0 || drops != nil else { batchStarted = nil; return }
        let now = Date().timeIntervalSince1970
        let resolved: [Int64] = try archive.write("commit") { db in try self.writeBatch(db, committedAt: now) }
        // Success: fold the batch into the across-batch state.
        for (i, f) in newFields.enumerated() { fieldIDs[f.key] = resolved[i] }
        for (ssrc, tie) in currentTie where tie < 0 { currentTie[ssrc] = resolved[Int(-tie - 1)] }
        for p in packets where p.tie == 0 { untiedStored.insert(p.record.ssrc) }
        for r in retie { untiedStored.remove(r.ssrc) }
        committedPackets += packets.count
        committedRTCP += rtcp.count
        commits += 1
        packets.removeAll(keepingCapacity: true)
        rtcp.removeAll(keepingCapacity: true)
        arena.removeAll(keepingCapacity: true)
        newFields.removeAll()
        newFieldIndex.removeAll()
        retie.removeAll()
        epochs.removeAll()
        roster.removeAll()
        policies.removeAll()
        sources.removeAll(keepingCapacity: true)
        drops = nil
        batchStarted = nil
    }

    /// Removes the segment if nothing was ever committed to it and nothing waits (a session that
    /// never got keyed); otherwise closes it like `finish`. Returns whether it was removed.
    @discardableResult
    public func discardIfEmpty(reason: String) throws(ArchiveError) -> Bool {
        guard commits == 0, pendingRows == 0, !finished else { try finish(reason: reason); return false }
        try archive.write("discard segment") { db in
            try db.execute(sql: "DELETE FROM recording_segment WHERE id = ?", arguments: [segmentID])
            try db.execute(sql: """
                DELETE FROM conference WHERE id = ? AND NOT EXISTS (SELECT 1 FROM recording_segment WHERE conference_id = ?)
                """, arguments: [conferenceID, conferenceID])
        }
        finished = true
        return true
    }

    /// Commits and closes the segment with `reason` ("signal", "conference ended", …).
    public func finish(reason: String, at endedAt: Double = Date().timeIntervalSince1970) throws(ArchiveError) {
        try commit()
        guard !finished else { return }
        try archive.write("finish segment") { db in
            try db.execute(sql: "UPDATE recording_segment SET ended_at = ?, end_reason = ? WHERE id = ?",
                           arguments: [endedAt, reason, segmentID])
        }
        finished = true
    }

    private func writeBatch(_ db: Database, committedAt: Double) throws -> [Int64] {
        // 1. New Full EKT fields (once per conference, SSRC, SPI, epoch).
        var resolved: [Int64] = []
        for f in newFields {
            try db.execute(sql: """
                INSERT INTO ekt_field (conference_id, ssrc, spi, epoch, field, first_seen, first_sequence)
                VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """, arguments: [conferenceID, Int64(f.key.ssrc), Int64(f.key.spi), Int64(f.key.epoch), Data(f.bytes),
                                 f.firstSeen, Int64(f.firstSequence)])
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM ekt_field WHERE conference_id = ? AND ssrc = ? AND spi = ? AND epoch = ?",
                                              arguments: [conferenceID, Int64(f.key.ssrc), Int64(f.key.spi), Int64(f.key.epoch)]) else {
                throw ArchiveError.database(operation: "commit", reason: "EKT field row vanished")
            }
            resolved.append(id)
        }
        // 2. Earlier packets of an SSRC whose first Full field just arrived.
        for r in retie {
            try db.execute(sql: "UPDATE packet SET ekt_field_id = ? WHERE recording_segment_id = ? AND ssrc = ? AND ekt_field_id IS NULL",
                           arguments: [resolved[r.field], segmentID, Int64(r.ssrc)])
        }
        // 3. Roster (participants first, so sources can point at them).
        for e in roster {
            try db.execute(sql: """
                INSERT INTO participant (conference_id, fingerprint, name, role) VALUES (?, ?, ?, ?)
                ON CONFLICT(conference_id, fingerprint) DO UPDATE SET name = excluded.name, role = excluded.role
                """, arguments: [conferenceID, e.fingerprint, e.name, e.role])
            guard let pid = try Int64.fetchOne(db, sql: "SELECT id FROM participant WHERE conference_id = ? AND fingerprint = ?",
                                               arguments: [conferenceID, e.fingerprint]) else { continue }
            let ssrcs = "[" + e.ssrcs.map(String.init).joined(separator: ",") + "]"
            try db.execute(sql: """
                INSERT INTO roster_event (conference_id, recording_segment_id, sequence, kind, participant_id, ssrcs, received_at, spi)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """, arguments: [conferenceID, segmentID, Int64(e.sequence), e.kind, pid, ssrcs, e.receivedAt, e.spi.map { Int64($0) }])
            if e.kind != "leave" {
                for s in e.ssrcs {
                    ssrcOwner[s] = pid
                    try db.execute(sql: "UPDATE source SET participant_id = ? WHERE conference_id = ? AND ssrc = ?",
                                   arguments: [pid, conferenceID, Int64(s)])
                }
            }
        }
        // 4. Packets, bound through the raw statement handle (the hot path).
        if !packets.isEmpty {
            let statement = try db.cachedStatement(sql: """
                INSERT INTO packet (recording_segment_id, ssrc, sequence, extended_sequence, rtp_timestamp, payload_type,
                                    marker, arrival, ekt_field_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            let h = statement.sqliteStatement
            try arena.withUnsafeBytes { raw in
                for p in packets {
                    sqlite3_reset(h)
                    sqlite3_bind_int64(h, 1, segmentID)
                    sqlite3_bind_int64(h, 2, Int64(p.record.ssrc))
                    sqlite3_bind_int64(h, 3, Int64(p.record.sequence))
                    sqlite3_bind_int64(h, 4, p.record.extendedSequence)
                    sqlite3_bind_int64(h, 5, Int64(p.record.rtpTimestamp))
                    sqlite3_bind_int64(h, 6, Int64(p.record.payloadType))
                    sqlite3_bind_int64(h, 7, p.record.marker ? 1 : 0)
                    sqlite3_bind_double(h, 8, p.record.arrival)
                    if p.tie > 0 {
                        sqlite3_bind_int64(h, 9, p.tie)
                    } else if p.tie < 0 {
                        sqlite3_bind_int64(h, 9, resolved[Int(-p.tie - 1)])
                    } else {
                        sqlite3_bind_null(h, 9)
                    }
                    sqlite3_bind_blob(h, 10, raw.baseAddress.map { $0 + p.offset }, Int32(p.length), nil)
                    let rc = sqlite3_step(h)
                    guard rc == SQLITE_DONE else { throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection))) }
                }
                sqlite3_reset(h)
                sqlite3_clear_bindings(h)
            }
        }
        // 5. RTCP.
        if !rtcp.isEmpty {
            let statement = try db.cachedStatement(sql: "INSERT INTO rtcp (recording_segment_id, arrival, data) VALUES (?, ?, ?)")
            let h = statement.sqliteStatement
            try arena.withUnsafeBytes { raw in
                for r in rtcp {
                    sqlite3_reset(h)
                    sqlite3_bind_int64(h, 1, segmentID)
                    sqlite3_bind_double(h, 2, r.arrival)
                    sqlite3_bind_blob(h, 3, raw.baseAddress.map { $0 + r.offset }, Int32(r.length), nil)
                    let rc = sqlite3_step(h)
                    guard rc == SQLITE_DONE else { throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection))) }
                }
                sqlite3_reset(h)
                sqlite3_clear_bindings(h)
            }
        }
        // 6. Sources.
        for (ssrc, s) in sources {
            let media = options.mediaKinds[s.payloadType] ?? "unknown"
            try db.execute(sql: """
                INSERT INTO source (conference_id, ssrc, media, payload_type, participant_id, first_seen, last_seen, packets, bytes)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(conference_id, ssrc) DO UPDATE SET
                    first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen),
                    packets = packets + excluded.packets, bytes = bytes + excluded.bytes,
                    participant_id = coalesce(excluded.participant_id, participant_id)
                """, arguments: [conferenceID, Int64(ssrc), media, Int64(s.payloadType), ssrcOwner[ssrc], s.first, s.last,
                                 s.packets, s.bytes])
        }
        // 7. Epochs (sealed keys).
        for e in epochs {
            try db.execute(sql: """
                INSERT INTO epoch (conference_id, spi, key_id, cipher, ttl, hpke_suite, authority_key_id, hpke_enc, sealed_key,
                                   first_seen, last_seen)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(conference_id, spi, key_id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)
                """, arguments: [conferenceID, Int64(e.spi), e.keyID, e.cipher, Int64(e.ttl), e.hpkeSuite, e.authorityKeyID,
                                 Data(e.encapsulatedKey), Data(e.sealedKey), e.seenAt, e.seenAt])
        }
        // 8. Policy announcements.
        for p in policies {
            try db.execute(sql: """
                INSERT INTO conference_policy (conference_id, recording_segment_id, received_at, allow_catch_up, administrators)
                VALUES (?, ?, ?, ?, ?)
                """, arguments: [conferenceID, segmentID, p.receivedAt, p.allowCatchUp, Archive.jsonArray(p.administrators)])
        }
        // 9. Drop counters and the segment's totals.
        for (reason, count) in drops ?? [:] {
            try db.execute(sql: """
                INSERT INTO drop_counter (recording_segment_id, reason, count) VALUES (?, ?, ?)
                ON CONFLICT(recording_segment_id, reason) DO UPDATE SET count = excluded.count
                """, arguments: [segmentID, reason, count])
        }
        let bytes = packets.reduce(0) { $0 + $1.length }
        try db.execute(sql: """
            UPDATE recording_segment SET packets = packets + ?, rtcp_packets = rtcp_packets + ?, bytes = bytes + ?,
                last_commit_at = ? WHERE id = ?
            """, arguments: [packets.count, rtcp.count, bytes, committedAt, segmentID])
        return resolved
    }
}
