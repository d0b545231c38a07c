import Foundation

/// Where the compliance data lives: a SQLite file (embedded default) or a PostgreSQL database (shared by gateways).
public enum StoreLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    /// `postgres://…` or `postgresql://…` is PostgreSQL; anything else is a SQLite file path.
    public init(_ text: String) {
        self = text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") ? .postgres(url: text) : .sqlite(path: text)
    }

    /// Never shows a PostgreSQL password.
    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let url):
            if let at = url.lastIndex(of: "@"), let scheme = url.range(of: "://") {
                "\(url[..<scheme.upperBound])…\(url[at...])"
            } else { url }
        }
    }
}

/// Consent, DNC, campaigns, attempts and the ledger over one `SQLDatabase`. Every state change and the ledger entry
/// that records it commit in one transaction.
public final class ComplianceStore: Sendable {
    public let database: any SQLDatabase
    public let ledger: Ledger
    public let clock: any ComplianceClock

    public init(database: any SQLDatabase, ledger: Ledger, clock: any ComplianceClock) async throws {
        self.database = database
        self.ledger = ledger
        self.clock = clock
        try await Migrations.migrate(database, now: clock.seconds)
    }

    public static func open(_ location: StoreLocation, ledger: Ledger, clock: any ComplianceClock = SystemComplianceClock()) async throws -> ComplianceStore {
        let database: any SQLDatabase = switch location {
        case .sqlite(let path): try await SQLiteBackend.open(path: path)
        case .postgres(let url): try await PostgresBackend.connect(url: url)
        }
        do {
            return try await ComplianceStore(database: database, ledger: ledger, clock: clock)
        } catch {
            try? await database.close()
            throw error
        }
    }

    public func close() async throws { try await database.close() }

    /// Signs the ledger head now, so the newest entries are covered before the interval comes round.
    public func checkpointLedger() async throws {
        let now = clock.seconds
        try await database.transaction { [ledger] sql in try await ledger.checkpointHead(at: now, in: sql) }
    }

    /// Records that a disclosure (legal identification, opt-out instructions, recording notice) has played on a
    /// campaign call.
    public func recordDisclosure(number: PhoneNumber, campaignID: String?, attemptID: String?, callSid: String, prompt: String) async throws {
        let now = clock.seconds
        try await database.transaction { [ledger] sql in
            var fields = ["prompt": prompt, "call_sid": callSid]
            fields["campaign_id"] = campaignID
            fields["attempt_id"] = attemptID
            try await ledger.append(.disclosurePlayed, number: number.e164, fields: fields, at: now, in: sql)
        }
    }
}
