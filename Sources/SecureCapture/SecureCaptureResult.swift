/// Why a capture ended.
public enum SecureCaptureEnd: String, Sendable, Equatable {
    case finishKey, maxDigits, interDigitTimeout, totalTimeout
    /// The agent sent `stopSecureCapture`: what was captured is discarded.
    case stopped
    /// The call ended first: what was captured is discarded.
    case callEnded
}

/// The outcome of one capture as the agent and the call record may know it: never a key press, at most the
/// last four of a PAN-sized capture where the route allows it.
public struct SecureCaptureResult: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable {
        /// The sink took the digits (and usually gave a token).
        case success
        /// Too few digits, or the sink refused or could not be reached.
        case failure
        /// No key before the timeout, or the sink did not answer in time.
        case timeout
        /// Stopped by the agent or by the end of the call; nothing was submitted.
        case cancelled
    }

    public var status: Status
    public var endedBy: SecureCaptureEnd
    /// Keys captured (the finish key not included).
    public var count: Int
    /// Luhn and length check, when the capture was for a card number.
    public var luhnValid: Bool?
    public var last4: String?
    /// The sink's token for the digits.
    public var token: String?
    /// The sink's reference, else the agent's.
    public var reference: String?
    /// Why it failed, in words that never carry a key press.
    public var error: String?
    /// HTTP attempts made to the sink (0 when nothing was submitted).
    public var sinkAttempts = 0

    public init(
        status: Status, endedBy: SecureCaptureEnd, count: Int, luhnValid: Bool? = nil, last4: String? = nil,
        token: String? = nil, reference: String? = nil, error: String? = nil, sinkAttempts: Int = 0
    ) {
        self.status = status
        self.endedBy = endedBy
        self.count = count
        self.luhnValid = luhnValid
        self.last4 = last4
        self.token = token
        self.reference = reference
        self.error = error
        self.sinkAttempts = sinkAttempts
    }
}

/// What the agent is told during a capture, in order: started, one masked event per key, the result.
public enum SecureCaptureUpdate: Sendable, Equatable {
    case started(reference: String?)
    /// A key was captured: the agent sees `*` per key so far, never the key.
    case digit(count: Int)
    case result(SecureCaptureResult)
}
