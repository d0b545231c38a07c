import Foundation
import SecureCapture

/// `secure_capture:` as written globally (in trunkline.yaml) or on a route (in the dialplan); a route's fields
/// override the global ones.
public struct SecureCaptureSettings: Sendable {
    public var sink: PaymentSinkConfiguration?
    public var revealLast4: Bool?
    /// Route only: capture from the moment the call is answered.
    public var onAnswer: SecureCaptureOptions?

    public init() {}

    /// The policy a call on a route gets: the route's settings over the global ones.
    public static func policy(global: SecureCaptureSettings, route: SecureCaptureSettings?) -> SecureCapturePolicy {
        SecureCapturePolicy(
            sink: route?.sink ?? global.sink, allowLast4: route?.revealLast4 ?? global.revealLast4 ?? false,
            onAnswer: route?.onAnswer)
    }

    static func parse(_ node: ConfigNode, onRoute: Bool) throws -> SecureCaptureSettings {
        let fields = try node.mapping(allowed: onRoute ? ["sink", "reveal_last4", "on_answer"] : ["sink", "reveal_last4"])
        var settings = SecureCaptureSettings()
        if let sink = fields["sink"] { settings.sink = try parseSink(sink) }
        if let reveal = fields["reveal_last4"] { settings.revealLast4 = try reveal.bool() }
        if let onAnswer = fields["on_answer"] { settings.onAnswer = try parseOptions(onAnswer) }
        return settings
    }

    private static func parseSink(_ node: ConfigNode) throws -> PaymentSinkConfiguration {
        let fields = try node.mapping(allowed: ["url", "secret", "secret_env", "timeout_ms", "retries", "backoff_ms", "allow_http"])
        let url = try fields["url"].required("url", in: node).string()
        let secret = try ConfigNode.secret(
            fields["secret"], env: fields["secret_env"], in: node, what: "secret or secret_env (the sink's HMAC-SHA256 key)")
        var sink = PaymentSinkConfiguration(url: url, secret: Array(secret.utf8))
        if let timeout = fields["timeout_ms"] { sink.timeout = .milliseconds(Int64(try timeout.int(in: 100...60_000))) }
        if let retries = fields["retries"] { sink.retries = try retries.int(in: 0...5) }
        if let backoff = fields["backoff_ms"] { sink.backoff = .milliseconds(Int64(try backoff.int(in: 1...10_000))) }
        if let allow = fields["allow_http"] { sink.allowHTTP = try allow.bool() }
        if let problem = sink.problem() { throw node.error(problem) }
        return sink
    }

    private static func parseOptions(_ node: ConfigNode) throws -> SecureCaptureOptions {
        let fields = try node.mapping(allowed: [
            "max_digits", "min_digits", "finish_key", "timeout_ms", "inter_digit_timeout_ms", "reveal_last4", "reference",
            "card_number",
        ])
        var options = SecureCaptureOptions()
        if let value = fields["max_digits"] { options.maxDigits = try value.int(in: 1...SecureCaptureOptions.maximumDigitsLimit) }
        if let value = fields["min_digits"] { options.minDigits = try value.int(in: 1...SecureCaptureOptions.maximumDigitsLimit) }
        if let value = fields["finish_key"] {
            let key = try value.string()
            guard key.count <= 1 else { throw value.error("finish_key must be one DTMF key (quote \"#\") or \"\" for none") }
            options.finishKey = key.first
        }
        if let value = fields["timeout_ms"] { options.totalTimeout = .milliseconds(Int64(try value.int(in: 1...900_000))) }
        if let value = fields["inter_digit_timeout_ms"] { options.interDigitTimeout = .milliseconds(Int64(try value.int(in: 1...300_000))) }
        if let value = fields["reveal_last4"] { options.revealLast4 = try value.bool() }
        if let value = fields["reference"] { options.reference = try value.string() }
        if let value = fields["card_number"] { options.cardNumber = try value.bool() }
        do {
            return try options.validated()
        } catch {
            throw node.error("\(error)")
        }
    }
}
