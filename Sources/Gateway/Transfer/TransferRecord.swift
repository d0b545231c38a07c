/// One transfer in a call record: where to (never a password or a header value), how, and how it ended.
public struct TransferRecord: Codable, Sendable, Equatable {
    /// The target URI without a password, or the number.
    public var target: String
    /// blind, bridge or attended (as asked); `method` says what was done.
    public var mode: String
    /// `refer` once a REFER went out; `bridge` once the gateway called the target itself.
    public var method: String
    /// Names of the headers carried (their values stay out of the record).
    public var headers: [String]?
    /// transferred (REFER), bridged, failed, cancelled; nil while under way.
    public var outcome: String?
    /// The last SIP status seen: the REFER's answer, a NOTIFY's sipfrag, or the human's leg's final answer.
    public var sipStatus: Int?
    /// The record of the leg the gateway placed to the target, when it placed one.
    public var legCallSid: String?
    /// agent, route-fallback.
    public var requestedBy: String

    enum CodingKeys: String, CodingKey {
        case target, mode, method, headers, outcome, sipStatus = "sip_status", legCallSid = "leg_call_sid"
        case requestedBy = "requested_by"
    }
}
