import Foundation
import GRDB
import GRDBSQLite

/// What went wrong with the archive file.
public enum ArchiveError: Error, CustomStringConvertible, Equatable {
    case notFound(path: String)
    case cannotOpen(path: String, reason: String)
    case database(operation: String, reason: String)
    case unknownConference(String)

    public var description: String {
        switch self {
        case let .notFound(path): "no archive at \(path) (record or import into it first)"
        case let .cannotOpen(path, reason): "cannot open the archive \(path): \(reason)"
        case let .database(operation, reason): "archive \(operation) failed: \(reason)"
        case let .unknownConference(name): "the archive holds no conference \"\(name)\""
        }
    }
}

/// The SQLite archive (DESIGN §6): WAL mode, `synchronous=NORMAL`, schema by migrations.
///
/// Writers go through `SegmentWriter` (one per recording segment), which batches rows and
/// commits at most `SegmentWriter.Options.commitInterval` apart, so a crash loses at most the
/// last uncommitted batch and never corrupts the file. Readers (`percrec list`, `inspect`, the
/// exporter) may run while a recorder writes.
public final class Archive: Sendable {
    public let path: String
    let pool: DatabasePool

    /// The default location, relative to the working directory.
    public static let defaultPath = "storage/archive.sqlite"

    /// Opens (creating if `create`) the archive at `path` and brings its schema up to date.
    public init(path: String, create: Bool = true) throws(ArchiveError) {
        self.path = path
        if !create, !FileManager.default.fileExists(atPath: path) { throw .notFound(path: path) }
        let directory = (path as NSString).deletingLastPathComponent
        if create, !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(10)
        config.label = "percrec.archive"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Checkpoints run on `checkpointer`'s own connection, not inside the recorder's commits.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
        }
        pool = try Self.openAndMigrate(path: path, configuration: config)
        checkpointer = WALCheckpointer(path: path)
    }

    private let checkpointer: WALCheckpointer

    /// Opens the pool and applies pending migrations. Two processes (a recorder starting while
    /// `percrec list` runs) may race on a new file: one sees "database is locked" while the other
    /// switches it to WAL, or "table already exists" when both migrate. The loser retries: by
    /// then the winner's migration has committed and is seen as applied.
    private static func openAndMigrate(path: String, configuration: Configuration) throws(ArchiveError) -> DatabasePool {
        var attempt = 0
        while true {
            do {
                let pool = try DatabasePool(path: path, configuration: configuration)
                try ArchiveSchema.migrator.migrate(pool)
                return pool
            } catch {
                attempt += 1
                guard attempt < 10 else { throw .cannotOpen(path: path, reason: reason(error)) }
                Thread.sleep(forTimeInterval: 0.02 * Double(attempt))
            }
        }
    }

    /// The names of the schema migrations applied, oldest first.
    public func appliedMigrations() throws(ArchiveError) -> [String] {
        try read("migrations") { db in try ArchiveSchema.migrator.appliedMigrations(db) }
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    public func integrityCheck() throws(ArchiveError) -> [String] {
        try read("integrity_check") { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
    }

    /// `PRAGMA journal_mode` (expected "wal").
    public func journalMode() throws(ArchiveError) -> String {
        try read("journal_mode") { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    /// Runs a read transaction; maps errors to `ArchiveError.database`.
    func read<T>(_ operation: String, _ body: (Database) throws -> T) throws(ArchiveError) -> T {
        do { return try pool.read(body) } catch { throw .database(operation: operation, reason: Self.reason(error)) }
    }

    func write<T>(_ operation: String, _ body: (Database) throws -> T) throws(ArchiveError) -> T {
        do { return try pool.write(body) } catch let e as ArchiveError { throw e } catch {
            throw .database(operation: operation, reason: Self.reason(error))
        }
    }

    static func reason(_ error: any Error) -> String {
        if let e = error as? DatabaseError { return e.message ?? "\(e.resultCode)" }
        return "\(error)"
    }

    /// The checkpoint thread holds itself alive; an archive dropped without `close()` stops it here.
    deinit { checkpointer.stop() }

    /// Closes the connections (pending writes must have been committed by their writers).
    public func close() {
        checkpointer.stop()
        try? pool.close()
    }
}

/// Moves committed WAL frames into the database file from a thread of its own, with its own
/// connection, every 200 ms (PASSIVE: it never blocks a writer or a reader). SQLite would
/// otherwise run the checkpoint inside whichever commit crosses 1000 pages, stalling the
/// recorder's receive loop for hundreds of milliseconds at high packet rates.
final class WALCheckpointer: @unchecked Sendable {
    private let condition = NSCondition()
    private var stopping = false
    private var running = true

    init(path: String, interval: TimeInterval = 0.2) {
        Thread.detachNewThread { [self] in
            var db: OpaquePointer?
            defer {
                condition.lock(); running = false; condition.broadcast(); condition.unlock()
            }
            guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK else { sqlite3_close(db); return }
            defer { sqlite3_close(db) }
            sqlite3_busy_timeout(db, 1000)
            while true {
                condition.lock()
                if !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: interval)) }
                let last = stopping
                condition.unlock()
                var frames: Int32 = 0, copied: Int32 = 0
                sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied)
                if last { break }
            }
        }
    }

    /// One last checkpoint, then the thread ends (waits for it).
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }

    deinit { stop() }
}
