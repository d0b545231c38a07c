import Crypto
import Foundation

/// The imported National DNC Registry snapshot: its date decides whether any dial may use it (≤ 31 days,
/// 16 CFR 310.4(b)(3)(iv), 47 CFR 64.1200(c)(2)(i)(D)).
public struct NationalDNCSnapshot: Sendable, Equatable {
    /// The date the registry data was obtained (not when we imported it).
    public var listDate: Int64
    public var importedAt: Int64
    public var entries: Int64
    public var fileSHA256: String
}

extension ComplianceStore {
    /// Adds a number to the internal (company-specific) DNC list. Entries are never deleted here: the list must be
    /// honoured at least 5 years (47 CFR 64.1200(d)(6)).
    public func addInternalDNC(_ number: PhoneNumber, source: String) async throws {
        let now = clock.seconds
        try await database.transaction { [ledger] sql in
            try await Self.addInternalDNC(number, source: source, at: now, ledger: ledger, in: sql)
        }
    }

    static func addInternalDNC(_ number: PhoneNumber, source: String, at now: Int64, ledger: Ledger, in sql: any SQLExecutor) async throws {
        let added = try await sql.query(
            "INSERT INTO dnc_internal (number, added_at, source) VALUES (?, ?, ?) ON CONFLICT (number) DO NOTHING RETURNING number",
            .text(number.e164), .integer(now), .text(source))
        if !added.isEmpty {
            try await ledger.append(.dncAdded, number: number.e164, fields: ["list": "internal", "source": source], at: now, in: sql)
        }
    }

    /// Replaces the national DNC snapshot with `numbers` (one transaction: dials see the old list or the new one).
    public func importNationalDNC(_ numbers: [PhoneNumber], listDate: Int64, fileSHA256: String) async throws -> NationalDNCSnapshot {
        let now = clock.seconds
        let snapshot = NationalDNCSnapshot(listDate: listDate, importedAt: now, entries: Int64(Set(numbers).count), fileSHA256: fileSHA256)
        try await database.transaction { [ledger] sql in
            try await sql.query("DELETE FROM dnc_national")
            let unique = Array(Set(numbers.map(\.e164))).sorted()
            for chunk in stride(from: 0, to: unique.count, by: 500).map({ unique[$0..<min($0 + 500, unique.count)] }) {
                let placeholders = Array(repeating: "(?)", count: chunk.count).joined(separator: ", ")
                try await sql.query("INSERT INTO dnc_national (number) VALUES \(placeholders)", chunk.map(SQLValue.text))
            }
            try await sql.query("DELETE FROM dnc_national_snapshot")
            try await sql.query(
                "INSERT INTO dnc_national_snapshot (id, list_date, imported_at, entries, file_sha256) VALUES (1, ?, ?, ?, ?)",
                .integer(listDate), .integer(now), .integer(snapshot.entries), .text(fileSHA256))
            try await ledger.append(.nationalDNCImported, number: nil, fields: [
                "list_date": String(listDate), "entries": String(snapshot.entries), "file_sha256": fileSHA256,
            ], at: now, in: sql)
        }
        return snapshot
    }

    public func nationalDNCSnapshot() async throws -> NationalDNCSnapshot? {
        try await database.transaction { sql in
            try await Self.nationalSnapshot(in: sql)
        }
    }

    static func nationalSnapshot(in sql: any SQLExecutor) async throws -> NationalDNCSnapshot? {
        try await sql.query("SELECT * FROM dnc_national_snapshot WHERE id = 1").first.map {
            NationalDNCSnapshot(listDate: try $0.int("list_date"), importedAt: try $0.int("imported_at"),
                                entries: try $0.int("entries"), fileSHA256: try $0.string("file_sha256"))
        }
    }

    /// Reads a national DNC file: one number per line, E.164 or 10-digit US (the registry's own download format),
    /// `#` comments and blank lines skipped. Bad lines are reported, not fatal.
    public static func readNationalDNCFile(_ text: String) -> (numbers: [PhoneNumber], issues: [ImportIssue], sha256: String) {
        var numbers: [PhoneNumber] = []
        var issues: [ImportIssue] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let candidate = line.count == 10 && line.allSatisfy(\.isNumber) ? "+1" + line : line
            do { numbers.append(try PhoneNumber(candidate)) } catch {
                issues.append(ImportIssue(row: index + 1, column: "number", reason: error.reason))
            }
        }
        return (numbers, issues, sha256Hex(text))
    }
}
