import AdminAPI
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// The admin routes in memory against a gateway that has no calls (live calls are covered end to end).
@Suite("Admin API routes")
struct AdminRouterTests {
    static let account = GatewayConfiguration.defaultAccountSid

    func makeApp(token: String? = "secret") throws -> some ApplicationProtocol {
        var configuration = GatewayConfiguration()
        configuration.prompts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("prompts").path
        configuration.callRecords = FileManager.default.temporaryDirectory.appendingPathComponent("admin-\(UUID().uuidString).jsonl").path
        let gateway = try Gateway(configuration: configuration, logger: Logger(label: "test"))
        let server = AdminServer(configuration: .init(host: "127.0.0.1", port: 0, authToken: token), gateway: gateway, logger: Logger(label: "test"))
        return Application(router: server.router())
    }

    static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    @Test func healthAnswers() async throws {
        try await makeApp().test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func anUnknownCallIsTwilios20404() async throws {
        try await makeApp().test(.router) { client in
            let uri = "/2010-04-01/Accounts/\(Self.account)/Calls/CA00000000000000000000000000000000.json"
            try await client.execute(uri: uri, method: .post, headers: [.authorization: Self.basic(Self.account, "secret"), .contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: "Status=completed")) { response in
                #expect(response.status == .notFound)
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                #expect(body?["code"] as? Int == 20404)
            }
            try await client.execute(uri: uri, method: .get, headers: [.authorization: Self.basic(Self.account, "secret")]) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test func wrongCredentialsAreRefused() async throws {
        try await makeApp().test(.router) { client in
            let uri = "/2010-04-01/Accounts/\(Self.account)/Calls/CA00000000000000000000000000000000.json"
            for headers: HTTPFields in [[:], [.authorization: Self.basic(Self.account, "wrong")], [.authorization: Self.basic("AC1", "secret")]] {
                try await client.execute(uri: uri, method: .get, headers: headers) { response in
                    #expect(response.status == .unauthorized)
                    #expect(response.headers[.wwwAuthenticate] != nil)
                }
            }
        }
    }

    @Test func placingACallNeedsTheAccountCredentials() async throws {
        try await makeApp().test(.router) { client in
            let body = ByteBuffer(string: #"{"trunk":"local","to":"+15557654321","from":"+15551230000","route":"demo"}"#)
            for headers: HTTPFields in [[.contentType: "application/json"], [.contentType: "application/json", .authorization: Self.basic(Self.account, "wrong")]] {
                try await client.execute(uri: "/v1/calls", method: .post, headers: headers, body: body) { response in
                    #expect(response.status == .unauthorized)
                }
            }
        }
    }

    @Test func listingLiveCallsAndRegistrationsNeedsTheAccountCredentials() async throws {
        try await makeApp().test(.router) { client in
            for uri in ["/v1/calls", "/v1/registrations"] {
                for headers: HTTPFields in [[:], [.authorization: Self.basic(Self.account, "wrong")]] {
                    try await client.execute(uri: uri, method: .get, headers: headers) { response in
                        #expect(response.status == .unauthorized, "\(uri)")
                    }
                }
            }
            try await client.execute(uri: "/v1/calls", method: .get, headers: [.authorization: Self.basic(Self.account, "secret")]) { response in
                #expect(response.status == .ok)
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                #expect((body?["calls"] as? [Any])?.isEmpty == true)
            }
        }
    }

    @Test func withoutATokenOnlyTheAccountIsChecked() async throws {
        try await makeApp(token: nil).test(.router) { client in
            let uri = "/2010-04-01/Accounts/\(Self.account)/Calls/CA00000000000000000000000000000000.json"
            try await client.execute(uri: uri, method: .get, headers: [.authorization: Self.basic(Self.account, "anything")]) { response in
                #expect(response.status == .notFound)  // authorised, then not found
            }
        }
    }

    @Test func aBadStatusIsRejected() async throws {
        try await makeApp().test(.router) { client in
            let uri = "/2010-04-01/Accounts/\(Self.account)/Calls/CA00000000000000000000000000000000.json"
            try await client.execute(uri: uri, method: .post, headers: [.authorization: Self.basic(Self.account, "secret"), .contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: "Status=ringing")) { response in
                #expect(response.status == .badRequest)
            }
        }
    }
}
