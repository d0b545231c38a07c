import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// SSRF guard for x5u fetches: resolves the host and refuses loopback, private, link-local, unique-local,
/// CGNAT, multicast and unspecified targets unless the configuration allows them.
///
/// The check happens before the HTTP client resolves the name again, so a DNS answer that changes between the two
/// look-ups (rebinding) is not caught; see the module notes.
enum AddressGuard {
    /// Raw address bytes (4 for IPv4, 16 for IPv6).
    typealias Address = [UInt8]

    static func isForbidden(_ address: Address) -> Bool {
        if address.count == 4 { return isForbiddenV4(address) }
        guard address.count == 16 else { return true }
        // IPv4-mapped ::ffff:a.b.c.d and NAT64 64:ff9b::a.b.c.d carry an IPv4 target.
        if address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xff, address[11] == 0xff {
            return isForbiddenV4(Array(address[12..<16]))
        }
        if address[0] == 0x00, address[1] == 0x64, address[2] == 0xff, address[3] == 0x9b,
            address[4..<12].allSatisfy({ $0 == 0 })
        {
            return isForbiddenV4(Array(address[12..<16]))
        }
        if address.allSatisfy({ $0 == 0 }) { return true }  // ::
        if address[0..<15].allSatisfy({ $0 == 0 }), address[15] == 1 { return true }  // ::1
        if address[0] & 0xfe == 0xfc { return true }  // fc00::/7 unique local
        if address[0] == 0xfe, address[1] & 0xc0 == 0x80 { return true }  // fe80::/10 link local
        if address[0] == 0xfe, address[1] & 0xc0 == 0xc0 { return true }  // fec0::/10 site local (deprecated)
        if address[0] == 0xff { return true }  // multicast
        return false
    }

    private static func isForbiddenV4(_ a: Address) -> Bool {
        switch (a[0], a[1]) {
        case (0, _), (10, _), (127, _): return true
        case (100, 64...127): return true  // CGNAT
        case (169, 254): return true
        case (172, 16...31): return true
        case (192, 168): return true
        case (192, 0) where a[2] == 0: return true  // IETF protocol assignments
        case (198, 18...19): return true  // benchmarking
        case (224...255, _): return true  // multicast, reserved, broadcast
        default: return false
        }
    }

    /// Resolves `host` with getaddrinfo on a background queue.
    static func resolve(host: String) async -> Result<[Address], IdentityReason> {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: resolveBlocking(host: host))
            }
        }
    }

    private static func resolveBlocking(host: String) -> Result<[Address], IdentityReason> {
        var hints = addrinfo()
        #if os(Linux)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0, let first = list else {
            return .failure(.init(.x5uUnreachable, "cannot resolve x5u host \(host)"))
        }
        defer { freeaddrinfo(first) }
        var addresses: [Address] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let sockaddr = entry.pointee.ai_addr {
                switch entry.pointee.ai_family {
                case AF_INET:
                    let address = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    addresses.append(withUnsafeBytes(of: address) { Array($0) })
                case AF_INET6:
                    let address = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        $0.pointee.sin6_addr
                    }
                    addresses.append(withUnsafeBytes(of: address) { Array($0) })
                default:
                    break
                }
            }
            cursor = entry.pointee.ai_next
        }
        guard !addresses.isEmpty else { return .failure(.init(.x5uUnreachable, "x5u host \(host) has no address")) }
        return .success(addresses)
    }
}
