import Foundation

/// Whether a campaign may dial: created paused; `stopped` is final.
public enum CampaignState: String, Sendable {
    case paused
    case running
    case stopped
}

/// An outbound campaign: who calls whom for what, through which trunk, how fast and how often.
public struct Campaign: Sendable, Equatable {
    /// The campaign's name, unique: letters, digits, `.`, `_`, `-`.
    public var id: String
    public var purpose: CampaignPurpose
    /// The seller named in the consents the campaign relies on.
    public var seller: String
    /// What the calls are about, for the state "same subject" caps; defaults to the campaign name.
    public var subject: String
    public var trunk: String
    /// The dialplan route whose agent takes answered calls.
    public var route: String?
    public var fromNumber: PhoneNumber
    public var window: CallingWindow
    public var maxAttempts: Int
    /// Seconds before calling again after busy / no answer.
    public var retryBusySeconds: Int64
    public var retryNoAnswerSeconds: Int64
    /// Calls in flight at once, and new calls per second.
    public var concurrency: Int
    public var callsPerSecond: Int
    public var quietDates: Set<String>
    public var state: CampaignState

    public static let defaultMaxAttempts = 3
    public static let defaultRetryBusySeconds: Int64 = 600
    public static let defaultRetryNoAnswerSeconds: Int64 = 3600

    public init(id: String, purpose: CampaignPurpose, seller: String, subject: String? = nil, trunk: String, route: String? = nil,
                fromNumber: PhoneNumber, window: CallingWindow = .federal, maxAttempts: Int = Campaign.defaultMaxAttempts,
                retryBusySeconds: Int64 = Campaign.defaultRetryBusySeconds, retryNoAnswerSeconds: Int64 = Campaign.defaultRetryNoAnswerSeconds,
                concurrency: Int = 1, callsPerSecond: Int = 1, quietDates: Set<String> = [], state: CampaignState = .paused) {
        self.id = id
        self.purpose = purpose
        self.seller = seller
        self.subject = subject ?? id
        self.trunk = trunk
        self.route = route
        self.fromNumber = fromNumber
        self.window = window
        self.maxAttempts = maxAttempts
        self.retryBusySeconds = retryBusySeconds
        self.retryNoAnswerSeconds = retryNoAnswerSeconds
        self.concurrency = concurrency
        self.callsPerSecond = callsPerSecond
        self.quietDates = quietDates
        self.state = state
    }

    public var policy: DialPolicy {
        DialPolicy(purpose: purpose, seller: seller, subject: subject, window: window, maxAttempts: maxAttempts, quietDates: quietDates)
    }

    /// Checks what the schema cannot: the name's charset, positive limits, quiet dates as `YYYY-MM-DD`.
    public func validate() throws {
        guard !id.isEmpty, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
            throw StoreError.invalid("campaign name '\(id)' may hold only letters, digits, '.', '_' and '-'")
        }
        guard !seller.isEmpty else { throw StoreError.invalid("campaign '\(id)': seller is required") }
        guard maxAttempts >= 1, concurrency >= 1, callsPerSecond >= 1, retryBusySeconds >= 0, retryNoAnswerSeconds >= 0 else {
            throw StoreError.invalid("campaign '\(id)': max attempts, concurrency and calls per second must be at least 1")
        }
        let isDate = { (text: String) in
            text.count == 10 && text.enumerated().allSatisfy { index, character in [4, 7].contains(index) ? character == "-" : character.isNumber }
        }
        for date in quietDates where !isDate(date) {
            throw StoreError.invalid("campaign '\(id)': quiet date '\(date)' is not YYYY-MM-DD")
        }
    }

    init(row: SQLRow) throws {
        id = try row.string("id")
        guard let purpose = CampaignPurpose(rawValue: try row.string("purpose")),
              let state = CampaignState(rawValue: try row.string("state")) else { throw StoreError.invalid("campaign \(id) is malformed") }
        self.purpose = purpose
        self.state = state
        seller = try row.string("seller")
        subject = try row.string("subject")
        trunk = try row.string("trunk")
        route = try row.optionalString("route")
        do { fromNumber = try PhoneNumber(try row.string("from_number")) } catch { throw StoreError.invalid("campaign \(id) has a bad from number") }
        window = CallingWindow(start: Int(try row.int("window_start")), end: Int(try row.int("window_end")))
        maxAttempts = Int(try row.int("max_attempts"))
        retryBusySeconds = try row.int("retry_busy_s")
        retryNoAnswerSeconds = try row.int("retry_no_answer_s")
        concurrency = Int(try row.int("concurrency"))
        callsPerSecond = Int(try row.int("calls_per_second"))
        quietDates = Set(try row.string("quiet_dates").split(separator: ",").map(String.init))
    }
}

/// Progress of one campaign, for `trunkline campaign status` and the admin API.
public struct CampaignStatus: Sendable, Equatable {
    public var campaign: Campaign
    public var contacts = 0
    /// Contacts still to call (including those waiting for their window or a retry).
    public var remaining = 0
    public var dialing = 0
    /// Attempts placed, and those answered.
    public var dialled = 0
    public var answered = 0
    /// Contacts finished by a refusal, per rule.
    public var refused: [ComplianceRule: Int] = [:]
    /// Contacts waiting because of a temporary refusal, per rule.
    public var deferred: [ComplianceRule: Int] = [:]
    /// Finished contacts per disposition (answered, busy, no_answer, failed, declined, refused, interrupted).
    public var dispositions: [String: Int] = [:]
}

extension ComplianceStore {
    public func createCampaign(_ campaign: Campaign) async throws {
        try campaign.validate()
        let now = clock.seconds
        try await database.transaction { sql in
            guard try await sql.query("SELECT id FROM campaigns WHERE id = ?", .text(campaign.id)).isEmpty else {
                throw StoreError.invalid("campaign '\(campaign.id)' already exists")
            }
            try await sql.query(
                """
                INSERT INTO campaigns (id, purpose, seller, subject, trunk, route, from_number, window_start, window_end, max_attempts,
                  retry_busy_s, retry_no_answer_s, concurrency, calls_per_second, quiet_dates, state, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                .text(campaign.id), .text(campaign.purpose.rawValue), .text(campaign.seller), .text(campaign.subject),
                .text(campaign.trunk), SQLValue(campaign.route), .text(campaign.fromNumber.e164), SQLValue(campaign.window.start),
                SQLValue(campaign.window.end), SQLValue(campaign.maxAttempts), .integer(campaign.retryBusySeconds),
                .integer(campaign.retryNoAnswerSeconds), SQLValue(campaign.concurrency), SQLValue(campaign.callsPerSecond),
                .text(campaign.quietDates.sorted().joined(separator: ",")), .text(campaign.state.rawValue), .integer(now))
        }
    }

    public func campaign(_ id: String) async throws -> Campaign {
        try await database.transaction { sql in try await Self.campaign(id, in: sql) }
    }

    static func campaign(_ id: String, in sql: any SQLExecutor) async throws -> Campaign {
        guard let row = try await sql.query("SELECT * FROM campaigns WHERE id = ?", .text(id)).first else {
            throw StoreError.notFound("campaign '\(id)'")
        }
        return try Campaign(row: row)
    }

    /// The campaigns in `state`, by name: what a restarted gateway resumes.
    public func campaignIDs(in state: CampaignState) async throws -> [String] {
        try await database.transaction { sql in
            try await sql.query("SELECT id FROM campaigns WHERE state = ? ORDER BY id", .text(state.rawValue)).map { try $0.string("id") }
        }
    }

    /// Pause, resume (`running`) or stop; a stopped campaign stays stopped.
    public func setCampaignState(_ id: String, _ state: CampaignState) async throws {
        try await database.transaction { sql in
            let current = try await Self.campaign(id, in: sql)
            guard current.state != .stopped || state == .stopped else { throw StoreError.invalid("campaign '\(id)' is stopped") }
            try await sql.query("UPDATE campaigns SET state = ? WHERE id = ?", .text(state.rawValue), .text(id))
        }
    }

    /// Adds contacts to a campaign (already present ones are left as they are); returns how many were new.
    @discardableResult
    public func addContacts(_ contacts: [(number: PhoneNumber, timezone: String?)], to campaignID: String) async throws -> Int {
        let now = clock.seconds
        return try await database.transaction { sql in
            _ = try await Self.campaign(campaignID, in: sql)
            var added = 0
            for contact in contacts {
                try await Self.upsertContact(contact.number, timezone: contact.timezone, at: now, in: sql)
                let rows = try await sql.query(
                    """
                    INSERT INTO campaign_contacts (campaign_id, number, state, attempts, next_at) VALUES (?, ?, 'pending', 0, 0)
                    ON CONFLICT (campaign_id, number) DO NOTHING RETURNING number
                    """, .text(campaignID), .text(contact.number.e164))
                added += rows.count
            }
            return added
        }
    }

    /// Imports a campaign's contact list: CSV with `number` and optional `timezone` columns.
    public func importCampaignContacts(csv text: String, to campaignID: String) async throws -> ImportReport {
        let table = CSV.parse(text)
        var report = ImportReport()
        guard let numberColumn = table.header.firstIndex(of: "number"), table.header.allSatisfy({ ["number", "timezone"].contains($0) }) else {
            report.issues.append(ImportIssue(row: 1, column: "header", reason: "expected columns number[,timezone], got \(table.header.joined(separator: ","))"))
            return report
        }
        let zoneColumn = table.header.firstIndex(of: "timezone")
        var contacts: [(number: PhoneNumber, timezone: String?)] = []
        for record in table.records {
            guard record.fields.count == table.header.count else {
                report.issues.append(ImportIssue(row: record.line, column: "*", reason: "has \(record.fields.count) fields, the header has \(table.header.count)"))
                continue
            }
            let text = record.fields[numberColumn].trimmingCharacters(in: .whitespaces)
            let zone = zoneColumn.map { record.fields[$0].trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
            do {
                let number = try PhoneNumber(text)
                if let zone, TimeZone(identifier: zone) == nil {
                    report.issues.append(ImportIssue(row: record.line, column: "timezone", reason: "'\(zone)' is not an IANA time zone"))
                    continue
                }
                contacts.append((number, zone))
            } catch {
                report.issues.append(ImportIssue(row: record.line, column: "number", reason: "'\(text)' is not a valid E.164 number: \(error.reason)"))
            }
        }
        if let line = table.unterminatedAt {
            report.issues.append(ImportIssue(row: line, column: "*", reason: "a quoted field never closes; this row and the rest of the file were not read"))
        }
        let added = try await addContacts(contacts, to: campaignID)
        report.imported = added
        report.duplicates = contacts.count - added
        return report
    }

    public func campaignStatus(_ id: String) async throws -> CampaignStatus {
        try await database.transaction { sql in
            var status = CampaignStatus(campaign: try await Self.campaign(id, in: sql))
            for row in try await sql.query(
                "SELECT state, disposition, rule, COUNT(*) AS n FROM campaign_contacts WHERE campaign_id = ? GROUP BY state, disposition, rule",
                .text(id)) {
                let count = Int(try row.int("n"))
                let rule = try row.optionalString("rule").flatMap(ComplianceRule.init(rawValue:))
                status.contacts += count
                switch try row.string("state") {
                case "pending":
                    status.remaining += count
                    if let rule { status.deferred[rule, default: 0] += count }
                case "dialing":
                    status.dialing += count
                default:
                    let disposition = try row.optionalString("disposition") ?? "unknown"
                    status.dispositions[disposition, default: 0] += count
                    if disposition == "refused", let rule { status.refused[rule, default: 0] += count }
                }
            }
            let attempts = try await sql.query(
                """
                SELECT COUNT(*) AS n, CAST(COALESCE(SUM(CASE WHEN outcome = 'answered' THEN 1 ELSE 0 END), 0) AS BIGINT) AS answered
                FROM attempts WHERE campaign_id = ?
                """,
                .text(id)).first
            status.dialled = Int(try attempts?.int("n") ?? 0)
            status.answered = Int(try attempts?.int("answered") ?? 0)
            return status
        }
    }
}
