import Foundation
import SwiftASN1
import X509

/// Everything the verifier needs; defaults follow ATIS-1000074 and the reference notes.
public struct IdentityConfiguration: Sendable {
    /// STI-CA trust anchors (STI-PA approved list), never the system roots.
    public var trustAnchors: [Certificate]
    /// Oldest `iat` accepted, in seconds (RFC 8224 §6.2.2 suggests 60).
    public var maximumIATAge: TimeInterval = 60
    /// How far in the future `iat` may be (clock skew), in seconds.
    public var maximumFutureSkew: TimeInterval = 5
    /// x5u fetch limits and SSRF guard.
    public var fetch = FetchConfiguration()
    /// Cache lifetime when the x5u response has no `max-age` (ATIS-1000074 suggests 24 h).
    public var defaultCacheTTL: TimeInterval = 86_400
    /// Upper bound on any cache lifetime; entries never outlive the chain's earliest notAfter either.
    public var maximumCacheTTL: TimeInterval = 86_400
    /// Most cached credentials kept.
    public var maximumCacheEntries = 1_000
    /// x5u ports that raise no warning.
    public var standardX5UPorts: Set<Int> = [443, 8443]
    /// Most Identity headers examined in one request; the rest are ignored with a warning.
    public var maximumIdentityHeaders = 8

    public init(trustAnchors: [Certificate]) {
        self.trustAnchors = trustAnchors
    }

    /// Reads every CERTIFICATE block of each PEM file as a trust anchor.
    public init(trustAnchorPEMFiles: [String]) throws {
        self.init(trustAnchors: try Self.loadTrustAnchors(pemFiles: trustAnchorPEMFiles))
    }

    public static func loadTrustAnchors(pemFiles: [String]) throws -> [Certificate] {
        var anchors: [Certificate] = []
        for path in pemFiles {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw IdentityConfigurationError.unreadable(path)
            }
            do {
                let documents = try PEMDocument.parseMultiple(pemString: String(decoding: data, as: UTF8.self))
                let certificates = try documents.filter { $0.discriminator == "CERTIFICATE" }
                    .map { try Certificate(pemDocument: $0) }
                guard !certificates.isEmpty else { throw IdentityConfigurationError.noCertificates(path) }
                anchors += certificates
            } catch let error as IdentityConfigurationError {
                throw error
            } catch {
                throw IdentityConfigurationError.invalidPEM(path)
            }
        }
        return anchors
    }
}

/// A configuration file problem (a real fault, so thrown). Equality compares the code only.
public struct IdentityConfigurationError: Error, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable { case unreadable, invalidPEM, noCertificates, invalidKey }
    public let code: Code
    public let path: String

    static func unreadable(_ path: String) -> Self { .init(code: .unreadable, path: path) }
    static func invalidPEM(_ path: String) -> Self { .init(code: .invalidPEM, path: path) }
    static func noCertificates(_ path: String) -> Self { .init(code: .noCertificates, path: path) }
    static func invalidKey(_ path: String) -> Self { .init(code: .invalidKey, path: path) }

    public var description: String {
        switch code {
        case .unreadable: return "cannot read \(path)"
        case .invalidPEM: return "\(path) is not valid PEM"
        case .noCertificates: return "\(path) holds no CERTIFICATE"
        case .invalidKey: return "\(path) holds no P-256 private key"
        }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
