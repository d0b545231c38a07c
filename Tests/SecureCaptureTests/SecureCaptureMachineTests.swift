import NIOCore
import Testing

@testable import SecureCapture

/// The capture state machine, one `#expect` per protocol step; time is passed in, nothing sleeps.
@Suite struct SecureCaptureMachineTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func options(_ change: (inout SecureCaptureOptions) -> Void = { _ in }) -> SecureCaptureOptions {
        var options = SecureCaptureOptions()
        options.reference = "order-7"
        change(&options)
        return options
    }

    /// Presses `keys` one per 100 ms from `start`, returning every action.
    static func press(_ keys: String, on machine: inout SecureCaptureMachine, from start: NIODeadline) -> [SecureCaptureMachine.Action] {
        keys.enumerated().flatMap { index, key in machine.key(key, at: start + .milliseconds(Int64(100 * (index + 1)))) }
    }

    static func submitted(_ actions: [SecureCaptureMachine.Action]) -> CapturedDigits? {
        for case .submit(let digits, _) in actions { return digits }
        return nil
    }

    @Test func theFinishKeyEndsTheCaptureAndOnlyMaskedCountsReachTheAgent() throws {
        var machine = SecureCaptureMachine()
        #expect(try machine.start(Self.options { $0.cardNumber = true }, allowLast4: false, at: t0) == [.notify(.started(reference: "order-7"))])
        #expect(machine.isCapturing)
        #expect(machine.key("5", at: t0 + .milliseconds(100)) == [.notify(.digit(count: 1))])
        #expect(machine.key("3", at: t0 + .milliseconds(200)) == [.notify(.digit(count: 2))])
        let actions = Self.press("92746103582741#", on: &machine, from: t0 + .milliseconds(200))
        let digits = try #require(Self.submitted(actions))
        #expect(digits.count == 16)
        #expect(digits.withUnsafeKeys { String(decoding: $0, as: UTF8.self) } == "5392746103582741")
        #expect(!machine.isCapturing)
        #expect(machine.deadline == nil)
        // Keys after the end are not the capture's.
        #expect(machine.key("1", at: t0 + .seconds(3)) == [])

        let result = machine.sinkAnswered(PaymentSinkOutcome(kind: .accepted(token: "tok_1", reference: nil), attempts: 1))
        #expect(result == [.notify(.result(SecureCaptureResult(
            status: .success, endedBy: .finishKey, count: 16, luhnValid: true, token: "tok_1", reference: "order-7", sinkAttempts: 1)))])
    }

    @Test func maxDigitsEndsTheCaptureOnTheLastKey() throws {
        var machine = SecureCaptureMachine()
        _ = try machine.start(Self.options { $0.maxDigits = 3; $0.finishKey = nil }, allowLast4: false, at: t0)
        let actions = Self.press("123", on: &machine, from: t0)
        #expect(actions.count == 4)
        #expect(actions[2] == .notify(.digit(count: 3)))
        #expect(Self.submitted(actions)?.count == 3)
        let result = machine.sinkAnswered(PaymentSinkOutcome(kind: .refused("payment sink refused the submission: HTTP 400"), attempts: 1))
        guard case .notify(.result(let value)) = result.first else { Issue.record("no result"); return }
        #expect(value.status == .failure)
        #expect(value.endedBy == .maxDigits)
        #expect(value.luhnValid == nil)
    }

    @Test func theInterDigitTimeoutSubmitsWhatWasPressedAndTheTotalTimeoutWins() throws {
        var machine = SecureCaptureMachine()
        _ = try machine.start(Self.options { $0.interDigitTimeout = .seconds(2); $0.totalTimeout = .seconds(10) }, allowLast4: false, at: t0)
        #expect(machine.deadline == t0 + .seconds(2))
        _ = machine.key("4", at: t0 + .seconds(1))
        #expect(machine.deadline == t0 + .seconds(3))
        #expect(machine.timerFired(at: t0 + .milliseconds(2999)) == [])
        let actions = machine.timerFired(at: t0 + .seconds(3))
        #expect(Self.submitted(actions)?.count == 1)
        let answer = machine.sinkAnswered(PaymentSinkOutcome(kind: .timedOut, attempts: 3))
        guard case .notify(.result(let value)) = answer.first else { Issue.record("no result"); return }
        #expect(value.status == .timeout)
        #expect(value.endedBy == .interDigitTimeout)
        #expect(value.sinkAttempts == 3)

        // Keys every 600 ms never trip the 2 s pause, but the 3 s total does.
        var fresh = SecureCaptureMachine()
        _ = try fresh.start(Self.options { $0.interDigitTimeout = .seconds(2); $0.totalTimeout = .seconds(3) }, allowLast4: false, at: t0)
        for i in 1...5 { _ = fresh.key("1", at: t0 + .milliseconds(Int64(600 * i))) }
        #expect(fresh.deadline == t0 + .seconds(3))
        guard case .submit = fresh.timerFired(at: t0 + .seconds(3)).first else { Issue.record("total timeout must submit"); return }
    }

    @Test func noKeyBeforeTheTimeoutIsATimeoutAndTooFewKeysAFailure() throws {
        var machine = SecureCaptureMachine()
        _ = try machine.start(Self.options(), allowLast4: false, at: t0)
        let timedOut = machine.timerFired(at: t0 + .seconds(5))
        #expect(timedOut == [.notify(.result(SecureCaptureResult(
            status: .timeout, endedBy: .interDigitTimeout, count: 0, reference: "order-7", error: "no key pressed")))])

        _ = try machine.start(Self.options { $0.minDigits = 12 }, allowLast4: false, at: t0)
        let short = Self.press("1234#", on: &machine, from: t0)
        #expect(Self.submitted(short) == nil)
        #expect(short.last == .notify(.result(SecureCaptureResult(
            status: .failure, endedBy: .finishKey, count: 4, reference: "order-7", error: "4 digits captured, at least 12 needed"))))
    }

    @Test func stopAndHangUpDiscardTheCapture() throws {
        var machine = SecureCaptureMachine()
        _ = try machine.start(Self.options(), allowLast4: false, at: t0)
        _ = Self.press("53927", on: &machine, from: t0)
        #expect(machine.stop() == [.notify(.result(SecureCaptureResult(status: .cancelled, endedBy: .stopped, count: 5, reference: "order-7")))])
        #expect(machine.stop() == [])
        _ = try machine.start(Self.options(), allowLast4: false, at: t0)
        _ = Self.press("5", on: &machine, from: t0)
        #expect(machine.callEnded() == [.notify(.result(SecureCaptureResult(status: .cancelled, endedBy: .callEnded, count: 1, reference: "order-7")))])
    }

    @Test func startIsRefusedWhileCapturingOrSubmittingOrWithBadOptions() throws {
        var machine = SecureCaptureMachine()
        #expect(throws: SecureCaptureMachine.StartError.invalid(.init("maxDigits must be 1...32"))) {
            try machine.start(Self.options { $0.maxDigits = 40 }, allowLast4: false, at: t0)
        }
        #expect(throws: SecureCaptureMachine.StartError.self) {
            try machine.start(Self.options { $0.finishKey = "x" }, allowLast4: false, at: t0)
        }
        _ = try machine.start(Self.options(), allowLast4: false, at: t0)
        #expect(throws: SecureCaptureMachine.StartError.alreadyCapturing) { try machine.start(Self.options(), allowLast4: false, at: t0) }
        _ = Self.press("1#", on: &machine, from: t0)
        #expect(throws: SecureCaptureMachine.StartError.submitting) { try machine.start(Self.options(), allowLast4: false, at: t0) }
    }

    @Test func lastFourOnlyWhenTheRouteAllowsItTheAgentAsksAndTheCaptureIsPANSized() throws {
        func lastFour(allow: Bool, ask: Bool, keys: String) throws -> String? {
            var machine = SecureCaptureMachine()
            _ = try machine.start(Self.options { $0.revealLast4 = ask }, allowLast4: allow, at: t0)
            _ = Self.press(keys + "#", on: &machine, from: t0)
            guard case .notify(.result(let result)) = machine.sinkAnswered(PaymentSinkOutcome(kind: .accepted(token: nil, reference: nil), attempts: 1)).first
            else { return nil }
            return result.last4
        }
        #expect(try lastFour(allow: true, ask: true, keys: "5392746103582741") == "2741")
        #expect(try lastFour(allow: false, ask: true, keys: "5392746103582741") == nil)
        #expect(try lastFour(allow: true, ask: false, keys: "5392746103582741") == nil)
        // A CVV is never given back, even where last-four is allowed.
        #expect(try lastFour(allow: true, ask: true, keys: "123") == nil)
    }

    @Test func capturedDigitsNeverPrintThemselves() {
        let digits = CapturedDigits(ascii: Array("5392746103582741".utf8))
        for text in ["\(digits)", String(describing: digits), String(reflecting: digits), "\([digits])"] {
            #expect(!text.contains("53927"), "\(text)")
            #expect(text.contains("16"))
        }
        var dumped = ""
        dump(digits, to: &dumped)
        #expect(!dumped.contains("53927"))
    }

    @Test(arguments: [
        ("5392746103582741", true), ("3729061845537105", true), ("5392746103582742", false),
        ("4242", false), ("12345678901234567890", false), ("53927461035827a1", false),
    ])
    func luhnAndLength(pan: String, plausible: Bool) {
        #expect(Array(pan.utf8).withUnsafeBufferPointer(CardNumberCheck.isPlausiblePAN) == plausible)
    }

    @Test func leakCheckFindsRunsLongerThanFour() {
        let digits = CapturedDigits(ascii: Array("5392746103582741".utf8))
        #expect(DigitLeak.contains("tok_46103x", runOf: digits))
        #expect(!DigitLeak.contains("tok_4610_2741", runOf: digits))
    }
}
