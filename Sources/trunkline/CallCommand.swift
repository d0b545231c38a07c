import ArgumentParser
import Foundation
import Gateway

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
        let api = AdminClient(config, port: port)
        let placed = try api.requestBlocking(.POST, "/v1/calls", json: try JSONSerialization.data(withJSONObject: body))
        guard let sid = placed["sid"] as? String else { throw StartupError(message: "unexpected answer: \(placed)") }
        print("\(sid) \(placed["status"] as? String ?? "")")
        guard !noWait else { return }
        var last = placed["status"] as? String
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            let call = try api.requestBlocking(.GET, api.callPath(sid), json: nil)
            let status = call["status"] as? String
            if status != last {
                print("\(sid) \(status ?? "?")")
                last = status
            }
            if call["end_time"] as? String != nil { return }
        }
    }
}
