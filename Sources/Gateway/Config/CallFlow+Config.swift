import Agent
import CallFlow
import Foundation
import Media
import NIOCore

/// Reads a call flow (`flow:` on a route) strictly, like the rest of the configuration: unknown keys, unknown
/// steps, jumps to unknown labels, variables never set and missing or bad WAV files are errors with a line number
/// when the gateway starts, never surprises mid-call.
///
/// ```yaml
/// max_steps: 1000            # optional: steps one call may run (a goto loop with no way out hangs up)
/// recordings: ../recordings  # folder for `record` (relative to this file); made if missing
/// steps:
///   - say: "Press 1 for sales."            # {name} reads a variable, {name:digits} key by key
///   - gather: { into: choice, max_digits: 1, timeout_ms: 5000, inter_digit_timeout_ms: 5000, finish_key: "#" }
///   - branch: { on: choice, cases: { "1": sales }, default: bye }
///   - label: sales
///     play: prompts/tone.wav
///   - record: { into: file, max_seconds: 60, finish_key: "#" }
///   - set: { greeting: "Hello {from}" }
///   - goto: bye
///   - label: bye
///     hangup: "caller done"
/// ```
extension CallFlow {
    static let actions = ["say", "play", "gather", "branch", "record", "transfer", "hangup", "goto", "set"]
    /// Keys a caller can press.
    static let keys = Set("0123456789*#ABCD")
    /// A gather keeps at most this many keys (the type-ahead's size).
    static let maxGatherDigits = FlowMachine.typeAheadLimit
    /// Recordings are kept in memory until written: ten minutes is 19 MB at 16 kHz.
    static let maxRecordSeconds = 600

    /// `flow:` on a route: a file (relative to `base`, the dialplan's folder) or the flow written inline.
    static func parse(_ node: ConfigNode, base: URL) throws -> CallFlow {
        guard case .scalar = node.node else { return try parseFlow(node, base: base) }
        let name = try node.string()
        let path = name.hasPrefix("/") ? name : base.appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: path) else { throw node.error("flow file '\(path)' not found") }
        let root = try ConfigNode.load(yaml: try GatewayConfiguration.read(path), file: path)
        return try parseFlow(root, base: URL(fileURLWithPath: path).deletingLastPathComponent())
    }

    private static func parseFlow(_ root: ConfigNode, base: URL) throws -> CallFlow {
        let keys = try root.mapping(allowed: ["steps", "max_steps", "recordings"])
        let stepsNode = try keys["steps"].required("steps", in: root)
        let stepNodes = try stepsNode.sequence()
        guard !stepNodes.isEmpty else { throw stepsNode.error("a flow needs at least one step") }

        // Labels first, so a jump may point forward.
        var fields: [[String: ConfigNode]] = []
        var labels: [String: Int] = [:]
        for (index, node) in stepNodes.enumerated() {
            let stepFields = try node.mapping(allowed: Set(actions + ["label"]))
            if let labelNode = stepFields["label"] {
                let label = try labelNode.string()
                guard labels.updateValue(index, forKey: label) == nil else { throw labelNode.error("duplicate label '\(label)'") }
            }
            fields.append(stepFields)
        }

        var reader = StepReader(labels: labels, base: base)
        var flow = CallFlow(steps: [])
        for (node, stepFields) in zip(stepNodes, fields) {
            let present = actions.filter { stepFields[$0] != nil }
            guard present.count == 1 else {
                throw node.error("a step needs exactly one of \(actions.joined(separator: ", ")) (has \(present.isEmpty ? "none" : present.joined(separator: ", ")))")
            }
            flow.steps.append(try reader.step(present[0], stepFields[present[0]]!))
        }
        flow.prompts = reader.prompts
        try reader.checkVariables()

        if let maxSteps = keys["max_steps"] { flow.maxSteps = try maxSteps.int(in: 1...1_000_000) }
        if let folderNode = keys["recordings"] {
            let folder = try folderNode.string()
            let path = folder.hasPrefix("/") ? folder : base.appendingPathComponent(folder).path
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw folderNode.error("cannot create recordings folder '\(path)': \(error.localizedDescription)")
            }
            flow.recordings = path
        }
        if let record = reader.firstRecord, flow.recordings == nil {
            throw record.error("record needs `recordings:` (the folder recordings are written to) in the flow")
        }
        return flow
    }

    /// Parses steps one by one, remembering what the flow-wide checks need.
    private struct StepReader {
        let labels: [String: Int]
        let base: URL
        var prompts: [Prompt] = []
        var assigned = CallFlow.builtInVariables
        /// Variables read, with where (checked once every step has been read: a variable may be set further down).
        var read: [(name: String, node: ConfigNode)] = []
        var firstRecord: ConfigNode?

        mutating func step(_ action: String, _ node: ConfigNode) throws -> Step {
            switch action {
            case "say":
                return .say(try text(node))
            case "play":
                return .play(prompt: try prompt(node))
            case "gather":
                let fields = try node.mapping(allowed: ["into", "max_digits", "timeout_ms", "inter_digit_timeout_ms", "finish_key"])
                let variable = try assign(try fields["into"].required("into", in: node))
                let timeout = try fields["timeout_ms"]?.int(in: 0...600_000) ?? 5000
                return .gather(Gather(
                    variable: variable, maxDigits: try fields["max_digits"]?.int(in: 1...maxGatherDigits) ?? maxGatherDigits,
                    timeout: .milliseconds(Int64(timeout)),
                    interDigitTimeout: .milliseconds(Int64(try fields["inter_digit_timeout_ms"]?.int(in: 0...600_000) ?? timeout)),
                    finishKey: try key(fields["finish_key"]) ?? "#"))
            case "branch":
                let fields = try node.mapping(allowed: ["on", "cases", "default"])
                let onNode = try fields["on"].required("on", in: node)
                let variable = try onNode.string()
                read.append((variable, onNode))
                var cases: [String: Int] = [:]
                let casesNode = try fields["cases"].required("cases", in: node)
                for (value, target) in try casesNode.entries() { cases[value] = try label(target) }
                return .branch(Branch(variable: variable, cases: cases, otherwise: try fields["default"].map(label)))
            case "record":
                firstRecord = firstRecord ?? node
                let fields = try node.mapping(allowed: ["into", "max_seconds", "finish_key"])
                let seconds = try fields["max_seconds"]?.int(in: 1...maxRecordSeconds) ?? 60
                return .record(Record(
                    variable: try fields["into"].map { try assign($0) }, maxDuration: .seconds(Int64(seconds)),
                    finishKey: try key(fields["finish_key"]) ?? "#"))
            case "transfer":
                return .transfer(try transfer(node))
            case "hangup":
                let reason = try node.string()
                return .hangUp(reason: reason.isEmpty ? "flow hung up" : reason)
            case "goto":
                return .goto(step: try label(node))
            default:  // set
                let entries = try node.entries()
                guard entries.count == 1, let (name, value) = entries.first else {
                    throw node.error("set takes one variable: { name: \"value\" }")
                }
                return .set(variable: try assign(name, at: value), value: try text(value))
            }
        }

        /// `transfer: "sip:desk@pbx"` or `transfer: { to, mode: blind|bridge, headers: {…}, on_failure: label }`.
        private mutating func transfer(_ node: ConfigNode) throws -> Transfer {
            guard (try? node.string()) == nil else {
                return Transfer(target: try transferTarget(node), mode: .blind, headers: [], onFailure: nil)
            }
            let fields = try node.mapping(allowed: ["to", "mode", "headers", "on_failure"])
            let target = try transferTarget(try fields["to"].required("to", in: node))
            var mode = TransferMode.blind
            if let modeNode = fields["mode"] {
                let name = try modeNode.string()
                guard let parsed = TransferMode(rawValue: name), parsed != .attended else {
                    throw modeNode.error("transfer mode '\(name)' is not one of: blind, bridge (a flow cannot brief a human)")
                }
                mode = parsed
            }
            var headers: [TransferHeader] = []
            if let headersNode = fields["headers"] {
                for (name, value) in try headersNode.entries() { headers.append(TransferHeader(name: name, value: try value.string())) }
                do { try TransferHeaders.validate(headers) } catch { throw headersNode.error("\(error)") }
            }
            return Transfer(target: target, mode: mode, headers: headers, onFailure: try fields["on_failure"].map(label))
        }

        /// A target without variables is checked now; one with variables when the step runs.
        private mutating func transferTarget(_ node: ConfigNode) throws -> FlowText {
            let target = try text(node)
            if let literal = target.fixed {
                do { _ = try TransferTarget.parse(literal) } catch { throw node.error("\(error)") }
            }
            return target
        }

        private func label(_ node: ConfigNode) throws -> Int {
            let name = try node.string()
            guard let index = labels[name] else {
                throw node.error("unknown label '\(name)' (known: \(labels.keys.sorted().joined(separator: ", ")))")
            }
            return index
        }

        private mutating func text(_ node: ConfigNode) throws -> FlowText {
            do {
                let text = try FlowText(parsing: try node.string())
                read += text.variables.map { ($0, node) }
                return text
            } catch let error as FlowText.Invalid {
                throw node.error("\(error)")
            }
        }

        private mutating func prompt(_ node: ConfigNode) throws -> Int {
            let name = try node.string()
            let path = name.hasPrefix("/") ? name : base.appendingPathComponent(name).path
            if let index = prompts.firstIndex(where: { $0.path == path }) { return index }
            do {
                prompts.append(Prompt(path: path, samples: try WAVFile.load(path: path).samples))
            } catch {
                throw node.error("\(error)")
            }
            return prompts.count - 1
        }

        private mutating func assign(_ node: ConfigNode) throws -> String {
            try assign(try node.string(), at: node)
        }

        private mutating func assign(_ name: String, at node: ConfigNode) throws -> String {
            guard let first = name.first, first.isLetter || first == "_",
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw node.error("'\(name)' is not a variable name (letters, digits, _)")
            }
            assigned.insert(name)
            return name
        }

        private func key(_ node: ConfigNode?) throws -> Character?? {
            guard let node else { return nil }
            let text = try node.string()
            if text.isEmpty { return .some(nil) }
            guard text.count == 1, let key = text.first, CallFlow.keys.contains(key) else {
                throw node.error("'\(text)' is not a key (0-9, *, #, A-D; \"\" for none)")
            }
            return key
        }

        func checkVariables() throws {
            for (name, node) in read where !assigned.contains(name) {
                throw node.error("variable '\(name)' is never set (set it with gather, record or set; built in: \(CallFlow.builtInVariables.sorted().joined(separator: ", ")))")
            }
        }
    }
}

extension ConfigNode {
    /// A mapping whose keys are data (branch values, variable names), not settings: any key, in file order.
    fileprivate func entries() throws -> [(key: String, value: ConfigNode)] {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping") }
        var seen = Set<String>()
        return try mapping.map { keyNode, value in
            guard let key = keyNode.string else { throw error("keys must be strings") }
            let child = ConfigNode(node: value, file: file, path: path.isEmpty ? key : "\(path).\(key)")
            guard seen.insert(key).inserted else { throw child.error("duplicate key") }
            return (key, child)
        }
    }
}
