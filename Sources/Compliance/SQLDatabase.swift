/// The one seam between compliance logic and a database engine.
///
/// Store code speaks a common SQL subset with `?` placeholders; the two backends (SQLite, PostgreSQL) run it and
/// differ only where `dialect` says so (schema types, row locking). Every change happens inside `transaction`,
/// which is serialised per backend object and durable when it returns: nothing is dialled on an uncommitted
/// decision.
public protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// Runs `body` in one transaction that takes the write lock up front (SQLite `BEGIN IMMEDIATE`; PostgreSQL
    /// row and advisory locks as the body asks), commits when it returns and rolls back when it throws.
    func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T
    func close() async throws
}

/// Runs statements inside a transaction; valid only during the `transaction` body that lent it.
public protocol SQLExecutor: Sendable {
    var dialect: SQLDialect { get }
    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
}

extension SQLExecutor {
    @discardableResult
    func query(_ sql: String, _ binds: SQLValue...) async throws -> [SQLRow] { try await query(sql, binds) }
}

public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// A FIFO async mutex: one transaction at a time on a backend's single connection, without blocking a thread.
actor SerialGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func enter() async {
        guard busy else { busy = true; return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func leave() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await enter()
        do {
            let result = try await body()
            leave()
            return result
        } catch {
            leave()
            throw error
        }
    }
}
