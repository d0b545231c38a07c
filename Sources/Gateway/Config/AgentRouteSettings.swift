import Agent
import Foundation

/// A route's guardrails for its agent (the `agent:` mapping besides `url`): upgrade credentials, how long the
/// agent may stay silent, how long a session may last, how much audio it may queue ahead, and when a caller's
/// turn counts as ended for latency measurement.
public struct AgentRouteSettings: Sendable {
    /// Sent on the WebSocket upgrade: a bearer token or a Twilio signature (`auth`).
    public var authorization: AgentAuthorization?
    /// The agent sending no media or mark for this long (and nothing of its audio left to play) counts as a
    /// failure: fallback prompt, then BYE. 0 (the default) never does: a bot may wait long for a silent caller.
    public var silenceTimeoutSeconds = 0
    /// The call ends with BYE at this length (from the answer), the agent told `stop`. 0: no limit.
    public var maxDurationSeconds = AgentRouteSettings.defaultMaxDurationSeconds
    /// Agent audio queued ahead of playout beyond this many seconds is dropped and counted.
    public var maxBufferSeconds = AgentRouteSettings.defaultMaxBufferSeconds
    /// Caller silence that ends a turn (voice activity detection), from which time to first audio is measured.
    public var turnEndMilliseconds = AgentRouteSettings.defaultTurnEndMilliseconds

    /// Four hours: no real conversation is longer; a stuck call (a bot and an answering machine talking to each
    /// other) is stopped before it costs a day of minutes.
    public static let defaultMaxDurationSeconds = 14_400
    /// A minute: more than any agent needs to run ahead (Pipecat runs ≈ 2× real time, a realtime API sends a whole
    /// reply at once), little enough that a flooding agent costs a call at most ≈ 1 MB at 8 kHz (2.9 MB at 24 kHz).
    public static let defaultMaxBufferSeconds = 60
    /// Long enough not to split a sentence at a breath, short enough that a reply does not seem to lag.
    public static let defaultTurnEndMilliseconds = 500

    public init() {}

    /// Keys of the `agent:` mapping this reads (besides `url`).
    static let keys = ["auth", "silence_timeout_s", "max_duration_s", "max_buffer_s", "turn_end_ms"]

    /// Reads the guardrail keys of a route's `agent:` mapping.
    static func parse(_ fields: [String: ConfigNode]) throws -> AgentRouteSettings {
        var settings = AgentRouteSettings()
        if let auth = fields["auth"] { settings.authorization = try parseAuthorization(auth) }
        if let silence = fields["silence_timeout_s"] { settings.silenceTimeoutSeconds = try silence.int(in: 0...86_400) }
        if let duration = fields["max_duration_s"] { settings.maxDurationSeconds = try duration.int(in: 0...86_400) }
        if let buffer = fields["max_buffer_s"] { settings.maxBufferSeconds = try buffer.int(in: 1...600) }
        if let turn = fields["turn_end_ms"] { settings.turnEndMilliseconds = try turn.int(in: 100...5_000) }
        return settings
    }

    /// `auth: { bearer_token | bearer_token_env }` or `auth: { twilio_auth_token | twilio_auth_token_env }`.
    private static func parseAuthorization(_ node: ConfigNode) throws -> AgentAuthorization {
        let fields = try node.mapping(allowed: ["bearer_token", "bearer_token_env", "twilio_auth_token", "twilio_auth_token_env"])
        let bearer = fields["bearer_token"] != nil || fields["bearer_token_env"] != nil
        let twilio = fields["twilio_auth_token"] != nil || fields["twilio_auth_token_env"] != nil
        guard bearer != twilio else {
            throw node.error("auth needs exactly one of bearer_token(_env) or twilio_auth_token(_env)")
        }
        if bearer {
            let token = try ConfigNode.secret(fields["bearer_token"], env: fields["bearer_token_env"], in: node, what: "bearer_token or bearer_token_env")
            guard token.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline }) else {
                throw node.error("the bearer token must be printable ASCII without spaces")
            }
            return .bearer(token: token)
        }
        let token = try ConfigNode.secret(
            fields["twilio_auth_token"], env: fields["twilio_auth_token_env"], in: node, what: "twilio_auth_token or twilio_auth_token_env")
        return .twilioSignature(authToken: token)
    }
}

extension ConfigNode {
    /// A secret given inline or (better) named by an environment variable; exactly one of the two.
    static func secret(_ value: ConfigNode?, env: ConfigNode?, in parent: ConfigNode, what: String) throws -> String {
        switch (value, env) {
        case (let value?, nil):
            let text = try value.string()
            guard !text.isEmpty else { throw value.error("must not be empty") }
            return text
        case (nil, let name?):
            let variable = try name.string()
            guard let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty else {
                throw name.error("environment variable \(variable) is not set")
            }
            return text
        default:
            throw parent.error("needs exactly one of \(what)")
        }
    }
}
