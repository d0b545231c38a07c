import Crypto
import Foundation
import Identity
import SwiftASN1
import X509

/// A throw-away STI-CA built in code for each test run: root → intermediate → SHAKEN leaf, plus a separate TLS
/// CA and server certificate for 127.0.0.1. Private keys live only in memory and in the test's temporary folder.
public struct TestPKI {
    public struct Options {
        public var spc = "1234"
        public var tnAuthList = true
        public var policyOID = true
        public var leafNotBefore: TimeInterval = -86_400
        public var leafNotAfter: TimeInterval = 30 * 86_400

        public init() {}
    }

    public let rootKey = P256.Signing.PrivateKey()
    public let intermediateKey = P256.Signing.PrivateKey()
    public let leafKey = P256.Signing.PrivateKey()
    public let root: Certificate
    public let intermediate: Certificate
    public let leaf: Certificate

    public init(now: Date = Date(), options: Options = Options()) throws {
        let rootName = try DistinguishedName {
            CommonName("Trunkline Test STI-CA Root")
            OrganizationName("Trunkline Test")
        }
        let intermediateName = try DistinguishedName {
            CommonName("Trunkline Test STI-CA Intermediate")
            OrganizationName("Trunkline Test")
        }
        let leafName = try DistinguishedName {
            CommonName("SHAKEN \(options.spc)")
            OrganizationName("Trunkline Test SP")
        }
        root = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(rootKey.publicKey),
            notValidBefore: now.addingTimeInterval(-2 * 86_400),
            notValidAfter: now.addingTimeInterval(365 * 86_400),
            issuer: rootName,
            subject: rootName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(rootKey)
        )
        intermediate = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(intermediateKey.publicKey),
            notValidBefore: now.addingTimeInterval(-2 * 86_400),
            notValidAfter: now.addingTimeInterval(180 * 86_400),
            issuer: rootName,
            subject: intermediateName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(rootKey)
        )
        var leafExtensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
        }
        if options.tnAuthList {
            try leafExtensions.append(
                Certificate.Extension(
                    oid: TNAuthList.oid, critical: false, value: ArraySlice(try TNAuthList.encode(spc: options.spc))
                )
            )
        }
        if options.policyOID {
            // SEQUENCE { SEQUENCE { OID 2.16.840.1.114569.1.1.3 } }
            let policies: [UInt8] = [
                0x30, 0x0E, 0x30, 0x0C, 0x06, 0x0A, 0x60, 0x86, 0x48, 0x01, 0x86, 0xFF, 0x09, 0x01, 0x01, 0x03,
            ]
            try leafExtensions.append(Certificate.Extension(oid: [2, 5, 29, 32], critical: false, value: policies[...]))
        }
        leaf = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(leafKey.publicKey),
            notValidBefore: now.addingTimeInterval(options.leafNotBefore),
            notValidAfter: now.addingTimeInterval(options.leafNotAfter),
            issuer: intermediateName,
            subject: leafName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: leafExtensions,
            issuerPrivateKey: .init(intermediateKey)
        )
    }

    public var rootPEM: String { get throws { try root.serializeAsPEM().pemString } }
    public var leafPEM: String { get throws { try leaf.serializeAsPEM().pemString } }
    public var intermediatePEM: String { get throws { try intermediate.serializeAsPEM().pemString } }
    /// What x5u serves: leaf first, then the intermediate.
    public var chainPEM: String { get throws { try leafPEM + "\n" + intermediatePEM + "\n" } }
    public var chainDocument: FetchedDocument {
        get throws { FetchedDocument(body: Array(try chainPEM.utf8), contentType: "application/pem-certificate-chain") }
    }
}

/// A TLS CA and a server certificate for 127.0.0.1, for the loopback HTTPS x5u server.
public struct TestTLS {
    public let caKey = P256.Signing.PrivateKey()
    public let serverKey = P256.Signing.PrivateKey()
    public let ca: Certificate
    public let server: Certificate

    public init(now: Date = Date()) throws {
        let caName = try DistinguishedName { CommonName("Trunkline Test TLS CA") }
        let serverName = try DistinguishedName { CommonName("127.0.0.1") }
        ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-86_400), notValidAfter: now.addingTimeInterval(86_400),
            issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(caKey)
        )
        server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(serverKey.publicKey),
            notValidBefore: now.addingTimeInterval(-86_400), notValidAfter: now.addingTimeInterval(86_400),
            issuer: caName, subject: serverName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([
                    .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])), .dnsName("localhost"),
                ])
            },
            issuerPrivateKey: .init(caKey)
        )
    }

    public var caPEM: String { get throws { try ca.serializeAsPEM().pemString } }
    public var serverPEM: String { get throws { try server.serializeAsPEM().pemString } }
}

/// A temporary folder removed by `cleanup()`.
public struct TemporaryDirectory {
    public let path: String

    public init() throws {
        path = NSTemporaryDirectory() + "trunkline-identity-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    public func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}
