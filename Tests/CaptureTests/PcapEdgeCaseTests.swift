import Testing
import TestSupport
@testable import Capture

@Suite("Classic pcap and frame edge cases")
struct PcapEdgeCaseTests {
    @Test("an empty file or a short global header throws truncatedHeader")
    func truncatedHeader() {
        #expect(throws: CaptureError.truncatedHeader(offset: 0, needed: 4, available: 0)) {
            try CaptureReader(bytes: [])
        }
        let header = Build.pcapHeader(linkType: 1)
        #expect(throws: CaptureError.truncatedHeader(offset: 0, needed: 24, available: 10)) {
            try CaptureReader(bytes: Array(header.prefix(10)))
        }
        #expect(throws: CaptureError.truncatedHeader(offset: 0, needed: 24, available: 23)) {
            try CaptureReader(bytes: Array(header.prefix(23)))
        }
        #expect(throws: Never.self) { try CaptureReader(bytes: header) }
    }

    @Test("an unknown magic throws with the magic and offset in the message")
    func unknownMagic() throws {
        let bytes: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF] + [UInt8](repeating: 0, count: 40)
        let error = #expect(throws: CaptureError.self) { try CaptureReader(bytes: bytes) }
        #expect(error == .unknownMagic(0xDEAD_BEEF, offset: 0))
        let text = try #require(error?.description)
        #expect(text.contains("0xdeadbeef") && text.contains("offset 0"))
    }

    @Test("a record running past the end of the file throws truncatedRecord at its offset")
    func recordPastEnd() throws {
        let good = Build.ethUDP([1, 2, 3])
        let second = Build.record(Build.ethUDP([UInt8](repeating: 9, count: 100)))
        let bytes = Build.pcapHeader(linkType: 1) + Build.record(good) + Array(second.prefix(50))
        let reader = try CaptureReader(bytes: bytes)
        #expect(try reader.next()?.payload == [1, 2, 3])
        let offset = 24 + 16 + good.count
        let error = #expect(throws: CaptureError.self) { try reader.next() }
        #expect(error == .truncatedRecord(offset: offset, needed: second.count, available: 50))
        #expect(error?.description.contains("offset \(offset)") == true)
    }

    @Test("a partial record header at the end throws truncatedRecord")
    func partialRecordHeader() throws {
        let bytes = Build.pcapHeader(linkType: 1) + Build.record(Build.ethUDP([7])) + [1, 2, 3, 4, 5, 6, 7]
        let reader = try CaptureReader(bytes: bytes)
        #expect(try reader.next() != nil)
        #expect(throws: CaptureError.truncatedRecord(offset: bytes.count - 7, needed: 16, available: 7)) {
            try reader.next()
        }
    }

    @Test("a caplen over the limit throws badBlockLength, streaming or not")
    func hugeCaplen() throws {
        var record = Build.record(Build.ethUDP([1]))
        record.replaceSubrange(8..<12, with: [0xFF, 0xFF, 0xFF, 0x7F])
        let reader = try CaptureReader(bytes: Build.pcapHeader(linkType: 1) + record)
        let error = #expect(throws: CaptureError.self) { try reader.next() }
        guard case .badBlockLength(offset: 24, length: 0x7FFF_FFFF, reason: _)? = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
    }

    @Test("frames cut by the snap length are counted as truncated, not thrown")
    func snapLengthCut() throws {
        let frame = Build.ethUDP([UInt8](repeating: 5, count: 60))
        let bytes = Build.pcapHeader(linkType: 1, snaplen: 50) + Build.record(frame, caplen: 50)
            + Build.record(frame, caplen: 14 + 20 + 4) + Build.record(frame, caplen: 10) + Build.record(Build.ethUDP([4]))
        let (datagrams, reader) = try readAll(bytes)
        #expect(datagrams.map(\.payload) == [[4]])
        #expect(datagrams.first?.frameNumber == 4)
        #expect(reader.framesRead == 4)
        #expect(reader.skipped == [.truncated: 3])
    }

    @Test("UDP length fields outside 8…IP payload are counted as inconsistent")
    func udpLength() throws {
        let payload: [UInt8] = [1, 2, 3, 4]
        let frames = [
            Build.ethernet(0x0800, Build.ipv4(Build.udp(1, 2, payload, length: 13))),  // > IP payload (12)
            // The same with Ethernet padding after the IP packet: the IP length still bounds UDP.
            Build.ethernet(0x0800, Build.ipv4(Build.udp(1, 2, payload, length: 13))) + [UInt8](repeating: 0, count: 20),
            Build.ethernet(0x86DD, Build.ipv6(Build.udp(1, 2, payload, length: 13))) + [UInt8](repeating: 0, count: 20),
            Build.ethernet(0x0800, Build.ipv4(Build.udp(1, 2, payload, length: 7))),
            Build.ethernet(0x0800, Build.ipv4([0, 1, 0, 2, 0, 6])),  // IP payload shorter than a UDP header
            Build.ethernet(0x0800, Build.ipv4(Build.udp(1, 2, payload, length: 10))),  // shorter: allowed
        ]
        let (datagrams, reader) = try readAll(Build.pcap(linkType: 1, frames))
        #expect(datagrams.map(\.payload) == [[1, 2]])
        #expect(reader.skipped == [.udpLengthInconsistent: 5])
    }

    @Test("IPv4 options (IHL 6) are skipped over; Ethernet padding after the packet is ignored")
    func ipv4OptionsAndPadding() throws {
        let withOptions = Build.ethernet(0x0800, Build.ipv4(Build.udp(5, 6, [0xAB, 0xCD]), options: [1, 1, 1, 0]))
        #expect(withOptions[14] == 0x46)
        var padded = Build.ethernet(0x0800, Build.ipv4(Build.udp(7, 8, [0x42])))
        padded += [UInt8](repeating: 0xEE, count: 60 - padded.count)
        let (datagrams, reader) = try readAll(Build.pcap(linkType: 1, [withOptions, padded]))
        #expect(datagrams.map(\.payload) == [[0xAB, 0xCD], [0x42]])
        #expect(datagrams.map(\.sourcePort) == [5, 7])
        #expect(datagrams.first?.sourceAddress == "192.0.2.1")
        #expect(datagrams.first?.destinationAddress == "192.0.2.2")
        #expect(reader.skipped.isEmpty)
    }

    @Test("malformed IPv4 headers are counted as badIPHeader or truncated")
    func badIPv4() throws {
        let udp = Build.udp(1, 2, [UInt8](repeating: 3, count: 20))
        let frames = [
            Build.ethernet(0x0800, Build.ipv4(udp, versionIHL: 0x44)),  // IHL 4
            Build.ethernet(0x0800, Build.ipv4(udp, versionIHL: 0x55)),  // version 5
            Build.ethernet(0x0800, Build.ipv4(udp, totalLength: 19)),  // below the header
            Build.ethernet(0x0800, Build.ipv4(udp, totalLength: 80)),  // more than captured
            Build.ethernet(0x0800, Array(Build.ipv4(udp).prefix(19))),  // no room for a header
            Build.ethernet(0x0800, Build.ipv4(udp, options: [1, 1, 1, 1], versionIHL: 0x4F)),  // IHL past the frame
            Build.ethernet(0x86DD, Build.ipv4(udp)),  // IPv4 bytes under the IPv6 ethertype
        ]
        let (datagrams, reader) = try readAll(Build.pcap(linkType: 1, frames))
        #expect(datagrams.isEmpty)
        #expect(reader.skipped == [.badIPHeader: 4, .truncated: 3])
    }

    @Test("IPv4 fragments are counted, whatever their protocol; other protocols are nonUDP")
    func fragmentsAndProtocols() throws {
        let udp = Build.udp(1, 2, [1])
        let frames = [
            Build.ethernet(0x0800, Build.ipv4(udp, flagsOffset: 0x2000)),  // MF
            Build.ethernet(0x0800, Build.ipv4(udp, flagsOffset: 0x0001)),  // offset 8
            Build.ethernet(0x0800, Build.ipv4(udp, proto: 6, flagsOffset: 0x2000)),
            Build.ethernet(0x0800, Build.ipv4(udp, flagsOffset: 0x4000)),  // DF alone is fine
            Build.ethernet(0x0800, Build.ipv4(udp, proto: 6)),
            Build.ethernet(0x0806, [UInt8](repeating: 0, count: 28)),  // ARP
            Build.ethernet(0x0800, []).prefix(13).map { $0 },  // shorter than an Ethernet header
        ]
        let (datagrams, reader) = try readAll(Build.pcap(linkType: 1, frames))
        #expect(datagrams.map(\.frameNumber) == [4])
        #expect(reader.skipped == [.fragment: 3, .nonUDP: 1, .nonIP: 1, .truncated: 1])
    }

    @Test("IPv6 extension headers are walked; fragments, jumbograms and overruns are counted")
    func ipv6ExtensionHeaders() throws {
        let udp = Build.udp(9, 10, [6, 6])
        let ah: [UInt8] = [17, 4] + [UInt8](repeating: 0, count: 22)  // (4 + 2) * 4 = 24 bytes
        let chain = Build.extensionHeader(next: 43) + Build.extensionHeader(next: 60, units: 1)
            + Build.extensionHeader(next: 51) + ah + udp
        let frames = [
            Build.ipv6(chain, next: 0),
            Build.ipv6(udp),
            Build.ipv6(Build.extensionHeader(next: 44) + [17, 0, 0, 1, 0, 0, 0, 1] + udp, next: 60),
            Build.ipv6(udp, payloadLength: 0),
            Build.ipv6(Build.extensionHeader(next: 17, units: 3) + udp, next: 0, payloadLength: 16),  // ext past payload
            Build.ipv6(Build.extensionHeader(next: 59), next: 60),  // no next header
            Build.ipv6([128, 0, 0, 0], next: 58),  // ICMPv6
            Array(Build.ipv6(udp).prefix(39)),
            Build.ipv6(udp, payloadLength: 20),  // says more than captured
        ]
        let (datagrams, reader) = try readAll(Build.pcap(linkType: 101, frames))
        #expect(datagrams.map(\.payload) == [[6, 6], [6, 6]])
        #expect(datagrams.map(\.sourceAddress) == ["2001:db8::1", "2001:db8::1"])
        #expect(datagrams.map(\.destinationPort) == [10, 10])
        #expect(reader.skipped == [.fragment: 1, .jumbogram: 1, .badIPHeader: 1, .nonUDP: 2, .truncated: 2])
    }

    @Test("BSD loopback: AF_INET and AF_INET6 (24, 28, 30) in either byte order")
    func nullLink() throws {
        func family(_ value: UInt32, bigEndian: Bool) -> [UInt8] {
            var out: [UInt8] = []
            out.put32(value, bigEndian: bigEndian)
            return out
        }
        let v4 = Build.ipv4(Build.udp(1, 2, [4]))
        let v6 = Build.ipv6(Build.udp(1, 2, [6]))
        let frames = [
            family(30, bigEndian: false) + v6, family(24, bigEndian: true) + v6, family(28, bigEndian: false) + v6,
            family(2, bigEndian: false) + v4, family(2, bigEndian: true) + v4,
            family(7, bigEndian: false) + v4, [2, 0],
        ]
        let (datagrams, reader) = try readAll(Build.pcap(linkType: 0, frames))
        #expect(datagrams.map(\.payload) == [[6], [6], [6], [4], [4]])
        #expect(reader.skipped == [.nonIP: 1, .truncated: 1])
        // LINKTYPE_LOOP is always network byte order.
        let (loop, _) = try readAll(Build.pcap(linkType: 108, [family(30, bigEndian: true) + v6]))
        #expect(loop.map(\.payload) == [[6]])
    }

    @Test("raw IP under link types 12, 14, 101, 228 and 229; Linux SLL and SLL2; unknown link types")
    func otherLinkTypes() throws {
        let v4 = Build.ipv4(Build.udp(1, 2, [4]))
        let v6 = Build.ipv6(Build.udp(1, 2, [6]))
        for linkType: UInt32 in [12, 14, 101] {
            let (datagrams, _) = try readAll(Build.pcap(linkType: linkType, [v4, v6, [0x50, 0, 0]]))
            #expect(datagrams.map(\.payload) == [[4], [6]], "link type \(linkType)")
        }
        #expect(try readAll(Build.pcap(linkType: 228, [v4])).0.map(\.payload) == [[4]])
        #expect(try readAll(Build.pcap(linkType: 229, [v6])).0.map(\.payload) == [[6]])

        var sll: [UInt8] = [0, 0, 0, 1, 0, 6] + [UInt8](repeating: 0xA, count: 8)
        sll.put16(0x86DD)
        var sll2: [UInt8] = []
        sll2.put16(0x0800)
        sll2 += [0, 0, 0, 0, 0, 3, 0, 1, 0, 6] + [UInt8](repeating: 0xA, count: 8)
        #expect(try readAll(Build.pcap(linkType: 113, [sll + v6])).0.map(\.payload) == [[6]])
        #expect(try readAll(Build.pcap(linkType: 276, [sll2 + v4])).0.map(\.payload) == [[4]])

        let (none, reader) = try readAll(Build.pcap(linkType: 147, [v4, v6]))
        #expect(none.isEmpty)
        #expect(reader.skipped == [.unsupportedLinkType: 2])
    }

    @Test("stacked VLAN tags (802.1ad, 802.1Q, 0x9100) are walked")
    func vlanTags() throws {
        let udp = Build.ipv4(Build.udp(1, 2, [0x77]))
        let frames = [
            Build.ethernet(0x0800, udp, tags: [0x8100]),
            Build.ethernet(0x0800, udp, tags: [0x88A8, 0x8100]),
            Build.ethernet(0x0800, udp, tags: [0x9100, 0x88A8, 0x8100]),
            Array(Build.ethernet(0x0800, udp, tags: [0x8100, 0x8100]).prefix(17)),
        ]
        let (datagrams, reader) = try readAll(Build.pcap(linkType: 1, frames))
        #expect(datagrams.map(\.payload) == [[0x77], [0x77], [0x77]])
        #expect(reader.skipped == [.truncated: 1])
    }

    @Test("timestamps: µs and ns, both byte orders, fractions of a second or more carried")
    func timestamps() throws {
        let frame = Build.ethUDP([1])
        for bigEndian in [false, true] {
            let micro = Build.pcapHeader(linkType: 1, bigEndian: bigEndian)
                + Build.record(frame, seconds: 4_000_000_000, fraction: 999_999, bigEndian: bigEndian)
                + Build.record(frame, seconds: 5, fraction: 2_500_000, bigEndian: bigEndian)
            #expect(try readAll(micro).0.map(\.timestamp) == [
                CaptureTimestamp(seconds: 4_000_000_000, nanoseconds: 999_999_000),
                CaptureTimestamp(seconds: 7, nanoseconds: 500_000_000),
            ])
            let nano = Build.pcapHeader(linkType: 1, bigEndian: bigEndian, nano: true)
                + Build.record(frame, seconds: 17, fraction: 999_999_999, bigEndian: bigEndian)
            let reader = try CaptureReader(bytes: nano)
            #expect(reader.format == .pcap(bigEndian: bigEndian, nanosecond: true))
            #expect(try reader.next()?.timestamp == CaptureTimestamp(seconds: 17, nanoseconds: 999_999_999))
        }
    }

    @Test("the FCS bits above the link type in the global header are ignored")
    func fcsBits() throws {
        var bytes = Build.pcap(linkType: 1, [Build.ethUDP([3])])
        bytes[23] = 0x14  // F bit and an FCS length in the top bits (little-endian header)
        #expect(try readAll(bytes).0.map(\.payload) == [[3]])
    }

    @Test("a file that cannot be opened throws .io naming the path")
    func missingFile() {
        let error = #expect(throws: CaptureError.self) { try CaptureReader(path: "/nonexistent/capture.pcap") }
        guard case let .io(operation, path, code, _)? = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
        #expect(operation == "fopen" && path == "/nonexistent/capture.pcap" && code != 0)
        #expect(error?.description.contains("/nonexistent/capture.pcap") == true)
    }
}

@Suite("Address text")
struct AddressTextTests {
    @Test("RFC 5952 forms", arguments: [
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("1:0:0:0:0:0:0:0", "1::"),
        ("fe80:0:0:0:a:b:c:d", "fe80::a:b:c:d"),
        ("0:0:0:0:0:ffff:c000:0201", "::ffff:192.0.2.1"),
        ("ABCD:EF01:2345:6789:ABCD:EF01:2345:6789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789"),
    ])
    func rfc5952(input: String, canonical: String) throws {
        let bytes = try #require(AddressText.parse(input))
        #expect(AddressText.ipv6(bytes) == canonical)
    }

    @Test("agrees with inet_ntop on random addresses with many zero groups")
    func matchesInetNtop() throws {
        var random = SplitMix64(seed: 5952)
        for _ in 0..<5_000 {
            let groups = (0..<8).map { _ in Bool.random(using: &random) ? UInt16(0) : UInt16.random(in: 0...0xFFFF, using: &random) }
            // glibc prints ::a.b.c.d for the deprecated IPv4-compatible form; RFC 5952 does not.
            if groups[0..<6].allSatisfy({ $0 == 0 }) && groups[6] != 0 { continue }
            var bytes: [UInt8] = []
            for group in groups { bytes.put16(group) }
            #expect(AddressText.ipv6(bytes) == inetNtop6(bytes))
        }
        #expect(AddressText.ipv4([0, 255, 10, 1]) == "0.255.10.1")
        #expect(AddressText.parse("1.2.3") == nil && AddressText.parse("::g") == nil)
    }
}

import Glibc

private func inetNtop6(_ bytes: [UInt8]) -> String {
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    _ = bytes.withUnsafeBytes { source in
        inet_ntop(AF_INET6, source.baseAddress, &buffer, socklen_t(buffer.count))
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
