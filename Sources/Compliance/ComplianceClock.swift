import Foundation

/// Where compliance code gets the time, so tests run campaigns across days without waiting.
public protocol ComplianceClock: Sendable {
    var now: Date { get }
    func sleep(for duration: Duration) async throws
}

public struct SystemComplianceClock: ComplianceClock {
    public init() {}
    public var now: Date { Date() }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

extension ComplianceClock {
    var seconds: Int64 { Int64(now.timeIntervalSince1970.rounded(.down)) }
}
