import ArgumentParser
import Compliance
import Foundation
import Gateway

/// `--config` plus opening the compliance store it names, for the consent, dnc and campaign commands.
struct ComplianceOptions: ParsableArguments {
    @OptionGroup var options: ConfigOptions

    func settings() throws -> ComplianceSettings {
        guard let settings = try options.load().compliance else {
            throw StartupError(message: "\(options.config) has no compliance: section (store, ledger_key, ...)")
        }
        return settings
    }

    /// Opens the store (migrating it), runs `body`, closes it; errors come back as `Error: …` lines.
    func withStore<T: Sendable>(_ body: @escaping @Sendable (ComplianceStore, ComplianceSettings) async throws -> T) throws -> T {
        let settings = try settings()
        let ledger = try ledger(settings)
        let result: Result<T, any Error> = runBlocking {
            do {
                let store = try await ComplianceStore.open(settings.store, ledger: ledger)
                do {
                    let value = try await body(store, settings)
                    try await store.close()
                    return .success(value)
                } catch {
                    try? await store.close()
                    return .failure(error)
                }
            } catch {
                return .failure(error)
            }
        }
        do { return try result.get() } catch let error as ExitCode { throw error } catch {
            throw StartupError(message: "\(error)")
        }
    }
}

/// The ledger writer the settings describe (its signing key loaded).
private func ledger(_ settings: ComplianceSettings) throws -> Ledger {
    let key = try settings.ledgerKeyPath.map(LedgerSigningKey.load(path:))
    return Ledger(signingKey: key, checkpointInterval: settings.checkpointInterval)
}

/// Opens (and migrates) the store for the serve process, which keeps it open while it runs.
func openComplianceStore(_ settings: ComplianceSettings) throws -> ComplianceStore {
    let ledger = try ledger(settings)
    let result: Result<ComplianceStore, any Error> = runBlocking {
        do { return .success(try await ComplianceStore.open(settings.store, ledger: ledger)) } catch { return .failure(error) }
    }
    do { return try result.get() } catch {
        throw StartupError(message: "cannot open the compliance store \(settings.store): \(error)")
    }
}

/// Parses `YYYY-MM-DD` (UTC midnight) or a full ISO 8601 time into Unix seconds.
func parseDay(_ text: String, option: String) throws -> Int64 {
    let full = ISO8601DateFormatter()
    if let date = full.date(from: text) { return Int64(date.timeIntervalSince1970) }
    let day = ISO8601DateFormatter()
    day.formatOptions = [.withFullDate]
    guard let date = day.date(from: text) else { throw ValidationError("\(option): '\(text)' is not YYYY-MM-DD or an ISO 8601 time") }
    return Int64(date.timeIntervalSince1970)
}

func readFile(_ path: String) throws -> String {
    do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
        throw ValidationError("cannot read '\(path)': \(error.localizedDescription)")
    }
}

func printIssues(_ issues: [ImportIssue]) {
    for issue in issues { FileHandle.standardError.write(Data("\(issue)\n".utf8)) }
}
