import Agent
import CallFlow
import Foundation
@testable import Gateway
import Media
import Testing

/// Call flows are read as strictly as the rest of the configuration: every mistake is found at startup, with its
/// file and line.
@Suite("Call flow configuration")
struct FlowConfigurationTests {
    static let config = "trunks:\n  - name: local\n    allow: [127.0.0.0/8]\ndialplan: dialplan.yaml\n"

    /// Writes the config, a dialplan whose one route runs `flows/menu.yaml`, that flow and a prompt, then loads.
    func load(flow: String, route: String = "    flow: flows/menu.yaml\n") throws -> (GatewayConfiguration, folder: URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-flow-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("flows"), withIntermediateDirectories: true)
        try Self.config.write(to: folder.appendingPathComponent("trunkline.yaml"), atomically: true, encoding: .utf8)
        try "routes:\n  - name: menu\n\(route)".write(to: folder.appendingPathComponent("dialplan.yaml"), atomically: true, encoding: .utf8)
        try flow.write(to: folder.appendingPathComponent("flows/menu.yaml"), atomically: true, encoding: .utf8)
        try Data(WAVFile.encode([1, 2, 3, 4])).write(to: folder.appendingPathComponent("flows/beep.wav"))
        return (try GatewayConfiguration.load(path: folder.appendingPathComponent("trunkline.yaml").path), folder)
    }

    func expectError(flow: String, route: String = "    flow: flows/menu.yaml\n", file: String = "menu.yaml", line: Int, containing text: String) {
        do {
            _ = try load(flow: flow, route: route)
            Issue.record("expected an error containing '\(text)'")
        } catch let error as ConfigError {
            #expect(error.file.hasSuffix(file), "\(error)")
            #expect(error.line == line, "\(error)")
            #expect(error.message.contains(text), "\(error)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func aFlowFileLoadsWithLabelsResolvedAndPromptsRead() throws {
        let (config, folder) = try load(flow: """
            recordings: ../recordings
            max_steps: 50
            steps:
              - label: menu
                say: "Press 1. You called {to}."
              - gather: { into: choice, max_digits: 1, timeout_ms: 3000 }
              - branch: { on: choice, cases: { "1": one, 2: menu }, default: bye }
              - label: one
                play: beep.wav
              - record: { into: file, max_seconds: 5, finish_key: "" }
              - set: { said: "{choice:digits}" }
              - goto: bye
              - label: bye
                hangup: "done"
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        guard case .flow(let flow) = config.dialplan.routes[0].action else {
            Issue.record("not a flow route")
            return
        }
        #expect(flow.maxSteps == 50)
        #expect(flow.recordings == folder.appendingPathComponent("flows/../recordings").path)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("recordings").path))
        #expect(flow.prompts.map(\.samples) == [[1, 2, 3, 4]])
        #expect(flow.steps[1] == .gather(.init(variable: "choice", maxDigits: 1, timeout: .milliseconds(3000), interDigitTimeout: .milliseconds(3000), finishKey: "#")))
        #expect(flow.steps[2] == .branch(.init(variable: "choice", cases: ["1": 3, "2": 0], otherwise: 7)))
        #expect(flow.steps[3] == .play(prompt: 0))
        #expect(flow.steps[4] == .record(.init(variable: "file", maxDuration: .seconds(5), finishKey: nil)))
        #expect(flow.steps[6] == .goto(step: 7))
        #expect(flow.steps[7] == .hangUp(reason: "done"))
        #expect(flow.fixedTexts.isEmpty)  // the one say reads {to}
    }

    @Test func anInlineFlowLoads() throws {
        let (config, folder) = try load(flow: "", route: "    flow:\n      steps:\n        - say: \"Hello\"\n        - hangup: bye\n")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(config.dialplan.routes[0].action == .flow(CallFlow(steps: [.say(try FlowText(parsing: "Hello")), .hangUp(reason: "bye")])))
    }

    @Test func mistakesNameTheirFileAndLine() {
        let head = "steps:\n  - say: hi\n"
        expectError(flow: head + "  - shout: hi\n", line: 3, containing: "unknown key 'shout'")
        expectError(flow: head + "  - goto: nowhere\n", line: 3, containing: "unknown label 'nowhere'")
        expectError(flow: head + "  - label: x\n", line: 3, containing: "needs exactly one of")
        expectError(flow: head + "  - say: a\n    hangup: b\n", line: 3, containing: "(has say, hangup)")
        expectError(flow: "steps:\n  - label: a\n    say: x\n  - label: a\n    say: y\n", line: 4, containing: "duplicate label 'a'")
        expectError(flow: head + "  - branch: { on: choice, cases: { \"1\": x } }\n", line: 3, containing: "unknown label 'x'")
        expectError(flow: head + "  - say: \"You said {nothing}\"\n", line: 3, containing: "variable 'nothing' is never set")
        expectError(flow: head + "  - say: \"{a\"\n", line: 3, containing: "'{' without '}'")
        expectError(flow: head + "  - gather: { into: d, max_digits: 99 }\n", line: 3, containing: "99 is outside 1...32")
        expectError(flow: head + "  - gather: { into: d, finish_key: \"x\" }\n", line: 3, containing: "'x' is not a key")
        expectError(flow: head + "  - gather: { max_digits: 3 }\n", line: 3, containing: "missing required key 'into'")
        expectError(flow: head + "  - gather: { into: 9d }\n", line: 3, containing: "not a variable name")
        expectError(flow: head + "  - play: missing.wav\n", line: 3, containing: "missing.wav: cannot read")
        expectError(flow: head + "  - record: { max_seconds: 5 }\n", line: 3, containing: "record needs `recordings:`")
        expectError(flow: head + "  - transfer: { to: \"desk pbx\" }\n", line: 3, containing: "must be a sip:/sips: URI")
        expectError(flow: head + "  - transfer: { to: \"sip:desk@pbx\", mode: attended }\n", line: 3, containing: "cannot brief")
        expectError(flow: head + "  - transfer: { to: \"sip:desk@pbx\", headers: { Via: x } }\n", line: 3, containing: "transfer header 'Via' is not allowed")
        expectError(flow: head + "  - set: { a: x, b: y }\n", line: 3, containing: "set takes one variable")
        expectError(flow: "steps: []\n", line: 1, containing: "at least one step")
        expectError(flow: "stepz: []\n", line: 1, containing: "unknown key 'stepz'")
        expectError(flow: "steps:\n  - say: [oops\n", line: 3, containing: "not valid YAML")
    }

    @Test func aTransferStepLoadsInBothForms() throws {
        let (config, folder) = try load(flow: "", route: """
                flow:
                  steps:
                    - transfer: "sip:desk@pbx.example"
                    - transfer: { to: "+15552340000", mode: bridge, headers: { X-Case: "7" }, on_failure: sorry }
                    - label: sorry
                      hangup: busy

            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(config.dialplan.routes[0].action == .flow(CallFlow(steps: [
            .transfer(.init(target: try FlowText(parsing: "sip:desk@pbx.example"), mode: .blind, headers: [], onFailure: nil)),
            .transfer(.init(
                target: try FlowText(parsing: "+15552340000"), mode: .bridge, headers: [TransferHeader(name: "X-Case", value: "7")],
                onFailure: 2)),
            .hangUp(reason: "busy"),
        ])))
    }

    @Test func aMissingFlowFileOrABadRouteIsAnErrorInTheDialplan() {
        expectError(flow: "", route: "    flow: flows/absent.yaml\n", file: "dialplan.yaml", line: 3, containing: "flow file")
        expectError(flow: "steps:\n  - hangup: x\n", route: "    flow: flows/menu.yaml\n    agent_audio: l16/24000\n", file: "dialplan.yaml", line: 4, containing: "l16/16000")
    }
}
