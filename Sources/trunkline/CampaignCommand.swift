import ArgumentParser
import Compliance
import Foundation
import Gateway

/// `trunkline campaign create|import|start|pause|resume|stop|status|run`.
struct CampaignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign", abstract: "Create outbound campaigns, import their contacts, show progress.",
        subcommands: [Create.self, Import.self, Start.self, Pause.self, Resume.self, Stop.self, Status.self, Run.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a campaign (paused until started).")

        @OptionGroup var compliance: ComplianceOptions
        @Argument(help: "Campaign name (letters, digits, '.', '_', '-').") var name: String
        @Option(help: "marketing (needs written consent, pewc) or informational (pec or pewc).") var purpose: String
        @Option(help: "The seller named in the consents.") var seller: String
        @Option(help: "Subject for the per-state same-subject caps (default: the name).") var subject: String?
        @Option(help: "Trunk to call through.") var trunk: String
        @Option(help: "Dialplan route whose agent takes answered calls.") var route: String?
        @Option(help: "Caller ID (E.164).") var from: String
        @Option(help: "Callee local window HH:MM-HH:MM (default: the configured calling_window).") var window: String?
        @Option(help: "Attempts per contact.") var maxAttempts = Campaign.defaultMaxAttempts
        @Option(help: "Seconds before retrying after busy.") var retryBusy = Int(Campaign.defaultRetryBusySeconds)
        @Option(help: "Seconds before retrying after no answer or a network failure.") var retryNoAnswer = Int(Campaign.defaultRetryNoAnswerSeconds)
        @Option(help: "Calls in flight at once.") var concurrency = 1
        @Option(help: "New calls per second.") var cps = 1
        @Option(help: "A callee-local date with no calls, YYYY-MM-DD (repeatable).") var quietDate: [String] = []

        func run() throws {
            let draft = CampaignDraft(
                name: name, purpose: purpose, seller: seller, subject: subject, trunk: trunk, route: route, from: from, window: window,
                maxAttempts: maxAttempts, retryBusySeconds: retryBusy, retryNoAnswerSeconds: retryNoAnswer, concurrency: concurrency,
                callsPerSecond: cps, quietDates: quietDate)
            let campaign: Campaign
            do { campaign = try draft.campaign(defaultWindow: try compliance.settings().callingWindow) } catch let error as StoreError {
                throw ValidationError(error.description)
            }
            try compliance.withStore { store, _ in try await store.createCampaign(campaign) }
            print("created campaign \(name) (\(campaign.purpose.rawValue), window \(campaign.window), paused)")
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add contacts to a campaign from CSV (number[,timezone]); exit 1 if any row was bad.")

        @OptionGroup var compliance: ComplianceOptions
        @Argument(help: "Campaign name.") var name: String
        @Argument(help: "The CSV file.") var file: String

        func run() throws {
            let text = try readFile(file)
            let name = self.name
            let report = try compliance.withStore { store, _ in try await store.importCampaignContacts(csv: text, to: name) }
            print("added \(report.imported), already in the campaign \(report.duplicates), rejected rows \(Set(report.issues.map(\.row)).count)")
            printIssues(report.issues)
            if !report.issues.isEmpty { throw ExitCode(1) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a campaign's progress: dialled, answered, refused per rule, remaining.")

        @OptionGroup var compliance: ComplianceOptions
        @Argument(help: "Campaign name.") var name: String
        @Flag(help: "Follow the progress until the campaign is finished, paused or stopped (Ctrl-C to leave).") var watch = false

        func run() throws {
            if watch { return try CampaignProgress(compliance: compliance, name: name).follow() }
            let name = self.name
            let status = try compliance.withStore { store, _ in try await store.campaignStatus(name) }
            print(Self.render(status))
        }

        static func render(_ status: CampaignStatus) -> String {
            let campaign = status.campaign
            var lines = [
                "campaign \(campaign.id): \(campaign.state.rawValue), \(campaign.purpose.rawValue), seller '\(campaign.seller)', trunk \(campaign.trunk), window \(campaign.window)",
                "contacts \(status.contacts)  remaining \(status.remaining)  dialing \(status.dialing)  dialled \(status.dialled)  answered \(status.answered)",
            ]
            let refused = status.refused.values.reduce(0, +)
            lines.append("refused \(refused)" + status.refused.sorted { $0.key < $1.key }.map { "  \($0.key.rawValue) \($0.value)" }.joined())
            if !status.deferred.isEmpty {
                lines.append("waiting " + status.deferred.sorted { $0.key < $1.key }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: "  "))
            }
            if !status.dispositions.isEmpty {
                lines.append("finished " + status.dispositions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "  "))
            }
            return lines.joined(separator: "\n")
        }
    }
}
