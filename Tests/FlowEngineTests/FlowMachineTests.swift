import Agent
import CallFlow
import NIOCore
import Testing

/// The flow engine step by step, with time passed in: no sleeps, no sockets.
@Suite("FlowMachine")
struct FlowMachineTests {
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static let callSid = "CA" + String(repeating: "a", count: 32)

    static func text(_ template: String) -> FlowText { try! FlowText(parsing: template) }

    static func gather(
        into variable: String = "d", max: Int = 32, timeout: Int64 = 5000, interDigit: Int64 = 2000, finish: Character? = "#"
    ) -> CallFlow.Step {
        .gather(.init(variable: variable, maxDigits: max, timeout: .milliseconds(timeout), interDigitTimeout: .milliseconds(interDigit), finishKey: finish))
    }

    static func machine(_ steps: [CallFlow.Step], maxSteps: Int = CallFlow.defaultMaxSteps) -> FlowMachine {
        FlowMachine(flow: CallFlow(steps: steps, maxSteps: maxSteps), variables: ["from": "+15551230001"], callSid: callSid)
    }

    @Test("gather ends on the finish key, which is not part of the value; the next say reads it key by key")
    func finishKey() {
        var m = Self.machine([Self.gather(), .say(Self.text("You pressed {d:digits}")), .hangUp(reason: "done")])
        #expect(m.start(at: Self.t0) == [])
        #expect(m.deadline == Self.t0 + .milliseconds(5000))
        #expect(m.key("1", at: Self.t0 + .seconds(1)) == [])
        #expect(m.deadline == Self.t0 + .seconds(1) + .milliseconds(2000))
        #expect(m.key("*", at: Self.t0 + .seconds(2)) == [])
        #expect(m.key("#", at: Self.t0 + .seconds(3)) == [.say("You pressed 1 star", id: 1)])
        #expect(m.variables["d"] == "1*")
        #expect(m.deadline == nil)
        #expect(m.audioPlayed(1, at: Self.t0 + .seconds(5)) == [.hangUp(reason: "done")])
        #expect(m.isDone)
        #expect(m.key("1", at: Self.t0 + .seconds(6)) == [])
    }

    @Test("gather ends at max digits")
    func maxDigits() {
        var m = Self.machine([Self.gather(max: 2), .hangUp(reason: "{d}")])
        _ = m.start(at: Self.t0)
        #expect(m.key("4", at: Self.t0) == [])
        #expect(m.key("2", at: Self.t0) == [.hangUp(reason: "{d}")])
        #expect(m.variables["d"] == "42")
    }

    @Test("no key before the timeout: the variable is empty; the timer early does nothing")
    func firstKeyTimeout() {
        var m = Self.machine([Self.gather(), .hangUp(reason: "timeout")])
        _ = m.start(at: Self.t0)
        #expect(m.timerFired(at: Self.t0 + .milliseconds(4999)) == [])
        #expect(m.timerFired(at: Self.t0 + .milliseconds(5000)) == [.hangUp(reason: "timeout")])
        #expect(m.variables["d"] == "")
    }

    @Test("after a key, the inter-digit timeout ends the gather with what was pressed")
    func interDigitTimeout() {
        var m = Self.machine([Self.gather(interDigit: 2000), .hangUp(reason: "x")])
        _ = m.start(at: Self.t0)
        _ = m.key("7", at: Self.t0 + .milliseconds(4000))
        // The first-key timeout no longer applies.
        #expect(m.timerFired(at: Self.t0 + .milliseconds(5000)) == [])
        #expect(m.timerFired(at: Self.t0 + .milliseconds(6000)) == [.hangUp(reason: "x")])
        #expect(m.variables["d"] == "7")
    }

    @Test("a key during a prompt stops it once and is kept for the next gather (type-ahead)")
    func bargeIn() {
        var m = Self.machine([.play(prompt: 0), .say(Self.text("menu")), Self.gather(max: 2), .hangUp(reason: "{d}")])
        #expect(m.start(at: Self.t0) == [.play(prompt: 0, id: 1)])
        #expect(m.key("3", at: Self.t0) == [.stopAudio(id: 1)])
        #expect(m.key("4", at: Self.t0) == [])
        #expect(m.audioPlayed(99, at: Self.t0) == [])  // not the audio it waits for
        // The next prompt still plays; the gather then takes both kept keys at once.
        #expect(m.audioPlayed(1, at: Self.t0) == [.say("menu", id: 2)])
        #expect(m.audioPlayed(2, at: Self.t0) == [.hangUp(reason: "{d}")])
        #expect(m.variables["d"] == "34")
    }

    @Test("branch jumps on the value, to default otherwise, or falls through without one")
    func branches() {
        let steps: [CallFlow.Step] = [
            Self.gather(max: 1),
            .branch(.init(variable: "d", cases: ["1": 3, "2": 4], otherwise: 5)),
            .hangUp(reason: "unreachable"),
            .hangUp(reason: "one"),
            .hangUp(reason: "two"),
            .branch(.init(variable: "d", cases: ["9": 3], otherwise: nil)),
            .hangUp(reason: "other"),
        ]
        for (key, reason) in [("1", "one"), ("2", "two"), ("5", "other")] {
            var m = Self.machine(steps)
            _ = m.start(at: Self.t0)
            #expect(m.key(Character(key), at: Self.t0) == [.hangUp(reason: reason)], "key \(key)")
        }
        var silent = Self.machine(steps)
        _ = silent.start(at: Self.t0)
        #expect(silent.timerFired(at: Self.t0 + .seconds(5)) == [.hangUp(reason: "other")])
    }

    @Test("a goto loop with no way out hangs up at max_steps instead of spinning")
    func endlessLoop() {
        var m = Self.machine([.set(variable: "n", value: Self.text("x")), .goto(step: 0)], maxSteps: 50)
        #expect(m.start(at: Self.t0) == [.hangUp(reason: "flow ran more than 50 steps (max_steps)")])
        #expect(m.isDone)
    }

    @Test("a menu loop repeats until max_steps, counting every step over the whole call")
    func menuLoop() {
        var m = Self.machine([.say(Self.text("menu")), Self.gather(max: 1), .goto(step: 0)], maxSteps: 7)
        var actions = m.start(at: Self.t0)
        var spoken = 0
        // say (1), gather (2), goto (3), … : the third gather would be step 8.
        while case .say(_, let id)? = actions.last {
            spoken += 1
            actions = m.audioPlayed(id, at: Self.t0)
            if actions.isEmpty { actions = m.key("5", at: Self.t0) }
        }
        #expect(spoken == 3)
        #expect(actions == [.hangUp(reason: "flow ran more than 7 steps (max_steps)")])
    }

    @Test("set and say interpolate variables, built-in ones included; unset ones read as nothing")
    func variables() {
        var m = Self.machine([
            .set(variable: "who", value: Self.text("caller {from}")),
            .say(Self.text("Hello {who}, {missing}bye")),
        ])
        #expect(m.start(at: Self.t0) == [.say("Hello caller +15551230001, bye", id: 1)])
        #expect(m.variables["who"] == "caller +15551230001")
        #expect(m.audioPlayed(1, at: Self.t0) == [.hangUp(reason: "flow finished")])
    }

    @Test("record: finish key, max length and hang-up each write the file; other keys are ignored")
    func record() {
        let steps: [CallFlow.Step] = [
            .record(.init(variable: "file", maxDuration: .seconds(30), finishKey: "#")),
            .say(Self.text("saved {file}")),
        ]
        var byKey = Self.machine(steps)
        #expect(byKey.start(at: Self.t0) == [.startRecording(maxDuration: .seconds(30))])
        #expect(byKey.variables["file"] == "\(Self.callSid)-1.wav")
        #expect(byKey.deadline == Self.t0 + .seconds(30))
        #expect(byKey.key("1", at: Self.t0) == [])
        #expect(byKey.key("#", at: Self.t0 + .seconds(3)) == [
            .finishRecording(file: "\(Self.callSid)-1.wav"), .say("saved \(Self.callSid)-1.wav", id: 1),
        ])

        var byTime = Self.machine(steps)
        _ = byTime.start(at: Self.t0)
        #expect(byTime.timerFired(at: Self.t0 + .seconds(30)).first == .finishRecording(file: "\(Self.callSid)-1.wav"))

        var byHangUp = Self.machine(steps)
        _ = byHangUp.start(at: Self.t0)
        #expect(byHangUp.callEnded() == [.finishRecording(file: "\(Self.callSid)-1.wav")])
        #expect(byHangUp.isDone)
        #expect(byHangUp.callEnded() == [])
    }

    @Test("templates: slots, :digits, and what is refused")
    func templates() throws {
        let text = try FlowText(parsing: "a {x} b {y:digits}")
        #expect(text.variables == ["x", "y"])
        #expect(text.fixed == nil)
        #expect(text.render(["x": "1", "y": "12#"]) == "a 1 b 1 2 pound")
        #expect(try FlowText(parsing: "plain").fixed == "plain")
        #expect(throws: FlowText.Invalid.unclosedBrace) { try FlowText(parsing: "a {x") }
        #expect(throws: FlowText.Invalid.badSlot("x:loud")) { try FlowText(parsing: "{x:loud}") }
        #expect(throws: FlowText.Invalid.badSlot("")) { try FlowText(parsing: "{}") }
    }

    @Test("transfer: the target is rendered from variables; keys wait; a failure goes on at on_failure, a completion ends the flow")
    func transfer() {
        let step = CallFlow.Step.transfer(.init(
            target: Self.text("sip:{d}@pbx.example"), mode: .bridge, headers: [TransferHeader(name: "X-Case", value: "7")], onFailure: 3))
        let steps: [CallFlow.Step] = [Self.gather(max: 3), step, .hangUp(reason: "not reached"), .hangUp(reason: "busy")]
        var m = Self.machine(steps)
        _ = m.start(at: Self.t0)
        _ = m.key("2", at: Self.t0)
        _ = m.key("0", at: Self.t0)
        let request = TransferRequest(target: "sip:201@pbx.example", headers: [TransferHeader(name: "X-Case", value: "7")], mode: .bridge)
        #expect(m.key("1", at: Self.t0) == [.transfer(request)])
        #expect(m.deadline == nil)
        #expect(m.key("5", at: Self.t0 + .seconds(1)) == [])
        #expect(m.transferEnded(completed: false, at: Self.t0 + .seconds(2)) == [.hangUp(reason: "busy")])

        var done = Self.machine(steps)
        _ = done.start(at: Self.t0)
        for key in "201" { _ = done.key(key, at: Self.t0) }
        #expect(done.transferEnded(completed: true, at: Self.t0 + .seconds(2)) == [])
        #expect(done.isDone)
        #expect(done.transferEnded(completed: false, at: Self.t0 + .seconds(3)) == [])
    }
}
