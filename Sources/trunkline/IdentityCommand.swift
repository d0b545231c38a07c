import ArgumentParser
import Dispatch
import Foundation
import Identity
import Logging

/// `trunkline identity verify|sign`: STIR/SHAKEN by hand.
struct IdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identity",
        abstract: "Verify or sign STIR/SHAKEN Identity headers.",
        subcommands: [Verify.self, Sign.self]
    )

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify an Identity header value against From/To; exit 0 when valid, 1 otherwise."
        )

        @Option(name: .customLong("identity"), help: "An Identity header value (repeat for several headers).")
        var identity: [String] = []

        @Option(help: "Calling number or URI (From / P-Asserted-Identity).")
        var from: String

        @Option(help: "Called number or URI (To / Request-URI).")
        var to: String

        @Option(name: .customLong("ca"), help: "STI-CA trust anchor PEM file (repeatable).")
        var ca: [String] = []

        @Flag(help: "Allow x5u on loopback/private addresses (tests and labs only).")
        var allowPrivateX5u = false

        @Option(help: "Extra PEM root for the x5u HTTPS connection (not an STI-CA anchor).")
        var tlsCa: [String] = []

        @Option(help: "Oldest iat accepted, in seconds.")
        var maxAge: Int = 60

        @Option(help: "x5u fetch timeout, in milliseconds.")
        var timeoutMs: Int = 2000

        func validate() throws {
            guard !ca.isEmpty else { throw ValidationError("give at least one --ca trust anchor PEM file") }
        }

        func run() throws {
            var configuration = try IdentityConfiguration(trustAnchorPEMFiles: ca)
            configuration.maximumIATAge = TimeInterval(maxAge)
            configuration.fetch.allowPrivateTargets = allowPrivateX5u
            configuration.fetch.connectTimeout = .milliseconds(Int64(timeoutMs))
            configuration.fetch.readTimeout = .milliseconds(Int64(timeoutMs))
            configuration.fetch.totalTimeout = .milliseconds(Int64(2 * timeoutMs))
            configuration.fetch.additionalTLSRootsPEM = try tlsCa.map { try String(contentsOfFile: $0, encoding: .utf8) }
            let verifier = try IdentityVerifier(configuration: configuration, logger: Logger(label: "trunkline.identity"))
            let headers = identity
            let (from, to) = (self.from, self.to)
            let verdict = runBlocking {
                let verdict = await verifier.verify(identityHeaders: headers, caller: from, called: to, now: Date())
                await verifier.shutdown()
                return verdict
            }
            for (key, value) in verdict.parameters { print("\(key)=\(value)") }
            if verdict.status != .valid { throw ExitCode(1) }
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a signed SHAKEN Identity header value.")

        @Option(help: "P-256 private key PEM file.")
        var key: String

        @Option(help: "https URL of the signing certificate chain.")
        var x5u: String

        @Option(help: "Calling number.")
        var orig: String

        @Option(help: "Called number (repeatable).")
        var dest: [String]

        @Option(help: "Attestation: A, B or C.")
        var attest: String = "A"

        @Option(help: "origid (UUID); random when omitted.")
        var origid: String?

        func run() throws {
            guard let level = Attestation(rawValue: attest.uppercased()) else {
                throw ValidationError("--attest must be A, B or C")
            }
            let signer = try PASSporTSigner(keyPEMFile: key, x5u: x5u)
            print(try signer.sign(orig: orig, dest: dest, attest: level, origID: origid, iat: Date()).identityHeader)
        }
    }
}

/// Runs async work from a synchronous ArgumentParser command (the root command is not async).
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let box = BlockingResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = await body()
        done.signal()
    }
    done.wait()
    return box.value!
}

private final class BlockingResultBox<T>: @unchecked Sendable {
    var value: T?
}
