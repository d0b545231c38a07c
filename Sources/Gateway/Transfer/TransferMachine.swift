import Agent
import SIP

/// One transfer of a call to a human, as a pure state machine: each event returns the actions the call carries
/// out (REFER, the human's leg, joining media, reports to the agent). No I/O, no clock.
///
/// Blind: REFER → 202 → NOTIFYs (100/180 progress, 2xx done, ≥300 failed). A refused REFER or a failed NOTIFY
/// falls back to calling the target ourselves and bridging. Bridge goes straight to that. Attended calls the
/// target and puts the agent on the human's leg until `connect` or `cancel`. A transfer that fails before the
/// caller reaches the human returns the call to the agent: it is never dropped.
struct TransferMachine: Equatable {
    enum State: Equatable {
        /// The REFER is out, no answer yet.
        case referring
        /// 202 came; waiting for the NOTIFY that says how the far end's call went.
        case referAccepted
        /// Our own INVITE to the human is out.
        case dialling(DialPurpose)
        /// Attended: the agent talks to the human; the caller hears silence.
        case consulting
        /// Caller and human hear each other.
        case bridged
        /// The far end took the call (REFER succeeded) or the bridge ended: nothing more to do.
        case finished
        /// Failed or cancelled before the caller reached the human: the call is the agent's again.
        case abandoned
    }

    enum DialPurpose: Equatable {
        case bridge, consult
    }

    enum Action: Equatable {
        case sendRefer
        case dialHuman
        /// Join caller and human; the agent gets `stop` unless it stays listening.
        case bridge(agentStays: Bool)
        /// Agent ↔ human, caller on hold.
        case consult
        /// Agent ↔ caller again (after a consult).
        case endConsult
        /// Ends the human's leg; `by` and `reason` go into its record.
        case hangUpHuman(by: String, reason: String)
        /// The caller's side ends: the far end has it (REFER succeeded) or the human hung up on a bridge.
        case hangUpCaller(by: String, reason: String)
        case report(TransferUpdate)
        /// Record how it ended: `transferred` (REFER), `bridged`, `failed`, `cancelled`.
        case outcome(String, sipStatus: Int?)
    }

    let mode: TransferMode
    let agentStays: Bool
    private(set) var state: State

    /// Starts a transfer: the actions that begin it.
    init(mode: TransferMode, agentStays: Bool) {
        self.mode = mode
        self.agentStays = agentStays
        switch mode {
        case .blind: state = .referring
        case .bridge: state = .dialling(.bridge)
        case .attended: state = .dialling(.consult)
        }
    }

    var startActions: [Action] {
        switch mode {
        case .blind: [.sendRefer]
        case .bridge, .attended: [.dialHuman, .report(TransferUpdate(.trying, reason: "calling the target"))]
        }
    }

    /// Whether the caller still belongs to this transfer (a new one cannot start).
    var isUnderWay: Bool {
        switch state {
        case .referring, .referAccepted, .dialling, .consulting, .bridged: true
        case .finished, .abandoned: false
        }
    }

    // MARK: - REFER

    mutating func referAnswered(status: Int, phrase: String) -> [Action] {
        guard state == .referring else { return [] }
        switch status {
        case 200..<300:
            state = .referAccepted
            return [.report(TransferUpdate(.accepted, sipStatus: status))]
        default:
            return fallBackToBridge(status: status, because: "REFER refused: \(status) \(phrase)")
        }
    }

    mutating func notified(_ frag: SIPFrag?, terminated: Bool) -> [Action] {
        guard state == .referAccepted else { return [] }
        guard let frag else {
            return terminated ? fallBackToBridge(status: nil, because: "transfer subscription ended without a final status") : []
        }
        switch frag.status {
        case 100..<180:
            return [.report(TransferUpdate(.trying, sipStatus: frag.status))]
        case 180..<200:
            return [.report(TransferUpdate(.ringing, sipStatus: frag.status))]
        case 200..<300:
            state = .finished
            return [.report(TransferUpdate(.completed, sipStatus: frag.status)), .outcome("transferred", sipStatus: frag.status),
                    .hangUpCaller(by: "gateway", reason: "transferred")]
        default:
            return fallBackToBridge(status: frag.status, because: "far end's transfer failed: \(frag.status) \(frag.phrase)")
        }
    }

    private mutating func fallBackToBridge(status: Int?, because reason: String) -> [Action] {
        state = .dialling(.bridge)
        return [.report(TransferUpdate(.trying, sipStatus: status, reason: reason + "; calling the target to bridge")), .dialHuman]
    }

    // MARK: - The human's leg

    mutating func humanProgress(status: Int) -> [Action] {
        guard case .dialling = state, (180..<200).contains(status) else { return [] }
        return [.report(TransferUpdate(.ringing, sipStatus: status))]
    }

    mutating func humanAnswered() -> [Action] {
        switch state {
        case .dialling(.bridge):
            state = .bridged
            // Reported before the bridge: an agent that leaves gets `stop` there.
            return [.report(TransferUpdate(.completed, sipStatus: 200)), .outcome("bridged", sipStatus: 200), .bridge(agentStays: agentStays)]
        case .dialling(.consult):
            state = .consulting
            return [.consult, .report(TransferUpdate(.answered, sipStatus: 200))]
        default:
            return [.hangUpHuman(by: "gateway", reason: "transfer no longer wanted")]
        }
    }

    /// The human's leg ended: before answering (`status` is its final answer, nil when we gave up) or after.
    mutating func humanEnded(status: Int?, reason: String) -> [Action] {
        switch state {
        case .dialling:
            state = .abandoned
            return [.report(TransferUpdate(.failed, sipStatus: status, reason: reason)), .outcome("failed", sipStatus: status)]
        case .consulting:
            state = .abandoned
            return [.endConsult, .report(TransferUpdate(.failed, reason: "the target hung up before connect")), .outcome("failed", sipStatus: nil)]
        case .bridged:
            state = .finished
            return [.hangUpCaller(by: "transfer-target", reason: "transfer target hung up")]
        default:
            return []
        }
    }

    // MARK: - Agent and caller

    mutating func connect() throws(TransferRefusal) -> [Action] {
        guard state == .consulting else { throw TransferRefusal("no consulted target to connect (attended transfer not answered yet)") }
        state = .bridged
        return [.report(TransferUpdate(.completed, sipStatus: 200)), .outcome("bridged", sipStatus: 200), .bridge(agentStays: false)]
    }

    mutating func cancel() throws(TransferRefusal) -> [Action] {
        switch state {
        case .dialling:
            state = .abandoned
            return [.hangUpHuman(by: "agent", reason: "transfer cancelled"), .report(TransferUpdate(.cancelled)), .outcome("cancelled", sipStatus: nil)]
        case .consulting:
            state = .abandoned
            return [.hangUpHuman(by: "agent", reason: "transfer cancelled"), .endConsult, .report(TransferUpdate(.cancelled)), .outcome("cancelled", sipStatus: nil)]
        default:
            throw TransferRefusal("no transfer to cancel (a REFER cannot be taken back; a bridge is already up)")
        }
    }

    /// The caller's side ended first: the human's leg, if any, goes too.
    mutating func callerEnded() -> [Action] {
        let hadHuman: Bool
        switch state {
        case .dialling, .consulting, .bridged: hadHuman = true
        default: hadHuman = false
        }
        let wasConnected = state == .bridged || state == .finished
        state = .finished
        return (hadHuman ? [.hangUpHuman(by: "caller", reason: "caller hung up")] : []) + (wasConnected ? [] : [.outcome("failed", sipStatus: nil)])
    }
}
