import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import Testing
import TrunklineTestSupport

/// A stock Pipecat Twilio bot (pipecat-ai from PyPI, its own `FastAPIWebsocketTransport`, `TwilioFrameSerializer` and
/// `parse_telephony_websocket`, no cloud services) behind the real gateway, called by sipp.
/// The venv comes from `scripts/pipecat-venv.sh`; the bot is `pipecat/echo_bot.py` beside this file.
@Suite("Stock Pipecat bot through the gateway", .serialized)
struct PipecatInteropTests {
    static let localTrunk = "  - name: local\n    allow: [127.0.0.0/8]\n    symmetric_rtp: false"
    /// The account sid the gateway puts in `start` and serves its Twilio REST resource under.
    static let accountSid = "AC" + String(repeating: "0", count: 32)

    @Test func aStockPipecatBotHearsTheCallerGetsDigitsAnswersAndIsInterruptedByClear() async throws {
        let python = try await PipecatVenv.python()
        // Dummy credentials, as a bot deployed for Twilio has them: the serializer insists on them for its auto
        // hang-up, which then fails offline against api.twilio.com; closing the WebSocket still ends the call.
        let bot = try await PipecatBot.start(python: python, environment: [
            "TWILIO_ACCOUNT_SID": Self.accountSid, "TWILIO_AUTH_TOKEN": "dummy-token",
        ])
        defer { bot.stop() }
        let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: Self.localTrunk,
            routes: "  - name: pipecat\n    agent: { url: \"ws://127.0.0.1:\(bot.port)/ws\" }")
        defer { gateway.stop() }

        async let sippResult = Sipp.run(
            scenario: "pipecat_echo_barge_in.xml", gatewayPort: gateway.sipPort, service: "agent42",
            keys: ["rtp_sink": "\(sink.port)"], timeoutSeconds: 60)

        // Pipecat's parse_telephony_websocket recognised the gateway as Twilio from `connected` + `start`.
        let start = try await bot.waitForEvent("start", timeout: 20)
        #expect(start["transport_type"] as? String == "twilio", "\(start)")
        let streamSid = try #require(start["stream_id"] as? String, "\(start)")
        let callSid = try #require(start["call_id"] as? String, "\(start)")
        #expect(streamSid.hasPrefix("MZ") && streamSid.count == 34)
        #expect(callSid.hasPrefix("CA") && callSid.count == 34)
        #expect(start["from_number"] as? String == "+15551230001")
        #expect(start["to_number"] as? String == "agent42")

        // Caller speaks for 5 s; the bot echoes it. Then 9: the bot sends an 8 s tone at once.
        _ = try await bot.waitForEvent("dtmf", timeout: 30) { $0["digit"] as? String == "9" }
        let atNine = sink.snapshot.audible
        // 2.5 s later, #: the bot interrupts and Pipecat's serializer sends `clear`.
        let clear = try await bot.waitForEvent("clear_sent", timeout: 15)
        let atClear = sink.snapshot.audible
        #expect((clear["message"] as? [String: Any])?["streamSid"] as? String == streamSid)
        // The caller listens 5 s more, then hangs up.
        let result = try await sippResult
        #expect(result.exitCode == 0, "\(result.output)\n\(gateway.log)")
        let atEnd = sink.snapshot.audible

        // The caller's BYE: the gateway sends `stop`, then closes; the bot sees the stop, then the disconnect.
        let disconnected = try await bot.waitForEvent("disconnected", timeout: 15)
        let stop = try #require(bot.events.first { $0["event"] as? String == "ws_stop" }, "no stop before close: \(bot.eventText)")
        #expect((stop["stop"] as? [String: Any])?["callSid"] as? String == callSid)
        #expect((stop["stop"] as? [String: Any])?["accountSid"] as? String == Self.accountSid)
        #expect((stop["t"] as? Double ?? .infinity) <= (disconnected["t"] as? Double ?? 0))

        // What the bot got: the caller's audio (5 s of 20 ms frames) and both digits, in order.
        let audioFrames = disconnected["audio_frames"] as? Int ?? 0
        #expect(audioFrames >= 200, "bot got \(audioFrames) audio frames")
        #expect(disconnected["digits"] as? [String] == ["9", "#"])
        #expect(bot.events.filter { $0["event"] as? String == "dtmf" }.map { $0["digit"] as? String } == ["9", "#"])

        // What the caller heard: its own speech echoed before the 9 (≈ 250 packets of 20 ms if all were loud),
        // the tone between 9 and # (≈ 125), and after the `clear` nearly nothing — without the flush the tone
        // would run on for the 5 s the caller still listens (≈ 250 packets).
        let heard = "echo \(atNine), tone until clear \(atClear - atNine), after clear \(atEnd - atClear) audible packets"
        #expect(atNine >= 50, "\(heard)")
        #expect(atClear - atNine >= 60, "\(heard)")
        #expect(atEnd - atClear <= 40, "\(heard)")
        #expect(sink.snapshot.payloadTypes == [8], "\(sink.snapshot.payloadTypes)")

        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["call_sid"] as? String == callSid)
        #expect(record["hangup_by"] as? String == "caller", "\(record)")
        #expect(record["digits_received"] as? Int == 2, "\(record)")
        #expect(record["agent_failure"] == nil, "\(record)")
        print("PipecatInteropTests: \(heard); bot audio frames \(audioFrames); record \(record)")
        await sink.close()
    }

    /// The bot ends the call itself (an EndFrame, on `*`): Pipecat's serializer hangs up through Twilio's REST API and
    /// its transport closes the WebSocket. With `TWILIO_BASE_URL` on the gateway's admin API the REST call itself hangs
    /// up; with the stock default (api.twilio.com, unreachable here) the REST call fails and the close alone must end
    /// the call. Either way the caller gets a BYE.
    @Test(arguments: [true, false])
    func aStockPipecatBotHangsUpThroughTheRESTAPIOrByClosingTheSocket(restToGateway: Bool) async throws {
        let python = try await PipecatVenv.python()
        // The gateway comes first (it dials the bot only when a call arrives), so the bot can be given its admin port.
        let botPort = try FreePort.sipPort()
        let sink = try await RTPSink(group: MultiThreadedEventLoopGroup.singleton)
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: Self.localTrunk,
            routes: "  - name: pipecat\n    agent: { url: \"ws://127.0.0.1:\(botPort)/ws\" }")
        defer { gateway.stop() }
        var environment = ["TWILIO_ACCOUNT_SID": Self.accountSid, "TWILIO_AUTH_TOKEN": "dummy-token"]
        if restToGateway {
            environment["TWILIO_AUTH_TOKEN"] = "test-token"  // GatewayProcess's admin auth_token
            environment["TWILIO_BASE_URL"] = "http://127.0.0.1:\(gateway.adminPort)"
        }
        let bot = try await PipecatBot.start(python: python, port: botPort, environment: environment)
        defer { bot.stop() }
        let result = try await Sipp.run(
            scenario: "pipecat_bot_hangs_up.xml", gatewayPort: gateway.sipPort, service: "agent42",
            keys: ["rtp_sink": "\(sink.port)"], timeoutSeconds: 30)
        #expect(result.exitCode == 0, "the caller must get a BYE after the bot ends: \(result.output)\n\(bot.eventText)\n\(bot.log.suffix(4000))\n\(gateway.log.suffix(4000))")
        let start = try await bot.waitForEvent("start", timeout: 5)
        let callSid = try #require(start["call_id"] as? String)
        _ = try await bot.waitForEvent("rest_hang_up_done", timeout: 10)
        _ = try await bot.waitForEvent("pipeline_done", timeout: 10)
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["call_sid"] as? String == callSid)
        if restToGateway {
            try await bot.waitForLog(containing: "Successfully terminated Twilio call \(callSid)", timeout: 10)
            #expect(record["hangup_by"] as? String == "api", "\(record)")
        } else {
            try await bot.waitForLog(containing: "Failed to hang up Twilio call", timeout: 10)
            #expect(record["hangup_by"] as? String == "agent", "\(record)")
        }
        #expect(record["agent_failure"] == nil, "\(record)")
        print("PipecatInteropTests (REST to gateway: \(restToGateway)): hangup \(record["hangup_by"] ?? "-"): \(record["hangup_reason"] ?? "-")")
        await sink.close()
    }
}

/// `scripts/pipecat-venv.sh`: creates the venv once (pip install of the pinned pipecat-ai), then only prints its python.
enum PipecatVenv {
    static func python() async throws -> String {
        let script = GatewayProcess.packageRoot.appendingPathComponent("scripts/pipecat-venv.sh").path
        let result = try await ChildProcess.run(executable: "/bin/bash", arguments: [script], timeout: 900)
        let python = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard result.exitCode == 0, FileManager.default.isExecutableFile(atPath: python) else {
            throw HarnessError("scripts/pipecat-venv.sh failed (exit \(result.exitCode)):\n\(result.stdout)\n\(result.stderr)")
        }
        return python
    }
}

/// `pipecat/echo_bot.py` on a free port; its events (JSON lines) come on stdout and go to a file, its logs to stderr.
final class PipecatBot: Sendable {
    let port: Int
    let eventsPath: String
    private let process: Process
    private let stdout = OutputWatcher()
    private let stderr = OutputWatcher()
    private let exited = DispatchSemaphore(value: 0)

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("pipecat/echo_bot.py").path
    }

    private init(port: Int, eventsPath: String, process: Process) {
        self.port = port
        self.eventsPath = eventsPath
        self.process = process
    }

    static func start(python: String, port: Int? = nil, environment: [String: String]) async throws -> PipecatBot {
        let port = try port ?? FreePort.sipPort()
        let eventsPath = FileManager.default.temporaryDirectory.appendingPathComponent("pipecat-events-\(UUID().uuidString).jsonl").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--port", "\(port)", "--events", eventsPath]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            .merging(["PYTHONUNBUFFERED": "1"]) { $1 }
        let bot = PipecatBot(port: port, eventsPath: eventsPath, process: process)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        bot.stdout.attach(out)
        bot.stderr.attach(err)
        process.terminationHandler = { [exited = bot.exited] _ in exited.signal() }
        try process.run()
        do {
            _ = try await bot.waitForEvent("ready", timeout: 60)
        } catch {
            bot.stop()
            throw HarnessError("the Pipecat bot did not start: \(error)\n\(bot.stderr.text.suffix(4000))")
        }
        return bot
    }

    /// Every event line so far.
    var events: [[String: Any]] { Self.parse(stdout.text) }
    var eventText: String { stdout.text }
    var log: String { stderr.text }

    /// Waits for the first event named `name` for which `matching` holds, and returns it.
    @discardableResult
    func waitForEvent(_ name: String, timeout: Double, matching: @escaping @Sendable ([String: Any]) -> Bool = { _ in true }) async throws -> [String: Any] {
        let find: @Sendable (String) -> [String: Any]? = { text in
            Self.parse(text).first { $0["event"] as? String == name && matching($0) }
        }
        do {
            try await stdout.waitForLine(matching: { find($0) != nil }, timeout: timeout, what: "bot event '\(name)'")
        } catch {
            throw HarnessError("\(error)\nbot events:\n\(stdout.text)\nbot log (tail):\n\(stderr.text.suffix(6000))")
        }
        return find(stdout.text)!
    }

    /// Waits until the bot's log (its stderr, read apart from the events on stdout) holds `text`.
    func waitForLog(containing text: String, timeout: Double) async throws {
        do {
            try await stderr.waitForLine(containing: text, timeout: timeout)
        } catch {
            throw HarnessError("\(error)\nbot log (tail):\n\(stderr.text.suffix(6000))")
        }
    }

    private static func parse(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("{") else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    /// SIGTERM (uvicorn shuts down), SIGKILL if it has not exited within 10 s.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if exited.wait(timeout: .now() + 10) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: eventsPath)
    }
}

/// A short-lived child whose output is wanted whole; killed if it runs longer than `timeout`.
enum ChildProcess {
    struct Result: Sendable {
        var exitCode: Int32
        var stdout: String
        var stderr: String
    }

    static func run(executable: String, arguments: [String], timeout: Double) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        let timedOut = NIOLockedValueBox(false)
        let result = try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    // Both pipes are read to EOF on their own threads (a full stderr pipe must not block stdout).
                    DispatchQueue.global().async {
                        let errData = NIOLockedValueBox(Data())
                        let reader = DispatchGroup()
                        DispatchQueue.global().async(group: reader) {
                            let data = err.fileHandleForReading.readDataToEndOfFile()
                            errData.withLockedValue { $0 = data }
                        }
                        let outData = out.fileHandleForReading.readDataToEndOfFile()
                        reader.wait()
                        process.waitUntilExit()
                        continuation.resume(returning: Result(
                            exitCode: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                            stderr: String(decoding: errData.withLockedValue { $0 }, as: UTF8.self)))
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(timeout))
                timedOut.withLockedValue { $0 = true }
                kill(pid, SIGKILL)
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            if let first { return first }
            return try await group.next()!!
        }
        if timedOut.withLockedValue({ $0 }) {
            throw HarnessError("\(executable) \(arguments.joined(separator: " ")) took over \(timeout)s:\n\(result.stdout)\n\(result.stderr)")
        }
        return result
    }
}
