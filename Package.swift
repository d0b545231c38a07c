// swift-tools-version:6.0
import PackageDescription

// C libraries come from Debian packages (scripts/install-deps.sh installs them).
let package = Package(
    name: "Trunkline",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "trunkline", targets: ["trunkline"]),
        .executable(name: "trunkline-bench", targets: ["trunkline-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // MARK: - C libraries
        .systemLibrary(name: "CSofiaSIP", pkgConfig: "sofia-sip-ua", providers: [.apt(["libsofia-sip-ua-dev"])]),
        .systemLibrary(name: "CSpanDSP", pkgConfig: "spandsp", providers: [.apt(["libspandsp-dev"])]),
        .systemLibrary(name: "COpus", pkgConfig: "opus", providers: [.apt(["libopus-dev"])]),
        .systemLibrary(name: "CSRTP", pkgConfig: "libsrtp2", providers: [.apt(["libsrtp2-dev"])]),
        .systemLibrary(name: "CSpeexDSP", pkgConfig: "speexdsp", providers: [.apt(["libspeexdsp-dev"])]),
        // Non-variadic wrappers over sofia's tag-list calls, which Swift cannot call.
        .target(name: "SofiaShim", dependencies: ["CSofiaSIP"]),

        // MARK: - Modules
        .target(
            name: "SIP",
            dependencies: [
                "CSofiaSIP", "SofiaShim",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Media",
            dependencies: [
                "CSpanDSP", "COpus", "CSRTP", "CSpeexDSP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Agent",
            dependencies: [
                "Media", "SecureCapture",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The embedded agent's call-flow language: the flow model, its pure state machine, espeak-ng speech, the agent.
        .target(
            name: "CallFlow",
            dependencies: [
                "Agent", "Media",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // STIR/SHAKEN: Identity header, PASSporT, x5u fetch and cache, chain to STI-CA anchors, verstat.
        .target(
            name: "Identity",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Gateway",
            dependencies: [
                "SIP", "Media", "Agent", "CallFlow", "Identity", "Compliance", "SecureCapture",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // PCI secure capture: the capture state machine, the signed payment-sink webhook, Luhn; no digit leaves it
        // except in the sink's request body.
        .target(
            name: "SecureCapture",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The admin HTTP API, including Twilio's REST call resource so Twilio-configured bots can hang up.
        .target(
            name: "AdminAPI",
            dependencies: [
                "Gateway", "Media", "Compliance",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // TCPA: consent store and hash-chained ledger (SQLite or PostgreSQL), the pre-dial gate, the campaign scheduler.
        .target(
            name: "Compliance",
            dependencies: [
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Data")]
        ),
        .executableTarget(
            name: "trunkline",
            dependencies: [
                "Gateway", "AdminAPI", "Identity", "Compliance",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `make bench`'s helpers: the echo agent and the caller pcaps (bench/media.sh).
        .executableTarget(
            name: "trunkline-bench",
            dependencies: [
                "Media",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),

        // MARK: - Tests
        // Real peers the tests drive: a recording Twilio-Media-Streams agent server, process helpers.
        .target(
            name: "TrunklineTestSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                "Identity",
            ],
            path: "Tests/Support"
        ),
        .testTarget(
            name: "SIPTests",
            dependencies: [
                "SIP", "TrunklineTestSupport",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "MediaTests", dependencies: ["Media", "TrunklineTestSupport"]),
        .testTarget(
            name: "AgentTests",
            dependencies: [
                "Agent", "CallFlow", "SecureCapture", "TrunklineTestSupport", .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "FlowEngineTests",
            dependencies: ["CallFlow", "Agent", "Media", "TrunklineTestSupport", .product(name: "NIOPosix", package: "swift-nio")]
        ),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "CallFlow", "Identity", "Compliance"]),
        .testTarget(
            name: "AdminAPITests",
            dependencies: ["AdminAPI", "Gateway", "Compliance", .product(name: "HummingbirdTesting", package: "hummingbird")]
        ),
        .testTarget(
            name: "IdentityTests",
            dependencies: [
                "Identity", "TrunklineTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Runs a campaign and SIGKILLs itself mid-way: the crash-restart test's child process.
        .executableTarget(name: "ComplianceCrashHelper", dependencies: ["Compliance"], path: "Tests/ComplianceCrashHelper"),
        .testTarget(
            name: "ComplianceTests",
            dependencies: ["Compliance", "ComplianceCrashHelper", "TrunklineTestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "SecureCaptureTests",
            dependencies: ["SecureCapture", "TrunklineTestSupport", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "TrunklineTestSupport", "Media", "Identity",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
    ]
)
