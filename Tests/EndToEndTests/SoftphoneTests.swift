import Foundation
import Testing
import TrunklineTestSupport

/// A real softphone (baresip) calls the gateway with Opus and with SRTP (SDES): the agent hears the softphone's
/// tone, and the softphone hears the agent's, decoded from what it actually received.
@Suite("End to end with baresip", .serialized)
struct SoftphoneTests {
    /// The caller's microphone: 1 kHz. The agent's voice: 440 Hz. Distinct, so neither can pass for the other.
    static let agentTone = makeMuLawTone(frequency: 440, amplitude: 12000, count: 8000 * 2)

    struct Outcome {
        var record: [String: Any]
        var gatewayLog: String
    }

    /// One call from baresip through a gateway whose trunk has `trunkOptions`; checks audio both ways.
    /// - Parameter codecRate: the rate of the codec baresip will use (its file source must match it).
    func call(trunkOptions: String, mediaEncryption: String?, codecRate: Int) async throws -> Outcome {
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: "  - name: local\n    allow: [127.0.0.0/8]\n\(trunkOptions)",
            routes: "  - name: bot\n    agent: { url: \"\(agent.url())\" }", media: "rtcp_interval_ms: 500")
        let phone = try Baresip(
            dial: "sip:agent@127.0.0.1:\(gateway.sipPort)", mediaEncryption: mediaEncryption,
            microphone: ToneAnalysis.tone(frequency: 1000, sampleRate: Double(codecRate), count: codecRate * 20),
            microphoneRate: codecRate)

        let connection = try await agent.waitForConnection(timeout: .seconds(15))
        _ = try await connection.waitForEvent(named: "start", timeout: .seconds(5))
        // The agent speaks 2 s of tone, then a mark: the mark comes back once all of it has gone to the caller.
        for chunk in stride(from: 0, to: Self.agentTone.count, by: 320) {
            try await connection.sendMedia(muLaw: Array(Self.agentTone[chunk..<(chunk + 320)]))
        }
        try await connection.sendMark(name: "tone-done")
        _ = try await connection.waitForEvent(named: "mark", timeout: .seconds(10))

        // The agent heard the caller's tone (μ-law frames, 20 ms each).
        let media = try await connection.waitForEvents(named: "media", count: 100, timeout: .seconds(5))
        let heard = media.flatMap { Data(base64Encoded: $0["media"]?["payload"]?.string ?? "") ?? Data() }
            .map(MuLawReference.decode)
        #expect(ToneAnalysis.energyShare(heard[(heard.count - 4000)...], frequency: 1000, sampleRate: 8000) > 0.8)

        // The agent hangs up; the gateway sends BYE and baresip closes its dump.
        try await connection.sendClose()
        try await phone.waitForLog("terminated", timeout: 10)
        let records = try await gateway.waitForCallRecords(1)
        await phone.stop()

        // What baresip decoded holds the agent's tone: find the best 250 ms window of channel 0.
        let received = try phone.receivedAudio()
        let channel0 = stride(from: 0, to: received.samples.count, by: received.channels).map { received.samples[$0] }
        let best = ToneAnalysis.bestShare(channel0, frequency: 440, sampleRate: Double(received.sampleRate), window: received.sampleRate / 4)
        #expect(best > 0.8, "baresip did not hear the agent's 440 Hz tone (best share \(best))\n\(phone.log.suffix(2000))")
        #expect(ToneAnalysis.rms(channel0[...]) > 100, "baresip heard silence")
        try await agent.shutdown()
        return Outcome(record: try #require(records.first), gatewayLog: gateway.log)
    }

    @Test func opusCallCarriesTheAgentsToneBothWays() async throws {
        let outcome = try await call(trunkOptions: "    codecs: [opus, pcmu]", mediaEncryption: nil, codecRate: 48000)
        #expect(outcome.record["codec"] as? String == "opus")
        #expect(outcome.record["srtp"] == nil)
        #expect(outcome.record["decode_failures"] as? Int == 0)
    }

    @Test func srtpCallWithSDESCarriesTheAgentsToneAndKeepsItsKeysOutOfLogsAndRecords() async throws {
        let outcome = try await call(trunkOptions: "    srtp: required", mediaEncryption: "srtp-mand", codecRate: 8000)
        #expect(outcome.record["srtp"] as? String == "AES_CM_128_HMAC_SHA1_80")
        #expect(outcome.record["srtp_auth_failures"] as? Int == 0)
        // SRTCP both ways: our reports (every 500 ms here, and a BYE) went out protected, and nothing baresip sent
        // (SRTP or SRTCP) failed authentication.
        #expect((outcome.record["rtcp_reports_sent"] as? Int ?? 0) >= 2)
        #expect(outcome.record["codec"] as? String == "PCMU")
        // No base64 key from either side's a=crypto appears in the gateway's debug log or the record.
        let recordText = String(describing: outcome.record)
        #expect(!outcome.gatewayLog.contains("inline:"))
        #expect(!recordText.contains("inline:"))
    }
}

/// An Opus softphone and an agent taking 16 kHz PCM (`agent_audio: l16/16000`): tones above 4 kHz, which 8 kHz
/// μ-law cannot carry, must cross the gateway both ways.
@Suite("End to end: wideband agent audio", .serialized)
struct WidebandAgentTests {
    @Test func opusCallToAnL16AgentKeepsTonesAbove4kHzBothWays() async throws {
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: "  - name: local\n    allow: [127.0.0.0/8]\n    codecs: [opus]",
            routes: "  - name: bot\n    agent: { url: \"\(agent.url())\" }\n    agent_audio: l16/16000")
        let phone = try Baresip(
            dial: "sip:agent@127.0.0.1:\(gateway.sipPort)", mediaEncryption: nil,
            microphone: ToneAnalysis.tone(frequency: 6000, sampleRate: 48000, count: 48000 * 20), microphoneRate: 48000)

        let connection = try await agent.waitForConnection(timeout: .seconds(15))
        let start = try await connection.waitForEvent(named: "start", timeout: .seconds(5))
        #expect(start["start"]?["mediaFormat"]?["encoding"]?.string == "audio/l16")
        #expect(start["start"]?["mediaFormat"]?["sampleRate"]?.number == 16000)
        #expect(start["start"]?["mediaFormat"]?["channels"]?.number == 1)

        // The agent speaks 2 s of 5 kHz as little-endian 16 kHz PCM, 20 ms per message, then a mark.
        let speech = ToneAnalysis.tone(frequency: 5000, sampleRate: 16000, amplitude: 10000, count: 32000)
        let streamSid = try #require(connection.streamSid)
        for chunk in stride(from: 0, to: speech.count, by: 320) {
            let bytes = speech[chunk..<(chunk + 320)].flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
            try await connection.sendText(
                #"{"event":"media","streamSid":"\#(streamSid)","media":{"payload":"\#(Data(bytes).base64EncodedString())"}}"#)
        }
        try await connection.sendMark(name: "tone-done")
        _ = try await connection.waitForEvent(named: "mark", timeout: .seconds(10))

        // The agent heard 6 kHz in 640-byte (20 ms at 16 kHz) frames.
        let media = try await connection.waitForEvents(named: "media", count: 100, timeout: .seconds(5))
        let payloads = media.compactMap { Data(base64Encoded: $0["media"]?["payload"]?.string ?? "") }
        #expect(payloads.allSatisfy { $0.count == 640 })
        let heard = payloads.flatMap { data in
            stride(from: 0, to: data.count, by: 2).map { Int16(bitPattern: UInt16(data[$0]) | UInt16(data[$0 + 1]) << 8) }
        }
        #expect(ToneAnalysis.energyShare(heard[(heard.count - 8000)...], frequency: 6000, sampleRate: 16000) > 0.8)
        #expect(media.last?["media"]?["timestamp"]?.string == "\((media.count - 1) * 20)")

        try await connection.sendClose()
        try await phone.waitForLog("terminated", timeout: 10)
        _ = try await gateway.waitForCallRecords(1)
        await phone.stop()
        let received = try phone.receivedAudio()
        let channel0 = stride(from: 0, to: received.samples.count, by: received.channels).map { received.samples[$0] }
        let best = ToneAnalysis.bestShare(channel0, frequency: 5000, sampleRate: Double(received.sampleRate), window: received.sampleRate / 4)
        #expect(best > 0.8, "baresip did not hear the agent's 5 kHz tone (best share \(best))")
        try await agent.shutdown()
    }
}
