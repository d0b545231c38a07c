import Foundation

/// Which entries an audit export holds.
public struct LedgerExportFilter: Sendable, Equatable {
    public var number: PhoneNumber?
    /// Inclusive bounds on the entry's recorded time (Unix seconds).
    public var from: Int64?
    public var until: Int64?

    public init(number: PhoneNumber? = nil, from: Int64? = nil, until: Int64? = nil) {
        self.number = number
        self.from = from
        self.until = until
    }
}

extension ComplianceStore {
    /// Writes matching entries as JSON lines (`seq`, `recorded_at` ISO 8601, `kind`, `number`, `body` as stored,
    /// `prev_hash`, `hash` in hex) in ledger order, so an auditor can match each line against the verified chain.
    /// Returns the number of entries written.
    @discardableResult
    public func exportLedger(_ filter: LedgerExportFilter, write: (String) throws -> Void) async throws -> Int {
        var conditions = ["seq > ?"]
        var binds: [SQLValue] = []
        if let number = filter.number { conditions.append("number = ?"); binds.append(.text(number.e164)) }
        if let from = filter.from { conditions.append("recorded_at >= ?"); binds.append(.integer(from)) }
        if let until = filter.until { conditions.append("recorded_at <= ?"); binds.append(.integer(until)) }
        let sqlText = "SELECT * FROM ledger WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq LIMIT 1000"
        let formatter = ISO8601DateFormatter()
        var after: Int64 = 0
        var written = 0
        while true {
            let rows = try await database.transaction { [after, binds] sql in try await sql.query(sqlText, [.integer(after)] + binds) }
            for row in rows {
                let entry = try LedgerEntry(row: row)
                let line: [String: String] = [
                    "seq": String(entry.seq),
                    "recorded_at": formatter.string(from: Date(timeIntervalSince1970: TimeInterval(entry.recordedAt))),
                    "kind": entry.kind, "number": entry.number ?? "", "body": entry.body,
                    "prev_hash": Self.hex(entry.previousHash), "hash": Self.hex(entry.hash),
                ]
                try write(Ledger.encode(line))
                after = entry.seq
                written += 1
            }
            if rows.count < 1000 { return written }
        }
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
}
