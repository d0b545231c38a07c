import Compliance
import Foundation
import Logging
import Media
import NIOConcurrencyHelpers

/// What campaign calls need in the serve process: the open compliance store, its settings, the disclosure prompts.
final class CampaignCompliance: Sendable {
    let store: ComplianceStore
    let settings: ComplianceSettings
    /// 8 kHz samples of `disclosure.prompt` and `disclosure.opt_out_prompt`.
    let disclosure: [Int16]
    let optOutConfirmation: [Int16]

    init(store: ComplianceStore, settings: ComplianceSettings, promptsFolder: String) throws {
        self.store = store
        self.settings = settings
        func load(_ name: String, _ key: String) throws -> [Int16] {
            do { return try WAVFile.load(path: "\(promptsFolder)/\(name).wav").samples } catch {
                throw CampaignCallError("compliance.disclosure.\(key): cannot load \(promptsFolder)/\(name).wav: \(error)")
            }
        }
        disclosure = try load(settings.disclosure.prompt, "prompt")
        optOutConfirmation = try load(settings.disclosure.optOutPrompt, "opt_out_prompt")
    }
}

/// Calls' ends, for whoever placed them and waits (a campaign in this process). Thread-safe.
final class CallEndWaiters: Sendable {
    private let waiters = NIOLockedValueBox<[String: [CheckedContinuation<CallRecord, Never>]]>([:])

    /// The record of call `sid` once it is written; at once when it already is.
    func wait(for sid: String, recent: RecentCalls) async -> CallRecord {
        await withCheckedContinuation { continuation in
            // `write` remembers the record before it calls `ended`: looked up under our lock, the record is either
            // found here or its `ended` comes after our registration.
            let ended = waiters.withLockedValue { waiters -> CallRecord? in
                if let record = recent.record(sid: sid) { return record }
                waiters[sid, default: []].append(continuation)
                return nil
            }
            if let ended { continuation.resume(returning: ended) }
        }
    }

    func ended(_ record: CallRecord) {
        let waiting = waiters.withLockedValue { $0.removeValue(forKey: record.callSid) ?? [] }
        for continuation in waiting { continuation.resume(returning: record) }
    }
}

extension DialOutcome {
    /// How a campaign reads a finished call (its call-resource status).
    public init(callStatus: CallSummary.Status, durationSeconds: Int, sipStatus: Int?, callSid: String) {
        switch callStatus {
        case .completed: self.init(.answered, durationSeconds: durationSeconds)
        case .busy: self.init(.busy)
        case .noAnswer, .canceled: self.init(.noAnswer)
        case .failed, .ringing, .inProgress: self.init(.failed(code: sipStatus ?? 0, reason: "call \(callSid) \(callStatus.rawValue)"))
        }
    }
}

/// Places a campaign's calls through this gateway directly (no HTTP) and waits for each to end.
struct GatewayDialer: CampaignDialer {
    let gateway: Gateway

    func dial(_ request: DialRequest) async -> DialOutcome {
        guard let route = request.route else { return DialOutcome(.refused(reason: "campaign has no route for answered calls")) }
        let placed: CallSummary
        do {
            placed = try gateway.placeCall(OutboundCallRequest(
                trunk: request.trunk, to: request.number.e164, from: request.from.e164, route: route,
                parameters: request.customParameters.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }))
        } catch {
            return DialOutcome(.failed(code: 0, reason: "\(error)"))
        }
        let services = gateway.services
        let record = await services.callEnds.wait(for: placed.record.callSid, recent: services.recentCalls)
        let summary = CallSummary(record: record)
        return DialOutcome(callStatus: summary.status, durationSeconds: Int(record.durationSeconds.rounded()), sipStatus: record.sipStatus,
                           callSid: record.callSid)
    }
}
