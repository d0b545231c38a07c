/// What came back from a REFER we sent (RFC 3515): the answer to the REFER itself, then the NOTIFYs of its
/// implied subscription, each carrying the status line of the transferee's INVITE as `message/sipfrag`.
public enum ReferProgress: Sendable, Equatable {
    /// The final answer to the REFER: 202 Accepted, or a refusal (405, 501, 603, …; sofia's own 408/503 when
    /// nothing answered).
    case answered(status: Int, phrase: String)
    /// A NOTIFY (already answered 200 by nua). `frag` is nil when the body was not a sipfrag status line;
    /// `terminated` when its Subscription-State ends the subscription (the last NOTIFY).
    case notified(frag: SIPFrag?, terminated: Bool)
}

/// The status line of a `message/sipfrag` body (RFC 3420), e.g. `SIP/2.0 180 Ringing`.
public struct SIPFrag: Sendable, Equatable {
    public var status: Int
    public var phrase: String

    public init(status: Int, phrase: String) {
        self.status = status
        self.phrase = phrase
    }

    /// The first line of `body` when it is a SIP status line (`SIP/2.0 SSS phrase`); nil otherwise. Headers after it
    /// are ignored; the phrase is cut to 100 characters and keeps printable characters only.
    public static func parse(_ body: String) -> SIPFrag? {
        // `isNewline`, not "\r"/"\n": CR LF is one Character.
        let firstLine = body.drop { $0.isNewline || $0 == " " }.prefix { !$0.isNewline }
        let parts = firstLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].uppercased() == "SIP/2.0", parts[1].count == 3,
              let status = Int(parts[1]), (100...699).contains(status) else { return nil }
        let phrase = parts.count > 2 ? String(parts[2].filter { $0.isASCII && !$0.isNewline && ($0.asciiValue ?? 0) >= 0x20 }.prefix(100)) : ""
        return SIPFrag(status: status, phrase: phrase)
    }
}
