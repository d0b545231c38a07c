/// How a call reaches the human a transfer asks for.
public enum TransferMode: String, Sendable, CaseIterable {
    /// REFER in the caller's dialog; if the far end refuses, the gateway calls the target and bridges.
    case blind
    /// The gateway calls the target itself and bridges the two calls' audio.
    case bridge
    /// The gateway calls the target; the agent talks to the human first (the caller hears silence), then connects.
    case attended
}

/// A SIP header to carry to the target: in Refer-To's URI headers (REFER) or in the INVITE (bridging).
public struct TransferHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A transfer as the agent asked for it; the gateway validates it before anything is sent.
public struct TransferRequest: Sendable, Equatable {
    /// A SIP URI (`sip:`/`sips:`) or an E.164 number (`+15551230000`), which goes out through the call's trunk.
    public var target: String
    public var headers: [TransferHeader]
    public var mode: TransferMode
    /// When the caller is bridged to the human: the agent keeps receiving the caller's audio (listen only)
    /// instead of getting `stop`.
    public var agentStays: Bool

    public init(target: String, headers: [TransferHeader] = [], mode: TransferMode = .blind, agentStays: Bool = false) {
        self.target = target
        self.headers = headers
        self.mode = mode
        self.agentStays = agentStays
    }
}

/// What the agent may ask about transfers.
public enum TransferCommand: Sendable, Equatable {
    case start(TransferRequest)
    /// Attended transfer: bridge the caller and the human (the agent leaves).
    case connect
    /// Attended or bridged transfer not yet connected: hang up on the human and return to the caller.
    case cancel
}

/// Progress of a transfer, reported to the agent.
public struct TransferUpdate: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// The far end accepted the REFER (202).
        case accepted
        /// The target is being called (NOTIFY 100, or the gateway's own INVITE, e.g. after a refused REFER).
        case trying
        case ringing
        /// Attended: the human answered; the agent now talks to them.
        case answered
        /// The caller is connected to the human (REFER: the far end reported 200; bridge: both legs joined).
        case completed
        /// The transfer did not happen; the call is back with the agent.
        case failed
        /// The agent cancelled it; the call is back with the agent.
        case cancelled
    }

    public var status: Status
    public var sipStatus: Int?
    public var reason: String?

    public init(_ status: Status, sipStatus: Int? = nil, reason: String? = nil) {
        self.status = status
        self.sipStatus = sipStatus
        self.reason = reason
    }
}
