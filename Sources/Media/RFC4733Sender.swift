/// Sends DTMF as RFC 4733 telephone-events: a pure state machine the 20 ms RTP clock drives, one decision per
/// packet slot. Each digit is a tone of `toneSamples` (packets carry the event's start timestamp and a growing
/// duration, the first with the marker bit), closed by three end packets, then `gapSamples` of audio before the
/// next; `w` pauses for `pauseSamples`. While a digit plays, queued audio waits (it is not dropped).
public struct RFC4733Sender: Sendable {
    /// What to put in the next 20 ms slot.
    public enum Slot: Sendable, Equatable {
        case audio
        case event(TelephoneEvent, timestamp: UInt32, marker: Bool)
    }

    public enum QueueError: Error, Sendable, Equatable {
        /// A character that is neither a DTMF key nor `w`.
        case invalidDigit(Character)
        /// More than `maximumQueued` characters would be waiting.
        case queueFull
    }

    enum Phase: Sendable, Equatable {
        case idle
        case tone(event: UInt8, start: UInt32, elapsed: Int)
        /// End packets still to send after the first one.
        case ending(event: UInt8, start: UInt32, remaining: Int)
        case gap(remaining: Int)
    }

    public static let maximumQueued = 64
    /// −10 dBm0, what most gateways send.
    public static let volume: UInt8 = 10

    public var toneSamples: Int
    public var gapSamples: Int
    public var pauseSamples: Int
    private let samplesPerSlot: Int
    private var queue: [UInt8] = []
    private var phase = Phase.idle

    /// `w` is encoded in the queue as this value (event codes stop at 16).
    private static let pauseCode: UInt8 = 0xFF

    /// Defaults: 100 ms tones, 100 ms gaps, 500 ms per `w`, 20 ms slots at 8 kHz.
    public init(toneSamples: Int = 800, gapSamples: Int = 800, pauseSamples: Int = 4000, samplesPerSlot: Int = 160) {
        self.toneSamples = toneSamples
        self.gapSamples = gapSamples
        self.pauseSamples = pauseSamples
        self.samplesPerSlot = samplesPerSlot
        queue.reserveCapacity(Self.maximumQueued)
    }

    /// True while digits are queued or playing.
    public var isBusy: Bool { phase != .idle || !queue.isEmpty }

    /// Queues `digits` (0-9, *, #, A-D, and `w` for a pause). All or nothing.
    public mutating func enqueue(_ digits: String) throws(QueueError) {
        var codes: [UInt8] = []
        for character in digits {
            if character == "w" || character == "W" {
                codes.append(Self.pauseCode)
            } else if let code = TelephoneEvent.code(for: character) {
                codes.append(code)
            } else {
                throw .invalidDigit(character)
            }
        }
        guard queue.count + codes.count <= Self.maximumQueued else { throw .queueFull }
        queue.append(contentsOf: codes)
    }

    /// Drops queued digits; one already sounding still gets its end packets, so the far end sees it end.
    public mutating func cancel() {
        queue.removeAll(keepingCapacity: true)
        if case .gap = phase { phase = .idle }
    }

    /// The next slot, given the RTP timestamp this slot would carry as audio.
    public mutating func next(timestamp: UInt32) -> Slot {
        switch phase {
        case .idle:
            guard !queue.isEmpty else { return .audio }
            let code = queue.removeFirst()
            if code == Self.pauseCode {
                phase = .gap(remaining: pauseSamples - samplesPerSlot)
                return .audio
            }
            phase = .tone(event: code, start: timestamp, elapsed: samplesPerSlot)
            return .event(event(code, end: false, duration: samplesPerSlot), timestamp: timestamp, marker: true)
        case .tone(let code, let start, let elapsed):
            let duration = elapsed + samplesPerSlot
            if duration >= toneSamples {
                phase = .ending(event: code, start: start, remaining: 2)
                return .event(event(code, end: true, duration: toneSamples), timestamp: start, marker: false)
            }
            phase = .tone(event: code, start: start, elapsed: duration)
            return .event(event(code, end: false, duration: duration), timestamp: start, marker: false)
        case .ending(let code, let start, let remaining):
            phase = remaining > 1 ? .ending(event: code, start: start, remaining: remaining - 1) : .gap(remaining: gapSamples)
            return .event(event(code, end: true, duration: toneSamples), timestamp: start, marker: false)
        case .gap(let remaining):
            let left = remaining - samplesPerSlot
            phase = left > 0 ? .gap(remaining: left) : .idle
            return .audio
        }
    }

    private func event(_ code: UInt8, end: Bool, duration: Int) -> TelephoneEvent {
        TelephoneEvent(event: code, isEnd: end, volume: Self.volume, duration: UInt16(clamping: duration))
    }
}
