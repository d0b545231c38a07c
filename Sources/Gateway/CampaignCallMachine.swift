import Compliance

/// What a campaign call owes the callee, as a pure state machine: the disclosure plays before the agent starts,
/// and an opt-out (the DTMF key at any point, or the agent's `optOut`) is stored before anything else happens —
/// the call confirms it and hangs up (or goes on) only once the revocation is durable. Time-free; the call runs
/// the actions it returns.
struct CampaignCallMachine: Equatable {
    enum Phase: Equatable {
        case ringing
        /// The disclosure prompt is playing; the agent is not started yet, so none of its audio can come first.
        case disclosing
        case withAgent
    }

    enum OptOut: Equatable {
        case none
        case revoking(RevocationSource)
        case stored
        case failed
    }

    enum Action: Equatable {
        case playDisclosure
        case recordDisclosure
        case startAgent
        /// Revoke the number's consents in the store and the ledger (by the key or by the agent).
        case revoke(RevocationSource)
        /// Tell the agent how the opt-out went and whether the call is about to end.
        case tellAgent(stored: Bool, source: RevocationSource, callEnds: Bool)
        /// Play the opt-out confirmation; hang up once it has played when `thenHangUp`.
        case playConfirmation(thenHangUp: Bool)
        /// The revocation could not be stored: end the call without a confirmation that would not be true.
        case hangUp
    }

    let optOutKey: Character
    let afterOptOut: DisclosureSettings.AfterOptOut
    private(set) var phase = Phase.ringing
    private(set) var optOut = OptOut.none

    init(optOutKey: Character, afterOptOut: DisclosureSettings.AfterOptOut) {
        self.optOutKey = optOutKey
        self.afterOptOut = afterOptOut
    }

    private var endsCall: Bool { afterOptOut == .hangup }

    /// The callee answered.
    mutating func answered() -> [Action] {
        guard phase == .ringing else { return [] }
        phase = .disclosing
        return [.playDisclosure]
    }

    /// The disclosure's last sample went out. After an opt-out that ends the call, the agent never starts.
    mutating func disclosurePlayed() -> [Action] {
        guard phase == .disclosing else { return [] }
        phase = .withAgent
        if endsCall, optOut != .none { return [.recordDisclosure] }
        return [.recordDisclosure, .startAgent]
    }

    /// A key from the callee: the opt-out key is taken here (never forwarded), every other key goes on (nil).
    mutating func key(_ key: Character) -> [Action]? {
        guard key == optOutKey else { return nil }
        return requestOptOut(.dtmfOptOut)
    }

    /// The agent heard the callee ask not to be called.
    mutating func agentOptOut() -> [Action] {
        requestOptOut(.agentOptOut)
    }

    /// Once per call; a second press while storing, or after, changes nothing.
    private mutating func requestOptOut(_ source: RevocationSource) -> [Action] {
        guard optOut == .none else { return [] }
        optOut = .revoking(source)
        return [.revoke(source)]
    }

    /// The store answered the revocation.
    mutating func revocationFinished(stored: Bool) -> [Action] {
        guard case .revoking(let source) = optOut else { return [] }
        optOut = stored ? .stored : .failed
        let tell = Action.tellAgent(stored: stored, source: source, callEnds: endsCall)
        guard stored else { return endsCall ? [tell, .hangUp] : [tell] }
        return [tell, .playConfirmation(thenHangUp: endsCall)]
    }
}
