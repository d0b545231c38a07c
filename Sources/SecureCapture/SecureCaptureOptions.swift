import NIOCore

/// How one secure capture runs: what ends it and what the agent may learn. Built from the agent's
/// `startSecureCapture` message or a route's `on_answer` settings, then checked by `validated()`.
public struct SecureCaptureOptions: Sendable, Equatable {
    /// No capture takes more keys than this (a 19-digit PAN with room to spare).
    public static let maximumDigitsLimit = 32
    /// Longest agent reference accepted (it goes to the sink and back to the agent).
    public static let maximumReferenceLength = 128

    /// The capture ends (and is submitted) when this many keys have been pressed.
    public var maxDigits = 19
    /// Fewer keys than this at the end is a failure, and nothing is submitted.
    public var minDigits = 1
    /// The key that ends the capture (not part of it); nil when only the count or a timeout ends it.
    public var finishKey: Character? = "#"
    /// Longest pause between two keys (and before the first) before the capture ends.
    public var interDigitTimeout = TimeAmount.seconds(5)
    /// Longest capture from start to end.
    public var totalTimeout = TimeAmount.seconds(60)
    /// Ask for the last four keys in the result; granted only where the route allows it and the capture is
    /// PAN-sized (≥ 12 keys), so a short secret (CVV, PIN) is never given back whole.
    public var revealLast4 = false
    /// The agent's own reference for this capture (an order id), passed to the sink and back.
    public var reference: String?
    /// Report `luhnValid` (Luhn checksum and a length of 12–19) in the result.
    public var cardNumber = false

    public init() {}

    /// Why options are unusable; the message names the field and never echoes key presses.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The options, or why they cannot run.
    public func validated() throws(Invalid) -> SecureCaptureOptions {
        guard (1...Self.maximumDigitsLimit).contains(maxDigits) else {
            throw Invalid("maxDigits must be 1...\(Self.maximumDigitsLimit)")
        }
        guard (1...maxDigits).contains(minDigits) else { throw Invalid("minDigits must be 1...maxDigits") }
        if let finishKey, !"0123456789*#ABCD".contains(finishKey) { throw Invalid("finishKey must be a DTMF key") }
        guard interDigitTimeout > .zero, interDigitTimeout <= .minutes(5) else {
            throw Invalid("interDigitTimeoutMs must be 1...300000")
        }
        guard totalTimeout > .zero, totalTimeout <= .minutes(15) else { throw Invalid("timeoutMs must be 1...900000") }
        if let reference {
            guard reference.count <= Self.maximumReferenceLength, reference.allSatisfy({ $0.isASCII && !$0.isNewline }) else {
                throw Invalid("reference must be at most \(Self.maximumReferenceLength) printable ASCII characters")
            }
        }
        return self
    }
}

/// What a route allows for secure capture, from the dialplan (with the global sink as default).
public struct SecureCapturePolicy: Sendable {
    /// Where captured digits go; without one, secure capture cannot start.
    public var sink: PaymentSinkConfiguration?
    /// Whether agents on this route may get the last four keys of a PAN-sized capture.
    public var allowLast4 = false
    /// Start a capture with these options as soon as the call is answered.
    public var onAnswer: SecureCaptureOptions?

    public init(sink: PaymentSinkConfiguration? = nil, allowLast4: Bool = false, onAnswer: SecureCaptureOptions? = nil) {
        self.sink = sink
        self.allowLast4 = allowLast4
        self.onAnswer = onAnswer
    }
}
