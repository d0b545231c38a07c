import Agent
import Compliance
import Media
import NIOCore

/// A call a campaign placed: whose consent it rests on, and where its disclosure and opt-out stand.
struct CallCampaign {
    let campaignID: String
    let attemptID: String?
    let number: PhoneNumber
    var machine: CampaignCallMachine
    /// The agent's words for its opt-out, kept for the ledger.
    var optOutDetail: String?

    /// The campaign ids from a placed call's parameters (`campaign_id`, `attempt_id`); nil for other calls.
    init?(parameters: [(name: String, value: String)], to: String, disclosure: DisclosureSettings) throws(OutboundCallError) {
        guard let campaignID = parameters.first(where: { $0.name == "campaign_id" })?.value else { return nil }
        do { number = try PhoneNumber(to) } catch { throw .invalidNumber(to) }
        self.campaignID = campaignID
        attemptID = parameters.first { $0.name == "attempt_id" }?.value
        machine = CampaignCallMachine(optOutKey: disclosure.optOutKey, afterOptOut: disclosure.afterOptOut)
    }
}

/// Disclosure and opt-out on a campaign call. Everything runs on the call's loop; store writes run in a `Task`
/// and come back to the loop with their result, so a hang-up after an opt-out waits for the revocation to commit.
extension Call {
    /// Mark ids of the gateway's own prompts (agents use ids ≥ 0, the fallback prompt -1).
    static let disclosureMark = -2
    static let optOutConfirmationMark = -3

    /// Feeds one event to the campaign machine and runs what it returns.
    func campaignEvent(_ event: (inout CampaignCallMachine) -> [CampaignCallMachine.Action]) {
        eventLoop.assertInEventLoop()
        guard var campaign else { return }
        let actions = event(&campaign.machine)
        self.campaign = campaign
        for action in actions { perform(action, for: campaign) }
    }

    /// The opt-out key, at any point of the call: taken here, never forwarded to the agent.
    func campaignKey(_ digit: Character) -> Bool {
        guard campaign != nil else { return false }
        var consumed = false
        campaignEvent { machine in
            guard let actions = machine.key(digit) else { return [] }
            consumed = true
            return actions
        }
        return consumed
    }

    func optOutRequestedByAgent(reason: String) throws {
        eventLoop.assertInEventLoop()
        guard campaign != nil else { throw CampaignCallError("this call carries no campaign consent to revoke") }
        campaign?.optOutDetail = reason
        campaignEvent { $0.agentOptOut() }
    }

    func campaignMarkPlayed(_ id: Int) {
        switch id {
        case Self.disclosureMark:
            campaignEvent { $0.disclosurePlayed() }
        case Self.optOutConfirmationMark:
            hangUp(by: "gateway", reason: "callee opted out")
        default:
            break
        }
    }

    private func perform(_ action: CampaignCallMachine.Action, for campaign: CallCampaign) {
        guard let compliance = services.compliance else { return }
        switch action {
        case .playDisclosure:
            guard let rtp else { return }
            logger.info("playing the campaign disclosure", metadata: ["campaign": "\(campaign.campaignID)"])
            compliance.disclosure.withUnsafeBufferPointer { rtp.enqueue($0, sampleRate: WAVFile.sampleRate) }
            rtp.enqueueMark(Self.disclosureMark)
        case .recordDisclosure:
            let (store, sid, logger, prompt) = (compliance.store, callSid, logger, compliance.settings.disclosure.prompt)
            Task {
                do {
                    try await store.recordDisclosure(number: campaign.number, campaignID: campaign.campaignID, attemptID: campaign.attemptID,
                                                     callSid: sid, prompt: prompt)
                } catch {
                    logger.error("could not record the disclosure in the ledger", metadata: ["error": "\(error)"])
                }
            }
        case .startAgent:
            guard phase == .active else { return }
            connectAgent()
        case .revoke(let source):
            revoke(source, campaign: campaign, store: compliance.store)
        case .tellAgent(let stored, let source, let callEnds):
            agent?.optOut(OptOutUpdate(source: source == .dtmfOptOut ? "dtmf" : "agent", stored: stored, callEnds: callEnds))
        case .playConfirmation(let thenHangUp):
            guard phase == .active || phase == .playingFallback, let rtp else { return }
            if thenHangUp {
                agent?.stop(reason: "callee opted out")
                agent = nil
                stopWatchingAgent()
                phase = .playingFallback
                // The disclosure (identification) finishes first; the agent's queued audio does not.
                if campaign.machine.phase != .disclosing { rtp.clearPlayout() }
            }
            compliance.optOutConfirmation.withUnsafeBufferPointer { rtp.enqueue($0, sampleRate: WAVFile.sampleRate) }
            if thenHangUp { rtp.enqueueMark(Self.optOutConfirmationMark) }
        case .hangUp:
            hangUp(by: "gateway", reason: "callee opted out; the revocation could not be stored")
        }
    }

    private func revoke(_ source: RevocationSource, campaign: CallCampaign, store: ComplianceStore) {
        let detail = source == .dtmfOptOut
            ? "key \(campaign.machine.optOutKey) during campaign \(campaign.campaignID)"
            : campaign.optOutDetail ?? "agent opt-out during campaign \(campaign.campaignID)"
        let (sid, logger) = (callSid, logger)
        logger.notice("callee opted out, revoking consent", metadata: ["by": "\(source.rawValue)", "campaign": "\(campaign.campaignID)"])
        Task {
            let stored: Bool
            do {
                _ = try await store.revokeConsent(number: campaign.number, source: source, detail: detail, callSid: sid)
                stored = true
            } catch {
                logger.error("could not store an opt-out", metadata: ["error": "\(error)"])
                stored = false
            }
            eventLoop.execute { self.campaignEvent { $0.revocationFinished(stored: stored) } }
        }
    }
}

struct CampaignCallError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
