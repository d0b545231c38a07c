import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct FreePortError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Free loopback ports, found by binding port 0 (never 5060).
public enum FreePort {
    /// A port free for both UDP and TCP (SIP listens on both).
    public static func sipPort() throws -> Int {
        for _ in 0..<20 {
            let port = try bind(stream: false, port: 0)
            if (try? bind(stream: true, port: port)) != nil { return port }
        }
        throw FreePortError("no free SIP port")
    }

    /// A port that is free with the next one, both for UDP and TCP (a peer that puts TLS one port above).
    public static func sipPortPair() throws -> Int {
        for _ in 0..<50 {
            let port = try sipPort()
            guard port < 65535 else { continue }
            if (try? bind(stream: false, port: port + 1)) != nil, (try? bind(stream: true, port: port + 1)) != nil { return port }
        }
        throw FreePortError("no free pair of SIP ports")
    }

    public static func udpPort() throws -> Int { try bind(stream: false, port: 0) }

    /// Whether something already listens on this UDP port.
    public static func isBusy(udp port: Int) -> Bool {
        (try? bind(stream: false, port: port)) == nil
    }

    /// A block of `count` consecutive UDP ports starting at an even port, all free right now.
    public static func udpRange(count: Int) throws -> ClosedRange<Int> {
        for _ in 0..<50 {
            let start = Int.random(in: 30000...(60000 - count)) & ~1
            if (start..<(start + count)).allSatisfy({ (try? bind(stream: false, port: $0)) != nil }) {
                return start...(start + count - 1)
            }
        }
        throw FreePortError("no free RTP port block of \(count)")
    }

    private static func bind(stream: Bool, port: Int) throws -> Int {
        let fd = socket(AF_INET, Int32(stream ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw FreePortError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw FreePortError("port \(port) busy") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
