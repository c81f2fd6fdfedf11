import Foundation
import Testing
@testable import Capture

/// What scapy found in one fixture (Fixtures/make_captures.py writes expected.json).
struct ExpectedCapture: Decodable, Sendable {
    var file: String
    var frames: Int
    var datagrams: [ExpectedDatagram]
    var skipped: [String: Int]
}

struct ExpectedDatagram: Decodable, Equatable, Sendable, CustomStringConvertible {
    var frame: Int
    var src: String
    var sport: UInt16
    var dst: String
    var dport: UInt16
    var payload: String
    var seconds: Int64
    var nanoseconds: UInt32

    init(frame: Int, src: String, sport: UInt16, dst: String, dport: UInt16, payload: String,
         seconds: Int64, nanoseconds: UInt32) {
        (self.frame, self.src, self.sport, self.dst, self.dport) = (frame, src, sport, dst, dport)
        (self.payload, self.seconds, self.nanoseconds) = (payload, seconds, nanoseconds)
    }

    init(_ datagram: CapturedDatagram) {
        self.init(frame: datagram.frameNumber, src: datagram.sourceAddress, sport: datagram.sourcePort,
                  dst: datagram.destinationAddress, dport: datagram.destinationPort,
                  payload: hex(datagram.payload), seconds: datagram.timestamp.seconds,
                  nanoseconds: datagram.timestamp.nanoseconds)
    }

    var description: String {
        "#\(frame) \(seconds).\(nanoseconds) \(src):\(sport) -> \(dst):\(dport) [\(payload.prefix(40))]"
    }
}

/// The fixtures, generated once per test run into a temporary directory.
struct Fixtures: Sendable {
    let directory: URL
    let captures: [String: ExpectedCapture]

    static func load() async throws -> Fixtures { try await OncePerRun.fixtures.value }

    static func generate() async throws -> Fixtures {
        let directory = temporaryDirectoryURL()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/make_captures.py").path
        _ = try await Scapy.run([script, directory.path])
        do {
            let data = try Data(contentsOf: directory.appendingPathComponent("expected.json"))
            struct Root: Decodable { var captures: [ExpectedCapture] }
            let root = try JSONDecoder().decode(Root.self, from: data)
            return Fixtures(directory: directory, captures: Dictionary(uniqueKeysWithValues: root.captures.map { ($0.file, $0) }))
        } catch {
            throw TestFailure("generating fixtures failed: \(error)")
        }
    }
}

@Suite("Reader against scapy")
struct ScapyOracleTests {
    static let files = ["eth_ipv4.pcap", "be_us.pcap", "ns.pcap", "ns_be.pcap", "sll_ipv6.pcap", "sll2.pcap",
                        "raw.pcap", "two_if.pcapng", "vlan.pcapng"]

    @Test("the generator wrote every fixture this suite checks, and nothing else")
    func fixtureList() async throws {
        let fixtures = try await Fixtures.load()
        #expect(Set(fixtures.captures.keys) == Set(Self.files))
    }

    @Test("datagrams, timestamps, frame numbers and skip counts equal scapy's reading", arguments: files)
    func matchesScapy(file: String) async throws {
        let fixtures = try await Fixtures.load()
        let expected = try #require(fixtures.captures[file])
        let path = fixtures.directory.appendingPathComponent(file).path
        #expect(!expected.datagrams.isEmpty)

        let fromFile = try CaptureReader(path: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let fromBytes = try CaptureReader(bytes: bytes)
        for reader in [fromFile, fromBytes] {
            let got = try reader.readAll().map(ExpectedDatagram.init)
            #expect(got == expected.datagrams)
            #expect(reader.framesRead == expected.frames)
            #expect(Dictionary(uniqueKeysWithValues: reader.skipped.map { ($0.key.rawValue, $0.value) })
                    == expected.skipped)
            #expect(try reader.next() == nil)
        }
    }

    @Test("formats are detected from the magic")
    func formats() async throws {
        let fixtures = try await Fixtures.load()
        func format(_ file: String) throws -> CaptureReader.Format {
            try CaptureReader(path: fixtures.directory.appendingPathComponent(file).path).format
        }
        #expect(try format("eth_ipv4.pcap") == .pcap(bigEndian: false, nanosecond: false))
        #expect(try format("be_us.pcap") == .pcap(bigEndian: true, nanosecond: false))
        #expect(try format("ns.pcap") == .pcap(bigEndian: false, nanosecond: true))
        #expect(try format("ns_be.pcap") == .pcap(bigEndian: true, nanosecond: true))
        #expect(try format("vlan.pcapng") == .pcapng)
    }
}
