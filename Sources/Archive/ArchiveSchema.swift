import GRDB

/// The archive's tables, created by numbered migrations (storage/README.md documents them).
///
/// Everything here is what a Media Distributor could see anyway, plus epoch keys sealed to the
/// archive authority: packets stay end-to-end encrypted, keys are HPKE ciphertext.
enum ArchiveSchema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: conferences, segments, roster, sources, epochs, EKT fields, packets, RTCP, drops") { db in
            try db.create(table: "conference") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique()
                t.column("created_at", .double).notNull()
            }
            try db.create(table: "recording_segment") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("conference_id", .integer).notNull().indexed().references("conference", onDelete: .cascade)
                t.column("origin", .text).notNull()            // "live" or "import"
                t.column("detail", .text).notNull()            // recorder fingerprint or capture path
                t.column("authority_key_id", .text).notNull()
                t.column("started_at", .double).notNull()
                t.column("ended_at", .double)
                t.column("end_reason", .text)
                t.column("last_commit_at", .double)
                t.column("packets", .integer).notNull().defaults(to: 0)
                t.column("rtcp_packets", .integer).notNull().defaults(to: 0)
                t.column("bytes", .integer).notNull().defaults(to: 0)
            }
            try db.create(table: "participant") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("conference_id", .integer).notNull().indexed().references("conference", onDelete: .cascade)
                t.column("fingerprint", .text).notNull()
                t.column("name", .text).notNull()
                t.column("role", .text).notNull()
                t.uniqueKey(["conference_id", "fingerprint"])
            }
            try db.create(table: "roster_event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("conference_id", .integer).notNull().indexed().references("conference", onDelete: .cascade)
                t.column("recording_segment_id", .integer).notNull().indexed().references("recording_segment", onDelete: .cascade)
                t.column("sequence", .integer).notNull()       // the KD's roster log number
                t.column("kind", .text).notNull()              // join, sources, leave
                t.column("participant_id", .integer).notNull().indexed().references("participant")
                t.column("ssrcs", .text).notNull()             // JSON array of SSRCs
                t.column("received_at", .double).notNull()
                t.uniqueKey(["recording_segment_id", "sequence"])
            }
            try db.create(table: "source") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("conference_id", .integer).notNull().indexed().references("conference", onDelete: .cascade)
                t.column("ssrc", .integer).notNull()
                t.column("media", .text).notNull()             // audio, video, unknown
                t.column("payload_type", .integer).notNull()
                t.column("participant_id", .integer).indexed().references("participant")
                t.column("first_seen", .double).notNull()
                t.column("last_seen", .double).notNull()
                t.column("packets", .integer).notNull().defaults(to: 0)
                t.column("bytes", .integer).notNull().defaults(to: 0)
                t.uniqueKey(["conference_id", "ssrc"])
            }
            try db.create(table: "epoch") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("conference_id", .integer).notNull().indexed().references("conference", onDelete: .cascade)
                t.column("spi", .integer).notNull()
                t.column("key_id", .text).notNull()            // non-secret digest that tells epochs apart
                t.column("cipher", .text).notNull()            // EKT cipher (AESKW_128, AESKW_256)
                t.column("ttl", .integer).notNull()
                t.column("hpke_suite", .text).notNull()
                t.column("authority_key_id", .text).notNull()
                t.column("hpke_enc", .blob).notNull()
                t.column("sealed_key", .blob).notNull()
                t.column("first_seen", .double).notNull()
                t.column("last_seen", .double).notNull()
                t.uniqueKey(["conference_id", "spi", "key_id"])
            }
            try db.create(table: "ekt_field") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("conference_id", .integer).notNull().indexed().references("conference", onDelete: .cascade)
                t.column("ssrc", .integer).notNull()
                t.column("spi", .integer).notNull()
                t.column("epoch", .integer).notNull()          // the field's EKT epoch (sender's key generation)
                t.column("field", .blob).notNull()             // the whole Full EKT field, still encrypted
                t.column("first_seen", .double).notNull()
                t.column("first_sequence", .integer).notNull() // inner SEQ of the packet that carried it
                t.uniqueKey(["conference_id", "ssrc", "spi", "epoch"])
            }
            try db.create(table: "packet") { t in
                // A plain rowid key: AUTOINCREMENT would update sqlite_sequence on every insert.
                t.column("id", .integer).primaryKey()
                t.column("recording_segment_id", .integer).notNull().references("recording_segment", onDelete: .cascade)
                t.column("ssrc", .integer).notNull()
                t.column("sequence", .integer).notNull()       // original (inner) SEQ, from the OHB
                t.column("extended_sequence", .integer).notNull() // unwrapped within the segment
                t.column("rtp_timestamp", .integer).notNull()
                t.column("payload_type", .integer).notNull()   // original PT
                t.column("marker", .boolean).notNull()
                t.column("arrival", .double).notNull()         // Unix time, seconds
                t.column("ekt_field_id", .integer).references("ekt_field")   // NULL until a Full field ties it
                t.column("data", .blob).notNull()              // inner packet: header ‖ E2E ciphertext ‖ tag
            }
            try db.create(index: "packet_by_source", on: "packet", columns: ["recording_segment_id", "ssrc", "extended_sequence"])
            try db.create(table: "rtcp") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("recording_segment_id", .integer).notNull().references("recording_segment", onDelete: .cascade)
                t.column("arrival", .double).notNull()
                t.column("data", .blob).notNull()              // compound RTCP, HBH layer removed
            }
            try db.create(index: "rtcp_by_segment", on: "rtcp", columns: ["recording_segment_id", "arrival"])
            try db.create(table: "drop_counter") { t in
                t.column("recording_segment_id", .integer).notNull().references("recording_segment", onDelete: .cascade)
                t.column("reason", .text).notNull()
                t.column("count", .integer).notNull()
                t.primaryKey(["recording_segment_id", "reason"])
            }
        }
        m.registerMigration("v2: conference policy, key-release audit log") { db in
            // The EKT SPI in force after each roster event (the roster message carries it).
            try db.alter(table: "roster_event") { t in t.add(column: "spi", .integer) }
            // The conference policy as the Key Distributor announced it (one row per announcement;
            // the newest applies). Absent: the defaults (no catch-up, no administrators).
            try db.create(table: "conference_policy") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("conference_id", .integer).notNull().indexed().references("conference", onDelete: .cascade)
                t.column("recording_segment_id", .integer).references("recording_segment", onDelete: .cascade)
                t.column("received_at", .double).notNull()
                t.column("allow_catch_up", .boolean).notNull()
                t.column("administrators", .text).notNull()    // JSON array of principal names
            }
            // The authority's decisions, hash-chained (docs/access.md). Not tied to `conference`
            // rows: refusals for unknown conferences are logged too, and deleting a conference
            // must not delete its audit trail. AUTOINCREMENT keeps `sqlite_sequence`, which
            // shows a deleted last entry.
            try db.create(table: "key_release") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("sequence", .integer).notNull().unique()
                t.column("at", .double).notNull()
                t.column("principal", .text).notNull()
                t.column("role", .text).notNull()
                t.column("conference", .text).notNull()
                t.column("requester", .text).notNull()         // key id of the requester's public key
                t.column("token_id", .text).notNull()
                t.column("granted", .text).notNull()           // JSON array of "SPI/key id"
                t.column("refused", .text).notNull()           // JSON array of "SPI/key id"
                t.column("decision", .text).notNull()          // granted, partial, refused
                t.column("reason", .text).notNull()
                t.column("previous_hash", .blob).notNull()
                t.column("hash", .blob).notNull()
            }
        }
        return m
    }
}
