import Agent
import CallFlow
import Foundation
import Logging
import Media
import NIOCore
import NIOPosix
import Testing
import TrunklineTestSupport

/// The adapter between `FlowMachine` and a call: marks, clears, timers, speech and recordings, on one loop.
@Suite("FlowAgent")
struct FlowAgentTests {
    static let context = CallContext(
        callSid: "CA" + String(repeating: "c", count: 32), accountSid: "AC" + String(repeating: "b", count: 32),
        from: "+1555", to: "+1666", trunk: "demo", route: "flow", sipCallID: "x@y")
    static let intro: [Int16] = [1, 2, 3]
    static let one: [Int16] = [11, 11]

    /// intro, "Press a key", gather one key; 1 → the `one` prompt and hang up "one"; else hang up "other".
    static func menu(timeout: TimeAmount = .seconds(30)) -> CallFlow {
        CallFlow(
            steps: [
                .play(prompt: 0),
                .say(try! FlowText(parsing: "Press a key")),
                .gather(.init(variable: "d", maxDigits: 1, timeout: timeout, interDigitTimeout: .seconds(5), finishKey: "#")),
                .branch(.init(variable: "d", cases: ["1": 4], otherwise: 6)),
                .play(prompt: 1),
                .hangUp(reason: "one"),
                .hangUp(reason: "other"),
            ],
            prompts: [.init(path: "intro.wav", samples: intro), .init(path: "one.wav", samples: one)])
    }

    /// Runs the agent and its control on one loop.
    struct Harness: Sendable {
        let loop: EventLoop
        let agent: NIOLoopBound<FlowAgent>
        let control: NIOLoopBound<RecordingControl>
        let log: WaitableState<ControlLog>

        init(flow: CallFlow, acknowledgeMarks: Bool) async throws {
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let audio = try FlowAudio(flow: flow, sampleRate: 8000, speech: try SpeechSynthesizer())
            (agent, control, log) = try await loop.submit {
                let agent = FlowAgent(flow: flow, audio: audio, eventLoop: loop, logger: Logger(label: "test.flow"))
                let control = RecordingControl(loop: loop)
                control.agent = agent
                control.acknowledgeMarksImmediately = acknowledgeMarks
                agent.start(context: FlowAgentTests.context, control: control)
                return (NIOLoopBound(agent, eventLoop: loop), NIOLoopBound(control, eventLoop: loop), control.log)
            }.get()
            self.loop = loop
        }

        func run(_ body: @escaping @Sendable (FlowAgent, RecordingControl) -> Void) async throws {
            let agent = self.agent
            let control = self.control
            try await loop.submit { body(agent.value, control.value) }.get()
        }
    }

    @Test("each prompt waits for its mark; speech comes from the cache made at start; the key picks the branch")
    func menuByMarks() async throws {
        let harness = try await Harness(flow: Self.menu(), acknowledgeMarks: true)
        try await harness.run { agent, _ in agent.callerDigit("1") }
        #expect(try await harness.log.waitForOutcome() == .hangUp("one"))
        let log = harness.log.snapshot
        guard log.calls.count == 7, case .play(let spoken) = log.calls[2] else {
            Issue.record("unexpected calls \(log.calls)")
            return
        }
        #expect(log.calls == [.play(count: 3), .mark(1), .play(count: spoken), .mark(2), .play(count: 2), .mark(3), .hangUp("one")])
        #expect(Array(log.played.prefix(3)) == Self.intro)
        #expect(ToneAnalysis.rms(log.played[3..<(3 + spoken)]) > 500, "the speech is audible")
    }

    @Test("a key over a prompt clears it and counts for the gather")
    func bargeIn() async throws {
        let harness = try await Harness(flow: Self.menu(), acknowledgeMarks: false)
        try await harness.run { agent, _ in agent.callerDigit("1") }  // over the intro: cleared, mark 1 echoed
        try await harness.run { agent, _ in agent.markPlayed(2) }  // the speech played; the gather takes the kept "1"
        try await harness.run { agent, _ in agent.markPlayed(3) }
        #expect(try await harness.log.waitForOutcome() == .hangUp("one"))
        let calls = harness.log.snapshot.calls
        #expect(calls.prefix(3) == [.play(count: 3), .mark(1), .clear])
        #expect(calls.suffix(3) == [.play(count: 2), .mark(3), .hangUp("one")])
    }

    @Test("no key: the gather's timer fires on the loop and the default branch runs")
    func gatherTimesOut() async throws {
        let harness = try await Harness(flow: Self.menu(timeout: .milliseconds(50)), acknowledgeMarks: true)
        #expect(try await harness.log.waitForOutcome() == .hangUp("other"))
    }

    @Test("record keeps the caller's audio up to its max length and writes it as a WAV on the finish key")
    func records() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-rec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let flow = CallFlow(
            steps: [.record(.init(variable: "f", maxDuration: .seconds(1), finishKey: "#")), .hangUp(reason: "saved")],
            recordings: folder.path)
        let harness = try await Harness(flow: flow, acknowledgeMarks: true)
        let tone = ToneAnalysis.tone(frequency: 700, sampleRate: 8000, count: 160 * 60)  // 1.2 s, more than the max
        try await harness.run { agent, _ in
            for frame in stride(from: 0, to: tone.count, by: 160) {
                tone[frame..<(frame + 160)].withUnsafeBufferPointer { agent.callerAudio($0) }
            }
            agent.callerDigit("#")
        }
        #expect(try await harness.log.waitForOutcome() == .hangUp("saved"))
        let path = folder.appendingPathComponent("\(Self.context.callSid)-1.wav").path
        // Written on the thread pool: wait for it (bounded).
        for _ in 0..<500 where FileManager.default.contents(atPath: path) == nil {
            try await Task.sleep(for: .milliseconds(10))
        }
        let wav = try WAVFile.load(path: path)
        #expect(wav.samples.count == 8000)
        #expect(ToneAnalysis.energyShare(wav.samples[...], frequency: 700, sampleRate: 8000) > 0.9)
    }
}
