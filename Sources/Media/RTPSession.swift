import Logging
import NIOCore
import NIOPosix

/// Receives what an `RTPSession` hears and learns. Every method is called on the session's event loop,
/// synchronously from the session's packet handling or timer (or, for `playedMark`, from `clearPlayout`), so
/// implementations must not block; they may call back into the session (enqueue, clear, close).
public protocol RTPSessionDelegate: AnyObject {
    /// Decoded audio from the peer, 16-bit mono at the session's `agentSampleRate` (8 kHz unless asked), one 20 ms
    /// frame per call. The buffer is only valid during the call (it is reused).
    func rtpSession(_ session: RTPSession, receivedAudio samples: UnsafeBufferPointer<Int16>)
    /// A DTMF press from RFC 4733 telephone-events, reported once per press.
    func rtpSession(_ session: RTPSession, receivedDigit digit: DTMFDigit)
    /// Every sample enqueued before mark `id` has been sent (or dropped by `clearPlayout`).
    func rtpSession(_ session: RTPSession, playedMark id: Int)
    /// No RTP from the peer for the inactivity timeout given to `start`: the far end is probably gone.
    /// Reported once.
    func rtpSessionTimedOut(_ session: RTPSession)
}

/// One call's RTP stream; confined to `eventLoop`: every member must be used on that loop, and every
/// delegate call is made there.
///
/// The session owns a UDP channel bound on an even port taken from an `RTPPortPool`. After `start`, it
///  - receives: unprotects SRTP when keyed (failed authentication and replays are counted and dropped), parses
///    RTP, puts audio in a `JitterBuffer` (reorder, duplicates, late packets, adaptive depth), and on every 20 ms
///    tick decodes what is due (G.711 or Opus, to 8 kHz) or conceals a loss (spandsp PLC; Opus PLC or FEC from
///    the next packet) and hands the delegate exactly one 20 ms frame, so the agent hears an even cadence while the
///    peer's stream flows; turns RFC 4733 telephone-events into de-duplicated `DTMFDigit`s, and counts everything
///    else as ignored;
///  - sends: one 20 ms packet every 20 ms against absolute deadlines, taking audio from the playout buffer
///    and silence when it is empty, so the stream never pauses; protected in place when SRTP is on;
///  - RTCP (RFC 3550 §6): binds the odd port above `localPort` too, or shares the RTP port when multiplexed
///    (RFC 5761); every reporting interval sends an SR (while sending) or RR with a report block about the
///    peer's stream and SDES CNAME, reads the peer's reports (its view of our stream, round-trip time from
///    LSR/DLSR), and sends BYE on `close`; SRTCP when SRTP is on;
///  - holds (`setDirection`): sends nothing while the peer holds the call, and does not time out while no media is
///    expected; comfort noise (RFC 3389) and Opus DTX fill the peer's announced silence with noise for the agent;
///  - latches (symmetric RTP): sends to the source address of the peer's RTP rather than the SDP address once
///    the peer has sent something, and moves to a new source once it has sent several packets in a row from it.
///
/// Hot path: per packet there is no lock, no `Task`, no thread hop, and no allocation of the session's own
/// (decode/encode scratch, codec and SRTP states and the outbound `ByteBuffer` are reused;
/// `AddressedEnvelope<ByteBuffer>` travels in `NIOAny` without boxing). NIO itself pools receive buffers; an SRTP
/// packet is copied into a reused scratch buffer and unprotected there, since NIO's buffer is shared.
///
/// Lifetime: the channel and the loop's `MediaClock` hold the session; call `close()` to end it (and give back the port).
public final class RTPSession {
    /// Samples per packet: 20 ms at 8 kHz.
    public static let samplesPerPacket = 160
    /// Largest datagram handled: an Ethernet MTU.
    static let maxDatagram = 1500
    /// Decoded samples that can wait for the next tick: a frame's remainder plus the largest packet (G.711 in
    /// an MTU, or 120 ms of Opus).
    static let decodeCapacity = maxFrameSamples
        + max(JitterBuffer.maxPayload * maxAgentSampleRate / 8000, maxAgentSampleRate * OpusFrameDecoder.maxPacketMilliseconds / 1000)
    /// Rates the agent side may use: narrowband, and wideband for agents that take 16-bit PCM.
    public static let agentSampleRates = [8000, 16000, 24000]
    static let maxAgentSampleRate = 24000
    static let maxFrameSamples = maxAgentSampleRate / 50
    /// Default bounds of the jitter buffer's delay.
    public static let defaultJitterBuffer = 40...200
    public static let packetInterval = TimeAmount.milliseconds(20)
    /// Most packets sent in one timer run when the loop was late (200 ms); beyond it the clock restarts.
    static let maxCatchUpPackets = 10
    /// Ports tried before `open` gives up because other programs hold them.
    static let maxBindAttempts = 8
    /// Opus packets this short are DTX frames (RFC 7587 §3.1.3).
    static let opusDTXFrameBytes = 2
    /// Consecutive packets from a new source address before the session sends there instead.
    static let relatchPackets = 5
    /// Inbound audio reaches the delegate in frames of `samplesPerPacket` (20 ms), whatever the peer's packet time.

    public let eventLoop: EventLoop
    /// The even UDP port this session is bound to (put it in the SDP).
    public let localPort: Int
    /// Receives audio, digits and marks; called on `eventLoop`.
    public weak var delegate: RTPSessionDelegate? {
        didSet { eventLoop.assertInEventLoop() }
    }

    private let channel: Channel
    private let handler: RTPChannelHandler
    /// The RTCP socket on `localPort + 1` (unused when RTCP is multiplexed on the RTP port).
    private let rtcpChannel: Channel
    private let rtcpHandler: RTPChannelHandler
    private let portPool: RTPPortPool
    private let logger: Logger

    private enum State { case opened, running, closed }
    // Every field below is protected by the event loop thread.
    private var state = State.opened
    private var closeFuture: EventLoopFuture<Void>?

    private var codec = AudioCodec.pcmu
    /// Opus states, made by `start` when the codec is Opus.
    private var opusEncoder: OpusFrameEncoder?
    private var opusDecoder: OpusFrameDecoder?
    /// SRTP per direction, set by `useSRTP` before `start`.
    private var srtpInbound: SRTPStream?
    private var srtpOutbound: SRTPStream?
    private var telephoneEventPayloadType: UInt8?
    /// The address from SDP.
    private var sdpRemote: SocketAddress?
    /// The source of the peer's RTP (symmetric RTP), preferred over `sdpRemote`.
    private var latched: SocketAddress?
    /// Whether `latched` may be set at all (per trunk; off for peers whose SDP address is authoritative).
    private var symmetric = true
    private var candidate: SocketAddress?
    private var candidateCount = 0

    private var stats = RTPStatistics()
    /// This loop's time-in-gateway histograms (`MediaLatencyRecorder`), and the codec family to file under.
    private let latency = MediaLatencyRecorder.current
    private var latencyCodec = MediaLatencyCodec.g711
    /// When the datagram being handled was handed to the session.
    private var packetReadAt: UInt64 = 0
    /// RTCP: the report schedule and figures (set by the first `start`), where reports go, the reused packet buffer.
    private var rtcp = RTCPReporter(interval: nil, randomised: false)
    private var rtcpMultiplexed = false
    private var rtcpRemote: SocketAddress?
    private var rtcpLatched: SocketAddress?
    private var rtcpOutbound: ByteBuffer
    private var packetsSentAtLastReport = 0
    /// SDES CNAME (RFC 3550 §6.5.1): unique per session, made once.
    private let cname: [UInt8]
    /// Hold: whether RTP goes out, and whether the peer is expected to send (the inactivity timeout waits).
    private var sending = true
    private var expectingMedia = true
    /// RFC 3389: the payload type of comfort noise, and the noise the agent hears while the peer is silent.
    private var comfortNoisePayloadType: UInt8?
    private var comfortNoise: ComfortNoiseGenerator?
    private var sequence = SequenceTracker()
    private var events = RFC4733Receiver()
    private var playout = PlayoutBuffer()

    // Sender.
    private var outbound: ByteBuffer
    private(set) var sequenceNumber = UInt16.random(in: .min ... .max)
    private var timestamp = UInt32.random(in: .min ... .max)
    public let ssrc = UInt32.random(in: .min ... .max)
    private var sentFirstPacket = false
    private(set) var nextDeadline = NIODeadline.now()
    /// The loop's pacing clock while running, and this session's phase and place in that phase's list.
    private var clock: MediaClock?
    var clockPhase = 0
    var clockSlot = -1

    // Scratch buffers, allocated once.
    private let decodeScratch: UnsafeMutableBufferPointer<Int16>
    /// Media inactivity: the receive path only raises a flag; the 20 ms tick turns it into a time.
    private var inactivityTimeout: TimeAmount?
    private var receivedSinceTick = false
    private var lastActivity: NIODeadline?
    private var reportedTimeout = false
    /// Tone detection on the caller's audio, only when the call has no telephone-event.
    private var inband: InbandDTMFDetector?
    /// DTMF waiting to go out as RFC 4733 events.
    private var digits = RFC4733Sender()
    /// Decoded samples waiting in `decodeScratch` (a packet may hold more or less than one 20 ms frame).
    private var pendingSamples = 0
    /// Samples in the last packet decoded: the size of a concealed one.
    private var lastPacketSamples = RTPSession.samplesPerPacket
    /// A placeholder until `start` makes the real one for the codec's clock and the configured bounds.
    private var jitter = JitterBuffer(minDepth: 1, maxDepth: 1, clockRate: 8000, capacity: 2)
    /// G.711 loss concealment, made by `start` for G.711 calls.
    private var g711Concealer: G711Concealer?
    /// The rate of the PCM exchanged with the delegate and `enqueue`, fixed by the first `start`.
    public private(set) var agentSampleRate = 8000
    /// Samples in 20 ms at `agentSampleRate`.
    private var frameSamples = RTPSession.samplesPerPacket
    /// G.711 (8 kHz) to and from a wideband agent rate; nil when no rate change is needed.
    private var upsampler: Resampler?
    private var downsampler: Resampler?
    /// G.711 audio at 8 kHz on its way to or from the resamplers.
    private let narrowScratch: UnsafeMutableBufferPointer<Int16>
    private let pcmScratch: UnsafeMutableBufferPointer<Int16>
    /// An encoded payload: 160 G.711 bytes or one Opus packet.
    private let encodeScratch: UnsafeMutableBufferPointer<UInt8>
    /// An SRTP datagram being unprotected, with room for libsrtp's trailer.
    private let srtpScratch: UnsafeMutableRawBufferPointer

    private init(
        channel: Channel, handler: RTPChannelHandler, rtcpChannel: Channel, rtcpHandler: RTPChannelHandler, port: Int,
        portPool: RTPPortPool, logger: Logger
    ) {
        self.eventLoop = channel.eventLoop
        self.channel = channel
        self.handler = handler
        self.rtcpChannel = rtcpChannel
        self.rtcpHandler = rtcpHandler
        self.rtcpOutbound = channel.allocator.buffer(capacity: RTCPPacket.maxLength + SRTPStream.maxRTCPTrailer)
        self.cname = Array("trunkline-\(String(ssrc, radix: 16))-\(port)".utf8)
        self.localPort = port
        self.portPool = portPool
        var logger = logger
        logger[metadataKey: "rtp_port"] = "\(port)"
        self.logger = logger
        self.outbound = channel.allocator.buffer(
            capacity: RTPHeader.fixedSize + OpusFrameEncoder.maxPacketBytes + SRTPStream.maxTrailer)
        decodeScratch = .allocate(capacity: Self.decodeCapacity)
        decodeScratch.initialize(repeating: 0)
        pcmScratch = .allocate(capacity: Self.maxFrameSamples)
        narrowScratch = .allocate(capacity: JitterBuffer.maxPayload)
        narrowScratch.initialize(repeating: 0)
        pcmScratch.initialize(repeating: 0)
        encodeScratch = .allocate(capacity: OpusFrameEncoder.maxPacketBytes)
        encodeScratch.initialize(repeating: 0)
        srtpScratch = .allocate(byteCount: Self.maxDatagram + SRTPStream.maxTrailer, alignment: 8)
        srtpScratch.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        decodeScratch.deallocate()
        pcmScratch.deallocate()
        narrowScratch.deallocate()
        encodeScratch.deallocate()
        srtpScratch.deallocate()
    }

    // MARK: - Opening

    /// Binds a UDP socket on the next free even port of `portPool` on `eventLoop`.
    ///
    /// A port another program holds (`EADDRINUSE`) is given back and the next one tried, up to
    /// `maxBindAttempts` times.
    /// - Returns: the session, not yet started; fails with `MediaError` `.noFreePort` or `.portsInUse`, or with
    ///   the socket error for anything else (e.g. `host` is not a local address).
    public static func open(
        host: String, portPool: RTPPortPool, eventLoop: EventLoop, logger: Logger
    ) -> EventLoopFuture<RTPSession> {
        let promise = eventLoop.makePromise(of: RTPSession.self)
        if eventLoop.inEventLoop {
            bind(host: host, portPool: portPool, eventLoop: eventLoop, logger: logger, attempt: 1, promise: promise)
        } else {
            eventLoop.execute {
                bind(host: host, portPool: portPool, eventLoop: eventLoop, logger: logger, attempt: 1, promise: promise)
            }
        }
        return promise.futureResult
    }

    private static func bind(
        host: String, portPool: RTPPortPool, eventLoop: EventLoop, logger: Logger, attempt: Int,
        promise: EventLoopPromise<RTPSession>
    ) {
        eventLoop.assertInEventLoop()
        guard let port = portPool.allocate() else {
            promise.fail(MediaError(.noFreePort, "no free RTP port: all \(portPool.capacity) ports are in use"))
            return
        }
        /// A port another program holds: try the next pair; anything else fails the open.
        func retryOrFail(_ error: Error) {
            portPool.release(port)
            guard let ioError = error as? IOError, ioError.errnoCode == EADDRINUSE else {
                promise.fail(error)
                return
            }
            logger.debug("RTP port taken by another program, trying the next", metadata: ["port": "\(port)"])
            guard attempt < maxBindAttempts else {
                promise.fail(MediaError(.portsInUse, "no RTP port: \(attempt) ports in a row are held by other programs"))
                return
            }
            bind(host: host, portPool: portPool, eventLoop: eventLoop, logger: logger, attempt: attempt + 1, promise: promise)
        }
        DatagramBootstrap(group: eventLoop)
            .bind(host: host, port: port)
            .assumeIsolated()
            .whenComplete { result in
                guard case .success(let channel) = result else {
                    if case .failure(let error) = result { retryOrFail(error) }
                    return
                }
                DatagramBootstrap(group: eventLoop)
                    .bind(host: host, port: port + 1)
                    .assumeIsolated()
                    .whenComplete { rtcpResult in
                        let rtcpChannel: Channel
                        switch rtcpResult {
                        case .success(let bound): rtcpChannel = bound
                        case .failure(let error):
                            channel.close(promise: nil)
                            return retryOrFail(error)
                        }
                        let handler = RTPChannelHandler(carriesRTCP: false)
                        let rtcpHandler = RTPChannelHandler(carriesRTCP: true)
                        do {
                            try channel.pipeline.syncOperations.addHandler(handler)
                            try rtcpChannel.pipeline.syncOperations.addHandler(rtcpHandler)
                        } catch {
                            channel.close(promise: nil)
                            rtcpChannel.close(promise: nil)
                            portPool.release(port)
                            promise.fail(error)
                            return
                        }
                        let session = RTPSession(
                            channel: channel, handler: handler, rtcpChannel: rtcpChannel, rtcpHandler: rtcpHandler,
                            port: port, portPool: portPool, logger: logger)
                        handler.session = session
                        rtcpHandler.session = session
                        promise.assumeIsolated().succeed(session)
                    }
            }
    }

    // MARK: - Control

    /// Keys SRTP (RFC 3711) for both directions: from now on inbound packets must authenticate and outbound ones
    /// are protected. Call before `start`; the keys are not kept beyond libsrtp's own copy.
    public func useSRTP(_ configuration: SRTPConfiguration) throws(MediaError) {
        eventLoop.preconditionInEventLoop()
        srtpInbound = try SRTPStream(key: configuration.remote, direction: .inbound)
        srtpOutbound = try SRTPStream(key: configuration.local, direction: .outbound)
    }

    /// Starts receiving and the 20 ms paced sender. Calling it again while running updates the remote address,
    /// codec and telephone-event payload type (e.g. after a re-INVITE) without restarting the stream.
    /// Throws `.libraryFailure` only if libopus cannot make its states (then nothing changed).
    /// - Parameters:
    ///   - remote: where the SDP says to send; used until the peer's own RTP shows its real source.
    ///   - codec: what to send and which payload type carries the peer's audio.
    ///   - telephoneEventPayloadType: the negotiated RFC 4733 payload type, if any.
    ///   - symmetric: latch onto the peer's RTP source (NAT traversal); false sends only to `remote`.
    ///   - inactivityTimeout: report `rtpSessionTimedOut` when nothing valid arrives for this long (nil: never).
    ///   - jitterBufferMilliseconds: bounds of the receive delay the jitter buffer adapts within (20 ms steps).
    ///   - agentSampleRate: the rate of the PCM the delegate gets and `enqueue` takes (one of `agentSampleRates`;
    ///     fixed by the first `start`). Opus is coded at it directly; G.711 goes through libspeexdsp's resampler.
    ///     In-band DTMF detection runs only at 8 kHz.
    ///   - comfortNoisePayloadType: the negotiated RFC 3389 CN payload type, if any.
    ///   - rtcp: where RTCP goes and how often reports are sent.
    public func start(
        remote: SocketAddress?, codec: AudioCodec, telephoneEventPayloadType: UInt8?, symmetric: Bool = true,
        inactivityTimeout: TimeAmount? = nil, jitterBufferMilliseconds: ClosedRange<Int> = RTPSession.defaultJitterBuffer,
        agentSampleRate: Int = 8000, comfortNoisePayloadType: UInt8? = nil, rtcp rtcpOptions: RTCPOptions = RTCPOptions()
    ) throws(MediaError) {
        eventLoop.preconditionInEventLoop()
        guard state != .closed else { return }
        if state == .opened {
            precondition(Self.agentSampleRates.contains(agentSampleRate), "unsupported agent sample rate \(agentSampleRate)")
            self.agentSampleRate = agentSampleRate
            frameSamples = agentSampleRate / 50
            // A concealed packet is as long as the last one decoded: G.711 counts at 8 kHz, Opus at the agent's rate.
            lastPacketSamples = codec.law != nil ? Self.samplesPerPacket : frameSamples
        }
        if case .opus(let peer) = codec.encoding, codec != self.codec || opusEncoder == nil {
            opusEncoder = try OpusFrameEncoder(sampleRate: self.agentSampleRate, peer: peer, frameSamples: frameSamples)
            opusDecoder = try OpusFrameDecoder(sampleRate: self.agentSampleRate)
            upsampler = nil
            downsampler = nil
        } else if codec.law != nil {
            opusEncoder = nil
            opusDecoder = nil
            if g711Concealer == nil { g711Concealer = try G711Concealer() }
            if self.agentSampleRate != 8000, upsampler == nil {
                upsampler = try Resampler(from: 8000, to: self.agentSampleRate)
                downsampler = try Resampler(from: self.agentSampleRate, to: 8000)
            }
        }
        if comfortNoisePayloadType != nil, comfortNoise == nil { comfortNoise = try ComfortNoiseGenerator() }
        self.comfortNoisePayloadType = comfortNoisePayloadType
        self.inactivityTimeout = inactivityTimeout
        if state == .running, sdpRemote != remote {
            // The peer moved (re-INVITE): send to its new address until its RTP shows the real source again.
            latched = nil
            candidate = nil
            rtcpLatched = nil
        }
        sdpRemote = remote
        rtcpMultiplexed = rtcpOptions.multiplexed
        rtcpRemote = rtcpOptions.multiplexed ? nil : rtcpOptions.remote ?? Self.portAbove(remote)
        if state == .opened {
            rtcp = RTCPReporter(interval: rtcpOptions.interval, randomised: rtcpOptions.randomised)
            rtcp.begin(now: .now())
        }
        self.symmetric = symmetric
        if !symmetric { latched = nil }
        let clockChanged = codec.clockRate != self.codec.clockRate
        if state == .running, codec.law != self.codec.law {
            // Another codec (re-INVITE): a concealed packet is as long as the new codec's.
            lastPacketSamples = codec.law != nil ? Self.samplesPerPacket : frameSamples
            pendingSamples = 0
        }
        self.codec = codec
        latencyCodec = MediaLatencyCodec(codec)
        self.telephoneEventPayloadType = telephoneEventPayloadType
        if telephoneEventPayloadType == nil, self.agentSampleRate == 8000 {
            if inband == nil { inband = InbandDTMFDetector() }
        } else {
            inband = nil
        }
        events.clockRate = codec.clockRate
        guard state == .opened || clockChanged else { return }
        let minDepth = max(1, jitterBufferMilliseconds.lowerBound / 20)
        jitter = JitterBuffer(
            minDepth: minDepth, maxDepth: max(minDepth, jitterBufferMilliseconds.upperBound / 20), clockRate: codec.clockRate)
        // RFC 4733 durations count RTP clock units: scale the sender's 8 kHz defaults to the codec's clock.
        let scale = codec.clockRate / 8000
        digits = RFC4733Sender(
            toneSamples: 800 * scale, gapSamples: 800 * scale, pauseSamples: 4000 * scale,
            samplesPerSlot: codec.timestampsPerPacket)
        guard state == .opened else { return }
        state = .running
        let clock = MediaClock.on(eventLoop)
        self.clock = clock
        nextDeadline = clock.join(self)
    }

    /// Queues audio to send (16-bit mono at `agentSampleRate`), after whatever is queued. Beyond the buffer's cap
    /// (`limitPlayout`; 5 min at 8 kHz by default) the newest samples are dropped and counted in
    /// `statistics.playoutSamplesDropped`.
    /// - Returns: how many samples were queued.
    @discardableResult
    public func enqueue(_ samples: UnsafeBufferPointer<Int16>) -> Int {
        eventLoop.assertInEventLoop()
        guard state != .closed else { return 0 }
        let queued = playout.append(samples)
        let ingress = latency.ingress
        if ingress != 0 { latency.record(.agentFrameReceived, latencyCodec, since: ingress) }
        return queued
    }

    /// Caps the audio that may wait to be sent at `maxSamples` (at `agentSampleRate`), so an agent sending faster
    /// than real time cannot grow a call's memory without bound. Takes effect only before anything was queued;
    /// the buffer starts at most 10 s long and grows by doubling up to the cap.
    public func limitPlayout(maxSamples: Int) {
        eventLoop.assertInEventLoop()
        guard playout.writePosition == 0, playout.pendingMarkCount == 0, maxSamples > 0 else { return }
        playout = PlayoutBuffer(initialCapacity: min(PlayoutBuffer.defaultInitialCapacity, maxSamples), maxCapacity: maxSamples)
    }

    /// Queues audio recorded at another rate (an 8 kHz prompt on a wideband call), resampled to `agentSampleRate`.
    /// Allocates for the conversion: for prompts, not for streamed audio.
    public func enqueue(_ samples: UnsafeBufferPointer<Int16>, sampleRate: Int) {
        guard sampleRate != agentSampleRate else {
            enqueue(samples)
            return
        }
        guard let converted = try? Resampler.convert(samples, from: sampleRate, to: agentSampleRate) else {
            logger.error("cannot resample a prompt", metadata: ["from": "\(sampleRate)", "to": "\(agentSampleRate)"])
            return
        }
        converted.withUnsafeBufferPointer { _ = enqueue($0) }
    }

    /// Places a mark after everything enqueued so far: the delegate's `playedMark` is called once all of that
    /// audio has been sent (on the next tick if nothing is queued).
    public func enqueueMark(_ id: Int) {
        eventLoop.assertInEventLoop()
        guard state != .closed else { return }
        playout.appendMark(id)
    }

    /// Sends DTMF to the peer as RFC 4733 events (`0-9 * # A-D`, `w` = 500 ms pause), paced by the RTP clock.
    /// Throws if the call negotiated no telephone-event, a character is not a key, or too many are queued.
    public func sendDigits(_ digits: String) throws {
        eventLoop.assertInEventLoop()
        guard telephoneEventPayloadType != nil else { throw MediaError(.noTelephoneEvent, "the call negotiated no telephone-event") }
        try self.digits.enqueue(digits)
    }

    /// Drops all queued audio and reports every pending mark as played, at once (before returning).
    public func clearPlayout() {
        eventLoop.assertInEventLoop()
        let limit = playout.markSerialLimit
        playout.clear()
        while let id = playout.popDueMark(serialLimit: limit) {
            delegate?.rtpSession(self, playedMark: id)
        }
    }

    /// Samples queued and not yet sent.
    public var bufferedSamples: Int {
        eventLoop.assertInEventLoop()
        return playout.count
    }

    /// Counters so far.
    public var statistics: RTPStatistics {
        eventLoop.assertInEventLoop()
        var result = stats
        result.packetsLost = sequence.lost
        result.playoutSamplesDropped = playout.droppedSamples
        result.playoutPeakSamples = playout.peakCount
        result.srtp = srtpOutbound != nil
        result.packetsLate = jitter.counters.late
        result.packetsDuplicated = jitter.counters.duplicates
        result.packetsConcealed = jitter.counters.lost
        result.packetsDiscarded = jitter.counters.discarded
        result.jitterBufferUnderruns = jitter.counters.underruns
        result.jitterMilliseconds = jitter.jitterMilliseconds
        result.rtcp = rtcp.figures
        return result
    }

    /// Where packets go now: the latched source of the peer's RTP, else the SDP address.
    public var sendingTo: SocketAddress? {
        eventLoop.assertInEventLoop()
        return latched ?? sdpRemote
    }

    /// Hold and resume (RFC 3264 §8.4), from the SDP directions: `sending` false stops RTP going out (the
    /// playout buffer still drains, so marks are still reported); `receiving` false means the peer is not
    /// expected to send, so the inactivity timeout waits until it is again. RTCP goes on either way.
    public func setDirection(sending: Bool, receiving: Bool) {
        eventLoop.assertInEventLoop()
        self.sending = sending
        expectingMedia = receiving
        // The silence of the hold is not inactivity: the clock restarts when media is expected again.
        lastActivity = nil
    }

    /// The RTCP port by convention (RFC 3550 §11): the RTP port + 1 at the same address.
    private static func portAbove(_ address: SocketAddress?) -> SocketAddress? {
        guard let address, let ip = address.ipAddress, let port = address.port else { return nil }
        return try? SocketAddress(ipAddress: ip, port: port + 1)
    }

    /// Sends an RTCP BYE (with a last report), stops the timer, closes both sockets and gives the port back to
    /// the pool, once; later calls return the same future. Pending marks are not reported.
    public func close() -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        if let closeFuture { return closeFuture }
        if state == .running { sendReport(now: .now(), bye: true) }
        state = .closed
        clock?.leave(self)
        clock = nil
        handler.session = nil
        rtcpHandler.session = nil
        let pool = portPool
        let port = localPort
        let promise = eventLoop.makePromise(of: Void.self)
        channel.close().and(rtcpChannel.close()).whenComplete { _ in
            pool.release(port)
            promise.succeed(())
        }
        closeFuture = promise.futureResult
        return promise.futureResult
    }

    // MARK: - Sending

    /// The loop's 20 ms tick: sends what is due, catching up on ticks the loop was late for. `upcoming` is the
    /// clock's next tick, where the session's own clock restarts when it is too far behind.
    func tick(upcoming: NIODeadline) {
        guard state == .running else { return }
        let now = NIODeadline.now()
        checkInactivity(now: now)
        guard state == .running else { return }
        var sent = 0
        while nextDeadline <= now {
            if sent == Self.maxCatchUpPackets {
                // Too far behind to catch up without a burst the far end would drop: restart the clock.
                nextDeadline = upcoming
                stats.senderClockResets += 1
                break
            }
            let due = nextDeadline.uptimeNanoseconds
            if playOutInbound() { latency.record(.agentFrameSent, latencyCodec, since: due) }
            guard state == .running else { return }
            sendPacket()
            guard state == .running else { return }
            latency.record(.rtpSent, latencyCodec, since: due)
            nextDeadline = nextDeadline + Self.packetInterval
            sent += 1
        }
        if rtcp.isDue(now: now) { sendReport(now: now, bye: false) }
    }

    private func checkInactivity(now: NIODeadline) {
        if receivedSinceTick || lastActivity == nil || !expectingMedia {
            receivedSinceTick = false
            lastActivity = now
            return
        }
        guard let timeout = inactivityTimeout, let last = lastActivity, !reportedTimeout, now - last >= timeout else { return }
        reportedTimeout = true
        logger.warning("no RTP from the peer", metadata: ["seconds": "\(timeout.nanoseconds / 1_000_000_000)"])
        delegate?.rtpSessionTimedOut(self)
    }

    private func sendPacket() {
        if let eventPayloadType = telephoneEventPayloadType,
           case .event(let event, let eventTimestamp, let marker) = digits.next(timestamp: timestamp) {
            sendTelephoneEvent(event, payloadType: eventPayloadType, timestamp: eventTimestamp, marker: marker)
            return
        }
        let markLimit = playout.markSerialLimit
        let count = playout.read(into: UnsafeMutableBufferPointer(rebasing: pcmScratch[0..<frameSamples]))
        let payloadLength = encodeFrame(samples: count)
        if payloadLength > 0, sending, let destination = latched ?? sdpRemote, let context = handler.context {
            let header = RTPHeader(
                marker: !sentFirstPacket, payloadType: codec.payloadType, sequenceNumber: sequenceNumber,
                timestamp: timestamp, ssrc: ssrc)
            outbound.clear()
            header.write(to: &outbound)
            outbound.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: encodeScratch[0..<payloadLength])))
            if protectOutbound() {
                context.writeAndFlush(
                    handler.wrapOutboundOut(AddressedEnvelope(remoteAddress: destination, data: outbound)), promise: nil)
                sequenceNumber &+= 1
                sentFirstPacket = true
                stats.packetsSent += 1
                stats.bytesSent += payloadLength
            }
        }
        // Time passes whether or not there was anywhere to send.
        timestamp &+= UInt32(codec.timestampsPerPacket)
        while state == .running, let id = playout.popDueMark(serialLimit: markLimit) {
            delegate?.rtpSession(self, playedMark: id)
        }
    }

    /// Encodes the `samples` read into `pcmScratch` (silence after them) into `encodeScratch`.
    /// - Returns: the payload's length; 0 if the encoder failed (the slot is skipped).
    private func encodeFrame(samples count: Int) -> Int {
        switch codec.encoding {
        case .g711(let law) where downsampler != nil:
            UnsafeMutableBufferPointer(rebasing: pcmScratch[count..<frameSamples]).update(repeating: 0)
            let narrow = downsampler!.process(
                UnsafeBufferPointer(rebasing: pcmScratch[0..<frameSamples]),
                into: UnsafeMutableBufferPointer(rebasing: narrowScratch[0..<Self.samplesPerPacket]))
            UnsafeMutableBufferPointer(rebasing: narrowScratch[narrow..<Self.samplesPerPacket]).update(repeating: 0)
            law.encode(
                UnsafeBufferPointer(rebasing: narrowScratch[0..<Self.samplesPerPacket]),
                into: UnsafeMutableBufferPointer(rebasing: encodeScratch[0..<Self.samplesPerPacket]))
            return Self.samplesPerPacket
        case .g711(let law):
            if count > 0 {
                law.encode(
                    UnsafeBufferPointer(rebasing: pcmScratch[0..<count]),
                    into: UnsafeMutableBufferPointer(rebasing: encodeScratch[0..<count]))
            }
            if count < Self.samplesPerPacket {
                UnsafeMutableBufferPointer(rebasing: encodeScratch[count..<Self.samplesPerPacket]).update(repeating: law.silence)
            }
            return Self.samplesPerPacket
        case .opus:
            UnsafeMutableBufferPointer(rebasing: pcmScratch[count..<frameSamples]).update(repeating: 0)
            guard let encoder = opusEncoder,
                  let n = encoder.encode(
                    UnsafeBufferPointer(rebasing: pcmScratch[0..<frameSamples]), into: UnsafeMutableRawBufferPointer(encodeScratch))
            else {
                stats.encodeFailures += 1
                return 0
            }
            return n
        }
    }

    /// Protects the packet in `outbound` in place when SRTP is on.
    /// - Returns: false if libsrtp refused it (counted; the packet is not sent).
    private func protectOutbound() -> Bool {
        guard let srtp = srtpOutbound else { return true }
        outbound.reserveCapacity(minimumWritableBytes: SRTPStream.maxTrailer)
        let length = outbound.readableBytes
        let start = outbound.readerIndex
        let protected = outbound.withVeryUnsafeMutableBytes { storage in
            srtp.protect(storage.baseAddress! + start, length: length, capacity: storage.count - start)
        }
        guard let protected else {
            stats.srtpProtectFailures += 1
            return false
        }
        outbound.moveWriterIndex(forwardBy: protected - length)
        return true
    }

    /// One RFC 4733 packet in place of this slot's audio; the audio waits in the playout buffer.
    private func sendTelephoneEvent(_ event: TelephoneEvent, payloadType: UInt8, timestamp eventTimestamp: UInt32, marker: Bool) {
        if sending, let destination = latched ?? sdpRemote, let context = handler.context {
            let header = RTPHeader(
                marker: marker || !sentFirstPacket, payloadType: payloadType, sequenceNumber: sequenceNumber,
                timestamp: eventTimestamp, ssrc: ssrc)
            outbound.clear()
            header.write(to: &outbound)
            outbound.writeWithUnsafeMutableBytes(minimumWritableBytes: 4) { event.write(to: $0) }
            if protectOutbound() {
                context.writeAndFlush(
                    handler.wrapOutboundOut(AddressedEnvelope(remoteAddress: destination, data: outbound)), promise: nil)
                sequenceNumber &+= 1
                sentFirstPacket = true
                stats.packetsSent += 1
                stats.bytesSent += 4
            }
        }
        timestamp &+= UInt32(codec.timestampsPerPacket)
    }

    // MARK: - RTCP

    /// One compound RTCP packet to the peer: SR while we send (RR otherwise), a report block once the peer's
    /// stream is known, SDES CNAME, and BYE when leaving. SRTCP-protected when SRTP is on. Nothing when reports are
    /// off (no interval).
    private func sendReport(now: NIODeadline, bye: Bool) {
        guard rtcp.interval != nil else { return }
        let destination = rtcpMultiplexed ? latched ?? sdpRemote : rtcpLatched ?? rtcpRemote
        guard let destination, let context = rtcpMultiplexed ? handler.context : rtcpHandler.context else { return }
        var senderInfo: RTCPSenderInfo?
        if stats.packetsSent > packetsSentAtLastReport {
            senderInfo = RTCPSenderInfo(
                ntpTimestamp: RTCPReporter.ntpNow(), rtpTimestamp: timestamp,
                packetCount: UInt32(truncatingIfNeeded: stats.packetsSent), octetCount: UInt32(truncatingIfNeeded: stats.bytesSent))
        }
        packetsSentAtLastReport = stats.packetsSent
        let block = sequence.sourceSSRC.map { peer in
            rtcp.block(
                peerSSRC: peer, expected: sequence.expected, received: sequence.receivedCount,
                extendedHighestSequence: sequence.extendedHighest, jitter: jitter.jitter, now: now)
        }
        rtcpOutbound.clear()
        RTCPPacket.write(ssrc: ssrc, senderInfo: senderInfo, block: block, cname: cname, bye: bye, into: &rtcpOutbound)
        rtcp.sent(now: now)
        if let srtp = srtpOutbound {
            rtcpOutbound.reserveCapacity(minimumWritableBytes: SRTPStream.maxRTCPTrailer)
            let length = rtcpOutbound.readableBytes
            let protected = rtcpOutbound.withVeryUnsafeMutableBytes { storage in
                srtp.protectRTCP(storage.baseAddress!, length: length, capacity: storage.count)
            }
            guard let protected else {
                stats.srtpProtectFailures += 1
                return
            }
            rtcpOutbound.moveWriterIndex(forwardBy: protected - length)
        }
        context.writeAndFlush(
            rtcpHandler.wrapOutboundOut(AddressedEnvelope(remoteAddress: destination, data: rtcpOutbound)), promise: nil)
    }

    fileprivate func receiveRTCP(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard state == .running else { return }
        guard let srtp = srtpInbound else {
            envelope.data.withUnsafeReadableBytes { readReport($0, from: envelope.remoteAddress) }
            return
        }
        guard let plain = unprotect(envelope.data, with: srtp, control: true) else { return }
        readReport(plain, from: envelope.remoteAddress)
    }

    /// Copies an SRTP or SRTCP datagram into the scratch buffer (NIO's is shared) and unprotects it there. A
    /// datagram that fails (authentication, replay, anything else) is counted and yields nil. RTP and RTCP are
    /// handled one at a time on this loop, so they share the scratch buffer.
    private func unprotect(_ datagram: ByteBuffer, with srtp: SRTPStream, control: Bool) -> UnsafeRawBufferPointer? {
        let length = datagram.readableBytes
        guard length <= Self.maxDatagram else {
            stats.packetsIgnored += 1
            return nil
        }
        datagram.withUnsafeReadableBytes { srtpScratch.copyMemory(from: $0) }
        let verdict = control
            ? srtp.unprotectRTCP(srtpScratch.baseAddress!, length: length, capacity: srtpScratch.count)
            : srtp.unprotect(srtpScratch.baseAddress!, length: length, capacity: srtpScratch.count)
        switch verdict {
        case .ok(let plain):
            return UnsafeRawBufferPointer(rebasing: srtpScratch[0..<plain])
        case .authenticationFailed:
            stats.srtpAuthenticationFailures += 1
        case .replayed:
            stats.srtpReplayFailures += 1
        case .failed:
            stats.packetsIgnored += 1
        }
        return nil
    }

    private func readReport(_ bytes: UnsafeRawBufferPointer, from source: SocketAddress) {
        guard let report = RTCPPacket.parse(bytes, ourSSRC: ssrc) else {
            stats.packetsIgnored += 1
            return
        }
        rtcp.received(report, now: .now(), ntpNow: RTCPReporter.ntpNow(), clockRate: codec.clockRate)
        // Symmetric RTCP, like RTP: answer where the peer's reports come from.
        if symmetric, !rtcpMultiplexed, source.port != 0 { rtcpLatched = source }
    }

    // MARK: - Receiving

    fileprivate func receive(_ envelope: AddressedEnvelope<ByteBuffer>) {
        packetReadAt = NIODeadline.now().uptimeNanoseconds
        guard state == .running else {
            stats.packetsIgnored += 1
            return
        }
        if rtcpMultiplexed, envelope.data.withUnsafeReadableBytes({ RTCPPacket.isRTCP($0) }) {
            return receiveRTCP(envelope)
        }
        guard let srtp = srtpInbound else {
            envelope.data.withUnsafeReadableBytes { bytes in
                receive(bytes, from: envelope.remoteAddress)
            }
            return
        }
        guard let plain = unprotect(envelope.data, with: srtp, control: false) else { return }
        receive(plain, from: envelope.remoteAddress)
    }

    private func receive(_ bytes: UnsafeRawBufferPointer, from source: SocketAddress) {
        guard let (header, range) = RTPHeader.parse(bytes) else {
            stats.packetsIgnored += 1
            return
        }
        let isAudio = header.payloadType == codec.payloadType
        let isComfortNoise = header.payloadType == comfortNoisePayloadType
        guard isAudio || isComfortNoise || header.payloadType == telephoneEventPayloadType else {
            stats.packetsIgnored += 1
            // Comfort noise and the like share the stream's numbering: their turn is not an audio loss.
            jitter.skip(sequence: header.sequenceNumber)
            return
        }
        stats.packetsReceived += 1
        receivedSinceTick = true
        stats.bytesReceived += range.count
        sequence.update(sequence: header.sequenceNumber, ssrc: header.ssrc)
        latch(source)
        let payload = UnsafeRawBufferPointer(rebasing: bytes[range])
        if isAudio {
            let arrival = Int64(packetReadAt)
            if jitter.insert(sequence: header.sequenceNumber, timestamp: header.timestamp, arrivalNanoseconds: arrival, payload: payload) == .rejected {
                stats.packetsIgnored += 1
            }
            latency.record(.rtpReceived, latencyCodec, since: packetReadAt)
        } else if isComfortNoise {
            // The peer's silence, announced: its turn passes, and the buffer running dry is a pause, not a loss.
            jitter.skip(sequence: header.sequenceNumber, announcesSilence: true)
            stats.comfortNoisePackets += 1
            comfortNoise?.setLevel(fromPayload: payload)
        } else {
            jitter.skip(sequence: header.sequenceNumber)
            if let digit = events.receive(header: header, payload: payload) {
                stats.telephoneEvents += 1
                delegate?.rtpSession(self, receivedDigit: digit)
            }
        }
    }

    /// One tick of inbound audio: takes what is due from the jitter buffer (decoding it or concealing its loss)
    /// until a 20 ms frame is ready, and hands that frame to the delegate. While the peer's stream is paused or
    /// not yet buffered, nothing is delivered.
    /// - Returns: whether a frame went to the delegate.
    private func playOutInbound() -> Bool {
        while pendingSamples < frameSamples {
            switch jitter.pop() {
            case .buffering, .empty:
                guard jitter.peerSilent else { return false }
                fillSilence()
            case .packet(let slot, let length):
                jitter.withPayload(slot: slot, length: length) { decode($0) }
            case .lost:
                conceal()
            }
        }
        let frame = UnsafeBufferPointer(rebasing: decodeScratch[0..<frameSamples])
        delegate?.rtpSession(self, receivedAudio: frame)
        inband?.process(frame) { key in
            stats.telephoneEvents += 1
            delegate?.rtpSession(self, receivedDigit: DTMFDigit(character: key, durationMs: 0))
        }
        // Keep the remainder (packets of 30 ms and the like) at the front for the next tick.
        pendingSamples -= frameSamples
        if pendingSamples > 0 {
            let rest = decodeScratch.baseAddress! + frameSamples
            decodeScratch.baseAddress!.update(from: rest, count: pendingSamples)
        }
        return true
    }

    /// Decodes one packet's payload after the samples already waiting.
    private func decode(_ payload: UnsafeRawBufferPointer) {
        let free = UnsafeMutableBufferPointer(rebasing: decodeScratch[pendingSamples...])
        switch codec.encoding {
        case .g711(let law) where upsampler != nil:
            // Decode and conceal at G.711's own rate, then resample what the agent gets.
            let n = min(payload.count, narrowScratch.count)
            let narrow = UnsafeMutableBufferPointer(rebasing: narrowScratch[0..<n])
            law.decode(UnsafeRawBufferPointer(rebasing: payload[0..<n]), into: narrow)
            g711Concealer?.received(narrow)
            pendingSamples += upsampler!.process(UnsafeBufferPointer(narrow), into: free)
            lastPacketSamples = n
        case .g711(let law):
            let n = min(payload.count, free.count)
            let decoded = UnsafeMutableBufferPointer(rebasing: free[0..<n])
            law.decode(UnsafeRawBufferPointer(rebasing: payload[0..<n]), into: decoded)
            g711Concealer?.received(decoded)
            pendingSamples += n
            lastPacketSamples = n
        case .opus:
            guard let decoder = opusDecoder, let n = decoder.decode(payload, into: free) else {
                stats.decodeFailures += 1
                conceal()
                return
            }
            // RFC 7587 §3.1.3: a DTX frame (at most 2 bytes) starts the peer's silence; libopus continues its
            // comfort noise while no packets come.
            if payload.count <= Self.opusDTXFrameBytes { jitter.peerPaused() }
            pendingSamples += n
            lastPacketSamples = n
        }
    }

    /// The rest of this tick's frame during the peer's announced silence: comfort noise at the CN level, or for
    /// Opus, libopus' continuation of its DTX noise.
    private func fillSilence() {
        let rest = UnsafeMutableBufferPointer(rebasing: decodeScratch[pendingSamples..<frameSamples])
        if codec.law == nil, let opusDecoder {
            pendingSamples += opusDecoder.conceal(into: rest, next: nil)
            return
        }
        if let comfortNoise { comfortNoise.fill(rest) } else { rest.update(repeating: 0) }
        pendingSamples = frameSamples
    }

    /// Synthesises a lost packet's worth of audio after the samples already waiting.
    private func conceal() {
        if let upsampler, codec.law != nil {
            let narrow = UnsafeMutableBufferPointer(rebasing: narrowScratch[0..<min(lastPacketSamples, narrowScratch.count)])
            if let g711Concealer { g711Concealer.fill(narrow) } else { narrow.update(repeating: 0) }
            let free = UnsafeMutableBufferPointer(rebasing: decodeScratch[pendingSamples...])
            pendingSamples += upsampler.process(UnsafeBufferPointer(narrow), into: free)
            return
        }
        let n = min(lastPacketSamples, Self.decodeCapacity - pendingSamples)
        let gap = UnsafeMutableBufferPointer(rebasing: decodeScratch[pendingSamples..<(pendingSamples + n)])
        switch codec.encoding {
        case .g711:
            if let g711Concealer { g711Concealer.fill(gap) } else { gap.update(repeating: 0) }
            pendingSamples += n
        case .opus:
            guard let decoder = opusDecoder else {
                gap.update(repeating: 0)
                pendingSamples += n
                return
            }
            // In-band FEC in the next packet rebuilds this one; without it, libopus' PLC extrapolates.
            pendingSamples += jitter.withNextPayload { decoder.conceal(into: gap, next: $0) }
        }
    }

    /// Symmetric RTP: the first valid packet latches its source; a different source takes over after
    /// `relatchPackets` packets in a row (so a stray packet cannot steal the stream).
    private func latch(_ source: SocketAddress) {
        // Port 0 cannot be answered (raw-socket senders such as sipp's pcap player use it): keep the SDP address.
        guard symmetric, source.port != 0 else { return }
        guard let current = latched else {
            latched = source
            logger.debug("RTP latched to the peer's source", metadata: ["source": "\(source)"])
            return
        }
        if current == source {
            candidateCount = 0
            return
        }
        if candidate == source {
            candidateCount += 1
        } else {
            candidate = source
            candidateCount = 1
        }
        if candidateCount >= Self.relatchPackets {
            latched = source
            candidate = nil
            candidateCount = 0
            logger.info("RTP source moved; sending to the new one", metadata: ["source": "\(source)"])
        }
    }
}

@available(*, unavailable)
extension RTPSession: Sendable {}

/// Feeds datagrams to the session and lends it the context to write with. All methods run on the channel's loop.
final class RTPChannelHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// The RTCP port's handler (the RTP port's may carry RTCP too, when multiplexed).
    let carriesRTCP: Bool

    init(carriesRTCP: Bool) {
        self.carriesRTCP = carriesRTCP
    }

    /// Strong until `RTPSession.close` clears it.
    var session: RTPSession?
    private(set) var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session else { return }
        if carriesRTCP {
            session.receiveRTCP(unwrapInboundIn(data))
        } else {
            session.receive(unwrapInboundIn(data))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A UDP error (e.g. an ICMP report about one datagram) does not end the stream.
    }
}

@available(*, unavailable)
extension RTPChannelHandler: Sendable {}
