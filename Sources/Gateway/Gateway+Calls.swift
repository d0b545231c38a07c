import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// A call as the admin API sees it: its record so far and where it stands.
public struct CallSummary: Sendable, Equatable {
    public enum Status: String, Sendable {
        case ringing, inProgress = "in-progress", completed, busy, failed, canceled, noAnswer = "no-answer"
    }

    public var record: CallRecord
    public var status: Status

    init(record: CallRecord) {
        self.record = record
        if record.endTime != nil, record.answerTime == nil, let outcome = record.outcome {
            status = switch outcome {
            case .busy: .busy
            case .noAnswer: .noAnswer
            case .canceled: .canceled
            case .failed, .answered: .failed
            }
            return
        }
        switch (record.endTime, record.answerTime, record.sipStatus) {
        case (nil, nil, _): status = .ringing
        case (nil, _, _): status = .inProgress
        case (_, .some, _): status = .completed
        case (_, nil, 486?), (_, nil, 600?): status = .busy
        case (_, nil, 487?): status = .canceled
        default: status = .failed
        }
    }
}

/// What a hang-up request found.
public enum HangUpOutcome: Sendable, Equatable {
    /// The call was live; BYE (or a final answer) is on its way.
    case hangingUp(CallSummary)
    /// The call had already ended.
    case alreadyEnded(CallSummary)
    case notFound
}

/// The last calls' records, for lookups after a call has ended. Bounded: the file is the archive.
final class RecentCalls: Sendable {
    static let capacity = 1000
    private let state = NIOLockedValueBox<(bySid: [String: CallRecord], order: [String])>(([:], []))

    func remember(_ record: CallRecord) {
        state.withLockedValue { state in
            if state.bySid.updateValue(record, forKey: record.callSid) == nil { state.order.append(record.callSid) }
            if state.order.count > Self.capacity { state.bySid[state.order.removeFirst()] = nil }
        }
    }

    func record(sid: String) -> CallRecord? { state.withLockedValue { $0.bySid[sid] } }
}

extension Gateway {
    /// Live calls, each read on its own loop.
    public func liveCalls() async -> [CallSummary] {
        var result: [CallSummary] = []
        for call in services.calls.withLockedValue({ Array($0.values) }) {
            if let summary = try? await call.eventLoop.submit({ CallSummary(record: call.record) }).get() {
                result.append(summary)
            }
        }
        return result.sorted { $0.record.startTime < $1.record.startTime }
    }

    /// A live or recently ended call by its `CA…` sid.
    public func call(sid: String) async -> CallSummary? {
        if let call = liveCall(sid: sid) {
            return try? await call.eventLoop.submit { CallSummary(record: call.record) }.get()
        }
        return services.recentCalls.record(sid: sid).map(CallSummary.init)
    }

    /// Ends a call on request (admin API, Twilio REST `Status=completed`), recording who asked and why.
    public func hangUp(sid: String, by party: String, reason: String) async -> HangUpOutcome {
        if let call = liveCall(sid: sid),
           let summary = try? await call.eventLoop.submit({ () -> CallSummary in
               call.requestHangUp(by: party, reason: reason)
               return CallSummary(record: call.record)
           }).get() {
            return .hangingUp(summary)
        }
        if let record = services.recentCalls.record(sid: sid) { return .alreadyEnded(CallSummary(record: record)) }
        return .notFound
    }

    private func liveCall(sid: String) -> Call? {
        services.calls.withLockedValue { calls in calls.values.first { $0.callSid == sid } }
    }

    /// The Twilio-style account id agents and REST clients use.
    public var accountSid: String { services.configuration.accountSid }
}
