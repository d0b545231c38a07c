/// Versioned schema changes, applied in order inside one transaction and recorded in `schema_migrations`.
/// Append new versions; never edit a shipped one (stores in the field have run it).
enum Migrations {
    struct Migration: Sendable {
        let version: Int
        let statements: @Sendable (SQLDialect) -> [String]
    }

    static let all: [Migration] = [
        Migration(version: 1, statements: version1),
    ]

    /// Serialises concurrent migrators and ledger writers on PostgreSQL (an arbitrary, fixed key).
    static let postgresLockKey: Int64 = 0x7472_756E_6B6C

    static func migrate(_ database: any SQLDatabase, now: Int64) async throws {
        try await database.transaction { sql in
            if sql.dialect == .postgres { try await sql.query("SELECT pg_advisory_xact_lock(?)", .integer(postgresLockKey)) }
            try await sql.query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            let current = try await sql.query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.int("v") ?? 0
            guard current <= Int64(all.last?.version ?? 0) else {
                throw StoreError.invalid("store schema version \(current) is newer than this build knows (\(all.last?.version ?? 0))")
            }
            for migration in all where migration.version > current {
                for statement in migration.statements(sql.dialect) { try await sql.query(statement) }
                try await sql.query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", .integer(Int64(migration.version)), .integer(now))
            }
        }
    }

    private static func version1(_ dialect: SQLDialect) -> [String] {
        let int = dialect == .sqlite ? "INTEGER" : "BIGINT"
        let blob = dialect == .sqlite ? "BLOB" : "BYTEA"
        var statements = [
            "CREATE TABLE contacts (number TEXT PRIMARY KEY, timezone TEXT, created_at \(int) NOT NULL)",
            """
            CREATE TABLE consents (id TEXT PRIMARY KEY, number TEXT NOT NULL, type TEXT NOT NULL, seller TEXT NOT NULL,
              source TEXT NOT NULL, granted_at \(int) NOT NULL, disclosure TEXT NOT NULL, evidence TEXT,
              imported_at \(int) NOT NULL, revoked_at \(int), revoked_by TEXT)
            """,
            "CREATE INDEX consents_number ON consents (number)",
            "CREATE TABLE dnc_internal (number TEXT PRIMARY KEY, added_at \(int) NOT NULL, source TEXT NOT NULL)",
            "CREATE TABLE dnc_national (number TEXT PRIMARY KEY)",
            """
            CREATE TABLE dnc_national_snapshot (id \(int) PRIMARY KEY, list_date \(int) NOT NULL, imported_at \(int) NOT NULL,
              entries \(int) NOT NULL, file_sha256 TEXT NOT NULL)
            """,
            """
            CREATE TABLE campaigns (id TEXT PRIMARY KEY, purpose TEXT NOT NULL, seller TEXT NOT NULL, subject TEXT NOT NULL,
              trunk TEXT NOT NULL, route TEXT, from_number TEXT NOT NULL, window_start \(int) NOT NULL, window_end \(int) NOT NULL,
              max_attempts \(int) NOT NULL, retry_busy_s \(int) NOT NULL, retry_no_answer_s \(int) NOT NULL,
              concurrency \(int) NOT NULL, calls_per_second \(int) NOT NULL, quiet_dates TEXT NOT NULL, state TEXT NOT NULL,
              created_at \(int) NOT NULL)
            """,
            """
            CREATE TABLE campaign_contacts (campaign_id TEXT NOT NULL REFERENCES campaigns (id), number TEXT NOT NULL,
              state TEXT NOT NULL, attempts \(int) NOT NULL, next_at \(int) NOT NULL, disposition TEXT, rule TEXT,
              PRIMARY KEY (campaign_id, number))
            """,
            "CREATE INDEX campaign_contacts_due ON campaign_contacts (campaign_id, state, next_at)",
            """
            CREATE TABLE attempts (id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, number TEXT NOT NULL, subject TEXT NOT NULL,
              instance TEXT NOT NULL, consent_id TEXT, started_at \(int) NOT NULL, ended_at \(int), outcome TEXT,
              sip_code \(int), duration_s \(int))
            """,
            "CREATE INDEX attempts_number ON attempts (number, started_at)",
            """
            CREATE TABLE ledger (seq \(int) PRIMARY KEY, recorded_at \(int) NOT NULL, kind TEXT NOT NULL, number TEXT,
              body TEXT NOT NULL, prev_hash \(blob) NOT NULL, hash \(blob) NOT NULL)
            """,
            "CREATE INDEX ledger_number ON ledger (number, seq)",
            "CREATE INDEX ledger_recorded_at ON ledger (recorded_at)",
            """
            CREATE TABLE ledger_checkpoints (seq \(int) PRIMARY KEY, head_hash \(blob) NOT NULL, recorded_at \(int) NOT NULL,
              key_id TEXT NOT NULL, signature \(blob) NOT NULL)
            """,
        ]
        // Append-only by construction: these stop accidents and ordinary roles; the hash chain and the signed
        // checkpoints catch whoever can drop a trigger.
        switch dialect {
        case .sqlite:
            for table in ["ledger", "ledger_checkpoints"] {
                for operation in ["UPDATE", "DELETE"] {
                    statements.append("""
                        CREATE TRIGGER \(table)_no_\(operation.lowercased()) BEFORE \(operation) ON \(table)
                        BEGIN SELECT RAISE(ABORT, '\(table) is append-only'); END
                        """)
                }
            }
        case .postgres:
            statements.append("""
                CREATE FUNCTION trunkline_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$
                """)
            for table in ["ledger", "ledger_checkpoints"] {
                statements.append("""
                    CREATE TRIGGER \(table)_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON \(table)
                    FOR EACH STATEMENT EXECUTE FUNCTION trunkline_append_only()
                    """)
            }
        }
        return statements
    }
}
