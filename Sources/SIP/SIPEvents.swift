/// Identifies one call leg (one nua handle) across the sofia boundary. Only this id leaves the `SIP` module.
public struct SIPCallLegID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "leg-\(rawValue)" }
}

/// The transport a request arrived on.
public enum SIPTransport: String, Sendable {
    case udp, tcp
}

/// Where a request came from: the packet's source, not anything the request claims about itself.
public struct SIPSource: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var transport: SIPTransport

    public init(host: String, port: Int, transport: SIPTransport) {
        self.host = host
        self.port = port
        self.transport = transport
    }
}

/// A name-addr header reduced to what routing needs.
public struct SIPNameAddress: Sendable, Equatable {
    /// The whole header value as received (for records and the agent).
    public var text: String
    /// The URI's user part (the number, for a phone call), if any.
    public var user: String?
    public var host: String?

    public init(text: String, user: String?, host: String?) {
        self.text = text
        self.user = user
        self.host = host
    }
}

/// A new INVITE, as plain values. The gateway must answer it with `SIPEndpoint.respond`.
public struct IncomingInvite: Sendable {
    public var leg: SIPCallLegID
    public var callID: String
    /// User part of the Request-URI: the called number.
    public var requestUser: String?
    public var from: SIPNameAddress
    public var to: SIPNameAddress
    public var source: SIPSource
    public var contentType: String?
    /// Body types the caller accepts in responses (Accept), nil when it sent no Accept header.
    public var acceptedBodyTypes: [String]?
    public var body: String?
    /// Extension headers (X-*, Diversion, …) in arrival order, as sofia did not parse them itself; each value
    /// cut to 1 KiB.
    public var extensionHeaders: [(name: String, value: String)]
    /// `Identity` header values (RFC 8224), whole: a signature cannot be checked on a cut copy.
    public var identityHeaders: [String]
    /// The P-Asserted-Identity value, if any (the caller's network-asserted identity; may carry `verstat`).
    public var assertedIdentity: String?
}

/// How a call leg ended.
public enum SIPTermination: Sendable, Equatable {
    /// The peer sent BYE.
    case remoteBye
    /// We sent BYE.
    case localBye
    /// The caller sent CANCEL before we answered (sofia answered 487).
    case cancelled
    /// We rejected the INVITE with this final status.
    case rejected(status: Int)
    /// The dialog failed (no ACK, transport error) with the status sofia reported.
    case failed(status: Int, phrase: String)
}

/// Events from the SIP endpoint, delivered on the sofia thread: hand them off, do not block.
public enum SIPEvent: Sendable {
    case invite(IncomingInvite)
    /// The ACK for our 2xx arrived: the call is up.
    case established(SIPCallLegID)
    /// A DTMF key from an in-dialog SIP INFO (already answered 200).
    case infoDigit(SIPCallLegID, Character, durationMs: Int?)
    /// The leg is gone; its id will not be used again.
    case terminated(SIPCallLegID, SIPTermination)
}
