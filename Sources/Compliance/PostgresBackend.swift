import Logging
import NIOCore
import PostgresNIO

/// The shared store for several gateways: one PostgreSQL connection per backend object, transactions serialised
/// on it. Cross-process ordering comes from the database: row locks (`FOR UPDATE SKIP LOCKED` when claiming
/// contacts) and one transaction-scoped advisory lock around every ledger append and dial decision.
public final class PostgresBackend: SQLDatabase {
    public var dialect: SQLDialect { .postgres }
    private let connection: PostgresConnection
    private let logger: Logger
    private let gate = SerialGate()

    /// Connects to `postgres://user[:password]@host[:port]/database` (TLS off: loopback or a private network).
    public static func connect(url: String, logger: Logger = Logger(label: "trunkline.compliance.postgres")) async throws -> PostgresBackend {
        let configuration = try Self.configuration(url: url)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        let backend = PostgresBackend(connection: connection, logger: logger)
        do {
            // A commit must be on the server's disk before we dial on it, whatever the server's default says.
            try await backend.transaction { sql in try await sql.query("SET synchronous_commit TO on", []) }
        } catch {
            try? await connection.close()
            throw error
        }
        return backend
    }

    private init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Throws a clear error (never echoing the password) when `url` is not a usable PostgreSQL store URL.
    public static func validate(url: String) throws { _ = try configuration(url: url) }

    static func configuration(url: String) throws -> PostgresConnection.Configuration {
        // postgres://user:password@host:port/database — parsed by hand so a password never reaches an error text.
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw StoreError.invalid("store URL must start with postgres:// (got scheme '\(url.prefix { $0 != ":" })')")
        }
        let rest = url.drop { $0 != "/" }.dropFirst(2)
        let authority = rest.prefix { $0 != "/" }
        let database = rest.dropFirst(authority.count + 1).prefix { $0 != "?" }
        let hasUser = authority.contains("@")
        let userInfo = hasUser ? authority.prefix { $0 != "@" } : ""
        let hostPort = hasUser ? authority.drop { $0 != "@" }.dropFirst() : authority
        let user = userInfo.prefix { $0 != ":" }
        let password = userInfo.contains(":") ? String(userInfo.drop { $0 != ":" }.dropFirst()) : nil
        let host = hostPort.prefix { $0 != ":" }
        let portText = hostPort.dropFirst(host.count + 1)
        guard !user.isEmpty, !host.isEmpty, !database.isEmpty, portText.isEmpty || Int(portText) != nil else {
            throw StoreError.invalid("store URL must look like postgres://user[:password]@host[:port]/database")
        }
        return .init(host: String(host), port: Int(portText) ?? 5432, username: String(user), password: password,
                     database: String(database), tls: .disable)
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        try await gate.run {
            let executor = Executor(connection: connection, logger: logger)
            _ = try await executor.query("BEGIN", [])
            do {
                let result = try await body(executor)
                _ = try await executor.query("COMMIT", [])
                return result
            } catch {
                _ = try? await executor.query("ROLLBACK", [])
                throw error
            }
        }
    }

    public func close() async throws { try await connection.close() }

    private struct Executor: SQLExecutor {
        let connection: PostgresConnection
        let logger: Logger
        var dialect: SQLDialect { .postgres }

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            var bindings = PostgresBindings(capacity: binds.count)
            for bind in binds {
                switch bind {
                case .null: bindings.appendNull()
                case .integer(let int): bindings.append(int)
                case .text(let text): bindings.append(text)
                case .blob(let bytes): bindings.append(ByteBuffer(bytes: bytes))
                }
            }
            let rows = try await connection.query(PostgresQuery(unsafeSQL: Self.numbered(sql), binds: bindings), logger: logger)
            var result: [SQLRow] = []
            for try await row in rows {
                var values: [String: SQLValue] = [:]
                for cell in row { values[cell.columnName] = try Self.value(cell) }
                result.append(SQLRow(values: values))
            }
            return result
        }

        private static func value(_ cell: PostgresCell) throws -> SQLValue {
            guard cell.bytes != nil else { return .null }
            switch cell.dataType {
            case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
            case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
            case .bytea: return .blob(Array(try cell.decode(ByteBuffer.self).readableBytesView))
            default: return .text(try cell.decode(String.self))
            }
        }

        /// `?` → `$1, $2, …`, outside quoted literals, so both dialects share one statement text.
        static func numbered(_ sql: String) -> String {
            var out = ""
            var index = 0
            var quoted = false
            for character in sql {
                if character == "'" { quoted.toggle() }
                if character == "?", !quoted {
                    index += 1
                    out += "$\(index)"
                } else {
                    out.append(character)
                }
            }
            return out
        }
    }
}
