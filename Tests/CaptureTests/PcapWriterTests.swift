import Foundation
import Testing
@testable import Capture

/// Datagrams the writer can reproduce exactly: microsecond timestamps, frame numbers 1…n.
func sampleDatagrams(ipv6: Bool, count: Int = 6) -> [CapturedDatagram] {
    let pairs = ipv6 ? [("2001:db8::1", "2001:db8:0:1::2"), ("fe80::1:2", "ff02::fb"), ("::1", "::ffff:192.0.2.9")]
                     : [("10.0.0.1", "10.0.0.2"), ("192.0.2.200", "239.255.0.1"), ("127.0.0.1", "127.0.0.1")]
    let sizes = [0, 1, 7, 160, 1_200, 8_000]
    return (0..<count).map { index in
        let (source, destination) = pairs[index % pairs.count]
        let size = sizes[index % sizes.count]
        return CapturedDatagram(
            timestamp: CaptureTimestamp(seconds: 1_700_000_000 + Int64(index), nanoseconds: UInt32(index * 123_457 % 1_000) * 1_000_000),
            sourceAddress: source, sourcePort: UInt16(40_000 + index),
            destinationAddress: destination, destinationPort: UInt16(5_004 + index),
            payload: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) },
            frameNumber: index + 1)
    }
}

/// scapy's view of a written file, one line per packet.
struct ScapyPacket: Decodable, Equatable {
    var version: Int
    var src: String
    var dst: String
    var sport: UInt16
    var dport: UInt16
    var payload: String
    var hop: Int
    var ipChecksumValid: Bool
    var udpChecksum: Int
    var udpChecksumValid: Bool
    var usec: Int
}

/// Reads a pcap with scapy; checksums are verified by rebuilding each packet with the checksum
/// field deleted and comparing to what was written.
private let scapyDump = """
import json, sys
from scapy.all import rdpcap, IP, IPv6, UDP
for p in rdpcap(sys.argv[1]):
    if IP in p:
        ip = p[IP]
        rebuilt = ip.copy(); del rebuilt.chksum
        ip_ok = IP(bytes(rebuilt)).chksum == ip.chksum
        udp = ip[UDP]; udp_ok = udp.chksum == 0
        version, hop = 4, ip.ttl
        assert ip.proto == 17 and ip.len == len(bytes(ip)) and ip.ihl == 5
    else:
        ip = p[IPv6]
        udp = ip[UDP]
        rebuilt = ip.copy(); del rebuilt[UDP].chksum
        udp_ok = IPv6(bytes(rebuilt))[UDP].chksum == udp.chksum
        ip_ok, version, hop = True, 6, ip.hlim
        assert ip.nh == 17 and ip.plen == len(bytes(udp))
    assert udp.len == len(bytes(udp))
    print(json.dumps(dict(version=version, src=ip.src, dst=ip.dst, sport=udp.sport, dport=udp.dport,
                          payload=bytes(udp.payload).hex(), hop=hop, ipChecksumValid=ip_ok,
                          udpChecksum=udp.chksum, udpChecksumValid=udp_ok,
                          usec=int(round((p.time - int(p.time)) * 1000000)))))
"""

private func scapyRead(_ path: String) async throws -> [ScapyPacket] {
    try await Scapy.run(["-c", scapyDump, path]).split(separator: "\n").map {
        try JSONDecoder().decode(ScapyPacket.self, from: Data($0.utf8))
    }
}

@Suite("Pcap writer")
struct PcapWriterTests {
    @Test("encode then read gives back the datagrams", arguments: PcapWriter.LinkType.allCases, [false, true])
    func roundTrip(linkType: PcapWriter.LinkType, ipv6: Bool) throws {
        let input = sampleDatagrams(ipv6: ipv6)
        let bytes = try PcapWriter.encode(input, linkType: linkType)
        let (output, reader) = try readAll(bytes)
        #expect(output == input)
        #expect(reader.framesRead == input.count)
        #expect(reader.skipped.isEmpty)
        #expect(reader.format == .pcap(bigEndian: false, nanosecond: false))
    }

    @Test("the file writer produces the same bytes as encode, and closes cleanly")
    func fileWriter() throws {
        let directory = temporaryDirectoryURL()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("out.pcap").path
        let input = sampleDatagrams(ipv6: false) + sampleDatagrams(ipv6: true).map {
            var datagram = $0
            datagram.frameNumber += 6
            return datagram
        }
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        for datagram in input { try writer.write(datagram) }
        #expect(writer.recordsWritten == input.count)
        try writer.close()
        try writer.close()
        #expect(throws: CaptureError.self) { try writer.write(input[0]) }
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(written == (try PcapWriter.encode(input, linkType: .ethernet)))
        #expect(try CaptureReader(path: path).readAll() == input)
        let early = try CaptureReader(path: path)
        #expect(try early.next() == input[0])
        early.close()
        #expect(try early.next() == nil)
    }

    @Test("scapy reads written files back with valid IPv4 header and IPv6 UDP checksums",
          arguments: PcapWriter.LinkType.allCases)
    func scapyAgrees(linkType: PcapWriter.LinkType) async throws {
        let directory = temporaryDirectoryURL()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = sampleDatagrams(ipv6: false) + sampleDatagrams(ipv6: true)
        let path = directory.appendingPathComponent("w.pcap").path
        try Data(PcapWriter.encode(input, linkType: linkType)).write(to: URL(fileURLWithPath: path))
        let packets = try await scapyRead(path)
        try #require(packets.count == input.count)
        for (packet, datagram) in zip(packets, input) {
            let ipv6 = datagram.sourceAddress.contains(":")
            #expect(packet.version == (ipv6 ? 6 : 4))
            #expect(packet.src == datagram.sourceAddress)
            #expect(packet.dst == datagram.destinationAddress)
            #expect(packet.sport == datagram.sourcePort)
            #expect(packet.dport == datagram.destinationPort)
            #expect(packet.payload == hex(datagram.payload))
            #expect(packet.hop == 64)
            #expect(packet.usec == Int(datagram.timestamp.nanoseconds / 1000))
            #expect(packet.ipChecksumValid, "IPv4 header checksum of \(datagram.sourceAddress)")
            #expect(packet.udpChecksumValid, "UDP checksum of \(datagram.sourceAddress)")
            if ipv6 { #expect(packet.udpChecksum != 0) } else { #expect(packet.udpChecksum == 0) }
        }
    }

    @Test("the scapy checksum check catches a corrupted checksum (the oracle has teeth)")
    func scapyCatchesBadChecksums() async throws {
        let directory = temporaryDirectoryURL()
        defer { try? FileManager.default.removeItem(at: directory) }
        let v4 = sampleDatagrams(ipv6: false, count: 1)[0], v6 = sampleDatagrams(ipv6: true, count: 2)[1]
        var bytes = try PcapWriter.encode([v4, v6], linkType: .raw)
        let first = 24 + 16  // first record's IPv4 header
        bytes[first + 10] ^= 0x01
        let second = first + 20 + 8 + v4.payload.count + 16  // second record's IPv6 header
        bytes[second + 40 + 6] ^= 0x80
        let path = directory.appendingPathComponent("bad.pcap").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let packets = try await scapyRead(path)
        try #require(packets.count == 2)
        #expect(!packets[0].ipChecksumValid)
        #expect(!packets[1].udpChecksumValid)
    }

    @Test("the IPv4 header checksum and IPv6 UDP checksum sum to 0xffff with their data")
    func checksumsSelfConsistent() throws {
        for datagram in sampleDatagrams(ipv6: false) {
            let frame = try PcapWriter.frame(datagram, linkType: .raw)
            #expect(PcapWriter.onesComplementSum(Array(frame[0..<20]), initial: 0) == 0xFFFF)
        }
        for datagram in sampleDatagrams(ipv6: true) {
            let frame = try PcapWriter.frame(datagram, linkType: .raw)
            var pseudo = Array(frame[8..<40])
            pseudo.put32(UInt32(frame.count - 40))
            pseudo.put32(17)
            let sum = PcapWriter.onesComplementSum(Array(frame[40...]),
                                                   initial: PcapWriter.onesComplementSum(pseudo, initial: 0))
            #expect(sum == 0xFFFF)
        }
    }

    @Test("refuses datagrams it cannot encode")
    func invalid() {
        let good = sampleDatagrams(ipv6: false, count: 1)[0]
        var badAddress = good
        badAddress.sourceAddress = "10.0.0.256"
        var mixed = good
        mixed.destinationAddress = "::1"
        var tooBig = good
        tooBig.payload = [UInt8](repeating: 0, count: 65_508)
        var late = good
        late.timestamp.seconds = Int64(UInt32.max) + 1
        for datagram in [badAddress, mixed, tooBig, late] {
            #expect(throws: CaptureError.self) { try PcapWriter.encode([datagram]) }
        }
        var justFits = good
        justFits.payload = [UInt8](repeating: 0, count: 65_507)
        #expect(throws: Never.self) { try PcapWriter.encode([justFits]) }
        #expect(throws: CaptureError.self) {
            try PcapWriter(path: "/nonexistent-directory/x.pcap")
        }
    }

    @Test("large files stream through the reader in chunks (pcap and pcapng)")
    func streaming() throws {
        let directory = temporaryDirectoryURL()
        defer { try? FileManager.default.removeItem(at: directory) }
        // ~4.5 MB: several 1 MiB chunks, records straddling every chunk boundary.
        let input = (0..<3_000).map { index in
            CapturedDatagram(timestamp: CaptureTimestamp(seconds: Int64(index), nanoseconds: 1_000),
                             sourceAddress: index % 2 == 0 ? "10.0.0.1" : "2001:db8::1", sourcePort: 1,
                             destinationAddress: index % 2 == 0 ? "10.0.0.2" : "2001:db8::2", destinationPort: 2,
                             payload: [UInt8](repeating: UInt8(index & 0xFF), count: 1_000 + index % 517),
                             frameNumber: index + 1)
        }
        let pcapPath = directory.appendingPathComponent("big.pcap").path
        let writer = try PcapWriter(path: pcapPath, linkType: .ethernet)
        for datagram in input { try writer.write(datagram) }
        try writer.close()
        let reader = try CaptureReader(path: pcapPath)
        #expect(try reader.readAll() == input)

        var ng = Build.shb() + Build.idb(linkType: 101, tsresol: 9)
        for datagram in input {
            let ticks = UInt64(datagram.timestamp.seconds) * 1_000_000_000 + UInt64(datagram.timestamp.nanoseconds)
            ng += Build.epb(ticks: ticks, try PcapWriter.frame(datagram, linkType: .raw))
        }
        let ngPath = directory.appendingPathComponent("big.pcapng").path
        try Data(ng).write(to: URL(fileURLWithPath: ngPath))
        #expect(try CaptureReader(path: ngPath).readAll() == input)
    }
}
