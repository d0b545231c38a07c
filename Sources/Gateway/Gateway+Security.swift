import Foundation
import Logging
import SIP

/// Who may send us INVITEs: per-source rate limits and bans, digest authentication per trunk, and the state of
/// the registrations we keep.
extension GatewayServices {
    /// Rate limit and bans, before anything else about the INVITE is read; false when it was answered (or
    /// dropped) here. Neither is written as a call record: a flood must stay cheap.
    func screen(_ invite: IncomingInvite) -> Bool {
        let verdict = sourceGuard.withLockedValue { $0.invite(from: invite.source.host, at: .now) }
        switch verdict {
        case .admit:
            return true
        case .rateLimited:
            logger.debug("INVITE over the source's rate limit", metadata: ["source": "\(invite.source.host)"])
            sip.respond(invite.leg, status: 503, phrase: "Service Unavailable", headers: ["Retry-After: 1"])
        case .banned:
            logger.debug("INVITE from a banned source", metadata: ["source": "\(invite.source.host)"])
            switch configuration.sip.limits.banResponse {
            case .reject: sip.respond(invite.leg, status: 403, phrase: "Forbidden")
            case .drop: sip.discard(invite.leg)
            }
        }
        return false
    }

    /// Counts a failed attempt (bad credentials, a source on no trunk) against its source; logs the ban it
    /// causes, once.
    func failedAttempt(from source: String) {
        let outcome = sourceGuard.withLockedValue { $0.failure(from: source, at: .now) }
        guard case .banned = outcome else { return }
        let policy = configuration.sip.limits
        logger.warning("source banned after repeated failures", metadata: [
            "source": "\(source)", "failures": "\(policy.maximumFailures)", "window_s": "\(policy.failureWindow.components.seconds)",
            "ban_s": "\(policy.banDuration.components.seconds)", "on_ban": "\(policy.banResponse.rawValue)",
        ])
    }

    /// Logs, counts and keeps a registration's change of state.
    func noteRegistration(trunk: String, _ status: RegistrationStatus) {
        metrics.registration(trunk: trunk, status)
        registrations.withLockedValue { $0[trunk] = TrunkRegistration(trunk: trunk, status, since: Date()) }
        switch status {
        case .registered(let expires):
            logger.info("registered", metadata: ["trunk": "\(trunk)", "expires_s": "\(expires)"])
        case .failed(let status, let phrase, let retryIn):
            logger.warning("registration failed", metadata: [
                "trunk": "\(trunk)", "status": "\(status)", "phrase": "\(phrase)", "retry_in_s": "\(retryIn.components.seconds)",
            ])
        case .unregistered:
            logger.info("unregistered", metadata: ["trunk": "\(trunk)"])
        }
    }
}

/// What a trunk's digest authentication makes of an INVITE.
enum InboundAuthentication: Equatable {
    /// No authentication configured, or valid credentials.
    case admitted
    /// No credentials yet (or a stale nonce): answer 401 with these header lines.
    case challenge([String])
    /// Wrong credentials: a failure, answered 401 with a fresh challenge.
    case failed(reason: String, challenge: [String])
}

extension GatewayConfiguration.Trunk {
    /// Checks the INVITE's `Authorization` against the trunk's `inbound_auth`; `now` in seconds since 1970.
    func authenticate(_ invite: IncomingInvite, now: Double) -> InboundAuthentication {
        guard let authenticator = inboundAuth else { return .admitted }
        let header = { (stale: Bool) in authenticator.challenges(now: now, stale: stale).map { "WWW-Authenticate: \($0)" } }
        switch authenticator.verify(authorization: invite.authorization, method: "INVITE", requestURI: invite.requestURI, now: now) {
        case .authorized: return .admitted
        case .missing: return .challenge(header(false))
        case .stale: return .challenge(header(true))
        case .failed(let reason): return .failed(reason: reason, challenge: header(false))
        }
    }
}
