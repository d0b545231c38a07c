@testable import Gateway
import Testing

@Suite("Per-source rate limit and bans")
struct SourceGuardTests {
    let start = ContinuousClock.now

    @Test func aSourceMaySendItsRatePerSecondAndNoMore() {
        var guarding = SourceGuard(policy: .init(invitesPerSecond: 3))
        let verdicts = (0..<4).map { _ in guarding.invite(from: "192.0.2.1", at: start) }
        #expect(verdicts == [.admit, .admit, .admit, .rateLimited])
        // Other sources have their own budget.
        #expect(guarding.invite(from: "192.0.2.2", at: start) == .admit)
        // A third of a second refills one INVITE.
        #expect(guarding.invite(from: "192.0.2.1", at: start + .milliseconds(340)) == .admit)
        #expect(guarding.invite(from: "192.0.2.1", at: start + .milliseconds(340)) == .rateLimited)
    }

    @Test func failuresWithinTheWindowBanTheSourceUntilTheBanEnds() {
        var guarding = SourceGuard(policy: .init(maximumFailures: 3, failureWindow: .seconds(60), banDuration: .seconds(600)))
        #expect(guarding.failure(from: "198.51.100.7", at: start) == .counted(1))
        // Failures older than the window no longer count.
        #expect(guarding.failure(from: "198.51.100.7", at: start + .seconds(61)) == .counted(1))
        #expect(guarding.failure(from: "198.51.100.7", at: start + .seconds(62)) == .counted(2))
        let banned = start + .seconds(63)
        #expect(guarding.failure(from: "198.51.100.7", at: banned) == .banned(until: banned + .seconds(600)))
        // Further failures while banned do not ban again (the ban is logged once).
        #expect(guarding.failure(from: "198.51.100.7", at: banned + .seconds(1)) == .counted(3))
        #expect(guarding.invite(from: "198.51.100.7", at: banned + .seconds(599)) == .banned(until: banned + .seconds(600)))
        #expect(guarding.invite(from: "198.51.100.8", at: banned) == .admit)
        // After the ban, a clean slate.
        #expect(guarding.invite(from: "198.51.100.7", at: banned + .seconds(600)) == .admit)
        #expect(guarding.failure(from: "198.51.100.7", at: banned + .seconds(601)) == .counted(1))
    }

    @Test func zeroTurnsEachLimitOff() {
        var guarding = SourceGuard(policy: .init(invitesPerSecond: 0, maximumFailures: 0))
        #expect((0..<1000).allSatisfy { _ in guarding.invite(from: "203.0.113.5", at: start) == .admit })
        #expect(guarding.failure(from: "203.0.113.5", at: start) == .ignored)
    }

    @Test func theTableStaysBoundedAndKeepsBans() {
        var guarding = SourceGuard(policy: .init(invitesPerSecond: 1, maximumFailures: 1), maximumSources: 100)
        _ = guarding.failure(from: "10.0.0.1", at: start)
        for index in 0..<1000 { _ = guarding.invite(from: "10.1.\(index / 256).\(index % 256)", at: start + .milliseconds(index)) }
        #expect(guarding.trackedSources <= 100)
        #expect(guarding.invite(from: "10.0.0.1", at: start + .seconds(2)) == .banned(until: start + SourceGuard.Policy.defaultBanDuration))
    }
}
