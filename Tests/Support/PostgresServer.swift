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

    public static func start() throws -> PostgresServer {
        let server = try PostgresServer()
        do { try server.launch() } catch {
            try? server.stop()
            throw error
        }
        return server
    }

    private init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-pg-\(UUID().uuidString)").path
        port = try Self.freeTCPPort()
        asPostgres = getuid() == 0
    }

    private func launch() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if asPostgres { try Self.run("/bin/chown", ["postgres:postgres", directory]) }
        let bin = try Self.binDirectory()
        try runAsServerUser("\(bin)/initdb", ["-D", "\(directory)/data", "-U", user, "--auth=trust", "--no-sync", "-E", "UTF8"])
        let options = "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=on"
        try runAsServerUser("\(bin)/pg_ctl", ["-D", "\(directory)/data", "-l", "\(directory)/server.log", "-o", options, "-w", "-t", "60", "start"])
    }

    /// The postmaster's PID, from the first line of its PID file.
    public var pid: Int32? {
        (try? String(contentsOfFile: "\(directory)/data/postmaster.pid", encoding: .utf8))?.split(separator: "\n").first.flatMap { Int32($0) }
    }

    /// Fast shutdown of the postmaster by PID (pg_ctl waits for it to exit), then removes the folder.
    public func stop() throws {
        if pid != nil {
            let bin = try Self.binDirectory()
            try runAsServerUser("\(bin)/pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "stop"])
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func runAsServerUser(_ tool: String, _ arguments: [String]) throws {
        if asPostgres {
            try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", tool] + arguments)
        } else {
            try Self.run(tool, arguments)
        }
    }

    private static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PostgresServerError("\(tool) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(String(decoding: data, as: UTF8.self))")
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
