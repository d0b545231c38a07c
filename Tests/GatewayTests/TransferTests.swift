import Agent
@testable import Gateway
import SIP
import Testing

@Suite("Transfer: the state machine, targets and headers")
struct TransferTests {
    typealias Action = TransferMachine.Action

    // MARK: - Blind (REFER)

    @Test func aBlindTransferThatTheFarEndCompletesHangsUpTheCaller() {
        var machine = TransferMachine(mode: .blind, agentStays: false)
        #expect(machine.startActions == [.sendRefer])
        #expect(machine.referAnswered(status: 202, phrase: "Accepted") == [.report(TransferUpdate(.accepted, sipStatus: 202))])
        #expect(machine.notified(SIPFrag(status: 100, phrase: "Trying"), terminated: false) == [.report(TransferUpdate(.trying, sipStatus: 100))])
        #expect(machine.notified(SIPFrag(status: 180, phrase: "Ringing"), terminated: false) == [.report(TransferUpdate(.ringing, sipStatus: 180))])
        #expect(machine.notified(SIPFrag(status: 200, phrase: "OK"), terminated: true) == [
            .report(TransferUpdate(.completed, sipStatus: 200)), .outcome("transferred", sipStatus: 200),
            .hangUpCaller(by: "gateway", reason: "transferred"),
        ])
        #expect(machine.state == .finished)
        #expect(!machine.isUnderWay)
        // The caller's BYE that follows leaves nothing to do and records nothing more.
        #expect(machine.callerEnded() == [])
    }

    @Test(arguments: [405, 501, 603, 408])
    func aRefusedReferFallsBackToCallingTheTargetAndBridging(status: Int) {
        var machine = TransferMachine(mode: .blind, agentStays: false)
        let actions = machine.referAnswered(status: status, phrase: "No")
        #expect(actions.last == .dialHuman)
        guard case .report(let update) = actions.first else {
            Issue.record("expected a report first")
            return
        }
        #expect(update.status == .trying && update.sipStatus == status)
        #expect(machine.state == .dialling(.bridge))
        #expect(machine.humanProgress(status: 180) == [.report(TransferUpdate(.ringing, sipStatus: 180))])
        #expect(machine.humanAnswered() == [
            .report(TransferUpdate(.completed, sipStatus: 200)), .outcome("bridged", sipStatus: 200), .bridge(agentStays: false),
        ])
        #expect(machine.humanEnded(status: nil, reason: "the target hung up") == [
            .hangUpCaller(by: "transfer-target", reason: "transfer target hung up"),
        ])
    }

    @Test func aFailedNotifyFallsBackToBridgingAndAMissingStatusToo() {
        var machine = TransferMachine(mode: .blind, agentStays: true)
        _ = machine.referAnswered(status: 202, phrase: "Accepted")
        #expect(machine.notified(SIPFrag(status: 486, phrase: "Busy Here"), terminated: true).last == .dialHuman)

        var silent = TransferMachine(mode: .blind, agentStays: false)
        _ = silent.referAnswered(status: 202, phrase: "Accepted")
        #expect(silent.notified(nil, terminated: false) == [])
        #expect(silent.notified(nil, terminated: true).last == .dialHuman)
    }

    // MARK: - Bridge

    @Test func aBusyTargetReturnsTheCallToTheAgent() {
        var machine = TransferMachine(mode: .bridge, agentStays: false)
        #expect(machine.startActions.first == .dialHuman)
        #expect(machine.humanEnded(status: 486, reason: "target: callee answered 486 Busy Here") == [
            .report(TransferUpdate(.failed, sipStatus: 486, reason: "target: callee answered 486 Busy Here")),
            .outcome("failed", sipStatus: 486),
        ])
        #expect(machine.state == .abandoned)
        #expect(!machine.isUnderWay)
    }

    @Test func anAgentThatStaysKeepsListeningWhenBridged() {
        var machine = TransferMachine(mode: .bridge, agentStays: true)
        #expect(machine.humanAnswered().last == .bridge(agentStays: true))
    }

    @Test func theCallerHangingUpTakesTheHumansLegWithIt() {
        var dialling = TransferMachine(mode: .bridge, agentStays: false)
        #expect(dialling.callerEnded() == [.hangUpHuman(by: "caller", reason: "caller hung up"), .outcome("failed", sipStatus: nil)])
        var bridged = TransferMachine(mode: .bridge, agentStays: false)
        _ = bridged.humanAnswered()
        #expect(bridged.callerEnded() == [.hangUpHuman(by: "caller", reason: "caller hung up")])
        var referring = TransferMachine(mode: .blind, agentStays: false)
        #expect(referring.callerEnded() == [.outcome("failed", sipStatus: nil)])
    }

    // MARK: - Attended

    @Test func anAttendedTransferConsultsThenConnects() throws {
        var machine = TransferMachine(mode: .attended, agentStays: true)
        #expect(throws: TransferRefusal.self) { try machine.connect() }
        #expect(machine.humanAnswered() == [.consult, .report(TransferUpdate(.answered, sipStatus: 200))])
        // Connect always lets the agent go, whatever it asked for a bridge.
        #expect(try machine.connect() == [
            .report(TransferUpdate(.completed, sipStatus: 200)), .outcome("bridged", sipStatus: 200), .bridge(agentStays: false),
        ])
        #expect(throws: TransferRefusal.self) { try machine.cancel() }
    }

    @Test func anAttendedTransferCanBeCancelledOrEndedByTheHuman() throws {
        var cancelled = TransferMachine(mode: .attended, agentStays: false)
        _ = cancelled.humanAnswered()
        #expect(try cancelled.cancel() == [
            .hangUpHuman(by: "agent", reason: "transfer cancelled"), .endConsult, .report(TransferUpdate(.cancelled)),
            .outcome("cancelled", sipStatus: nil),
        ])
        var hungUp = TransferMachine(mode: .attended, agentStays: false)
        _ = hungUp.humanAnswered()
        #expect(hungUp.humanEnded(status: nil, reason: "the target hung up").first == .endConsult)
        #expect(hungUp.state == .abandoned)
    }

    @Test func aReferCannotBeCancelled() {
        var machine = TransferMachine(mode: .blind, agentStays: false)
        #expect(throws: TransferRefusal.self) { try machine.cancel() }
    }

    // MARK: - Targets and headers

    @Test func targetsAreURIsOrNumbers() throws {
        #expect(try TransferTarget.parse("sip:desk@example.test;transport=tcp") == .uri("sip:desk@example.test;transport=tcp"))
        #expect(try TransferTarget.parse("SIPS:desk@example.test") == .uri("SIPS:desk@example.test"))
        #expect(try TransferTarget.parse("+15550001111") == .number("+15550001111"))
        for bad in ["sip:desk@example.test?X-A=1", "sip:desk@example.test>\r\nX-Evil: 1", "sip:a b@c", "sip:", "tel:+1555", "+1555\r\n", "mailto:x@y",
                    "sip:" + String(repeating: "a", count: 300)] {
            #expect(throws: TransferRefusal.self, "\(bad)") { try TransferTarget.parse(bad) }
        }
    }

    @Test func aPasswordNeverReachesTheRecord() throws {
        #expect(try TransferTarget.parse("sip:desk:s3cret@example.test").redacted == "sip:desk@example.test")
        #expect(try TransferTarget.parse("sip:desk@example.test").redacted == "sip:desk@example.test")
        #expect(try TransferTarget.parse("+15550001111").redacted == "+15550001111")
    }

    @Test func headersAreUserToUserAndXHeadersWithoutLineBreaks() throws {
        try TransferHeaders.validate([
            TransferHeader(name: "User-to-User", value: "00ff12;encoding=hex"), TransferHeader(name: "X-Case-Id", value: "A 42 <b>"),
        ])
        let refused: [[TransferHeader]] = [
            [TransferHeader(name: "Via", value: "SIP/2.0/UDP evil")],
            [TransferHeader(name: "X-", value: "1")],
            [TransferHeader(name: "X-A: 1\r\nVia", value: "1")],
            [TransferHeader(name: "X-A", value: "1\r\nVia: SIP/2.0/UDP evil")],
            [TransferHeader(name: "X-A", value: "caf\u{e9}")],
            [TransferHeader(name: "X-A", value: String(repeating: "a", count: 513))],
            (0..<9).map { TransferHeader(name: "X-H\($0)", value: "1") },
            (0..<5).map { TransferHeader(name: "X-H\($0)", value: String(repeating: "a", count: 500)) },
        ]
        for headers in refused {
            #expect(throws: TransferRefusal.self, "\(headers)") { try TransferHeaders.validate(headers) }
        }
    }

    @Test func headersTravelAsURIHeadersInReferToAndAsLinesInAnInvite() {
        let headers = [TransferHeader(name: "User-to-User", value: "00ff;encoding=hex"), TransferHeader(name: "X-Note", value: "a b&c=d")]
        #expect(TransferHeaders.uri("sip:desk@example.test", carrying: headers)
            == "sip:desk@example.test?User-to-User=00ff%3Bencoding%3Dhex&X-Note=a%20b%26c%3Dd")
        #expect(TransferHeaders.uri("sip:desk@example.test", carrying: []) == "sip:desk@example.test")
        #expect(TransferHeaders.lines(headers) == ["User-to-User: 00ff;encoding=hex", "X-Note: a b&c=d"])
    }
}
