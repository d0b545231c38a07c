import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOSSL

/// What an x5u fetch returned: the body (PEM chain, leaf first) and the caching headers.
public struct FetchedDocument: Sendable, Equatable {
    public var body: [UInt8]
    public var cacheControl: String?
    public var contentType: String?

    public init(body: [UInt8], cacheControl: String? = nil, contentType: String? = nil) {
        self.body = body
        self.cacheControl = cacheControl
        self.contentType = contentType
    }
}

/// Fetches the document an already-validated x5u URL names. Failures are reasons (436), not throws.
///
/// ``HTTPCertificateFetcher`` is the real one; tests inject others to drive the verifier core.
public protocol CertificateFetching: Sendable {
    func fetch(_ url: X5UURL) async -> Result<FetchedDocument, IdentityReason>
}

/// Limits and guards for fetching x5u certificates.
public struct FetchConfiguration: Sendable {
    /// TCP + TLS connect timeout (Asterisk uses 2 s, secsipidx 3 s).
    public var connectTimeout: TimeAmount = .seconds(2)
    /// Longest wait for response bytes once connected.
    public var readTimeout: TimeAmount = .seconds(2)
    /// Cap on the whole request, connect included.
    public var totalTimeout: TimeAmount = .seconds(4)
    /// Largest body accepted; a SHAKEN chain is 2–4 KiB.
    public var maximumBodyBytes = 64 * 1024
    /// Allow loopback/private/link-local/unique-local targets (tests, lab networks). Off in production.
    public var allowPrivateTargets = false
    /// Host names (lower-case, as written in x5u) exempt from the private-target guard.
    public var allowedHosts: Set<String> = []
    /// Extra PEM roots trusted for the HTTPS connection itself (added to the system roots). Not STI-CA anchors.
    public var additionalTLSRootsPEM: [String] = []

    public init() {}
}

/// The real x5u fetcher: AsyncHTTPClient, https only, no redirects, timeouts, a size cap and an SSRF guard.
///
/// Thread-safe; call ``shutdown()`` once when done.
public final class HTTPCertificateFetcher: CertificateFetching {
    private let client: HTTPClient
    private let configuration: FetchConfiguration
    private let logger: Logger

    public init(configuration: FetchConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        var tls = TLSConfiguration.makeClientConfiguration()
        if !configuration.additionalTLSRootsPEM.isEmpty {
            var extra: [NIOSSLCertificate] = []
            for pem in configuration.additionalTLSRootsPEM {
                extra += try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
            }
            tls.additionalTrustRoots = [.certificates(extra)]
        }
        var http = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: .init(connect: configuration.connectTimeout, read: configuration.readTimeout),
            decompression: .disabled
        )
        http.httpVersion = .http1Only
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    public func fetch(_ url: X5UURL) async -> Result<FetchedDocument, IdentityReason> {
        if !configuration.allowPrivateTargets, !configuration.allowedHosts.contains(url.host.lowercased()) {
            switch await AddressGuard.resolve(host: url.host) {
            case .failure(let reason):
                return .failure(reason)
            case .success(let addresses):
                if addresses.contains(where: AddressGuard.isForbidden) {
                    return .failure(
                        .init(.x5uForbiddenTarget, "x5u host \(url.host) resolves to a private or loopback address")
                    )
                }
            }
        }

        var request = HTTPClientRequest(url: url.url)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/pem-certificate-chain, application/x-pem-file, */*")
        do {
            let response = try await client.execute(
                request,
                deadline: .now() + configuration.totalTimeout,
                logger: logger
            )
            guard response.status.code == 200 else {
                let detail: String
                if (300..<400).contains(Int(response.status.code)) {
                    detail = "x5u answered \(response.status.code) redirect; redirects are not followed"
                } else {
                    detail = "x5u answered HTTP \(response.status.code)"
                }
                return .failure(.init(.x5uBadResponse, detail))
            }
            if let length = response.headers.first(name: "Content-Length").flatMap(Int.init),
                length > configuration.maximumBodyBytes
            {
                return .failure(.init(.x5uTooLarge, "x5u body of \(length) bytes exceeds \(configuration.maximumBodyBytes)"))
            }
            let body = try await response.body.collect(upTo: configuration.maximumBodyBytes)
            return .success(
                FetchedDocument(
                    body: Array(buffer: body),
                    cacheControl: response.headers.first(name: "Cache-Control"),
                    contentType: response.headers.first(name: "Content-Type")
                )
            )
        } catch is NIOTooManyBytesError {
            return .failure(.init(.x5uTooLarge, "x5u body exceeds \(configuration.maximumBodyBytes) bytes"))
        } catch let error as HTTPClientError {
            switch error {
            case .connectTimeout, .readTimeout, .deadlineExceeded, .writeTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return .failure(.init(.x5uTimeout, "x5u fetch timed out (\(error))"))
            default:
                return .failure(.init(.x5uUnreachable, "x5u fetch failed: \(error)"))
            }
        } catch {
            return .failure(.init(.x5uUnreachable, "x5u fetch failed: \(error)"))
        }
    }
}
