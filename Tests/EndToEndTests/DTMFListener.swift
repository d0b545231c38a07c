import NIOCore
import NIOPosix
import TrunklineTestSupport

@testable import Media

/// The caller's media port when the gateway sends DTMF: decodes what arrives — RFC 4733 events (with the
/// gateway's own receiver state machine) and in-band tones in PCMU audio (with spandsp's detector) — into key
/// strings a test can wait for.
final class DTMFListener: Sendable {
    struct Heard: Sendable {
        var events = ""
        var tones = ""
        var eventPackets = 0
    }

    let port: Int
    private let channel: Channel
    private let heard: WaitableState<Heard>

    init() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let heard = WaitableState(Heard(), loop: group.next())
        self.heard = heard
        channel = try await DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Decoder(heard: heard)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress!.port!
    }

    var snapshot: Heard { heard.snapshot }

    /// Waits until what was heard satisfies `condition`.
    func wait(for what: String, timeout: Duration = .seconds(15), until condition: @escaping @Sendable (Heard) -> Bool) async throws -> Heard {
        try await heard.wait(timeout: timeout, what: what) { condition($0) ? $0 : nil }
    }

    func close() async {
        try? await channel.close()
    }

    private final class Decoder: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let heard: WaitableState<Heard>
        var receiver = RFC4733Receiver()
        let detector = InbandDTMFDetector()!
        var pcm = [Int16](repeating: 0, count: 160)

        init(heard: WaitableState<Heard>) { self.heard = heard }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = Self.unwrapInboundIn(data).data
            buffer.withUnsafeReadableBytes { bytes in
                guard let (header, range) = RTPHeader.parse(bytes) else { return }
                let payload = UnsafeRawBufferPointer(rebasing: bytes[range])
                if header.payloadType == 101 {
                    let digit = receiver.receive(header: header, payload: payload)
                    heard.update {
                        $0.eventPackets += 1
                        if let digit { $0.events.append(digit.character) }
                    }
                } else if header.payloadType == 0, payload.count == 160 {
                    pcm.withUnsafeMutableBufferPointer { G711Law.muLaw.decode(payload, into: $0) }
                    var keys = ""
                    pcm.withUnsafeBufferPointer { detector.process($0) { keys.append($0) } }
                    if !keys.isEmpty { heard.update { $0.tones += keys } }
                }
            }
        }
    }
}
