import ArgumentParser
import AsyncHTTPClient
import Foundation
import Gateway
import NIOCore
import NIOHTTP1

/// `trunkline call`: asks the running gateway (through its admin API) to place a call, and follows it.
struct CallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Place an outbound call through a trunk; the route's agent takes it when answered."
    )

    @OptionGroup var options: ConfigOptions

    @Option(help: "Trunk name (it must have an `outbound` section).")
    var trunk: String

    @Option(help: "Number to call, e.g. +15551230000.")
    var to: String

    @Option(help: "Caller ID to present, e.g. +15557650000.")
    var from: String

    @Option(help: "Dialplan route whose agent answers the call.")
    var route: String

    @Option(name: .customLong("param"), help: "Extra customParameters for the agent, name=value (repeatable).")
    var parameters: [String] = []

    @Option(help: "Ring timeout in seconds (default: the trunk's).")
    var ringTimeout: Int?

    @Flag(help: "Return once the call is placed instead of following it to the end.")
    var noWait = false

    func run() throws {
        let config = try options.load()
        guard let port = config.admin.port else { throw StartupError(message: "the admin API is disabled in \(options.config); it places calls") }
        var extra: [String: String] = [:]
        for parameter in parameters {
            guard let equals = parameter.firstIndex(of: "=") else { throw ValidationError("--param wants name=value, got '\(parameter)'") }
            extra[String(parameter[..<equals])] = String(parameter[parameter.index(after: equals)...])
        }
        var body: [String: Any] = ["trunk": trunk, "to": to, "from": from, "route": route, "parameters": extra]
        if let ringTimeout { body["ring_timeout_s"] = ringTimeout }
        let host = config.admin.listen.contains(":") ? "[\(config.admin.listen)]" : config.admin.listen
        let api = AdminClient(
            base: "http://\(host):\(port)",
            authorization: "Basic " + Data("\(config.accountSid):\(config.admin.authToken ?? "")".utf8).base64EncodedString())
        let placed = try api.request(.POST, "/v1/calls", json: try JSONSerialization.data(withJSONObject: body))
        guard let sid = placed["sid"] as? String else { throw StartupError(message: "unexpected answer: \(placed)") }
        print("\(sid) \(placed["status"] as? String ?? "")")
        guard !noWait else { return }
        var last = placed["status"] as? String
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            let call = try api.request(.GET, "/2010-04-01/Accounts/\(config.accountSid)/Calls/\(sid).json", json: nil)
            let status = call["status"] as? String
            if status != last {
                print("\(sid) \(status ?? "?")")
                last = status
            }
            if call["end_time"] as? String != nil { return }
        }
    }
}

/// Blocking JSON requests to the gateway's admin API, for the CLI.
private struct AdminClient {
    let base: String
    let authorization: String

    func request(_ method: HTTPMethod, _ path: String, json: Data?) throws -> [String: Any] {
        let (status, data) = try runBlocking { () -> Result<(UInt, Data), Error> in
            do {
                var request = HTTPClientRequest(url: base + path)
                request.method = method
                request.headers.add(name: "Authorization", value: authorization)
                if let json {
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(bytes: json))
                }
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                let body = try await response.body.collect(upTo: 1 << 20)
                return .success((response.status.code, Data(buffer: body)))
            } catch {
                return .failure(error)
            }
        }.mapError { StartupError(message: "cannot reach the gateway's admin API at \(base): \($0)") }.get()
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard (200..<300).contains(status) else {
            throw StartupError(message: "gateway answered \(status): \(object["message"] as? String ?? String(decoding: data, as: UTF8.self))")
        }
        return object
    }
}
