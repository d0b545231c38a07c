import AsyncHTTPClient
import Foundation
import Gateway
import NIOCore
import NIOHTTP1

/// JSON requests to a running gateway's admin API (the address and credentials from its config), for the CLI.
struct AdminClient: Sendable {
    let base: String
    let accountSid: String
    let authorization: String

    init(_ config: GatewayConfiguration, port: Int) {
        let host = config.admin.listen.contains(":") ? "[\(config.admin.listen)]" : config.admin.listen
        base = "http://\(host):\(port)"
        accountSid = config.accountSid
        authorization = "Basic " + Data("\(config.accountSid):\(config.admin.authToken ?? "")".utf8).base64EncodedString()
    }

    /// Twilio's resource for one call.
    func callPath(_ sid: String) -> String { "/2010-04-01/Accounts/\(accountSid)/Calls/\(sid).json" }

    func request(_ method: HTTPMethod, _ path: String, json: Data?) async throws -> [String: Any] {
        let status: UInt
        let data: Data
        do {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            request.headers.add(name: "Authorization", value: authorization)
            if let json {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: json))
            }
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            status = response.status.code
            data = Data(buffer: try await response.body.collect(upTo: 1 << 20))
        } catch {
            throw StartupError(message: "cannot reach the gateway's admin API at \(base): \(error)")
        }
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard (200..<300).contains(status) else {
            throw StartupError(message: "gateway answered \(status): \(object["message"] as? String ?? String(decoding: data, as: UTF8.self))")
        }
        return object
    }

    func requestBlocking(_ method: HTTPMethod, _ path: String, json: Data?) throws -> [String: Any] {
        let result = runBlocking { () -> Result<JSONObject, Error> in
            do { return .success(JSONObject(value: try await request(method, path, json: json))) } catch { return .failure(error) }
        }
        return try result.get().value
    }
}

/// A parsed JSON object handed across a task boundary once (JSONSerialization's values are immutable).
struct JSONObject: @unchecked Sendable {
    var value: [String: Any]
}
