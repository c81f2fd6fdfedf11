import Foundation
import GRDB

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
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            try ArchiveSchema.migrator.migrate(pool)
        } catch {
            throw .cannotOpen(path: path, reason: Self.reason(error))
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
        do { return try pool.write(body) } catch { throw .database(operation: operation, reason: Self.reason(error)) }
    }

    static func reason(_ error: any Error) -> String {
        if let e = error as? DatabaseError { return e.message ?? "\(e.resultCode)" }
        return "\(error)"
    }

    /// Closes the connections (pending writes must have been committed by their writers).
    public func close() {
        try? pool.close()
    }
}
