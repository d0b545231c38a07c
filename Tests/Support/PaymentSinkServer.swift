import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A tokenization service for tests: an HTTP server on 127.0.0.1 that checks each request's HMAC-SHA256
/// signature (`X-Trunkline-Signature: sha256=<hex>`) with the shared secret, records it, and answers from a
/// script — so a test can make the sink fail, stall or succeed, and see exactly what reached it.
///
/// Thread-safe; waits are event-driven with timeouts.
public final class PaymentSinkServer: Sendable {
    /// One answer, used in order; the last repeats.
    public enum Reply: Sendable {
        /// A status with a JSON body.
        case status(Int, body: String)
        /// Never answer (the gateway's attempt times out).
        case stall
    }

    /// A request as the sink saw it.
    public struct Request: Sendable {
        public var path: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]
        /// The signature header matched the HMAC of the body.
        public var signatureValid: Bool
        public var json: JSONValue? { JSONValue(parsing: String(decoding: body, as: UTF8.self)) }
        public func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    }

    public struct Snapshot: Sendable {
        public var requests: [Request] = []
    }

    public let port: Int
    public let secret: [UInt8]
    private let channel: Channel
    private let state: WaitableState<Snapshot>

    public var url: String { "http://127.0.0.1:\(port)/tokenize" }
    public var requests: [Request] { state.snapshot.requests }

    /// Starts serving with a fresh random secret (made at test time, never stored): 32 random bytes as hex text.
    public static func start(replies: [Reply] = [.status(200, body: #"{"token":"tok_test","reference":"sink-ref"}"#)]) async throws -> PaymentSinkServer {
        var generator = SystemRandomNumberGenerator()
        let secretText = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
        let secret = Array(secretText.utf8)
        let group = MultiThreadedEventLoopGroup.singleton
        let state = WaitableState(Snapshot(), loop: group.next())
        let script = ReplyScript(replies)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(SinkHandler(secret: secret, state: state, script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return PaymentSinkServer(port: channel.localAddress!.port!, secret: secret, channel: channel, state: state)
    }

    private init(port: Int, secret: [UInt8], channel: Channel, state: WaitableState<Snapshot>) {
        self.port = port
        self.secret = secret
        self.channel = channel
        self.state = state
    }

    /// The secret as the gateway's config takes it (`secret:`, whose UTF-8 bytes key the HMAC): 64 hex characters.
    public var secretText: String { String(decoding: secret, as: UTF8.self) }

    public func waitForRequests(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [Request] {
        try await state.wait(timeout: timeout, what: "\(count) sink request(s)") { $0.requests.count >= count ? $0.requests : nil }
    }

    public func shutdown() async {
        try? await channel.close()
    }
}

private final class ReplyScript: @unchecked Sendable {
    private let lock = NSLock()
    private var replies: [PaymentSinkServer.Reply]
    init(_ replies: [PaymentSinkServer.Reply]) { self.replies = replies }
    func next() -> PaymentSinkServer.Reply {
        lock.withLock { replies.count > 1 ? replies.removeFirst() : replies[0] }
    }
}

private final class SinkHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let secret: [UInt8]
    private let state: WaitableState<PaymentSinkServer.Snapshot>
    private let script: ReplyScript
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(secret: [UInt8], state: WaitableState<PaymentSinkServer.Snapshot>, script: ReplyScript) {
        self.secret = secret
        self.state = state
        self.script = script
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(let buffer):
            body += Array(buffer.readableBytesView)
        case .end:
            guard let head else { return }
            let expected = "sha256=" + HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret))
                .map { String(format: "%02x", $0) }.joined()
            let signature = head.headers.first(name: "X-Trunkline-Signature")
            let request = PaymentSinkServer.Request(
                path: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: body,
                signatureValid: signature == expected)
            state.update { $0.requests.append(request) }
            switch script.next() {
            case .stall:
                return
            case .status(let code, let text):
                let payload = ByteBuffer(string: text)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Content-Length", value: "\(payload.readableBytes)")
                context.write(Self.wrapOutboundOut(.head(.init(version: .http1_1, status: .init(statusCode: code), headers: headers))), promise: nil)
                context.write(Self.wrapOutboundOut(.body(.byteBuffer(payload))), promise: nil)
                context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
