import Foundation

/// Drives Debian's `secsipidx` (asipto/secsipidx 1.2.0) as the reference peer.
enum Secsipidx {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static let candidates = ["/usr/bin/secsipidx", "/usr/local/bin/secsipidx"]

    /// The binary's path; installs the Debian package when missing and running as root, else fails clearly.
    static func executable() throws -> String {
        if let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) { return found }
        guard getuid() == 0 else {
            throw Failure(description: "secsipidx is not installed and the tests are not root: run `sudo apt-get install -y secsipidx`")
        }
        let install = try run("/usr/bin/apt-get", ["install", "-y", "secsipidx"])
        if install.status != 0 {
            _ = try run("/usr/bin/apt-get", ["update"])
            _ = try run("/usr/bin/apt-get", ["install", "-y", "secsipidx"])
        }
        guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw Failure(description: "apt-get install -y secsipidx did not provide /usr/bin/secsipidx: \(install.stderr)")
        }
        return found
    }

    static func check(_ arguments: [String]) throws -> Output {
        try run(try executable(), arguments)
    }

    static func run(_ path: String, _ arguments: [String]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["DEBIAN_FRONTEND"] = "noninteractive"
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self)
        )
    }
}
