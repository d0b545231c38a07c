import NIOCore
import NIOPosix
import SQLiteNIO

/// The embedded store: one SQLite connection in WAL mode with `synchronous=FULL`, so a committed transaction is
/// on disk (the WAL is fsynced at every commit) before anyone dials on it. Several processes may share the file:
/// `BEGIN IMMEDIATE` takes SQLite's write lock at the start and `busy_timeout` waits for another writer. Each backend
/// has its own thread for SQLite's blocking calls, so one connection waiting for the lock never starves another.
public final class SQLiteBackend: SQLDatabase {
    public var dialect: SQLDialect { .sqlite }
    private let connection: SQLiteConnection
    private let threadPool: NIOThreadPool
    private let gate = SerialGate()

    public static func open(path: String) async throws -> SQLiteBackend {
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), threadPool: threadPool,
                                                         on: MultiThreadedEventLoopGroup.singleton.any())
        } catch {
            try? await threadPool.shutdownGracefully()
            throw StoreError.invalid("cannot open SQLite store '\(path)': \(error)")
        }
        let backend = SQLiteBackend(connection: connection, threadPool: threadPool)
        do {
            for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA busy_timeout=10000", "PRAGMA foreign_keys=ON"] {
                _ = try await connection.query(pragma, [])
            }
        } catch {
            try? await backend.close()
            throw StoreError.invalid("cannot open SQLite store '\(path)': \(error)")
        }
        return backend
    }

    private init(connection: SQLiteConnection, threadPool: NIOThreadPool) {
        self.connection = connection
        self.threadPool = threadPool
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        try await gate.run {
            let executor = Executor(connection: connection)
            _ = try await connection.query("BEGIN IMMEDIATE", [])
            do {
                let result = try await body(executor)
                _ = try await connection.query("COMMIT", [])
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", [])
                throw error
            }
        }
    }

    public func close() async throws {
        try await connection.close()
        try await threadPool.shutdownGracefully()
    }

    private struct Executor: SQLExecutor {
        let connection: SQLiteConnection
        var dialect: SQLDialect { .sqlite }

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            let rows = try await connection.query(sql, binds.map(Self.data))
            return rows.map { row in
                SQLRow(values: Dictionary(row.columns.map { ($0.name, Self.value($0.data)) }, uniquingKeysWith: { a, _ in a }))
            }
        }

        private static func data(_ value: SQLValue) -> SQLiteData {
            switch value {
            case .null: .null
            case .integer(let int): .integer(SQLiteInt64(int))
            case .text(let text): .text(text)
            case .blob(let bytes): .blob(ByteBuffer(bytes: bytes))
            }
        }

        private static func value(_ data: SQLiteData) -> SQLValue {
            switch data {
            case .null: .null
            case .integer(let int): .integer(Int64(int))
            case .float(let double): .integer(Int64(double))
            case .text(let text): .text(text)
            case .blob(let buffer): .blob(Array(buffer.readableBytesView))
            }
        }
    }
}
