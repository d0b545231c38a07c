/// `compliance.disclosure`: what a campaign call's callee hears before the agent, and the opt-out key that works
/// for the whole call (47 CFR 64.1200(b): the seller's identity, a callback number, and for telemarketing an
/// automated key-press opt-out offered within 2 s of the identification).
public struct DisclosureSettings: Sendable, Equatable {
    /// What the callee does after opting out: hear the confirmation and be hung up on (the TSR's "immediately
    /// terminate"), or hear it and stay with the agent (informational calls that may go on).
    public enum AfterOptOut: String, Sendable, Equatable {
        case hangup
        case `continue`
    }

    /// `prompt:` WAV in the prompts folder (name without `.wav`): legal name, callback number, how to opt out.
    public var prompt = "disclosure"
    /// `opt_out_key:` the DTMF key that revokes consent at any point of the call.
    public var optOutKey: Character = "9"
    /// `opt_out_prompt:` WAV played once the revocation is stored.
    public var optOutPrompt = "opt-out"
    /// `after_opt_out:` `hangup` (default) or `continue`.
    public var afterOptOut = AfterOptOut.hangup

    public init() {}

    static func parse(_ node: ConfigNode) throws -> DisclosureSettings {
        let fields = try node.mapping(allowed: ["prompt", "opt_out_key", "opt_out_prompt", "after_opt_out"])
        var settings = DisclosureSettings()
        if let prompt = fields["prompt"] { settings.prompt = try promptName(prompt) }
        if let prompt = fields["opt_out_prompt"] { settings.optOutPrompt = try promptName(prompt) }
        if let key = fields["opt_out_key"] {
            let text = try key.string()
            guard text.count == 1, let character = text.first, "0123456789*#".contains(character) else {
                throw key.error("opt_out_key must be one DTMF key (0-9, * or #), got '\(text)'")
            }
            settings.optOutKey = character
        }
        if let after = fields["after_opt_out"] {
            let text = try after.string()
            guard let value = AfterOptOut(rawValue: text) else { throw after.error("after_opt_out must be hangup or continue, got '\(text)'") }
            settings.afterOptOut = value
        }
        return settings
    }

    /// A file name in the prompts folder, never a path out of it.
    private static func promptName(_ node: ConfigNode) throws -> String {
        let text = try node.string()
        guard !text.isEmpty, !text.contains("/"), !text.hasPrefix(".") else {
            throw node.error("'\(text)' must name a WAV in the prompts folder (without .wav)")
        }
        return text
    }
}
