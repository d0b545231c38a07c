@testable import Gateway
import NIOCore
import Testing

@Suite("One digit stream from RFC 4733 and SIP INFO")
struct DigitMergerTests {
    /// Feeds presses (key, transport, ms after t0) to a fresh merger; returns which were accepted.
    func accepted(_ presses: [(Character, DigitMerger.Source, Int64)]) -> [Bool] {
        var merger = DigitMerger()
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        return presses.map { merger.accept($0.0, from: $0.1, at: t0 + .milliseconds($0.2)) }
    }

    @Test func theSamePressSentTwoWaysCountsOnce() {
        #expect(accepted([("5", .rfc4733, 0), ("5", .info, 120), ("6", .info, 2000), ("6", .rfc4733, 2050)])
                == [true, false, true, false])
    }

    @Test func repeatedPressesOnOneTransportAreAllKept() {
        #expect(accepted([("1", .rfc4733, 0), ("1", .rfc4733, 150), ("1", .info, 3000), ("1", .info, 3100)])
                == [true, true, true, true])
    }

    @Test func differentKeysOrLateCopiesAreNewPresses() {
        #expect(accepted([("1", .rfc4733, 0), ("2", .info, 50), ("2", .rfc4733, 700)]) == [true, true, true])
    }
}
