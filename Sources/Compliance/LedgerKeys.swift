import Crypto
import Foundation

/// The Ed25519 key that signs ledger checkpoints. Read from a file holding either a PKCS#8 PEM
/// (`openssl genpkey -algorithm ed25519`) or the base64 of the 32-byte seed. The key never leaves this type:
/// descriptions show only its id.
public struct LedgerSigningKey: Sendable, CustomStringConvertible {
    let key: Curve25519.Signing.PrivateKey

    public init(_ key: Curve25519.Signing.PrivateKey) { self.key = key }

    /// A fresh random key (`trunkline consent keygen`, tests).
    public static func generate() -> LedgerSigningKey { LedgerSigningKey(Curve25519.Signing.PrivateKey()) }

    public static func load(path: String) throws -> LedgerSigningKey {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw StoreError.invalid("cannot read ledger signing key '\(path)': \(error.localizedDescription)")
        }
        guard let seed = KeyFile.decode(text, pemLabel: "PRIVATE KEY", derPrefix: KeyFile.pkcs8Prefix),
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
            throw StoreError.invalid("ledger signing key '\(path)' is not an Ed25519 PKCS#8 PEM or a base64 32-byte seed")
        }
        return LedgerSigningKey(key)
    }

    public var verifyingKey: LedgerVerifyingKey { LedgerVerifyingKey(key.publicKey) }
    public var description: String { "LedgerSigningKey(\(verifyingKey.id))" }

    /// PKCS#8 PEM of this key, for `trunkline consent keygen` and tests.
    public var pemRepresentation: String {
        KeyFile.pem(label: "PRIVATE KEY", der: KeyFile.pkcs8Prefix + Array(key.rawRepresentation))
    }
}

/// The public half: verifies checkpoints. Loadable on its own (SPKI PEM or base64 of 32 bytes) so an auditor can
/// verify without the private key.
public struct LedgerVerifyingKey: Sendable, Equatable {
    let key: Curve25519.Signing.PublicKey

    public init(_ key: Curve25519.Signing.PublicKey) { self.key = key }

    public static func load(path: String) throws -> LedgerVerifyingKey {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw StoreError.invalid("cannot read ledger verifying key '\(path)': \(error.localizedDescription)")
        }
        if let raw = KeyFile.decode(text, pemLabel: "PUBLIC KEY", derPrefix: KeyFile.spkiPrefix),
           let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) {
            return LedgerVerifyingKey(key)
        }
        // A private key file also yields its public key.
        return try LedgerSigningKey.load(path: path).verifyingKey
    }

    /// First 8 bytes of SHA-256 of the raw public key, in hex: names the key in checkpoints and reports.
    public var id: String { SHA256.hash(data: key.rawRepresentation).prefix(8).map { String(format: "%02x", $0) }.joined() }

    public var pemRepresentation: String { KeyFile.pem(label: "PUBLIC KEY", der: KeyFile.spkiPrefix + Array(key.rawRepresentation)) }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.key.rawRepresentation == rhs.key.rawRepresentation }
}

/// The two fixed DER wrappers around an Ed25519 key (RFC 8410): no ASN.1 parser needed for 32 bytes.
private enum KeyFile {
    static let pkcs8Prefix: [UInt8] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
    static let spkiPrefix: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]

    static func decode(_ text: String, pemLabel: String, derPrefix: [UInt8]) -> [UInt8]? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("-----BEGIN \(pemLabel)-----") {
            let body = trimmed.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
            guard let der = Data(base64Encoded: body).map(Array.init), der.count == derPrefix.count + 32,
                  Array(der.prefix(derPrefix.count)) == derPrefix else { return nil }
            return Array(der.suffix(32))
        }
        guard let raw = Data(base64Encoded: trimmed), raw.count == 32 else { return nil }
        return Array(raw)
    }

    static func pem(label: String, der: [UInt8]) -> String {
        "-----BEGIN \(label)-----\n\(Data(der).base64EncodedString())\n-----END \(label)-----\n"
    }
}
