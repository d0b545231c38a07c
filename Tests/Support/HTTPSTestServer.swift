import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A real HTTPS server on 127.0.0.1 (ephemeral port) that serves canned responses and counts requests per path.
public final class HTTPSTestServer: @unchecked Sendable {
    public struct Response: Sendable {
        public var status: HTTPResponseStatus = .ok
        public var headers: [(String, String)] = [("Content-Type", "application/pem-certificate-chain")]
        public var body: [UInt8]

        public init(status: HTTPResponseStatus = .ok, headers: [(String, String)] = [("Content-Type", "application/pem-certificate-chain")], body: [UInt8]) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    private let lock = NSLock()
    private var routes: [String: Response] = [:]
    private var counts: [String: Int] = [:]
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: Channel?
    public private(set) var port = 0

    public init(tls: TestTLS) throws {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(try tls.serverPEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(tls.serverKey.pemRepresentation.utf8), format: .pem))
        )
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(server: self))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    public func url(_ path: String) -> String { "https://127.0.0.1:\(port)\(path)" }

    public func set(_ path: String, _ response: Response) {
        lock.withLock { routes[path] = response }
    }

    public func requests(_ path: String) -> Int { lock.withLock { counts[path] ?? 0 } }

    fileprivate func respond(to path: String) -> Response {
        lock.withLock {
            counts[path, default: 0] += 1
            return routes[path] ?? Response(status: .notFound, headers: [], body: Array("not found".utf8))
        }
    }

    public func stop() async {
        try? await channel?.close()
        try? await group.shutdownGracefully()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let server: HTTPSTestServer
        var path = ""

        init(server: HTTPSTestServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                path = head.uri
            case .body:
                break
            case .end:
                let response = server.respond(to: path)
                var headers = HTTPHeaders(response.headers)
                headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
                headers.replaceOrAdd(name: "Connection", value: "close")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
            }
        }
    }
}

/// A TCP listener on 127.0.0.1 that accepts connections and never sends a byte (TLS handshake never completes).
public final class SilentServer: @unchecked Sendable {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let channel: Channel
    public let port: Int

    public init() throws {
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in channel.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress?.port ?? 0
    }

    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}
