/// Identifies one call leg (one nua handle) across the sofia boundary. Only this id leaves the `SIP` module.
public struct SIPCallLegID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "leg-\(rawValue)" }
}

/// The transport a request arrived on.
public enum SIPTransport: String, Sendable {
    case udp, tcp, tls
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
    /// The whole Request-URI, as a digest response must name it.
    public var requestURI: String
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
    /// `Authorization` header values (digest credentials answering our challenge), at most 4.
    public var authorization: [String]
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
    /// Our INVITE got this final error from the far end (busy, declined, not found, …).
    case declined(status: Int, phrase: String)
    /// We cancelled our INVITE before it was answered (ring timeout, hang-up request).
    case cancelledByUs
}

/// Events from the SIP endpoint, delivered on the sofia thread: hand them off, do not block.
public enum SIPEvent: Sendable {
    case invite(IncomingInvite)
    /// The ACK for our 2xx arrived (incoming call), or we sent the ACK for theirs (outgoing): the call is up.
    case established(SIPCallLegID)
    /// Our INVITE is making progress (180 Ringing, 183 Session Progress), with the early-media SDP if any.
    case progress(SIPCallLegID, status: Int, sdp: String?)
    /// Our INVITE was answered (2xx) with this SDP answer; sofia sends the ACK.
    case answered(SIPCallLegID, sdp: String?)
    /// A re-INVITE on an established call, with its SDP offer (nil for an offerless one). Answer it with
    /// `SIPEndpoint.respond` (200 with our SDP, or 488 — which leaves the call as it was).
    case reinvite(SIPCallLegID, sdp: String?)
    /// A DTMF key from an in-dialog SIP INFO (already answered 200).
    case infoDigit(SIPCallLegID, Character, durationMs: Int?)
    /// Progress of a REFER sent with `SIPEndpoint.refer`: its answer, then its NOTIFYs.
    case refer(SIPCallLegID, ReferProgress)
    /// The leg is gone; its id will not be used again.
    case terminated(SIPCallLegID, SIPTermination)
    /// A registration we keep changed state (registered, refreshed, failed and retrying).
    case registration(name: String, RegistrationStatus)
}

/// A new call we place: everything the INVITE carries, as text sofia parses.
public struct OutgoingInvite: Sendable {
    /// Request-URIs to try in order, e.g. `sip:+15551230000@198.51.100.7:5060`; the next is used only when
    /// one draws no answer (408, 503), never once the callee was reached.
    public var requestURIs: [String]
    /// From and To header values (sofia adds the tags).
    public var from: String
    public var to: String
    /// Ours, so the call record names it before sofia sends anything.
    public var callID: String
    public var sdp: String
    /// Extra header lines, `Name: value` (P-Asserted-Identity, Privacy, Identity, X-…).
    public var headers: [String]
    /// Used to answer a 401/407 challenge, once.
    public var credentials: DigestCredentials?
    /// An attempt that draws no response within this time goes to the next Request-URI (as a 408 would);
    /// nil leaves it to sofia's Timer B.
    public var responseTimeout: Duration?

    public init(
        requestURIs: [String], from: String, to: String, callID: String, sdp: String, headers: [String] = [],
        credentials: DigestCredentials? = nil, responseTimeout: Duration? = nil
    ) {
        self.responseTimeout = responseTimeout
        self.callID = callID
        precondition(!requestURIs.isEmpty, "an INVITE needs a Request-URI")
        self.requestURIs = requestURIs
        self.from = from
        self.to = to
        self.sdp = sdp
        self.headers = headers
        self.credentials = credentials
    }
}

/// A digest username and password for a trunk (RFC 3261 §22). Its description never shows the password.
public struct DigestCredentials: Sendable, Equatable, CustomStringConvertible {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    public var description: String { "DigestCredentials(\(username), password: <redacted>)" }
}
