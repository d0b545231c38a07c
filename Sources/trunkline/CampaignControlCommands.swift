import ArgumentParser
import Compliance
import Foundation
import Gateway

/// `campaign start|resume` ask the running gateway to dial (its admin API: the campaign runs in the serve process);
/// `pause|stop` write the store directly, so they work even when no gateway answers, and every gateway running the
/// campaign stops claiming contacts at its next tick.
extension CampaignCommand {
    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a campaign in the running gateway (it dials until done, paused or stopped).")

        @OptionGroup var compliance: ComplianceOptions
        @Argument(help: "Campaign name.") var name: String
        @Flag(help: "Then follow the progress live.") var watch = false

        func run() throws {
            try CampaignCommand.askGateway(compliance, name: name, action: "start")
            if watch { try CampaignProgress(compliance: compliance, name: name).follow() }
        }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a paused campaign in the running gateway.")

        @OptionGroup var compliance: ComplianceOptions
        @Argument(help: "Campaign name.") var name: String
        @Flag(help: "Then follow the progress live.") var watch = false

        func run() throws {
            try CampaignCommand.askGateway(compliance, name: name, action: "resume")
            if watch { try CampaignProgress(compliance: compliance, name: name).follow() }
        }
    }

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a campaign: no new call after the current tick; calls in flight finish.")

        @OptionGroup var compliance: ComplianceOptions
        @Argument(help: "Campaign name.") var name: String

        func run() throws { try CampaignCommand.setState(compliance, name: name, .paused) }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a campaign for good (it cannot be resumed).")

        @OptionGroup var compliance: ComplianceOptions
        @Argument(help: "Campaign name.") var name: String

        func run() throws { try CampaignCommand.setState(compliance, name: name, .stopped) }
    }

    static func askGateway(_ compliance: ComplianceOptions, name: String, action: String) throws {
        let config = try compliance.options.load()
        guard let port = config.admin.port else { throw StartupError(message: "the admin API is disabled; campaigns run in the gateway and start through it") }
        guard let path = name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) else { throw ValidationError("bad campaign name") }
        let answer = try AdminClient(config, port: port).requestBlocking(.POST, "/v1/campaigns/\(path)/\(action)", json: nil)
        print("campaign \(name): \(answer["state"] as? String ?? "?") in the gateway")
    }

    static func setState(_ compliance: ComplianceOptions, name: String, _ state: CampaignState) throws {
        try compliance.withStore { store, _ in try await store.setCampaignState(name, state) }
        print("campaign \(name): \(state.rawValue)")
    }
}

/// The live progress display: redrawn in place once a second on a terminal, a plain line per change otherwise.
struct CampaignProgress {
    let compliance: ComplianceOptions
    let name: String

    func follow() throws {
        let name = self.name
        let terminal = isatty(STDOUT_FILENO) == 1
        try compliance.withStore { store, _ in
            var shown: [String] = []
            while true {
                let status = try await store.campaignStatus(name)
                let lines = CampaignCommand.Status.render(status).split(separator: "\n").map(String.init)
                if lines != shown {
                    if terminal {
                        // Up to the first line of the last frame, then each line cleared and rewritten.
                        if !shown.isEmpty { print("\u{1B}[\(shown.count)A", terminator: "") }
                        for line in lines { print("\u{1B}[2K" + line) }
                    } else {
                        print(lines.joined(separator: " | "))
                    }
                    fflush(nil)
                    shown = lines
                }
                if CampaignProgress.isSettled(status) { return }
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Nothing will change without someone acting: stopped or paused with no call in flight, or nothing left.
    static func isSettled(_ status: CampaignStatus) -> Bool {
        status.dialing == 0 && (status.campaign.state != .running || status.remaining == 0)
    }
}
