import Foundation
import Testing
import TrunklineTestSupport

@testable import Media

/// The canary: a test card number pressed during secure capture over each DTMF transport must reach the payment
/// sink exactly once per call and appear nowhere else the gateway writes — its debug log, its call records, and
/// every message the agent received — not even as a run of five of its digits. The agent's audio must carry no
/// key tone.
@Suite("Secure capture canary", .serialized)
struct SecureCaptureCanaryTests {
    /// Luhn-valid, made up for this test (not a published test PAN, so a grep hit can only come from here).
    static let pan = "5392746103582741"
    /// After the capture ends with `#`, these keys reach the agent as ordinary `dtmf` events.
    static let after = "*#"
    static let speech = makeMuLawTone(frequency: 440, amplitude: 6000, count: 2400)

    enum Transport: String, CaseIterable {
        case rfc4733, info, inband
    }

    @Test func theCardNumberReachesOnlyThePaymentSink() async throws {
        let sink = try await PaymentSinkServer.start()
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: CallFlowTests.localTrunk,
            routes: """
                  - name: pay
                    agent: { url: "\(agent.url(path: "/pay"))" }
                    secure_capture:
                      sink: { url: "\(sink.url)", secret: "\(sink.secretText)", allow_http: true }
                      reveal_last4: true
                      on_answer: { max_digits: 19, min_digits: 12, finish_key: "#", reveal_last4: true, card_number: true, reference: canary, inter_digit_timeout_ms: 20000 }
                """)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("canary-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var callSids: [String] = []
        var agentMessages: [String] = []
        for transport in Transport.allCases {
            let scenario = try Self.scenario(for: transport, in: directory)
            async let sipp = Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "pay", timeoutSeconds: 60)
            let connection = try await agent.waitForConnection(timeout: .seconds(15))
            let start = try await connection.waitForEvent(named: "start", timeout: .seconds(5))
            callSids.append(try #require(start["start"]?["callSid"]?.string))
            let result = try await connection.waitUntil(timeout: .seconds(40)) { messages in
                messages.contains { $0["secureCapture"]?["state"]?.string == "result" }
            }.first { $0["secureCapture"]?["state"]?.string == "result" }
            let outcome = try #require(result?["secureCapture"], "\(transport): no result")
            #expect(outcome["status"]?.string == "success", "\(transport): \(outcome)")
            #expect(outcome["endedBy"]?.string == "finishKey")
            #expect(outcome["count"]?.number == 16)
            #expect(outcome["luhnValid"] == .bool(true))
            #expect(outcome["last4"]?.string == "2741")
            #expect(outcome["token"]?.string == "tok_test")
            #expect(outcome["reference"]?.string == "sink-ref")

            // Outside the capture, keys reach the agent as always.
            let keys = try await connection.waitForEvents(named: "dtmf", count: Self.after.count, timeout: .seconds(20))
            #expect(keys.map { $0["dtmf"]?["digit"]?.string ?? "" }.joined() == Self.after, "\(transport)")
            try await connection.sendText(#"{"event":"hangup","hangup":{"reason":"payment taken"}}"#)
            _ = try await connection.waitForEvent(named: "stop", timeout: .seconds(10))
            let finished = try await sipp
            #expect(finished.exitCode == 0, "\(transport): \(finished.output)")

            let messages = connection.received
            agentMessages += messages.map(\.text)
            // Masked progress only: one `*` per key, counting up.
            let masked = messages.filter { $0["secureCapture"]?["state"]?.string == "digit" }
            #expect(masked.map { $0["secureCapture"]?["masked"]?.string ?? "" } == (1...16).map { String(repeating: "*", count: $0) })
            // No key tone in what the agent heard (the RFC 4733 caller leaked 60 ms of each tone in-band).
            let heard = Self.detectedKeys(inMediaOf: messages)
            #expect(heard.allSatisfy { !$0.isNumber }, "\(transport): the agent's audio carried key tones '\(heard)'")
        }

        // The sink got the number once per call, signed, for the right call.
        let requests = try await sink.waitForRequests(3)
        #expect(requests.count == 3)
        for (request, callSid) in zip(requests, callSids) {
            #expect(request.signatureValid)
            #expect(request.json?["digits"]?.string == Self.pan)
            #expect(request.json?["callSid"]?.string == callSid)
            #expect(request.json?["reference"]?.string == "canary")
        }

        let records = try await gateway.waitForCallRecords(3)
        for record in records {
            let captures = try #require(record["secure_capture"] as? [[String: Any]])
            #expect(captures.count == 1)
            #expect(captures.first?["status"] as? String == "success")
            #expect(captures.first?["digits"] as? Int == 16)
            #expect(record["digits_received"] as? Int == Self.after.count)
        }

        // The grep: every output, for the number and for any run of five of its digits.
        let metrics = try await gateway.metrics()
        gateway.stop()
        let outputs = [
            ("gateway log", gateway.log),
            ("metrics", metrics),
            ("call records", (try? String(contentsOfFile: gateway.callRecordsPath, encoding: .utf8)) ?? ""),
            ("agent messages", agentMessages.joined(separator: "\n")),
        ]
        #expect(gateway.log.contains("secure capture ended"), "the log must be at debug level and cover the captures")
        for (name, text) in outputs {
            #expect(!text.isEmpty, "\(name) is empty")
            for run in Self.runs where text.contains(run) {
                Issue.record("\(name) contains '\(run)', a run of the card number")
            }
        }
        await sink.shutdown()
        try await agent.shutdown()
    }

    /// The agent's side: `startSecureCapture` and `stopSecureCapture` over the WebSocket. The caller (sipp) presses
    /// keys by SIP INFO only once the agent has seen the capture start and sent it a go signal (an INFO from the
    /// gateway, `sendDigits` on a `dtmf: info` route), so nothing depends on timing. The sink refuses the first
    /// capture; the agent stops the second one halfway.
    @Test func theAgentStartsAndStopsCapturesAndASinkRefusalIsAFailure() async throws {
        let sink = try await PaymentSinkServer.start(replies: [.status(422, body: #"{"error":"declined"}"#)])
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: CallFlowTests.localTrunk,
            routes: """
                  - name: pay
                    dtmf: info
                    agent: { url: "\(agent.url(path: "/pay"))" }
                    secure_capture:
                      sink: { url: "\(sink.url)", secret: "\(sink.secretText)", allow_http: true }
                """)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("capture-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let part = try Sipp.perKey("info_receive.xml.fragment", keys: "1") + Sipp.perKey("info_key.xml.fragment", keys: Self.pan)
            + Sipp.perKey("info_receive.xml.fragment", keys: "2") + Sipp.perKey("info_key.xml.fragment", keys: "53", firstCSeq: 2 + Self.pan.count)
        let scenario = try Sipp.callScenario(
            media: "      m=audio [media_port] RTP/AVP 0\n      a=rtpmap:0 PCMU/8000", part: part, ending: .awaitBye,
            in: directory, name: "agent-capture")
        async let sipp = Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "pay", timeoutSeconds: 60)
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        _ = try await connection.waitForEvent(named: "start")

        // A stop with nothing to stop is refused.
        try await connection.sendText(#"{"event":"stopSecureCapture"}"#)
        let refused = try await connection.waitForEvent(named: "error")
        #expect(refused["error"]?["message"]?.string == "no secure capture is active")

        try await connection.sendText(
            #"{"event":"startSecureCapture","secureCapture":{"maxDigits":16,"minDigits":16,"reference":"first","cardNumber":true,"revealLast4":true}}"#)
        _ = try await connection.waitUntil { Self.states($0).contains { $0["state"]?.string == "started" } }
        try await connection.sendText(#"{"event":"sendDigits","sendDigits":{"digits":"1"}}"#)
        let first = try await connection.waitUntil(timeout: .seconds(20)) { Self.states($0).contains { $0["state"]?.string == "result" } }
        let failure = try #require(Self.states(first).first { $0["state"]?.string == "result" })
        #expect(failure["status"]?.string == "failure")
        #expect(failure["endedBy"]?.string == "maxDigits")
        #expect(failure["error"]?.string == "payment sink refused the submission: HTTP 422")
        #expect(failure["luhnValid"] == .bool(true))
        #expect(failure["last4"] == nil, "the route does not allow last-four")

        try await connection.sendText(#"{"event":"startSecureCapture","secureCapture":{"reference":"second"}}"#)
        _ = try await connection.waitUntil { Self.states($0).filter { $0["state"]?.string == "started" }.count == 2 }
        try await connection.sendText(#"{"event":"sendDigits","sendDigits":{"digits":"2"}}"#)
        _ = try await connection.waitUntil(timeout: .seconds(20)) { messages in
            Self.states(messages).last.map { $0["state"]?.string == "digit" && $0["count"] == .number(2) } ?? false
        }
        try await connection.sendText(#"{"event":"stopSecureCapture"}"#)
        let second = try await connection.waitUntil { Self.states($0).filter { $0["state"]?.string == "result" }.count == 2 }
        let cancelled = try #require(Self.states(second).last)
        #expect(cancelled == .object([
            "state": .string("result"), "status": .string("cancelled"), "endedBy": .string("stopped"), "count": .number(2),
            "reference": .string("second"),
        ]))
        try await connection.sendText(#"{"event":"hangup"}"#)
        #expect(try await sipp.exitCode == 0)
        #expect(connection.received.filter { $0.event == "dtmf" }.isEmpty, "every key was the captures'")

        let requests = try await sink.waitForRequests(1)
        #expect(requests.count == 1 && requests[0].signatureValid && requests[0].json?["digits"]?.string == Self.pan)
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        let captures = try #require(record["secure_capture"] as? [[String: Any]])
        #expect(captures.map { $0["status"] as? String } == ["failure", "cancelled"])
        #expect(captures.map { $0["digits"] as? Int } == [16, 2])
        #expect(captures.first?["sink_attempts"] as? Int == 1)
        gateway.stop()
        for (name, text) in [("gateway log", gateway.log), ("agent messages", connection.received.map(\.text).joined(separator: "\n"))] {
            for run in Self.runs where text.contains(run) {
                Issue.record("\(name) contains '\(run)', a run of the card number")
            }
        }
        await sink.shutdown()
        try await agent.shutdown()
    }

    /// The gateway's timer ends a capture whose caller stops pressing: too few keys is a failure, nothing is
    /// submitted, and the keys after it are ordinary again.
    @Test func aCallerWhoStopsPressingTimesTheCaptureOut() async throws {
        let sink = try await PaymentSinkServer.start()
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: CallFlowTests.localTrunk,
            routes: """
                  - name: pay
                    dtmf: info
                    agent: { url: "\(agent.url(path: "/pay"))" }
                    secure_capture:
                      sink: { url: "\(sink.url)", secret: "\(sink.secretText)", allow_http: true }
                      on_answer: { min_digits: 12, inter_digit_timeout_ms: 400 }
                """)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("timeout-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // Three keys, then (once the agent has seen the result and sends "9" as a go signal) one more.
        let part = try Sipp.perKey("info_key.xml.fragment", keys: "539") + Sipp.perKey("info_receive.xml.fragment", keys: "9")
            + Sipp.perKey("info_key.xml.fragment", keys: "7", firstCSeq: 5)
        let scenario = try Sipp.callScenario(
            media: "      m=audio [media_port] RTP/AVP 0\n      a=rtpmap:0 PCMU/8000", part: part, ending: .awaitBye,
            in: directory, name: "timeout")
        async let sipp = Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "pay", timeoutSeconds: 30)
        let connection = try await agent.waitForConnection(timeout: .seconds(10))
        let ended = try await connection.waitUntil(timeout: .seconds(10)) { Self.states($0).contains { $0["state"]?.string == "result" } }
        let result = try #require(Self.states(ended).first { $0["state"]?.string == "result" })
        #expect(result == .object([
            "state": .string("result"), "status": .string("failure"), "endedBy": .string("interDigitTimeout"),
            "count": .number(3), "error": .string("3 digits captured, at least 12 needed"),
        ]))
        #expect(Self.states(ended).filter { $0["state"]?.string == "digit" }.count == 3)
        try await connection.sendText(#"{"event":"sendDigits","sendDigits":{"digits":"9"}}"#)
        let key = try await connection.waitForEvent(named: "dtmf", timeout: .seconds(10))
        #expect(key["dtmf"]?["digit"]?.string == "7")
        try await connection.sendText(#"{"event":"hangup"}"#)
        #expect(try await sipp.exitCode == 0)
        #expect(sink.requests.isEmpty)
        await sink.shutdown()
        try await agent.shutdown()
    }

    /// A caller who hangs up while the sink is still working: the call record waits for the sink's answer (here a
    /// timeout) instead of losing it.
    @Test func theRecordWaitsForASinkStillWorkingWhenTheCallerHangsUp() async throws {
        let sink = try await PaymentSinkServer.start(replies: [.stall])
        let agent = try await RecordingAgentServer.start()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: CallFlowTests.localTrunk,
            routes: """
                  - name: pay
                    agent: { url: "\(agent.url(path: "/pay"))" }
                    secure_capture:
                      sink: { url: "\(sink.url)", secret: "\(sink.secretText)", allow_http: true, timeout_ms: 1000, retries: 0 }
                      on_answer: { min_digits: 4 }
                """)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hangup-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let scenario = try Sipp.callScenario(
            media: "      m=audio [media_port] RTP/AVP 0\n      a=rtpmap:0 PCMU/8000",
            part: try Sipp.perKey("info_key.xml.fragment", keys: "5392#"), ending: .callerBye, in: directory, name: "hangup")
        let result = try await Sipp.run(scenario: scenario, gatewayPort: gateway.sipPort, service: "pay", timeoutSeconds: 30)
        #expect(result.exitCode == 0, "\(result.output)")
        _ = try await sink.waitForRequests(1)
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["hangup_by"] as? String == "caller")
        let captures = try #require(record["secure_capture"] as? [[String: Any]])
        #expect(captures.first?["status"] as? String == "timeout")
        #expect(captures.first?["digits"] as? Int == 4)
        #expect(captures.first?["sink_attempts"] as? Int == 1)
        await sink.shutdown()
        try await agent.shutdown()
    }

    /// The `secureCapture` objects of the agent's messages, in order.
    static func states(_ messages: [RecordingAgentServer.ReceivedMessage]) -> [JSONValue] {
        messages.compactMap { $0["secureCapture"] }
    }

    /// Every run of five consecutive digits of the number (the whole number contains them all).
    static var runs: [String] {
        let digits = Array(pan)
        return (0...(digits.count - 5)).map { String(digits[$0..<($0 + 5)]) }
    }

    /// Keys an in-band detector finds in the agent's `media` audio.
    static func detectedKeys(inMediaOf messages: [RecordingAgentServer.ReceivedMessage]) -> String {
        let detector = InbandDTMFDetector()!
        var keys = ""
        for message in messages where message.event == "media" {
            guard let payload = Data(base64Encoded: message["media"]?["payload"]?.string ?? ""), payload.count == 160 else { continue }
            let pcm = payload.map(MuLawReference.decode)
            pcm.withUnsafeBufferPointer { detector.process($0) { keys.append($0) } }
        }
        return keys
    }

    /// The caller's scenario for one transport, written to `directory` (with its pcap when it plays one).
    static func scenario(for transport: Transport, in directory: URL) throws -> String {
        let pressed = pan + "#" + after
        let withEvents = "      m=audio [media_port] RTP/AVP 0 101\n      a=rtpmap:0 PCMU/8000\n      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-16"
        switch transport {
        case .rfc4733, .inband:
            var pcap = RTPPcap()
            pcap.audio(speech)
            if transport == .rfc4733 {
                try pcap.events(pressed, leakMs: 60)
            } else {
                pcap.audio(DTMFSignal.muLaw(pressed, toneMs: 100, gapMs: 100))
            }
            pcap.audio(speech)
            let path = directory.appendingPathComponent("\(transport).pcap").path
            try pcap.write(to: path)
            return try Sipp.callScenario(
                media: transport == .rfc4733 ? withEvents : "      m=audio [media_port] RTP/AVP 0\n      a=rtpmap:0 PCMU/8000",
                part: "  <nop><action><exec play_pcap_audio=\"\(path)\"/></action></nop>", ending: .awaitBye,
                in: directory, name: "\(transport)")
        case .info:
            return try Sipp.callScenario(
                media: withEvents, part: try Sipp.perKey("info_key.xml.fragment", keys: pressed), ending: .awaitBye,
                in: directory, name: "info")
        }
    }
}
