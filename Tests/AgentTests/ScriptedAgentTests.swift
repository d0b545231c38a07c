import Agent
import NIOPosix
import Testing

@Suite("ScriptedAgent")
struct ScriptedAgentTests {
    let greeting: [Int16] = [1, 2, 3]
    let one: [Int16] = [11, 11]
    let two: [Int16] = [22, 22, 22]
    let goodbye: [Int16] = [9, 9, 9, 9]
    let context = CallContext(
        callSid: "CA" + String(repeating: "a", count: 32), accountSid: "AC" + String(repeating: "b", count: 32),
        from: "+1555", to: "+1666", trunk: "demo", route: "demo", sipCallID: "x@y"
    )

    func makeAgent() -> (ScriptedAgent, RecordingControl) {
        let agent = ScriptedAgent(greeting: greeting, digits: ["1": one, "2": two], goodbye: goodbye)
        let control = RecordingControl(loop: MultiThreadedEventLoopGroup.singleton.next())
        control.agent = agent
        return (agent, control)
    }

    @Test("greets on start, reads back digits, ignores caller audio and unknown keys")
    func greetingAndReadback() {
        let (agent, control) = makeAgent()
        agent.start(context: context, control: control)
        #expect(control.log.snapshot.played == greeting)
        [Int16](repeating: 5, count: 160).withUnsafeBufferPointer { agent.callerAudio($0) }
        agent.callerDigit("2")
        agent.callerDigit("9")  // no prompt: nothing
        agent.callerDigit("1")
        #expect(control.log.snapshot.calls == [.play(count: 3), .play(count: 3), .play(count: 2)])
        #expect(control.log.snapshot.played == greeting + two + one)
    }

    @Test("# plays goodbye, then a mark; the hang-up waits for that mark")
    func hashHangsUpAfterGoodbye() {
        let (agent, control) = makeAgent()
        agent.start(context: context, control: control)
        agent.callerDigit("1")
        agent.callerDigit("#")
        let calls = control.log.snapshot.calls
        #expect(calls == [.play(count: 3), .play(count: 2), .play(count: 4), .mark(1)])
        #expect(control.log.snapshot.played == greeting + one + goodbye)

        agent.callerDigit("2")  // after #: ignored
        agent.markPlayed(42)  // not ours
        #expect(control.log.snapshot.outcomes.isEmpty)
        agent.markPlayed(1)
        #expect(control.log.snapshot.outcomes == [.hangUp("scripted agent finished")])
        agent.markPlayed(1)
        #expect(control.log.snapshot.outcomes.count == 1)
        #expect(control.log.snapshot.calls.count == 5)
    }

    @Test("a mark reported played at once (nothing queued) still ends the call once")
    func immediateMark() {
        let (agent, control) = makeAgent()
        control.acknowledgeMarksImmediately = true
        agent.start(context: context, control: control)
        agent.callerDigit("#")
        #expect(control.log.snapshot.outcomes == [.hangUp("scripted agent finished")])
    }

    @Test("after stop nothing reaches the call")
    func stopSilences() {
        let (agent, control) = makeAgent()
        agent.start(context: context, control: control)
        agent.callerDigit("#")
        agent.stop(reason: "caller hung up")
        agent.markPlayed(1)
        agent.callerDigit("1")
        #expect(control.log.snapshot.outcomes.isEmpty)
        #expect(control.log.snapshot.calls.count == 3)
    }
}
