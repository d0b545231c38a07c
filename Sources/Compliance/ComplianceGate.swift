import Foundation

/// A rule that can refuse a dial; the raw value is what the ledger, the CLI and metrics show.
public enum ComplianceRule: String, Sendable, CaseIterable, Comparable {
    case consentRevoked = "consent_revoked"
    case noConsent = "no_consent"
    case internalDNC = "internal_dnc"
    case nationalDNCStale = "national_dnc_stale"
    case nationalDNC = "national_dnc"
    case attemptCap = "attempt_cap"
    case timezoneUnknown = "timezone_unknown"
    case quietDate = "quiet_date"
    case callingWindow = "calling_window"
    case frequencyCap = "frequency_cap"

    /// Refusals that may pass later without anything changing in the data (time moves on, a fresh list arrives):
    /// the scheduler retries these; the rest end the contact's campaign.
    public var isTemporary: Bool {
        switch self {
        case .nationalDNCStale, .quietDate, .callingWindow, .frequencyCap: true
        default: false
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The gate's answer, a value: allowed with the consent relied on, or refused with the rule and why.
public enum GateVerdict: Sendable, Equatable {
    case allowed(consentID: String)
    case refused(ComplianceRule, detail: String)

    public var isAllowed: Bool { if case .allowed = self { true } else { false } }
}

/// What the campaign asks of the gate.
public struct DialPolicy: Sendable, Equatable {
    public var purpose: CampaignPurpose
    public var seller: String
    /// Subject for the per-state "calls on the same subject per 24 h" caps.
    public var subject: String
    /// The campaign's own window; state rules narrow it further.
    public var window: CallingWindow
    public var maxAttempts: Int
    /// Local dates (`YYYY-MM-DD`) on which the campaign never calls.
    public var quietDates: Set<String>

    public init(purpose: CampaignPurpose, seller: String, subject: String, window: CallingWindow = .federal, maxAttempts: Int, quietDates: Set<String> = []) {
        self.purpose = purpose
        self.seller = seller
        self.subject = subject
        self.window = window
        self.maxAttempts = maxAttempts
        self.quietDates = quietDates
    }
}

/// Everything the gate needs to know about one prospective dial, read in the same transaction that records it.
public struct DialFacts: Sendable {
    public var number: PhoneNumber
    public var contactTimezone: String?
    public var consents: [ConsentRecord]
    public var onInternalDNC: Bool
    public var onNationalDNC: Bool
    public var nationalListDate: Int64?
    /// Calls already placed to this number on the policy's subject in the last 24 h (any campaign).
    public var callsLast24Hours: Int
    /// Attempts already made to this number in this campaign.
    public var attemptsInCampaign: Int
    public var now: Date

    public init(number: PhoneNumber, contactTimezone: String?, consents: [ConsentRecord], onInternalDNC: Bool, onNationalDNC: Bool,
                nationalListDate: Int64?, callsLast24Hours: Int, attemptsInCampaign: Int, now: Date) {
        self.number = number
        self.contactTimezone = contactTimezone
        self.consents = consents
        self.onInternalDNC = onInternalDNC
        self.onNationalDNC = onNationalDNC
        self.nationalListDate = nationalListDate
        self.callsLast24Hours = callsLast24Hours
        self.attemptsInCampaign = attemptsInCampaign
        self.now = now
    }
}

/// The pre-dial compliance check: a pure function of the facts, so every refusal can be reproduced from the ledger.
/// Rules run in a fixed order and the first that fails names the refusal.
public struct ComplianceGate: Sendable {
    public var rules: CallingRules
    /// How old the national DNC snapshot may be (days).
    public var nationalDNCMaxAgeDays: Int

    /// 16 CFR 310.4(b)(3)(iv): the safe harbour needs a registry version obtained at most 31 days before the call.
    public static let defaultNationalDNCMaxAgeDays = 31

    public init(rules: CallingRules, nationalDNCMaxAgeDays: Int = ComplianceGate.defaultNationalDNCMaxAgeDays) {
        self.rules = rules
        self.nationalDNCMaxAgeDays = nationalDNCMaxAgeDays
    }

    public func evaluate(_ facts: DialFacts, policy: DialPolicy) -> GateVerdict {
        let number = facts.number.e164
        let seller = policy.seller.lowercased()
        let forSeller = facts.consents.filter { $0.seller.lowercased() == seller && policy.purpose.acceptedConsent.contains($0.type) }
        guard let consent = forSeller.filter(\.isActive).max(by: { $0.grantedAt < $1.grantedAt }) else {
            if let revoked = forSeller.first(where: { !$0.isActive }) {
                return .refused(.consentRevoked, detail: "consent \(revoked.id) revoked by \(revoked.revokedBy ?? "?")")
            }
            let needed = policy.purpose.acceptedConsent.map(\.rawValue).sorted().joined(separator: " or ")
            return .refused(.noConsent, detail: "no \(needed) consent for seller '\(policy.seller)'")
        }

        if facts.onInternalDNC { return .refused(.internalDNC, detail: "\(number) is on the internal do-not-call list") }

        let nowSeconds = Int64(facts.now.timeIntervalSince1970)
        guard let listDate = facts.nationalListDate else {
            return .refused(.nationalDNCStale, detail: "no national DNC list imported")
        }
        let ageDays = (nowSeconds - listDate) / 86_400
        if nowSeconds - listDate > Int64(nationalDNCMaxAgeDays) * 86_400 {
            return .refused(.nationalDNCStale, detail: "national DNC list is \(ageDays) days old (max \(nationalDNCMaxAgeDays))")
        }
        if facts.onNationalDNC { return .refused(.nationalDNC, detail: "\(number) is on the national do-not-call registry") }

        if facts.attemptsInCampaign >= policy.maxAttempts {
            return .refused(.attemptCap, detail: "\(facts.attemptsInCampaign) of \(policy.maxAttempts) attempts used")
        }

        let zones = rules.candidateZones(for: facts.number, contactTimezone: facts.contactTimezone)
        let resolved = zones.compactMap { TimeZone(identifier: $0) }
        guard !resolved.isEmpty, resolved.count == zones.count else {
            return .refused(.timezoneUnknown, detail: zones.isEmpty ? "no time zone for \(number) (no contact zone, no area-code entry)"
                                                                    : "unknown time zone in \(zones.joined(separator: ","))")
        }
        let states = rules.stateRules(for: facts.number)
        let window = states.reduce(policy.window) { $0.intersection($1.window) }
        for zone in resolved {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: facts.now)
            let date = String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
            if policy.quietDates.contains(date) {
                return .refused(.quietDate, detail: "\(date) is a quiet date in \(zone.identifier)")
            }
            let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
            if !window.contains(minuteOfDay: minute) {
                let local = String(format: "%02d:%02d", minute / 60, minute % 60)
                let why = states.isEmpty ? "" : " (state rules: \(states.map(\.region).joined(separator: ",")))"
                return .refused(.callingWindow, detail: "\(local) in \(zone.identifier) is outside \(window)\(why)")
            }
        }

        if let cap = states.compactMap(\.maxPer24Hours).min(), facts.callsLast24Hours >= cap {
            return .refused(.frequencyCap, detail: "\(facts.callsLast24Hours) calls on '\(policy.subject)' in 24 h (max \(cap), \(states.map(\.region).joined(separator: ",")))")
        }
        return .allowed(consentID: consent.id)
    }
}
