import Foundation
import Media
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The caller's media port in tests: a UDP socket that receives what the gateway sends the caller and tells
/// speech from silence, so a test can prove the caller heard audio.
final class RTPSink: Sendable {
    struct Counts: Sendable {
        var packets = 0
        /// Packets whose decoded audio is louder than near-silence.
        var audible = 0
        var payloadTypes: Set<UInt8> = []
    }

    let port: Int
    private let channel: Channel
    private let counts: NIOLockedValueBox<Counts>
    /// Tests waiting for the packet count to reach a number.
    private let waiters: NIOLockedValueBox<[(id: UUID, packets: Int, continuation: CheckedContinuation<Void, Error>)]>

    init(group: EventLoopGroup) async throws {
        let counts = NIOLockedValueBox(Counts())
        self.counts = counts
        let waiters = NIOLockedValueBox<[(id: UUID, packets: Int, continuation: CheckedContinuation<Void, Error>)]>([])
        self.waiters = waiters
        let wake = { @Sendable (packets: Int) in
            let ready = waiters.withLockedValue { list in
                let ready = list.filter { $0.packets <= packets }
                list.removeAll { $0.packets <= packets }
                return ready
            }
            ready.forEach { $0.continuation.resume() }
        }
        channel = try await DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(counts: counts, wake: wake))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress!.port!
    }

    var snapshot: Counts { counts.withLockedValue { $0 } }

    /// Waits until `packets` packets have arrived in all (woken by the arrivals, not by polling).
    func waitForPackets(_ packets: Int, timeout: Duration = .seconds(5)) async throws {
        let id = UUID()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { continuation in
                    let reached = self.waiters.withLockedValue { list in
                        if self.snapshot.packets >= packets { return true }
                        list.append((id, packets, continuation))
                        return false
                    }
                    if reached { continuation.resume() }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                let waiter = self.waiters.withLockedValue { list in
                    list.firstIndex { $0.id == id }.map { list.remove(at: $0) }
                }
                let error = HarnessError("timed out waiting for \(packets) RTP packets at port \(self.port) (got \(self.snapshot.packets))")
                waiter?.continuation.resume(throwing: error)
                throw error
            }
            try await group.next()
            group.cancelAll()
        }
    }

    func close() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let counts: NIOLockedValueBox<Counts>
        let wake: @Sendable (Int) -> Void
        var pcm = [Int16](repeating: 0, count: 2048)

        init(counts: NIOLockedValueBox<Counts>, wake: @escaping @Sendable (Int) -> Void) {
            self.counts = counts
            self.wake = wake
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data).data
            guard buffer.readableBytes > 12, let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return }
            let payloadType = second & 0x7F
            let law: G711Law? = payloadType == 0 ? .muLaw : payloadType == 8 ? .aLaw : nil
            var loud = false
            if let law {
                buffer.withUnsafeReadableBytes { bytes in
                    let payload = UnsafeRawBufferPointer(rebasing: bytes[12...].prefix(pcm.count))
                    pcm.withUnsafeMutableBufferPointer { law.decode(payload, into: $0) }
                    let peak = pcm.prefix(payload.count).map { abs(Int($0)) }.max() ?? 0
                    loud = peak > 500
                }
            }
            let packets = counts.withLockedValue {
                $0.packets += 1
                $0.payloadTypes.insert(payloadType)
                if loud { $0.audible += 1 }
                return $0.packets
            }
            wake(packets)
        }
    }
}
