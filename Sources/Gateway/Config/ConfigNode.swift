import Yams

/// A configuration error that names the file, line and column, so a typo is found without guessing.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// A strict reader over a YAML node: every key must be known, every value of the expected kind.
/// Unknown keys are errors (a misspelt `alow:` must not silently open a trunk to the world).
struct ConfigNode {
    let node: Node
    let file: String
    let path: String

    static func load(yaml: String, file: String) throws -> ConfigNode {
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigError(file: file, line: 1, column: 1, message: "file is empty")
            }
            return ConfigNode(node: node, file: file, path: "")
        } catch let error as YamlError {
            throw ConfigError(file: file, line: Self.line(of: error), column: 1, message: "not valid YAML: \(error)")
        }
    }

    private static func line(of error: YamlError) -> Int {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
        default: 1
        }
    }

    func error(_ message: String) -> ConfigError {
        ConfigError(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1,
                    message: path.isEmpty ? message : "\(path): \(message)")
    }

    /// The mapping's entries, after checking that every key is one of `allowed`.
    func mapping(allowed: Set<String>) throws -> [String: ConfigNode] {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping") }
        var result: [String: ConfigNode] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else { throw error("keys must be strings") }
            let child = ConfigNode(node: value, file: file, path: path.isEmpty ? key : "\(path).\(key)")
            guard allowed.contains(key) else {
                let known = allowed.sorted().joined(separator: ", ")
                throw ConfigNode(node: keyNode, file: file, path: path).error("unknown key '\(key)' (expected one of: \(known))")
            }
            guard result[key] == nil else { throw child.error("duplicate key") }
            result[key] = child
        }
        return result
    }

    func sequence() throws -> [ConfigNode] {
        guard case .sequence(let sequence) = node else { throw error("expected a list") }
        return sequence.enumerated().map { ConfigNode(node: $1, file: file, path: "\(path)[\($0)]") }
    }

    func string() throws -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a string") }
        return scalar.string
    }

    func int(in range: ClosedRange<Int>) throws -> Int {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else { throw error("expected an integer") }
        guard range.contains(value) else { throw error("\(value) is outside \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    func bool() throws -> Bool {
        guard case .scalar(let scalar) = node, let value = Bool(scalar.string) else { throw error("expected true or false") }
        return value
    }

    func stringList() throws -> [String] {
        try sequence().map { try $0.string() }
    }
}

extension Optional where Wrapped == ConfigNode {
    /// A required key's node, or an error at the parent naming it.
    func required(_ key: String, in parent: ConfigNode) throws -> ConfigNode {
        guard let self else { throw parent.error("missing required key '\(key)'") }
        return self
    }
}
