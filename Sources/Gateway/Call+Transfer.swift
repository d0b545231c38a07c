import Agent
import Foundation
import Logging
import Media
import NIOCore
import SecureCapture
import SIP

/// The transfer under way on a call (or the last one): its machine, what it carries, and the leg the gateway
/// placed to the target. Lives in `Call.transfer`, on the call's loop; the target's leg is on the same loop.
struct CallTransfer {
    var machine: TransferMachine
    let target: TransferTarget
    /// What Refer-To names: the URI, or the number at the trunk's first termination address.
    let referURI: String
    let headers: [TransferHeader]
    /// The leg to the human, once the gateway dials one (bridge, attended, or a refused REFER).
    var human: Call?
}

/// Transfer to a human: REFER in the caller's dialog, or a call the gateway places to the target and bridges
/// (caller RTP ↔ human RTP, each decoded and encoded as its leg negotiated, on this one loop).
extension Call {
    /// How long the gateway rings a target it calls itself when the trunk does not say.
    static let transferRingTimeout = TimeAmount.seconds(30)

    // MARK: - Requests

    func agentTransferCommand(_ command: TransferCommand) throws(TransferRefusal) {
        eventLoop.assertInEventLoop()
        switch command {
        case .start(let request):
            try startTransfer(request, requestedBy: "agent")
        case .connect:
            guard transfer != nil else { throw TransferRefusal("no transfer to connect") }
            performTransfer(try transfer!.machine.connect())
        case .cancel:
            guard transfer != nil else { throw TransferRefusal("no transfer to cancel") }
            performTransfer(try transfer!.machine.cancel())
        }
    }

    func startTransfer(_ request: TransferRequest, requestedBy: String) throws(TransferRefusal) {
        guard phase == .active || phase == .playingFallback, transferParent == nil else { throw TransferRefusal("the call is not active") }
        guard transfer?.machine.isUnderWay != true else { throw TransferRefusal("a transfer is already under way") }
        let target = try TransferTarget.parse(request.target)
        try TransferHeaders.validate(request.headers)
        let referURI: String
        switch target {
        case .uri(let uri):
            referURI = uri
        case .number(let number):
            guard let outbound = trunkOutbound else {
                throw TransferRefusal("trunk \(record.trunk ?? "-") has no outbound settings: a number cannot be dialled; use a SIP URI")
            }
            referURI = outbound.addresses[0].requestURI(user: number)
        }
        let machine = TransferMachine(mode: request.mode, agentStays: request.agentStays)
        transfer = CallTransfer(machine: machine, target: target, referURI: referURI, headers: request.headers)
        record.transfers = (record.transfers ?? []) + [TransferRecord(
            target: target.redacted, mode: request.mode.rawValue, method: request.mode == .blind ? "refer" : "bridge",
            headers: request.headers.isEmpty ? nil : request.headers.map(\.name), requestedBy: requestedBy)]
        logger.info("transfer started", metadata: [
            "target": "\(target.redacted)", "mode": "\(request.mode.rawValue)", "by": "\(requestedBy)",
        ])
        performTransfer(machine.startActions)
    }

    /// The route's agent failed and its prompt has played: transfer to the route's human instead of hanging up.
    /// False when the route has none or it cannot start (then the call hangs up as before).
    func transferAfterFallback() -> Bool {
        guard let target = fallbackTransferTarget else { return false }
        do {
            try startTransfer(TransferRequest(target: target), requestedBy: "route-fallback")
            return true
        } catch {
            logger.error("fallback transfer could not start", metadata: ["reason": "\(error)"])
            return false
        }
    }

    /// The agent closed its socket or failed while a transfer holds the call: true when the call goes on without
    /// it — bridged, the caller and the human stay together; consulting, the caller is connected to the human the
    /// agent was briefing (rather than left on hold).
    func transferContinuesWithoutAgent() -> Bool {
        switch transfer?.machine.state {
        case .bridged?:
            agent = nil
            return true
        case .consulting?:
            agent = nil
            logger.info("agent left during a consult: connecting the caller to the transfer target")
            performTransfer((try? transfer!.machine.connect()) ?? [])
            return true
        default:
            return false
        }
    }

    // MARK: - SIP events

    func referProgress(_ progress: ReferProgress) {
        eventLoop.assertInEventLoop()
        guard transfer != nil else { return }
        switch progress {
        case .answered(let status, let phrase):
            noteTransferStatus(status)
            performTransfer(transfer!.machine.referAnswered(status: status, phrase: phrase))
        case .notified(let frag, let terminated):
            if let frag { noteTransferStatus(frag.status) }
            performTransfer(transfer!.machine.notified(frag, terminated: terminated))
        }
    }

    /// The human's leg reports 180/183.
    func transferLegProgress(_ human: Call, status: Int) {
        guard transfer?.human === human else { return }
        performTransfer(transfer!.machine.humanProgress(status: status))
    }

    /// The human answered (its leg's agent, `TransferLegAgent`, started).
    func transferLegAnswered(_ human: Call) {
        // Both legs on one loop: media crosses between them by direct calls.
        human.eventLoop.assertInEventLoop()
        guard transfer?.human === human else { return }
        noteTransferStatus(200)
        performTransfer(transfer!.machine.humanAnswered())
    }

    /// The human's leg is over, answered or not.
    func transferLegEnded(_ human: Call) {
        guard transfer?.human === human else { return }
        transfer!.human = nil
        let answered = human.record.answerTime != nil
        let status = answered ? nil : human.record.sipStatus
        if let status { noteTransferStatus(status) }
        let reason = answered ? "the target hung up" : "target: \(human.record.hangupReason ?? "call failed")"
        performTransfer(transfer!.machine.humanEnded(status: status, reason: reason))
    }

    /// The caller's side is over: a human's leg still up goes too.
    func endTransfer() {
        guard transfer?.machine.isUnderWay == true else { return }
        performTransfer(transfer!.machine.callerEnded())
    }

    // MARK: - Media (hot path)

    /// Caller audio: to the human once bridged. True when the agent should get it too (not while the caller is on
    /// hold during a consult).
    func routeCallerAudioToHuman(_ samples: UnsafeBufferPointer<Int16>) -> Bool {
        guard let transfer else { return true }
        switch transfer.machine.state {
        case .bridged:
            transfer.human?.rtp?.enqueue(samples)
            return true
        case .consulting:
            return false
        default:
            return true
        }
    }

    /// The human's audio: to the caller once bridged, to the agent during a consult.
    func humanAudio(_ samples: UnsafeBufferPointer<Int16>) {
        switch transfer?.machine.state {
        case .bridged?: rtp?.enqueue(samples)
        case .consulting?: agent?.callerAudio(samples)
        default: break
        }
    }

    /// Where the agent's audio, marks and clears go: the caller, the human during a consult, nowhere once the
    /// caller is bridged (an agent that stays only listens).
    var agentPlayout: RTPSession? {
        switch transfer?.machine.state {
        case .consulting?: transfer?.human?.rtp
        case .bridged?: nil
        default: rtp
        }
    }

    // MARK: - Actions

    private func performTransfer(_ actions: [TransferMachine.Action]) {
        for action in actions {
            guard let transfer else { return }
            switch action {
            case .sendRefer:
                services.sip.refer(leg, referTo: "<\(TransferHeaders.uri(transfer.referURI, carrying: transfer.headers))>")
            case .dialHuman:
                dialHuman(transfer)
            case .bridge(let agentStays):
                logger.info("caller bridged to the transfer target", metadata: ["agent_stays": "\(agentStays)"])
                rtp?.clearPlayout()
                transfer.human?.rtp?.clearPlayout()
                if !agentStays, let agent {
                    agent.stop(reason: "transferred")
                    self.agent = nil
                }
            case .consult:
                rtp?.clearPlayout()
            case .endConsult:
                transfer.human?.rtp?.clearPlayout()
            case .hangUpHuman(let party, let reason):
                transfer.human?.requestHangUp(by: party, reason: reason)
            case .hangUpCaller(let party, let reason):
                let why = reason == "transferred" ? "transferred to \(transfer.target.redacted)" : reason
                requestHangUp(by: party, reason: why)
            case .report(let update):
                logger.info("transfer progress", metadata: [
                    "status": "\(update.status.rawValue)", "sip_status": "\(update.sipStatus.map(String.init) ?? "-")",
                    "reason": "\(update.reason ?? "-")",
                ])
                agent?.transfer(update)
            case .outcome(let outcome, let status):
                updateTransferRecord {
                    $0.outcome = outcome
                    if let status { $0.sipStatus = status }
                }
                // Back to the agent; with none (route fallback, or it left) the call cannot go on.
                if outcome == "failed" || outcome == "cancelled", agent == nil {
                    requestHangUp(by: "gateway", reason: "transfer to \(transfer.target.redacted) \(outcome) and no agent is on the call")
                }
            }
        }
    }

    private func noteTransferStatus(_ status: Int) {
        updateTransferRecord { $0.sipStatus = status }
    }

    /// Changes the record's entry for the transfer under way (the last one).
    private func updateTransferRecord(_ change: (inout TransferRecord) -> Void) {
        guard var records = record.transfers, !records.isEmpty else { return }
        change(&records[records.count - 1])
        record.transfers = records
    }

    private var trunkOutbound: GatewayConfiguration.Outbound? {
        services.configuration.trunks.first { $0.name == record.trunk }?.outbound
    }

    /// Places the call to the human on this loop, as a `Call` of its own (direction `transfer`) whose agent is this
    /// call (`TransferLegAgent`).
    private func dialHuman(_ transfer: CallTransfer) {
        let callID = UUID().uuidString.lowercased() + "@trunkline"
        // The human sees the caller's number when it is one; else the number the caller called.
        let from = DialableNumber.isValid(record.from) ? record.from : (DialableNumber.isValid(record.to) ? record.to : "anonymous")
        let headerLines = TransferHeaders.lines(transfer.headers)
        // The caller's trunk's codecs and SRTP policy; G.711 when the call came in on no configured trunk.
        let offerToHuman = services.configuration.trunks.first { $0.name == record.trunk }
            .map { CallMedia.offer(for: $0, agentSampleRate: agentSampleRate) } ?? AudioOffer()
        let dial: Dial
        switch transfer.target {
        case .number(let number):
            guard let outbound = trunkOutbound else { return }
            dial = Dial(
                invite: OutboundInvite(outbound: outbound, to: number, from: from, callID: callID,
                                       order: services.trunkHealth.order(outbound.addresses)),
                ringTimeout: .seconds(Int64(outbound.ringTimeoutSeconds)), offer: offerToHuman, extraHeaders: headerLines)
        case .uri(let uri):
            let host = services.configuration.sip.listen
            dial = Dial(
                requestURI: uri, from: "<sip:\(from)@\(host.contains(":") ? "[\(host)]" : host)>", callID: callID,
                headers: headerLines, ringTimeout: trunkOutbound.map { .seconds(Int64($0.ringTimeoutSeconds)) } ?? Self.transferRingTimeout,
                offer: offerToHuman)
        }
        var humanRecord = CallRecord(
            callSid: TwilioIdentifier.make(prefix: "CA"), sipCallId: callID, from: from, to: transfer.target.redacted,
            source: "transfer:\(record.callSid)", startTime: Date())
        humanRecord.direction = "transfer"
        humanRecord.parentCallSid = record.callSid
        humanRecord.trunk = record.trunk
        humanRecord.route = record.route
        humanRecord.agent = "transfer:\(record.callSid)"
        let context = CallContext(
            callSid: humanRecord.callSid, accountSid: services.configuration.accountSid, from: from,
            to: transfer.target.redacted, trunk: record.trunk ?? "", route: record.route ?? "", sipCallID: callID)
        let human = Call(
            leg: services.sip.reserveLeg(), eventLoop: eventLoop, services: services, media: nil, agentSampleRate: agentSampleRate,
            symmetricRTP: symmetricRTP, ringMilliseconds: 0, context: context, record: humanRecord,
            secureCapture: CallSecureCapture(policy: SecureCapturePolicy(), sink: nil), dtmf: dtmf,
            makeAgent: { [weak self] _ in TransferLegAgent(owner: self) })
        human.transferParent = self
        self.transfer?.human = human
        updateTransferRecord {
            $0.method = "bridge"
            $0.legCallSid = humanRecord.callSid
        }
        services.track(human)
        logger.info("calling the transfer target", metadata: ["leg_call": "\(humanRecord.callSid)", "target": "\(transfer.target.redacted)"])
        human.dial(dial)
    }
}

/// The "agent" of a transfer's leg to the human: the call it was placed for. Both legs share one loop, so the
/// human's audio reaches the caller's RTP session (or the agent, during a consult) by a direct call.
final class TransferLegAgent: CallAgent {
    private weak var owner: Call?
    private weak var leg: Call?

    init(owner: Call?) {
        self.owner = owner
    }

    func start(context: CallContext, control: AgentCallControl) {
        guard let leg = control as? Call else { return }
        self.leg = leg
        owner?.transferLegAnswered(leg)
    }

    func callerAudio(_ samples: UnsafeBufferPointer<Int16>) {
        owner?.humanAudio(samples)
    }

    /// The human's keys are not the caller's: they go nowhere.
    func callerDigit(_ digit: Character) {}

    /// During a consult the agent's marks are queued on the human's leg: their echo goes back to the agent.
    func markPlayed(_ id: Int) {
        owner?.agent?.markPlayed(id)
    }

    /// The leg's end reaches the owner through `Call.transferParent`, answered or not.
    func stop(reason: String) {}
}
