import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A Twilio-Media-Streams agent for tests: a WebSocket server on 127.0.0.1 that records every text frame the
/// gateway sends and lets the test speak as the agent (`media`, `mark`, `clear`, close).
///
/// Thread-safe: every method may be called from any task. Waits are driven by events, each with a timeout;
/// nothing polls or sleeps. Runs on `MultiThreadedEventLoopGroup.singleton` unless given a group.
///
/// ```swift
/// let server = try await RecordingAgentServer.start()
/// // point the gateway at server.url()
/// let connection = try await server.waitForConnection()
/// let start = try await connection.waitForEvent(named: "start")
/// try await connection.sendMark(name: "greeting-done")
/// ```
public final class RecordingAgentServer: Sendable {
    /// How the server answers an upgrade request.
    public enum Behavior: Sendable {
        /// Upgrade every request, whatever the path.
        case accept
        /// Answer every request with this HTTP status (e.g. 503) and close: an agent that is down.
        case refuse(status: Int)
        /// Accept TCP, then never answer: an agent that hangs.
        case stall
        /// Answer the first `refusals` requests with `status` and close, then upgrade: an agent restarting.
        case refuseThenAccept(refusals: Int, status: Int)
    }

    /// Decides whether an upgrade request carries the credentials the agent wants; refused ones get 401.
    public typealias Authorizer = @Sendable (HTTPRequestHead) -> Bool

    public let port: Int
    public let behavior: Behavior
    private let serverChannel: Channel
    private let events: WaitableState<ServerSnapshot>

    struct ServerSnapshot: Sendable {
        var connections: [Connection] = []
        var handedOut = 0
        /// HTTP requests seen, upgraded or refused.
        var requests: [String] = []
        var tcpConnections = 0
        /// Upgrade requests refused with 401 by the authorizer.
        var unauthorized = 0
    }

    private init(port: Int, behavior: Behavior, serverChannel: Channel, events: WaitableState<ServerSnapshot>) {
        self.port = port
        self.behavior = behavior
        self.serverChannel = serverChannel
        self.events = events
    }

    /// Binds to 127.0.0.1 on a free port and starts serving.
    /// - Parameter authorize: when set, upgrade requests it refuses are answered 401 (and counted in `unauthorized`).
    public static func start(
        behavior: Behavior = .accept,
        authorize: Authorizer? = nil,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> RecordingAgentServer {
        let events = WaitableState(ServerSnapshot(), loop: group.next())
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                var index = 0
                events.update {
                    $0.tcpConnections += 1
                    index = $0.tcpConnections
                }
                var effective = behavior
                if case .refuseThenAccept(let refusals, let status) = behavior {
                    effective = index <= refusals ? .refuse(status: status) : .accept
                }
                return channel.eventLoop.makeCompletedFuture { [effective] in
                    try configure(channel: channel, behavior: effective, authorize: authorize, events: events)
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        guard let port = channel.localAddress?.port else {
            try? await channel.close()
            throw RecordingAgentServerError(message: "server bound without a port")
        }
        return RecordingAgentServer(port: port, behavior: behavior, serverChannel: channel, events: events)
    }

    /// `ws://127.0.0.1:<port><path>`.
    public func url(path: String = "/stream") -> String { "ws://127.0.0.1:\(self.port)\(path)" }

    /// Request targets of the HTTP requests seen so far (upgraded or refused).
    public var requests: [String] { self.events.snapshot.requests }
    /// TCP connections accepted so far.
    public var tcpConnections: Int { self.events.snapshot.tcpConnections }
    /// Upgrade requests the authorizer refused (401).
    public var unauthorized: Int { self.events.snapshot.unauthorized }

    /// The next upgraded connection not yet returned by this method.
    public func waitForConnection(timeout: Duration = .seconds(5)) async throws -> Connection {
        try await self.events.wait(timeout: timeout, what: "a WebSocket connection") { snapshot in
            snapshot.connections.count > snapshot.handedOut ? snapshot.connections[snapshot.handedOut] : nil
        } then: { snapshot in
            snapshot.handedOut += 1
        }
    }

    /// Waits until `count` HTTP requests (upgraded or refused) have arrived.
    public func waitForRequests(count: Int, timeout: Duration = .seconds(5)) async throws -> [String] {
        try await self.events.wait(timeout: timeout, what: "\(count) HTTP request(s)") { snapshot in
            snapshot.requests.count >= count ? snapshot.requests : nil
        }
    }

    /// Waits until `count` TCP connections have been accepted.
    public func waitForTCPConnections(count: Int, timeout: Duration = .seconds(5)) async throws {
        _ = try await self.events.wait(timeout: timeout, what: "\(count) TCP connection(s)") { snapshot in
            snapshot.tcpConnections >= count ? true : nil
        }
    }

    /// Stops listening and closes every connection.
    public func shutdown() async throws {
        try? await self.serverChannel.close()
        for connection in self.events.snapshot.connections {
            try? await connection.channel.close()
        }
    }

    // MARK: - Pipeline

    private static func configure(
        channel: Channel, behavior: Behavior, authorize: Authorizer?, events: WaitableState<ServerSnapshot>
    ) throws {
        let sync = channel.pipeline.syncOperations
        switch behavior {
        case .stall:
            return
        case .refuse(let status):
            try sync.configureHTTPServerPipeline()
            try sync.addHandler(RefusingHTTPHandler(status: HTTPResponseStatus(statusCode: status), events: events))
        case .refuseThenAccept:
            preconditionFailure("resolved per connection in start")
        case .accept:
            // Answers the requests the authorizer refused; taken out of the pipeline when an upgrade succeeds.
            let unauthorized = authorize.map { _ in RefusingHTTPHandler(status: .unauthorized, events: events, recordRequest: false) }
            let upgrader = NIOWebSocketServerUpgrader(
                maxFrameSize: 1 << 22,
                automaticErrorHandling: true,
                shouldUpgrade: { channel, head in
                    events.update { $0.requests.append(head.uri) }
                    if let authorize, !authorize(head) {
                        events.update { $0.unauthorized += 1 }
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                    return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
                },
                upgradePipelineHandler: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        let connection = Connection(path: head.uri, headers: head.headers, channel: channel)
                        try channel.pipeline.syncOperations.addHandler(RecordingFrameHandler(connection: connection))
                        events.update { $0.connections.append(connection) }
                    }
                }
            )
            // Without an authorizer a request that is not an upgrade goes unanswered: a handler here would still
            // sit in the pipeline after an upgrade and see WebSocket bytes. With one, the 401 handler leaves the
            // pipeline as the upgrade completes.
            try sync.configureHTTPServerPipeline(
                withServerUpgrade: (upgraders: [upgrader], completionHandler: { [refuser = unauthorized.map { NIOLoopBound($0, eventLoop: channel.eventLoop) }] context in
                    if let refuser { context.pipeline.syncOperations.removeHandler(refuser.value, promise: nil) }
                })
            )
            if let unauthorized { try sync.addHandler(unauthorized) }
        }
    }
}

// MARK: - Connection

extension RecordingAgentServer {
    /// One message the gateway sent, as text and (when it is JSON) parsed.
    public struct ReceivedMessage: Sendable, CustomStringConvertible {
        public let text: String
        public let json: JSONValue?
        /// When the frame arrived.
        public let receivedAt: NIODeadline
        /// `json["event"]`, when present.
        public var event: String? { self.json?["event"]?.string }
        public subscript(key: String) -> JSONValue? { self.json?[key] }
        public var description: String { self.text }
    }

    /// Everything recorded on one connection so far.
    public struct Snapshot: Sendable {
        public var messages: [ReceivedMessage] = []
        public var binaryFrames = 0
        /// Pong frames received (answers to `sendPing`).
        public var pongs = 0
        /// The close code the gateway sent, once it sent a close frame (0 if the frame had no code).
        public var closeCodeReceived: UInt16?
        public var closeFrameSent = false
        /// The TCP connection is closed.
        public var isClosed = false
        public var errors: [String] = []
    }

    /// One upgraded WebSocket connection from the gateway.
    public final class Connection: Sendable {
        /// The request target of the upgrade request (path and query).
        public let path: String
        public let requestHeaders: HTTPHeaders
        let channel: Channel
        fileprivate let events: WaitableState<Snapshot>

        init(path: String, headers: HTTPHeaders, channel: Channel) {
            self.path = path
            self.requestHeaders = headers
            self.channel = channel
            self.events = WaitableState(Snapshot(), loop: channel.eventLoop)
        }

        /// The text frames received so far, in order.
        public var received: [ReceivedMessage] { self.events.snapshot.messages }
        public var snapshot: Snapshot { self.events.snapshot }

        /// The first message whose `event` is `name` (already received or still to come).
        public func waitForEvent(named name: String, timeout: Duration = .seconds(5)) async throws -> ReceivedMessage {
            try await self.events.wait(timeout: timeout, what: "a \"\(name)\" event") { snapshot in
                snapshot.messages.first { $0.event == name }
            }
        }

        /// The first `count` messages whose `event` is `name`.
        public func waitForEvents(
            named name: String, count: Int, timeout: Duration = .seconds(5)
        ) async throws -> [ReceivedMessage] {
            try await self.events.wait(timeout: timeout, what: "\(count) \"\(name)\" event(s)") { snapshot in
                let matching = snapshot.messages.filter { $0.event == name }
                return matching.count >= count ? Array(matching.prefix(count)) : nil
            }
        }

        /// Waits until `predicate` holds for the messages received so far; returns them.
        public func waitUntil(
            timeout: Duration = .seconds(5), _ predicate: @escaping @Sendable ([ReceivedMessage]) -> Bool
        ) async throws -> [ReceivedMessage] {
            try await self.events.wait(timeout: timeout, what: "the condition") { snapshot in
                predicate(snapshot.messages) ? snapshot.messages : nil
            }
        }

        /// Waits until `predicate` holds for everything recorded (pongs, close frames…); returns it.
        public func waitForSnapshot(
            timeout: Duration = .seconds(5), what: String = "the condition",
            _ predicate: @escaping @Sendable (Snapshot) -> Bool
        ) async throws -> Snapshot {
            try await self.events.wait(timeout: timeout, what: what) { snapshot in
                predicate(snapshot) ? snapshot : nil
            }
        }

        /// Waits until the TCP connection is closed; returns what was recorded.
        public func waitForClose(timeout: Duration = .seconds(5)) async throws -> Snapshot {
            try await self.events.wait(timeout: timeout, what: "the connection to close") { snapshot in
                snapshot.isClosed ? snapshot : nil
            }
        }

        /// The `streamSid` from the `start` message, once received.
        public var streamSid: String? {
            self.received.first { $0.event == "start" }?["streamSid"]?.string
        }

        // MARK: Speaking as the agent

        /// Sends `{"event":"media","streamSid":…,"media":{"payload":<base64 μ-law>}}` as Pipecat does.
        public func sendMedia(muLaw: [UInt8]) async throws {
            try await self.sendText(
                #"{"event":"media","streamSid":"\#(self.streamSid ?? "")","media":{"payload":"\#(Data(muLaw).base64EncodedString())"}}"#
            )
        }

        /// Sends `{"event":"mark","streamSid":…,"mark":{"name":name}}`.
        public func sendMark(name: String) async throws {
            try await self.sendText(
                #"{"event":"mark","streamSid":"\#(self.streamSid ?? "")","mark":{"name":\#(jsonString(name))}}"#
            )
        }

        /// Sends `{"event":"clear","streamSid":…}`.
        public func sendClear() async throws {
            try await self.sendText(#"{"event":"clear","streamSid":"\#(self.streamSid ?? "")"}"#)
        }

        /// Sends one text frame with exactly these bytes (`String` is UTF-8, so this cannot send invalid UTF-8;
        /// use `sendFrame` for that).
        public func sendText(_ text: String) async throws {
            var buffer = self.channel.allocator.buffer(capacity: text.utf8.count)
            buffer.writeString(text)
            try await self.sendFrame(opcode: .text, payload: buffer)
        }

        /// Sends one frame with any opcode and payload (unmasked, as a server must).
        public func sendFrame(opcode: WebSocketOpcode, payload: ByteBuffer) async throws {
            try await self.channel.writeAndFlush(WebSocketFrame(fin: true, opcode: opcode, data: payload))
        }

        /// Sends a ping; the gateway must answer with a pong (counted in `snapshot.pongs`).
        public func sendPing(_ payload: [UInt8] = [1, 2, 3, 4]) async throws {
            try await self.sendFrame(opcode: .ping, payload: ByteBuffer(bytes: payload))
        }

        /// Starts the closing handshake (close frame with `code`); the TCP connection closes when the gateway
        /// answers, as a Pipecat bot ending a call does.
        public func sendClose(code: UInt16 = 1000) async throws {
            self.events.update { $0.closeFrameSent = true }
            var data = self.channel.allocator.buffer(capacity: 2)
            data.writeInteger(code)
            try await self.sendFrame(opcode: .connectionClose, payload: data)
        }

        /// Closes the TCP connection without a close frame (a crashed agent, or a bare FIN).
        public func closeTCP() async throws {
            try await self.channel.close()
        }

        /// Resets the TCP connection (RST, as the kernel does for a killed process with unread data).
        public func abort() async throws {
            guard let socket = self.channel as? SocketOptionProvider else {
                throw RecordingAgentServerError(message: "the connection's channel has no socket options")
            }
            try await socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
            try await self.channel.close()
        }
    }
}

// MARK: - Handlers

/// Answers every HTTP request with one status, then closes (an agent that is down).
private final class RefusingHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let status: HTTPResponseStatus
    private let events: WaitableState<RecordingAgentServer.ServerSnapshot>
    /// False where the upgrader already recorded the request.
    private let recordRequest: Bool

    init(status: HTTPResponseStatus, events: WaitableState<RecordingAgentServer.ServerSnapshot>, recordRequest: Bool = true) {
        self.status = status
        self.events = events
        self.recordRequest = recordRequest
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            if self.recordRequest { self.events.update { $0.requests.append(head.uri) } }
        case .body:
            break
        case .end:
            let body = ByteBuffer(string: "agent unavailable\n")
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "\(body.readableBytes)")
            headers.add(name: "Connection", value: "close")
            context.write(Self.wrapOutboundOut(.head(.init(version: .http1_1, status: self.status, headers: headers))), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}

/// Records the gateway's frames and plays the server's part of the closing handshake.
private final class RecordingFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let connection: RecordingAgentServer.Connection

    init(connection: RecordingAgentServer.Connection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        let events = self.connection.events
        switch frame.opcode {
        case .text:
            var payload = frame.unmaskedData
            let text = payload.readString(length: payload.readableBytes) ?? ""
            let message = RecordingAgentServer.ReceivedMessage(text: text, json: JSONValue(parsing: text), receivedAt: .now())
            events.update { $0.messages.append(message) }
        case .binary:
            events.update { $0.binaryFrames += 1 }
        case .pong:
            events.update { $0.pongs += 1 }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(Self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var payload = frame.unmaskedData
            let code = payload.readInteger(as: UInt16.self) ?? 0
            var alreadySent = false
            events.update {
                $0.closeCodeReceived = code
                alreadySent = $0.closeFrameSent
                $0.closeFrameSent = true
            }
            if alreadySent {
                context.close(promise: nil)
            } else {
                var reply = context.channel.allocator.buffer(capacity: 2)
                reply.writeInteger(code == 0 ? 1000 : code)
                let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: reply)
                context.writeAndFlush(Self.wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.connection.events.update { $0.errors.append("\(error)") }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.connection.events.update { $0.isClosed = true }
        context.fireChannelInactive()
    }
}

// MARK: - Waiting on events

/// A wait that ran out of time; says what it waited for and what it saw.
public struct RecordingAgentServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { self.message }
}

/// A lock-protected value plus waiters resumed when an update makes their condition true, or failed at their
/// deadline (scheduled on an event loop, so no task sleeps). Thread-safe.
///
/// Tests use it to record what loop-confined code did (`update`) and to await it (`wait`).
public final class WaitableState<Snapshot: Sendable>: @unchecked Sendable {
    private struct Waiter {
        /// Returns the resumption to run (outside the lock) once the condition holds.
        var check: (inout Snapshot) -> (() -> Void)?
        var fail: (Snapshot) -> Void
    }

    private let lock = NSLock()
    private let loop: EventLoop
    // protected by lock
    private var state: Snapshot
    private var waiters: [Int: Waiter] = [:]
    private var nextID = 0

    /// - Parameters:
    ///   - initial: the starting value.
    ///   - loop: where deadlines are scheduled.
    public init(_ initial: Snapshot, loop: EventLoop) {
        self.state = initial
        self.loop = loop
    }

    /// The current value.
    public var snapshot: Snapshot { self.lock.withLock { self.state } }

    /// Changes the value and resumes every waiter whose condition now holds.
    public func update(_ mutate: (inout Snapshot) -> Void) {
        var ready: [() -> Void] = []
        self.lock.withLock {
            mutate(&self.state)
            for (id, waiter) in self.waiters {
                if let resume = waiter.check(&self.state) {
                    self.waiters[id] = nil
                    ready.append(resume)
                }
            }
        }
        for resume in ready { resume() }
    }

    /// Waits until `condition` returns a value; `then` may record that the value was taken (under the lock).
    public func wait<Result: Sendable>(
        timeout: Duration, what: String,
        _ condition: @escaping @Sendable (Snapshot) -> Result?,
        then consume: @escaping @Sendable (inout Snapshot) -> Void = { _ in }
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, Error>) in
            let check: (inout Snapshot) -> (() -> Void)? = { state in
                guard let result = condition(state) else { return nil }
                consume(&state)
                return { continuation.resume(returning: result) }
            }
            let id: Int? = self.lock.withLock {
                if let resume = check(&self.state) {
                    resume()
                    return nil
                }
                let id = self.nextID
                self.nextID += 1
                self.waiters[id] = Waiter(check: check) { state in
                    continuation.resume(
                        throwing: RecordingAgentServerError(message: "timed out after \(timeout) waiting for \(what); saw \(state)")
                    )
                }
                return id
            }
            guard let id else { return }
            let components = timeout.components
            let nanoseconds = components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
            self.loop.scheduleTask(in: .nanoseconds(nanoseconds)) {
                let expired: (Waiter, Snapshot)? = self.lock.withLock {
                    guard let waiter = self.waiters.removeValue(forKey: id) else { return nil }
                    return (waiter, self.state)
                }
                if let (waiter, state) = expired { waiter.fail(state) }
            }
        }
    }
}

private func jsonString(_ value: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [value], options: [.fragmentsAllowed])
    return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
}

// MARK: - μ-law test signals

/// G.711 μ-law by the textbook algorithm (independent of spandsp, so tests can cross-check the gateway's codec).
public enum MuLawReference {
    public static func encode(_ sample: Int16) -> UInt8 {
        let bias = 0x84
        var pcm = Int(sample)
        let sign: Int = pcm < 0 ? 0x80 : 0
        if pcm < 0 { pcm = -pcm }
        pcm = min(pcm, 32635) + bias
        var exponent = 7
        var mask = 0x4000
        while exponent > 0 && pcm & mask == 0 {
            exponent -= 1
            mask >>= 1
        }
        let mantissa = (pcm >> (exponent + 3)) & 0x0F
        return ~UInt8(sign | exponent << 4 | mantissa)
    }

    public static func decode(_ byte: UInt8) -> Int16 {
        let u = Int(~byte)
        var t = ((u & 0x0F) << 3) + 0x84
        t <<= (u & 0x70) >> 4
        return Int16((u & 0x80) != 0 ? 0x84 - t : t - 0x84)
    }
}

/// `count` μ-law bytes of a sine tone at 8 kHz (default: 160 bytes = one 20 ms packet of 440 Hz).
public func makeMuLawTone(frequency: Double = 440, amplitude: Double = 8000, count: Int = 160) -> [UInt8] {
    (0..<count).map { i in
        MuLawReference.encode(Int16(amplitude * sin(2 * Double.pi * frequency * Double(i) / 8000)))
    }
}
