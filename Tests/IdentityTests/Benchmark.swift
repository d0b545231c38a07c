import Foundation
import Testing
@testable import Identity

/// Not a test: verifications per second with a cached certificate. Runs only with TRUNKLINE_BENCH=1
/// (see bench/identity/run.sh); build in release for meaningful numbers.
@Suite struct IdentityBenchmark {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TRUNKLINE_BENCH"] == "1"))
    func verificationsPerSecondWithCachedCertificate() async throws {
        let fixture = try Fixture()
        let header = try fixture.sign()
        #expect(await fixture.verify([header]).status == .valid)  // warm the cache
        let iterations = Int(ProcessInfo.processInfo.environment["TRUNKLINE_BENCH_ITERATIONS"] ?? "") ?? 20_000
        let clock = ContinuousClock()
        let start = clock.now
        var valid = 0
        for _ in 0..<iterations where await fixture.verify([header]).status == .valid {
            valid += 1
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("identity-bench: \(iterations) verifications in \(String(format: "%.3f", seconds)) s = \(Int(Double(iterations) / seconds)) verifications/s (1 core, cached certificate, fetches: \(fixture.fetcher.count))")
        #expect(valid == iterations)
        #expect(fixture.fetcher.count == 1)
    }
}
