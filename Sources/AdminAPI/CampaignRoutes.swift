import Compliance
import Foundation
import Gateway
import Hummingbird

/// `/v1/campaigns` and `/v1/consents`: campaigns run inside this gateway (see `CampaignManager`). Every route
/// needs the admin credentials (HTTP Basic: account sid, auth token).
extension AdminServer {
    /// Imports are CSV bodies; 16 MiB is about 150,000 consent rows — split bigger files.
    static let maxCSVBytes = 16 << 20

    func addCampaignRoutes(to router: Router<BasicRequestContext>) {
        router.post("/v1/consents") { request, _ -> ImportReportBody in
            try checkCredentials(request)
            let manager = try requireCampaigns()
            let text = try await csvBody(request)
            return ImportReportBody(try await mapStoreErrors { try await manager.store.importConsents(csv: text) })
        }
        router.post("/v1/campaigns") { request, context -> EditedResponse<CampaignStatusBody> in
            try checkCredentials(request)
            let manager = try requireCampaigns()
            let draft = try await request.decode(as: CampaignDraft.self, context: context)
            let status = try await mapStoreErrors { try await manager.create(draft) }
            return EditedResponse(status: .created, response: CampaignStatusBody(status, runningHere: false))
        }
        let campaign = router.group("/v1/campaigns/:campaign")
        campaign.get { request, context -> CampaignStatusBody in
            let (manager, id) = try campaignRequest(request, context)
            return CampaignStatusBody(try await mapStoreErrors { try await manager.status(id) }, runningHere: manager.isRunning(id))
        }
        campaign.post("contacts") { request, context -> ImportReportBody in
            let (manager, id) = try campaignRequest(request, context)
            let text = try await csvBody(request)
            return ImportReportBody(try await mapStoreErrors { try await manager.store.importCampaignContacts(csv: text, to: id) })
        }
        for action in ["start", "resume", "pause", "stop"] {
            campaign.post(RouterPath(action)) { request, context -> CampaignStatusBody in
                let (manager, id) = try campaignRequest(request, context)
                let status = try await mapStoreErrors {
                    switch action {
                    case "pause": try await manager.pause(id)
                    case "stop": try await manager.stop(id)
                    default: try await manager.start(id)
                    }
                }
                return CampaignStatusBody(status, runningHere: manager.isRunning(id))
            }
        }
    }

    private func requireCampaigns() throws -> CampaignManager {
        guard let campaigns else { throw TwilioRESTError.notFound("campaigns (the gateway's config has no compliance: section)") }
        return campaigns
    }

    private func campaignRequest(_ request: Request, _ context: BasicRequestContext) throws -> (CampaignManager, String) {
        try checkCredentials(request)
        return (try requireCampaigns(), try context.parameters.require("campaign"))
    }

    private func csvBody(_ request: Request) async throws -> String {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: Self.maxCSVBytes) } catch {
            throw TwilioRESTError.badRequest("the CSV body is over \(Self.maxCSVBytes) bytes; split the file")
        }
        guard let text = String(validating: buffer.readableBytesView, as: UTF8.self) else {
            throw TwilioRESTError.badRequest("the CSV body is not UTF-8")
        }
        return text
    }

    /// The store's "no such campaign" is a 404, bad input a 400; anything else stays a 500.
    private func mapStoreErrors<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as StoreError where error.isNotFound {
            throw TwilioRESTError.notFound(error.description)
        } catch let error as StoreError where error.isInvalidInput {
            throw TwilioRESTError.badRequest(error.description)
        }
    }
}

/// A campaign's progress as JSON: counts per rule and per disposition keyed by their names.
struct CampaignStatusBody: ResponseCodable {
    var name: String
    var state: String
    var purpose: String
    var seller: String
    var trunk: String
    var route: String?
    var window: String
    var contacts: Int
    var remaining: Int
    var dialing: Int
    var dialled: Int
    var answered: Int
    var refused: [String: Int]
    var waiting: [String: Int]
    var finished: [String: Int]
    /// This gateway has a runner for it (other gateways sharing the store may too).
    var running_here: Bool

    init(_ status: CampaignStatus, runningHere: Bool) {
        name = status.campaign.id
        state = status.campaign.state.rawValue
        purpose = status.campaign.purpose.rawValue
        seller = status.campaign.seller
        trunk = status.campaign.trunk
        route = status.campaign.route
        window = "\(status.campaign.window)"
        contacts = status.contacts
        remaining = status.remaining
        dialing = status.dialing
        dialled = status.dialled
        answered = status.answered
        refused = Dictionary(uniqueKeysWithValues: status.refused.map { ($0.key.rawValue, $0.value) })
        waiting = Dictionary(uniqueKeysWithValues: status.deferred.map { ($0.key.rawValue, $0.value) })
        finished = status.dispositions
        running_here = runningHere
    }
}

struct ImportReportBody: ResponseCodable {
    struct Issue: Codable {
        var row: Int
        var column: String
        var reason: String
    }

    var imported: Int
    var duplicates: Int
    var issues: [Issue]

    init(_ report: ImportReport) {
        imported = report.imported
        duplicates = report.duplicates
        issues = report.issues.map { Issue(row: $0.row, column: $0.column, reason: $0.reason) }
    }
}
