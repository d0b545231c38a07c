import Agent
import NIOCore

/// A call flow: the embedded agent's program, loaded from YAML (Gateway's `CallFlow+Config`), run by `FlowMachine`.
///
/// Steps run in order from the first; `goto` and `branch` jump. Labels are resolved to step indexes when the flow
/// loads, WAV prompts are read then too, so a flow that loaded has no dangling jump and no missing file.
public struct CallFlow: Sendable, Equatable {
    public enum Step: Sendable, Equatable {
        /// Speak the text (espeak-ng), then go on once it has played.
        case say(FlowText)
        /// Play `prompts[index]`, then go on once it has played.
        case play(prompt: Int)
        /// Collect keys into a variable.
        case gather(Gather)
        /// Jump on a variable's value.
        case branch(Branch)
        /// Write the caller's audio to a WAV file.
        case record(Record)
        /// Hand the call to a human; on failure go on at `onFailure` (or the next step).
        case transfer(Transfer)
        case hangUp(reason: String)
        case goto(step: Int)
        case set(variable: String, value: FlowText)
    }

    public struct Gather: Sendable, Equatable {
        public var variable: String
        public var maxDigits: Int
        /// How long to wait for the first key.
        public var timeout: TimeAmount
        /// How long to wait for each further key.
        public var interDigitTimeout: TimeAmount
        /// Ends the gather; not part of the value.
        public var finishKey: Character?

        public init(variable: String, maxDigits: Int, timeout: TimeAmount, interDigitTimeout: TimeAmount, finishKey: Character?) {
            self.variable = variable
            self.maxDigits = maxDigits
            self.timeout = timeout
            self.interDigitTimeout = interDigitTimeout
            self.finishKey = finishKey
        }
    }

    public struct Branch: Sendable, Equatable {
        public var variable: String
        /// Value → step index.
        public var cases: [String: Int]
        /// Where to go when no case matches; nil: the next step.
        public var otherwise: Int?

        public init(variable: String, cases: [String: Int], otherwise: Int?) {
            self.variable = variable
            self.cases = cases
            self.otherwise = otherwise
        }
    }

    public struct Transfer: Sendable, Equatable {
        /// A SIP URI or a number; may use variables (e.g. a gathered extension).
        public var target: FlowText
        /// `blind` or `bridge`: a flow cannot brief the human, so never `attended`.
        public var mode: TransferMode
        public var headers: [TransferHeader]
        /// Step to go on at when the transfer fails (busy, no answer, refused); nil: the next step.
        public var onFailure: Int?

        public init(target: FlowText, mode: TransferMode, headers: [TransferHeader], onFailure: Int?) {
            self.target = target
            self.mode = mode
            self.headers = headers
            self.onFailure = onFailure
        }
    }

    public struct Record: Sendable, Equatable {
        /// Gets the recording's file name (in the flow's recordings folder).
        public var variable: String?
        public var maxDuration: TimeAmount
        /// Ends the recording; the key itself is not heard in it beyond the tone's start.
        public var finishKey: Character?

        public init(variable: String?, maxDuration: TimeAmount, finishKey: Character?) {
            self.variable = variable
            self.maxDuration = maxDuration
            self.finishKey = finishKey
        }
    }

    /// A WAV prompt: 8 kHz mono 16-bit samples, and the file they came from (for logs).
    public struct Prompt: Sendable, Equatable {
        public var path: String
        public var samples: [Int16]

        public init(path: String, samples: [Int16]) {
            self.path = path
            self.samples = samples
        }
    }

    public var steps: [Step]
    public var prompts: [Prompt]
    /// Steps one call may run; past it the call hangs up (a `goto` loop with no way out).
    public var maxSteps: Int
    /// Folder recordings are written to; set when the flow has a `record` step.
    public var recordings: String?

    /// Ample for a menu a caller walks round many times; small enough that a loop ends within a millisecond.
    public static let defaultMaxSteps = 1000
    /// Variables every call starts with, from its context.
    public static let builtInVariables: Set<String> = ["from", "to", "trunk", "route", "call_sid"]

    public init(steps: [Step], prompts: [Prompt] = [], maxSteps: Int = Self.defaultMaxSteps, recordings: String? = nil) {
        self.steps = steps
        self.prompts = prompts
        self.maxSteps = maxSteps
        self.recordings = recordings
    }

    /// True when the flow speaks (and so needs espeak-ng).
    public var says: Bool {
        steps.contains { if case .say = $0 { true } else { false } }
    }

    /// The texts of `say` steps that have no variable: rendered once when the gateway starts.
    public var fixedTexts: [String] {
        steps.compactMap { step in
            guard case .say(let text) = step else { return nil }
            return text.fixed
        }
    }
}

/// Text with `{variable}` slots; `{variable:digits}` reads a value key by key ("1 2 3", not "one hundred…").
public struct FlowText: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case literal(String)
        case variable(String)
        case spelled(String)
    }

    public enum Invalid: Error, Equatable, CustomStringConvertible {
        case unclosedBrace
        case badSlot(String)

        public var description: String {
            switch self {
            case .unclosedBrace: "'{' without '}'"
            case .badSlot(let slot): "'{\(slot)}' is not a variable (letters, digits, _; optionally ':digits')"
            }
        }
    }

    public var parts: [Part]

    public init(parts: [Part]) {
        self.parts = parts
    }

    public init(parsing template: String) throws(Invalid) {
        var parts: [Part] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            if open > rest.startIndex { parts.append(.literal(String(rest[..<open]))) }
            guard let close = rest[open...].firstIndex(of: "}") else { throw .unclosedBrace }
            let slot = rest[rest.index(after: open)..<close]
            let pieces = slot.split(separator: ":", omittingEmptySubsequences: false)
            let name = String(pieces[0])
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }),
                  pieces.count == 1 || (pieces.count == 2 && pieces[1] == "digits") else {
                throw .badSlot(String(slot))
            }
            parts.append(pieces.count == 2 ? .spelled(name) : .variable(name))
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = parts
    }

    /// Names of the variables the text reads.
    public var variables: [String] {
        parts.compactMap {
            switch $0 {
            case .literal: nil
            case .variable(let name), .spelled(let name): name
            }
        }
    }

    /// The text when it has no slot.
    public var fixed: String? {
        variables.isEmpty ? parts.map { if case .literal(let text) = $0 { text } else { "" } }.joined() : nil
    }

    /// The text with each slot filled in (an unset variable reads as nothing).
    public func render(_ values: [String: String]) -> String {
        parts.map {
            switch $0 {
            case .literal(let text): text
            case .variable(let name): values[name] ?? ""
            case .spelled(let name): (values[name] ?? "").map { Self.spoken($0) }.joined(separator: " ")
            }
        }.joined()
    }

    /// How a key is read out: the speech engine would say "#" as "number sign".
    static func spoken(_ key: Character) -> String {
        switch key {
        case "#": "pound"
        case "*": "star"
        default: String(key)
        }
    }
}
