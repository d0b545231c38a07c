/// Per-source INVITE rate limit and ban after repeated failures (bad digest credentials, sources on no trunk).
///
/// A pure state machine: time comes in with every event, so the tests run minutes of traffic without waiting.
/// Memory is bounded: at most `maximumSources` sources are tracked; idle ones are forgotten first.
struct SourceGuard {
    struct Policy: Sendable, Equatable {
        /// INVITEs a source may send per second (a burst of this many, refilled continuously); 0: no limit.
        var invitesPerSecond = 0
        /// Failures within `failureWindow` that ban a source; 0: never ban.
        var maximumFailures = Policy.defaultMaximumFailures
        var failureWindow: Duration = Policy.defaultFailureWindow
        var banDuration: Duration = Policy.defaultBanDuration
        /// Answer a banned source's INVITEs with 403, or send it nothing (a scanner learns nothing).
        var banResponse = BanResponse.reject

        /// Enough for a carrier whose password was just rotated to retry a few times, few enough that guessing
        /// a password is hopeless.
        static let defaultMaximumFailures = 5
        static let defaultFailureWindow: Duration = .seconds(60)
        static let defaultBanDuration: Duration = .seconds(600)
    }

    enum BanResponse: String, Sendable, CaseIterable {
        case reject
        case drop
    }

    /// What to do with an INVITE.
    enum Verdict: Equatable {
        case admit
        /// Over the rate: 503 with Retry-After.
        case rateLimited
        /// The source is banned until then.
        case banned(until: ContinuousClock.Instant)
    }

    /// What a failure did.
    enum FailureOutcome: Equatable {
        /// Counted; this many failures in the window so far.
        case counted(Int)
        /// This failure banned the source (log it once, now).
        case banned(until: ContinuousClock.Instant)
        /// Bans are off.
        case ignored
    }

    private struct SourceState {
        var tokens: Double
        var refilled: ContinuousClock.Instant
        var failures: [ContinuousClock.Instant] = []
        var bannedUntil: ContinuousClock.Instant?
        var lastSeen: ContinuousClock.Instant
    }

    let policy: Policy
    let maximumSources: Int
    private var sources: [String: SourceState] = [:]

    init(policy: Policy, maximumSources: Int = 10_000) {
        self.policy = policy
        self.maximumSources = maximumSources
    }

    var trackedSources: Int { sources.count }

    mutating func invite(from source: String, at now: ContinuousClock.Instant) -> Verdict {
        var state = self.state(for: source, at: now)
        defer { sources[source] = state }
        state.lastSeen = now
        if let until = state.bannedUntil {
            if now < until { return .banned(until: until) }
            state.bannedUntil = nil
            state.failures = []
        }
        guard policy.invitesPerSecond > 0 else { return .admit }
        let rate = Double(policy.invitesPerSecond)
        state.tokens = min(rate, state.tokens + Self.seconds(now - state.refilled) * rate)
        state.refilled = now
        guard state.tokens >= 1 else { return .rateLimited }
        state.tokens -= 1
        return .admit
    }

    mutating func failure(from source: String, at now: ContinuousClock.Instant) -> FailureOutcome {
        guard policy.maximumFailures > 0 else { return .ignored }
        var state = self.state(for: source, at: now)
        defer { sources[source] = state }
        state.lastSeen = now
        if let until = state.bannedUntil, now < until { return .counted(state.failures.count) }
        state.failures = state.failures.filter { now - $0 < policy.failureWindow } + [now]
        guard state.failures.count >= policy.maximumFailures else { return .counted(state.failures.count) }
        let until = now + policy.banDuration
        state.bannedUntil = until
        return .banned(until: until)
    }

    private mutating func state(for source: String, at now: ContinuousClock.Instant) -> SourceState {
        if let state = sources[source] { return state }
        if sources.count >= maximumSources { evict(at: now) }
        return SourceState(tokens: Double(policy.invitesPerSecond), refilled: now, lastSeen: now)
    }

    /// Forgets sources that hold no ban and no recent failure, or, when all do, the least recently seen half.
    private mutating func evict(at now: ContinuousClock.Instant) {
        sources = sources.filter { _, state in
            (state.bannedUntil.map { now < $0 } ?? false) || state.failures.contains { now - $0 < policy.failureWindow }
        }
        guard sources.count >= maximumSources else { return }
        let keep = sources.sorted { $0.value.lastSeen > $1.value.lastSeen }.prefix(maximumSources / 2)
        sources = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
