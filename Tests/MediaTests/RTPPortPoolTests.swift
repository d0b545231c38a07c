import Testing
@testable import Media

@Suite struct RTPPortPoolTests {
    @Test func handsOutEvenPortsRoundRobin() {
        let pool = RTPPortPool(range: 41001...41008)
        #expect(pool.capacity == 4)
        #expect(pool.allocate() == 41002)
        #expect(pool.allocate() == 41004)
        #expect(pool.inUseCount == 2)
        #expect(pool.release(41002))
        // Round robin: the released port is not handed out again until the others have been.
        #expect(pool.allocate() == 41006)
        #expect(pool.allocate() == 41008)
        // Wrap around to the free one.
        #expect(pool.allocate() == 41002)
        #expect(pool.inUseCount == 4)
    }

    @Test func exhaustionAndReuse() {
        let pool = RTPPortPool(range: 41100...41103)
        let a = pool.allocate(), b = pool.allocate()
        #expect(a == 41100 && b == 41102)
        #expect(pool.allocate() == nil)
        #expect(pool.release(41102))
        #expect(!pool.release(41102))  // twice: no effect
        #expect(!pool.release(41101))  // odd: not ours
        #expect(!pool.release(50000))
        #expect(pool.inUseCount == 1)
        #expect(pool.allocate() == 41102)
        #expect(pool.allocate() == nil)
    }

    @Test func emptyRange() {
        let pool = RTPPortPool(range: 41201...41201)
        #expect(pool.capacity == 0)
        #expect(pool.allocate() == nil)
    }
}
