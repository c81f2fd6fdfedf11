// The ingest benchmark's socket-free measurements on the same packets, on the recorder's core:
//
// - baseline: what a minimal C-library pipeline does per core: libsrtp2 unprotect of the
//   outer (HBH) layer, then one prepared raw-SQLite INSERT of (ssrc, seq, ts, pt, arrival,
//   blob) into a table without secondary indexes, WAL, synchronous=NORMAL, 10k rows per
//   transaction. No OHB restore, no EKT bookkeeping: an upper bound.
// - components: the recorder path split into its parts (HBH open alone; ArchivingReceiver
//   receive, i.e. HBH open + parsing + SegmentWriter.append; SegmentWriter.commit per row;
//   libsrtp unprotect alone), over a sample, in commit-sized chunks.
import Archive
import CLibSRTP
import GRDBSQLite
import Recorder
import SRTP
#if canImport(Glibc)
import Glibc
#endif

enum IngestBaseline {
    static let rowsPerTransaction = 10_000

    struct Outcome {
        var rows = 0
        var nanoseconds: UInt64 = 0
        var failures = FailureLog()
        var pps: Double { nanoseconds == 0 ? 0 : Double(rows) * 1e9 / Double(nanoseconds) }
    }

    /// Length of the EKT field at the end of the datagram at `p` (Short: 1; Full: its length
    /// field), 0 if neither.
    @inline(__always)
    static func ektTrailerLength(_ p: UnsafeRawPointer, _ n: Int) -> Int {
        guard n >= 1 else { return 0 }
        let type = p.load(fromByteOffset: n - 1, as: UInt8.self)
        if type == 0x00 { return 1 }
        guard type == 0x02, n >= 3 else { return 0 }
        let length = Int(p.load(fromByteOffset: n - 3, as: UInt8.self)) << 8 | Int(p.load(fromByteOffset: n - 2, as: UInt8.self))
        return length <= n ? length : 0
    }

    struct SQLiteFailure: Error, CustomStringConvertible { let description: String }

    /// libsrtp2 + raw SQLite over the first `count` packets into a new database at `path`.
    static func baseline(_ packets: IngestPackets, count: Int, path: String) throws -> Outcome {
        let peer = try LibSRTPPeer(profile: .aeadAes128Gcm, key: packets.recorderHopKey, salt: packets.recorderHopSalt, inbound: true)
        removeDatabase(path)
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK, let db else {
            throw SQLiteFailure(description: "cannot open \(path)")
        }
        defer { sqlite3_close(db); removeDatabase(path) }
        func exec(_ sql: String) throws {
            guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
                throw SQLiteFailure(description: "\(sql): \(String(cString: sqlite3_errmsg(db)))")
            }
        }
        try exec("PRAGMA journal_mode = WAL")
        try exec("PRAGMA synchronous = NORMAL")
        try exec("""
            CREATE TABLE packet (id INTEGER PRIMARY KEY, ssrc INTEGER NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
                                 pt INTEGER NOT NULL, arrival REAL NOT NULL, data BLOB NOT NULL)
            """)
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, "INSERT INTO packet (ssrc, seq, ts, pt, arrival, data) VALUES (?, ?, ?, ?, ?, ?)", -1,
                                 &statement, nil) == SQLITE_OK, let h = statement else {
            throw SQLiteFailure(description: "prepare: \(String(cString: sqlite3_errmsg(db)))")
        }
        defer { sqlite3_finalize(h) }
        let scratch = ScratchBuffer()
        let s = scratch.pointer
        var out = Outcome()
        let start = monotonicNanoseconds()
        try exec("BEGIN")
        var inTransaction = 0
        var arrival = IngestSystem.unixTime()
        for i in 0 ..< count {
            if i & 63 == 0 { arrival = IngestSystem.unixTime() }
            let n = packets.lengths[i]
            s.copyMemory(from: packets.pointers[i], byteCount: n)
            let trailer = ektTrailerLength(s, n)
            guard trailer > 0 else { out.failures.record(i, "no EKT field"); continue }
            var length = Int32(n - trailer)
            let status = peer.unprotect(s, length: &length)
            guard status == srtp_err_status_ok, length >= 12 else {
                out.failures.record(i, "srtp_unprotect: \(LibSRTPPeer.statusName(status))"); continue
            }
            let b = UnsafeRawPointer(s).assumingMemoryBound(to: UInt8.self)
            let ssrc = UInt32(b[8]) << 24 | UInt32(b[9]) << 16 | UInt32(b[10]) << 8 | UInt32(b[11])
            let seq = UInt16(b[2]) << 8 | UInt16(b[3])
            let ts = UInt32(b[4]) << 24 | UInt32(b[5]) << 16 | UInt32(b[6]) << 8 | UInt32(b[7])
            sqlite3_bind_int64(h, 1, Int64(ssrc))
            sqlite3_bind_int64(h, 2, Int64(seq))
            sqlite3_bind_int64(h, 3, Int64(ts))
            sqlite3_bind_int64(h, 4, Int64(b[1] & 0x7F))
            sqlite3_bind_double(h, 5, arrival)
            sqlite3_bind_blob(h, 6, s, length, nil)   // SQLITE_STATIC: the bytes outlive the step
            guard sqlite3_step(h) == SQLITE_DONE else {
                throw SQLiteFailure(description: "insert: \(String(cString: sqlite3_errmsg(db)))")
            }
            sqlite3_reset(h)
            out.rows += 1
            inTransaction += 1
            if inTransaction == rowsPerTransaction {
                try exec("COMMIT")
                try exec("BEGIN")
                inTransaction = 0
            }
        }
        try exec("COMMIT")
        out.nanoseconds = monotonicNanoseconds() &- start
        return out
    }

    struct Components {
        var packets = 0
        var hbhOpenNanoseconds: UInt64 = 0
        var libsrtpNanoseconds: UInt64 = 0
        var receiveNanoseconds: UInt64 = 0
        var commitNanoseconds: UInt64 = 0
        var commits = 0
        var storedRows = 0
        var failures = 0
        func perPacket(_ ns: UInt64) -> Double { packets == 0 ? 0 : Double(ns) / Double(packets) }
    }

    /// The recorder path's parts over the first `count` packets, in chunks of `chunk` packets
    /// (one commit each, as the live loop commits every 100 ms).
    static func components(_ packets: IngestPackets, count: Int, chunk: Int, archivePath: String) throws -> Components {
        var c = Components()
        c.packets = count
        let scratch = ScratchBuffer()
        let s = scratch.pointer
        // HBH open alone (percrec).
        let outer = try DoubleSRTPReceiver(profile: .doubleAeadAes128Gcm, outerKey: packets.recorderHopKey,
                                           outerSalt: packets.recorderHopSalt)
        var start = monotonicNanoseconds()
        for i in 0 ..< count {
            let n = packets.lengths[i]
            s.copyMemory(from: packets.pointers[i], byteCount: n)
            let trailer = ektTrailerLength(s, n)
            do { _ = try outer.openOuter(UnsafeMutableRawBufferPointer(start: s, count: n - trailer)) } catch { c.failures += 1 }
        }
        c.hbhOpenNanoseconds = monotonicNanoseconds() &- start
        // libsrtp unprotect alone.
        let peer = try LibSRTPPeer(profile: .aeadAes128Gcm, key: packets.recorderHopKey, salt: packets.recorderHopSalt, inbound: true)
        start = monotonicNanoseconds()
        for i in 0 ..< count {
            let n = packets.lengths[i]
            s.copyMemory(from: packets.pointers[i], byteCount: n)
            var length = Int32(n - ektTrailerLength(s, n))
            if peer.unprotect(s, length: &length) != srtp_err_status_ok { c.failures += 1 }
        }
        c.libsrtpNanoseconds = monotonicNanoseconds() &- start
        // ArchivingReceiver.receive, then SegmentWriter.commit, chunk by chunk.
        removeDatabase(archivePath)
        defer { removeDatabase(archivePath) }
        let archive = try Archive(path: archivePath)
        defer { archive.close() }
        var options = SegmentWriter.Options()
        options.commitInterval = .seconds(3600)
        options.maximumBatch = Int.max
        let writer = try SegmentWriter(archive: archive, conference: "ingest-components", origin: .live(recorder: "percrec-bench"),
                                       authorityKeyID: "bench", options: options)
        let receiver = try ArchivingReceiver(writer: writer, outerKey: packets.recorderHopKey, outerSalt: packets.recorderHopSalt)
        var i = 0
        while i < count {
            let end = min(count, i + chunk)
            let arrival = IngestSystem.unixTime()
            start = monotonicNanoseconds()
            while i < end {
                let n = packets.lengths[i]
                s.copyMemory(from: packets.pointers[i], byteCount: n)
                if !receiver.receive(UnsafeMutableRawBufferPointer(start: s, count: n), arrival: arrival) { c.failures += 1 }
                i += 1
            }
            let mid = monotonicNanoseconds()
            try writer.commit()
            c.receiveNanoseconds &+= mid &- start
            c.commitNanoseconds &+= monotonicNanoseconds() &- mid
            c.commits += 1
        }
        try writer.finish(reason: "benchmark components")
        c.storedRows = writer.committedPackets
        return c
    }

    static func removeDatabase(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) }
    }
}
