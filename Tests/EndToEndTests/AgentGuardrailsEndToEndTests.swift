import Crypto
import Foundation
import Media
import NIOCore
import NIOPosix
import Testing
import TrunklineTestSupport

/// The gateway's guardrails around a remote agent, with sipp as the caller: connect retry, upgrade credentials,
/// an agent crashing, falling silent, running too long or flooding audio, and the time to first audio per turn.
@Suite("Agent guardrails end to end", .serialized)
struct AgentGuardrailsEndToEndTests {
    static let localTrunk = CallFlowTests.localTrunk

    @Test func aRestartingAgentIsReachedOnTheRetryAndCredentialsAreCheckedOnTheUpgrade() async throws {
        let token = "e2e-bearer-token"
        let authToken = "e2e-twilio-auth-token"
        let restarting = try await RecordingAgentServer.start(behavior: .refuseThenAccept(refusals: 1, status: 503))
        let guarded = try await RecordingAgentServer.start(authorize: { head in
            if head.headers["Authorization"] == ["Bearer \(token)"] { return true }
            let url = "ws://" + (head.headers["Host"].first ?? "") + head.uri
            let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(url.utf8), using: SymmetricKey(data: Array(authToken.utf8)))
            return head.headers["X-Twilio-Signature"] == [Data(mac).base64EncodedString()]
        })
        let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: Self.localTrunk,
            routes: """
                  - name: restarting
                    match: { exact: "restarting" }
                    agent: { url: "\(restarting.url())" }
                  - name: bearer
                    match: { exact: "bearer" }
                    agent: { url: "\(guarded.url())", auth: { bearer_token: "\(token)" } }
                  - name: signed
                    match: { exact: "signed" }
                    agent: { url: "\(guarded.url(path: "/twilio?x=1"))", auth: { twilio_auth_token: "\(authToken)" } }
                  - name: anonymous
                    match: { exact: "anonymous" }
                    agent: { url: "\(guarded.url())" }
                """,
            extraConfig: "agent_connect_backoff_ms: 200")
        for service in ["restarting", "bearer", "signed"] {
            let result = try await Sipp.run(scenario: "hold.xml", gatewayPort: gateway.sipPort, service: service, holdMilliseconds: 1500)
            #expect(result.exitCode == 0, "\(service): \(result.output)")
        }
        let refused = try await Sipp.run(
            scenario: "fallback_bye.xml", gatewayPort: gateway.sipPort, service: "anonymous", keys: ["rtp_sink": "\(sink.port)"])
        #expect(refused.exitCode == 0, "a refused agent must give the fallback and a BYE: \(refused.output)")

        let records = try await gateway.waitForCallRecords(4)
        #expect(records.map { $0["agent_connect_attempts"] as? Int } == [2, 1, 1, 1])
        for record in records.prefix(3) {
            #expect(record["agent_failure"] == nil, "\(record)")
            #expect(record["hangup_by"] as? String == "caller")
        }
        #expect((records[3]["agent_failure"] as? String)?.contains("HTTP 401") == true, "\(records[3])")
        #expect(restarting.requests.count == 2)
        #expect(guarded.requests == ["/stream", "/twilio?x=1", "/stream"])
        #expect(guarded.unauthorized == 1)
        // The credentials appear in no record and no log line.
        let written = try String(contentsOfFile: gateway.callRecordsPath, encoding: .utf8) + gateway.log
        #expect(!written.contains(token) && !written.contains(authToken))
        await sink.close()
        try await restarting.shutdown()
        try await guarded.shutdown()
    }

    @Test func anAgentThatCrashesMidCallGivesTheFallbackAndACleanBye() async throws {
        let call = try await AgentCall.start()
        try await call.connection.abort()
        let record = try await call.finish()
        #expect(call.sink.snapshot.audible >= 120, "the fallback prompt (≈ 3.5 s) was heard: \(call.sink.snapshot.audible) audible packets")
        #expect((record["agent_failure"] as? String)?.contains("mid-call") == true, "\(record)")
        #expect(record["hangup_by"] as? String == "gateway")
    }

    @Test func aSilentAgentFailsOverToTheFallbackAndALongSessionEndsAtItsLimit() async throws {
        let agent = try await RecordingAgentServer.start()
        let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: Self.localTrunk,
            routes: """
                  - name: silent
                    match: { exact: "silent" }
                    agent: { url: "\(agent.url())", silence_timeout_s: 1 }
                  - name: capped
                    match: { exact: "capped" }
                    agent: { url: "\(agent.url())", max_duration_s: 2 }
                """)
        for service in ["silent", "capped"] {
            async let call = Sipp.run(
                scenario: "fallback_bye.xml", gatewayPort: gateway.sipPort, service: service, keys: ["rtp_sink": "\(sink.port)"])
            let connection = try await agent.waitForConnection(timeout: .seconds(10))
            // The agent says nothing; the gateway ends its part with `stop`.
            let stop = try await connection.waitForEvent(named: "stop", timeout: .seconds(10))
            #expect(stop["stop"]?["callSid"]?.string != nil)
            let result = try await call
            #expect(result.exitCode == 0, "\(service): \(result.output)")
        }
        let records = try await gateway.waitForCallRecords(2)
        #expect((records[0]["agent_failure"] as? String)?.contains("no media or mark for 1 s") == true, "\(records[0])")
        #expect(records[0]["hangup_by"] as? String == "gateway")
        #expect(records[1]["agent_failure"] == nil, "\(records[1])")
        #expect(records[1]["hangup_by"] as? String == "gateway")
        #expect(records[1]["hangup_reason"] as? String == "maximum session duration of 2 s reached")
        let duration = records[1]["duration_s"] as? Double ?? 0
        #expect((1.9...3.0).contains(duration), "session lasted \(duration) s")
        await sink.close()
        try await agent.shutdown()
    }

    @Test func anAgentFloodingAMinuteOfAudioIsHeldToTheBufferCapAndTheOverflowIsRecorded() async throws {
        let call = try await AgentCall.start(agentOptions: ", max_buffer_s: 5")
        // 60 s of audio in one burst of half-second messages, then hang up.
        let halfSecond = makeMuLawTone(frequency: 500, amplitude: 8000, count: 4000)
        for _ in 0..<120 { try await call.connection.sendMedia(muLaw: halfSecond) }
        try await call.connection.sendText(#"{"event":"hangup","hangup":{"reason":"flood sent"}}"#)
        let record = try await call.finish()
        let overflow = record["agent_audio_overflow_ms"] as? Int ?? 0
        let peak = record["playout_peak_ms"] as? Int ?? 0
        print("flood of 60 s into a 5 s buffer: \(overflow) ms dropped, \(peak) ms queued at most")
        // Whatever was played while the burst arrived made room; the rest beyond 5 s was dropped.
        #expect((53_000...55_000).contains(overflow), "overflow \(overflow) ms")
        #expect((4_900...5_000).contains(peak), "peak buffer \(peak) ms")
        #expect(record["hangup_reason"] as? String == "flood sent")
        #expect(call.gateway.log.contains("agent audio runs too far ahead"))
    }

    @Test func timeToFirstAudioIsRecordedPerCallerTurn() async throws {
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: Self.localTrunk,
            routes: "  - name: bot\n    agent: { url: \"\(agent.url())\", turn_end_ms: 400 }")
        // Three spoken words (the espeak-ng prompts), each followed by 1.5 s of silence.
        var pcap = RTPPcap()
        for word in ["digit-1.wav", "digit-2.wav", "digit-3.wav"] {
            let samples = try WAVFile.load(path: GatewayProcess.packageRoot.appendingPathComponent("prompts/\(word)").path).samples
            pcap.audio(samples.map(MuLawReference.encode))
            pcap.audio([UInt8](repeating: 0xFF, count: 12_000))
        }
        let directory = gateway.directory
        let pcapPath = directory.appendingPathComponent("turns.pcap").path
        try pcap.write(to: pcapPath)
        let scenario = try Sipp.callScenario(
            media: "      m=audio [media_port] RTP/AVP 0\n      a=rtpmap:0 PCMU/8000",
            part: "  <nop><action><exec play_pcap_audio=\"\(pcapPath)\"/></action></nop>", ending: .awaitBye,
            in: directory, name: "turns")
        async let call = Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "bot")

        // The agent answers each word 600 ms after the caller's audio fell silent, as it heard it.
        let replyDelay = TimeAmount.milliseconds(600)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        for turn in 0..<3 {
            let messages = try await connection.waitUntil(timeout: .seconds(15)) { Self.speechEnds(in: $0).count > turn }
            let end = Self.speechEnds(in: messages)[turn]
            try await loop.scheduleTask(deadline: end + replyDelay) {}.futureResult.get()
            try await connection.sendMedia(muLaw: makeMuLawTone(frequency: 600, amplitude: 8000, count: 2400))
        }
        try await connection.sendText(#"{"event":"hangup","hangup":{"reason":"three turns answered"}}"#)
        let result = try await call
        #expect(result.exitCode == 0, "\(result.output)")

        let record = try #require(try await gateway.waitForCallRecords(1).first)
        let turns = try #require(record["ttfa_ms"] as? [Int], "\(record)")
        print("time to first audio for a 600 ms reply delay: \(turns) ms")
        #expect(turns.count == 3, "\(turns)")
        #expect(turns.allSatisfy { (450...800).contains($0) }, "TTFA \(turns) ms for a 600 ms reply delay")
        let p50 = try #require(record["ttfa_p50_ms"] as? Int)
        let p95 = try #require(record["ttfa_p95_ms"] as? Int)
        #expect(p50 == turns.sorted()[1] && p95 == turns.max())
        try await agent.shutdown()
    }

    /// When each run of audible caller audio (as the agent received it) fell silent for 200 ms: the arrival time of
    /// its first silent frame.
    static func speechEnds(in messages: [RecordingAgentServer.ReceivedMessage]) -> [NIODeadline] {
        var ends: [NIODeadline] = []
        var speaking = false
        var quietFrames = 0
        var quietSince = NIODeadline.uptimeNanoseconds(0)
        for message in messages where message.event == "media" {
            guard let payload = Data(base64Encoded: message["media"]?["payload"]?.string ?? "") else { continue }
            let audible = payload.contains { abs(Int(MuLawReference.decode($0))) > 500 }
            if audible {
                speaking = true
                quietFrames = 0
            } else if speaking {
                if quietFrames == 0 { quietSince = message.receivedAt }
                quietFrames += 1
                if quietFrames == 10 {
                    ends.append(quietSince)
                    speaking = false
                    quietFrames = 0
                }
            }
        }
        return ends
    }
}

/// One call to a one-route gateway whose agent is a `RecordingAgentServer`: sipp calls with `fallback_bye.xml`
/// (it waits for the gateway's BYE, its media port an `RTPSink`), and the test speaks as the agent.
private struct AgentCall {
    let agent: RecordingAgentServer
    let sink: RTPSink
    let gateway: GatewayProcess
    /// The agent's stream, past `start`.
    let connection: RecordingAgentServer.Connection
    let caller: Task<Sipp.Result, Error>

    /// - Parameter agentOptions: appended to the route's `agent:` mapping (e.g. `, max_buffer_s: 5`).
    static func start(agentOptions: String = "") async throws -> AgentCall {
        let agent = try await RecordingAgentServer.start()
        let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: CallFlowTests.localTrunk,
            routes: "  - name: bot\n    agent: { url: \"\(agent.url())\"\(agentOptions) }")
        let port = gateway.sipPort
        let caller = Task {
            try await Sipp.run(scenario: "fallback_bye.xml", gatewayPort: port, service: "bot", keys: ["rtp_sink": "\(sink.port)"])
        }
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        _ = try await connection.waitForEvent(named: "start")
        return AgentCall(agent: agent, sink: sink, gateway: gateway, connection: connection, caller: caller)
    }

    /// Waits for sipp (it must have got its BYE) and returns the call's record; closes the agent and the sink.
    func finish() async throws -> [String: Any] {
        let result = try await caller.value
        #expect(result.exitCode == 0, "\(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        await sink.close()
        try await agent.shutdown()
        return record
    }
}
