import Crypto
import Foundation

/// The consent a campaign's purpose needs (47 CFR 64.1200(a)(2)-(3); AI voices are "artificial", FCC 24-17).
public enum ConsentType: String, Sendable, CaseIterable {
    /// Prior express written consent: required for telemarketing/advertising calls.
    case writtenMarketing = "pewc"
    /// Prior express consent: enough for informational calls.
    case informational = "pec"
}

/// Why a campaign calls: decides the consent type required.
public enum CampaignPurpose: String, Sendable, CaseIterable {
    case marketing
    case informational

    /// Consent types that permit a call of this purpose (written consent covers informational calls too).
    public var acceptedConsent: Set<ConsentType> {
        switch self {
        case .marketing: [.writtenMarketing]
        case .informational: [.writtenMarketing, .informational]
        }
    }
}

/// How a revocation reached us; any reasonable means counts (47 CFR 64.1200(a)(10)).
public enum RevocationSource: String, Sendable, CaseIterable {
    case api
    case agentOptOut = "agent_opt_out"
    case dtmfOptOut = "dtmf_opt_out"
    case inboundRequest = "inbound_request"
}

/// One consent record as imported, with its evidence.
public struct ConsentRecord: Sendable, Equatable {
    public var id: String
    public var number: PhoneNumber
    public var type: ConsentType
    public var seller: String
    /// Where consent was captured: the web form URL, `ivr`, `paper` or `verbal`.
    public var source: String
    public var grantedAt: Int64
    /// The disclosure text the consumer saw or heard, verbatim.
    public var disclosure: String
    /// IP address, certificate id (TrustedForm/Jornaya), recording or document reference.
    public var evidence: String?
    public var revokedAt: Int64?
    public var revokedBy: String?

    public var isActive: Bool { revokedAt == nil }

    /// Same consent, same id: re-importing a file adds nothing twice.
    static func id(number: PhoneNumber, type: ConsentType, seller: String, source: String, grantedAt: Int64) -> String {
        let digest = SHA256.hash(data: Array("\(number.e164)|\(type.rawValue)|\(seller)|\(source)|\(grantedAt)".utf8))
        return "c_" + digest.prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    init(row: SQLRow) throws {
        id = try row.string("id")
        do { number = try PhoneNumber(try row.string("number")) } catch { throw StoreError.invalid("stored consent \(id) has a bad number") }
        guard let type = ConsentType(rawValue: try row.string("type")) else { throw StoreError.invalid("stored consent \(id) has a bad type") }
        self.type = type
        seller = try row.string("seller")
        source = try row.string("source")
        grantedAt = try row.int("granted_at")
        disclosure = try row.string("disclosure")
        evidence = try row.optionalString("evidence")
        revokedAt = try row.optionalInt("revoked_at")
        revokedBy = try row.optionalString("revoked_by")
    }

    public init(number: PhoneNumber, type: ConsentType, seller: String, source: String, grantedAt: Int64, disclosure: String, evidence: String?) {
        self.id = Self.id(number: number, type: type, seller: seller, source: source, grantedAt: grantedAt)
        self.number = number
        self.type = type
        self.seller = seller
        self.source = source
        self.grantedAt = grantedAt
        self.disclosure = disclosure
        self.evidence = evidence
    }
}

extension ComplianceStore {
    /// Stores a contact and its consent (idempotent) and writes `consent.granted`; returns whether it was new.
    @discardableResult
    public func grantConsent(_ consent: ConsentRecord, timezone: String?) async throws -> Bool {
        try await grantConsents([(consent, timezone)]).first ?? false
    }

    /// Many consents in one transaction (one fsync): the import path.
    func grantConsents(_ batch: [(ConsentRecord, String?)]) async throws -> [Bool] {
        let now = clock.seconds
        return try await database.transaction { [ledger] sql in
            var inserted: [Bool] = []
            for (consent, timezone) in batch {
                try await Self.upsertContact(consent.number, timezone: timezone, at: now, in: sql)
                let rows = try await sql.query(
                    """
                    INSERT INTO consents (id, number, type, seller, source, granted_at, disclosure, evidence, imported_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id
                    """,
                    .text(consent.id), .text(consent.number.e164), .text(consent.type.rawValue), .text(consent.seller),
                    .text(consent.source), .integer(consent.grantedAt), .text(consent.disclosure), SQLValue(consent.evidence),
                    .integer(now))
                inserted.append(!rows.isEmpty)
                guard !rows.isEmpty else { continue }
                var fields = [
                    "consent_id": consent.id, "type": consent.type.rawValue, "seller": consent.seller,
                    "source": consent.source, "granted_at": String(consent.grantedAt),
                    "disclosure_sha256": Self.sha256Hex(consent.disclosure),
                ]
                fields["evidence"] = consent.evidence
                try await ledger.append(.consentGranted, number: consent.number.e164, fields: fields, at: now, in: sql)
            }
            return inserted
        }
    }

    static func upsertContact(_ number: PhoneNumber, timezone: String?, at now: Int64, in sql: any SQLExecutor) async throws {
        try await sql.query(
            """
            INSERT INTO contacts (number, timezone, created_at) VALUES (?, ?, ?)
            ON CONFLICT (number) DO UPDATE SET timezone = COALESCE(excluded.timezone, contacts.timezone)
            """,
            .text(number.e164), SQLValue(timezone), .integer(now))
    }

    /// Revokes every active consent of `number` and puts it on the internal DNC list, at once: the next gate
    /// decision sees it. Returns the revoked consent ids.
    @discardableResult
    public func revokeConsent(number: PhoneNumber, source: RevocationSource, detail: String? = nil, callSid: String? = nil) async throws -> [String] {
        let now = clock.seconds
        return try await database.transaction { [ledger] sql in
            let revoked = try await sql.query(
                "UPDATE consents SET revoked_at = ?, revoked_by = ? WHERE number = ? AND revoked_at IS NULL RETURNING id",
                .integer(now), .text(source.rawValue), .text(number.e164)
            ).map { try $0.string("id") }.sorted()
            var fields = ["source": source.rawValue, "consent_ids": revoked.joined(separator: ",")]
            fields["detail"] = detail
            fields["call_sid"] = callSid
            try await ledger.append(.consentRevoked, number: number.e164, fields: fields, at: now, in: sql)
            try await Self.addInternalDNC(number, source: "revocation:\(source.rawValue)", at: now, ledger: ledger, in: sql)
            return revoked
        }
    }

    public func consents(for number: PhoneNumber) async throws -> [ConsentRecord] {
        try await database.transaction { sql in
            try await sql.query("SELECT * FROM consents WHERE number = ? ORDER BY granted_at, id", .text(number.e164))
                .map(ConsentRecord.init(row:))
        }
    }

    static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
