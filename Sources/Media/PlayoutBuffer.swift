/// The audio waiting to be sent, with marks placed between samples: a ring buffer of 16-bit samples.
///
/// Preallocated (`initialCapacity`) so a call streaming in real time never allocates; it grows by doubling when an
/// agent runs more than that ahead of real time (or a long prompt is queued at once), up to `maxCapacity`, beyond
/// which the newest samples are dropped and counted. Positions are counted in samples since the start of the stream, so a mark is simply the position
/// of the last sample enqueued before it.
///
/// Pure value; the session owns it on its event loop.
struct PlayoutBuffer {
    /// 2 s at 8 kHz (32 KB; 10 s took 160 KB per call, which a thousand calls feel): growing is a rare
    /// allocation, for agents that send well ahead of real time and for prompts.
    static let defaultInitialCapacity = 16_000
    /// 5 min at 8 kHz (4.8 MB): an agent cannot make a call hold more than this.
    static let defaultMaxCapacity = 2_400_000

    struct Mark {
        var id: Int
        /// Fires once `readPosition` reaches this.
        var position: Int
        /// Order of enqueueing, so a mark added while marks are being fired waits for the next round.
        var serial: Int
    }

    private var storage: [Int16]
    private var head = 0
    private(set) var count = 0
    let maxCapacity: Int
    /// Samples ever accepted.
    private(set) var writePosition = 0
    /// Samples ever taken out (sent or cleared).
    private(set) var readPosition = 0
    private(set) var droppedSamples = 0
    /// The most samples ever queued at once: what the cap held the call to.
    private(set) var peakCount = 0

    private var marks: [Mark] = []
    private var marksHead = 0
    private var nextSerial = 0

    init(initialCapacity: Int = defaultInitialCapacity, maxCapacity: Int = defaultMaxCapacity) {
        precondition(initialCapacity > 0 && maxCapacity >= initialCapacity)
        storage = Array(repeating: 0, count: initialCapacity)
        self.maxCapacity = maxCapacity
        marks.reserveCapacity(16)
    }

    var capacity: Int { storage.count }

    /// Appends samples; beyond `maxCapacity` the excess is dropped and counted.
    /// - Returns: how many samples were accepted.
    @discardableResult
    mutating func append(_ samples: UnsafeBufferPointer<Int16>) -> Int {
        var n = samples.count
        if count + n > storage.count { grow(toHold: count + n) }
        if count + n > storage.count {
            droppedSamples += count + n - storage.count
            n = storage.count - count
        }
        guard n > 0 else { return 0 }
        let capacity = storage.count
        storage.withUnsafeMutableBufferPointer { ring in
            var tail = (head + count) % capacity
            var copied = 0
            while copied < n {
                let chunk = min(n - copied, capacity - tail)
                (ring.baseAddress! + tail).update(from: samples.baseAddress! + copied, count: chunk)
                copied += chunk
                tail = (tail + chunk) % capacity
            }
        }
        count += n
        writePosition += n
        peakCount = max(peakCount, count)
        return n
    }

    /// Moves up to `output.count` samples out, oldest first.
    /// - Returns: how many were written to `output`.
    mutating func read(into output: UnsafeMutableBufferPointer<Int16>) -> Int {
        let n = min(output.count, count)
        guard n > 0 else { return 0 }
        let capacity = storage.count
        storage.withUnsafeBufferPointer { ring in
            var copied = 0
            while copied < n {
                let chunk = min(n - copied, capacity - head)
                (output.baseAddress! + copied).update(from: ring.baseAddress! + head, count: chunk)
                copied += chunk
                head = (head + chunk) % capacity
            }
        }
        count -= n
        readPosition += n
        if count == 0 { head = 0 }
        return n
    }

    /// Drops every queued sample (they count as read, so every mark becomes due).
    mutating func clear() {
        readPosition += count
        count = 0
        head = 0
    }

    private mutating func grow(toHold needed: Int) {
        guard storage.count < maxCapacity else { return }
        var newCapacity = storage.count
        while newCapacity < needed && newCapacity < maxCapacity { newCapacity *= 2 }
        newCapacity = min(newCapacity, maxCapacity)
        var newStorage = [Int16](repeating: 0, count: newCapacity)
        let oldCount = count
        newStorage.withUnsafeMutableBufferPointer { out in
            _ = read(into: UnsafeMutableBufferPointer(rebasing: out[0..<oldCount]))
        }
        // `read` advanced the positions; a move is not a read.
        readPosition -= oldCount
        storage = newStorage
        head = 0
        count = oldCount
    }

    // MARK: - Marks

    /// Places a mark after everything appended so far.
    mutating func appendMark(_ id: Int) {
        if marksHead > 0 && marksHead == marks.count {
            marks.removeAll(keepingCapacity: true)
            marksHead = 0
        }
        marks.append(Mark(id: id, position: writePosition, serial: nextSerial))
        nextSerial += 1
    }

    var pendingMarkCount: Int { marks.count - marksHead }

    /// The serial the next mark will get: marks below it exist now.
    var markSerialLimit: Int { nextSerial }

    /// Removes and returns the oldest mark if all its audio has been read and it was enqueued before `limit`.
    mutating func popDueMark(serialLimit limit: Int) -> Int? {
        guard marksHead < marks.count else { return nil }
        let mark = marks[marksHead]
        guard mark.position <= readPosition, mark.serial < limit else { return nil }
        marksHead += 1
        return mark.id
    }
}
