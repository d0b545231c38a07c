import Compliance
import Foundation
import Testing

/// The gate as a pure function: one fact changed per test, the named rule expected.
@Suite struct GateTests {
    let gate = ComplianceGate(rules: try! CallingRules.bundled())
    let marketing = DialPolicy(purpose: .marketing, seller: "Acme Solar LLC", subject: "solar", maxAttempts: 3)

    func consent(_ number: String, _ type: ConsentType = .writtenMarketing, seller: String = "Acme Solar LLC", revoked: Bool = false) -> ConsentRecord {
        var record = ConsentRecord(number: try! PhoneNumber(number), type: type, seller: seller, source: "https://acme.example/quote",
                                   grantedAt: 1_777_000_000, disclosure: "I agree", evidence: nil)
        if revoked {
            record.revokedAt = 1_778_000_000
            record.revokedBy = "dtmf_opt_out"
        }
        return record
    }

    func facts(_ number: String, at time: Date = mondayNoonEastern, timezone: String? = nil, consents: [ConsentRecord]? = nil,
               onInternal: Bool = false, national: Bool = false, listAgeDays: Double? = 3, calls24h: Int = 0, attempts: Int = 0) -> DialFacts {
        DialFacts(number: try! PhoneNumber(number), contactTimezone: timezone, consents: consents ?? [consent(number)], onInternalDNC: onInternal,
                  onNationalDNC: national, nationalListDate: listAgeDays.map { Int64(time.timeIntervalSince1970 - $0 * 86_400) },
                  callsLast24Hours: calls24h, attemptsInCampaign: attempts, now: time)
    }

    func rule(_ verdict: GateVerdict) -> ComplianceRule? {
        if case .refused(let rule, _) = verdict { return rule }
        return nil
    }

    @Test func allowedWithActiveWrittenConsentInsideTheWindow() {
        let verdict = gate.evaluate(facts("+12125550100"), policy: marketing)
        #expect(verdict == .allowed(consentID: consent("+12125550100").id))
    }

    @Test func consentRules() {
        #expect(rule(gate.evaluate(facts("+12125550100", consents: []), policy: marketing)) == .noConsent)
        // Informational consent does not cover marketing; it does cover informational calls.
        let pec = [consent("+12125550100", .informational)]
        #expect(rule(gate.evaluate(facts("+12125550100", consents: pec), policy: marketing)) == .noConsent)
        var informational = marketing
        informational.purpose = .informational
        #expect(gate.evaluate(facts("+12125550100", consents: pec), policy: informational).isAllowed)
        // Consent given to another seller does not count.
        #expect(rule(gate.evaluate(facts("+12125550100", consents: [consent("+12125550100", seller: "Other Co")]), policy: marketing)) == .noConsent)
        #expect(rule(gate.evaluate(facts("+12125550100", consents: [consent("+12125550100", revoked: true)]), policy: marketing)) == .consentRevoked)
    }

    @Test func doNotCallRules() {
        #expect(rule(gate.evaluate(facts("+12125550100", onInternal: true), policy: marketing)) == .internalDNC)
        #expect(rule(gate.evaluate(facts("+12125550100", national: true), policy: marketing)) == .nationalDNC)
        #expect(rule(gate.evaluate(facts("+12125550100", listAgeDays: nil), policy: marketing)) == .nationalDNCStale)
        #expect(rule(gate.evaluate(facts("+12125550100", listAgeDays: 31.5), policy: marketing)) == .nationalDNCStale)
        #expect(gate.evaluate(facts("+12125550100", listAgeDays: 30.9), policy: marketing).isAllowed)
    }

    @Test func federalWindowInTheCalleesZone() {
        // 07:59 and 21:00 in New York are out; 08:00 and 20:59 are in.
        #expect(rule(gate.evaluate(facts("+12125550100", at: utc("2026-06-15T11:59:00Z")), policy: marketing)) == .callingWindow)
        #expect(gate.evaluate(facts("+12125550100", at: utc("2026-06-15T12:00:00Z")), policy: marketing).isAllowed)
        #expect(gate.evaluate(facts("+12125550100", at: utc("2026-06-16T00:59:00Z")), policy: marketing).isAllowed)
        #expect(rule(gate.evaluate(facts("+12125550100", at: utc("2026-06-16T01:00:00Z")), policy: marketing)) == .callingWindow)
        // A Los Angeles number at noon Eastern is at 09:00 Pacific: in. At 09:00 Eastern it is 06:00 there: out.
        #expect(gate.evaluate(facts("+13105550100"), policy: marketing).isAllowed)
        #expect(rule(gate.evaluate(facts("+13105550100", at: utc("2026-06-15T13:00:00Z")), policy: marketing)) == .callingWindow)
        // Daylight saving: 08:30 New York is 12:30 UTC in summer, 13:30 UTC in winter.
        #expect(rule(gate.evaluate(facts("+12125550100", at: utc("2026-01-12T12:30:00Z")), policy: marketing)) == .callingWindow)
        #expect(gate.evaluate(facts("+12125550100", at: utc("2026-01-12T13:30:00Z")), policy: marketing).isAllowed)
    }

    /// Idaho's 208 spans Mountain and Pacific time: 08:30 Mountain is 07:30 Pacific, so the call must wait.
    @Test func uncertainZoneMustHoldEverywhere() {
        let at = utc("2026-06-15T14:30:00Z")
        let verdict = gate.evaluate(facts("+12085550100", at: at), policy: marketing)
        #expect(rule(verdict) == .callingWindow)
        if case .refused(_, let detail) = verdict { #expect(detail.contains("America/Los_Angeles")) }
        // The contact's own zone removes the doubt.
        #expect(gate.evaluate(facts("+12085550100", at: at, timezone: "America/Boise"), policy: marketing).isAllowed)
        // No area-code entry and no contact zone: refuse rather than guess.
        #expect(rule(gate.evaluate(facts("+441632960100"), policy: marketing)) == .timezoneUnknown)
        #expect(gate.evaluate(facts("+441632960100", at: utc("2026-06-15T10:00:00Z"), timezone: "Europe/London"), policy: marketing).isAllowed)
    }

    /// Florida, Oklahoma and Maryland: 08:00–20:00 and at most 3 calls per 24 h on one subject.
    @Test func stateOverrides() {
        let evening = utc("2026-06-16T00:30:00Z") // 20:30 Eastern, 19:30 Central
        #expect(gate.evaluate(facts("+12125550100", at: evening), policy: marketing).isAllowed)
        #expect(rule(gate.evaluate(facts("+13055550100", at: evening), policy: marketing)) == .callingWindow) // Miami
        #expect(rule(gate.evaluate(facts("+14105550100", at: evening), policy: marketing)) == .callingWindow) // Baltimore
        #expect(gate.evaluate(facts("+14055550100", at: evening), policy: marketing).isAllowed) // Oklahoma City 19:30
        #expect(rule(gate.evaluate(facts("+13055550100", calls24h: 3), policy: marketing)) == .frequencyCap)
        #expect(gate.evaluate(facts("+13055550100", calls24h: 2), policy: marketing).isAllowed)
        #expect(gate.evaluate(facts("+12125550100", calls24h: 5), policy: marketing).isAllowed)
    }

    @Test func attemptCapAndQuietDates() {
        #expect(rule(gate.evaluate(facts("+12125550100", attempts: 3), policy: marketing)) == .attemptCap)
        var quiet = marketing
        quiet.quietDates = ["2026-06-15"]
        #expect(rule(gate.evaluate(facts("+12125550100"), policy: quiet)) == .quietDate)
        // Local date decides: 2026-06-16 01:30 UTC is still the 15th in Los Angeles (18:30).
        quiet.quietDates = ["2026-06-16"]
        #expect(gate.evaluate(facts("+13105550100", at: utc("2026-06-16T01:30:00Z")), policy: quiet).isAllowed)
        // A campaign window narrower than the federal one is honoured too.
        var narrow = marketing
        narrow.window = CallingWindow(parsing: "13:00-17:00")!
        #expect(rule(gate.evaluate(facts("+12125550100"), policy: narrow)) == .callingWindow)
    }

    @Test func shippedTablesHaveProvenanceAndTheExpectedRows() throws {
        let rules = try CallingRules.bundled()
        #expect(rules.areaCodes.count > 400)
        #expect(rules.areaCodes["208"]?.timezones.contains("America/Los_Angeles") == true)
        #expect(rules.areaCodes["305"]?.regions == ["FL"])
        for state in ["FL", "OK", "MD"] {
            #expect(rules.states[state]?.window == CallingWindow(parsing: "08:00-20:00"))
            #expect(rules.states[state]?.maxPer24Hours == 3)
        }
        for zone in Set(rules.areaCodes.values.flatMap(\.timezones)) { #expect(TimeZone(identifier: zone) != nil, "\(zone)") }
    }
}
