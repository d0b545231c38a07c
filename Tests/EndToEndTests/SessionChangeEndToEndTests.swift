import Foundation
import NIOPosix
import Testing
import TrunklineTestSupport

/// A call whose session changes under it: sipp re-INVITEs (hold, resume on a new port with another codec, an
/// offer the gateway cannot take), and the test watches the RTP the gateway sends and the audio its agent hears;
/// the agent hangs up at the end, so the call outlived every change.
@Suite("End to end: re-INVITE", .serialized)
struct SessionChangeEndToEndTests {
    @Test func holdResumeWithANewCodecAndPortAndAnUnusableOfferKeepTheCallUp() async throws {
        let agent = try await RecordingAgentServer.start()
        let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let movedSink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: CallFlowTests.localTrunk,
            routes: "  - name: bot\n    agent: { url: \"\(agent.url())\" }")
        async let sipp = Sipp.run(
            scenario: "reinvite.xml", gatewayPort: gateway.sipPort, service: "agent",
            keys: ["rtp_sink": "\(sink.port)", "rtp_sink2": "\(movedSink.port)"])
        try await gateway.waitForLog("call answered")
        let port = try JitterEndToEndTests.rtpPort(in: gateway.log)
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        try await sink.waitForPackets(10)

        // Held (the caller offered sendonly, we answered recvonly): our RTP stops until the resume.
        try await gateway.waitForLog("direction=recvonly")
        let atHold = sink.snapshot.packets
        try await gateway.waitForLog("direction=sendrecv")
        #expect(sink.snapshot.packets - atHold <= 2, "RTP sent while held: \(sink.snapshot.packets - atHold) packets")
        // The agent is told both ways (the codec and port change on resume is not a hold).
        let holds = try await connection.waitForEvents(named: "hold", count: 2)
        #expect(holds.map { $0["hold"]?["status"]?.string } == ["held", "resumed"])

        // Resumed on the new port, in the new codec; the old port hears nothing more.
        try await movedSink.waitForPackets(10)
        #expect(movedSink.snapshot.payloadTypes == [0])
        #expect(sink.snapshot.payloadTypes == [8])

        // The caller speaks after the resume (PCMU now): the agent hears it.
        let caller = try UDPPeer()
        try await caller.sendPaced((0..<25).map { seq in
            let ts = UInt32(seq * 160)
            let header: [UInt8] = [
                0x80, 0, 0, UInt8(seq), UInt8(ts >> 24), UInt8((ts >> 16) & 0xFF), UInt8((ts >> 8) & 0xFF), UInt8(ts & 0xFF),
                0x0B, 0xAD, 0xCA, 0x11,
            ]
            return (slot: seq, data: Data(header + [UInt8](repeating: 0xFF, count: 160)))
        }, to: port)
        _ = try await connection.waitForEvents(named: "media", count: 20, timeout: .seconds(5))

        // The G.729-only offer draws a 488 (sipp checks) and the call goes on until the agent hangs up.
        try await gateway.waitForLog("re-INVITE refused; the call goes on unchanged")
        try await connection.sendClose()
        let result = try await sipp
        #expect(result.exitCode == 0, "\(result.output)\n\(gateway.log)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["hangup_by"] as? String == "agent")
        #expect(connection.snapshot.messages.filter { $0.event == "hold" }.count == 2, "the refused offer changed nothing")
        #expect(record["codec"] as? String == "PCMU")
        #expect(record["packets_in"] as? Int == 25)
        #expect(record["packets_lost"] as? Int == 0)
        try await agent.shutdown()
        await sink.close()
        await movedSink.close()
    }
}
