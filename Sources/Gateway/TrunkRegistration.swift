import Foundation
import SIP

/// Where one trunk's registration stands, as the admin API shows it (`GET /v1/registrations`).
public struct TrunkRegistration: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Codable {
        /// Configured, no answer from the registrar yet.
        case registering
        case registered
        /// Refused or unanswered; retried after `retryInSeconds`.
        case failed
        /// Un-registered at shutdown.
        case unregistered
    }

    public var trunk: String
    public var state: State
    /// Seconds the registrar granted (`registered`).
    public var expiresSeconds: Int?
    /// The registrar's refusal, or 408 when it did not answer (`failed`).
    public var sipStatus: Int?
    public var reason: String?
    public var retryInSeconds: Int?
    /// When the state was entered.
    public var since: Date

    enum CodingKeys: String, CodingKey {
        case trunk, state, reason, since
        case expiresSeconds = "expires_s"
        case sipStatus = "sip_status"
        case retryInSeconds = "retry_in_s"
    }

    /// Configured, not yet answered.
    init(trunk: String, since: Date) {
        self.trunk = trunk
        self.state = .registering
        self.since = since
    }

    init(trunk: String, _ status: RegistrationStatus, since: Date) {
        self.init(trunk: trunk, since: since)
        switch status {
        case .registered(let expires):
            state = .registered
            expiresSeconds = expires
        case .failed(let status, let phrase, let retryIn):
            state = .failed
            sipStatus = status
            reason = phrase
            retryInSeconds = Int(retryIn.components.seconds)
        case .unregistered:
            state = .unregistered
        }
    }
}
