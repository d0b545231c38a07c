import Agent
import Foundation
import NIOCore
import Testing

@testable import Gateway

/// The agent's guardrail keys in the configuration and dialplan, and the turn-latency arithmetic.
@Suite struct AgentGuardrailsConfigurationTests {
    let base = ConfigurationTests()

    @Test func routeGuardrailsAndConnectRetriesAreRead() throws {
        setenv("TRUNKLINE_TEST_AGENT_TOKEN", "from-the-environment", 1)
        let config = try base.load(
            "agent_connect_attempts: 3\nagent_connect_backoff_ms: 250\n" + base.minimal,
            dialplan: """
                routes:
                  - name: bot
                    match: { exact: "bot" }
                    agent:
                      url: "ws://127.0.0.1:8765/ws"
                      auth: { bearer_token_env: TRUNKLINE_TEST_AGENT_TOKEN }
                      silence_timeout_s: 20
                      max_duration_s: 600
                      max_buffer_s: 15
                      turn_end_ms: 700
                  - name: twilio
                    agent: { url: "ws://127.0.0.1:8766/ws", auth: { twilio_auth_token: "abc123" } }
                """)
        #expect(config.agentConnectAttempts == 3)
        #expect(config.agentConnectBackoffMilliseconds == 250)
        let bot = config.dialplan.routes[0].agentSettings
        #expect(bot.authorization == .bearer(token: "from-the-environment"))
        #expect(bot.silenceTimeoutSeconds == 20)
        #expect(bot.maxDurationSeconds == 600)
        #expect(bot.maxBufferSeconds == 15)
        #expect(bot.turnEndMilliseconds == 700)
        let twilio = config.dialplan.routes[1].agentSettings
        #expect(twilio.authorization == .twilioSignature(authToken: "abc123"))
        #expect(twilio.silenceTimeoutSeconds == 0)
        #expect(twilio.maxDurationSeconds == AgentRouteSettings.defaultMaxDurationSeconds)
        #expect(twilio.maxBufferSeconds == AgentRouteSettings.defaultMaxBufferSeconds)
    }

    @Test func defaultsRetryOnceAfterHalfASecond() throws {
        let config = try base.load(base.minimal)
        #expect(config.agentConnectAttempts == 2)
        #expect(config.agentConnectBackoffMilliseconds == 500)
    }

    @Test func badGuardrailsAreErrorsWithTheirLine() {
        let route = "routes:\n  - name: bot\n    agent:\n      url: \"ws://127.0.0.1:1/ws\"\n"
        base.expectError(base.minimal, dialplan: route + "      max_bufer_s: 5\n", line: 5, containing: "unknown key 'max_bufer_s'")
        base.expectError(base.minimal, dialplan: route + "      max_buffer_s: 0\n", line: 5, containing: "outside 1...600")
        base.expectError(
            base.minimal, dialplan: route + "      auth: { bearer_token: a, twilio_auth_token: b }\n", line: 5, containing: "exactly one of")
        base.expectError(
            base.minimal, dialplan: route + "      auth: { bearer_token_env: TRUNKLINE_TEST_UNSET_VARIABLE }\n", line: 5,
            containing: "TRUNKLINE_TEST_UNSET_VARIABLE is not set")
        base.expectError(base.minimal, dialplan: route + "      auth: { bearer_token: \"two words\" }\n", line: 5, containing: "without spaces")
        base.expectError("agent_connect_attempts: 0\n" + base.minimal, line: 1, containing: "outside 1...5")
    }
}

@Suite struct TurnLatencyTests {
    static let start = NIODeadline.uptimeNanoseconds(5_000_000_000)
    static func at(_ ms: Int) -> NIODeadline { start + .milliseconds(Int64(ms)) }

    /// Feeds 20 ms frames: `speech` ms of speech from `from`, then silence until `until`.
    static func turn(_ latency: inout TurnLatency, from: Int, speech: Int, until: Int) {
        for ms in stride(from: from, to: until, by: 20) { latency.callerFrame(isSpeech: ms < from + speech, at: at(ms)) }
    }

    @Test func timeToFirstAudioRunsFromTheEndOfSpeechToTheAgentsFirstAudio() {
        var latency = TurnLatency(turnEndMilliseconds: 200)
        Self.turn(&latency, from: 0, speech: 1000, until: 1400)  // speech ends at 1000, the turn at 1200
        latency.agentAudio(at: Self.at(1650))
        latency.agentAudio(at: Self.at(1700))  // the rest of the same answer
        Self.turn(&latency, from: 3000, speech: 500, until: 4000)
        latency.agentAudio(at: Self.at(3900))
        #expect(latency.milliseconds == [650, 400])
    }

    @Test func audioDuringThePauseCountsOnceThePauseEndsTheTurn() {
        var latency = TurnLatency(turnEndMilliseconds: 500)
        Self.turn(&latency, from: 0, speech: 600, until: 800)  // pausing since 600
        latency.agentAudio(at: Self.at(750))
        Self.turn(&latency, from: 800, speech: 0, until: 1300)  // the pause reaches 500 ms at 1100
        #expect(latency.milliseconds == [150])
    }

    @Test func aTurnTheCallerResumesOrTheAgentNeverAnswersIsNotCounted() {
        var latency = TurnLatency(turnEndMilliseconds: 200)
        Self.turn(&latency, from: 0, speech: 400, until: 1000)  // ended, never answered
        Self.turn(&latency, from: 1000, speech: 400, until: 1700)  // ends at 1400, the turn at 1580
        latency.agentAudio(at: Self.at(1600))
        #expect(latency.milliseconds == [200])
    }

    @Test func percentilesAreNearestRank() {
        let values = [300, 100, 200, 400, 1000, 500, 600, 700, 800, 900]
        #expect(TurnLatency.percentile(50, of: values) == 500)
        #expect(TurnLatency.percentile(95, of: values) == 1000)
        #expect(TurnLatency.percentile(50, of: [42]) == 42)
        #expect(TurnLatency.percentile(95, of: []) == nil)
    }
}
