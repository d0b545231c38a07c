import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing
import TrunklineTestSupport
@testable import Media

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// A queue a test awaits with a timeout; fed from any thread (NIO loops, delegates).
final class Inbox<Element: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Element] = []
    private var waiter: (id: Int, continuation: CheckedContinuation<Element, Error>)?
    private var nextID = 0
    let name: String

    init(_ name: String) { self.name = name }

    func put(_ item: Element) {
        lock.lock()
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.continuation.resume(returning: item)
        } else {
            items.append(item)
            lock.unlock()
        }
    }

    /// What has arrived and not been taken, without waiting.
    func drain() -> [Element] {
        lock.lock()
        defer { lock.unlock() }
        let all = items
        items.removeAll()
        return all
    }

    /// The next item; throws `TimedOut` if none arrives in time. One waiter at a time.
    func next(timeout: Duration = .seconds(5)) async throws -> Element {
        try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            if !items.isEmpty {
                let item = items.removeFirst()
                lock.unlock()
                continuation.resume(returning: item)
                return
            }
            precondition(waiter == nil, "one waiter at a time")
            nextID += 1
            let id = nextID
            waiter = (id, continuation)
            lock.unlock()
            Task {
                try? await Task.sleep(for: timeout)
                self.expire(id)
            }
        }
    }

    private func expire(_ id: Int) {
        lock.lock()
        guard let waiter, waiter.id == id else {
            lock.unlock()
            return
        }
        self.waiter = nil
        lock.unlock()
        waiter.continuation.resume(throwing: TimedOut(what: name))
    }
}

/// One received datagram.
struct Datagram: Sendable {
    var bytes: [UInt8]
    var from: SocketAddress
    /// When the peer's loop read it: the test task reading the inbox may be late by however busy the process is.
    var arrival = ContinuousClock.now

    var header: RTPHeader? { bytes.withUnsafeBytes { RTPHeader.parse($0)?.header } }
    var payload: [UInt8] { bytes.withUnsafeBytes { raw in RTPHeader.parse(raw).map { Array(raw[$0.payload]) } ?? [] } }
}

/// A plain UDP socket standing in for the far end.
final class Peer: Sendable {
    let channel: Channel
    let inbox: Inbox<Datagram>

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let inbox: Inbox<Datagram>
        init(_ inbox: Inbox<Datagram>) { self.inbox = inbox }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            inbox.put(Datagram(bytes: Array(envelope.data.readableBytesView), from: envelope.remoteAddress))
        }
    }

    init(group: EventLoopGroup, port: Int = 0, name: String = "peer") async throws {
        let inbox = Inbox<Datagram>("datagram at \(name)")
        self.inbox = inbox
        channel = try await DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(inbox)) }
            }
            .bind(host: "127.0.0.1", port: port).get()
    }

    var address: SocketAddress { channel.localAddress! }
    var port: Int { address.port! }

    func send(_ bytes: [UInt8], to port: Int) async throws {
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: bytes))).get()
    }

    /// Sends each packet in its slot of a 20 ms grid starting now, as a real peer paces its stream (the session's
    /// jitter buffer sheds the excess of a burst). The sends are timers on the peer's loop, which in the harness is
    /// the session's: a test task sleeping between sends is late by however busy the test process's other tests
    /// keep its threads, and the resulting bursts change what the jitter buffer does.
    func sendPaced(_ packets: [(slot: Int, bytes: [UInt8])], to port: Int) async throws {
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let channel = self.channel
        let start = NIODeadline.now()
        let sent = packets.map { packet in
            channel.eventLoop.flatScheduleTask(deadline: start + .milliseconds(20 * Int64(packet.slot))) {
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: packet.bytes)))
            }.futureResult
        }
        try await EventLoopFuture.andAllSucceed(sent, on: channel.eventLoop).get()
    }

    /// The next `count` datagrams from the one numbered `first` on; those sent before it are skipped.
    func datagrams(_ count: Int, from first: UInt16) async throws -> [Datagram] {
        var datagrams: [Datagram] = []
        while datagrams.count < count {
            let datagram = try await inbox.next()
            guard let header = datagram.header else { continue }
            // Sequence numbers wrap: "before" is up to half the number space behind.
            if datagrams.isEmpty, header.sequenceNumber &- first >= 0x8000 { continue }
            datagrams.append(datagram)
        }
        return datagrams
    }

    func close() async {
        try? await channel.close().get()
    }
}

func rtpPacket(pt: UInt8, seq: UInt16, ts: UInt32, ssrc: UInt32 = 0xC0FFEE, marker: Bool = false, payload: [UInt8])
    -> [UInt8]
{
    var bytes = [UInt8](repeating: 0, count: 12)
    let header = RTPHeader(marker: marker, payloadType: pt, sequenceNumber: seq, timestamp: ts, ssrc: ssrc)
    bytes.withUnsafeMutableBytes { _ = header.write(to: $0) }
    return bytes + payload
}

func eventPayload(_ event: UInt8, end: Bool, duration: UInt16) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 4)
    bytes.withUnsafeMutableBytes {
        _ = TelephoneEvent(event: event, isEnd: end, volume: 10, duration: duration).write(to: $0)
    }
    return bytes
}

extension G711Law {
    func encoded(_ pcm: [Int16]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: pcm.count)
        pcm.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { encode(src, into: $0) } }
        return out
    }

    func decoded(_ codes: [UInt8]) -> [Int16] {
        var out = [Int16](repeating: 0, count: codes.count)
        codes.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { decode(src, into: $0) } }
        return out
    }
}

/// What the session told its delegate.
enum SessionEvent: Sendable, Equatable {
    case audio([Int16])
    case digit(DTMFDigit)
    /// The mark, and how many packets the session had sent when it fired.
    case mark(Int, packetsSent: Int)
    case timedOut
}

/// Records delegate calls; called on the session's loop, read by the test through the inbox.
final class RecordingDelegate: RTPSessionDelegate, Sendable {
    let events = Inbox<SessionEvent>("session event")

    func rtpSession(_ session: RTPSession, receivedAudio samples: UnsafeBufferPointer<Int16>) {
        events.put(.audio(Array(samples)))
    }

    func rtpSession(_ session: RTPSession, receivedDigit digit: DTMFDigit) {
        events.put(.digit(digit))
    }

    func rtpSession(_ session: RTPSession, playedMark id: Int) {
        events.put(.mark(id, packetsSent: session.statistics.packetsSent))
    }

    func rtpSessionTimedOut(_ session: RTPSession) {
        events.put(.timedOut)
    }
}

/// One event loop, one session on it, a delegate, and a peer socket.
final class SessionHarness: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let pool: RTPPortPool
    let session: NIOLoopBound<RTPSession>
    let localPort: Int
    let delegate = RecordingDelegate()
    let peer: Peer

    var loop: EventLoop { session.eventLoop }

    /// On a block of `portCount` free ports, so tests (and test processes) never share one.
    init(portCount: Int = 10) async throws {
        pool = RTPPortPool(range: try FreePort.udpRange(count: portCount))
        let loop = group.next()
        peer = try await Peer(group: group)
        let delegate = self.delegate
        let pool = self.pool
        (session, localPort) = try await RTPSession.open(
            host: "127.0.0.1", portPool: pool, eventLoop: loop, logger: Logger(label: "test.rtp")
        ).map { session in
            session.delegate = delegate
            return (NIOLoopBound(session, eventLoop: loop), session.localPort)
        }.get()
    }

    /// Runs `body` with the session on its loop.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable (RTPSession) throws -> T) async throws -> T {
        let session = self.session
        return try await loop.submit { try body(session.value) }.get()
    }

    func start(
        remote: SocketAddress?, codec: AudioCodec = .pcmu, telephoneEvent: UInt8? = 101, inactivityTimeout: TimeAmount? = nil,
        srtp: SRTPConfiguration? = nil, agentSampleRate: Int = 8000, comfortNoise: UInt8? = nil,
        rtcp: RTCPOptions = RTCPOptions(interval: nil)
    ) async throws {
        try await onLoop {
            if let srtp { try $0.useSRTP(srtp) }
            try $0.start(
                remote: remote, codec: codec, telephoneEventPayloadType: telephoneEvent, inactivityTimeout: inactivityTimeout,
                agentSampleRate: agentSampleRate, comfortNoisePayloadType: comfortNoise, rtcp: rtcp)
        }
    }

    /// Queues agent audio on the session; returns the sequence number of the first packet that carries it (the
    /// packets before it, silence, may be many on a loaded machine).
    func enqueue(_ samples: [Int16], sampleRate: Int? = nil) async throws -> UInt16 {
        try await onLoop { session in
            samples.withUnsafeBufferPointer { pcm in
                if let sampleRate { session.enqueue(pcm, sampleRate: sampleRate) } else { session.enqueue(pcm) }
            }
            return session.sequenceNumber
        }
    }

    func shutdown() async {
        _ = try? await loop.flatSubmit { [session] in session.value.close() }.get()
        await peer.close()
        try? await group.shutdownGracefully()
    }
}
