/// A value crossing the store boundary: what both SQLite and PostgreSQL hold, so store code is written once.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case text(String)
    case blob([UInt8])
}

extension SQLValue {
    init(_ text: String?) { self = text.map(SQLValue.text) ?? .null }
    init(_ integer: Int64?) { self = integer.map(SQLValue.integer) ?? .null }
    init(_ integer: Int) { self = .integer(Int64(integer)) }
}

/// One result row, by column name. Accessors throw a store error naming the column instead of trapping.
public struct SQLRow: Sendable {
    public var values: [String: SQLValue]

    public init(values: [String: SQLValue]) { self.values = values }

    func int(_ column: String) throws -> Int64 {
        guard case .integer(let value) = values[column] else { throw StoreError.badColumn(column, values[column]) }
        return value
    }

    func optionalInt(_ column: String) throws -> Int64? {
        if values[column] == nil || values[column] == .null { return nil }
        return try int(column)
    }

    func string(_ column: String) throws -> String {
        guard case .text(let value) = values[column] else { throw StoreError.badColumn(column, values[column]) }
        return value
    }

    func optionalString(_ column: String) throws -> String? {
        if values[column] == nil || values[column] == .null { return nil }
        return try string(column)
    }

    func bytes(_ column: String) throws -> [UInt8] {
        guard case .blob(let value) = values[column] else { throw StoreError.badColumn(column, values[column]) }
        return value
    }
}

/// A fault of the store itself (not a compliance verdict, which is a value).
public struct StoreError: Error, CustomStringConvertible {
    public let description: String
    /// Bad input (a name, a value): the caller's to fix, not the store's fault.
    public private(set) var isInvalidInput = false
    /// What was asked for does not exist.
    public private(set) var isNotFound = false

    static func badColumn(_ column: String, _ value: SQLValue?) -> StoreError {
        StoreError(description: "column '\(column)' has an unexpected value type (\(value.map { "\($0)".prefix(12) } ?? "absent"))")
    }
    public static func notFound(_ what: String) -> StoreError { StoreError(description: "\(what) not found", isNotFound: true) }
    public static func invalid(_ what: String) -> StoreError { StoreError(description: what, isInvalidInput: true) }
}
