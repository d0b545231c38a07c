import Compliance
import Foundation
@testable import Gateway
import Testing

/// The campaign call's duties step by step, without sockets: disclosure before the agent, the opt-out stored before
/// the call confirms it or ends.
@Suite struct CampaignCallMachineTests {
    typealias Machine = CampaignCallMachine

    @Test func theDisclosurePlaysBeforeTheAgentStarts() {
        var machine = Machine(optOutKey: "9", afterOptOut: .hangup)
        #expect(machine.answered() == [.playDisclosure])
        #expect(machine.answered() == [])
        #expect(machine.disclosurePlayed() == [.recordDisclosure, .startAgent])
        #expect(machine.disclosurePlayed() == [])
    }

    @Test func theOptOutKeyIsTakenAndStoredBeforeTheConfirmationAndTheHangUp() {
        var machine = Machine(optOutKey: "9", afterOptOut: .hangup)
        _ = machine.answered()
        _ = machine.disclosurePlayed()
        #expect(machine.key("5") == nil, "other keys go to the agent")
        #expect(machine.key("9") == [.revoke(.dtmfOptOut)])
        #expect(machine.key("9") == [], "a second press while storing changes nothing, and is not forwarded")
        #expect(machine.agentOptOut() == [])
        #expect(machine.revocationFinished(stored: true)
            == [.tellAgent(stored: true, source: .dtmfOptOut, callEnds: true), .playConfirmation(thenHangUp: true)])
        #expect(machine.revocationFinished(stored: true) == [])
    }

    @Test func anOptOutDuringTheDisclosureEndsTheCallWithoutTheAgent() {
        var machine = Machine(optOutKey: "#", afterOptOut: .hangup)
        _ = machine.answered()
        #expect(machine.key("#") == [.revoke(.dtmfOptOut)])
        #expect(machine.disclosurePlayed() == [.recordDisclosure], "the agent never starts")
        #expect(machine.revocationFinished(stored: true).last == .playConfirmation(thenHangUp: true))
    }

    @Test func continueKeepsTheAgentAfterTheConfirmation() {
        var machine = Machine(optOutKey: "9", afterOptOut: .continue)
        _ = machine.answered()
        #expect(machine.key("9") == [.revoke(.dtmfOptOut)])
        #expect(machine.disclosurePlayed() == [.recordDisclosure, .startAgent])
        #expect(machine.revocationFinished(stored: true)
            == [.tellAgent(stored: true, source: .dtmfOptOut, callEnds: false), .playConfirmation(thenHangUp: false)])
    }

    @Test func aRevocationThatCouldNotBeStoredIsNeverConfirmed() {
        var machine = Machine(optOutKey: "9", afterOptOut: .hangup)
        _ = machine.answered()
        _ = machine.disclosurePlayed()
        #expect(machine.agentOptOut() == [.revoke(.agentOptOut)])
        #expect(machine.revocationFinished(stored: false) == [.tellAgent(stored: false, source: .agentOptOut, callEnds: true), .hangUp])
    }
}

extension ConfigurationTests {
    @Test func disclosureDefaultsAndParses() throws {
        let defaults = try #require(try load("compliance: {}\n" + minimal).compliance).disclosure
        #expect(defaults == DisclosureSettings())
        #expect(defaults.prompt == "disclosure" && defaults.optOutKey == "9" && defaults.afterOptOut == .hangup)
        let settings = try #require(try load("""
            compliance:
              disclosure: { prompt: acme-intro, opt_out_key: "#", opt_out_prompt: acme-bye, after_opt_out: continue }

            """ + minimal).compliance).disclosure
        #expect(settings.prompt == "acme-intro" && settings.optOutKey == "#" && settings.optOutPrompt == "acme-bye")
        #expect(settings.afterOptOut == .continue)
    }

    @Test func badDisclosureValuesNameTheirLine() {
        expectError("compliance:\n  disclosure:\n    opt_out_key: '99'\n" + minimal, line: 3, containing: "one DTMF key")
        expectError("compliance:\n  disclosure:\n    after_opt_out: later\n" + minimal, line: 3, containing: "hangup or continue")
        expectError("compliance:\n  disclosure:\n    prompt: ../etc/x\n" + minimal, line: 3, containing: "prompts folder")
        expectError("compliance:\n  disclosure:\n    propmt: x\n" + minimal, line: 3, containing: "unknown key 'propmt'")
    }
}
