// swift-tools-version:6.0
// percrec: a recording gateway and archiver for PERC conferences.
// Targets follow the data flow (see README "Module map"): wire → crypto → keys → … → interfaces.
import PackageDescription

let package = Package(
    name: "percrec",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "percrec", targets: ["percrec"]),
        .executable(name: "percrec-bench", targets: ["percrec-bench"]),
        .library(name: "RTPWire", targets: ["RTPWire"]),
        .library(name: "SRTP", targets: ["SRTP"]),
        .library(name: "EKT", targets: ["EKT"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // swift-crypto 4: jwt-kit 5 needs it.
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // Access tokens (JWT, ES256), the authority's HTTPS service and its client.
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // Already in the graph through the three above; named for their TLS, X.509 and buffer types.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        // C shims: system libraries only (Debian -dev packages, found through pkg-config).
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "COpus", pkgConfig: "opus", providers: [.apt(["libopus-dev"])]),
        .systemLibrary(name: "CVPX", pkgConfig: "vpx", providers: [.apt(["libvpx-dev"])]),
        // libsrtp2 is an independent oracle for tests and the benchmark's peer; percrec never links it.
        .systemLibrary(name: "CLibSRTP", pkgConfig: "libsrtp2", providers: [.apt(["libsrtp2-dev"])]),

        .target(name: "RTPWire"),
        .target(name: "SRTP", dependencies: ["RTPWire", "COpenSSL"]),
        .target(name: "EKT", dependencies: ["SRTP", "RTPWire", "COpenSSL"]),
        // Key plane: DTLS-SRTP endpoint over OpenSSL and the DTLS tunnel codec. EKTKey delivery
        // and the reference Key Distributor follow (issue 3).
        .target(name: "KeyExchange", dependencies: ["EKT", "SRTP", "RTPWire", "COpenSSL", "Net"]),
        // Sockets (UDP, TCP) and a poll loop over Glibc: what the KD, MD, participants and the
        // recorder use for real network I/O. No protocol knowledge.
        .target(name: "Net"),
        // Codecs (libopus, libvpx), synthetic sources, RTP payload formats (RFC 7587, RFC 7741).
        .target(name: "Media", dependencies: ["RTPWire", "COpus", "CVPX"]),
        // The archive authority: its X25519 key files and HPKE (RFC 9180) sealing of epoch keys.
        .target(name: "Authority", dependencies: ["EKT", "SRTP", .product(name: "Crypto", package: "swift-crypto")]),
        // The SQLite archive (GRDB): schema and migrations, batched packet log, epoch ledger, roster.
        .target(name: "Archive", dependencies: [.product(name: "GRDB", package: "GRDB.swift"),
                                                .product(name: "GRDBSQLite", package: "GRDB.swift")]),
        // Packet captures: pcap/pcapng reading (Ethernet, Linux cooked, raw IP; IPv4/IPv6 UDP) and a pcap writer.
        .target(name: "Capture"),
        // The recorder: a receive-only PERC participant that archives a conference, live or from a capture.
        .target(name: "Recorder", dependencies: ["Archive", "Authority", "Capture", "KeyExchange", "EKT", "SRTP", "RTPWire", "Net"]),
        // Export: authorization by the authority's private key, epoch-key unsealing, the end-to-end
        // decrypt pipeline, the RTCP SR timeline, and Ogg Opus / WebM output (per participant or mixed).
        .target(name: "Export", dependencies: ["Archive", "Authority", "EKT", "SRTP", "RTPWire", "Media"]),
        // Authorized access: the conference policy (who may obtain which epoch keys), access tokens
        // (JWT, ES256), the hash-chained audit log of key releases, and the release itself
        // (epoch keys re-sealed to a requester's fresh key).
        .target(name: "Access", dependencies: ["Archive", "Authority", "EKT",
                                               .product(name: "Crypto", package: "swift-crypto"),
                                               .product(name: "JWTKit", package: "jwt-kit")]),
        // `percrec authority serve` (Hummingbird over TLS) and the exporter's HTTPS client for it.
        .target(name: "AuthorityService", dependencies: ["Access", "Archive", "Authority",
                                                         .product(name: "Hummingbird", package: "hummingbird"),
                                                         .product(name: "HummingbirdTLS", package: "hummingbird"),
                                                         .product(name: "AsyncHTTPClient", package: "async-http-client"),
                                                         .product(name: "NIOCore", package: "swift-nio"),
                                                         .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                         .product(name: "X509", package: "swift-certificates"),
                                                         .product(name: "SwiftASN1", package: "swift-asn1"),
                                                         .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Lab", dependencies: ["KeyExchange", "Media", "Net", "EKT", "SRTP", "RTPWire"]),
        .executableTarget(
            name: "percrec",
            dependencies: ["Lab", "Recorder", "Export", "Access", "AuthorityService", "Media", "Archive", "Authority", "Capture", "KeyExchange", "Net", "EKT", "SRTP", "RTPWire",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl")]),
        .executableTarget(
            name: "percrec-bench",
            dependencies: ["EKT", "SRTP", "RTPWire", "CLibSRTP", "Recorder", "Archive", "Net", "Export", "Lab", "Authority", "KeyExchange",
                           .product(name: "GRDBSQLite", package: "GRDB.swift")]),

        // Test helpers (hex literals, seeded PRNG, mutations) shared by the test targets.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "ShimTests", dependencies: ["COpenSSL", "COpus", "CVPX"]),
        .testTarget(name: "RTPWireTests", dependencies: ["RTPWire", "TestSupport"]),
        .testTarget(name: "SRTPTests", dependencies: ["SRTP", "RTPWire", "CLibSRTP", "TestSupport"]),
        .testTarget(name: "EKTTests", dependencies: ["EKT", "SRTP", "RTPWire", "TestSupport"]),
        .testTarget(name: "LabTests", dependencies: ["Lab", "KeyExchange", "Net", "EKT", "SRTP", "RTPWire", "TestSupport"]),
        .testTarget(name: "KeyExchangeTests", dependencies: ["KeyExchange", "Net", "EKT", "SRTP", "TestSupport"]),
        .testTarget(name: "NetTests", dependencies: ["Net"]),
        .testTarget(name: "AuthorityTests", dependencies: ["Authority", "EKT", "SRTP", "TestSupport"]),
        .testTarget(name: "ArchiveTests", dependencies: ["Archive", "TestSupport"]),
        .testTarget(name: "CaptureTests", dependencies: ["Capture", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "RecorderTests", dependencies: ["Recorder", "Export", "Access", "AuthorityService", "Media", "Lab", "Archive", "Authority", "Capture", "KeyExchange", "Net",
                                                         "EKT", "SRTP", "RTPWire", "TestSupport"]),
        .testTarget(name: "ExportTests", dependencies: ["Export", "Archive", "Authority", "Media", "EKT", "SRTP", "RTPWire", "Recorder", "TestSupport"]),
        .testTarget(name: "AccessTests", dependencies: ["Access", "Archive", "Authority", "EKT", "TestSupport"]),
        .testTarget(name: "MediaTests", dependencies: ["Media", "RTPWire", "COpus", "CVPX", "TestSupport"]),
    ]
)
