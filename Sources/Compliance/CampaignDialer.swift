/// Places one outbound call for a campaign. The gateway implements it with a real SIP INVITE through the trunk;
/// the scheduler has already recorded the attempt durably and passed the compliance gate when `dial` is called.
public protocol CampaignDialer: Sendable {
    func dial(_ request: DialRequest) async -> DialOutcome
}

public struct DialRequest: Sendable, Equatable {
    public var campaignID: String
    public var attemptID: String
    public var number: PhoneNumber
    public var from: PhoneNumber
    public var trunk: String
    public var route: String?
    /// Context for the agent's `start` message: `campaign_id`, `attempt_id`, `consent_id`, `purpose`.
    public var customParameters: [String: String]
}

public struct DialOutcome: Sendable, Equatable {
    public enum Result: Sendable, Equatable {
        case answered
        case busy
        case noAnswer
        /// The call failed in the network (SIP status and reason); retried like no answer.
        case failed(code: Int, reason: String)
        /// The callee or the carrier declined (e.g. 603); not retried.
        case refused(reason: String)
    }

    public var result: Result
    /// Talk time of an answered call.
    public var durationSeconds: Int

    public init(_ result: Result, durationSeconds: Int = 0) {
        self.result = result
        self.durationSeconds = durationSeconds
    }

    var name: String {
        switch result {
        case .answered: "answered"
        case .busy: "busy"
        case .noAnswer: "no_answer"
        case .failed: "failed"
        case .refused: "declined"
        }
    }
}
