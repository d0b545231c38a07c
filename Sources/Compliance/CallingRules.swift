import Foundation

/// A daily window in the callee's local time, in minutes after midnight: `start` inclusive, `end` exclusive.
public struct CallingWindow: Sendable, Equatable, CustomStringConvertible {
    public var start: Int
    public var end: Int

    /// 47 CFR 64.1200(c)(1) and 16 CFR 310.4(c): no calls before 8 am or after 9 pm at the called party's location.
    public static let federal = CallingWindow(start: 8 * 60, end: 21 * 60)

    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }

    /// `HH:MM-HH:MM`, or nil when malformed or empty.
    public init?(parsing text: String) {
        let parts = text.split(separator: "-").map { String($0).trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let start = Self.minutes(parts[0]), let end = Self.minutes(parts[1]), start < end else { return nil }
        self.init(start: start, end: end)
    }

    static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts[0].count <= 2, parts[1].count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]),
              (0...24).contains(hour), (0..<60).contains(minute), hour * 60 + minute <= 24 * 60 else { return nil }
        return hour * 60 + minute
    }

    public func contains(minuteOfDay: Int) -> Bool { start <= minuteOfDay && minuteOfDay < end }

    public func intersection(_ other: CallingWindow) -> CallingWindow {
        CallingWindow(start: max(start, other.start), end: min(end, other.end))
    }

    public var description: String {
        String(format: "%02d:%02d-%02d:%02d", start / 60, start % 60, end / 60, end % 60)
    }
}

/// A state's stricter rules, from the shipped `state-rules.csv` (kept as data for legal review).
public struct StateRule: Sendable, Equatable {
    public var region: String
    public var window: CallingWindow
    /// Calls to one number on one subject in any rolling 24 h (FL, OK, MD: 3).
    public var maxPer24Hours: Int?
    public var source: String
}

/// Where a number may be: the NANP area-code table (`area-codes.csv`, generated from libphonenumber by
/// scripts/make-area-codes.sh) and the per-state overrides.
public struct CallingRules: Sendable {
    public var areaCodes: [String: (regions: [String], timezones: [String])]
    public var states: [String: StateRule]

    public init(areaCodes: [String: (regions: [String], timezones: [String])], states: [String: StateRule]) {
        self.areaCodes = areaCodes
        self.states = states
    }

    /// The tables shipped in the module's resources.
    public static func bundled() throws -> CallingRules {
        func resource(_ name: String) throws -> String {
            guard let url = Bundle.module.url(forResource: name, withExtension: "csv", subdirectory: "Data") else {
                throw StoreError.invalid("data file \(name).csv is missing from the Compliance resources")
            }
            return try String(contentsOf: url, encoding: .utf8)
        }
        return try CallingRules(areaCodesCSV: resource("area-codes"), stateRulesCSV: resource("state-rules"))
    }

    public init(areaCodesCSV: String, stateRulesCSV: String) throws {
        areaCodes = [:]
        for record in CSV.parse(areaCodesCSV).records {
            guard record.fields.count == 3, record.fields[0].count == 3 else {
                throw StoreError.invalid("area-codes.csv line \(record.line): expected npa,regions,timezones")
            }
            let split = { (text: String) in text.split(separator: "|").map(String.init) }
            areaCodes[record.fields[0]] = (split(record.fields[1]), split(record.fields[2]))
        }
        states = [:]
        for record in CSV.parse(stateRulesCSV).records {
            guard record.fields.count == 5, let window = CallingWindow(parsing: "\(record.fields[1])-\(record.fields[2])") else {
                throw StoreError.invalid("state-rules.csv line \(record.line): expected region,window_start,window_end,max_per_24h,source")
            }
            let cap = record.fields[3].isEmpty ? nil : Int(record.fields[3])
            if !record.fields[3].isEmpty, cap == nil { throw StoreError.invalid("state-rules.csv line \(record.line): max_per_24h is not a number") }
            states[record.fields[0]] = StateRule(region: record.fields[0], window: window, maxPer24Hours: cap, source: record.fields[4])
        }
    }

    /// Time zones the callee may be in: the contact's own zone when known, otherwise every zone of its area code.
    func candidateZones(for number: PhoneNumber, contactTimezone: String?) -> [String] {
        if let contactTimezone { return [contactTimezone] }
        return number.areaCode.flatMap { areaCodes[$0]?.timezones } ?? []
    }

    /// State rules that may apply: every region the area code belongs to (a call to a Florida area code is
    /// presumed to reach a Florida resident, Fla. Stat. 501.059).
    func stateRules(for number: PhoneNumber) -> [StateRule] {
        (number.areaCode.flatMap { areaCodes[$0]?.regions } ?? []).compactMap { states[$0] }
    }
}
