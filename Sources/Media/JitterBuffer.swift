/// The receive side's reorder and de-jitter stage: a pure value with fixed capacity that allocates nothing after
/// `init`. The session puts packets in as they arrive and takes one out per 20 ms tick, so what reaches the
/// agent has an even cadence whatever the network did.
///
/// - Reorders by RTP sequence number within `capacity` packets; drops duplicates and packets whose turn has
///   passed ("late"), counting both.
/// - Starts playing once `targetDepth` packets are buffered (or the first has waited that many ticks). The target follows the RFC 3550 interarrival jitter
///   (§6.4.1, A.8): `minDepth` plus two jitters' worth of packets, within `minDepth...maxDepth`. While more than
///   the target plus a margin is buffered (the jitter fell, or a burst came), a packet is dropped every
///   `ticksBetweenDiscards` ticks to cut the delay.
/// - Sequence numbers the stream spends on other payloads (RFC 4733 events, comfort noise) are marked with
///   `skip`, so their turn passes silently instead of counting as a loss.
/// - A gap at the head while later packets wait is a loss: `pop` says `.lost` (the caller conceals it, and can
///   use the next packet's FEC); an empty buffer is an underrun: `pop` says `.empty` and the buffer refills to its
///   target before playing again.
struct JitterBuffer {
    /// Largest payload kept (an Ethernet MTU less the RTP header); bigger ones are dropped as malformed.
    static let maxPayload = 1500 - RTPHeader.fixedSize
    /// Slot size to begin with: 40 ms of G.711 or a speech Opus packet, so a call's buffer takes 20 KB instead of
    /// the 95 KB that MTU-sized slots take (it matters at a thousand calls).
    static let initialSlotBytes = 320
    /// Packets buffered beyond the target before one is dropped to shrink the delay.
    static let shrinkMargin = 2
    /// Ticks between two such drops, so shrinking a long queue is gradual rather than a burst of gaps.
    static let ticksBetweenDiscards = 5

    /// What became of an arriving packet.
    enum Insertion: Equatable {
        case stored
        case duplicate
        /// Its turn had already passed (played or concealed).
        case late
        /// Malformed for the buffer (empty or too big).
        case rejected
    }

    /// What the tick gets.
    enum Output: Equatable {
        /// Not playing yet (filling to the target depth) or nothing ever arrived.
        case buffering
        /// The next packet's payload is in `slot` (read it with `withPayload` before the next insert).
        case packet(slot: Int, length: Int)
        /// The next packet is missing and later ones are here: conceal it.
        case lost
        /// Underrun: nothing buffered; the buffer refills before playing again.
        case empty
    }

    struct Counters: Equatable {
        var late = 0
        var duplicates = 0
        /// Packets never received by their turn (concealed).
        var lost = 0
        /// Packets dropped to shrink the delay after the jitter fell.
        var discarded = 0
        var underruns = 0
    }

    let capacity: Int
    let minDepth: Int
    let maxDepth: Int
    private(set) var targetDepth: Int
    private(set) var counters = Counters()
    /// RFC 3550 interarrival jitter, in RTP timestamp units.
    private(set) var jitter: Double = 0

    private let clockRate: Int
    private var storage: [UInt8]
    /// Bytes per slot in `storage`: `initialSlotBytes`, or `maxPayload` after the first larger payload.
    private(set) var slotBytes = JitterBuffer.initialSlotBytes
    /// Payload length per slot; -1: empty.
    private var lengths: [Int]
    private var sequences: [UInt16]
    private var started = false
    private var playing = false
    /// The sequence number whose turn is next.
    private var next: UInt16 = 0
    private(set) var count = 0
    private var lastTransit: Int64?
    private var ticksSinceDiscard = 0
    /// Ticks the buffer has held packets without playing.
    private var waitedTicks = 0
    /// The depth underruns have shown to be needed.
    private var underrunFloor = 0
    /// Slots whose skipped number was the peer announcing silence (an RFC 3389 comfort-noise packet).
    private var pauseMarks: [Bool]
    /// The peer's announced silence has begun (its CN packet's turn came, or its last audio was an Opus DTX frame)
    /// and no audio has played since: running dry now is its pause, not an underrun.
    private(set) var peerSilent = false

    /// - Parameters:
    ///   - minDepth, maxDepth: bounds of the playout delay, in 20 ms packets.
    ///   - clockRate: the RTP clock, to compare timestamps with arrival times.
    init(minDepth: Int, maxDepth: Int, clockRate: Int, capacity: Int = 64) {
        precondition(1 <= minDepth && minDepth <= maxDepth && maxDepth < capacity)
        self.capacity = capacity
        self.minDepth = minDepth
        self.maxDepth = maxDepth
        self.clockRate = clockRate
        targetDepth = minDepth
        storage = Array(repeating: 0, count: capacity * Self.initialSlotBytes)
        lengths = Array(repeating: -1, count: capacity)
        sequences = Array(repeating: 0, count: capacity)
        pauseMarks = Array(repeating: false, count: capacity)
    }

    /// The jitter in milliseconds.
    var jitterMilliseconds: Double { jitter * 1000 / Double(clockRate) }

    /// Takes an arriving packet.
    /// - Parameter arrivalNanoseconds: when it arrived, on any monotonic clock (only differences are used).
    mutating func insert(
        sequence: UInt16, timestamp: UInt32, arrivalNanoseconds: Int64, payload: UnsafeRawBufferPointer
    ) -> Insertion {
        guard !payload.isEmpty, payload.count <= Self.maxPayload else { return .rejected }
        if payload.count > slotBytes { growSlots() }
        updateJitter(timestamp: timestamp, arrivalNanoseconds: arrivalNanoseconds)
        if !started {
            started = true
            next = sequence
        }
        var ahead = Int(Int16(bitPattern: sequence &- next))
        if ahead < 0 {
            // Before playing, an earlier packet simply moves the start back (if it still fits).
            guard !playing, count + (-ahead) < capacity, highestAhead - ahead < capacity else {
                counters.late += 1
                return .late
            }
            next = sequence
            ahead = 0
        }
        if ahead >= capacity {
            // A jump beyond the window (the peer restarted its sequence): start over from here.
            reset(at: sequence)
            ahead = 0
        }
        let slot = Int(sequence) % capacity
        if lengths[slot] >= 0 {
            guard sequences[slot] != sequence else {
                counters.duplicates += 1
                return .duplicate
            }
            // A stale packet from a lap ago: its turn has passed.
            lengths[slot] = -1
            count -= 1
        }
        storage.withUnsafeMutableBytes { bytes in
            UnsafeMutableRawBufferPointer(rebasing: bytes[(slot * slotBytes)...]).copyMemory(from: payload)
        }
        lengths[slot] = payload.count
        sequences[slot] = sequence
        count += 1
        return .stored
    }

    /// The tick's packet, a loss to conceal, or nothing.
    mutating func pop() -> Output {
        guard started else { return .buffering }
        if !playing {
            guard count > 0 else { return .buffering }
            // Play once the target depth is covered, or once the first packet has waited that long (a peer
            // that sent only a little must still be heard).
            waitedTicks += 1
            guard highestAhead + 1 >= targetDepth || waitedTicks >= targetDepth else { return .buffering }
            playing = true
            waitedTicks = 0
        }
        if count == 0 {
            playing = false
            guard !peerSilent else { return .empty }
            counters.underruns += 1
            // Underruns mean the delay was too short for this network.
            underrunFloor = min(maxDepth, max(underrunFloor, targetDepth) + 1)
            adapt()
            return .empty
        }
        ticksSinceDiscard += 1
        if count > targetDepth + Self.shrinkMargin, ticksSinceDiscard >= Self.ticksBetweenDiscards,
           let (_, length) = take(next) {
            if length > 0 { counters.discarded += 1 }
            next &+= 1
            ticksSinceDiscard = 0
        }
        adapt()
        while true {
            let sequence = next
            next &+= 1
            guard let (slot, length) = take(sequence) else {
                counters.lost += 1
                return .lost
            }
            if length > 0 {
                peerSilent = false
                return .packet(slot: slot, length: length)
            }
            if pauseMarks[slot] { peerSilent = true }
            // A skipped number: on to the next; an empty buffer waits for more.
            if count == 0 { return .buffering }
        }
    }

    /// The audio just played announced silence (an Opus DTX frame): the buffer running dry before the next audio
    /// is neither an underrun nor a reason to deepen the delay.
    mutating func peerPaused() {
        peerSilent = true
    }

    /// Marks `sequence` as used by a non-audio packet of the same stream: its turn passes without output.
    /// - Parameter announcesSilence: a comfort-noise packet: from its turn on, the peer is silent (`peerSilent`).
    mutating func skip(sequence: UInt16, announcesSilence: Bool = false) {
        guard started, case let ahead = Int(Int16(bitPattern: sequence &- next)), ahead >= 0, ahead < capacity else { return }
        let slot = Int(sequence) % capacity
        guard lengths[slot] < 0 else { return }
        lengths[slot] = 0
        sequences[slot] = sequence
        pauseMarks[slot] = announcesSilence
        count += 1
    }

    /// The payload `pop` returned, valid until the next `insert`.
    func withPayload<R>(slot: Int, length: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        storage.withUnsafeBytes { bytes in
            body(UnsafeRawBufferPointer(rebasing: bytes[(slot * slotBytes)..<(slot * slotBytes + length)]))
        }
    }

    /// The payload of the packet after the one just taken, if buffered (for Opus FEC).
    func withNextPayload<R>(_ body: (UnsafeRawBufferPointer?) -> R) -> R {
        let slot = Int(next) % capacity
        guard lengths[slot] >= 0, sequences[slot] == next else { return body(nil) }
        return storage.withUnsafeBytes { bytes in
            body(UnsafeRawBufferPointer(rebasing: bytes[(slot * slotBytes)..<(slot * slotBytes + lengths[slot])]))
        }
    }

    /// Re-lays the slots out at `maxPayload` bytes each, keeping what they hold: once per call at most, when the
    /// peer first sends a payload bigger than `initialSlotBytes`.
    private mutating func growSlots() {
        var grown = [UInt8](repeating: 0, count: capacity * Self.maxPayload)
        for slot in 0..<capacity where lengths[slot] > 0 {
            grown[(slot * Self.maxPayload)..<(slot * Self.maxPayload + lengths[slot])] =
                storage[(slot * slotBytes)..<(slot * slotBytes + lengths[slot])]
        }
        storage = grown
        slotBytes = Self.maxPayload
    }

    /// Removes `sequence` if buffered. - Returns: its slot and length.
    private mutating func take(_ sequence: UInt16) -> (Int, Int)? {
        let slot = Int(sequence) % capacity
        guard lengths[slot] >= 0, sequences[slot] == sequence else { return nil }
        let length = lengths[slot]
        lengths[slot] = -1
        count -= 1
        return (slot, length)
    }

    /// How far ahead of `next` the newest buffered packet is (-1 when empty).
    private var highestAhead: Int {
        var highest = -1
        for slot in 0..<capacity where lengths[slot] >= 0 {
            highest = max(highest, Int(Int16(bitPattern: sequences[slot] &- next)))
        }
        return highest
    }

    private mutating func reset(at sequence: UInt16) {
        for slot in 0..<capacity { lengths[slot] = -1 }
        count = 0
        next = sequence
        playing = false
    }

    /// RFC 3550 A.8: J += (|D| − J) / 16, with transit times in timestamp units.
    private mutating func updateJitter(timestamp: UInt32, arrivalNanoseconds: Int64) {
        let arrival = arrivalNanoseconds / 1000 * Int64(clockRate) / 1_000_000
        let transit = arrival &- Int64(timestamp)
        if let lastTransit {
            let d = abs(Double(transit &- lastTransit))
            // A timestamp jump (new talk spurt after a restart) is not jitter.
            if d < Double(clockRate) { jitter += (d - jitter) / 16 }
        }
        lastTransit = transit
    }

    private mutating func adapt() {
        let packetUnits = Double(clockRate) / 50
        let wanted = max(minDepth + Int((2 * jitter / packetUnits).rounded(.up)), underrunFloor)
        // The buffer itself shrinks by the discard in `pop`, one packet at a time.
        targetDepth = min(maxDepth, wanted)
    }
}
