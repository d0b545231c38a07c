import Foundation
import Media
import NIOPosix
import Testing
import TrunklineTestSupport

/// Call flows with real calls: the `trunkline` binary runs a flow, sipp is the caller pressing keys over RFC 4733
/// and SIP INFO, and what the caller heard tells which branch ran.
@Suite("Call flows end to end", .serialized)
struct FlowEndToEndTests {
    static let pcmaWithEvents = "a=rtpmap:8 PCMA/8000\n      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-16"

    static func media(port: Int) -> String { "      m=audio \(port) RTP/AVP 8 101\n      \(pcmaWithEvents)" }

    /// A caller part: wait, then press `key` over `transport`.
    static func press(_ key: String, over transport: String, after milliseconds: Int) throws -> String {
        let pause = "  <pause milliseconds=\"\(milliseconds)\"/>\n"
        if transport == "info" { return pause + (try Sipp.perKey("info_key.xml.fragment", keys: key)) }
        return pause + "  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/dtmf_2833_\(key == "#" ? "pound" : key).pcap\"/></action></nop>\n"
    }

    @Test func theCallersKeyPicksTheBranchAndTheCallerHearsIt() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flow-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, frequency) in [("high", 1000.0), ("low", 400.0)] {
            let tone = ToneAnalysis.tone(frequency: frequency, sampleRate: 8000, amplitude: 10000, count: 8000)
            try Data(WAVFile.encode(tone)).write(to: directory.appendingPathComponent("\(name).wav"))
        }
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: CallFlowTests.localTrunk,
            routes: """
                  - name: menu
                    flow:
                      steps:
                        - say: "Press 1 for the high tone, or 2 for the low tone."
                        - gather: { into: choice, max_digits: 1, timeout_ms: 10000 }
                        - branch: { on: choice, cases: { "1": high, "2": low }, default: none }
                        - label: high
                          play: \(directory.appendingPathComponent("high.wav").path)
                        - hangup: "played high"
                        - label: low
                          play: \(directory.appendingPathComponent("low.wav").path)
                        - hangup: "played low"
                        - label: none
                          hangup: "no choice"
                """)

        // 1 over RFC 4733 after the prompt has played; 2 over SIP INFO while it plays (barge-in).
        let calls = [(key: "1", transport: "rfc4733", after: 4500, heard: 1000.0, other: 400.0, reason: "played high"),
                     (key: "2", transport: "info", after: 1500, heard: 400.0, other: 1000.0, reason: "played low")]
        for (index, call) in calls.enumerated() {
            let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
            let scenario = try Sipp.callScenario(
                media: Self.media(port: sink.port), part: try Self.press(call.key, over: call.transport, after: call.after),
                ending: .awaitBye, in: directory, name: "menu-\(call.key)")
            let result = try await Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "1000", timeoutSeconds: 30)
            #expect(result.exitCode == 0, "key \(call.key): sipp must get the flow's BYE: \(result.output)\n\(gateway.log)")

            let record = try #require(try await gateway.waitForCallRecords(index + 1).last)
            #expect(record["hangup_by"] as? String == "agent")
            #expect(record["hangup_reason"] as? String == call.reason, "\(record)")
            #expect(record["agent"] as? String == "flow:menu")
            #expect(record["digits_received"] as? Int == 1)

            // The prompt was speech (audible, no single tone), then the branch's tone, then nothing.
            let heard = sink.snapshot
            let audio = heard.audio
            let speech = 8000 * call.after / 1000 - 4000  // the part surely before the key
            #expect(ToneAnalysis.rms(audio.prefix(speech)) > 300, "key \(call.key): the spoken prompt must be audible")
            #expect(ToneAnalysis.bestShare(Array(audio.prefix(speech)), frequency: call.heard, sampleRate: 8000, window: 1600) < 0.5)
            let tone = ToneAnalysis.bestShare(Array(audio.dropFirst(speech)), frequency: call.heard, sampleRate: 8000, window: 1600)
            #expect(tone > 0.8, "key \(call.key): the caller must hear the \(call.heard) Hz tone (share \(tone))")
            #expect(ToneAnalysis.bestShare(Array(audio.dropFirst(speech)), frequency: call.other, sampleRate: 8000, window: 1600) < 0.3)
            await sink.close()
        }
    }

    @Test func theShippedDemoFlowRecordsAMessage() async throws {
        // The repository's layout in a temp folder, so the demo's `../run/recordings` lands there.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flow-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("flows"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.copyItem(
            at: GatewayProcess.packageRoot.appendingPathComponent("flows/demo.yaml"), to: root.appendingPathComponent("flows/demo.yaml"))
        try FileManager.default.createSymbolicLink(
            at: root.appendingPathComponent("prompts"), withDestinationURL: GatewayProcess.packageRoot.appendingPathComponent("prompts"))
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: CallFlowTests.localTrunk,
            routes: "  - name: demo\n    flow: \(root.appendingPathComponent("flows/demo.yaml").path)")

        // 2 over the greeting, then (after the instructions and the beep) 4 s of speech, then #.
        let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let part = try Self.press("2", over: "rfc4733", after: 2000)
            + "  <pause milliseconds=\"7000\"/>\n"
            + "  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/g711a.pcap\"/></action></nop>\n"
            + (try Self.press("#", over: "rfc4733", after: 4000))
        let scenario = try Sipp.callScenario(media: Self.media(port: sink.port), part: part, ending: .awaitBye, in: root, name: "demo")
        let result = try await Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "1000", timeoutSeconds: 40)
        #expect(result.exitCode == 0, "sipp must get the demo's BYE: \(result.output)\n\(gateway.log)")

        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["hangup_reason"] as? String == "demo flow finished", "\(record)")
        let callSid = try #require(record["call_sid"] as? String)
        try await gateway.waitForLog("recording written")
        let path = root.appendingPathComponent("run/recordings/\(callSid)-1.wav").path
        let wav = try WAVFile.load(path: path)
        let seconds = Double(wav.samples.count) / 8000
        // From the beep to the #: the 4 s message, and whatever silence came before it.
        #expect(seconds > 3 && seconds < 12, "recorded \(seconds) s")
        #expect(ToneAnalysis.rms(wav.samples.suffix(3 * 8000)) > 300, "the caller's message must be in the recording")
        #expect(sink.snapshot.audible > 150, "the caller heard the spoken menu, instructions, beep and goodbye")
        await sink.close()
    }
}
