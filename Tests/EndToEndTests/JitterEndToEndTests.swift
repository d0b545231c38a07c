import Foundation
import Testing
import TrunklineTestSupport

/// The receive jitter buffer in the running gateway: sipp sets the call up, the test itself plays the caller's
/// RTP with known impairments, and the agent's frames and the call record must account for each one.
@Suite("End to end: jitter buffer", .serialized)
struct JitterEndToEndTests {
    /// The gateway's RTP port for the call, from its "call answered" log line.
    static func rtpPort(in log: String) throws -> Int {
        let line = try #require(log.split(separator: "\n").first { $0.contains("call answered") })
        let field = try #require(line.split(separator: " ").first { $0.hasPrefix("rtp_port=") })
        return try #require(Int(field.dropFirst("rtp_port=".count)))
    }

    @Test func reorderedDuplicatedLostAndLatePacketsAreCountedAndTheAgentGetsEveryTick() async throws {
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: "  - name: local\n    allow: [127.0.0.0/8]\n    symmetric_rtp: false",
            routes: "  - name: bot\n    agent: { url: \"\(agent.url())\" }")
        async let sipp = Sipp.run(scenario: "hold.xml", gatewayPort: gateway.sipPort, service: "agent", holdMilliseconds: 4000)
        try await gateway.waitForLog("call answered")
        let port = try Self.rtpPort(in: gateway.log)
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        _ = try await connection.waitForEvent(named: "start", timeout: .seconds(5))

        // 100 A-law packets on a 20 ms grid: 10, 30, 31 never sent; 15 sent twice; 20 and 21 swapped;
        // 40 sent 120 ms after its slot, when its turn has passed.
        let dropped: Set<Int> = [10, 30, 31]
        var schedule: [[Int]] = (0..<100).map { dropped.contains($0) || $0 == 40 ? [] : [$0] }
        schedule[15] = [15, 15]
        schedule[20] = [21]
        schedule[21] = [20]
        schedule[46].append(40)
        let caller = try UDPPeer()
        let payload = [UInt8](repeating: 0xD5 ^ 0x55, count: 160)
        let packets = schedule.enumerated().flatMap { slot, sequences in
            sequences.map { seq in
                let ts = UInt32(seq * 160)
                let header: [UInt8] = [
                    0x80, 8, UInt8(seq >> 8), UInt8(seq & 0xFF),
                    UInt8(ts >> 24), UInt8((ts >> 16) & 0xFF), UInt8((ts >> 8) & 0xFF), UInt8(ts & 0xFF),
                    0x12, 0x34, 0x56, 0x78,
                ]
                return (slot: slot, data: Data(header + payload))
            }
        }
        try await caller.sendPaced(packets, to: port)
        // One 20 ms frame per slot reaches the agent: 95 packets played, 10, 30, 31 and the late 40 concealed.
        let media = try await connection.waitForEvents(named: "media", count: 100, timeout: .seconds(10))
        let timestamps = media.compactMap { Int($0["media"]?["timestamp"]?.string ?? "") }
        #expect(timestamps == Array(stride(from: 0, to: 2000, by: 20)))

        let result = try await sipp
        #expect(result.exitCode == 0, "\(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["packets_concealed"] as? Int == 4)
        #expect(record["packets_late"] as? Int == 1)
        #expect(record["packets_duplicated"] as? Int == 1)
        // RFC 3550's cumulative loss counts the duplicate as received: 3 dropped − 1 duplicate.
        #expect(record["packets_lost"] as? Int == 2)
        #expect(record["packets_in"] as? Int == 98)
        #expect(connection.received.filter { $0.event == "media" }.count == 100, "no frame beyond the stream's 100 slots")
        try await agent.shutdown()
    }
}
