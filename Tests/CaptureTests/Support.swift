import Foundation
@testable import Capture
import TestSupport

/// A test precondition that failed, with a message saying what to do about it.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A fresh directory for one test's files.
func temporaryDirectoryURL() -> URL {
    URL(fileURLWithPath: makeTemporaryDirectory("capture-tests"), isDirectory: true)
}

/// python3 with scapy, the independent oracle. Missing either is a test failure that says how
/// to install it, never a silent skip.
enum Scapy {
    static let installHint = "install scapy with `python3 -m pip install scapy` "
        + "(add --break-system-packages if pip refuses an externally managed environment)"

    /// The path of a python3 on PATH that can import scapy (checked once per run).
    static func python() async throws -> String { try await OncePerRun.scapyPython.value }

    static func locate() async throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let candidates = path.split(separator: ":").map { "\($0)/python3" }
        guard let python = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestFailure("python3 is not on PATH (\(path)); install Python 3, then \(installHint)")
        }
        let check: ToolResult
        do { check = try await runTool(python, ["-c", "import scapy.all"]) } catch {
            throw TestFailure("cannot run \(python): \(error)")
        }
        guard check.status == 0 else { throw TestFailure("\(python) cannot import scapy: \(installHint)\n\(check.stderr)") }
        return python
    }

    /// Runs python code with scapy; a non-zero exit is a failure with its stderr.
    static func run(_ arguments: [String]) async throws -> String {
        let python = try await python()
        let result = try await runTool(python, arguments)
        guard result.status == 0 else {
            throw TestFailure("python3 \(arguments.first ?? "") exited \(result.status):\n\(result.stderr)")
        }
        return result.stdout
    }
}

/// Work done once per test run, shared by every test that awaits it.
enum OncePerRun {
    static let scapyPython = Task { try await Scapy.locate() }
    static let fixtures = Task { try await Fixtures.generate() }
}

/// Lowercase hex.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

/// Reads everything, returning the datagrams and the reader (for its counters).
func readAll(_ bytes: [UInt8]) throws(CaptureError) -> ([CapturedDatagram], CaptureReader) {
    let reader = try CaptureReader(bytes: bytes)
    return (try reader.readAll(), reader)
}

// MARK: - Hand-built captures, independent of PcapWriter

extension Array where Element == UInt8 {
    mutating func put16(_ value: UInt16, bigEndian: Bool = true) {
        let bytes = [UInt8(value >> 8), UInt8(value & 0xFF)]
        append(contentsOf: bigEndian ? bytes : bytes.reversed())
    }

    mutating func put32(_ value: UInt32, bigEndian: Bool = true) {
        let bytes = [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
        append(contentsOf: bigEndian ? bytes : bytes.reversed())
    }
}

enum Build {
    static let v4a: [UInt8] = [192, 0, 2, 1]
    static let v4b: [UInt8] = [192, 0, 2, 2]
    static let v6a: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
    static let v6b: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]

    static func pcapHeader(linkType: UInt32, bigEndian: Bool = false, nano: Bool = false,
                           snaplen: UInt32 = 65535) -> [UInt8] {
        var out: [UInt8] = []
        out.put32(nano ? 0xA1B2_3C4D : 0xA1B2_C3D4, bigEndian: bigEndian)
        out.put16(2, bigEndian: bigEndian)
        out.put16(4, bigEndian: bigEndian)
        out.put32(0, bigEndian: bigEndian)
        out.put32(0, bigEndian: bigEndian)
        out.put32(snaplen, bigEndian: bigEndian)
        out.put32(linkType, bigEndian: bigEndian)
        return out
    }

    /// A record; `caplen` cuts the frame (default: all of it), `origLen` defaults to the frame.
    static func record(_ frame: [UInt8], seconds: UInt32 = 1_000, fraction: UInt32 = 0,
                       caplen: Int? = nil, bigEndian: Bool = false) -> [UInt8] {
        let captured = Array(frame.prefix(caplen ?? frame.count))
        var out: [UInt8] = []
        out.put32(seconds, bigEndian: bigEndian)
        out.put32(fraction, bigEndian: bigEndian)
        out.put32(UInt32(captured.count), bigEndian: bigEndian)
        out.put32(UInt32(frame.count), bigEndian: bigEndian)
        return out + captured
    }

    static func pcap(linkType: UInt32, _ frames: [[UInt8]], bigEndian: Bool = false) -> [UInt8] {
        frames.enumerated().reduce(pcapHeader(linkType: linkType, bigEndian: bigEndian)) {
            $0 + record($1.element, seconds: 1_000 + UInt32($1.offset), bigEndian: bigEndian)
        }
    }

    static func udp(_ sport: UInt16, _ dport: UInt16, _ payload: [UInt8], length: Int? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.put16(sport)
        out.put16(dport)
        out.put16(UInt16(length ?? (8 + payload.count)))
        out.put16(0)
        return out + payload
    }

    /// IPv4 with header checksum 0 (the reader does not check it).
    static func ipv4(_ payload: [UInt8], proto: UInt8 = 17, src: [UInt8] = v4a, dst: [UInt8] = v4b,
                     options: [UInt8] = [], flagsOffset: UInt16 = 0, totalLength: Int? = nil,
                     versionIHL: UInt8? = nil) -> [UInt8] {
        let headerLength = 20 + options.count
        var out: [UInt8] = [versionIHL ?? (0x40 | UInt8(headerLength / 4)), 0]
        out.put16(UInt16(totalLength ?? (headerLength + payload.count)))
        out.put16(0x1234)
        out.put16(flagsOffset)
        out += [64, proto, 0, 0]
        return out + src + dst + options + payload
    }

    static func ipv6(_ payload: [UInt8], next: UInt8 = 17, src: [UInt8] = v6a, dst: [UInt8] = v6b,
                     payloadLength: Int? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.put32(0x6000_0000)
        out.put16(UInt16(payloadLength ?? payload.count))
        out += [next, 64]
        return out + src + dst + payload
    }

    /// An IPv6 extension header of the (len + 1) * 8 kind, zero-filled options.
    static func extensionHeader(next: UInt8, units: UInt8 = 0) -> [UInt8] {
        [next, units] + [UInt8](repeating: 0, count: Int(units) * 8 + 6)
    }

    static func ethernet(_ etherType: UInt16, _ payload: [UInt8], tags: [UInt16] = []) -> [UInt8] {
        var out: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]
        for (index, tpid) in tags.enumerated() {
            out.put16(tpid)
            out.put16(UInt16(100 + index))
        }
        out.put16(etherType)
        return out + payload
    }

    // pcapng

    static func block(_ type: UInt32, _ body: [UInt8], bigEndian: Bool = false, length: UInt32? = nil,
                      trailer: UInt32? = nil) -> [UInt8] {
        var padded = body
        while padded.count % 4 != 0 { padded.append(0) }
        let total = UInt32(12 + padded.count)
        var out: [UInt8] = []
        out.put32(type, bigEndian: bigEndian)
        out.put32(length ?? total, bigEndian: bigEndian)
        out += padded
        out.put32(trailer ?? length ?? total, bigEndian: bigEndian)
        return out
    }

    static func shb(bigEndian: Bool = false, major: UInt16 = 1) -> [UInt8] {
        var body: [UInt8] = []
        body.put32(0x1A2B_3C4D, bigEndian: bigEndian)
        body.put16(major, bigEndian: bigEndian)
        body.put16(0, bigEndian: bigEndian)
        body += [UInt8](repeating: 0xFF, count: 8)
        return block(0x0A0D_0D0A, body, bigEndian: bigEndian)
    }

    static func idb(linkType: UInt16, tsresol: UInt8? = nil, snaplen: UInt32 = 0, bigEndian: Bool = false) -> [UInt8] {
        var body: [UInt8] = []
        body.put16(linkType, bigEndian: bigEndian)
        body.put16(0, bigEndian: bigEndian)
        body.put32(snaplen, bigEndian: bigEndian)
        // An unrelated option first (if_name "x"), so option walking is exercised.
        body.put16(2, bigEndian: bigEndian)
        body.put16(1, bigEndian: bigEndian)
        body += [0x78, 0, 0, 0]
        if let tsresol {
            body.put16(9, bigEndian: bigEndian)
            body.put16(1, bigEndian: bigEndian)
            body += [tsresol, 0, 0, 0]
        }
        body.put32(0, bigEndian: bigEndian)
        return block(1, body, bigEndian: bigEndian)
    }

    static func epb(interface: UInt32 = 0, ticks: UInt64 = 0, _ frame: [UInt8], caplen: UInt32? = nil,
                    bigEndian: Bool = false) -> [UInt8] {
        var body: [UInt8] = []
        body.put32(interface, bigEndian: bigEndian)
        body.put32(UInt32(ticks >> 32), bigEndian: bigEndian)
        body.put32(UInt32(ticks & 0xFFFF_FFFF), bigEndian: bigEndian)
        body.put32(caplen ?? UInt32(frame.count), bigEndian: bigEndian)
        body.put32(UInt32(frame.count), bigEndian: bigEndian)
        return block(6, body + frame, bigEndian: bigEndian)
    }

    static func spb(_ frame: [UInt8], bigEndian: Bool = false) -> [UInt8] {
        var body: [UInt8] = []
        body.put32(UInt32(frame.count), bigEndian: bigEndian)
        return block(3, body + frame, bigEndian: bigEndian)
    }

    /// A UDP/IPv4 Ethernet frame with `payload`.
    static func ethUDP(_ payload: [UInt8], sport: UInt16 = 1000, dport: UInt16 = 2000) -> [UInt8] {
        ethernet(0x0800, ipv4(udp(sport, dport, payload)))
    }
}
