import AdminAPI
import Compliance
import ArgumentParser
import Dispatch
import Foundation
import Gateway
import Logging
import Metrics
import Prometheus

@main
struct Trunkline: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A SIP/PSTN gateway for AI voice agents.",
        subcommands: [
            Serve.self, CheckConfig.self, IdentityCommand.self, CallCommand.self,
            ConsentCommand.self,
            DNCCommand.self,
            CampaignCommand.self,
        ],
        defaultSubcommand: Serve.self
    )
}

struct ConfigOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Configuration file.")
    var config = "trunkline.yaml"

    func load() throws -> GatewayConfiguration {
        do {
            return try GatewayConfiguration.load(path: config)
        } catch let error as ConfigError {
            throw StartupError(message: "invalid configuration: \(error)")
        }
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway until SIGINT or SIGTERM.")

    @OptionGroup var options: ConfigOptions

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))
        let logger = Logger(label: "trunkline")
        let configuration = try options.load()
        let compliance = try configuration.compliance.map { try openComplianceStore($0) }
        let gateway = try Gateway(configuration: configuration, logger: logger, complianceStore: compliance)
        let campaigns = try compliance.map {
            try CampaignManager(gateway: gateway, store: $0, settings: configuration.compliance!, logger: Logger(label: "trunkline.campaign"))
        }
        let admin = try startAdmin(configuration, gateway: gateway, campaigns: campaigns, metrics: metrics, logger: logger)
        try gateway.start()
        if let campaigns {
            // A restart picks up where the last process stopped; its own interrupted attempts are closed, not re-dialled.
            let resumed: Result<[String], any Error> = runBlocking {
                do { return .success(try await campaigns.resumeRunningCampaigns()) } catch { return .failure(error) }
            }
            switch resumed {
            case .success(let names) where !names.isEmpty: logger.notice("resumed running campaigns", metadata: ["campaigns": "\(names)"])
            case .success: break
            case .failure(let error): logger.error("could not resume running campaigns", metadata: ["error": "\(error)"])
            }
        }

        let stop = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            sources.append(source)
        }
        stop.wait()
        logger.info("shutting down", metadata: ["active_calls": "\(gateway.activeCalls)"])
        if let admin {
            let stopped = DispatchSemaphore(value: 0)
            Task {
                await admin.shutdown()
                stopped.signal()
            }
            stopped.wait()
        }
        // Runners stop claiming; the gateway ends the calls in flight and their outcomes reach the store; then it closes.
        let runnersDone = campaigns.map { campaigns in Task { await campaigns.shutdown() } }
        gateway.shutdown()
        if let compliance {
            runBlocking {
                await runnersDone?.value
                try? await compliance.close()
            }
        }
        logger.info("stopped")
    }
}

/// Starts the admin HTTP API and waits until it listens, so a port in use stops the gateway with a clear error.
private func startAdmin(
    _ configuration: GatewayConfiguration, gateway: Gateway, campaigns: CampaignManager?, metrics: PrometheusCollectorRegistry, logger: Logger
) throws -> AdminServer.Running? {
    guard let port = configuration.admin.port else { return nil }
    let server = AdminServer(
        configuration: .init(host: configuration.admin.listen, port: port, authToken: configuration.admin.authToken),
        gateway: gateway, campaigns: campaigns, metrics: metrics, logger: logger)
    let outcome = AdminStartOutcome()
    let running = server.start(
        onRunning: { port in
            logger.info("admin API listening", metadata: ["address": "\(configuration.admin.listen):\(port)"])
            outcome.finish(nil)
        },
        onFailure: { outcome.finish($0) })
    if let error = outcome.wait() {
        throw StartupError(message: "cannot start the admin API on \(configuration.admin.listen):\(port): \(error)")
    }
    return running
}

/// The first of "listening" or "failed", handed from the server task to the starting thread.
private final class AdminStartOutcome: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var result: (any Error)??

    func finish(_ error: (any Error)?) {
        lock.lock()
        defer { lock.unlock() }
        guard result == nil else { return }
        result = .some(error)
        semaphore.signal()
    }

    func wait() -> (any Error)? {
        semaphore.wait()
        lock.lock()
        defer { lock.unlock() }
        return result ?? nil
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate the configuration and exit.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try options.load()
        print("ok: \(config.trunks.count) trunk(s), \(config.dialplan.routes.count) route(s)")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// A reason the gateway will not start, printed as `Error: …` without the usage text.
struct StartupError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
