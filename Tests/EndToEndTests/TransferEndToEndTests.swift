import Foundation
import Media
import NIOPosix
import Testing
import TrunklineTestSupport

/// Transfer to a human with real peers: sipp is the caller's carrier (answering the REFER, or refusing it) and the
/// human the gateway calls; the test's WebSocket server is the agent; UDP sockets stand in for each side's ears.
@Suite("Transfer to a human", .serialized)
struct TransferEndToEndTests {
    static let route = "bot"

    static func routes(agent: RecordingAgentServer, fallback: String? = nil) -> String {
        var text = "  - name: \(route)\n    agent: { url: \"\(agent.url(path: "/ws"))\" }"
        if let fallback { text += "\n    fallback: { transfer_to: \"\(fallback)\" }" }
        return text
    }

    /// The gateway on the local trunk (symmetric RTP off, so each side's media goes to its SDP's port) with the
    /// agent's route.
    static func gateway(agent: RecordingAgentServer, fallback: String? = nil) async throws -> GatewayProcess {
        try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: CallFlowTests.localTrunk, routes: routes(agent: agent, fallback: fallback))
    }

    /// The human: sipp answering (with `header` required in its INVITE), hearing on the returned socket.
    static func answeringHuman(requiring header: String, holdMilliseconds: Int) async throws -> (Sipp.Running, RTPSink) {
        let ears = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let sipp = try await Sipp.serve(
            scenario: try humanScenario(requiring: header), holdMilliseconds: holdMilliseconds, keys: ["rtp_sink": "\(ears.port)"])
        return (sipp, ears)
    }

    /// The agent's WebSocket for the next call, once its `start` has arrived.
    static func startedConnection(_ agent: RecordingAgentServer) async throws -> RecordingAgentServer.Connection {
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        _ = try await connection.waitForEvent(named: "start")
        return connection
    }

    /// The human's scenario, requiring `header` (a regular expression, XML-escaped) in its INVITE.
    static func humanScenario(requiring header: String) throws -> String {
        let text = try String(contentsOf: Sipp.scenarios.appendingPathComponent("transfer_human.xml"), encoding: .utf8)
        return try OutboundCallTests.writeScenario(text.replacingOccurrences(of: "EXPECTED_HEADER", with: header), name: "human")
    }

    /// A caller that plays 7 s of speech toward the gateway, hears on `sink` and waits for the gateway's BYE.
    static func speakingCaller(sink: RTPSink, name: String) throws -> (path: String, directory: URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("transfer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = try Sipp.callScenario(
            media: "      m=audio \(sink.port) RTP/AVP 8\n      a=rtpmap:8 PCMA/8000",
            part: "  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/g711a.pcap\"/></action></nop>",
            ending: .awaitBye, in: directory, name: name)
        return (path, directory)
    }

    static func statuses(_ updates: [RecordingAgentServer.ReceivedMessage]) -> [String] {
        updates.map { $0["transfer"]?["status"]?.string ?? "?" }
    }

    /// Agent `media` messages whose μ-law payload is louder than near-silence.
    static func audibleMedia(_ messages: [RecordingAgentServer.ReceivedMessage]) -> Int {
        messages.filter { message in
            guard message.event == "media", let payload = message["media"]?["payload"]?.string,
                  let bytes = Data(base64Encoded: payload) else { return false }
            var pcm = [Int16](repeating: 0, count: bytes.count)
            bytes.withUnsafeBytes { raw in pcm.withUnsafeMutableBufferPointer { G711Law.muLaw.decode(raw, into: $0) } }
            return (pcm.map { abs(Int($0)) }.max() ?? 0) > 500
        }.count
    }

    // MARK: - Blind transfer by REFER

    @Test func aBlindTransferByREFERReportsProgressAndEndsTheCallAsTransferred() async throws {
        let agent = try await RecordingAgentServer.start()
        defer { Task { try await agent.shutdown() } }
        let gateway = try await Self.gateway(agent: agent)
        defer { gateway.stop() }
        let template = try String(contentsOf: Sipp.scenarios.appendingPathComponent("transfer_refer_accepted.xml"), encoding: .utf8)
        // The headers travel as URI headers of Refer-To, percent-encoded, in name order.
        let scenario = try OutboundCallTests.writeScenario(template.replacingOccurrences(
            of: "REFER_TO_PATTERN",
            with: "^ *&lt;sip:desk@example\\.test\\?User-to-User=00ff%3Bencoding%3Dhex&amp;X-Case=42&gt;"), name: "refer")
        async let sipp = Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "agent", timeoutSeconds: 30)

        let connection = try await Self.startedConnection(agent)
        try await connection.sendText(
            #"{"event":"transfer","transfer":{"target":"sip:desk@example.test","headers":{"X-Case":"42","User-to-User":"00ff;encoding=hex"}}}"#)
        let updates = try await connection.waitForEvents(named: "transfer", count: 3, timeout: .seconds(10))
        #expect(Self.statuses(updates) == ["accepted", "trying", "completed"])
        #expect(updates[0]["transfer"]?["sipStatus"] == .number(202))
        #expect(updates[2]["transfer"]?["sipStatus"] == .number(200))
        _ = try await connection.waitForEvent(named: "stop", timeout: .seconds(10))

        let result = try await sipp
        #expect(result.exitCode == 0, "\(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        let transfers = try #require(record["transfers"] as? [[String: Any]])
        #expect(transfers.count == 1)
        #expect(transfers[0]["target"] as? String == "sip:desk@example.test")
        #expect(transfers[0]["mode"] as? String == "blind")
        #expect(transfers[0]["method"] as? String == "refer")
        #expect(transfers[0]["outcome"] as? String == "transferred")
        #expect(transfers[0]["sip_status"] as? Int == 200)
        #expect(transfers[0]["headers"] as? [String] == ["User-to-User", "X-Case"])
        #expect(record["hangup_by"] as? String == "gateway")
        #expect(record["hangup_reason"] as? String == "transferred to sip:desk@example.test")
        #expect(!(try String(contentsOfFile: gateway.callRecordsPath, encoding: .utf8)).contains("00ff"), "header values stay out of the record")
    }

    @Test func aPasswordInTheTargetStaysOutOfRecordsAndLogs() async throws {
        let agent = try await RecordingAgentServer.start()
        defer { Task { try await agent.shutdown() } }
        let gateway = try await Self.gateway(agent: agent)
        defer { gateway.stop() }
        let template = try String(contentsOf: Sipp.scenarios.appendingPathComponent("transfer_refer_accepted.xml"), encoding: .utf8)
        let scenario = try OutboundCallTests.writeScenario(
            template.replacingOccurrences(of: "REFER_TO_PATTERN", with: "sip:desk:s3cret-pw@example\\.test"), name: "refer-secret")
        async let sipp = Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "agent", timeoutSeconds: 30)
        let connection = try await Self.startedConnection(agent)
        try await connection.sendText(#"{"event":"transfer","transfer":{"target":"sip:desk:s3cret-pw@example.test"}}"#)
        _ = try await connection.waitForEvent(named: "stop", timeout: .seconds(10))
        #expect(try await sipp.exitCode == 0)
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        let transfers = try #require(record["transfers"] as? [[String: Any]])
        #expect(transfers[0]["target"] as? String == "sip:desk@example.test")
        #expect(!(try String(contentsOfFile: gateway.callRecordsPath, encoding: .utf8)).contains("s3cret-pw"))
        #expect(!gateway.log.contains("s3cret-pw"))
    }

    // MARK: - REFER refused: the gateway bridges

    @Test func aRefusedREFERBridgesTheCallerToTheHumanWithAudioBothWays() async throws {
        let agent = try await RecordingAgentServer.start()
        defer { Task { try await agent.shutdown() } }
        let callerEars = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let (human, humanEars) = try await Self.answeringHuman(requiring: "X-Case: 42", holdMilliseconds: 4000)
        defer { human.stop() }
        let gateway = try await Self.gateway(agent: agent)
        defer { gateway.stop() }
        async let caller = Sipp.run(
            scenario: "transfer_refer_refused.xml", gatewayPort: gateway.sipPort, service: "agent", keys: ["rtp_sink": "\(callerEars.port)"],
            timeoutSeconds: 30)

        let connection = try await Self.startedConnection(agent)
        try await connection.sendText(
            #"{"event":"transfer","transfer":{"target":"sip:desk@127.0.0.1:\#(human.port)","headers":{"X-Case":"42"}}}"#)
        let updates = try await connection.waitForEvents(named: "transfer", count: 3, timeout: .seconds(10))
        #expect(Self.statuses(updates) == ["trying", "ringing", "completed"])
        #expect(updates[0]["transfer"]?["sipStatus"] == .number(603))
        // The agent leaves once the caller is bridged.
        _ = try await connection.waitForEvent(named: "stop", timeout: .seconds(5))

        // Each side hears the other: the caller's speech at the human's port, the human's at the caller's.
        _ = try await humanEars.wait(for: "the caller's speech at the human") { $0.audible >= 50 }
        _ = try await callerEars.wait(for: "the human's speech at the caller") { $0.audible >= 50 }

        let humanResult = await human.result()
        #expect(humanResult.exitCode == 0, "\(humanResult.output)")
        let callerResult = try await caller
        #expect(callerResult.exitCode == 0, "the human's BYE ends the caller's call too: \(callerResult.output)")

        let records = try await gateway.waitForCallRecords(2)
        let original = try #require(records.first { $0["direction"] as? String == "inbound" })
        let leg = try #require(records.first { $0["direction"] as? String == "transfer" })
        let transfers = try #require(original["transfers"] as? [[String: Any]])
        #expect(transfers[0]["mode"] as? String == "blind")
        #expect(transfers[0]["method"] as? String == "bridge")
        #expect(transfers[0]["outcome"] as? String == "bridged")
        #expect(transfers[0]["leg_call_sid"] as? String == leg["call_sid"] as? String)
        #expect(original["hangup_by"] as? String == "transfer-target")
        #expect(leg["parent_call_sid"] as? String == original["call_sid"] as? String)
        #expect(leg["hangup_by"] as? String == "callee")
        #expect(leg["answer_time"] != nil)
        #expect(leg["codec"] as? String == "PCMA")
        await callerEars.close()
        await humanEars.close()
    }

    @Test func aBusyTargetReturnsTheCallToTheAgent() async throws {
        let agent = try await RecordingAgentServer.start()
        defer { Task { try await agent.shutdown() } }
        let callerEars = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let human = try await Sipp.serve(scenario: try OutboundCallTests.refusingScenario(status: "486 Busy Here"))
        defer { human.stop() }
        let gateway = try await Self.gateway(agent: agent)
        defer { gateway.stop() }
        let (scenario, directory) = try Self.speakingCaller(sink: callerEars, name: "busy")
        defer { try? FileManager.default.removeItem(at: directory) }
        async let caller = Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "agent", timeoutSeconds: 30)

        let connection = try await Self.startedConnection(agent)
        try await connection.sendText(#"{"event":"transfer","transfer":{"target":"sip:desk@127.0.0.1:\#(human.port)","mode":"bridge"}}"#)
        let updates = try await connection.waitForEvents(named: "transfer", count: 3, timeout: .seconds(10))
        #expect(Self.statuses(updates) == ["trying", "ringing", "failed"])
        #expect(updates[2]["transfer"]?["sipStatus"] == .number(486))
        let mediaAtFailure = connection.received.filter { $0.event == "media" }.count

        // The call is the agent's again: caller audio keeps coming, and the agent's audio reaches the caller.
        _ = try await connection.waitUntil(timeout: .seconds(5)) { $0.filter { $0.event == "media" }.count >= mediaAtFailure + 50 }
        try await connection.sendMedia(muLaw: CallFlowTests.toneMuLaw)
        _ = try await callerEars.wait(for: "the agent's tone at the caller") { $0.audible >= 25 }
        try await connection.sendText(#"{"event":"hangup","hangup":{"reason":"done"}}"#)
        #expect(try await caller.exitCode == 0)
        #expect(await human.result().exitCode == 0)

        let records = try await gateway.waitForCallRecords(2)
        let original = try #require(records.first { $0["direction"] as? String == "inbound" })
        let leg = try #require(records.first { $0["direction"] as? String == "transfer" })
        let transfers = try #require(original["transfers"] as? [[String: Any]])
        #expect(transfers[0]["outcome"] as? String == "failed")
        #expect(transfers[0]["sip_status"] as? Int == 486)
        #expect(original["hangup_by"] as? String == "agent")
        #expect(leg["outcome"] as? String == "busy")
        #expect(leg["sip_status"] as? Int == 486)
        #expect(leg["parent_call_sid"] as? String == original["call_sid"] as? String)
        await callerEars.close()
    }

    @Test func aFlowsTransferThatFindsTheHumanBusyGoesOnAtItsFailureStep() async throws {
        let callerEars = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let human = try await Sipp.serve(scenario: try OutboundCallTests.refusingScenario(status: "486 Busy Here"))
        defer { human.stop() }
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: CallFlowTests.localTrunk, routes: """
                  - name: \(Self.route)
                    flow:
                      steps:
                        - transfer: { to: "sip:desk@127.0.0.1:\(human.port)", mode: bridge, headers: { X-Case: "7" }, on_failure: busy }
                        - hangup: "not reached"
                        - label: busy
                          hangup: "the desk is busy"
                """)
        defer { gateway.stop() }
        let (scenario, directory) = try Self.speakingCaller(sink: callerEars, name: "flow-busy")
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try await Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "agent", timeoutSeconds: 30).exitCode == 0)
        #expect(await human.result().exitCode == 0)

        let records = try await gateway.waitForCallRecords(2)
        let original = try #require(records.first { $0["direction"] as? String == "inbound" })
        let transfers = try #require(original["transfers"] as? [[String: Any]])
        #expect(transfers[0]["outcome"] as? String == "failed")
        #expect(transfers[0]["sip_status"] as? Int == 486)
        #expect(transfers[0]["requested_by"] as? String == "agent")
        #expect(original["hangup_reason"] as? String == "the desk is busy")
        await callerEars.close()
    }

    // MARK: - Attended

    @Test func anAttendedTransferConsultsTheHumanThenConnectsTheCaller() async throws {
        let agent = try await RecordingAgentServer.start()
        defer { Task { try await agent.shutdown() } }
        let callerEars = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let (human, humanEars) = try await Self.answeringHuman(requiring: "INVITE sip:desk@", holdMilliseconds: 5000)
        defer { human.stop() }
        let gateway = try await Self.gateway(agent: agent)
        defer { gateway.stop() }
        let (scenario, directory) = try Self.speakingCaller(sink: callerEars, name: "attended")
        defer { try? FileManager.default.removeItem(at: directory) }
        async let caller = Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "agent", timeoutSeconds: 30)

        let connection = try await Self.startedConnection(agent)
        try await connection.sendText(#"{"event":"transfer","transfer":{"target":"sip:desk@127.0.0.1:\#(human.port)","mode":"attended"}}"#)
        let consult = try await connection.waitForEvents(named: "transfer", count: 3, timeout: .seconds(10))
        #expect(Self.statuses(consult) == ["trying", "ringing", "answered"])
        let beforeConsult = connection.received.count

        // Consult: the agent's tone reaches the human, the human's speech reaches the agent, the caller hears nothing.
        try await connection.sendMedia(muLaw: CallFlowTests.toneMuLaw)
        _ = try await humanEars.wait(for: "the agent's tone at the human") { $0.audible >= 25 }
        _ = try await connection.waitUntil(timeout: .seconds(5)) { Self.audibleMedia(Array($0.dropFirst(beforeConsult))) >= 25 }
        #expect(callerEars.snapshot.audible == 0, "the caller is on hold during the consult")

        try await connection.sendText(#"{"event":"transfer","transfer":{"action":"connect"}}"#)
        let done = try await connection.waitForEvents(named: "transfer", count: 4, timeout: .seconds(5))
        #expect(done[3]["transfer"]?["status"]?.string == "completed")
        _ = try await connection.waitForEvent(named: "stop", timeout: .seconds(5))
        _ = try await callerEars.wait(for: "the human's speech at the caller") { $0.audible >= 25 }

        #expect(await human.result().exitCode == 0)
        #expect(try await caller.exitCode == 0)
        let records = try await gateway.waitForCallRecords(2)
        let original = try #require(records.first { $0["direction"] as? String == "inbound" })
        let transfers = try #require(original["transfers"] as? [[String: Any]])
        #expect(transfers[0]["mode"] as? String == "attended")
        #expect(transfers[0]["outcome"] as? String == "bridged")
        await callerEars.close()
        await humanEars.close()
    }

    /// A number goes out through the call's trunk (its `outbound` addresses); an agent that asked to listen keeps the
    /// caller's audio after the bridge and gets `stop` only when the call ends.
    @Test func aNumberIsDialledThroughTheTrunkAndAListeningAgentKeepsTheCallersAudio() async throws {
        let agent = try await RecordingAgentServer.start()
        defer { Task { try await agent.shutdown() } }
        let callerEars = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let (human, humanEars) = try await Self.answeringHuman(requiring: "INVITE sip:\\+15550009999@127\\.0\\.0\\.1:", holdMilliseconds: 3000)
        defer { human.stop() }
        let trunk = """
              - name: carrier
                allow: [127.0.0.0/8]
                symmetric_rtp: false
                outbound:
                  addresses: ["127.0.0.1:\(human.port)"]
                  health_check_interval_s: 0
            """
        let gateway = try await GatewayProcess(rtpPorts: try FreePort.udpRange(count: 10), trunks: trunk, routes: Self.routes(agent: agent))
        defer { gateway.stop() }
        async let caller = Sipp.run(
            scenario: "transfer_refer_refused.xml", gatewayPort: gateway.sipPort, service: "agent", keys: ["rtp_sink": "\(callerEars.port)"],
            timeoutSeconds: 30)

        let connection = try await Self.startedConnection(agent)
        try await connection.sendText(#"{"event":"transfer","transfer":{"target":"+15550009999","agent":"listen"}}"#)
        let updates = try await connection.waitForEvents(named: "transfer", count: 3, timeout: .seconds(10))
        #expect(Self.statuses(updates) == ["trying", "ringing", "completed"])
        let atBridge = connection.received.count
        _ = try await humanEars.wait(for: "the caller's speech at the human") { $0.audible >= 25 }
        // Still listening: caller audio keeps coming, and no stop until the human's BYE ends the call.
        let listened = try await connection.waitUntil(timeout: .seconds(5)) { Self.audibleMedia(Array($0.dropFirst(atBridge))) >= 25 }
        #expect(!listened.contains { $0.event == "stop" })
        _ = try await connection.waitForEvent(named: "stop", timeout: .seconds(10))

        #expect(await human.result().exitCode == 0)
        #expect(try await caller.exitCode == 0)
        let records = try await gateway.waitForCallRecords(2)
        let original = try #require(records.first { $0["direction"] as? String == "inbound" })
        let leg = try #require(records.first { $0["direction"] as? String == "transfer" })
        #expect((original["transfers"] as? [[String: Any]])?.first?["target"] as? String == "+15550009999")
        #expect(leg["to"] as? String == "+15550009999")
        #expect(leg["trunk"] as? String == "carrier")
        await callerEars.close()
        await humanEars.close()
    }

    /// An agent that drops during a consult does not leave the caller on hold: the caller is connected to the human.
    @Test func anAgentThatLeavesDuringAConsultConnectsTheCallerToTheHuman() async throws {
        let agent = try await RecordingAgentServer.start()
        defer { Task { try await agent.shutdown() } }
        let callerEars = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let (human, humanEars) = try await Self.answeringHuman(requiring: "INVITE sip:desk@", holdMilliseconds: 4000)
        defer { human.stop() }
        let gateway = try await Self.gateway(agent: agent)
        defer { gateway.stop() }
        let (scenario, directory) = try Self.speakingCaller(sink: callerEars, name: "consult-drop")
        defer { try? FileManager.default.removeItem(at: directory) }
        async let caller = Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "agent", timeoutSeconds: 30)

        let connection = try await Self.startedConnection(agent)
        try await connection.sendText(#"{"event":"transfer","transfer":{"target":"sip:desk@127.0.0.1:\#(human.port)","mode":"attended"}}"#)
        _ = try await connection.waitForEvents(named: "transfer", count: 3, timeout: .seconds(10))
        try await connection.sendClose()
        _ = try await callerEars.wait(for: "the human's speech at the caller") { $0.audible >= 25 }
        _ = try await humanEars.wait(for: "the caller's speech at the human") { $0.audible >= 25 }

        #expect(await human.result().exitCode == 0)
        #expect(try await caller.exitCode == 0)
        let records = try await gateway.waitForCallRecords(2)
        let original = try #require(records.first { $0["direction"] as? String == "inbound" })
        #expect((original["transfers"] as? [[String: Any]])?.first?["outcome"] as? String == "bridged")
        #expect(original["hangup_by"] as? String == "transfer-target")
        await callerEars.close()
        await humanEars.close()
    }

    // MARK: - Route fallback

    @Test func aRouteWhoseAgentIsUnreachableTransfersAfterItsPrompt() async throws {
        let unreachable = try await RecordingAgentServer.start()
        try await unreachable.shutdown()
        let callerEars = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let (human, humanEars) = try await Self.answeringHuman(requiring: "INVITE sip:desk@", holdMilliseconds: 2000)
        defer { human.stop() }
        let gateway = try await Self.gateway(agent: unreachable, fallback: "sip:desk@127.0.0.1:\(human.port)")
        defer { gateway.stop() }
        // The caller refuses REFER, so the fallback bridges.
        async let caller = Sipp.run(
            scenario: "transfer_refer_refused.xml", gatewayPort: gateway.sipPort, service: "agent", keys: ["rtp_sink": "\(callerEars.port)"],
            timeoutSeconds: 40)
        _ = try await humanEars.wait(for: "the caller's speech at the human", timeout: .seconds(25)) { $0.audible >= 25 }
        #expect(await human.result().exitCode == 0)
        #expect(try await caller.exitCode == 0)
        let records = try await gateway.waitForCallRecords(2)
        let original = try #require(records.first { $0["direction"] as? String == "inbound" })
        let transfers = try #require(original["transfers"] as? [[String: Any]])
        #expect(transfers[0]["requested_by"] as? String == "route-fallback")
        #expect(transfers[0]["outcome"] as? String == "bridged")
        #expect((original["agent_failure"] as? String ?? "").contains("unreachable"))
        await callerEars.close()
        await humanEars.close()
    }
}
