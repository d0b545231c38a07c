import Foundation
import Media
import NIOCore
import NIOPosix
import Testing
import TrunklineTestSupport

/// RTCP, comfort noise and the inactivity timeout in the running gateway: sipp sets the call up, the test plays the
/// caller's RTP and RTCP from its own sockets and reads what the gateway reports and records.
@Suite("End to end: RTCP, comfort noise, inactivity", .serialized)
struct MediaQualityEndToEndTests {
    static let callerSSRC: UInt32 = 0x0BAD_CA11

    static func rtp(pt: UInt8, seq: Int, ts: Int, payload: [UInt8]) -> Data {
        var bytes = [UInt8](repeating: 0, count: RTPHeader.fixedSize)
        let header = RTPHeader(payloadType: pt, sequenceNumber: UInt16(seq), timestamp: UInt32(ts), ssrc: callerSSRC)
        bytes.withUnsafeMutableBytes { _ = header.write(to: $0) }
        return Data(bytes + payload)
    }

    static func rtcp(senderInfo: RTCPSenderInfo?, block: RTCPReportBlock?) -> Data {
        var buffer = ByteBuffer()
        RTCPPacket.write(ssrc: callerSSRC, senderInfo: senderInfo, block: block, cname: Array("caller".utf8), bye: false, into: &buffer)
        return Data(buffer.readableBytesView)
    }

    /// The next RTCP report from the gateway at `peer` that `accept`s, read as the caller (its block about the caller).
    static func report(at peer: UDPPeer, timeout: TimeInterval = 5, where accept: (RTCPReport) -> Bool) throws -> RTCPReport {
        let deadline = Date().addingTimeInterval(timeout)
        while let bytes = peer.receiveBytes(until: deadline) {
            if let report = bytes.withUnsafeBytes({ RTCPPacket.parse($0, ourSSRC: callerSSRC) }), accept(report) { return report }
        }
        throw HarnessError("no RTCP report as expected from the gateway")
    }

    @Test func theGatewayReportsOnTheCallerAndRecordsRoundTripAndTheCallersView() async throws {
        let agent = try await RecordingAgentServer.start()
        let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let rtcpPeer = try UDPPeer()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rtcp-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // The caller's SDP names its RTCP port with a=rtcp (not RTP + 1): the gateway must report there.
        let scenario = try Sipp.callScenario(
            media: "      m=audio [rtp_sink] RTP/AVP 8\n      a=rtpmap:8 PCMA/8000\n      a=rtcp:\(rtcpPeer.port)\n",
            part: "", ending: .awaitBye, in: directory, name: "rtcp")
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: CallFlowTests.localTrunk,
            routes: "  - name: bot\n    agent: { url: \"\(agent.url())\" }", media: "rtcp_interval_ms: 200")
        async let sipp = Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "agent", keys: ["rtp_sink": "\(sink.port)"])
        try await gateway.waitForLog("call answered")
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        let port = try JitterEndToEndTests.rtpPort(in: gateway.log)
        let caller = try UDPPeer()
        for seq in 0..<10 { try caller.send(Self.rtp(pt: 8, seq: seq, ts: seq * 160, payload: [UInt8](repeating: 0xD5, count: 160)), to: port) }
        let callerSR = RTCPSenderInfo(ntpTimestamp: RTCPReporter.ntpNow(), rtpTimestamp: 1600, packetCount: 10, octetCount: 1600)
        try rtcpPeer.send(Self.rtcp(senderInfo: callerSR, block: nil), to: port + 1)

        // The gateway's SR (it sends audio) with a block about the caller's stream that echoes the caller's SR, once
        // it has read all 10 packets (the RTP and RTCP sockets are read in either order).
        let report = try Self.report(at: rtcpPeer) {
            $0.blockAboutUs?.lastSenderReport == callerSR.compactNTP && $0.blockAboutUs?.extendedHighestSequence == 9
        }
        let block = try #require(report.blockAboutUs)
        #expect(block.cumulativeLost == 0 && block.fractionLost == 0)
        let gatewaySR = try #require(report.senderInfo)
        #expect(gatewaySR.packetCount > 0)

        // The caller reports on the gateway's stream: 20 % lost, 7 in all, 10 ms of jitter, answered at once.
        let aboutGateway = RTCPReportBlock(
            ssrc: report.senderSSRC, fractionLost: 51, cumulativeLost: 7, extendedHighestSequence: 200, jitter: 80,
            lastSenderReport: gatewaySR.compactNTP, delaySinceLastSenderReport: 0)
        try rtcpPeer.send(Self.rtcp(senderInfo: nil, block: aboutGateway), to: port + 1)
        // A report after it shows the call's loop has read it; then the agent hangs up.
        _ = try Self.report(at: rtcpPeer) { _ in true }
        try await connection.sendClose()

        // Hang-up: the gateway says BYE in RTCP too.
        _ = try Self.report(at: rtcpPeer, timeout: 10) { $0.bye }
        let result = try await sipp
        #expect(result.exitCode == 0, "\(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["rtcp_reports_received"] as? Int == 2)
        #expect((record["rtcp_reports_sent"] as? Int ?? 0) >= 2)
        #expect(record["peer_packets_lost"] as? Int == 7)
        #expect(record["peer_fraction_lost"] as? Double == 0.199)
        #expect(record["peer_jitter_ms"] as? Double == 10)
        let rtt = try #require(record["rtt_last_ms"] as? Double)
        // It cannot exceed the time since the gateway stamped its SR (NTP clock, 1/65536 s units).
        let sinceGatewaySR = Double(UInt32(truncatingIfNeeded: RTCPReporter.ntpNow() >> 16) &- gatewaySR.compactNTP) * 1000 / 65536
        #expect(rtt >= 0 && rtt <= sinceGatewaySR + 0.1, "round trip \(rtt) ms, \(sinceGatewaySR) ms since the gateway's SR")
        #expect(record["rtt_min_ms"] as? Double == rtt && record["rtt_max_ms"] as? Double == rtt)
        await sink.close()
        try await agent.shutdown()
    }

    @Test func comfortNoiseFillsTheCallersSilenceForTheAgentWithoutLoss() async throws {
        let agent = try await RecordingAgentServer.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cn-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let scenario = try Sipp.callScenario(
            media: "      m=audio [auto_media_port] RTP/AVP 8 13\n      a=rtpmap:8 PCMA/8000\n      a=rtpmap:13 CN/8000\n",
            part: "", ending: .awaitBye, in: directory, name: "cn")
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: CallFlowTests.localTrunk,
            routes: "  - name: bot\n    agent: { url: \"\(agent.url())\" }")
        async let sipp = Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "agent")
        try await gateway.waitForLog("call answered")
        let port = try JitterEndToEndTests.rtpPort(in: gateway.log)
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        _ = try await connection.waitForEvent(named: "start", timeout: .seconds(5))

        // 10 packets of speech, CN at −45 dBov, 400 ms with one CN update, then 10 more packets of speech.
        let caller = try UDPPeer()
        let speech = [UInt8](repeating: 0xD5, count: 160)
        let plan: [(slot: Int, pt: UInt8, seq: Int)] =
            (0..<10).map { ($0, 8, $0) } + [(10, 13, 10), (20, 13, 11)] + (0..<10).map { (30 + $0, 8, 12 + $0) }
        try await caller.sendPaced(plan.map { packet in
            (slot: packet.slot, data: Self.rtp(pt: packet.pt, seq: packet.seq, ts: packet.slot * 160, payload: packet.pt == 13 ? [45] : speech))
        }, to: port)
        // The agent gets a frame every 20 ms from the first to the last speech packet, about 38: the silence is
        // noise, not a gap (without it, only the 20 speech frames would come; the jitter buffer may shed one or two
        // when a loaded machine delays the stream).
        _ = try await connection.waitForEvents(named: "media", count: 34, timeout: .seconds(5))
        try await connection.sendClose()

        let result = try await sipp
        #expect(result.exitCode == 0, "\(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["comfort_noise_packets"] as? Int == 2)
        #expect(record["packets_lost"] as? Int == 0)
        #expect(record["packets_concealed"] as? Int == 0)
        #expect(record["packets_late"] as? Int == 0)
        try await agent.shutdown()
    }

    @Test func aCallWhoseMediaStopsIsHungUpAfterTheInactivityTimeout() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dead-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // A caller that sends no RTP at all and waits for the gateway's BYE.
        let scenario = try Sipp.callScenario(
            media: "      m=audio [auto_media_port] RTP/AVP 8\n      a=rtpmap:8 PCMA/8000\n", part: "", ending: .awaitBye,
            in: directory, name: "dead")
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: CallFlowTests.localTrunk,
            routes: "  - name: demo\n    embedded: demo", media: "inactivity_timeout_s: 1")
        let result = try await Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "1000", timeoutSeconds: 20)
        #expect(result.exitCode == 0, "the gateway must hang up the dead call: \(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["hangup_by"] as? String == "gateway")
        #expect((record["hangup_reason"] as? String)?.contains("no RTP") == true)
        #expect((record["duration_s"] as? Double ?? 0) >= 1)
    }
}
