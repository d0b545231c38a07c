#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// The benchmark's agent: a WebSocket server on 127.0.0.1 that sends every `media` message straight back,
/// byte for byte (Trunkline reads only `event` and `media.payload` of it), and ignores everything else.
///
/// Echoing the text unparsed keeps the agent's CPU far below the gateway's, so the load generator and the agent
/// disturb the measurement as little as possible. When a stream closes it prints one JSON line on stdout:
/// frames received, and how many arrived more than `lateAfter` behind the stream's 20 ms cadence (measured from
/// the earliest frame relative to its slot, so the jitter buffer's fixed delay does not count).
enum EchoAgentServer {
    static let lateAfterNanoseconds: Int64 = 60_000_000

    /// - Parameter escaping: echo every `media` message with an escaped extra member in front, which the gateway's
    ///   fast reader leaves to its general JSON path: the cost of that path, for comparison.
    static func run(threads: Int, escaping: Bool) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: 1 << 20,
            shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
            upgradePipelineHandler: { channel, _ in
                channel.pipeline.addHandler(EchoHandler(escaping: escaping))
            }
        )
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: 4096)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
            }
            .bind(host: "127.0.0.1", port: 0)
            .wait()
        // The harness reads the port from this line.
        writeLine(to: 1, "echo-agent listening on port \(channel.localAddress!.port!)")
        try channel.closeFuture.wait()
    }
}

/// One stream. All methods run on the connection's loop.
private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private static let mediaPrefix = Array(#"{"event":"media""#.utf8)
    private static let escapedMember = Array(#"{"x":"\/","#.utf8)

    private let escaping: Bool

    private var frames = 0
    private var late = 0
    private var firstArrival: Int64 = 0
    /// Smallest (arrival − slot) seen: the stream's own fixed offset.
    private var baseline = Int64.max

    init(escaping: Bool) { self.escaping = escaping }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            let text = frame.unmaskedData
            guard text.readableBytesView.starts(with: Self.mediaPrefix) else { return }
            self.count(arrival: Int64(NIODeadline.now().uptimeNanoseconds))
            if self.escaping {
                var escaped = context.channel.allocator.buffer(capacity: text.readableBytes + Self.escapedMember.count)
                escaped.writeBytes(Self.escapedMember)
                escaped.writeImmutableBuffer(text.getSlice(at: text.readerIndex + 1, length: text.readableBytes - 1)!)
                context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: escaped)), promise: nil)
                return
            }
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: text)), promise: nil)
        case .ping:
            context.writeAndFlush(
                Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            var data = context.channel.allocator.buffer(capacity: 2)
            data.write(webSocketErrorCode: .normalClosure)
            let channel = context.channel
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)))
                .whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }

    private func count(arrival: Int64) {
        if self.frames == 0 { self.firstArrival = arrival }
        let offset = arrival - self.firstArrival - Int64(self.frames) * 20_000_000
        self.frames += 1
        self.baseline = min(self.baseline, offset)
        if offset - self.baseline > EchoAgentServer.lateAfterNanoseconds { self.late += 1 }
    }

    func channelInactive(context: ChannelHandlerContext) {
        writeLine(to: 1, "{\"frames\":\(self.frames),\"late\":\(self.late)}")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// One write(2) per line, unbuffered: lines from several loops never interleave, and the harness sees each at once.
func writeLine(to descriptor: Int32, _ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(descriptor, $0, strlen($0)) }
}
