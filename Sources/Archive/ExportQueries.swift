import Foundation
import GRDB

/// A stored source as export needs it: which participant sent it, in which segments.
public struct ExportableSource: Sendable, Equatable {
    public var ssrc: UInt32
    /// "audio", "video" or "unknown", from the payload type at recording time.
    public var media: String
    public var payloadType: UInt8
    /// Roster name and certificate fingerprint of the sender, when the roster named one.
    public var participant: String?
    public var fingerprint: String?
    public var firstSeen: Double
    public var lastSeen: Double
    public var packets: Int
    /// Segments holding packets of this source, oldest first.
    public var segments: [Int64]
}

extension Archive {
    /// The sources of `conference` with their senders, by first arrival.
    public func exportableSources(conference: String) throws(ArchiveError) -> [ExportableSource] {
        try unwrapArchiveError("read sources") { db in
            let cid = try conferenceID(db, conference)
            let rows = try Row.fetchAll(db, sql: """
                SELECT s.ssrc, s.media, s.payload_type, s.first_seen, s.last_seen, s.packets, p.name, p.fingerprint
                FROM source s LEFT JOIN participant p ON p.id = s.participant_id
                WHERE s.conference_id = ? ORDER BY s.first_seen, s.ssrc
                """, arguments: [cid])
            return try rows.map { r in
                let ssrc: Int64 = r["ssrc"]
                let segments = try Int64.fetchAll(db, sql: """
                    SELECT id FROM recording_segment s WHERE s.conference_id = ?
                    AND EXISTS (SELECT 1 FROM packet p WHERE p.recording_segment_id = s.id AND p.ssrc = ?) ORDER BY id
                    """, arguments: [cid, ssrc])
                return ExportableSource(ssrc: UInt32(truncatingIfNeeded: ssrc), media: r["media"],
                                        payloadType: UInt8(truncatingIfNeeded: r["payload_type"] as Int64),
                                        participant: r["name"], fingerprint: r["fingerprint"], firstSeen: r["first_seen"],
                                        lastSeen: r["last_seen"], packets: r["packets"], segments: segments)
            }
        }
    }

    /// Calls `body` with each stored packet of `ssrc` in `segment`, by extended sequence number
    /// (then by storage order, so duplicates come out next to each other), without loading them
    /// all. `body` returns false to stop early.
    public func forEachPacket(segment: Int64, ssrc: UInt32, _ body: (StoredPacket) -> Bool) throws(ArchiveError) {
        try unwrapArchiveError("read packets") { db in
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT p.*, f.spi AS tie_spi, f.epoch AS tie_epoch FROM packet p
                LEFT JOIN ekt_field f ON f.id = p.ekt_field_id
                WHERE p.recording_segment_id = ? AND p.ssrc = ? ORDER BY p.extended_sequence, p.id
                """, arguments: [segment, Int64(ssrc)])
            while let r = try cursor.next() {
                if !body(Self.storedPacket(r)) { break }
            }
        }
    }

    static func storedPacket(_ r: Row) -> StoredPacket {
        let spi: Int64? = r["tie_spi"], epoch: Int64? = r["tie_epoch"]
        let data: Data = r["data"]
        return StoredPacket(segment: r["recording_segment_id"],
                            record: PacketRecord(ssrc: UInt32(truncatingIfNeeded: r["ssrc"] as Int64),
                                                 sequence: UInt16(truncatingIfNeeded: r["sequence"] as Int64),
                                                 extendedSequence: r["extended_sequence"],
                                                 rtpTimestamp: UInt32(truncatingIfNeeded: r["rtp_timestamp"] as Int64),
                                                 payloadType: UInt8(truncatingIfNeeded: r["payload_type"] as Int64),
                                                 marker: r["marker"], arrival: r["arrival"]),
                            tie: spi.flatMap { s in epoch.map { (UInt16(truncatingIfNeeded: s), UInt16(truncatingIfNeeded: $0)) } },
                            data: [UInt8](data))
    }
}
