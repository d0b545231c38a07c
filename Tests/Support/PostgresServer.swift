import Foundation

/// A throwaway PostgreSQL server: `initdb` into a temp folder, `pg_ctl start -w` on a free loopback port (no Unix
/// socket outside the folder), trust auth for one superuser. As root the server runs as Debian's `postgres` user,
/// since PostgreSQL refuses to run as root. `stop()` shuts down the postmaster named in its PID file and waits.
public final class PostgresServer: Sendable {
    public let port: Int
    public let directory: String
    public let user = "trunkline"
    private let asPostgres: Bool

    /// `postgres://trunkline@127.0.0.1:PORT/DATABASE`
    public func url(database: String = "postgres") -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    public static func start() async throws -> PostgresServer {
        let server = try PostgresServer()
        do { try await server.launch() } catch {
            try? await server.stop()
            throw error
        }
        return server
    }

    private init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-pg-\(UUID().uuidString)").path
        port = try Self.freeTCPPort()
        asPostgres = getuid() == 0
    }

    private func launch() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if asPostgres { try await Self.run("/bin/chown", ["postgres:postgres", directory], log: "\(directory)/chown.log") }
        let bin = try Self.binDirectory()
        try await runAsServerUser("\(bin)/initdb", ["-D", "\(directory)/data", "-U", user, "--auth=trust", "--no-sync", "-E", "UTF8"])
        let options = "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=on"
        try await runAsServerUser("\(bin)/pg_ctl", ["-D", "\(directory)/data", "-l", "\(directory)/server.log", "-o", options, "-w", "-t", "60", "start"])
    }

    /// The postmaster's PID, from the first line of its PID file.
    public var pid: Int32? {
        (try? String(contentsOfFile: "\(directory)/data/postmaster.pid", encoding: .utf8))?.split(separator: "\n").first.flatMap { Int32($0) }
    }

    /// Fast shutdown of the postmaster by PID (pg_ctl waits for it to exit), then removes the folder.
    public func stop() async throws {
        if pid != nil {
            let bin = try Self.binDirectory()
            try await runAsServerUser("\(bin)/pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "stop"])
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func runAsServerUser(_ tool: String, _ arguments: [String]) async throws {
        let log = "\(directory)/\(URL(fileURLWithPath: tool).lastPathComponent).log"
        if asPostgres {
            try await Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", tool] + arguments, log: log)
        } else {
            try await Self.run(tool, arguments, log: log)
        }
    }

    /// Runs a tool to its exit on a thread of its own (not the test's), output to a file: the postmaster that
    /// `pg_ctl start` leaves behind inherits the tool's descriptors, so a pipe would never close, and Foundation's
    /// `Process` did not report pg_ctl's exit here; `posix_spawn` + `waitpid` on its PID does.
    private static func run(_ tool: String, _ arguments: [String], log: String) async throws {
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                var actions = posix_spawn_file_actions_t()
                posix_spawn_file_actions_init(&actions)
                defer { posix_spawn_file_actions_destroy(&actions) }
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
                posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o666)
                posix_spawn_file_actions_adddup2(&actions, 1, 2)
                let argv = ([tool] + arguments).map { strdup($0) } + [nil]
                defer { argv.forEach { free($0) } }
                var pid: pid_t = 0
                let spawned = posix_spawn(&pid, tool, &actions, nil, argv, environ)
                guard spawned == 0 else {
                    continuation.resume(throwing: PostgresServerError("cannot start \(tool): errno \(spawned)"))
                    return
                }
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                // WIFEXITED / WEXITSTATUS by hand: the macros do not import.
                continuation.resume(returning: status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f))
            }
        }
        guard status == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw PostgresServerError("\(tool) \(arguments.joined(separator: " ")) exited \(status): \(text)")
        }
    }

    /// Debian puts the server tools in /usr/lib/postgresql/<version>/bin (not on PATH); the newest wins.
    private static func binDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        guard let newest = versions.last else { throw PostgresServerError("PostgreSQL is not installed (scripts/install-deps.sh installs it)") }
        return "\(root)/\(newest)/bin"
    }

    private static func freeTCPPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PostgresServerError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw PostgresServerError("no free TCP port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

public struct PostgresServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
