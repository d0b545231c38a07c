import Foundation

/// Hands out even UDP ports for RTP (the odd port above each is left for RTCP), round-robin over a range.
///
/// Thread-safe: every member takes an internal lock. Allocation happens once per call, never per packet.
/// A port handed out may still be taken by another program; `RTPSession.open` then releases it and asks again.
public final class RTPPortPool: @unchecked Sendable {
    /// The even ports of the configured range, in order.
    public let ports: [Int]
    // protected by `lock`
    private var inUse: [Bool]
    // protected by `lock`
    private var cursor = 0
    // protected by `lock`
    private var used = 0
    private let lock = NSLock()

    /// - Parameter range: the ports to use; only the even ones are handed out.
    public init(range: ClosedRange<Int>) {
        let first = range.lowerBound % 2 == 0 ? range.lowerBound : range.lowerBound + 1
        self.ports = first <= range.upperBound ? Array(stride(from: first, through: range.upperBound, by: 2)) : []
        self.inUse = Array(repeating: false, count: ports.count)
    }

    /// How many ports the pool can hand out at once.
    public var capacity: Int { ports.count }

    /// How many ports are handed out now.
    public var inUseCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return used
    }

    /// The next free even port after the last one handed out (wrapping around), or `nil` if all are in use.
    public func allocate() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        for step in 0..<ports.count {
            let index = (cursor + step) % ports.count
            if !inUse[index] {
                inUse[index] = true
                used += 1
                cursor = (index + 1) % ports.count
                return ports[index]
            }
        }
        return nil
    }

    /// Gives a port back. Releasing a port that is not handed out (or not in the pool) does nothing.
    ///
    /// - Returns: whether the port was in use.
    @discardableResult
    public func release(_ port: Int) -> Bool {
        guard let first = ports.first, port >= first, (port - first) % 2 == 0 else { return false }
        let index = (port - first) / 2
        guard index < ports.count else { return false }
        lock.lock()
        defer { lock.unlock() }
        guard inUse[index] else { return false }
        inUse[index] = false
        used -= 1
        return true
    }
}
