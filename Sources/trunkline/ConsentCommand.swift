import ArgumentParser
import Compliance
import Foundation

/// `trunkline consent import|verify|export|revoke|keygen`: the consent records and their ledger.
struct ConsentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent",
        abstract: "Import, revoke, verify and export TCPA consent records and the ledger.",
        subcommands: [Import.self, Revoke.self, Verify.self, Export.self, Keygen.self]
    )

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import consents from CSV (\(ConsentImport.columns.joined(separator: ","))); bad rows are listed, good rows stored. Exit 1 if any row was bad.")

        @OptionGroup var compliance: ComplianceOptions
        @Argument(help: "The CSV file.") var file: String

        func run() throws {
            let text = try readFile(file)
            let report = try compliance.withStore { store, _ in
                let report = try await store.importConsents(csv: text)
                try await store.checkpointLedger()
                return report
            }
            print("imported \(report.imported), already present \(report.duplicates), rejected rows \(Set(report.issues.map(\.row)).count)")
            printIssues(report.issues)
            if !report.issues.isEmpty { throw ExitCode(1) }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke every consent of a number and add it to the internal DNC list, at once.")

        @OptionGroup var compliance: ComplianceOptions
        @Argument(help: "E.164 number.") var number: String
        @Option(help: "How the revocation arrived: \(RevocationSource.allCases.map(\.rawValue).joined(separator: ", ")).")
        var source = "api"
        @Option(help: "Free text kept in the ledger (e.g. the words used).") var detail: String?

        func run() throws {
            let phone: PhoneNumber
            do { phone = try PhoneNumber(number) } catch { throw ValidationError("'\(number)': \(error.reason)") }
            guard let source = RevocationSource(rawValue: source) else { throw ValidationError("--source: unknown '\(self.source)'") }
            let detail = self.detail
            let revoked = try compliance.withStore { store, _ in try await store.revokeConsent(number: phone, source: source, detail: detail) }
            print("revoked \(revoked.count) consent(s) of \(phone); on the internal DNC list")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Prove the ledger's hash chain and signed checkpoints intact; exit 1 naming the first bad entry.")

        @OptionGroup var compliance: ComplianceOptions
        @Option(help: "Ed25519 public (or private) key file to check checkpoint signatures; default: the configured ledger_key.")
        var publicKey: String?

        func run() throws {
            let keyPath = try publicKey ?? compliance.settings().ledgerKeyPath
            let key = try keyPath.map(LedgerVerifyingKey.load(path:))
            let result = try compliance.withStore { store, _ in try await store.verifyLedger(key: key) }
            print(result)
            if !result.isIntact { throw ExitCode(1) }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write ledger entries as JSON lines for an audit: one number and/or a date range.")

        @OptionGroup var compliance: ComplianceOptions
        @Option(help: "Only this E.164 number.") var number: String?
        @Option(help: "From this day (YYYY-MM-DD, UTC) or time (ISO 8601).") var from: String?
        @Option(help: "Until this day (inclusive) or time.") var until: String?
        @Option(name: .shortAndLong, help: "Output file (default: standard output).") var output: String?

        func run() throws {
            var filter = LedgerExportFilter()
            if let number {
                do { filter.number = try PhoneNumber(number) } catch { throw ValidationError("--number '\(number)': \(error.reason)") }
            }
            filter.from = try from.map { try parseDay($0, option: "--from") }
            // A bare day means the whole day.
            filter.until = try until.map { try parseDay($0, option: "--until") + ($0.count == 10 ? 86_399 : 0) }
            let handle: FileHandle
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: nil) else { throw ValidationError("cannot create '\(output)'") }
                handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            } else {
                handle = FileHandle.standardOutput
            }
            let filterValue = filter
            let count = try compliance.withStore { store, _ in
                try await store.exportLedger(filterValue) { handle.write(Data(($0 + "\n").utf8)) }
            }
            try handle.synchronize()
            if output != nil { print("exported \(count) entries") }
        }
    }

    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a new Ed25519 ledger signing key (PKCS#8 PEM, mode 0600) and print its public key.")

        @Argument(help: "Where to write the private key.") var output: String

        func run() throws {
            guard !FileManager.default.fileExists(atPath: output) else { throw ValidationError("'\(output)' exists; not overwriting a key") }
            let key = LedgerSigningKey.generate()
            guard FileManager.default.createFile(atPath: output, contents: Data(key.pemRepresentation.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ValidationError("cannot write '\(output)'")
            }
            print(key.verifyingKey.pemRepresentation, terminator: "")
        }
    }
}

/// `trunkline dnc import`: the national registry snapshot, or numbers for the internal list.
struct DNCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dnc", abstract: "Do-not-call lists.", subcommands: [Import.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a DNC file (one number per line, E.164 or 10-digit US). National: replaces the snapshot; dials are refused once it is older than the configured maximum age.")

        @OptionGroup var compliance: ComplianceOptions
        @Argument(help: "The file.") var file: String
        @Option(help: "When the registry data was downloaded (YYYY-MM-DD); required for the national list.") var listDate: String?
        @Flag(help: "Add the numbers to the internal (company) DNC list instead.") var `internal` = false

        func validate() throws {
            if !`internal`, listDate == nil { throw ValidationError("--list-date is required for the national list") }
        }

        func run() throws {
            let parsed = ComplianceStore.readNationalDNCFile(try readFile(file))
            let listDate = try self.listDate.map { try parseDay($0, option: "--list-date") }
            let toInternal = `internal`
            let summary = try compliance.withStore { store, _ in
                if toInternal {
                    for number in parsed.numbers { try await store.addInternalDNC(number, source: "import") }
                    return "added \(parsed.numbers.count) number(s) to the internal DNC list"
                }
                let snapshot = try await store.importNationalDNC(parsed.numbers, listDate: listDate!, fileSHA256: parsed.sha256)
                return "national DNC snapshot: \(snapshot.entries) numbers, list date \(Date(timeIntervalSince1970: TimeInterval(snapshot.listDate)))"
            }
            print(summary)
            printIssues(parsed.issues)
            if !parsed.issues.isEmpty { throw ExitCode(1) }
        }
    }
}
