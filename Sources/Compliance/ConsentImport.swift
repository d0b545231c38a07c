import Foundation

/// One problem with one row of an import file: the row (file line), the column and why.
public struct ImportIssue: Sendable, Equatable, CustomStringConvertible {
    public var row: Int
    public var column: String
    public var reason: String

    public var description: String { "row \(row), \(column): \(reason)" }
}

/// What an import did: good rows are stored whatever the bad ones are.
public struct ImportReport: Sendable, Equatable {
    public var imported = 0
    /// Rows already present (same consent id); re-importing a file is harmless.
    public var duplicates = 0
    public var issues: [ImportIssue] = []
}

/// Reads the consent CSV. Columns (header row, any order): `number` (E.164), `timezone` (IANA, optional),
/// `consent_type` (`pewc` | `pec`), `seller`, `source` (http(s) URL of the web form, `ivr`, `paper` or `verbal`),
/// `consented_at` (ISO 8601 with offset), `disclosure` (the text shown), `evidence` (IP, certificate or document
/// reference; optional).
public enum ConsentImport {
    public static let columns = ["number", "timezone", "consent_type", "seller", "source", "consented_at", "disclosure", "evidence"]
    static let required: Set<String> = ["number", "consent_type", "seller", "source", "consented_at", "disclosure"]
    static let sourceKeywords: Set<String> = ["ivr", "paper", "verbal"]

    /// Parses and validates every row; a row with any issue is left out whole, never half-stored.
    public static func parse(_ text: String, now: Int64) -> (records: [(ConsentRecord, String?)], issues: [ImportIssue]) {
        let table = CSV.parse(text)
        var issues: [ImportIssue] = []
        let unknown = table.header.filter { !columns.contains($0) }
        let missing = required.subtracting(table.header).sorted()
        if !unknown.isEmpty || !missing.isEmpty {
            let reason = (missing.isEmpty ? "" : "missing column(s) \(missing.joined(separator: ", ")); ")
                + (unknown.isEmpty ? "" : "unknown column(s) \(unknown.joined(separator: ", ")); ")
                + "expected \(columns.joined(separator: ","))"
            return ([], [ImportIssue(row: 1, column: "header", reason: reason)])
        }
        var records: [(ConsentRecord, String?)] = []
        let timestamps = TimestampParser()
        for record in table.records {
            var rowIssues: [ImportIssue] = []
            func issue(_ column: String, _ reason: String) { rowIssues.append(ImportIssue(row: record.line, column: column, reason: reason)) }
            guard record.fields.count == table.header.count else {
                issues.append(ImportIssue(row: record.line, column: "*", reason: "has \(record.fields.count) fields, the header has \(table.header.count)"))
                continue
            }
            var value: [String: String] = [:]
            for (name, field) in zip(table.header, record.fields) { value[name] = field.trimmingCharacters(in: .whitespaces) }
            for name in required.sorted() where value[name, default: ""].isEmpty { issue(name, "is empty") }

            var number: PhoneNumber?
            if let text = value["number"], !text.isEmpty {
                do { number = try PhoneNumber(text) } catch { issue("number", "'\(text)' is not a valid E.164 number: \(error.reason)") }
            }
            let timezone = value["timezone"].flatMap { $0.isEmpty ? nil : $0 }
            if let timezone, TimeZone(identifier: timezone) == nil { issue("timezone", "'\(timezone)' is not an IANA time zone") }
            let type = value["consent_type"].flatMap { ConsentType(rawValue: $0.lowercased()) }
            if let text = value["consent_type"], !text.isEmpty, type == nil {
                issue("consent_type", "'\(text)' is not pewc (written, marketing) or pec (informational)")
            }
            let source = value["source"] ?? ""
            if !source.isEmpty, !sourceKeywords.contains(source.lowercased()),
               !(source.hasPrefix("https://") || source.hasPrefix("http://")) || URL(string: source)?.host == nil {
                issue("source", "'\(source)' is not a web form URL, ivr, paper or verbal")
            }
            var grantedAt: Int64?
            if let text = value["consented_at"], !text.isEmpty {
                if let date = timestamps.date(text) {
                    grantedAt = Int64(date.timeIntervalSince1970)
                    if grantedAt! > now { issue("consented_at", "'\(text)' is in the future") }
                } else {
                    issue("consented_at", "'\(text)' is not an ISO 8601 time with offset (e.g. 2026-03-01T14:05:00Z)")
                }
            }
            guard rowIssues.isEmpty, let number, let type, let grantedAt else {
                issues += rowIssues
                continue
            }
            let evidence = value["evidence"].flatMap { $0.isEmpty ? nil : $0 }
            let normalizedSource = sourceKeywords.contains(source.lowercased()) ? source.lowercased() : source
            records.append((ConsentRecord(number: number, type: type, seller: value["seller"]!, source: normalizedSource,
                                          grantedAt: grantedAt, disclosure: value["disclosure"]!, evidence: evidence), timezone))
        }
        if let line = table.unterminatedAt {
            issues.append(ImportIssue(row: line, column: "*", reason: "a quoted field never closes; this row and the rest of the file were not read"))
        }
        return (records, issues)
    }

}

/// ISO 8601 with offset, with or without fractional seconds. One per import: formatters are costly to make.
private struct TimestampParser {
    let plain = ISO8601DateFormatter()
    let fractional: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()

    func date(_ text: String) -> Date? { plain.date(from: text) ?? fractional.date(from: text) }
}

extension ComplianceStore {
    /// Imports a consent CSV: parses every row, stores the good ones in batches (one fsync per batch), reports the
    /// bad ones by row and column.
    public func importConsents(csv text: String) async throws -> ImportReport {
        let (records, issues) = ConsentImport.parse(text, now: clock.seconds)
        var report = ImportReport(issues: issues)
        for start in stride(from: 0, to: records.count, by: 500) {
            let inserted = try await grantConsents(Array(records[start..<min(start + 500, records.count)]))
            report.imported += inserted.filter { $0 }.count
            report.duplicates += inserted.filter { !$0 }.count
        }
        return report
    }
}
