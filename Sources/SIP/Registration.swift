import CSofiaSIP
import Foundation
import SofiaShim

/// A registration to keep at a registrar (RFC 3261 §10): sofia's nua sends REGISTER, refreshes it before the
/// granted lifetime runs out and un-registers at shutdown; we answer its challenges and retry failures.
public struct OutgoingRegistration: Sendable {
    /// Names the registration in events and logs (the trunk's name).
    public var name: String
    /// The registrar's URI, e.g. `sip:registrar.example.com:5060;transport=tcp`.
    public var registrar: String
    /// The address-of-record we register (To and From), e.g. `sip:trunkline@example.com`.
    public var addressOfRecord: String
    public var credentials: DigestCredentials
    public var expiresSeconds: Int

    public init(name: String, registrar: String, addressOfRecord: String, credentials: DigestCredentials, expiresSeconds: Int) {
        self.name = name
        self.registrar = registrar
        self.addressOfRecord = addressOfRecord
        self.credentials = credentials
        self.expiresSeconds = expiresSeconds
    }
}

/// Where a registration stands, as events report it.
public enum RegistrationStatus: Sendable, Equatable {
    /// The registrar accepted REGISTER (first time or a refresh) for this many seconds.
    case registered(expiresSeconds: Int)
    /// It refused or did not answer; the next attempt is in `retryIn`.
    case failed(status: Int, phrase: String, retryIn: Duration)
    /// Un-registered at shutdown.
    case unregistered
}

/// Retry delays after failed registrations: doubling from `initial` up to `maximum`, back to `initial` after a
/// success. Pure, so the sequence is tested without a registrar.
public struct RegistrationBackoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    public private(set) var failures = 0

    /// A registrar that is briefly down is retried at once; one that keeps refusing is not hammered.
    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(60)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// Notes a failure and returns how long to wait before the next attempt.
    public mutating func failed() -> Duration {
        defer { failures += 1 }
        let factor = 1 << min(failures, 20)
        return min(initial * factor, maximum)
    }

    public mutating func succeeded() {
        failures = 0
    }
}

extension SIPEndpoint {
    /// Registers at `registration.registrar` and keeps the registration alive until shutdown; its state arrives
    /// as `.registration` events.
    public func register(_ registration: OutgoingRegistration, backoff: RegistrationBackoff = RegistrationBackoff()) {
        let id = stack.allocateLeg()
        stack.post { $0.doRegister(id, registration, backoff: backoff) }
    }
}

/// One registration's state on the sofia thread.
struct RegistrationState {
    var handle: OpaquePointer
    var registration: OutgoingRegistration
    var backoff: RegistrationBackoff
    /// A challenge was answered since the last final response: another one means the credentials are wrong.
    var answeredChallenge = false
    var registered = false
}

extension SofiaStack {
    func doRegister(_ id: UInt64, _ registration: OutgoingRegistration, backoff: RegistrationBackoff) {
        guard !shuttingDown else { return }
        let handle = SofiaTagList()
            .add(tl_siptag_to_str(), string: "<\(registration.addressOfRecord)>")
            .add(tl_siptag_from_str(), string: "<\(registration.addressOfRecord)>")
            .withTags { tl_nua_handle(nua, UnsafeMutableRawPointer(bitPattern: UInt(id)), $0) }
        guard let handle else {
            logger.error("could not create a SIP handle for a registration", metadata: ["registration": "\(registration.name)"])
            return
        }
        registrations[id] = RegistrationState(handle: handle, registration: registration, backoff: backoff)
        sendRegister(id)
    }

    private func sendRegister(_ id: UInt64) {
        guard let state = registrations[id], !shuttingDown else { return }
        SofiaTagList()
            .add(tl_nutag_registrar(), string: state.registration.registrar)
            .add(tl_nutag_m_username(), string: state.registration.credentials.username)
            .add(tl_siptag_expires_str(), string: "\(state.registration.expiresSeconds)")
            .withTags { tl_nua_register(state.handle, $0) }
    }

    /// A response to REGISTER (ours or nua's refresh): challenges answered once, success and failure reported,
    /// failures retried after the backoff.
    func registerResponse(_ id: UInt64, status: Int, phrase: String, sip: UnsafePointer<sip_t>?) {
        guard var state = registrations[id], status >= 200 else { return }
        let name = state.registration.name
        if (status == 401 || status == 407), !state.answeredChallenge, answerChallenge(&state, sip: sip) {
            registrations[id] = state
            return
        }
        state.answeredChallenge = false
        if shuttingDown {
            registrations[id] = nil
            return eventHandler(.registration(name: name, .unregistered))
        }
        if (200..<300).contains(status) {
            state.registered = true
            state.backoff.succeeded()
            registrations[id] = state
            let granted = sip.map { Int(tl_registration_expires($0)) } ?? -1
            return eventHandler(.registration(name: name, .registered(expiresSeconds: granted >= 0 ? granted : state.registration.expiresSeconds)))
        }
        state.registered = false
        let delay = state.backoff.failed()
        registrations[id] = state
        eventHandler(.registration(name: name, .failed(status: status, phrase: phrase, retryIn: delay)))
        after(delay) { $0.sendRegister(id) }
    }

    /// Answers a 401/407 with the registration's credentials; false when it carries no digest challenge.
    private func answerChallenge(_ state: inout RegistrationState, sip: UnsafePointer<sip_t>?) -> Bool {
        var realm = [CChar](repeating: 0, count: 256)
        guard let sip, tl_challenge_realm(sip, &realm, realm.count) == 0 else { return false }
        state.answeredChallenge = true
        let credentials = state.registration.credentials
        let auth = "Digest:\(String(cString: realm)):\(credentials.username):\(credentials.password)"
        SofiaTagList().add(tl_nutag_auth(), string: auth).withTags { tl_nua_authenticate(state.handle, $0) }
        return true
    }

    /// Removes every registration (REGISTER with Expires: 0) before nua shuts down.
    func unregisterAll() {
        for (id, state) in registrations {
            guard state.registered else {
                registrations[id] = nil
                continue
            }
            SofiaTagList().withTags { tl_nua_unregister(state.handle, $0) }
        }
    }
}
