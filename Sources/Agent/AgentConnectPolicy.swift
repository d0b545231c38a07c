import NIOCore

/// How hard a call tries to reach its remote agent before playing the fallback prompt.
///
/// Each attempt is a TCP connect plus the WebSocket upgrade, bounded by `timeout`. An attempt that fails in a way
/// another attempt may cure (refused, reset, timed out, upgrade answered 5xx or not at all) is retried after
/// `backoff`, doubled for each further retry; a 4xx answer to the upgrade (bad path, refused credentials) is not.
public struct AgentConnectPolicy: Sendable, Equatable {
    /// Limit for one attempt (TCP connect plus upgrade).
    public var timeout: TimeAmount
    /// Attempts in all, at least 1.
    public var attempts: Int
    /// Wait before the first retry; each further retry waits twice as long as the one before.
    public var backoff: TimeAmount

    public init(timeout: TimeAmount, attempts: Int = 1, backoff: TimeAmount = .zero) {
        precondition(attempts >= 1, "at least one attempt")
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
    }

    /// The wait before attempt `next` (2, 3, …).
    public func backoff(before next: Int) -> TimeAmount {
        .nanoseconds(backoff.nanoseconds << Int64(min(max(next - 2, 0), 16)))
    }
}
