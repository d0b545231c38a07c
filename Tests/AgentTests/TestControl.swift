import Agent
import NIOCore
import SecureCapture
import TrunklineTestSupport

/// What an agent asked of the call, in order.
enum ControlCall: Sendable, Equatable {
    case play(count: Int)
    case mark(Int)
    case clear
    case hangUp(String)
    case failed(AgentFailure)
    case sendDigits(String)
    case startSecureCapture(SecureCaptureOptions)
    case stopSecureCapture
    case transfer(TransferCommand)
    case optOut(String)

    var isOutcome: Bool {
        switch self {
        case .hangUp, .failed: true
        default: false
        }
    }
}

struct ControlLog: Sendable {
    var calls: [ControlCall] = []
    /// Every sample passed to `agentPlay`, concatenated.
    var played: [Int16] = []
    var outcomes: [ControlCall] { self.calls.filter(\.isOutcome) }
}

/// A test `AgentCallControl` confined to one loop (or to the test, for loop-less agents) that records every call.
///
/// Like the gateway (and Twilio), `agentClear` reports the pending marks played at once.
final class RecordingControl: AgentCallControl {
    let log: WaitableState<ControlLog>
    weak var agent: CallAgent?
    /// Report each mark played as soon as it is queued (nothing is ever "playing").
    var acknowledgeMarksImmediately = false
    private(set) var pendingMarks: [Int] = []

    init(loop: EventLoop) {
        self.log = WaitableState(ControlLog(), loop: loop)
    }

    func agentPlay(_ samples: UnsafeBufferPointer<Int16>) {
        self.log.update {
            $0.calls.append(.play(count: samples.count))
            $0.played.append(contentsOf: samples)
        }
    }

    func agentMark(_ id: Int) {
        self.log.update { $0.calls.append(.mark(id)) }
        if self.acknowledgeMarksImmediately {
            self.agent?.markPlayed(id)
        } else {
            self.pendingMarks.append(id)
        }
    }

    func agentClear() {
        self.log.update { $0.calls.append(.clear) }
        let marks = self.pendingMarks
        self.pendingMarks.removeAll()
        for id in marks { self.agent?.markPlayed(id) }
    }

    func agentHangUp(reason: String) {
        self.log.update { $0.calls.append(.hangUp(reason)) }
    }

    /// Records the request; digits with an `x` fail, as a call without telephone-event would.
    func agentSendDigits(_ digits: String) throws {
        self.log.update { $0.calls.append(.sendDigits(digits)) }
        if digits.contains("x") { throw TestControlError(message: "no telephone-event") }
    }

    func agentFailed(_ failure: AgentFailure) {
        self.log.update { $0.calls.append(.failed(failure)) }
    }

    /// Records the request; a reference of "refuse" fails, as a route without a sink would.
    func agentStartSecureCapture(_ options: SecureCaptureOptions) throws {
        self.log.update { $0.calls.append(.startSecureCapture(options)) }
        if options.reference == "refuse" { throw TestControlError(message: "no payment sink on this route") }
    }

    func agentStopSecureCapture() throws {
        self.log.update { $0.calls.append(.stopSecureCapture) }
    }

    func agentTransfer(_ command: TransferCommand) throws {
        self.log.update { $0.calls.append(.transfer(command)) }
    }

    func agentOptOut(reason: String) throws {
        self.log.update { $0.calls.append(.optOut(reason)) }
    }
}

extension WaitableState<ControlLog> {
    /// The first call matching `predicate`.
    func waitForCall(
        timeout: Duration = .seconds(5), _ what: String, _ predicate: @escaping @Sendable (ControlCall) -> Bool
    ) async throws -> ControlCall {
        try await self.wait(timeout: timeout, what: what) { log in log.calls.first(where: predicate) }
    }

    func waitForOutcome(timeout: Duration = .seconds(5)) async throws -> ControlCall {
        try await self.waitForCall(timeout: timeout, "a hang-up or failure") { $0.isOutcome }
    }
}

struct TestControlError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
