import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Where captured digits go: a tokenization service's webhook. Per route or global (`secure_capture.sink`).
public struct PaymentSinkConfiguration: Sendable {
    /// The webhook, `https://…` (or `http://…` only with `allowHTTP`, for tests on loopback).
    public var url: String
    /// HMAC-SHA256 key for the signature header.
    public var secret: [UInt8]
    /// Limit for one attempt (connect, send, answer).
    public var timeout = PaymentSinkConfiguration.defaultTimeout
    /// Attempts after the first when the sink cannot be reached, times out, or answers 408, 429 or 5xx.
    public var retries = PaymentSinkConfiguration.defaultRetries
    /// Pause before the first retry, doubled before each further one.
    public var backoff = PaymentSinkConfiguration.defaultBackoff
    public var allowHTTP = false

    /// A tokenizer answers in well under a second; 5 s leaves room for a slow TLS start.
    public static let defaultTimeout = TimeAmount.seconds(5)
    /// Two retries ride out a restart or a dropped connection without keeping the caller waiting long.
    public static let defaultRetries = 2
    public static let defaultBackoff = TimeAmount.milliseconds(250)

    public init(url: String, secret: [UInt8]) {
        self.url = url
        self.secret = secret
    }

    /// Why the configuration cannot be used (never mentions the secret).
    public func problem() -> String? {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), parsed.host != nil else {
            return "sink url '\(url)' is not an absolute URL"
        }
        if scheme == "http", !allowHTTP { return "sink url must be https (http only with allow_http: true, for tests)" }
        guard scheme == "https" || scheme == "http" else { return "sink url must be https" }
        if secret.count < 16 { return "sink secret must be at least 16 bytes" }
        return nil
    }
}

/// How a submission ended, and after how many HTTP attempts.
public struct PaymentSinkOutcome: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// 2xx: the sink took the digits; its token and reference, when its JSON answer had them.
        case accepted(token: String?, reference: String?)
        /// A definite no (4xx other than 408/429, or an answer that cannot be used).
        case refused(String)
        /// Every attempt timed out (the last one did).
        case timedOut
        /// Connection failures or 5xx until the retries ran out.
        case unreachable(String)
    }

    public var kind: Kind
    public var attempts: Int

    public init(kind: Kind, attempts: Int) {
        self.kind = kind
        self.attempts = attempts
    }
}

/// Posts captured digits to the payment sink: a JSON body signed with HMAC-SHA256, each attempt bounded by the
/// timeout, retried with doubling backoff. Redirects are not followed (a redirect must not take card data
/// elsewhere); the HTTP client's own logging is off, so no body reaches a log.
///
/// Request: `POST <url>`, `Content-Type: application/json`,
/// `X-Trunkline-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, `Idempotency-Key: <id>` (the same on every
/// attempt, so a sink that saw a retried request twice charges once), body
/// `{"id":"SC…","callSid":"CA…","reference":"…","digits":"…","count":16,"timestamp":1764000000}`.
/// Answer: any 2xx; a JSON object's `token` and `reference` strings (≤ 256 characters) are passed to the agent.
///
/// Thread-safe.
public final class WebhookPaymentSink: Sendable {
    /// Longest token or reference passed on from the sink's answer.
    static let maximumFieldLength = 256
    /// Largest answer read from the sink.
    static let maximumResponseBytes = 64 * 1024
    public static let signatureHeader = "X-Trunkline-Signature"

    public let configuration: PaymentSinkConfiguration
    private let client: HTTPClient
    private let clock: any Clock<Duration>
    /// The HTTP client never logs: a trace-level request dump would carry the body.
    private static let silent = Logger(label: "trunkline.payment-sink", factory: { _ in SwiftLogNoOpLogHandler() })

    fileprivate init(configuration: PaymentSinkConfiguration, client: HTTPClient, clock: any Clock<Duration>) {
        self.configuration = configuration
        self.client = client
        self.clock = clock
    }

    /// Submits `digits`, retrying as configured. Never throws and never puts a digit in its outcome.
    public func submit(_ digits: CapturedDigits, callSid: String, reference: String?, now: Date = Date()) async -> PaymentSinkOutcome {
        let id = Self.submissionID()
        let body = Self.body(id: id, callSid: callSid, reference: reference, digits: digits, timestamp: Int(now.timeIntervalSince1970))
        let signature = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: configuration.secret))
        var request = HTTPClientRequest(url: configuration.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Trunkline")
        request.headers.add(name: "Idempotency-Key", value: id)
        request.headers.add(name: Self.signatureHeader, value: "sha256=" + signature.map { Self.hex($0) }.joined())

        var attempt = 0
        var delay = configuration.backoff
        while true {
            attempt += 1
            request.body = .bytes(body)
            let kind = await self.attempt(request, digits: digits)
            let retryable: Bool
            switch kind {
            case .timedOut, .unreachable: retryable = true
            case .accepted, .refused: retryable = false
            }
            guard retryable, attempt <= configuration.retries else { return PaymentSinkOutcome(kind: kind, attempts: attempt) }
            do {
                try await clock.sleep(for: .nanoseconds(delay.nanoseconds))
            } catch {
                return PaymentSinkOutcome(kind: kind, attempts: attempt)
            }
            delay = delay + delay
        }
    }

    private func attempt(_ request: HTTPClientRequest, digits: CapturedDigits) async -> PaymentSinkOutcome.Kind {
        do {
            let response = try await client.execute(request, deadline: .now() + configuration.timeout, logger: Self.silent)
            let status = Int(response.status.code)
            let answer = try await response.body.collect(upTo: Self.maximumResponseBytes)
            switch status {
            case 200..<300:
                return Self.accepted(Array(buffer: answer), digits: digits)
            case 408, 429, 500..<600:
                return .unreachable("payment sink answered HTTP \(status)")
            default:
                return .refused("payment sink refused the submission: HTTP \(status)")
            }
        } catch let error as HTTPClientError {
            switch error {
            case .connectTimeout, .readTimeout, .deadlineExceeded, .writeTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return .timedOut
            default:
                return .unreachable("payment sink unreachable: \(error)")
            }
        } catch is NIOTooManyBytesError {
            return .refused("payment sink answer exceeds \(Self.maximumResponseBytes) bytes")
        } catch {
            return .unreachable("payment sink unreachable: \(error)")
        }
    }

    /// The token and reference of a 2xx answer; an answer that repeats the captured digits is refused (the agent
    /// would get them), as is one with over-long fields.
    static func accepted(_ answer: [UInt8], digits: CapturedDigits) -> PaymentSinkOutcome.Kind {
        guard !answer.isEmpty, let object = try? JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any] else {
            return .accepted(token: nil, reference: nil)
        }
        let token = object["token"] as? String
        let reference = object["reference"] as? String
        for field in [token, reference].compactMap({ $0 }) {
            guard field.count <= maximumFieldLength, field.allSatisfy({ $0.isASCII && !$0.isNewline }) else {
                return .refused("payment sink answer has a token or reference that is too long or not printable ASCII")
            }
            if DigitLeak.contains(field, runOf: digits) {
                return .refused("payment sink answer repeats the captured digits; discarded")
            }
        }
        return .accepted(token: token, reference: reference)
    }

    /// The request body, built byte by byte so the digits never become a `String`.
    static func body(id: String, callSid: String, reference: String?, digits: CapturedDigits, timestamp: Int) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(256)
        body += Array(#"{"id":"#.utf8)
        appendJSONString(id, to: &body)
        body += Array(#","callSid":"#.utf8)
        appendJSONString(callSid, to: &body)
        body += Array(#","reference":"#.utf8)
        if let reference { appendJSONString(reference, to: &body) } else { body += Array("null".utf8) }
        body += Array(#","digits":""#.utf8)
        digits.withUnsafeKeys { body.append(contentsOf: $0) }
        body += Array(#"","count":\#(digits.count),"timestamp":\#(timestamp)}"#.utf8)
        return body
    }

    private static func appendJSONString(_ value: String, to body: inout [UInt8]) {
        body.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                body += [UInt8(ascii: "\\"), byte]
            case 0..<0x20:
                body += Array(String(format: "\\u%04x", byte).utf8)
            default:
                body.append(byte)
            }
        }
        body.append(UInt8(ascii: "\""))
    }

    private static func submissionID() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = (generator.next() as UInt64, generator.next() as UInt64)
        return "SC" + String(format: "%016llx%016llx", value.0, value.1)
    }

    private static func hex(_ byte: UInt8) -> String {
        String(format: "%02x", byte)
    }
}

/// The HTTP client every payment sink shares: no redirects, no decompression, HTTP/1.1. Thread-safe; call
/// `shutdown()` once when done.
public final class PaymentSinkClient: Sendable {
    private let client: HTTPClient

    public init() {
        var http = HTTPClient.Configuration(
            tlsConfiguration: nil, redirectConfiguration: .disallow, timeout: .init(), decompression: .disabled)
        http.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
    }

    /// A sink posting to `configuration`'s webhook; `clock` is what its retry backoff waits on.
    public func sink(for configuration: PaymentSinkConfiguration, clock: any Clock<Duration> = ContinuousClock()) -> WebhookPaymentSink {
        WebhookPaymentSink(configuration: configuration, client: client, clock: clock)
    }

    public func shutdown() {
        try? client.syncShutdown()
    }
}

/// Whether text carries a run of more than four consecutive captured keys (how the sink's answer is checked
/// before the agent may see it).
public enum DigitLeak {
    /// Runs longer than this may not appear anywhere but the sink (four: the most PCI DSS 3.4.1 allows shown).
    public static let allowedRun = 4

    /// Whether `text` contains any `allowedRun + 1` consecutive keys of `digits`.
    public static func contains(_ text: String, runOf digits: CapturedDigits) -> Bool {
        let window = allowedRun + 1
        guard digits.count >= window else { return false }
        let haystack = Array(text.utf8)
        return digits.withUnsafeKeys { keys in
            for start in 0...(keys.count - window) {
                let needle = keys[start..<(start + window)]
                if haystack.count >= window,
                   (0...(haystack.count - window)).contains(where: { haystack[$0..<($0 + window)].elementsEqual(needle) }) {
                    return true
                }
            }
            return false
        }
    }
}
