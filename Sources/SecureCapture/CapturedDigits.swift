/// Digits captured in secure-capture mode (a card number, an expiry, a CVV): the one value that must never be
/// printed. Every textual form (`description`, `debugDescription`, `dump`, string interpolation) says only how
/// many digits there are, so an accidental `"\(digits)"` in a log or error message leaks nothing. The only way
/// to the keys themselves is `withUnsafeKeys`, used to build the payment sink's request body.
///
/// `erase()` zeroes the storage when this value is its only owner (best effort: a shared copy is copied, then
/// zeroed); digits handed to the sink are released, not zeroed, when the submission ends.
public struct CapturedDigits: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private var keys: [UInt8]

    public init() {
        keys = []
        keys.reserveCapacity(SecureCaptureOptions.maximumDigitsLimit)
    }

    /// For tests and the sink body: the keys as ASCII.
    init(ascii: [UInt8]) { keys = ascii }

    public var count: Int { keys.count }

    mutating func append(_ key: Character) {
        guard let ascii = key.asciiValue else { return }
        keys.append(ascii)
    }

    /// Lends the ASCII keys; the buffer must not escape.
    public func withUnsafeKeys<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try keys.withUnsafeBufferPointer(body)
    }

    /// The last four keys, for a route that may reveal them (PCI DSS 3.4.1 allows the last four of a PAN).
    var lastFour: String {
        String(decoding: keys.suffix(4), as: UTF8.self)
    }

    /// Overwrites and empties the storage.
    public mutating func erase() {
        keys.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        keys.removeAll(keepingCapacity: false)
    }

    public var description: String { "<\(keys.count) digits redacted>" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["count": keys.count]) }
}
