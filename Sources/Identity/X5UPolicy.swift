import Foundation

/// The ATIS-1000074 rules for an `x5u` URL, checked before anything is fetched: `https` only, no userinfo,
/// query or fragment. A port other than 443/8443 is a profile deviation reported as a warning.
public struct X5UURL: Sendable, Hashable, CustomStringConvertible {
    public let url: String
    public let host: String
    public let port: Int

    public var description: String { url }

    /// Checks `text` against the URL rules; `warnings` receives profile deviations that do not fail.
    public static func validate(
        _ text: String,
        standardPorts: Set<Int>,
        warnings: inout [String]
    ) -> Result<X5UURL, IdentityReason> {
        guard text.utf8.count <= 2048, let components = URLComponents(string: text) else {
            return .failure(.init(.infoMalformed, "x5u is not a URL"))
        }
        guard components.scheme?.lowercased() == "https" else {
            return .failure(.init(.x5uNotHTTPS, "x5u scheme \(components.scheme ?? "none") is not https"))
        }
        if components.user != nil || components.password != nil {
            return .failure(.init(.x5uForbiddenComponent, "x5u must not carry credentials"))
        }
        if components.query != nil {
            return .failure(.init(.x5uForbiddenComponent, "x5u must not carry a query"))
        }
        if components.fragment != nil {
            return .failure(.init(.x5uForbiddenComponent, "x5u must not carry a fragment"))
        }
        var host = components.host ?? ""
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return .failure(.init(.infoMalformed, "x5u has no host")) }
        let port = components.port ?? 443
        if !standardPorts.isEmpty, !standardPorts.contains(port) {
            warnings.append("x5u port \(port) is not one of \(standardPorts.sorted()) (ATIS-1000074)")
        }
        return .success(X5UURL(url: text, host: host, port: port))
    }
}
