import Foundation

/// A plain UDP socket on 127.0.0.1 for raw SIP.
public final class UDPPeer {
    private let fd: Int32
    public let port: Int

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw UDPPeerError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { close(fd); throw UDPPeerError("bind failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }

    public func send(_ data: Data, to port: Int) throws {
        try Self.send(data, to: port, from: fd)
    }

    /// Sends each datagram at `slot` × `interval` after the call, from a thread of its own: the shared concurrency
    /// pool, busy on a loaded machine, would bunch the stream (and the gateway's jitter buffer rightly sheds a
    /// bunched stream). Returns once the last one is sent.
    public func sendPaced(_ packets: [(slot: Int, data: Data)], to port: Int, interval: Duration = .milliseconds(20)) async throws {
        let fd = self.fd
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            Thread {
                let start = ContinuousClock.now
                do {
                    for packet in packets {
                        let wait = start + interval * packet.slot - ContinuousClock.now
                        if wait > .zero {
                            let (seconds, attoseconds) = wait.components
                            Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) / 1e18)
                        }
                        try Self.send(packet.data, to: port, from: fd)
                    }
                    done.resume()
                } catch {
                    done.resume(throwing: error)
                }
            }.start()
        }
    }

    private static func send(_ data: Data, to port: Int, from fd: Int32) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let sent = data.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == data.count else { throw UDPPeerError("sendto failed") }
    }

    /// The next datagram as text, or nil once `deadline` passes.
    public func receive(until deadline: Date) -> String? {
        receiveBytes(until: deadline).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The next datagram, or nil once `deadline` passes (poll(2) on the socket: an event wait, not a sleep).
    public func receiveBytes(until deadline: Date) -> [UInt8]? {
        let remaining = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, remaining) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return nil }
        return Array(buffer[0..<n])
    }
}

extension UDPPeer {
    /// The next SIP response whose status line starts with `prefix` (others are skipped), within `timeout`.
    public func receive(statusPrefix prefix: String, timeout: TimeInterval = 5) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while let text = receive(until: deadline) {
            if text.hasPrefix(prefix) { return text }
        }
        return nil
    }
}

public struct UDPPeerError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
