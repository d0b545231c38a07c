#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Media
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import SecureCapture

/// A remote agent reached over Twilio's bidirectional Media Streams protocol; confined to the call's `EventLoop`.
///
/// Every method (the `CallAgent` ones and the read-only counters) must be called on `eventLoop`; debug builds
/// assert it. The WebSocket client runs on that same loop, so a packet of caller audio goes from `callerAudio`
/// to the socket without crossing a thread, a `Task` or a lock, and without an allocation in the steady state:
/// the JSON envelope, the base64 payload and the masked frame header are written into one reused buffer.
///
/// Trunkline plays Twilio toward the agent: it sends `connected`, `start` (call context in `customParameters`),
/// `media` (20 ms of μ-law per message), `dtmf`, `mark` echoes and `stop`, and accepts `media`, `mark` and `clear`.
/// A stock Pipecat Twilio bot ends a call by closing the socket, which reaches the call as
/// `agentHangUp(reason: "agent closed the stream")`.
///
/// Outcomes, each reported at most once and never after `stop(reason:)`:
/// - connect refused, upgrade rejected, or no open WebSocket within the policy's timeout, on every attempt the
///   `AgentConnectPolicy` allows → `agentFailed(.unreachable)`;
/// - close frame or TCP FIN from the agent after the stream opened → `agentHangUp`;
/// - socket error or protocol violation (oversized frame, non-UTF-8 text) → `agentFailed(.failedMidCall)`.
public final class TwilioMediaStreamAgent: CallAgent {
    /// Largest WebSocket message accepted from the agent (one frame or the sum of its fragments).
    public static let maxInboundMessageSize = 1 << 20

    public let url: AgentURL
    public let eventLoop: EventLoop
    /// How audio is carried both ways.
    public let mediaFormat: AgentMediaFormat
    /// This stream's id, `MZ` + 32 lowercase hex digits, fixed at init.
    public let streamSid: String

    /// Caller packets and digits that arrived before the WebSocket was open, dropped (not queued).
    public private(set) var droppedBeforeOpen = 0
    /// Caller packets dropped because the socket was not writable (the agent reads too slowly).
    public private(set) var droppedWhileBackpressured = 0
    /// Agent messages ignored: not JSON, unknown event, or missing fields.
    public private(set) var ignoredAgentMessages = 0

    /// Connection attempts made so far (1 once `start` ran; more after retries), for the call record.
    public private(set) var connectAttempts = 0

    private var logger: Logger
    private let connectPolicy: AgentConnectPolicy
    private let authorization: AgentAuthorization?

    // All fields below: protected by the event loop thread.
    private var state: State = .idle { didSet { self.eventLoop.assertInEventLoop() } }
    private weak var control: AgentCallControl?
    private var context: CallContext?
    /// Scratch for every outbound text frame; uniquely owned again once the socket has taken the previous one.
    private var outbound: ByteBuffer
    private var muLawScratch: [UInt8] = Array(repeating: 0, count: 160)
    private var pcmScratch: [Int16] = Array(repeating: 0, count: 320)
    private var maskingKeys = MaskingKeys()
    /// A decoded agent `media` payload (grows to the largest seen).
    private var payloadScratch: [UInt8] = Array(repeating: 0, count: 1024)
    private var sequenceNumber = 0
    private var chunk = 0
    private var samplesStreamed = 0
    private var nextMarkID = 1
    private var pendingMarks: [Int: String] = [:]
    /// Secure-capture updates from before the stream opened (a route may capture from the answer), sent after
    /// `start`: the agent must learn a capture's result even when it happened while it was connecting.
    private var earlyCaptureUpdates: [SecureCaptureUpdate] = []
    /// More than a whole capture's updates (started, 32 keys, result) twice over.
    static let maxEarlyCaptureUpdates = 70

    private enum State {
        case idle
        /// TCP connect and HTTP upgrade under way; `channel` is known once the TCP connect succeeded.
        case connecting(channel: Channel?, deadline: Scheduled<Void>)
        /// An attempt failed; the next one starts when `retry` fires.
        case waitingToRetry(retry: Scheduled<Void>)
        case streaming(TwilioStreamHandler)
        /// Stopped, failed or hung up: nothing more is sent or reported.
        case finished
    }

    /// Creates the agent for one call. Nothing happens until `start(context:control:)`.
    ///
    /// - Parameters:
    ///   - url: the agent's `ws://` URL.
    ///   - eventLoop: the call's loop; the socket is created on it and every method must be called on it.
    ///   - logger: logs with `stream_sid` added; no media content and no digits are logged.
    ///   - connect: limit for TCP connect plus WebSocket upgrade, and how many attempts with what backoff.
    ///   - authorization: credentials for the upgrade request (bearer token or Twilio signature), if the route has any.
    ///   - mediaFormat: μ-law at 8 kHz (Twilio) or 16-bit PCM at a wideband rate; caller audio must come at its rate.
    public init(
        url: AgentURL, eventLoop: EventLoop, logger: Logger, connect: AgentConnectPolicy,
        authorization: AgentAuthorization? = nil, mediaFormat: AgentMediaFormat = .muLaw
    ) {
        self.url = url
        self.mediaFormat = mediaFormat
        self.eventLoop = eventLoop
        self.connectPolicy = connect
        self.authorization = authorization
        self.streamSid = TwilioIdentifier.make(prefix: "MZ")
        self.logger = logger
        self.logger[metadataKey: "stream_sid"] = "\(self.streamSid)"
        self.outbound = ByteBufferAllocator().buffer(capacity: 1024)
    }

    // MARK: - CallAgent

    public func start(context: CallContext, control: AgentCallControl) {
        self.eventLoop.preconditionInEventLoop()
        guard case .idle = self.state else {
            assertionFailure("TwilioMediaStreamAgent.start called twice")
            return
        }
        self.context = context
        self.control = control
        self.logger[metadataKey: "call_sid"] = "\(context.callSid)"
        self.connect()
    }

    /// One attempt: TCP connect and upgrade under its own deadline. Events of an earlier attempt's channel carry
    /// that attempt's number and are ignored.
    private func connect() {
        self.connectAttempts += 1
        let attempt = self.connectAttempts
        let box = NIOLoopBound(self, eventLoop: self.eventLoop)
        let timeout = self.connectPolicy.timeout
        let deadline = self.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            box.value.processConnectDeadline(timeout, attempt: attempt)
        }
        self.state = .connecting(channel: nil, deadline: deadline)
        self.logger.debug("connecting to agent", metadata: ["url": "\(self.url)", "attempt": "\(attempt)"])

        let url = self.url
        let headers = self.authorization?.headers(for: url) ?? []
        ClientBootstrap(group: self.eventLoop)
            .connectTimeout(timeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configureHandshake(channel: channel, url: url, headers: headers, attempt: attempt, agent: box)
                }
            }
            .connect(host: url.host, port: url.port)
            .assumeIsolated()
            .whenComplete { result in box.value.processConnectResult(result, attempt: attempt) }
    }

    /// An attempt failed: retry after the backoff while the policy allows and another attempt may help, else
    /// report the agent unreachable.
    private func attemptFailed(_ detail: String, retryable: Bool = true) {
        guard case .connecting(let channel, let deadline) = self.state else { return }
        guard retryable, self.connectAttempts < self.connectPolicy.attempts else {
            let attempts = self.connectAttempts
            self.finish(.failed(.unreachable(attempts > 1 ? "\(detail) (attempt \(attempts) of \(attempts))" : detail)))
            return
        }
        let backoff = self.connectPolicy.backoff(before: self.connectAttempts + 1)
        self.logger.info("agent connection failed; retrying", metadata: [
            "attempt": "\(self.connectAttempts)", "reason": "\(detail)", "backoff_ms": "\(backoff.nanoseconds / 1_000_000)",
        ])
        let box = NIOLoopBound(self, eventLoop: self.eventLoop)
        let retry = self.eventLoop.assumeIsolated().scheduleTask(in: backoff) { box.value.processRetryDue() }
        // First, so the events that closing the channel fires find this attempt over.
        self.state = .waitingToRetry(retry: retry)
        deadline.cancel()
        channel?.close(promise: nil)
    }

    private func processRetryDue() {
        guard case .waitingToRetry = self.state else { return }
        self.connect()
    }

    /// Sends one `media` message: the samples as μ-law, `chunk` counting sent messages from 1, `timestamp` the
    /// milliseconds of caller audio before this packet. Before the stream is open the packet is dropped and counted
    /// in `droppedBeforeOpen`; while the socket is not writable it is dropped and counted in
    /// `droppedWhileBackpressured` (its time still advances `timestamp`).
    public func callerAudio(_ samples: UnsafeBufferPointer<Int16>) {
        self.eventLoop.assertInEventLoop()
        guard case .streaming(let handler) = self.state else {
            if self.isConnecting { self.droppedBeforeOpen += 1 }
            return
        }
        let timestampMs = self.samplesStreamed * 1000 / self.mediaFormat.sampleRate
        self.samplesStreamed += samples.count
        guard handler.isWritable else {
            self.droppedWhileBackpressured += 1
            return
        }
        if self.muLawScratch.count < samples.count {
            self.muLawScratch = Array(repeating: 0, count: samples.count)
        }
        self.sequenceNumber += 1
        self.chunk += 1
        let sequenceNumber = self.sequenceNumber
        let chunk = self.chunk
        let streamSid = self.streamSid
        WebSocketClientFrame.begin(&self.outbound)
        if case .linear16 = self.mediaFormat {
            self.writeLinear16(samples, sequenceNumber: sequenceNumber, chunk: chunk, timestampMs: timestampMs, streamSid: streamSid)
            WebSocketClientFrame.finish(&self.outbound, opcode: .text, key: self.maskingKeys.next())
            handler.writeRawFrame(self.outbound)
            return
        }
        self.muLawScratch.withUnsafeMutableBufferPointer { muLaw in
            let encoded = UnsafeMutableBufferPointer(rebasing: muLaw[..<samples.count])
            G711Law.muLaw.encode(samples, into: encoded)
            TwilioStreamMessage.writeMedia(
                into: &self.outbound, sequenceNumber: sequenceNumber, chunk: chunk, timestampMs: timestampMs,
                payload: UnsafeRawBufferPointer(encoded), streamSid: streamSid
            )
        }
        WebSocketClientFrame.finish(&self.outbound, opcode: .text, key: self.maskingKeys.next())
        handler.writeRawFrame(self.outbound)
    }

    public func callerDigit(_ digit: Character) {
        self.eventLoop.assertInEventLoop()
        guard case .streaming = self.state else {
            if self.isConnecting { self.droppedBeforeOpen += 1 }
            return
        }
        self.sendText { buffer, sequenceNumber, streamSid in
            TwilioStreamMessage.writeDTMF(into: &buffer, sequenceNumber: sequenceNumber, digit: digit, streamSid: streamSid)
        }
    }

    public func markPlayed(_ id: Int) {
        self.eventLoop.assertInEventLoop()
        guard let name = self.pendingMarks.removeValue(forKey: id), case .streaming = self.state else { return }
        self.sendText { buffer, sequenceNumber, streamSid in
            TwilioStreamMessage.writeMark(into: &buffer, sequenceNumber: sequenceNumber, name: name, streamSid: streamSid)
        }
    }

    public func secureCapture(_ update: SecureCaptureUpdate) {
        self.eventLoop.assertInEventLoop()
        if self.isConnecting {
            if self.earlyCaptureUpdates.count < Self.maxEarlyCaptureUpdates { self.earlyCaptureUpdates.append(update) }
            return
        }
        self.sendText { buffer, sequenceNumber, streamSid in
            TwilioStreamMessage.writeSecureCapture(into: &buffer, sequenceNumber: sequenceNumber, update: update, streamSid: streamSid)
        }
    }

    public func transfer(_ update: TransferUpdate) {
        self.eventLoop.assertInEventLoop()
        self.sendText { buffer, sequenceNumber, streamSid in
            TwilioStreamMessage.writeTransfer(into: &buffer, sequenceNumber: sequenceNumber, update: update, streamSid: streamSid)
        }
    }

    public func optOut(_ update: OptOutUpdate) {
        self.eventLoop.assertInEventLoop()
        self.sendText { buffer, sequenceNumber, streamSid in
            TwilioStreamMessage.writeOptOut(into: &buffer, sequenceNumber: sequenceNumber, update: update, streamSid: streamSid)
        }
    }

    public func hold(_ held: Bool) {
        self.eventLoop.assertInEventLoop()
        self.sendText { buffer, sequenceNumber, streamSid in
            TwilioStreamMessage.writeHold(into: &buffer, sequenceNumber: sequenceNumber, held: held, streamSid: streamSid)
        }
    }

    public func stop(reason: String) {
        self.eventLoop.assertInEventLoop()
        switch self.state {
        case .idle, .finished:
            self.state = .finished
            self.control = nil
        case .connecting(let channel, let deadline):
            self.logger.debug("stopped while connecting", metadata: ["reason": "\(reason)"])
            self.state = .finished
            self.control = nil
            deadline.cancel()
            channel?.close(promise: nil)
        case .waitingToRetry(let retry):
            self.logger.debug("stopped while waiting to retry", metadata: ["reason": "\(reason)"])
            self.state = .finished
            self.control = nil
            retry.cancel()
        case .streaming(let handler):
            self.logger.debug("stopping stream", metadata: ["reason": "\(reason)"])
            if let context = self.context {
                self.sendText { buffer, sequenceNumber, streamSid in
                    TwilioStreamMessage.writeStop(
                        into: &buffer, sequenceNumber: sequenceNumber, accountSid: context.accountSid,
                        callSid: context.callSid, streamSid: streamSid
                    )
                }
            }
            self.state = .finished
            self.control = nil
            self.pendingMarks.removeAll()
            handler.closeGracefully(code: .normalClosure)
        }
    }

    /// Connecting, or waiting between attempts: the stream is not open yet.
    private var isConnecting: Bool {
        switch self.state {
        case .connecting, .waitingToRetry: true
        case .idle, .streaming, .finished: false
        }
    }

    // MARK: - Sending

    /// Frames one text message built by `write` (given the buffer, the next sequence number and the stream id).
    private func sendText(_ write: (inout ByteBuffer, Int, String) -> Void) {
        guard case .streaming(let handler) = self.state else { return }
        self.sequenceNumber += 1
        WebSocketClientFrame.begin(&self.outbound)
        write(&self.outbound, self.sequenceNumber, self.streamSid)
        WebSocketClientFrame.finish(&self.outbound, opcode: .text)
        handler.writeRawFrame(self.outbound)
    }

    /// Tells the agent an extension request failed: `{"event":"error","error":{"event":…,"message":…}}`.
    private func sendError(about event: String, message: String) {
        self.sendText { buffer, sequenceNumber, streamSid in
            TwilioStreamMessage.writeError(
                into: &buffer, sequenceNumber: sequenceNumber, about: event, message: message, streamSid: streamSid)
        }
    }

    private func sendOpeningMessages(_ handler: TwilioStreamHandler) {
        guard let context = self.context else { return }
        WebSocketClientFrame.begin(&self.outbound)
        TwilioStreamMessage.writeConnected(into: &self.outbound)
        WebSocketClientFrame.finish(&self.outbound, opcode: .text)
        handler.writeRawFrame(self.outbound)
        let streamSid = self.streamSid
        self.sendText { buffer, sequenceNumber, _ in
            TwilioStreamMessage.writeStart(
                into: &buffer, sequenceNumber: sequenceNumber, streamSid: streamSid, context: context,
                mediaFormat: self.mediaFormat
            )
        }
        let early = self.earlyCaptureUpdates
        self.earlyCaptureUpdates = []
        for update in early { self.secureCapture(update) }
    }

    // MARK: - Outcomes

    private enum Outcome {
        case hangUp(String)
        case failed(AgentFailure)
    }

    /// Ends the stream and reports `outcome` to the call, once.
    ///
    /// - Parameter closeCode: when set, a close frame with this code is sent before the socket closes.
    /// - Parameter closeNow: close the socket as soon as our close frame is written (the agent closed first, or
    ///   broke the protocol) instead of waiting for the agent's close frame.
    private func finish(_ outcome: Outcome, closeCode: WebSocketErrorCode? = nil, closeNow: Bool = false) {
        let previous = self.state
        // First, so the events that closing the channel fires (channelInactive) find the stream finished.
        self.state = .finished
        switch previous {
        case .idle, .finished:
            return
        case .connecting(let channel, let deadline):
            deadline.cancel()
            channel?.close(promise: nil)
        case .waitingToRetry(let retry):
            retry.cancel()
        case .streaming(let handler):
            if let closeCode, closeNow {
                handler.sendCloseAndClose(code: closeCode)
            } else if let closeCode {
                handler.closeGracefully(code: closeCode)
            } else {
                handler.close()
            }
        }
        self.pendingMarks.removeAll()
        let control = self.control
        self.control = nil
        switch outcome {
        case .hangUp(let reason):
            self.logger.info("agent ended the call", metadata: ["reason": "\(reason)"])
            control?.agentHangUp(reason: reason)
        case .failed(let failure):
            self.logger.warning("agent failed", metadata: ["reason": "\(failure.reason)"])
            control?.agentFailed(failure)
        }
    }

    // MARK: - Events from the network (process*)

    private func processConnectDeadline(_ timeout: TimeAmount, attempt: Int) {
        guard case .connecting = self.state, attempt == self.connectAttempts else { return }
        let ms = timeout.nanoseconds / 1_000_000
        self.attemptFailed("no WebSocket to \(self.url) within \(ms) ms")
    }

    private func processConnectResult(_ result: Result<Channel, Error>, attempt: Int) {
        switch (result, self.state) {
        case (.success(let channel), .connecting(_, let deadline)) where attempt == self.connectAttempts:
            self.state = .connecting(channel: channel, deadline: deadline)
        case (.success(let channel), _):
            channel.close(promise: nil)  // stopped, timed out or superseded meanwhile
        case (.failure(let error), .connecting) where attempt == self.connectAttempts:
            self.attemptFailed("connect to \(self.url.hostHeader) failed: \(error)")
        case (.failure, _):
            break
        }
    }

    fileprivate func processUpgradeRejected(_ head: HTTPResponseHead, attempt: Int) {
        guard case .connecting = self.state, attempt == self.connectAttempts else { return }
        // A 4xx is this request refused (path, credentials): asking again the same way cannot help.
        self.attemptFailed(
            "WebSocket upgrade to \(self.url) rejected: HTTP \(head.status.code) \(head.status.reasonPhrase)",
            retryable: !(400..<500).contains(Int(head.status.code)))
    }

    fileprivate func processStreamOpened(_ handler: TwilioStreamHandler, attempt: Int) {
        guard case .connecting(_, let deadline) = self.state, attempt == self.connectAttempts else {
            handler.close()
            return
        }
        deadline.cancel()
        self.state = .streaming(handler)
        self.logger.debug("agent stream open")
        self.sendOpeningMessages(handler)
    }

    fileprivate func processError(_ error: Error, attempt: Int) {
        guard attempt == self.connectAttempts else { return }
        switch self.state {
        case .connecting:
            self.attemptFailed("WebSocket handshake with \(self.url) failed: \(error)")
        case .streaming:
            self.finish(.failed(.failedMidCall("\(error)")), closeCode: Self.closeCode(for: error), closeNow: true)
        case .idle, .waitingToRetry, .finished:
            break
        }
    }

    /// The close code for a protocol error (RFC 6455 §7.4.1), or `nil` for a socket error (no close frame).
    private static func closeCode(for error: Error) -> WebSocketErrorCode? {
        switch error {
        case NIOWebSocketError.invalidFrameLength: .messageTooLarge
        case is NIOWebSocketError: .protocolError
        case NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge,
            NIOWebSocketFrameAggregator.Error.tooManyFragments:
            .messageTooLarge
        case is NIOWebSocketFrameAggregator.Error: .protocolError
        default: nil
        }
    }

    fileprivate func processChannelInactive(attempt: Int) {
        guard attempt == self.connectAttempts else { return }
        switch self.state {
        case .connecting:
            self.attemptFailed("\(self.url) closed the connection during the WebSocket handshake")
        case .streaming:
            self.finish(.hangUp("agent closed the stream"))
        case .idle, .waitingToRetry, .finished:
            break
        }
    }

    fileprivate func processFrame(_ frame: WebSocketFrame, handler: TwilioStreamHandler) {
        guard case .streaming = self.state else { return }
        switch frame.opcode {
        case .text:
            let data = frame.unmaskedData
            guard isValidUTF8(data) else {
                self.finish(
                    .failed(.failedMidCall("agent sent a text frame that is not UTF-8")),
                    closeCode: .dataInconsistentWithMessage,
                    closeNow: true
                )
                return
            }
            if self.playMediaFast(data) { return }
            self.processText(Data(data.readableBytesView))
        case .ping:
            handler.writeControlFrame(.pong, data: frame.unmaskedData)
        case .connectionClose:
            let code = frame.unmaskedData.peekWebSocketErrorCode() ?? .normalClosure
            self.finish(.hangUp("agent closed the stream"), closeCode: code, closeNow: true)
        case .binary:
            self.ignoredAgentMessages += 1
            self.logger.debug("ignoring binary frame from agent")
        default:
            break  // pong, continuation (the aggregator joins fragments)
        }
    }

    /// The hot path: a `media` message `AgentMediaMessage` reads, played without Foundation or allocation.
    /// - Returns: false for any other message, which `processText` then handles.
    private func playMediaFast(_ text: ByteBuffer) -> Bool {
        let needed = text.readableBytes * 3 / 4
        if self.payloadScratch.count < needed { self.payloadScratch = Array(repeating: 0, count: needed) }
        return text.withUnsafeReadableBytes { json in
            self.payloadScratch.withUnsafeMutableBytes { output in
                guard let count = AgentMediaMessage.decodePayload(json, into: output) else { return false }
                self.play(UnsafeRawBufferPointer(rebasing: output[..<count]))
                return true
            }
        }
    }

    private func processText(_ json: Data) {
        let message: AgentMessage
        do {
            message = try JSONDecoder().decode(AgentMessage.self, from: json)
        } catch {
            self.ignore("not a JSON object with an event")
            return
        }
        switch message.event {
        case "media":
            guard let payload = message.media?.payload, let muLaw = Data(base64Encoded: payload) else {
                self.ignore("media without a base64 payload")
                return
            }
            muLaw.withUnsafeBytes { self.play($0) }
        case "mark":
            guard let name = message.mark?.name else {
                self.ignore("mark without a name")
                return
            }
            let id = self.nextMarkID
            self.nextMarkID += 1
            self.pendingMarks[id] = name
            self.control?.agentMark(id)
        case "clear":
            self.control?.agentClear()
        // Trunkline extensions: a Twilio-only bot never sends these, so they cannot change its behaviour.
        case "hangup":
            let reason = message.hangup?.reason.map { String($0.prefix(200)) } ?? "agent asked to hang up"
            self.control?.agentHangUp(reason: reason)
        case "sendDigits":
            guard let digits = message.sendDigits?.digits else {
                self.ignore("sendDigits without digits")
                return
            }
            do {
                try self.control?.agentSendDigits(digits)
            } catch {
                self.sendError(about: "sendDigits", message: "\(error)")
            }
        case "startSecureCapture":
            do {
                try self.control?.agentStartSecureCapture(message.secureCapture?.options ?? SecureCaptureOptions())
            } catch {
                self.sendError(about: "startSecureCapture", message: "\(error)")
            }
        case "stopSecureCapture":
            do {
                try self.control?.agentStopSecureCapture()
            } catch {
                self.sendError(about: "stopSecureCapture", message: "\(error)")
            }
        case "transfer":
            do {
                guard let transfer = message.transfer else { throw AgentRequestError("transfer without a transfer object") }
                try self.control?.agentTransfer(try transfer.command())
            } catch {
                self.sendError(about: "transfer", message: "\(error)")
            }
        case "optOut":
            do {
                try self.control?.agentOptOut(reason: message.optOut?.reason.map { String($0.prefix(200)) } ?? "agent reported an opt-out")
            } catch {
                self.sendError(about: "optOut", message: "\(error)")
            }
        default:
            self.ignore("unknown event")
        }
    }

    /// One `media` message of little-endian 16-bit PCM; the samples are byte-swapped first on a big-endian host.
    private func writeLinear16(
        _ samples: UnsafeBufferPointer<Int16>, sequenceNumber: Int, chunk: Int, timestampMs: Int, streamSid: String
    ) {
        if self.pcmScratch.count < samples.count {
            self.pcmScratch = Array(repeating: 0, count: samples.count)
        }
        self.pcmScratch.withUnsafeMutableBufferPointer { pcm in
            for i in 0..<samples.count { pcm[i] = samples[i].littleEndian }
            TwilioStreamMessage.writeMedia(
                into: &self.outbound, sequenceNumber: sequenceNumber, chunk: chunk, timestampMs: timestampMs,
                payload: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: pcm[..<samples.count])), streamSid: streamSid
            )
        }
    }

    /// The agent's audio in the stream's format, to the call.
    private func play(_ payload: UnsafeRawBufferPointer) {
        guard case .linear16 = self.mediaFormat else {
            self.play(muLaw: payload)
            return
        }
        let count = payload.count / 2
        guard count > 0 else { return }
        if self.pcmScratch.count < count {
            self.pcmScratch = Array(repeating: 0, count: count)
        }
        let control = self.control
        self.pcmScratch.withUnsafeMutableBufferPointer { pcm in
            for i in 0..<count {
                pcm[i] = Int16(bitPattern: UInt16(payload[2 * i]) | UInt16(payload[2 * i + 1]) << 8)
            }
            control?.agentPlay(UnsafeBufferPointer(rebasing: pcm[..<count]))
        }
    }

    private func play(muLaw: UnsafeRawBufferPointer) {
        guard !muLaw.isEmpty else { return }
        if self.pcmScratch.count < muLaw.count {
            self.pcmScratch = Array(repeating: 0, count: muLaw.count)
        }
        let control = self.control
        self.pcmScratch.withUnsafeMutableBufferPointer { pcm in
            let samples = UnsafeMutableBufferPointer(rebasing: pcm[..<muLaw.count])
            G711Law.muLaw.decode(muLaw, into: samples)
            control?.agentPlay(UnsafeBufferPointer(samples))
        }
    }

    private func ignore(_ why: String) {
        self.ignoredAgentMessages += 1
        if self.ignoredAgentMessages <= 10 {  // an agent spamming junk must not flood the log
            self.logger.debug("ignoring agent message", metadata: ["why": "\(why)"])
        }
    }

    // MARK: - Pipeline

    private static func configureHandshake(
        channel: Channel, url: AgentURL, headers: [(name: String, value: String)], attempt: Int,
        agent: NIOLoopBound<TwilioMediaStreamAgent>
    ) throws {
        let requestEncoder = HTTPRequestEncoder()
        let responseDecoder = ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes))
        let handshake = TwilioHandshakeHandler(url: url, headers: headers, attempt: attempt, agent: agent.value)
        let upgrader = NIOWebSocketClientUpgrader(
            maxFrameSize: maxInboundMessageSize,
            automaticErrorHandling: false,  // the stream handler answers protocol errors, after reporting them
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    let rawWriter = WebSocketRawFrameWriter()
                    try sync.addHandler(rawWriter, position: .first)
                    try sync.addHandler(
                        NIOWebSocketFrameAggregator(
                            minNonFinalFragmentSize: 1,
                            maxAccumulatedFrameCount: 1024,
                            maxAccumulatedFrameSize: maxInboundMessageSize
                        )
                    )
                    let stream = TwilioStreamHandler(agent: agent.value, rawWriter: rawWriter, attempt: attempt)
                    try sync.addHandler(stream)
                    agent.value.processStreamOpened(stream, attempt: attempt)
                }
            }
        )
        let upgradeHandler = NIOHTTPClientUpgradeHandler(
            upgraders: [upgrader],
            httpHandlers: [requestEncoder, responseDecoder, handshake],
            upgradeCompletionHandler: { _ in }
        )
        try channel.pipeline.syncOperations.addHandlers([requestEncoder, responseDecoder, upgradeHandler, handshake])
    }
}

@available(*, unavailable)
extension TwilioMediaStreamAgent: Sendable {}

private func isValidUTF8(_ buffer: ByteBuffer) -> Bool {
    // Agent messages are nearly always ASCII: check that eight bytes at a time, and decode only when it fails.
    let isASCII = buffer.withUnsafeReadableBytes { bytes in
        var high: UInt64 = 0
        var i = 0
        while i + 8 <= bytes.count {
            high |= bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < bytes.count {
            high |= UInt64(bytes[i])
            i += 1
        }
        return high & 0x8080_8080_8080_8080 == 0
    }
    if isASCII { return true }
    var iterator = buffer.readableBytesView.makeIterator()
    var decoder = UTF8()
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue: continue
        case .emptyInput: return true
        case .error: return false
        }
    }
}

/// What Trunkline reads from an agent message; everything else in it is ignored.
private struct AgentMessage: Decodable {
    struct Media: Decodable { var payload: String? }
    struct Mark: Decodable { var name: String? }
    struct Hangup: Decodable { var reason: String? }
    struct OptOut: Decodable { var reason: String? }
    struct SendDigits: Decodable { var digits: String? }
    /// `startSecureCapture` options; absent fields keep `SecureCaptureOptions`' defaults.
    struct SecureCapture: Decodable {
        var maxDigits: Int?
        var minDigits: Int?
        /// A DTMF key, or "" for none.
        var finishKey: String?
        var timeoutMs: Int?
        var interDigitTimeoutMs: Int?
        var revealLast4: Bool?
        var reference: String?
        var cardNumber: Bool?

        var options: SecureCaptureOptions {
            var options = SecureCaptureOptions()
            if let maxDigits { options.maxDigits = maxDigits }
            if let minDigits { options.minDigits = minDigits }
            // "" means no finish key; anything longer than one key becomes a non-key that validation refuses.
            if let finishKey { options.finishKey = finishKey.count <= 1 ? finishKey.first : "?" }
            if let timeoutMs { options.totalTimeout = .milliseconds(Int64(clamping: timeoutMs)) }
            if let interDigitTimeoutMs { options.interDigitTimeout = .milliseconds(Int64(clamping: interDigitTimeoutMs)) }
            if let revealLast4 { options.revealLast4 = revealLast4 }
            options.reference = reference
            if let cardNumber { options.cardNumber = cardNumber }
            return options
        }
    }
    /// `transfer`: a new transfer (`target`, optional `headers`, `mode`, `agent`), or `action` connect / cancel.
    struct Transfer: Decodable {
        var target: String?
        var headers: [String: String]?
        var mode: String?
        /// `leave` (default) or `listen`: what the agent does once the caller is bridged to the human.
        var agent: String?
        var action: String?

        func command() throws(AgentRequestError) -> TransferCommand {
            switch action {
            case "connect": return .connect
            case "cancel": return .cancel
            case nil: break
            case let other?: throw AgentRequestError("unknown transfer action '\(other.prefix(40))' (connect, cancel)")
            }
            guard let target, !target.isEmpty else { throw AgentRequestError("transfer without a target") }
            var transferMode = TransferMode.blind
            if let mode {
                guard let known = TransferMode(rawValue: mode) else {
                    throw AgentRequestError("unknown transfer mode '\(mode.prefix(40))' (blind, bridge, attended)")
                }
                transferMode = known
            }
            let agentStays: Bool
            switch agent {
            case nil, "leave": agentStays = false
            case "listen": agentStays = true
            case let other?: throw AgentRequestError("unknown transfer agent '\(other.prefix(40))' (leave, listen)")
            }
            // Sorted: a JSON object has no order, and the headers should go out the same way every time.
            let headers = (headers ?? [:]).sorted { $0.key < $1.key }.map { TransferHeader(name: $0.key, value: $0.value) }
            return .start(TransferRequest(target: target, headers: headers, mode: transferMode, agentStays: agentStays))
        }
    }
    var event: String
    var media: Media?
    var mark: Mark?
    var hangup: Hangup?
    var sendDigits: SendDigits?
    var secureCapture: SecureCapture?
    var transfer: Transfer?
    var optOut: OptOut?
}

/// An agent request that cannot be read; its text goes back to the agent in an `error` event.
struct AgentRequestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Channel handlers

/// Sends the upgrade request once connected and reports a refused upgrade; removed by the upgrade.
///
/// All methods are called on the channel's loop, which is the agent's loop.
final class TwilioHandshakeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private let url: AgentURL
    /// Credentials for the route (never logged).
    private let extraHeaders: [(name: String, value: String)]
    private let attempt: Int
    private weak var agent: TwilioMediaStreamAgent?
    private var reported = false

    init(url: AgentURL, headers: [(name: String, value: String)], attempt: Int, agent: TwilioMediaStreamAgent) {
        self.url = url
        self.extraHeaders = headers
        self.attempt = attempt
        self.agent = agent
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: self.url.hostHeader)
        headers.add(name: "User-Agent", value: "Trunkline")
        headers.add(name: "Content-Length", value: "0")
        for (name, value) in self.extraHeaders { headers.add(name: name, value: value) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: self.url.path, headers: headers)
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Only a refused upgrade reaches here: on 101 the upgrade handler consumes the response and removes us.
        if case .head(let head) = Self.unwrapInboundIn(data), !self.reported {
            self.reported = true
            self.agent?.processUpgradeRejected(head, attempt: self.attempt)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.agent?.processError(error, attempt: self.attempt)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.agent?.processChannelInactive(attempt: self.attempt)
        context.fireChannelInactive()
    }
}

/// Pass-through at the head end of the pipeline: writes through its context skip the frame encoder,
/// which is how the agent sends frames it built and masked itself. Reads pass it first, so it marks when the
/// agent's bytes arrived (the start of `MediaPathSegment.agentFrameReceived`).
final class WebSocketRawFrameWriter: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private(set) var context: ChannelHandlerContext?
    private let latency = MediaLatencyRecorder.current

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        latency.markIngress()
        context.fireChannelRead(data)
        latency.clearIngress()
    }
}

/// The open stream: hands agent frames to the agent and writes the agent's frames.
///
/// All methods are called on the channel's loop, which is the agent's loop.
final class TwilioStreamHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// How long to wait for the agent's close frame after sending ours before dropping the TCP connection.
    static let closeGrace: TimeAmount = .seconds(2)

    private weak var agent: TwilioMediaStreamAgent?
    private let rawWriter: WebSocketRawFrameWriter
    private let attempt: Int
    private var context: ChannelHandlerContext?
    private var closeSent = false

    init(agent: TwilioMediaStreamAgent, rawWriter: WebSocketRawFrameWriter, attempt: Int) {
        self.agent = agent
        self.rawWriter = rawWriter
        self.attempt = attempt
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    /// Writes and flushes a complete, masked frame (see `WebSocketClientFrame`).
    func writeRawFrame(_ frame: ByteBuffer) {
        guard !self.closeSent, let rawContext = self.rawWriter.context else { return }
        rawContext.writeAndFlush(NIOAny(frame), promise: nil)
    }

    func writeControlFrame(_ opcode: WebSocketOpcode, data: ByteBuffer) {
        guard !self.closeSent, let context = self.context else { return }
        let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: data)
        context.writeAndFlush(Self.wrapOutboundOut(frame), promise: nil)
    }

    /// Sends a close frame, then closes the socket when the agent answers it or after `closeGrace`.
    func closeGracefully(code: WebSocketErrorCode) {
        guard !self.closeSent, let context = self.context else { return }
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        self.writeControlFrame(.connectionClose, data: data)
        self.closeSent = true
        let channel = context.channel
        let timer = channel.eventLoop.scheduleTask(in: Self.closeGrace) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in timer.cancel() }
    }

    /// Sends a close frame (answering the agent's, or after a protocol error) and closes the socket once it is written.
    func sendCloseAndClose(code: WebSocketErrorCode) {
        guard !self.closeSent, let context = self.context else {
            self.close()
            return
        }
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)
        self.closeSent = true
        context.writeAndFlush(Self.wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func close() {
        self.closeSent = true
        self.context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        if self.closeSent {
            if frame.opcode == .connectionClose { context.close(promise: nil) }
            return
        }
        guard let agent = self.agent else {
            context.close(promise: nil)  // the call dropped its agent without stop(reason:)
            return
        }
        agent.processFrame(frame, handler: self)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.agent?.processError(error, attempt: self.attempt)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.agent?.processChannelInactive(attempt: self.attempt)
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension TwilioHandshakeHandler: Sendable {}
@available(*, unavailable)
extension WebSocketRawFrameWriter: Sendable {}
@available(*, unavailable)
extension TwilioStreamHandler: Sendable {}
