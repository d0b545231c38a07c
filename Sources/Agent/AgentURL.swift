/// Where a remote agent listens: a parsed `ws://host[:port][/path][?query]` URL.
///
/// A plain value, `Sendable`; parse it once (from config) and hand it to every call's agent.
/// Only `ws` is supported today: `wss` (TLS) needs NIOSSL, which the `Agent` target does not link yet,
/// so it is rejected with ``AgentURLError/Code/unsupportedScheme`` rather than silently downgraded.
public struct AgentURL: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP literal, without brackets for IPv6.
    public var host: String
    /// TCP port (80 when the URL has none).
    public var port: Int
    /// Request target sent in the upgrade request: path plus `?query`, always starting with `/`.
    public var path: String

    /// Parses `ws://host[:port][/path][?query]`.
    ///
    /// - Parameter string: the URL as written in config.
    /// - Throws: ``AgentURLError`` naming what is wrong (scheme, host, port, user info, fragment).
    public init(parsing string: String) throws(AgentURLError) {
        let trimmed = string.trimmingWhitespace()
        guard let colon = trimmed.firstIndex(of: ":"), trimmed[colon...].hasPrefix("://") else {
            throw AgentURLError(.missingScheme, url: string)
        }
        let scheme = trimmed[..<colon].lowercased()
        switch scheme {
        case "ws": break
        case "wss": throw AgentURLError(.unsupportedScheme, url: string, detail: "wss (TLS) is not supported yet; use ws://")
        default: throw AgentURLError(.unsupportedScheme, url: string, detail: "scheme \(scheme) is not ws")
        }
        var rest = trimmed[trimmed.index(colon, offsetBy: 3)...]
        if rest.contains("#") {
            throw AgentURLError(.invalid, url: string, detail: "fragments are not allowed")
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        rest = rest[authorityEnd...]
        if authority.contains("@") {
            throw AgentURLError(.invalid, url: string, detail: "user info is not supported")
        }

        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw AgentURLError(.invalidHost, url: string, detail: "unterminated IPv6 literal")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw AgentURLError(.invalidHost, url: string) }
                portText = after.dropFirst()
            }
        } else if let colon = authority.firstIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "[" || $0 == "]" }) else {
            throw AgentURLError(.invalidHost, url: string)
        }
        var port = 80
        if let portText {
            guard let parsed = Int(portText), (1...65535).contains(parsed) else {
                throw AgentURLError(.invalidPort, url: string)
            }
            port = parsed
        }
        if rest.contains(where: { $0.isWhitespace }) {
            throw AgentURLError(.invalid, url: string, detail: "whitespace in path")
        }
        self.host = String(host)
        self.port = port
        self.path = rest.isEmpty ? "/" : (rest.hasPrefix("/") ? String(rest) : "/" + rest)
    }

    /// The value of the `Host` header for the upgrade request.
    public var hostHeader: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return port == 80 ? bracketed : "\(bracketed):\(port)"
    }

    public var description: String { "ws://\(hostHeader)\(path)" }
}

/// Why a string is not a usable ``AgentURL``. Compare errors by ``code``.
public struct AgentURLError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case missingScheme
        /// `wss` (not yet supported) or anything that is not `ws`.
        case unsupportedScheme
        case invalidHost
        case invalidPort
        case invalid
    }

    public let code: Code
    /// The offending URL as given.
    public let url: String
    public let detail: String?

    init(_ code: Code, url: String, detail: String? = nil) {
        self.code = code
        self.url = url
        self.detail = detail
    }

    public static func == (lhs: AgentURLError, rhs: AgentURLError) -> Bool { lhs.code == rhs.code }

    public var description: String {
        let what: String
        switch code {
        case .missingScheme: what = "missing ws:// scheme"
        case .unsupportedScheme: what = "unsupported scheme"
        case .invalidHost: what = "invalid host"
        case .invalidPort: what = "invalid port (1-65535)"
        case .invalid: what = "invalid URL"
        }
        return "agent URL \(url): \(what)" + (detail.map { ": \($0)" } ?? "")
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> Substring {
        guard let first = self.firstIndex(where: { !$0.isWhitespace }),
            let last = self.lastIndex(where: { !$0.isWhitespace })
        else { return self[self.endIndex...] }
        return self[first...last]
    }
}
