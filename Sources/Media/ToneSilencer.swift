import CSpanDSP

/// Replaces the caller's audio with silence wherever a DTMF tone sounds, for secure capture: the agent (and any
/// recorder) must not hear key tones, since they can be decoded back into a card number.
///
/// Tones are found by spandsp's DTMF detector, whose "maybe a tone" status rises within about one 102-sample
/// block, before a key is confirmed. Because even that comes after the tone began, audio passes through a delay
/// line of `lookBackFrames` 20 ms frames: when a tone is seen, the frames still in the line are silenced too
/// (the guard before), and `guardFrames` more after the tone ends (the guard after). An RFC 4733 press reported
/// by the caller's RTP (`eventSeen`) silences the same way for `eventHoldFrames`, which covers the in-band tone a
/// phone leaks before it switches to telephone-events.
///
/// The cost is `lookBackFrames` × 20 ms of extra delay toward the agent while it runs. No allocation after init;
/// confined to the owning call's event loop; owns its spandsp state (freed in `deinit`).
public final class ToneSilencer {
    public static let frameSamples = 160
    /// 60 ms: spandsp flags a tone after one to two 12.75 ms blocks, well inside this.
    public static let lookBackFrames = 3
    /// 60 ms after the last frame with a tone.
    public static let guardFrames = 3
    /// 200 ms after an RFC 4733 press began: longer than a phone's in-band leak before its events start.
    public static let eventHoldFrames = 10

    private let detector: OpaquePointer
    /// `lookBackFrames` frames, oldest at `head`.
    private let line: UnsafeMutableBufferPointer<Int16>
    private let output: UnsafeMutableBufferPointer<Int16>
    private var silenced: (Bool, Bool, Bool) = (false, false, false)
    private var head = 0
    private var filled = 0
    private var hold = 0
    /// Frames with a tone or in its guard, since the start (for the record and tests).
    public private(set) var framesSilenced = 0

    public init?() {
        guard let detector = dtmf_rx_init(nil, nil, nil) else { return nil }
        self.detector = detector
        line = .allocate(capacity: Self.lookBackFrames * Self.frameSamples)
        line.initialize(repeating: 0)
        output = .allocate(capacity: Self.frameSamples)
        output.initialize(repeating: 0)
    }

    deinit {
        dtmf_rx_free(detector)
        line.deallocate()
        output.deallocate()
    }

    /// Whether the silencer holds no tone and no guard: what it still owes can be flushed and it can be removed.
    public var isQuiet: Bool {
        hold == 0 && !silenced.0 && !silenced.1 && !silenced.2
    }

    /// Takes one 20 ms frame of caller audio and gives back, through `emit`, the frame from `lookBackFrames` ago
    /// (silence if a tone was near it). Nothing is emitted while the line is still filling.
    public func process(_ frame: UnsafeBufferPointer<Int16>, emit: (UnsafeBufferPointer<Int16>) -> Void) {
        precondition(frame.count == Self.frameSamples, "ToneSilencer takes 20 ms frames")
        dtmf_rx(detector, frame.baseAddress!, Int32(frame.count))
        var silenceThis = false
        if dtmf_rx_status(detector) != 0 {
            silenceAll()
            hold = Self.guardFrames
            silenceThis = true
        } else if hold > 0 {
            hold -= 1
            silenceThis = true
        }
        if filled == Self.lookBackFrames {
            emitOldest(emit)
        }
        let slot = (head + filled) % Self.lookBackFrames
        _ = UnsafeMutableBufferPointer(rebasing: line[(slot * Self.frameSamples)..<((slot + 1) * Self.frameSamples)])
            .update(fromContentsOf: frame)
        setSilenced(slot, silenceThis)
        filled += 1
    }

    /// An RFC 4733 press began: silence the frames in the line and the next `eventHoldFrames`.
    public func eventSeen() {
        silenceAll()
        hold = max(hold, Self.eventHoldFrames)
    }

    /// Emits what is still in the line (silenced as decided), oldest first, and starts over empty.
    public func flush(emit: (UnsafeBufferPointer<Int16>) -> Void) {
        while filled > 0 { emitOldest(emit) }
        head = 0
        hold = 0
    }

    private func emitOldest(_ emit: (UnsafeBufferPointer<Int16>) -> Void) {
        if isSilenced(head) {
            output.update(repeating: 0)
            framesSilenced += 1
        } else {
            _ = output.update(fromContentsOf: UnsafeBufferPointer(
                rebasing: line[(head * Self.frameSamples)..<((head + 1) * Self.frameSamples)]))
        }
        setSilenced(head, false)
        head = (head + 1) % Self.lookBackFrames
        filled -= 1
        emit(UnsafeBufferPointer(output))
    }

    private func silenceAll() {
        silenced = (true, true, true)
    }

    private func isSilenced(_ slot: Int) -> Bool {
        switch slot {
        case 0: silenced.0
        case 1: silenced.1
        default: silenced.2
        }
    }

    private func setSilenced(_ slot: Int, _ value: Bool) {
        switch slot {
        case 0: silenced.0 = value
        case 1: silenced.1 = value
        default: silenced.2 = value
        }
    }
}
