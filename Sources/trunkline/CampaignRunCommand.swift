import ArgumentParser
import Compliance
import Foundation
import Gateway

extension CampaignCommand {
    /// `trunkline campaign run`: drives a campaign through a running gateway. Every dial passes the compliance gate
    /// and is recorded before the gateway is asked to place it, so killing this process and running it again never
    /// calls anyone twice.
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a campaign and place its calls through the running gateway until none is left (or it is paused or stopped).")

        @OptionGroup var compliance: ComplianceOptions
        @Argument(help: "Campaign name.") var name: String

        func run() throws {
            let config = try compliance.options.load()
            guard let port = config.admin.port else { throw StartupError(message: "the admin API is disabled; campaigns place their calls through it") }
            let dialer = AdminAPIDialer(api: AdminClient(config, port: port))
            let name = self.name
            let status = try compliance.withStore { store, settings in
                let gate = ComplianceGate(rules: try CallingRules.bundled(), nationalDNCMaxAgeDays: settings.nationalDNCMaxAgeDays)
                let runner = CampaignRunner(store: store, campaignID: name, dialer: dialer, gate: gate, instance: settings.instance,
                                            recheckSeconds: settings.recheckSeconds)
                try await runner.start()
                try await runner.run()
                return try await store.campaignStatus(name)
            }
            print(Status.render(status))
        }
    }
}

/// Places a campaign's calls through the gateway's admin API and follows each to its end.
struct AdminAPIDialer: CampaignDialer {
    let api: AdminClient

    func dial(_ request: DialRequest) async -> DialOutcome {
        guard let route = request.route else { return DialOutcome(.refused(reason: "campaign has no route for answered calls")) }
        let body: [String: Any] = [
            "trunk": request.trunk, "to": request.number.e164, "from": request.from.e164, "route": route,
            "parameters": request.customParameters,
        ]
        do {
            let placed = try await api.request(.POST, "/v1/calls", json: try JSONSerialization.data(withJSONObject: body))
            guard let sid = placed["sid"] as? String else { return DialOutcome(.failed(code: 0, reason: "gateway gave no call sid")) }
            while true {
                // The call resource is the gateway's own record: poll it rather than hold a connection per call.
                try await Task.sleep(for: .milliseconds(500))
                let call = try await api.request(.GET, api.callPath(sid), json: nil)
                guard call["end_time"] is String else { continue }
                let status = CallSummary.Status(rawValue: call["status"] as? String ?? "") ?? .failed
                return DialOutcome(callStatus: status, durationSeconds: Int(call["duration"] as? String ?? "") ?? 0, sipStatus: nil, callSid: sid)
            }
        } catch {
            return DialOutcome(.failed(code: 0, reason: "\(error)"))
        }
    }
}
