/// Errors from the media layer. Compare with `==`, which looks at the code only.
public struct MediaError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// Every port of the RTP pool is handed out.
        case noFreePort
        /// Binding failed on several ports in a row because other programs hold them.
        case portsInUse
        /// A WAV file could not be read or is not 8 kHz mono 16-bit PCM.
        case invalidWAV
        /// The session was closed before the operation could run.
        case closed
        /// DTMF was asked for on a call that negotiated no RFC 4733 telephone-event.
        case noTelephoneEvent
        /// SRTP key parameters that cannot be used (malformed, wrong length, MKI); the message never holds the key.
        case invalidKey
        /// A C codec or crypto library refused to set up (the message names the call and its error code).
        case libraryFailure
    }

    public let code: Code
    /// What happened, for logs (never carries audio or digits).
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: MediaError, rhs: MediaError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
