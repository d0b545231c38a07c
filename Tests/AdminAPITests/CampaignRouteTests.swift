import AdminAPI
import Compliance
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// The campaign and consent routes in memory, on a real SQLite store: credentials first, then the store's answers
/// as HTTP statuses (404 unknown campaign, 400 bad input) and JSON bodies.
@Suite("Admin API campaign routes")
struct CampaignRouteTests {
    static let account = GatewayConfiguration.defaultAccountSid
    static let auth: HTTPFields = [.authorization: AdminRouterTests.basic(account, "secret")]

    /// A gateway with `compliance:` on a temp SQLite store, its campaign manager and the admin router; nil store:
    /// no compliance section.
    static func withApp(compliance: Bool = true, _ body: (any ApplicationProtocol) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("admin-campaigns-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var configuration = GatewayConfiguration()
        configuration.prompts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("prompts").path
        configuration.callRecords = folder.appendingPathComponent("calls.jsonl").path
        var settings = ComplianceSettings()
        settings.store = .sqlite(path: folder.appendingPathComponent("compliance.db").path)
        configuration.compliance = compliance ? settings : nil
        let store = compliance ? try await ComplianceStore.open(settings.store, ledger: Ledger(signingKey: nil)) : nil
        let logger = Logger(label: "test")
        let gateway = try Gateway(configuration: configuration, logger: logger, complianceStore: store)
        let campaigns = try store.map { try CampaignManager(gateway: gateway, store: $0, settings: settings, logger: logger) }
        let server = AdminServer(configuration: .init(host: "127.0.0.1", port: 0, authToken: "secret"), gateway: gateway,
                                 campaigns: campaigns, logger: logger)
        do {
            try await body(Application(router: server.router()))
            try await store?.close()
        } catch {
            try? await store?.close()
            throw error
        }
    }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }

    static let draft = #"{"name":"june","purpose":"informational","seller":"Acme Clinic","trunk":"carrier","route":"demo","from":"+15552340000","cps":2}"#

    @Test func everyCampaignRouteNeedsTheCredentials() async throws {
        try await Self.withApp { app in
            try await app.test(.router) { client in
                let wrong: HTTPFields = [.authorization: AdminRouterTests.basic(Self.account, "guess")]
                for (method, uri) in [
                    (HTTPRequest.Method.post, "/v1/campaigns"), (.post, "/v1/consents"), (.get, "/v1/campaigns/june"),
                    (.post, "/v1/campaigns/june/contacts"), (.post, "/v1/campaigns/june/start"), (.post, "/v1/campaigns/june/pause"),
                    (.post, "/v1/campaigns/june/resume"), (.post, "/v1/campaigns/june/stop"),
                ] {
                    for headers in [HTTPFields(), wrong] {
                        try await client.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(string: Self.draft)) { response in
                            #expect(response.status == .unauthorized, "\(method) \(uri)")
                        }
                    }
                }
            }
        }
    }

    @Test func createImportPauseStopAndStatusAsJSON() async throws {
        try await Self.withApp { app in
            try await app.test(.router) { client in
                var headers = Self.auth
                headers[.contentType] = "application/json"
                try await client.execute(uri: "/v1/campaigns", method: .post, headers: headers, body: ByteBuffer(string: Self.draft)) { response in
                    #expect(response.status == .created)
                    #expect(Self.json(response.body)["state"] as? String == "paused")
                }
                try await client.execute(uri: "/v1/campaigns", method: .post, headers: headers, body: ByteBuffer(string: Self.draft)) { response in
                    #expect(response.status == .badRequest, "a second campaign of the same name")
                }
                let bad = Self.draft.replacingOccurrences(of: "informational", with: "sales")
                try await client.execute(uri: "/v1/campaigns", method: .post, headers: headers, body: ByteBuffer(string: bad.replacingOccurrences(of: "june", with: "july"))) { response in
                    #expect(response.status == .badRequest)
                    #expect((Self.json(response.body)["message"] as? String)?.contains("purpose") == true)
                }
                let csv = "number,timezone\n+12125550101,America/New_York\n12125550102,\n"
                try await client.execute(uri: "/v1/campaigns/june/contacts", method: .post, headers: Self.auth, body: ByteBuffer(string: csv)) { response in
                    #expect(response.status == .ok)
                    let report = Self.json(response.body)
                    #expect(report["imported"] as? Int == 1)
                    let issues = report["issues"] as? [[String: Any]]
                    #expect(issues?.first?["row"] as? Int == 3 && issues?.first?["column"] as? String == "number", "\(report)")
                }
                try await client.execute(uri: "/v1/campaigns/june/pause", method: .post, headers: Self.auth) { response in
                    #expect(Self.json(response.body)["state"] as? String == "paused")
                }
                try await client.execute(uri: "/v1/campaigns/june/stop", method: .post, headers: Self.auth) { response in
                    #expect(Self.json(response.body)["state"] as? String == "stopped")
                }
                try await client.execute(uri: "/v1/campaigns/june/start", method: .post, headers: Self.auth) { response in
                    #expect(response.status == .badRequest, "a stopped campaign stays stopped")
                }
                try await client.execute(uri: "/v1/campaigns/june", method: .get, headers: Self.auth) { response in
                    let status = Self.json(response.body)
                    #expect(status["contacts"] as? Int == 1 && status["remaining"] as? Int == 1 && status["dialled"] as? Int == 0, "\(status)")
                    #expect(status["running_here"] as? Bool == false)
                }
                try await client.execute(uri: "/v1/campaigns/nope", method: .get, headers: Self.auth) { response in
                    #expect(response.status == .notFound)
                }
            }
        }
    }

    @Test func withoutAComplianceSectionThereAreNoCampaigns() async throws {
        try await Self.withApp(compliance: false) { app in
            try await app.test(.router) { client in
                try await client.execute(uri: "/v1/campaigns/june", method: .get, headers: Self.auth) { response in
                    #expect(response.status == .notFound)
                    #expect((Self.json(response.body)["message"] as? String)?.contains("compliance") == true)
                }
            }
        }
    }
}
