import Foundation
import Testing
import TrunklineTestSupport

/// The agent's `sendDigits` reaches a real caller on each transport, and what arrived is decoded back into keys:
/// RFC 4733 events from the RTP, in-band tones from the audio (spandsp's detector), SIP INFO bodies checked by
/// sipp itself.
@Suite("Gateway sends DTMF", .serialized)
struct DTMFSendingTests {
    static let sent = "15w9*0#"
    static let keys = sent.filter { $0 != "w" }

    enum Transport: String, CaseIterable {
        case rfc4733, inband, info
    }

    @Test func theAgentsDigitsReachTheCallerOnEachTransport() async throws {
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: CallFlowTests.localTrunk,
            routes: """
                  - name: info
                    match: { exact: "info" }
                    dtmf: info
                    agent: { url: "\(agent.url(path: "/dtmf"))" }
                  - name: auto
                    agent: { url: "\(agent.url(path: "/dtmf"))" }
                """)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dtmf-send-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        for transport in Transport.allCases {
            let listener = try await DTMFListener()
            // The offer lacks telephone-event only for the in-band case; the INFO route answers without it anyway.
            let media = transport == .inband
                ? "      m=audio \(listener.port) RTP/AVP 0\n      a=rtpmap:0 PCMU/8000"
                : "      m=audio \(listener.port) RTP/AVP 0 101\n      a=rtpmap:0 PCMU/8000\n      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-16"
            let scenario = try Sipp.callScenario(
                media: media, part: transport == .info ? try Sipp.perKey("info_receive.xml.fragment", keys: Self.keys) : "",
                ending: transport == .info ? .callerBye : .awaitBye, in: directory, name: transport.rawValue)
            async let sipp = Sipp.run(
                scenario: scenario, gatewayPort: gateway.sipPort, service: transport == .info ? "info" : "auto", timeoutSeconds: 30)
            let connection = try await agent.waitForConnection(timeout: .seconds(10))
            _ = try await connection.waitForEvent(named: "start")
            try await connection.sendText(#"{"event":"sendDigits","sendDigits":{"digits":"\#(Self.sent)"}}"#)

            switch transport {
            case .rfc4733:
                // Each key: four packets of growing duration, then three end packets.
                let heard = try await listener.wait(for: "every event packet") { $0.eventPackets >= Self.keys.count * 7 }
                #expect(heard.events == Self.keys)
                #expect(heard.eventPackets == Self.keys.count * 7)
                #expect(heard.tones == "")
                try await connection.sendText(#"{"event":"hangup"}"#)
            case .inband:
                let heard = try await listener.wait(for: "\(Self.keys.count) tones") { $0.tones.count >= Self.keys.count }
                #expect(heard.tones == Self.keys)
                #expect(heard.eventPackets == 0)
                try await connection.sendText(#"{"event":"hangup"}"#)
            case .info:
                break  // sipp checks each INFO's Signal= in order, then hangs up
            }
            let result = try await sipp
            #expect(result.exitCode == 0, "\(transport): \(result.output)")
            if transport == .info {
                #expect(listener.snapshot.events == "" && listener.snapshot.tones == "", "INFO only: nothing in the RTP")
            }
            _ = try await connection.waitForEvent(named: "stop", timeout: .seconds(10))
            await listener.close()
        }
        try await agent.shutdown()
    }

    /// `dtmf: rfc4733` takes keys only from the RTP: of a caller's RFC 2833 "1" and INFO "1", "2", "3", the agent
    /// gets the "1" alone.
    @Test func aRouteSetToRFC4733IgnoresINFOKeys() async throws {
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: CallFlowTests.localTrunk,
            routes: "  - name: events\n    dtmf: rfc4733\n    agent: { url: \"\(agent.url(path: "/ws"))\" }")
        async let sipp = Sipp.run(
            scenario: "info_dtmf.xml", gatewayPort: gateway.sipPort, service: "4000", holdMilliseconds: 1000,
            keys: ["rtp_sink": "4000"])
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        _ = try await connection.waitForEvent(named: "stop", timeout: .seconds(15))
        #expect(try await sipp.exitCode == 0)
        #expect(connection.received.filter { $0.event == "dtmf" }.map { $0["dtmf"]?["digit"]?.string } == ["1"])
        try await gateway.waitForLog("key ignored")
        try await agent.shutdown()
    }
}
