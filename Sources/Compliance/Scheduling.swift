import Foundation

/// A dial the gate allowed and the store has durably recorded: the attempt row exists before the call starts.
public struct DialTicket: Sendable, Equatable {
    public var request: DialRequest
    public var consentID: String
}

/// What one claim pass decided.
public struct ClaimResult: Sendable, Equatable {
    public var tickets: [DialTicket] = []
    public var refusals: [(number: PhoneNumber, rule: ComplianceRule)] = []

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.tickets == rhs.tickets && lhs.refusals.map(\.number) == rhs.refusals.map(\.number) && lhs.refusals.map(\.rule) == rhs.refusals.map(\.rule)
    }
}

extension ComplianceStore {
    /// Claims up to `limit` due contacts of a running campaign and runs the gate on each, in one transaction: every
    /// decision goes to the ledger; an allowed one also writes the attempt row and marks the contact `dialing`, so
    /// after the commit (fsynced) no process — this one restarted, or another gateway — can dial it again.
    /// PostgreSQL: the rows are locked `FOR UPDATE SKIP LOCKED` and decisions serialised by the ledger lock, so
    /// gateways sharing a campaign split its contacts and the per-24 h counts stay exact.
    public func claim(campaignID: String, limit: Int, instance: String, gate: ComplianceGate, recheckSeconds: Int64) async throws -> ClaimResult {
        let now = clock.now
        let nowSeconds = Int64(now.timeIntervalSince1970)
        return try await database.transaction { [ledger] sql in
            try await Ledger.lock(sql)
            let campaign = try await Self.campaign(campaignID, in: sql)
            var result = ClaimResult()
            guard campaign.state == .running, limit > 0 else { return result }
            let lock = sql.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
            let due = try await sql.query(
                """
                SELECT number, attempts FROM campaign_contacts WHERE campaign_id = ? AND state = 'pending' AND next_at <= ?
                ORDER BY next_at, number LIMIT ?\(lock)
                """, .text(campaignID), .integer(nowSeconds), .integer(Int64(max(limit, 50))))
            let snapshot = try await Self.nationalSnapshot(in: sql)
            for row in due {
                guard result.tickets.count < limit else { break }
                let number = try PhoneNumber(try row.string("number"))
                let facts = try await Self.facts(for: number, attempts: Int(try row.int("attempts")), subject: campaign.subject,
                                                 snapshot: snapshot, now: now, in: sql)
                let verdict = gate.evaluate(facts, policy: campaign.policy)
                var fields = ["campaign_id": campaignID, "instance": instance]
                switch verdict {
                case .allowed(let consentID):
                    let attemptID = UUID().uuidString.lowercased()
                    fields.merge(["verdict": "allowed", "consent_id": consentID, "attempt_id": attemptID]) { $1 }
                    try await ledger.append(.dialDecision, number: number.e164, fields: fields, at: nowSeconds, in: sql)
                    try await sql.query(
                        "INSERT INTO attempts (id, campaign_id, number, subject, instance, consent_id, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        .text(attemptID), .text(campaignID), .text(number.e164), .text(campaign.subject), .text(instance),
                        .text(consentID), .integer(nowSeconds))
                    try await sql.query(
                        "UPDATE campaign_contacts SET state = 'dialing', attempts = attempts + 1, rule = NULL WHERE campaign_id = ? AND number = ?",
                        .text(campaignID), .text(number.e164))
                    let parameters = ["campaign_id": campaignID, "attempt_id": attemptID, "consent_id": consentID, "purpose": campaign.purpose.rawValue]
                    let request = DialRequest(campaignID: campaignID, attemptID: attemptID, number: number, from: campaign.fromNumber,
                                              trunk: campaign.trunk, route: campaign.route, customParameters: parameters)
                    result.tickets.append(DialTicket(request: request, consentID: consentID))
                case .refused(let rule, let detail):
                    fields.merge(["verdict": "refused", "rule": rule.rawValue, "detail": detail]) { $1 }
                    try await ledger.append(.dialDecision, number: number.e164, fields: fields, at: nowSeconds, in: sql)
                    if rule.isTemporary {
                        try await sql.query("UPDATE campaign_contacts SET next_at = ?, rule = ? WHERE campaign_id = ? AND number = ?",
                                            .integer(nowSeconds + recheckSeconds), .text(rule.rawValue), .text(campaignID), .text(number.e164))
                    } else {
                        try await sql.query(
                            "UPDATE campaign_contacts SET state = 'done', disposition = 'refused', rule = ? WHERE campaign_id = ? AND number = ?",
                            .text(rule.rawValue), .text(campaignID), .text(number.e164))
                    }
                    result.refusals.append((number, rule))
                }
            }
            return result
        }
    }

    static func facts(for number: PhoneNumber, attempts: Int, subject: String, snapshot: NationalDNCSnapshot?, now: Date,
                      in sql: any SQLExecutor) async throws -> DialFacts {
        let e164 = SQLValue.text(number.e164)
        let since = Int64(now.timeIntervalSince1970) - 86_400
        return DialFacts(
            number: number,
            contactTimezone: try await sql.query("SELECT timezone FROM contacts WHERE number = ?", e164).first?.optionalString("timezone"),
            consents: try await sql.query("SELECT * FROM consents WHERE number = ?", e164).map(ConsentRecord.init(row:)),
            onInternalDNC: !(try await sql.query("SELECT number FROM dnc_internal WHERE number = ?", e164).isEmpty),
            onNationalDNC: !(try await sql.query("SELECT number FROM dnc_national WHERE number = ?", e164).isEmpty),
            nationalListDate: snapshot?.listDate,
            callsLast24Hours: Int(try await sql.query(
                "SELECT COUNT(*) AS n FROM attempts WHERE number = ? AND subject = ? AND started_at > ?",
                e164, .text(subject), .integer(since)).first?.int("n") ?? 0),
            attemptsInCampaign: attempts,
            now: now)
    }

    /// Records how a dial ended and what happens to the contact next: done, or pending again after the campaign's
    /// backoff for busy / no answer / network failure while attempts remain.
    public func recordOutcome(_ ticket: DialTicket, _ outcome: DialOutcome) async throws {
        let now = clock.seconds
        let request = ticket.request
        try await database.transaction { [ledger] sql in
            let campaign = try await Self.campaign(request.campaignID, in: sql)
            var code: Int64?
            var fields = ["campaign_id": request.campaignID, "attempt_id": request.attemptID, "outcome": outcome.name,
                          "duration_s": String(outcome.durationSeconds)]
            switch outcome.result {
            case .failed(let status, let reason):
                code = Int64(status)
                fields["sip_code"] = String(status)
                fields["reason"] = reason
            case .refused(let reason):
                fields["reason"] = reason
            default: break
            }
            try await sql.query("UPDATE attempts SET ended_at = ?, outcome = ?, sip_code = ?, duration_s = ? WHERE id = ?",
                                .integer(now), .text(outcome.name), SQLValue(code), SQLValue(outcome.durationSeconds), .text(request.attemptID))
            try await ledger.append(.callOutcome, number: request.number.e164, fields: fields, at: now, in: sql)
            let attempts = try await sql.query("SELECT attempts FROM campaign_contacts WHERE campaign_id = ? AND number = ?",
                                               .text(request.campaignID), .text(request.number.e164)).first?.int("attempts") ?? 0
            let backoff: Int64? = switch outcome.result {
            case .busy: campaign.retryBusySeconds
            case .noAnswer, .failed: campaign.retryNoAnswerSeconds
            case .answered, .refused: nil
            }
            if let backoff, attempts < Int64(campaign.maxAttempts) {
                try await sql.query("UPDATE campaign_contacts SET state = 'pending', next_at = ?, disposition = ? WHERE campaign_id = ? AND number = ?",
                                    .integer(now + backoff), .text(outcome.name), .text(request.campaignID), .text(request.number.e164))
            } else {
                try await sql.query("UPDATE campaign_contacts SET state = 'done', disposition = ? WHERE campaign_id = ? AND number = ?",
                                    .text(outcome.name), .text(request.campaignID), .text(request.number.e164))
            }
        }
    }

    /// After a crash: this instance's attempts of the campaign that never got an outcome may or may not have rung,
    /// so they are closed as `interrupted` and their contacts finished — never dialled again automatically. Scoped
    /// to one campaign, so a gateway starting a second campaign leaves the first one's calls in flight alone.
    /// Returns how many.
    @discardableResult
    public func recoverInterruptedAttempts(instance: String, campaignID: String) async throws -> Int {
        let now = clock.seconds
        return try await database.transaction { [ledger] sql in
            let open = try await sql.query(
                "SELECT id, campaign_id, number FROM attempts WHERE instance = ? AND campaign_id = ? AND ended_at IS NULL ORDER BY started_at, id",
                .text(instance), .text(campaignID))
            for row in open {
                let id = try row.string("id"), campaignID = try row.string("campaign_id"), number = try row.string("number")
                try await sql.query("UPDATE attempts SET ended_at = ?, outcome = 'interrupted' WHERE id = ?", .integer(now), .text(id))
                try await ledger.append(.callOutcome, number: number, fields: [
                    "campaign_id": campaignID, "attempt_id": id, "outcome": "interrupted", "instance": instance,
                ], at: now, in: sql)
                try await sql.query("UPDATE campaign_contacts SET state = 'done', disposition = 'interrupted' WHERE campaign_id = ? AND number = ?",
                                    .text(campaignID), .text(number))
            }
            return open.count
        }
    }

    /// The earliest time a pending contact of the campaign becomes due, or nil when none is left.
    func nextDue(campaignID: String) async throws -> Int64? {
        try await database.transaction { sql in
            try await sql.query("SELECT MIN(next_at) AS t FROM campaign_contacts WHERE campaign_id = ? AND state = 'pending'",
                                .text(campaignID)).first?.optionalInt("t")
        }
    }
}
