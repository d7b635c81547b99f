// swift-tools-version:6.0
import PackageDescription

// The pure core and the simulators run millions of simulated events in `swift test` (a debug
// build): optimized there too, so 10^4 whole-node schedules fit in CI. Overflow and bounds
// checks stay on (-O, not -Ounchecked).
let optimizedInDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

// Targets follow docs/architecture.md: one target per concern, dependencies only point down.
// WeftCore is pure (stdlib only); I/O lives in WeftStore, WeftDaemon and the executables.
let package = Package(
    name: "weft",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "weft", targets: ["weft"]),
        .executable(name: "weft-bench", targets: ["weft-bench"]),
        .executable(name: "weft-cni", targets: ["weft-cni"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        // Linux calls Swift cannot make cleanly: TUN ioctls, recvmmsg/sendmmsg batches.
        .target(name: "CWeftShim"),
        // Pure protocol logic: no sockets, files, wall clock or global randomness.
        .target(name: "WeftCore", swiftSettings: optimizedInDebug),
        .target(name: "WeftCrypto", dependencies: ["CSodium", "WeftCore"]),
        .target(
            name: "WeftStore",
            dependencies: ["WeftCore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // The packet path: UDP socket (gossip + tunnel), TUN device, encrypt/decrypt threads.
        .target(name: "WeftDataPlane", dependencies: ["WeftCore", "WeftCrypto", "CWeftShim"]),
        // The kernel VXLAN data plane: rtnetlink codec and socket, the device and its
        // forwarding entries (docs/vxlan.md).
        .target(name: "WeftKernelNet", dependencies: ["WeftCore"]),
        // Control-socket protocol and client: Foundation + libc only, so the CNI plugin stays small.
        .target(name: "WeftAPI"),
        .target(
            name: "WeftDaemon",
            dependencies: [
                "WeftCore", "WeftCrypto", "WeftStore", "WeftAPI", "WeftDataPlane", "WeftKernelNet",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "weft",
            dependencies: [
                "WeftDaemon", "WeftAPI", "WeftCore", "WeftCrypto", "WeftDocker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The CNI plugin: logic as a library (testable as a function of environment and stdin),
        // a thin executable, and the Linux calls it needs (netns, veth, addresses, routes).
        .target(name: "CWeftCNIShim"),
        .target(name: "WeftCNI", dependencies: ["WeftAPI", "CWeftCNIShim"]),
        .executableTarget(name: "weft-cni", dependencies: ["WeftCNI"]),
        // Docker's remote network and IPAM plugin (`weft docker-plugin`, docs/docker.md): the
        // HTTP/JSON handling and the calls, on top of weft-cni's node client and kernel calls.
        .target(name: "WeftDocker", dependencies: ["WeftAPI", "WeftCNI"]),
        // Deterministic simulation support (tests and benchmarks only).
        // Twins: storage, the packet plane (the interpreter's seams, docs/node.md), simulators.
        .target(name: "WeftTestKit", dependencies: ["WeftCore", "WeftDataPlane"], swiftSettings: optimizedInDebug),
        .executableTarget(
            name: "weft-bench",
            dependencies: [
                "WeftCore", "WeftTestKit", "WeftStore", "WeftCrypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "WeftCoreTests", dependencies: ["WeftCore", "WeftTestKit", "WeftCrypto"]),
        .testTarget(name: "WeftCryptoTests", dependencies: ["WeftCrypto", "WeftCore"]),
        .testTarget(name: "WeftStoreTests", dependencies: ["WeftStore", "WeftCore"]),
        .testTarget(name: "WeftSimulationTests", dependencies: ["WeftCore", "WeftTestKit"]),
        .testTarget(name: "WeftDataPlaneTests", dependencies: ["WeftDataPlane", "WeftCore", "WeftCrypto"]),
        .testTarget(
            name: "WeftDaemonTests",
            dependencies: [
                "WeftDaemon", "WeftCore", "WeftCrypto", "WeftTestKit", "WeftDataPlane",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "WeftKernelNetTests", dependencies: ["WeftKernelNet", "WeftCore"]),
        .testTarget(name: "WeftCNITests", dependencies: ["WeftCNI", "WeftAPI"]),
        .testTarget(name: "WeftDockerTests", dependencies: ["WeftDocker", "WeftCNI", "WeftAPI"]),
        .testTarget(name: "WeftIntegrationTests", dependencies: ["WeftAPI", "WeftCore", "WeftCrypto", "WeftDaemon"]),
    ],
    swiftLanguageModes: [.v6]
)
