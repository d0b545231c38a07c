import Agent
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOWebSocket
import SecureCapture
import Testing
import TrunklineTestSupport

/// A `TwilioMediaStreamAgent` and its recording control, living on one loop; every access goes through `run`.
struct AgentHarness: Sendable {
    let loop: EventLoop
    let agent: NIOLoopBound<TwilioMediaStreamAgent>
    let control: NIOLoopBound<RecordingControl>
    let log: WaitableState<ControlLog>
    let context: CallContext

    static let callSid = "CA" + String(repeating: "0123456789abcdef", count: 2)
    static let accountSid = "AC" + String(repeating: "fedcba9876543210", count: 2)

    static func make(
        url: String, connectTimeout: TimeAmount = .seconds(5), attempts: Int = 1, backoff: TimeAmount = .zero,
        authorization: AgentAuthorization? = nil, context: CallContext? = nil
    ) async throws -> AgentHarness {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let agentURL = try AgentURL(parsing: url)
        let context = context ?? CallContext(
            callSid: callSid, accountSid: accountSid, from: "+15551230001", to: "+15551230002", trunk: "twilio",
            route: "support", sipCallID: "abc123@10.0.0.1", extraParameters: [("stir_verstat", "TN-Validation-Passed")]
        )
        return try await loop.submit {
            let agent = TwilioMediaStreamAgent(
                url: agentURL, eventLoop: loop, logger: Logger(label: "test.agent"),
                connect: AgentConnectPolicy(timeout: connectTimeout, attempts: attempts, backoff: backoff),
                authorization: authorization
            )
            let control = RecordingControl(loop: loop)
            control.agent = agent
            return AgentHarness(
                loop: loop, agent: NIOLoopBound(agent, eventLoop: loop), control: NIOLoopBound(control, eventLoop: loop),
                log: control.log, context: context
            )
        }.get()
    }

    /// A started agent streaming to a fresh recording server, past its `start` message.
    static func streaming() async throws -> (RecordingAgentServer, AgentHarness, RecordingAgentServer.Connection) {
        let server = try await RecordingAgentServer.start()
        let harness = try await AgentHarness.make(url: server.url())
        try await harness.start()
        let connection = try await server.waitForConnection()
        _ = try await connection.waitForEvent(named: "start")
        return (server, harness, connection)
    }

    /// Runs `body` on the agent's loop.
    @discardableResult
    func run<R: Sendable>(_ body: @escaping @Sendable (TwilioMediaStreamAgent, RecordingControl) -> R) async throws -> R {
        let agent = self.agent
        let control = self.control
        return try await self.loop.submit { body(agent.value, control.value) }.get()
    }

    func start() async throws {
        let context = self.context
        try await self.run { agent, control in agent.start(context: context, control: control) }
    }

    func callerAudio(_ samples: [Int16]) async throws {
        try await self.run { agent, _ in samples.withUnsafeBufferPointer { agent.callerAudio($0) } }
    }
}

/// 160 samples of a ramp, different per packet.
private func packet(_ n: Int) -> [Int16] {
    (0..<160).map { Int16(truncatingIfNeeded: ($0 * 97 + n * 1013) % 20000 - 10000) }
}

private func base64Decoded(_ value: JSONValue?) -> [UInt8]? {
    guard let text = value?.string, let data = Data(base64Encoded: text) else { return nil }
    return Array(data)
}

@Suite("TwilioMediaStreamAgent against a real WebSocket server")
struct TwilioMediaStreamAgentTests {
    @Test("connected, then start with every field in Twilio's order, then numbered media and dtmf")
    func openingMessagesMediaAndDTMF() async throws {
        let server = try await RecordingAgentServer.start()
        defer { Task { try await server.shutdown() } }
        let harness = try await AgentHarness.make(url: server.url(path: "/media?token=t1"))
        try await harness.start()
        let connection = try await server.waitForConnection()
        #expect(connection.path == "/media?token=t1")

        let opening = try await connection.waitUntil { $0.count >= 2 }
        #expect(opening[0].text == #"{"event":"connected","protocol":"Call","version":"1.0.0"}"#)
        let streamSid = try #require(opening[1]["streamSid"]?.string)
        #expect(TwilioIdentifier.isValid(streamSid, prefix: "MZ"))
        #expect(streamSid == (try await harness.run { agent, _ in agent.streamSid }))
        let expectedStart =
            #"{"event":"start","sequenceNumber":"1","start":{"accountSid":"\#(AgentHarness.accountSid)","#
            + #""streamSid":"\#(streamSid)","callSid":"\#(AgentHarness.callSid)","tracks":["inbound"],"#
            + #""customParameters":{"from_number":"+15551230001","to_number":"+15551230002","from":"+15551230001","#
            + #""to":"+15551230002","trunk":"twilio","route":"support","sip_call_id":"abc123@10.0.0.1","#
            + #""stir_verstat":"TN-Validation-Passed"},"#
            + #""mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"\#(streamSid)"}"#
        #expect(opening[1].text == expectedStart)
        let start = try #require(opening[1]["start"])
        #expect(TwilioIdentifier.isValid(start["accountSid"]?.string ?? "", prefix: "AC"))
        #expect(TwilioIdentifier.isValid(start["callSid"]?.string ?? "", prefix: "CA"))
        #expect(start["streamSid"]?.string == streamSid)

        for n in 0..<3 { try await harness.callerAudio(packet(n)) }
        try await harness.run { agent, _ in agent.callerDigit("5") }
        let media = try await connection.waitForEvents(named: "media", count: 3)
        for (k, message) in media.enumerated() {
            #expect(message["sequenceNumber"]?.string == "\(k + 2)")
            #expect(message["streamSid"]?.string == streamSid)
            #expect(message["media"]?["track"]?.string == "inbound")
            #expect(message["media"]?["chunk"]?.string == "\(k + 1)")
            #expect(message["media"]?["timestamp"]?.string == "\(k * 20)")
            let payload = try #require(base64Decoded(message["media"]?["payload"]))
            #expect(payload.count == 160)
            #expect(payload == packet(k).map(MuLawReference.encode))
        }
        #expect(media[0].text.hasPrefix(#"{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":""#))
        #expect(media[0].text.hasSuffix(#""},"streamSid":"\#(streamSid)"}"#))

        let dtmf = try await connection.waitForEvent(named: "dtmf")
        #expect(dtmf.text == #"{"event":"dtmf","streamSid":"\#(streamSid)","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"5"}}"#)
        #expect(connection.snapshot.binaryFrames == 0)
        #expect(harness.log.snapshot.calls.isEmpty)
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }

    @Test("caller audio and digits before the socket is open are dropped and counted, not queued")
    func dropsBeforeOpen() async throws {
        let server = try await RecordingAgentServer.start()
        defer { Task { try await server.shutdown() } }
        let harness = try await AgentHarness.make(url: server.url())
        let context = harness.context
        let dropped = try await harness.run { agent, control in
            agent.start(context: context, control: control)
            packet(9).withUnsafeBufferPointer { agent.callerAudio($0) }  // same loop tick: still connecting
            agent.callerDigit("1")
            return agent.droppedBeforeOpen
        }
        #expect(dropped == 2)
        let connection = try await server.waitForConnection()
        _ = try await connection.waitForEvent(named: "start")
        try await harness.callerAudio(packet(0))
        let media = try await connection.waitForEvent(named: "media")
        #expect(media["media"]?["chunk"]?.string == "1")
        #expect(media["sequenceNumber"]?.string == "2")
        #expect(connection.received.allSatisfy { $0.event != "dtmf" })
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }

    @Test("agent media of any length is decoded from μ-law and played")
    func agentMediaIsPlayed() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }

        let first = makeMuLawTone(count: 320)  // Pipecat's 40 ms chunk
        let second: [UInt8] = [0x00, 0x7F, 0x80, 0xFF, 0x55]
        try await connection.sendMedia(muLaw: first)
        try await connection.sendMedia(muLaw: second)
        let log = try await harness.log.wait(timeout: .seconds(5), what: "325 samples played") {
            $0.played.count >= 325 ? $0 : nil
        }
        #expect(log.calls == [.play(count: 320), .play(count: 5)])
        #expect(log.played == (first + second).map(MuLawReference.decode))
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }

    @Test("a mark is echoed with its name only after markPlayed")
    func markEchoedAfterPlayout() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }

        try await connection.sendMedia(muLaw: makeMuLawTone(count: 160))
        try await connection.sendMark(name: #"greeting "1" done"#)
        let mark = try await harness.log.waitForCall("agentMark") { if case .mark = $0 { true } else { false } }
        guard case .mark(let id) = mark else { Issue.record("no mark"); return }
        #expect(harness.log.snapshot.calls.first == .play(count: 160))

        // Everything the agent writes is ordered: once this digit arrives, no echo was sent before it.
        try await harness.run { agent, _ in agent.callerDigit("7") }
        _ = try await connection.waitForEvent(named: "dtmf")
        #expect(connection.received.allSatisfy { $0.event != "mark" })

        try await harness.run { agent, _ in agent.markPlayed(id) }
        let echo = try await connection.waitForEvent(named: "mark")
        #expect(echo["mark"]?["name"]?.string == #"greeting "1" done"#)
        #expect(echo["sequenceNumber"]?.string == "3")
        let streamSid = try #require(connection.streamSid)
        #expect(echo.text == #"{"event":"mark","sequenceNumber":"3","streamSid":"\#(streamSid)","mark":{"name":"greeting \"1\" done"}}"#)

        // A second report for the same id, or an unknown id, sends nothing more.
        try await harness.run { agent, _ in
            agent.markPlayed(id)
            agent.markPlayed(999)
            agent.callerDigit("8")
        }
        let all = try await connection.waitUntil { $0.filter { $0.event == "dtmf" }.count == 2 }
        #expect(all.filter { $0.event == "mark" }.count == 1)
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }

    @Test("clear calls agentClear, and pending marks come back as played and are echoed")
    func clearEchoesPendingMarks() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }

        try await connection.sendMark(name: "a")
        try await connection.sendMark(name: "b")
        try await connection.sendClear()
        _ = try await harness.log.waitForCall("agentClear") { $0 == .clear }
        #expect(harness.log.snapshot.calls == [.mark(1), .mark(2), .clear])
        let echoes = try await connection.waitForEvents(named: "mark", count: 2)
        #expect(echoes.map { $0["mark"]?["name"]?.string } == ["a", "b"])
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }

    @Test("extension messages: hangup with a reason, sendDigits, and an error event when digits cannot be sent")
    func extensionMessages() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }

        try await connection.sendText(#"{"event":"sendDigits","sendDigits":{"digits":"12w#"}}"#)
        _ = try await harness.log.waitForCall("agentSendDigits") { $0 == .sendDigits("12w#") }
        try await connection.sendText(#"{"event":"sendDigits","sendDigits":{"digits":"1x"}}"#)
        let error = try await connection.waitForEvent(named: "error")
        #expect(error["error"]?["event"]?.string == "sendDigits")
        #expect(error["error"]?["message"]?.string == "no telephone-event")
        #expect(error["streamSid"]?.string == connection.streamSid)

        try await connection.sendText(#"{"event":"hangup","hangup":{"reason":"customer satisfied"}}"#)
        #expect(try await harness.log.waitForOutcome() == .hangUp("customer satisfied"))
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }

    @Test("secure capture: start and stop requests reach the call; progress goes out masked; a refusal is an error event")
    func secureCaptureMessages() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }

        try await connection.sendText(
            #"{"event":"startSecureCapture","secureCapture":{"maxDigits":16,"minDigits":12,"finishKey":"","timeoutMs":30000,"interDigitTimeoutMs":4000,"revealLast4":true,"reference":"order-9","cardNumber":true}}"#)
        var expected = SecureCaptureOptions()
        expected.maxDigits = 16
        expected.minDigits = 12
        expected.finishKey = nil
        expected.totalTimeout = .seconds(30)
        expected.interDigitTimeout = .seconds(4)
        expected.revealLast4 = true
        expected.reference = "order-9"
        expected.cardNumber = true
        let wanted = expected
        _ = try await harness.log.waitForCall("agentStartSecureCapture") { $0 == .startSecureCapture(wanted) }
        try await connection.sendText(#"{"event":"stopSecureCapture"}"#)
        _ = try await harness.log.waitForCall("agentStopSecureCapture") { $0 == .stopSecureCapture }
        try await connection.sendText(#"{"event":"startSecureCapture","secureCapture":{"reference":"refuse"}}"#)
        let error = try await connection.waitForEvent(named: "error")
        #expect(error["error"]?["event"]?.string == "startSecureCapture")
        #expect(error["error"]?["message"]?.string == "no payment sink on this route")

        try await harness.run { agent, _ in
            agent.secureCapture(.started(reference: "order-9"))
            agent.secureCapture(.digit(count: 3))
            agent.secureCapture(.result(SecureCaptureResult(
                status: .success, endedBy: .maxDigits, count: 16, luhnValid: true, last4: "2741", token: "tok_1",
                reference: "order-9", sinkAttempts: 1)))
        }
        let updates = try await connection.waitForEvents(named: "secureCapture", count: 3)
        #expect(updates[0]["secureCapture"] == .object(["state": .string("started"), "reference": .string("order-9")]))
        #expect(updates[1]["secureCapture"] == .object(["state": .string("digit"), "masked": .string("***"), "count": .number(3)]))
        #expect(updates[2]["secureCapture"] == .object([
            "state": .string("result"), "status": .string("success"), "endedBy": .string("maxDigits"), "count": .number(16),
            "luhnValid": .bool(true), "last4": .string("2741"), "token": .string("tok_1"), "reference": .string("order-9"),
        ]))
        #expect(updates.allSatisfy { $0["streamSid"]?.string == connection.streamSid })
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }

    @Test("transfer: requests reach the call (headers sorted, defaults filled in); malformed ones and refusals are error events; progress goes out")
    func transferMessages() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }

        try await connection.sendText(
            #"{"event":"transfer","transfer":{"target":"sip:desk@example.test","headers":{"X-Case":"42","User-to-User":"00ff;encoding=hex"},"mode":"bridge","agent":"listen"}}"#)
        let request = TransferRequest(
            target: "sip:desk@example.test",
            headers: [TransferHeader(name: "User-to-User", value: "00ff;encoding=hex"), TransferHeader(name: "X-Case", value: "42")],
            mode: .bridge, agentStays: true)
        _ = try await harness.log.waitForCall("agentTransfer start") { $0 == .transfer(.start(request)) }
        try await connection.sendText(#"{"event":"transfer","transfer":{"target":"+15550001111"}}"#)
        _ = try await harness.log.waitForCall("agentTransfer blind") {
            $0 == .transfer(.start(TransferRequest(target: "+15550001111")))
        }
        try await connection.sendText(#"{"event":"transfer","transfer":{"action":"connect"}}"#)
        _ = try await harness.log.waitForCall("agentTransfer connect") { $0 == .transfer(.connect) }

        try await connection.sendText(#"{"event":"transfer","transfer":{"target":"sip:a@b","mode":"teleport"}}"#)
        let error = try await connection.waitForEvent(named: "error")
        #expect(error["error"]?["event"]?.string == "transfer")
        #expect(error["error"]?["message"]?.string == "unknown transfer mode 'teleport' (blind, bridge, attended)")
        try await connection.sendText(#"{"event":"transfer","transfer":{"mode":"blind"}}"#)
        let errors = try await connection.waitForEvents(named: "error", count: 2)
        #expect(errors[1]["error"]?["message"]?.string == "transfer without a target")

        try await harness.run { agent, _ in
            agent.transfer(TransferUpdate(.accepted, sipStatus: 202))
            agent.transfer(TransferUpdate(.failed, sipStatus: 486, reason: "target answered 486 Busy Here"))
        }
        let updates = try await connection.waitForEvents(named: "transfer", count: 2)
        #expect(updates[0]["transfer"] == .object(["status": .string("accepted"), "sipStatus": .number(202)]))
        #expect(updates[1]["transfer"] == .object([
            "status": .string("failed"), "sipStatus": .number(486), "reason": .string("target answered 486 Busy Here"),
        ]))
        #expect(updates.allSatisfy { $0["streamSid"]?.string == connection.streamSid })
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }

    @Test("optOut from the agent reaches the call with its reason; the gateway's answer goes out as an optOut event")
    func optOutMessages() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }

        try await connection.sendText(#"{"event":"optOut","optOut":{"reason":"callee said stop calling"}}"#)
        _ = try await harness.log.waitForCall("agentOptOut") { $0 == .optOut("callee said stop calling") }
        try await harness.run { agent, _ in agent.optOut(OptOutUpdate(source: "agent", stored: true, callEnds: true)) }
        let answer = try await connection.waitForEvent(named: "optOut")
        #expect(answer["optOut"] == .object(["status": .string("recorded"), "source": .string("agent"), "hangup": .bool(true)]))
        #expect(answer["streamSid"]?.string == connection.streamSid)
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }

    @Test("secure-capture updates from before the stream opened follow the start message")
    func earlySecureCaptureUpdates() async throws {
        let server = try await RecordingAgentServer.start()
        defer { Task { try await server.shutdown() } }
        let harness = try await AgentHarness.make(url: server.url())
        try await harness.start()
        try await harness.run { agent, _ in
            agent.secureCapture(.started(reference: nil))
            agent.secureCapture(.digit(count: 1))
        }
        let connection = try await server.waitForConnection()
        let first = try await connection.waitUntil(timeout: .seconds(5)) { $0.count >= 4 }
        #expect(first.map { $0.event ?? "" } == ["connected", "start", "secureCapture", "secureCapture"])
        #expect(first[3]["secureCapture"]?["masked"]?.string == "*")
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }

    @Test("junk from the agent is ignored; ping gets a pong; the stream stays up")
    func junkIgnored() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }

        try await connection.sendText("not json at all")
        try await connection.sendText(#"{"event":"conference","to":"sip:queue@example.com"}"#)
        try await connection.sendText(#"{"event":"media","media":{}}"#)
        try await connection.sendText(#"{"event":"media","media":{"payload":"%%%not base64"}}"#)
        try await connection.sendText(#"[1,2,3]"#)
        try await connection.sendFrame(opcode: .binary, payload: ByteBuffer(bytes: [1, 2, 3]))
        try await connection.sendPing()
        try await connection.sendMedia(muLaw: [0xFF, 0xFF])
        _ = try await harness.log.waitForCall("agentPlay") { $0 == .play(count: 2) }
        _ = try await connection.waitForSnapshot(what: "a pong") { $0.pongs == 1 }
        #expect(harness.log.snapshot.calls == [.play(count: 2)])
        #expect(try await harness.run { agent, _ in agent.ignoredAgentMessages } == 6)
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }

    @Test("stop sends stop, then a close frame with 1000, then closes; no callback follows")
    func stopSendsStopAndCloses() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }
        try await harness.callerAudio(packet(1))

        try await harness.run { agent, _ in
            agent.stop(reason: "caller hung up")
            packet(2).withUnsafeBufferPointer { agent.callerAudio($0) }  // after stop: nothing is sent
            agent.callerDigit("3")
        }
        let closed = try await connection.waitForClose()
        let events = closed.messages.map(\.event)
        #expect(events == ["connected", "start", "media", "stop"])
        let streamSid = try #require(connection.streamSid)
        #expect(
            closed.messages.last?.text
                == #"{"event":"stop","sequenceNumber":"3","stop":{"accountSid":"\#(AgentHarness.accountSid)","callSid":"\#(AgentHarness.callSid)"},"streamSid":"\#(streamSid)"}"#
        )
        #expect(closed.closeCodeReceived == 1000)
        #expect(closed.errors.isEmpty)
        // The socket closing after stop reports nothing to the call.
        try await harness.run { _, _ in }
        #expect(harness.log.snapshot.calls.isEmpty)
    }

    @Test("the agent closing the WebSocket hangs up the call", arguments: [true, false])
    func agentCloseIsHangUp(withCloseFrame: Bool) async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }

        if withCloseFrame {
            try await connection.sendClose(code: 1000)
        } else {
            try await connection.closeTCP()
        }
        let outcome = try await harness.log.waitForOutcome()
        #expect(outcome == .hangUp("agent closed the stream"))
        let closed = try await connection.waitForClose()
        if withCloseFrame { #expect(closed.closeCodeReceived == 1000) }  // the gateway answered the handshake
        try await harness.run { agent, _ in agent.stop(reason: "call ended") }
        #expect(harness.log.snapshot.outcomes.count == 1)
    }

    @Test("an upgrade refused with 503 is unreachable, reported once")
    func refusedUpgradeIsUnreachable() async throws {
        let server = try await RecordingAgentServer.start(behavior: .refuse(status: 503))
        defer { Task { try await server.shutdown() } }
        // Long enough that a loaded machine still sees the 503 before the deadline (which the test then outlives).
        let timeout = TimeAmount.seconds(1)
        let harness = try await AgentHarness.make(url: server.url(), connectTimeout: timeout)
        try await harness.start()
        let outcome = try await harness.log.waitForOutcome()
        guard case .failed(.unreachable(let detail)) = outcome else {
            Issue.record("expected unreachable, got \(outcome)")
            return
        }
        #expect(detail.contains("503"))
        #expect(try await server.waitForRequests(count: 1) == ["/stream"])
        // Outlive the connect deadline: it must not report a second time.
        try await harness.loop.scheduleTask(in: timeout * 2) {}.futureResult.get()
        #expect(harness.log.snapshot.calls.count == 1)
    }

    @Test("nothing listening is unreachable, reported once")
    func nothingListeningIsUnreachable() async throws {
        let server = try await RecordingAgentServer.start()
        let port = server.port
        try await server.shutdown()
        let timeout = TimeAmount.milliseconds(300)
        let harness = try await AgentHarness.make(url: "ws://127.0.0.1:\(port)/stream", connectTimeout: timeout)
        try await harness.start()
        let outcome = try await harness.log.waitForOutcome()
        guard case .failed(.unreachable) = outcome else {
            Issue.record("expected unreachable, got \(outcome)")
            return
        }
        try await harness.loop.scheduleTask(in: timeout * 2) {}.futureResult.get()
        #expect(harness.log.snapshot.calls.count == 1)
        try await harness.run { agent, _ in agent.stop(reason: "fallback played") }
        #expect(harness.log.snapshot.calls.count == 1)
    }

    @Test("an agent that accepts TCP but never answers the upgrade times out as unreachable")
    func stalledUpgradeTimesOut() async throws {
        let server = try await RecordingAgentServer.start(behavior: .stall)
        defer { Task { try await server.shutdown() } }
        let harness = try await AgentHarness.make(url: server.url(), connectTimeout: .milliseconds(200))
        try await harness.start()
        try await server.waitForTCPConnections(count: 1)
        let outcome = try await harness.log.waitForOutcome()
        guard case .failed(.unreachable(let detail)) = outcome else {
            Issue.record("expected unreachable, got \(outcome)")
            return
        }
        #expect(detail.contains("200 ms"))
        #expect(harness.log.snapshot.calls.count == 1)
    }

    @Test("a frame over 1 MiB fails the call mid-call")
    func oversizedFrameFailsMidCall() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }

        try await connection.sendText(String(repeating: "x", count: TwilioMediaStreamAgent.maxInboundMessageSize + 1))
        let outcome = try await harness.log.waitForOutcome()
        guard case .failed(.failedMidCall) = outcome else {
            Issue.record("expected failedMidCall, got \(outcome)")
            return
        }
        let closed = try await connection.waitForClose()
        #expect(closed.closeCodeReceived == 1009)  // message too big
        #expect(harness.log.snapshot.outcomes.count == 1)
    }

    @Test("a text frame that is not UTF-8 fails the call mid-call")
    func nonUTF8FailsMidCall() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }

        try await connection.sendFrame(opcode: .text, payload: ByteBuffer(bytes: [0x7B, 0xFF, 0xFE, 0x7D]))
        let outcome = try await harness.log.waitForOutcome()
        #expect(outcome == .failed(.failedMidCall("agent sent a text frame that is not UTF-8")))
        let closed = try await connection.waitForClose()
        #expect(closed.closeCodeReceived == 1007)
    }

    @Test("customParameters with quotes, backslashes and control characters stay valid JSON")
    func customParametersAreEscaped() async throws {
        let server = try await RecordingAgentServer.start()
        defer { Task { try await server.shutdown() } }
        let tricky = "\"Jane\" \\ O'Brien\n\t\u{01}\u{1F} é 📞 </script>"
        let context = CallContext(
            callSid: AgentHarness.callSid, accountSid: AgentHarness.accountSid, from: tricky, to: "+1\"2",
            trunk: "t\\k", route: "r", sipCallID: "id\r\n",
            extraParameters: [("x-\"odd\"\nname", "v\u{7F}\u{0}"), ("campaign", "spring")]
        )
        let harness = try await AgentHarness.make(url: server.url(), context: context)
        try await harness.start()
        let connection = try await server.waitForConnection()
        let start = try await connection.waitForEvent(named: "start")
        let parameters = try #require(start["start"]?["customParameters"]?.object, "start is not valid JSON: \(start.text)")
        #expect(parameters["from_number"]?.string == tricky)
        #expect(parameters["from"]?.string == tricky)
        #expect(parameters["to_number"]?.string == "+1\"2")
        #expect(parameters["trunk"]?.string == "t\\k")
        #expect(parameters["sip_call_id"]?.string == "id\r\n")
        #expect(parameters["x-\"odd\"\nname"]?.string == "v\u{7F}\u{0}")
        #expect(parameters["campaign"]?.string == "spring")
        #expect(parameters.count == 9)
        #expect(start.text.contains(#""from_number":"\"Jane\" \\ O'Brien\n\t\u0001\u001f é 📞 </script>""#))
        // Standard ones first, then extras in insertion order.
        let order = ["from_number", "to_number", "\"from\"", "\"to\"", "trunk", "route", "sip_call_id", "x-", "campaign"]
        let positions = order.map { start.text.range(of: $0)?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil })
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted())
        try await harness.run { agent, _ in agent.stop(reason: "test over") }
    }
}
