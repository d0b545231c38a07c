import Media

/// The audio the gateway and its embedded agent speak: 8 kHz mono 16-bit WAV files in the prompts folder.
public struct Prompts: Sendable {
    public var greeting: [Int16]
    public var goodbye: [Int16]
    /// What a caller hears when the agent is unreachable or fails.
    public var fallback: [Int16]
    public var digits: [Character: [Int16]]

    /// DTMF keys and the file each one's readback is in.
    static let digitFiles: [Character: String] = [
        "0": "digit-0", "1": "digit-1", "2": "digit-2", "3": "digit-3", "4": "digit-4", "5": "digit-5",
        "6": "digit-6", "7": "digit-7", "8": "digit-8", "9": "digit-9", "*": "digit-star", "#": "digit-pound",
        "A": "digit-a", "B": "digit-b", "C": "digit-c", "D": "digit-d",
    ]

    public static func load(folder: String) throws -> Prompts {
        func load(_ name: String) throws -> [Int16] { try WAVFile.load(path: "\(folder)/\(name).wav").samples }
        var digits: [Character: [Int16]] = [:]
        for (digit, file) in digitFiles { digits[digit] = try load(file) }
        return Prompts(greeting: try load("greeting"), goodbye: try load("goodbye"), fallback: try load("fallback"), digits: digits)
    }
}
