import Foundation
import NIOPosix
import Testing
import TrunklineTestSupport

/// Real calls: the `trunkline` binary, sipp as the caller, a WebSocket agent server as the agent.
@Suite("End to end with sipp", .serialized)
struct CallFlowTests {
    static let localTrunk = "  - name: local\n    allow: [127.0.0.0/8]\n    symmetric_rtp: false"

    /// 1 s of a 1 kHz tone as μ-law, the way an agent's TTS would send it.
    static let toneMuLaw = makeMuLawTone(frequency: 1000, amplitude: 12000, count: 8000)

    @Test func aCallReachesTheRemoteAgentAndBack() async throws {
        let agent = try await RecordingAgentServer.start()
        let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: Self.localTrunk,
            routes: "  - name: bot\n    match: { prefix: \"agent\" }\n    agent: { url: \"\(agent.url(path: "/ws"))\" }")

        async let sippResult = Sipp.run(
            scenario: "call_pcap_dtmf.xml", gatewayPort: gateway.sipPort, service: "agent42", holdMilliseconds: 1500,
            keys: ["rtp_sink": "\(sink.port)"])

        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        #expect(connection.path == "/ws")
        let first = try await connection.waitUntil(timeout: .seconds(5)) { $0.count >= 2 }
        #expect(first[0].text == #"{"event":"connected","protocol":"Call","version":"1.0.0"}"#)
        let start = first[1]
        #expect(start.event == "start")
        #expect(start["sequenceNumber"]?.string == "1")
        let streamSid = try #require(start["start"]?["streamSid"]?.string)
        #expect(start["streamSid"]?.string == streamSid)
        #expect(streamSid.hasPrefix("MZ") && streamSid.count == 34)
        let callSid = try #require(start["start"]?["callSid"]?.string)
        #expect(callSid.hasPrefix("CA") && callSid.count == 34)
        #expect(start["start"]?["accountSid"]?.string == "AC" + String(repeating: "0", count: 32))
        #expect(start["start"]?["tracks"]?[0]?.string == "inbound")
        #expect(start["start"]?["mediaFormat"]?["encoding"]?.string == "audio/x-mulaw")
        #expect(start["start"]?["mediaFormat"]?["sampleRate"]?.number == 8000)
        #expect(start["start"]?["mediaFormat"]?["channels"]?.number == 1)
        let parameters = try #require(start["start"]?["customParameters"])
        #expect(parameters["from_number"]?.string == "+15551230001")
        #expect(parameters["from"]?.string == "+15551230001")
        #expect(parameters["to_number"]?.string == "agent42")
        #expect(parameters["to"]?.string == "agent42")
        #expect(parameters["trunk"]?.string == "local")
        #expect(parameters["route"]?.string == "bot")
        #expect(parameters["sip_call_id"]?.string?.isEmpty == false)

        // The agent speaks: 1 s of tone in Pipecat-sized 40 ms chunks, then a mark.
        for chunk in stride(from: 0, to: Self.toneMuLaw.count, by: 320) {
            try await connection.sendMedia(muLaw: Array(Self.toneMuLaw[chunk..<min(chunk + 320, Self.toneMuLaw.count)]))
        }
        try await connection.sendMark(name: "tone-done")
        let mark = try await connection.waitForEvent(named: "mark", timeout: .seconds(5))
        #expect(mark["mark"]?["name"]?.string == "tone-done")
        // The mark comes back only after the tone has been played out to the caller.
        #expect(sink.snapshot.audible >= 45, "caller heard \(sink.snapshot.audible) audible packets before the mark")

        let digits = try await connection.waitForEvents(named: "dtmf", count: 3, timeout: .seconds(15))
        #expect(digits.map { $0["dtmf"]?["digit"]?.string } == ["1", "2", "3"])
        #expect(digits.allSatisfy { $0["dtmf"]?["track"]?.string == "inbound_track" })
        let stop = try await connection.waitForEvent(named: "stop", timeout: .seconds(10))
        #expect(stop["stop"]?["callSid"]?.string == callSid)
        _ = try await connection.waitForClose(timeout: .seconds(5))

        let result = try await sippResult
        #expect(result.exitCode == 0, "\(result.output)")

        // What the agent heard: the caller's 30 ms A-law packets re-framed as 20 ms, 160-byte μ-law frames, in order.
        let media = connection.received.filter { $0.event == "media" }
        #expect(media.count >= 200, "agent got \(media.count) media frames")
        #expect(media.allSatisfy { Data(base64Encoded: $0["media"]?["payload"]?.string ?? "")?.count == 160 })
        #expect(media.allSatisfy { $0["media"]?["track"]?.string == "inbound" })
        let chunks = media.compactMap { Int($0["media"]?["chunk"]?.string ?? "") }
        #expect(chunks == Array(1...media.count))
        let sequence = connection.received.compactMap { Int($0["sequenceNumber"]?.string ?? "") }
        #expect(sequence == Array(1...sequence.count))

        let records = try await gateway.waitForCallRecords(1)
        let record = try #require(records.first)
        #expect(record["call_sid"] as? String == callSid)
        #expect(record["hangup_by"] as? String == "caller")
        #expect(record["codec"] as? String == "PCMA")
        #expect(record["sip_status"] as? Int == 200)
        #expect(record["digits_received"] as? Int == 3)
        // sipp plays ≈ 5 s of 30 ms A-law packets (it stops the audio when the first digit starts), then 30 DTMF packets.
        #expect((record["packets_in"] as? Int ?? 0) >= 180)
        #expect((record["packets_out"] as? Int ?? 0) >= 50)
        #expect((record["duration_s"] as? Double ?? 0) > 5)
        await sink.close()
        try await agent.shutdown()
    }

    @Test func digitsFromSIPInfoJoinTheSameStreamAndAPressSentTwoWaysCountsOnce() async throws {
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: Self.localTrunk,
            routes: "  - name: bot\n    agent: { url: \"\(agent.url(path: "/ws"))\" }")
        async let sippResult = Sipp.run(
            scenario: "info_dtmf.xml", gatewayPort: gateway.sipPort, service: "4000", holdMilliseconds: 1000,
            keys: ["rtp_sink": "4000"])
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        _ = try await connection.waitForEvent(named: "stop", timeout: .seconds(15))
        let result = try await sippResult
        #expect(result.exitCode == 0, "INFO must get 200 (415 for text/plain): \(result.output)")
        let digits = connection.received.filter { $0.event == "dtmf" }.map { $0["dtmf"]?["digit"]?.string }
        #expect(digits == ["1", "2", "3"])
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["digits_received"] as? Int == 3)
        try await agent.shutdown()
    }

    @Test func aTrustedCarriersVerdictReachesTheDialplanTheAgentAndTheRecord() async throws {
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20),
            trunks: "  - name: carrier\n    allow: [127.0.0.0/8]\n    trust_verstat: true",
            routes: """
                  - name: screen-failed
                    identity: [invalid]
                    reject: identity
                  - name: bot
                    agent: { url: "\(agent.url(path: "/ws"))" }
                """)
        // A failed verification is refused with the code the verdict maps to (438 Invalid Identity Header).
        let failed = try Self.rejectionScenario(
            status: 438, media: "m=audio [auto_media_port] RTP/AVP 0", headers: ["X-Twilio-VerStat: TN-Validation-Failed"])
        let refused = try await Sipp.run(scenario: failed, gatewayPort: gateway.sipPort, service: "1000")
        #expect(refused.exitCode == 0, "TN-Validation-Failed must be refused with 438: \(refused.output)")

        // A vouched-for caller reaches the agent, which sees the verdict in customParameters.
        async let passed = Sipp.run(
            scenario: "verstat_hold.xml", gatewayPort: gateway.sipPort, service: "1000", holdMilliseconds: 1000,
            keys: ["verstat": "TN-Validation-Passed-A"])
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        let start = try await connection.waitForEvent(named: "start")
        let parameters = try #require(start["start"]?["customParameters"])
        #expect(parameters["stir_status"]?.string == "valid")
        #expect(parameters["stir_attestation"]?.string == "A")
        #expect(parameters["stir_source"]?.string == "carrier")
        #expect(try await passed.exitCode == 0)

        let records = try await gateway.waitForCallRecords(2)
        #expect(records[0]["sip_status"] as? Int == 438)
        #expect(records[0]["stir_status"] as? String == "invalid")
        #expect(records[0]["route"] as? String == "screen-failed")
        #expect(records[1]["stir_status"] as? String == "valid")
        #expect(records[1]["stir_attestation"] as? String == "A")
        #expect(records[1]["stir_source"] as? String == "carrier")
        try await agent.shutdown()
    }

    @Test func overflowContextFromAContactCenterReachesTheAgentAndNothingElseDoes() async throws {
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20),
            trunks: "  - name: contact-center\n    allow: [127.0.0.0/8]\n    context_headers: [X-Queue]",
            routes: "  - name: bot\n    agent: { url: \"\(agent.url(path: "/ws"))\" }")
        async let call = Sipp.run(scenario: "overflow_hold.xml", gatewayPort: gateway.sipPort, service: "1000", holdMilliseconds: 500)
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        let start = try await connection.waitForEvent(named: "start")
        let parameters = try #require(start["start"]?["customParameters"])
        #expect(parameters["sip_diversion"]?.string == "<sip:+18005550199@cc.example>;reason=unconditional;counter=1")
        #expect(parameters["sip_history_info"]?.string == "<sip:+18005550199@cc.example>;index=1")
        #expect(parameters["sip_user_to_user"]?.string == "4f726465722d3432;encoding=hex")
        #expect(parameters["sip_user_to_user_text"]?.string == "Order-42")
        // The value arrives as one string; it neither adds nor overrides a parameter.
        #expect(parameters["sip_x_queue"]?.string == #"billing", "from_number": "+19995550000"#)
        #expect(parameters["from_number"]?.string == "+15551230001")
        // Not on the trunk's allow-list.
        #expect(parameters["sip_x_agent_secret"] == nil)
        #expect(try await call.exitCode == 0)
        try await agent.shutdown()
    }

    @Test func theDemoAgentGreetsReadsBackAndHangsUpOnPound() async throws {
        let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: Self.localTrunk,
            routes: "  - name: demo\n    embedded: demo")
        let result = try await Sipp.run(
            scenario: "demo_call.xml", gatewayPort: gateway.sipPort, service: "1000", keys: ["rtp_sink": "\(sink.port)"])
        #expect(result.exitCode == 0, "sipp must receive the gateway's BYE after '#': \(result.output)\n\(gateway.log)")
        // Greeting (6.5 s) + "one" + "two" + "pound" + goodbye, all before the BYE.
        #expect(sink.snapshot.audible >= 250, "caller heard \(sink.snapshot.audible) audible packets")
        #expect(sink.snapshot.payloadTypes == [8])
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["hangup_by"] as? String == "agent")
        #expect(record["agent"] as? String == "embedded:demo")
        #expect(record["digits_received"] as? Int == 3)
        await sink.close()
    }

    @Test func anUnreachableAgentGetsTheFallbackPromptAndACleanBye() async throws {
        let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let deadPort = try FreePort.sipPort()  // nothing listens there
        let refusing = try await RecordingAgentServer.start(behavior: .refuse(status: 503))
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: Self.localTrunk,
            routes: """
                  - name: down
                    match: { exact: "down" }
                    agent: { url: "ws://127.0.0.1:\(deadPort)/ws" }
                  - name: refusing
                    match: { exact: "refusing" }
                    agent: { url: "\(refusing.url())" }
                """)
        for service in ["down", "refusing"] {
            let result = try await Sipp.run(
                scenario: "fallback_bye.xml", gatewayPort: gateway.sipPort, service: service, keys: ["rtp_sink": "\(sink.port)"])
            #expect(result.exitCode == 0, "\(service): sipp must get a BYE after the fallback: \(result.output)")
        }
        // The fallback prompt (≈3.5 s) was heard on both calls.
        #expect(sink.snapshot.audible >= 2 * 120, "caller heard \(sink.snapshot.audible) audible packets")
        let records = try await gateway.waitForCallRecords(2)
        for record in records {
            #expect(record["hangup_by"] as? String == "gateway")
            #expect((record["agent_failure"] as? String)?.contains("unreachable") == true, "\(record)")
        }
        await sink.close()
        try await refusing.shutdown()
    }

    @Test func rejectionsCarryTheRightStatus() async throws {
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: "  - name: local\n    allow: [127.0.0.0/8]",
            routes: """
                  - name: demo
                    match: { exact: "1000" }
                    embedded: demo
                  - name: ringing
                    match: { exact: "ring" }
                    ring_ms: 60000
                    embedded: demo
                  - name: busy
                    match: { exact: "busy" }
                    reject: 486
                """)
        let pcmu = "m=audio [auto_media_port] RTP/AVP 0 101\n      a=rtpmap:101 telephone-event/8000"
        let g729 = "m=audio [auto_media_port] RTP/AVP 18\n      a=rtpmap:18 G729/8000"
        let cases: [(service: String, media: String, status: Int, reason: String)] = [
            ("999", pcmu, 404, "no route"),
            ("1000", g729, 488, "no common codec"),
            ("busy", pcmu, 486, "rejects"),
        ]
        for (service, media, status, reason) in cases {
            let scenario = try Self.rejectionScenario(status: status, media: media)
            let result = try await Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: service)
            #expect(result.exitCode == 0, "\(service) must get \(status): \(result.output)")
        }
        let cancel = try await Sipp.run(scenario: "cancel.xml", gatewayPort: gateway.sipPort, service: "ring", keys: ["rtp_sink": "4000"])
        #expect(cancel.exitCode == 0, "CANCEL while ringing must give 487: \(cancel.output)\n\(gateway.log)")

        let records = try await gateway.waitForCallRecords(4)
        for (record, expected) in zip(records, cases) {
            #expect(record["sip_status"] as? Int == expected.status)
            #expect((record["hangup_reason"] as? String)?.contains(expected.reason) == true, "\(record)")
        }
        #expect(records[3]["sip_status"] as? Int == 487)
        #expect(records[3]["hangup_by"] as? String == "caller")
    }

    @Test func anUnknownSourceIsForbidden() async throws {
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: "  - name: carrier\n    allow: [192.0.2.0/24]",
            routes: "  - name: demo\n    embedded: demo")
        let scenario = try Self.rejectionScenario(status: 403, media: "m=audio [auto_media_port] RTP/AVP 0")
        let result = try await Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "1000")
        #expect(result.exitCode == 0, "\(result.output)")
        try await gateway.waitForLog("matches no trunk")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["sip_status"] as? Int == 403)
    }

    @Test func fiftySimultaneousCallsCompleteAndReturnTheirPorts() async throws {
        // Exactly 50 even ports: a leaked port would make the second round fail with 503.
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 100), trunks: "  - name: local\n    allow: [127.0.0.0/8]",
            routes: "  - name: demo\n    embedded: demo")
        for round in 1...2 {
            let result = try await Sipp.run(
                scenario: "hold.xml", gatewayPort: gateway.sipPort, service: "1000", calls: 50, concurrent: 50, rate: 100,
                holdMilliseconds: 2000, timeoutSeconds: 60)
            #expect(result.exitCode == 0, "round \(round): \(result.output)")
            _ = try await gateway.waitForCallRecords(50 * round)
        }
        let records = try gateway.callRecords()
        #expect(records.count == 100)
        #expect(records.allSatisfy { $0["sip_status"] as? Int == 200 && $0["hangup_by"] as? String == "caller" })
    }

    @Test func sipOverTCPWorks() async throws {
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: "  - name: local\n    allow: [127.0.0.0/8]",
            routes: "  - name: demo\n    embedded: demo")
        let result = try await Sipp.run(scenario: "hold.xml", gatewayPort: gateway.sipPort, service: "1000", holdMilliseconds: 500, transport: "t1")
        #expect(result.exitCode == 0, "\(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect((record["source"] as? String)?.hasPrefix("tcp:") == true)
    }

    /// Writes the rejection scenario for one expected status and m= section into a temp file.
    static func rejectionScenario(status: Int, media: String, headers: [String] = []) throws -> String {
        let template = try String(contentsOf: Sipp.scenarios.appendingPathComponent("rejected.xml.template"), encoding: .utf8)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rejected-\(status)-\(UUID().uuidString).xml").path
        try template.replacingOccurrences(of: "EXPECTED_STATUS", with: "\(status)")
            .replacingOccurrences(of: "OFFER_MEDIA", with: media)
            .replacingOccurrences(of: "EXTRA_HEADERS", with: headers.map { "      \($0)\n" }.joined())
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
