import Logging
import NIOConcurrencyHelpers
import SIP

/// Which termination addresses answer OPTIONS, so calls go to a live one first.
///
/// Thread contract: `order` may be called from any thread; `monitor` runs as one task for the gateway's life.
final class TrunkHealth: Sendable {
    private let down = NIOLockedValueBox<Set<String>>([])

    /// `addresses` with the ones that failed their last health check moved to the end (still tried, last).
    func order(_ addresses: [TerminationAddress]) -> [TerminationAddress] {
        let down = self.down.withLockedValue { $0 }
        return addresses.filter { !down.contains($0.description) } + addresses.filter { down.contains($0.description) }
    }

    /// Notes a health-check result; true when it changed the address's state.
    func record(_ address: TerminationAddress, alive: Bool) -> Bool {
        down.withLockedValue { down in
            alive ? down.remove(address.description) != nil : down.insert(address.description).inserted
        }
    }

    /// Any final answer means the address is alive (many carriers answer OPTIONS with 404 or 405); 408 and 503
    /// are what sofia reports when nothing answered or the address could not be reached.
    static func isAlive(status: Int) -> Bool {
        status != 408 && status != 503
    }

    /// Probes every outbound trunk's addresses every `interval` until cancelled; logs each change of state.
    func monitor(trunks: [GatewayConfiguration.Trunk], sip: SIPEndpoint, metrics: GatewayMetrics, logger: Logger) async {
        let probed = trunks.compactMap { trunk -> (String, GatewayConfiguration.Outbound)? in
            guard let outbound = trunk.outbound, outbound.healthCheckIntervalSeconds > 0 else { return nil }
            return (trunk.name, outbound)
        }
        guard let interval = probed.map(\.1.healthCheckIntervalSeconds).min() else { return }
        while !Task.isCancelled {
            for (trunk, outbound) in probed {
                for address in outbound.addresses {
                    let status = await sip.options(address.optionsURI, timeout: outbound.healthCheckTimeout)
                    let alive = Self.isAlive(status: status)
                    metrics.terminationAddress(trunk: trunk, address: address.description, alive: alive)
                    if record(address, alive: alive) {
                        logger.log(level: alive ? .notice : .warning, "termination address \(alive ? "up" : "down")", metadata: [
                            "trunk": "\(trunk)", "address": "\(address)", "status": "\(status)",
                        ])
                    }
                }
            }
            try? await Task.sleep(for: .seconds(interval))
        }
    }
}
