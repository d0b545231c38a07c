import Compliance
import Foundation
import Testing

/// Campaigns on a controlled clock with the recording dialler: who is called, when, and why not.
@Suite struct SchedulerTests {
    /// Area code → the zones the callee may be in and the window that must hold in each (independent of the gate's
    /// tables, so a wrong table fails the test).
    static let windows: [String: (zones: [String], start: Int, end: Int)] = [
        "212": (["America/New_York"], 8, 21),
        "305": (["America/New_York"], 8, 20),
        "310": (["America/Los_Angeles"], 8, 21),
        "208": (["America/Boise", "America/Los_Angeles"], 8, 21),
        "405": (["America/Chicago"], 8, 20),
    ]
    static let areaCodes = ["212", "305", "310", "208", "405"]

    enum Kind: CaseIterable { case noConsent, informationalOnly, revokedBefore, internalDNC, nationalDNC, valid }

    /// Contact `index` → its number and what it is: 200 contacts, 5 area codes, 10 % per refusal kind, 50 % valid.
    static func contact(_ index: Int) -> (PhoneNumber, Kind) {
        let kind: Kind = switch index % 10 {
        case 0: .noConsent
        case 1: .informationalOnly
        case 2: .revokedBefore
        case 3: .internalDNC
        case 4: .nationalDNC
        default: .valid
        }
        return (number("+1\(areaCodes[index % 5])555\(String(format: "%04d", index))"), kind)
    }

    /// Imports consents, DNC lists and a 200-contact marketing campaign as described by `contact`.
    static func prepare(_ store: ComplianceStore, campaign: String = "solar-june", concurrency: Int = 5, callsPerSecond: Int = 2) async throws {
        let contacts = (0..<200).map(contact)
        var rows = [consentCSVHeader]
        for (phone, kind) in contacts where kind != .noConsent {
            rows.append(consentCSVRow(phone.e164, type: kind == .informationalOnly ? "pec" : "pewc"))
        }
        let report = try await store.importConsents(csv: rows.joined(separator: "\n"))
        #expect(report.issues.isEmpty && report.imported == 180)
        for (phone, kind) in contacts {
            if kind == .revokedBefore { try await store.revokeConsent(number: phone, source: .inboundRequest, detail: "asked on an inbound call") }
            if kind == .internalDNC { try await store.addInternalDNC(phone, source: "complaint") }
        }
        let listDate = Int64(store.clock.now.timeIntervalSince1970) - 2 * 86_400
        _ = try await store.importNationalDNC(contacts.filter { $0.1 == .nationalDNC }.map(\.0) + [number("+19175550000")],
                                              listDate: listDate, fileSHA256: "test")
        try await store.createCampaign(Campaign(id: campaign, purpose: .marketing, seller: "Acme Solar LLC", trunk: "telnyx",
                                                route: "solar-agent", fromNumber: number("+12125559999"), concurrency: concurrency,
                                                callsPerSecond: callsPerSecond))
        #expect(try await store.addContacts(contacts.map { ($0.0, nil) }, to: campaign) == 200)
    }

    static func gate() throws -> ComplianceGate { ComplianceGate(rules: try CallingRules.bundled()) }

    /// Local hour and minute of `date` in `zone`.
    static func local(_ date: Date, _ zone: String) -> Int {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: zone)!
        let parts = calendar.dateComponents([.hour, .minute], from: date)
        return parts.hour! * 60 + parts.minute!
    }

    @Test(arguments: Backend.allCases)
    func twoHundredContactsDialExactlyTheAllowedOnesInsideTheirWindows(backend: Backend) async throws {
        // 06:00 Eastern: nobody may be called yet; the run crosses the day as windows open zone by zone.
        let clock = ManualClock(utc("2026-06-15T10:00:00Z"))
        try await withStore(backend, clock: clock) { store, context in
            try await Self.prepare(store)
            let lateRevocations = (0..<200).map(Self.contact).filter { $0.1 == .valid && $0.0.areaCode == "310" }.prefix(4).map(\.0)
            let firstCall = FirstCall()
            let dialer = RecordingDialer(clock: clock, during: { request in
                // The first call: its callee opts out by DTMF while connected, and four Los Angeles contacts (not yet in
                // their window) revoke through the API meanwhile.
                guard await firstCall.claim(request.number) else { return }
                _ = try? await store.revokeConsent(number: request.number, source: .dtmfOptOut, detail: "pressed 9 during the call")
                for phone in lateRevocations { _ = try? await store.revokeConsent(number: phone, source: .api) }
            })
            let runner = CampaignRunner(store: store, campaignID: "solar-june", dialer: dialer, gate: try Self.gate(), instance: "gw-1")
            try await runner.start()
            try await runner.run()

            let calls = await dialer.calls
            let dialled = calls.map(\.request.number)
            let expected = Set((0..<200).map(Self.contact).filter { $0.1 == .valid }.map(\.0)).subtracting(lateRevocations)
            #expect(Set(dialled) == expected)
            #expect(dialled.count == Set(dialled).count, "a contact was dialled twice")

            // When each call was released: its attempt's start (the gate's decision time). The test clock moves on
            // while a dial task waits to run, so the dialler's own timestamps can lag by a tick.
            let started = try await store.database.transaction { sql in try await sql.query("SELECT id, started_at FROM attempts", []) }
            var releasedAt: [String: Int64] = [:]
            for row in started {
                if case .text(let id)? = row.values["id"], case .integer(let at)? = row.values["started_at"] { releasedAt[id] = at }
            }
            for call in calls {
                let at = Date(timeIntervalSince1970: TimeInterval(try #require(releasedAt[call.request.attemptID])))
                let rule = Self.windows[call.request.number.areaCode!]!
                for zone in rule.zones {
                    let minute = Self.local(at, zone)
                    #expect(minute >= rule.start * 60 && minute < rule.end * 60, "\(call.request.number) called at \(minute / 60):\(minute % 60) in \(zone)")
                }
                #expect(call.request.customParameters["campaign_id"] == "solar-june")
                #expect(call.request.customParameters["consent_id"]?.hasPrefix("c_") == true)
            }
            // Pacing: at most 2 new calls in any one second.
            let perSecond = Dictionary(grouping: releasedAt.values) { $0 }
            #expect(perSecond.values.map(\.count).max() ?? 0 <= 2)

            let status = try await store.campaignStatus("solar-june")
            #expect(status.remaining == 0 && status.dialing == 0)
            #expect(status.dialled == expected.count && status.answered == expected.count)
            #expect(status.refused == [.noConsent: 40, .consentRevoked: 20 + lateRevocations.count, .internalDNC: 20, .nationalDNC: 20])

            // Every refusal in the ledger names its rule; the opt-out during the call precedes that call's outcome.
            var decisions: [[String: String]] = []
            var optOutSeq: Int64 = 0, firstOutcomeSeq: Int64 = 0
            let optedOut = try #require(await firstCall.number)
            try await store.exportLedger(LedgerExportFilter()) { line in
                let entry = try JSONDecoder().decode([String: String].self, from: Data(line.utf8))
                let body = try JSONDecoder().decode([String: String].self, from: Data(entry["body"]!.utf8))
                if entry["kind"] == "dial.decision" { decisions.append(body) }
                if entry["kind"] == "consent.revoked", entry["number"] == optedOut.e164 { optOutSeq = Int64(entry["seq"]!)! }
                if entry["kind"] == "call.outcome", entry["number"] == optedOut.e164 { firstOutcomeSeq = Int64(entry["seq"]!)! }
            }
            #expect(decisions.filter { $0["verdict"] == "allowed" }.count == expected.count)
            #expect(decisions.filter { $0["verdict"] == "refused" }.allSatisfy { ComplianceRule(rawValue: $0["rule"] ?? "") != nil && $0["detail"] != nil })
            #expect(decisions.contains { $0["rule"] == "calling_window" })
            #expect(optOutSeq > 0 && optOutSeq < firstOutcomeSeq)
            let verification = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(verification.isIntact, "\(verification)")
        }
    }

    @Test(arguments: Backend.allCases)
    func busyAndNoAnswerAreRetriedWithBackoffUpToTheCap(backend: Backend) async throws {
        let clock = ManualClock(mondayNoonEastern)
        try await withStore(backend, clock: clock) { store, _ in
            let busy = number("+12125550105"), silent = number("+12125550106")
            let imported = try await store.importConsents(csv: [consentCSVHeader, consentCSVRow(busy.e164), consentCSVRow(silent.e164)].joined(separator: "\n"))
            #expect(imported.imported == 2)
            _ = try await store.importNationalDNC([], listDate: Int64(clock.now.timeIntervalSince1970), fileSHA256: "empty")
            try await store.createCampaign(Campaign(id: "retry", purpose: .marketing, seller: "Acme Solar LLC", trunk: "t",
                                                    fromNumber: number("+12125559999"), maxAttempts: 3, retryBusySeconds: 600,
                                                    retryNoAnswerSeconds: 1800, concurrency: 2, callsPerSecond: 2))
            try await store.addContacts([(busy, nil), (silent, nil)], to: "retry")
            let dialer = RecordingDialer(clock: clock) { $0 == busy ? DialOutcome(.busy) : DialOutcome(.noAnswer) }
            let runner = CampaignRunner(store: store, campaignID: "retry", dialer: dialer, gate: try Self.gate(), instance: "gw-1")
            try await runner.start()
            try await runner.run()
            let calls = await dialer.calls
            let busyTimes = calls.filter { $0.request.number == busy }.map(\.at.timeIntervalSince1970)
            let silentTimes = calls.filter { $0.request.number == silent }.map(\.at.timeIntervalSince1970)
            #expect(busyTimes.count == 3 && silentTimes.count == 3)
            #expect(zip(busyTimes.dropFirst(), busyTimes).allSatisfy { $0 - $1 >= 600 && $0 - $1 < 660 })
            #expect(zip(silentTimes.dropFirst(), silentTimes).allSatisfy { $0 - $1 >= 1800 && $0 - $1 < 1860 })
            let status = try await store.campaignStatus("retry")
            #expect(status.dispositions == ["busy": 1, "no_answer": 1])
        }
    }

    @Test(arguments: Backend.allCases)
    func pausedCampaignDialsNothingUntilResumed(backend: Backend) async throws {
        let clock = ManualClock(mondayNoonEastern)
        try await withStore(backend, clock: clock) { store, _ in
            try await Self.prepare(store, campaign: "paused", concurrency: 10, callsPerSecond: 10)
            let dialer = RecordingDialer(clock: clock)
            let runner = CampaignRunner(store: store, campaignID: "paused", dialer: dialer, gate: try Self.gate(), instance: "gw-1")
            #expect(try await runner.step().tickets.isEmpty)
            try await runner.start()
            #expect(try await runner.step().tickets.count == 10)
            try await runner.pause()
            #expect(try await runner.step().tickets.isEmpty)
            try await runner.resume()
            #expect(try await runner.step().tickets.count == 10)
            try await runner.stop()
            await #expect(throws: (any Error).self) { try await runner.resume() }
            try await runner.run() // returns at once: stopped
            #expect(await dialer.calls.count == 20)
        }
    }

    /// A crash after the attempt rows were committed (calls possibly ringing) and before any outcome: the restarted
    /// scheduler closes those attempts as interrupted and never dials those contacts again.
    @Test(arguments: Backend.allCases)
    func restartAfterCrashNeverDialsTwice(backend: Backend) async throws {
        let clock = ManualClock(mondayNoonEastern)
        try await withStore(backend, clock: clock) { store, context in
            try await Self.prepare(store, campaign: "crash", concurrency: 8, callsPerSecond: 8)
            try await store.setCampaignState("crash", .running)
            // The doomed process: claims (attempts recorded, durable), places the calls, dies before any outcome.
            let doomed = try await context.open()
            let before = RecordingDialer(clock: clock)
            let claimed = try await doomed.claim(campaignID: "crash", limit: 8, instance: "gw-1", gate: try Self.gate(), recheckSeconds: 900)
            for ticket in claimed.tickets { _ = await before.dial(ticket.request) }
            try await doomed.close()
            #expect(claimed.tickets.count == 8)

            let after = RecordingDialer(clock: clock)
            let restarted = CampaignRunner(store: store, campaignID: "crash", dialer: after, gate: try Self.gate(), instance: "gw-1")
            try await restarted.run()
            let first = await before.numbers, second = await after.numbers
            #expect(Set(first).isDisjoint(with: second))
            #expect(Set(first + second).count == first.count + second.count)
            #expect(first.count + second.count == 100)
            let status = try await store.campaignStatus("crash")
            #expect(status.dispositions["interrupted"] == 8)
            let verification = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(verification.isIntact, "\(verification)")
        }
    }

    /// Two gateways (two connections, two runners) share one campaign: every allowed contact is dialled once.
    @Test(arguments: Backend.allCases)
    func twoSchedulersShareACampaignWithoutDoubleDials(backend: Backend) async throws {
        let clock = ManualClock(mondayNoonEastern)
        try await withStore(backend, clock: clock) { store, context in
            try await Self.prepare(store, campaign: "shared", concurrency: 4, callsPerSecond: 4)
            try await store.setCampaignState("shared", .running)
            let other = try await context.open()
            let dialerA = RecordingDialer(clock: clock), dialerB = RecordingDialer(clock: clock)
            let a = CampaignRunner(store: store, campaignID: "shared", dialer: dialerA, gate: try Self.gate(), instance: "gw-a")
            let b = CampaignRunner(store: other, campaignID: "shared", dialer: dialerB, gate: try Self.gate(), instance: "gw-b")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await a.run() }
                group.addTask { try await b.run() }
                try await group.waitForAll()
            }
            try await other.close()
            let numbersA = await dialerA.numbers, numbersB = await dialerB.numbers
            #expect(Set(numbersA).isDisjoint(with: numbersB))
            #expect(numbersA.count + numbersB.count == 100)
            #expect(Set(numbersA + numbersB).count == 100)
            // PostgreSQL splits the due contacts between the two (SKIP LOCKED); SQLite's single write lock may let
            // one instance win every pass, which is still correct.
            if backend == .postgres { #expect(!numbersA.isEmpty && !numbersB.isEmpty) }
            let verification = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(verification.isIntact, "\(verification)")
        }
    }
}

/// Remembers the first number dialled.
actor FirstCall {
    private(set) var number: PhoneNumber?

    func claim(_ candidate: PhoneNumber) -> Bool {
        guard number == nil else { return false }
        number = candidate
        return true
    }
}
