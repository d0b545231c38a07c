import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TrunklineTestSupport

/// Twilio's REST call resource on the running gateway, against a live sipp call.
@Suite("Admin API end to end", .serialized)
struct AdminAPIEndToEndTests {
    static let account = "AC" + String(repeating: "0", count: 32)

    func request(_ method: String, _ url: String, form: String? = nil) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.setValue("Basic " + Data("\(Self.account):test-token".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        if let form {
            request.httpBody = Data(form.utf8)
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return ((response as! HTTPURLResponse).statusCode, json)
    }

    @Test func aBotHangsUpALiveCallThroughTwiliosRESTResource() async throws {
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: "  - name: local\n    allow: [127.0.0.0/8]",
            routes: "  - name: demo\n    embedded: demo")
        // The caller waits for our BYE (fallback_bye.xml answers it).
        async let caller = Sipp.run(scenario: "fallback_bye.xml", gatewayPort: gateway.sipPort, service: "1000", keys: ["rtp_sink": "4000"])
        try await gateway.waitForLog("call answered")

        let base = "http://127.0.0.1:\(gateway.adminPort)"
        let (listStatus, list) = try await request("GET", "\(base)/v1/calls")
        #expect(listStatus == 200)
        let live = try #require((list["calls"] as? [[String: Any]])?.first)
        let sid = try #require(live["sid"] as? String)
        #expect(live["status"] as? String == "in-progress")
        #expect(live["from"] as? String == "+15551230001")

        let resource = "\(base)/2010-04-01/Accounts/\(Self.account)/Calls/\(sid).json"
        let (getStatus, call) = try await request("GET", resource)
        #expect(getStatus == 200)
        #expect(call["to"] as? String == "1000")

        let (postStatus, updated) = try await request("POST", resource, form: "Status=completed")
        #expect(postStatus == 200)
        #expect(updated["status"] as? String == "completed")
        let result = try await caller
        #expect(result.exitCode == 0, "the caller must receive our BYE: \(result.output)")

        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["hangup_by"] as? String == "api")
        // After the call: still found, completed, with its duration.
        let (afterStatus, after) = try await request("GET", resource)
        #expect(afterStatus == 200)
        #expect(after["status"] as? String == "completed")
        #expect(after["duration"] as? String != nil)
        // Hanging up again is not an error (Twilio answers with the completed call).
        let (againStatus, _) = try await request("POST", resource, form: "Status=completed")
        #expect(againStatus == 200)

        // Prometheus: the call counted once by direction and outcome, none live, and no number in any series.
        let metrics = try await gateway.metrics()
        #expect(metrics.contains("trunkline_calls_total{direction=\"inbound\",outcome=\"answered\"} 1"), "\(metrics)")
        #expect(metrics.contains("trunkline_calls_live 0"), "\(metrics)")
        #expect(metrics.contains("trunkline_trunk_calls_total{trunk=\"local\",direction=\"inbound\"} 1"), "\(metrics)")
        #expect(!metrics.contains("5551230001"), "\(metrics)")
    }
}
