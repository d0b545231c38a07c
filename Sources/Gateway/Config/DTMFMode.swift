/// How a trunk or route carries DTMF (`dtmf:`), in both directions.
///
/// - `auto`: receive every transport (a press sent two ways counts once); send RFC 4733 when the call negotiated
///   telephone-event, in-band tones when it did not.
/// - `rfc4733`, `info`, `inband`: send only that way and accept only that way in. For `info` and `inband` our SDP
///   answer leaves telephone-event out, so the caller's phone uses the chosen transport (and, for `inband`, the
///   gateway listens for tones).
public enum DTMFMode: String, Sendable, CaseIterable {
    case auto, rfc4733, info, inband

    /// How digits the agent sends go out.
    enum Transport: String, Sendable {
        case rfc4733, info, inband
    }

    /// Whether the SDP answer keeps telephone-event.
    var answersTelephoneEvent: Bool { self == .auto || self == .rfc4733 }

    /// Whether a key from `source` counts. RTP keys are RFC 4733 events, or tones on a leg without telephone-event.
    func accepts(_ source: DigitMerger.Source) -> Bool {
        switch self {
        case .auto: true
        case .rfc4733, .inband: source == .rfc4733
        case .info: source == .info
        }
    }

    func sendTransport(telephoneEvent: Bool) -> Transport {
        switch self {
        case .auto: telephoneEvent ? .rfc4733 : .inband
        case .rfc4733: .rfc4733
        case .info: .info
        case .inband: .inband
        }
    }

    static func parse(_ node: ConfigNode) throws -> DTMFMode {
        let text = try node.string()
        guard let mode = DTMFMode(rawValue: text) else {
            throw node.error("unknown dtmf mode '\(text)' (known: auto, rfc4733, info, inband)")
        }
        return mode
    }
}
