import Foundation

/// x5u URL → validated signing credential. Lifetime = Cache-Control `s-maxage`/`max-age` (or the configured
/// default), capped by the configured maximum and by the chain's earliest notAfter. Concurrent misses for one URL
/// share one fetch. Failures are not cached.
actor CredentialCache {
    private struct Entry {
        var credential: SigningCredential
        var expires: Date
    }

    private var entries: [String: Entry] = [:]
    private var inflight: [String: Task<Result<SigningCredential, IdentityReason>, Never>] = [:]
    private let maximumEntries: Int

    init(maximumEntries: Int) {
        self.maximumEntries = max(1, maximumEntries)
    }

    var count: Int { entries.count }

    /// Returns a cached credential still fresh at `now`, or runs `load` (once per URL at a time) and caches a success.
    func credential(
        for url: String,
        now: Date,
        load: @escaping @Sendable () async -> (Result<SigningCredential, IdentityReason>, expires: Date)
    ) async -> Result<SigningCredential, IdentityReason> {
        if let entry = entries[url] {
            if entry.expires > now { return .success(entry.credential) }
            entries[url] = nil
        }
        if let task = inflight[url] { return await task.value }
        let task = Task<(Result<SigningCredential, IdentityReason>, expires: Date), Never> { await load() }
        let shared = Task<Result<SigningCredential, IdentityReason>, Never> { await task.value.0 }
        inflight[url] = shared
        let (result, expires) = await task.value
        inflight[url] = nil
        if case .success(let credential) = result, expires > now {
            store(url, Entry(credential: credential, expires: expires), now: now)
        }
        return result
    }

    private func store(_ url: String, _ entry: Entry, now: Date) {
        if entries.count >= maximumEntries {
            entries = entries.filter { $0.value.expires > now }
        }
        if entries.count >= maximumEntries, let soonest = entries.min(by: { $0.value.expires < $1.value.expires }) {
            entries[soonest.key] = nil
        }
        entries[url] = entry
    }

    /// Lifetime a response asks for: nil means "use the default"; 0 means "do not cache".
    static func requestedLifetime(cacheControl: String?) -> TimeInterval? {
        guard let cacheControl else { return nil }
        var maxAge: TimeInterval?
        var sharedMaxAge: TimeInterval?
        for directive in cacheControl.split(separator: ",") {
            let parts = directive.split(separator: "=", maxSplits: 1)
            let name = parts[0].trimmingSpaces().lowercased()
            let value = parts.count > 1 ? parts[1].trimmingSpaces().trimmingCharacters(in: ["\""]) : ""
            switch name {
            case "no-store", "no-cache": return 0
            case "max-age": maxAge = TimeInterval(value).map { max(0, $0) }
            case "s-maxage": sharedMaxAge = TimeInterval(value).map { max(0, $0) }
            default: break
            }
        }
        return sharedMaxAge ?? maxAge
    }
}
