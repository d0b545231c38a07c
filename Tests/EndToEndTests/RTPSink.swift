import Foundation
import Media
import NIOCore
import NIOPosix
import TrunklineTestSupport

/// The caller's media port in tests: a UDP socket that receives what the gateway sends the caller and tells
/// speech from silence, so a test can prove the caller heard audio; it keeps the first minute of G.711 audio
/// decoded, so a test can tell which prompt was heard.
final class RTPSink: Sendable {
    struct Counts: Sendable {
        var packets = 0
        /// Packets whose decoded audio is louder than near-silence.
        var audible = 0
        var payloadTypes: Set<UInt8> = []
        /// Decoded G.711 audio in arrival order, at most `maxAudio` samples.
        var audio: [Int16] = []
    }

    /// One minute at 8 kHz.
    static let maxAudio = 8000 * 60

    let port: Int
    private let channel: Channel
    private let counts: WaitableState<Counts>

    init(group: EventLoopGroup) async throws {
        let counts = WaitableState(Counts(), loop: group.next())
        self.counts = counts
        channel = try await DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(counts: counts))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress!.port!
    }

    var snapshot: Counts { counts.snapshot }

    /// Waits until what arrived satisfies `condition`.
    func wait(for what: String, timeout: Duration = .seconds(15), until condition: @escaping @Sendable (Counts) -> Bool) async throws -> Counts {
        try await counts.wait(timeout: timeout, what: what) { condition($0) ? $0 : nil }
    }

    /// Waits until `packets` packets have arrived in all (woken by the arrivals, not by polling).
    func waitForPackets(_ packets: Int, timeout: Duration = .seconds(5)) async throws {
        _ = try await wait(for: "\(packets) RTP packets at port \(port)", timeout: timeout) { $0.packets >= packets }
    }

    func close() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let counts: WaitableState<Counts>
        var pcm = [Int16](repeating: 0, count: 2048)

        init(counts: WaitableState<Counts>) { self.counts = counts }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data).data
            guard buffer.readableBytes > 12, let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return }
            let payloadType = second & 0x7F
            let law: G711Law? = payloadType == 0 ? .muLaw : payloadType == 8 ? .aLaw : nil
            var loud = false
            var decoded: ArraySlice<Int16> = []
            if let law {
                buffer.withUnsafeReadableBytes { bytes in
                    let payload = UnsafeRawBufferPointer(rebasing: bytes[12...].prefix(pcm.count))
                    pcm.withUnsafeMutableBufferPointer { law.decode(payload, into: $0) }
                    let peak = pcm.prefix(payload.count).map { abs(Int($0)) }.max() ?? 0
                    loud = peak > 500
                    decoded = pcm.prefix(payload.count)
                }
            }
            counts.update {
                $0.packets += 1
                $0.payloadTypes.insert(payloadType)
                if loud { $0.audible += 1 }
                if $0.audio.count < RTPSink.maxAudio { $0.audio += decoded }
            }
        }
    }
}
