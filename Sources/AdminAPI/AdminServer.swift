import Foundation
import Gateway
import Hummingbird
import Logging
import Media
import Prometheus
import ServiceLifecycle

/// The admin HTTP API: health, live calls, and Twilio's REST call resource
/// (`/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`), so a bot configured with a Twilio-compatible
/// `base_url` can look a call up and hang it up exactly as on Twilio.
public struct AdminServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// HTTP Basic password for the Twilio-compatible endpoints (username: the account sid). When nil the API
        /// checks only the username, which the configuration allows on loopback addresses alone.
        public var authToken: String?

        public init(host: String, port: Int, authToken: String?) {
            self.host = host
            self.port = port
            self.authToken = authToken
        }
    }

    let configuration: Configuration
    let gateway: Gateway
    let logger: Logger
    /// Campaigns run in this process, when `compliance:` is configured.
    let campaigns: CampaignManager?
    /// What `GET /metrics` shows: the registry behind the process's swift-metrics backend.
    let metrics: PrometheusCollectorRegistry?

    public init(configuration: Configuration, gateway: Gateway, campaigns: CampaignManager? = nil,
                metrics: PrometheusCollectorRegistry? = nil, logger: Logger) {
        self.configuration = configuration
        self.gateway = gateway
        self.campaigns = campaigns
        self.metrics = metrics
        self.logger = logger
    }

    /// The routes, separate from the server so tests can drive them in memory.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ in "ok\n" }
        if let metrics {
            // Prometheus scrapes without credentials; the series carry no number, digit or call id.
            router.get("/metrics") { _, _ in
                var text: [UInt8] = []
                metrics.emit(into: &text)
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(bytes: text)))
            }
        }
        // Live calls carry callers' numbers: the same credentials as the rest of the call API.
        router.get("/v1/calls") { request, _ in
            try checkCredentials(request)
            return TwilioCallList(calls: await gateway.liveCalls().map { TwilioCallResource($0, accountSid: gateway.accountSid) })
        }
        router.post("/v1/calls") { request, context -> EditedResponse<TwilioCallResource> in
            try checkCredentials(request)
            let body = try await request.decode(as: PlaceCallRequest.self, context: context)
            do {
                let summary = try gateway.placeCall(body.outboundCallRequest)
                return EditedResponse(status: .created, response: TwilioCallResource(summary, accountSid: gateway.accountSid))
            } catch {
                throw TwilioRESTError.badRequest("\(error)")
            }
        }
        // Registering trunks and where each stands (the registrar's refusal, the next retry).
        router.get("/v1/registrations") { request, _ in
            try checkCredentials(request)
            return RegistrationList(registrations: gateway.registrations)
        }
        // Time in the gateway per media path segment and codec (see `MediaPathSegment`); `?reset=true` restarts it.
        router.get("/v1/media/latency") { request, _ in
            MediaLatencyReport(try await gateway.mediaLatency(reset: request.uri.queryParameters["reset"] == "true"))
        }
        addCampaignRoutes(to: router)
        let calls = router.group("/2010-04-01/Accounts/:account/Calls")
        calls.get(":call") { request, context in
            let sid = try authorize(request, context)
            guard let summary = await gateway.call(sid: sid) else { throw TwilioRESTError.notFound(sid) }
            return TwilioCallResource(summary, accountSid: gateway.accountSid)
        }
        calls.post(":call") { request, context in
            let sid = try authorize(request, context)
            let update = try await URLEncodedFormDecoder().decode(TwilioCallUpdate.self, from: request, context: context)
            guard update.Status == "completed" || update.Status == "canceled" else {
                throw TwilioRESTError.badRequest("Status must be completed or canceled")
            }
            switch await gateway.hangUp(sid: sid, by: "api", reason: "hung up through the REST API (Status=\(update.Status))") {
            case .hangingUp(var summary), .alreadyEnded(var summary):
                summary.status = .completed
                return TwilioCallResource(summary, accountSid: gateway.accountSid)
            case .notFound:
                throw TwilioRESTError.notFound(sid)
            }
        }
        return router
    }

    /// Starts serving; `onRunning` gets the bound port once the socket listens. The server stops gracefully
    /// (open requests finish) when the returned handle's `shutdown` is called.
    public func start(onRunning: @escaping @Sendable (Int) -> Void, onFailure: @escaping @Sendable (any Error) -> Void) -> Running {
        let app = Application(
            router: router(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Trunkline"),
            onServerRunning: { channel in onRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task {
            do {
                try await group.run()
            } catch {
                onFailure(error)
            }
        }
        return Running(group: group, task: task)
    }

    /// A started admin server.
    public struct Running: Sendable {
        let group: ServiceGroup
        let task: Task<Void, Never>

        /// Stops accepting, lets open requests finish, and returns when the server is down.
        public func shutdown() async {
            await group.triggerGracefulShutdown()
            await task.value
        }
    }

    /// Checks the account in the path and HTTP Basic credentials; returns the call sid from the path.
    private func authorize(_ request: Request, _ context: BasicRequestContext) throws -> String {
        let account = try context.parameters.require("account")
        try checkCredentials(request)
        guard account == gateway.accountSid else { throw TwilioRESTError.notFound(account) }
        let call = try context.parameters.require("call")
        guard call.hasSuffix(".json") else { throw TwilioRESTError.notFound(call) }
        return String(call.dropLast(5))
    }
}

extension AdminServer {
    /// HTTP Basic with the account sid as user and the auth token as password, as Twilio's REST API.
    func checkCredentials(_ request: Request) throws {
        guard let credentials = BasicCredentials(request.headers[.authorization]),
              credentials.username == gateway.accountSid,
              configuration.authToken.map({ credentials.password == $0 }) ?? true else {
            throw TwilioRESTError.unauthorized
        }
    }
}

/// The body of `GET /v1/registrations`.
struct RegistrationList: ResponseEncodable {
    var registrations: [TrunkRegistration]
}

/// The JSON body of `POST /v1/calls`.
struct PlaceCallRequest: Decodable {
    var trunk: String
    var to: String
    var from: String
    var route: String
    /// Extra agent `customParameters`.
    var parameters: [String: String]?
    var ring_timeout_s: Int?

    var outboundCallRequest: OutboundCallRequest {
        OutboundCallRequest(
            trunk: trunk, to: to, from: from, route: route,
            parameters: (parameters ?? [:]).sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) },
            ringTimeoutSeconds: ring_timeout_s)
    }
}

/// `Authorization: Basic base64(user:password)`.
struct BasicCredentials {
    var username: String
    var password: String

    init?(_ header: String?) {
        guard let header, header.lowercased().hasPrefix("basic "),
              let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: data, encoding: .utf8),
              let colon = text.firstIndex(of: ":") else { return nil }
        username = String(text[..<colon])
        password = String(text[text.index(after: colon)...])
    }
}
