import NIOCore
import SecureCapture

/// What an agent knows about the call it serves. Plain values: built by the gateway, read by any agent.
public struct CallContext: Sendable, Equatable {
    /// Twilio-style call id, `CA` + 32 lowercase hex digits.
    public var callSid: String
    /// Twilio-style account id, `AC` + 32 lowercase hex digits (from config).
    public var accountSid: String
    /// Caller number or user part (From), called number (Request-URI / To).
    public var from: String
    public var to: String
    public var trunk: String
    public var route: String
    public var sipCallID: String
    /// Extra context for `customParameters`, in insertion order (after the standard ones).
    public var extraParameters: [(name: String, value: String)]

    public init(
        callSid: String, accountSid: String, from: String, to: String, trunk: String, route: String,
        sipCallID: String, extraParameters: [(name: String, value: String)] = []
    ) {
        self.callSid = callSid
        self.accountSid = accountSid
        self.from = from
        self.to = to
        self.trunk = trunk
        self.route = route
        self.sipCallID = sipCallID
        self.extraParameters = extraParameters
    }

    public static func == (lhs: CallContext, rhs: CallContext) -> Bool {
        lhs.callSid == rhs.callSid && lhs.accountSid == rhs.accountSid && lhs.from == rhs.from && lhs.to == rhs.to
            && lhs.trunk == rhs.trunk && lhs.route == rhs.route && lhs.sipCallID == rhs.sipCallID
            && lhs.extraParameters.elementsEqual(rhs.extraParameters, by: { $0 == $1 })
    }
}

/// Why an agent gave up the call.
public enum AgentFailure: Error, Sendable, Equatable {
    /// The agent could not be reached (connect refused, DNS, handshake rejected, timeout).
    case unreachable(String)
    /// The agent failed after the call was bridged (socket error, protocol violation).
    case failedMidCall(String)

    public var reason: String {
        switch self {
        case .unreachable(let detail): "agent unreachable: \(detail)"
        case .failedMidCall(let detail): "agent failed mid-call: \(detail)"
        }
    }
}

/// The call as an agent sees it: what the agent may ask of the call.
///
/// Implemented by the gateway's call. Every method must be called on the call's event loop.
public protocol AgentCallControl: AnyObject {
    /// Queues 16-bit mono PCM for paced playout to the caller, at the agent's media rate (8 kHz for Twilio).
    func agentPlay(_ samples: UnsafeBufferPointer<Int16>)
    /// Asks to be told (through `CallAgent.markPlayed`) once everything queued before it has played.
    func agentMark(_ id: Int)
    /// Drops all queued audio; pending marks are reported played at once.
    func agentClear()
    /// The agent ended the call normally (script finished, socket closed by the agent).
    func agentHangUp(reason: String)
    /// Sends DTMF to the caller (`0-9 * # A-D`, `w` = 500 ms pause), e.g. to drive an IVR.
    /// Throws with a reason the agent can be told when the call cannot send them.
    func agentSendDigits(_ digits: String) throws
    /// The agent cannot serve the call; the gateway plays its fallback prompt and hangs up.
    func agentFailed(_ failure: AgentFailure)
    /// Starts secure capture (PCI mode): keys go to the payment sink, the agent gets `secureCapture` updates.
    /// Throws with a reason the agent can be told (already capturing, no sink on this route, bad options).
    func agentStartSecureCapture(_ options: SecureCaptureOptions) throws
    /// Ends secure capture; what was captured is discarded. Throws when no capture is active.
    func agentStopSecureCapture() throws
    /// Transfers the call to a human (REFER, or a call the gateway places and bridges), or connects / cancels an
    /// attended one; progress comes back through `CallAgent.transfer`. Throws with a reason the agent can be told
    /// (bad target or header, a transfer already under way, nothing to connect).
    func agentTransfer(_ command: TransferCommand) throws
    /// The callee asked not to be called again (campaign calls): the gateway revokes the number's consent, then
    /// answers with `CallAgent.optOut`. Throws when the call carries no campaign consent.
    func agentOptOut(reason: String) throws
}

/// An agent serving one call: the remote Twilio-Media-Streams client or an embedded agent.
///
/// All methods are called on the call's event loop, which is also the loop the agent must do its I/O on.
/// Not `Sendable`: an agent is confined to its call's loop.
public protocol CallAgent: AnyObject {
    /// The call is answered and media flows. `control` is held weakly or until `stop`.
    func start(context: CallContext, control: AgentCallControl)
    /// One packet of caller audio, 16-bit mono PCM at the agent's media rate (160 samples for 20 ms at 8 kHz).
    /// Valid only during the call.
    func callerAudio(_ samples: UnsafeBufferPointer<Int16>)
    /// One DTMF press from the caller (0-9, *, #, A-D), de-duplicated.
    func callerDigit(_ digit: Character)
    /// Audio before mark `id` has been played (or was cleared).
    func markPlayed(_ id: Int)
    /// The call is over (caller hung up, or the gateway ends it). The agent releases its resources.
    func stop(reason: String)
    /// Secure capture progress: started, `*` per key (a count, never the key), the result.
    func secureCapture(_ update: SecureCaptureUpdate)
    /// Transfer progress: accepted, trying, ringing, answered, then completed, failed or cancelled.
    func transfer(_ update: TransferUpdate)
    /// An opt-out (the callee's key or the agent's request) has been stored, or could not be.
    func optOut(_ update: OptOutUpdate)
    /// The caller put the call on hold (a re-INVITE with `sendonly`, `inactive` or `c=0.0.0.0`: it no longer
    /// listens, so the gateway sends it nothing) or took it off hold. Called only when that changes.
    func hold(_ held: Bool)
}

extension CallAgent {
    /// Agents that never start a capture (the scripted demo) have nothing to do with its progress.
    public func secureCapture(_ update: SecureCaptureUpdate) {}
    /// Agents that never transfer have nothing to do with its progress.
    public func transfer(_ update: TransferUpdate) {}
    /// The scripted demo never hears of opt-outs (the gateway's confirmation prompt speaks to the callee).
    public func optOut(_ update: OptOutUpdate) {}
    /// Scripted prompts and flows carry on; the gateway sends the caller nothing while held.
    public func hold(_ held: Bool) {}
}
