import Testing
import TestSupport
@testable import Capture

@Suite("Mutated captures")
struct FuzzTests {
    /// A pcap exercising most paths: both families, VLANs, options, extension headers, junk.
    static func basePcap() throws -> [UInt8] {
        var frames = try sampleDatagrams(ipv6: false).map { try PcapWriter.frame($0, linkType: .ethernet) }
        frames += try sampleDatagrams(ipv6: true, count: 3).map { try PcapWriter.frame($0, linkType: .ethernet) }
        frames.append(Build.ethernet(0x0800, Build.ipv4(Build.udp(1, 2, [1, 2, 3]), options: [1, 1, 1, 0]), tags: [0x88A8, 0x8100]))
        frames.append(Build.ethernet(0x86DD, Build.ipv6(Build.extensionHeader(next: 51) + [17, 1] + [UInt8](repeating: 0, count: 10)
                                                        + Build.udp(3, 4, [5]), next: 0)))
        frames.append(Build.ethernet(0x0800, Build.ipv4(Build.udp(1, 2, [9]), flagsOffset: 0x2000)))
        return Build.pcap(linkType: 1, frames)
    }

    /// A pcapng with two sections, several interfaces and link types, SPB and unknown blocks.
    static func basePcapNG() throws -> [UInt8] {
        let datagrams = sampleDatagrams(ipv6: false, count: 4) + sampleDatagrams(ipv6: true, count: 4)
        var out = Build.shb() + Build.idb(linkType: 1, tsresol: 9) + Build.idb(linkType: 101, tsresol: 0x80 | 20)
        for (index, datagram) in datagrams.enumerated() {
            let link: PcapWriter.LinkType = index % 2 == 0 ? .ethernet : .raw
            out += Build.epb(interface: UInt32(index % 2), ticks: UInt64(index) << 31, try PcapWriter.frame(datagram, linkType: link))
            if index == 3 {
                out += Build.block(0x0000_0BAD, [1, 2, 3, 4, 5])
                out += Build.epb(interface: 1, Build.ipv4(Build.udp(1, 2, [1]), proto: 6))
                out += Build.epb(interface: 5, Build.ipv4(Build.udp(1, 2, [1])))
            }
        }
        out += Build.spb(try PcapWriter.frame(datagrams[0], linkType: .ethernet))
        out += Build.shb(bigEndian: true) + Build.idb(linkType: 0, bigEndian: true)
        out += Build.epb(ticks: 99, [30, 0, 0, 0] + (try PcapWriter.frame(datagrams[5], linkType: .raw)), bigEndian: true)
        return out
    }

    static func mutate(_ input: [UInt8], using random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        switch Int.random(in: 0..<6, using: &random) {
        case 0:  // truncate anywhere
            bytes.removeLast(Int.random(in: 1...bytes.count, using: &random))
        case 1:  // flip a few bits
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
            }
        case 2:  // overwrite bytes with random values
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
        case 3:  // a 32-bit field set to an extreme (length fields, magics)
            let at = Int.random(in: 0..<(bytes.count - 4), using: &random) & ~3
            let value: [UInt8] = [[0xFF, 0xFF, 0xFF, 0xFF], [0, 0, 0, 0], [0x0C, 0, 0, 0], [0, 0, 0, 0x0C], [0x7F, 0xFF, 0, 0]]
                .randomElement(using: &random) ?? []
            bytes.replaceSubrange(at..<(at + 4), with: value)
        case 4:  // delete a run of bytes
            let at = Int.random(in: 0..<bytes.count, using: &random)
            bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...40, using: &random)))
        default:  // insert junk
            let at = Int.random(in: 0...bytes.count, using: &random)
            bytes.insert(contentsOf: (0..<Int.random(in: 1...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }, at: at)
        }
        return bytes
    }

    @Test("2000 seeded mutations never crash: each throws CaptureError or returns datagrams",
          arguments: [("pcap", UInt64(0xC0FFEE)), ("pcapng", UInt64(0xBEEF))])
    func mutations(kind: String, seed: UInt64) throws {
        let base = kind == "pcap" ? try Self.basePcap() : try Self.basePcapNG()
        let (clean, cleanReader) = try readAll(base)
        #expect(clean.count >= 8 && cleanReader.skippedCount >= 1)

        var random = SplitMix64(seed: seed)
        var threw = 0, completed = 0, datagramsSeen = 0
        for _ in 0..<1_000 {
            let bytes = Self.mutate(base, using: &random)
            var count = 0
            do {
                let reader = try CaptureReader(bytes: bytes)
                while let datagram = try reader.next() {
                    count += 1
                    #expect(datagram.payload.count < bytes.count)
                    #expect(datagram.frameNumber == reader.framesRead)
                    if count > bytes.count { Issue.record("reader does not terminate"); break }
                }
                #expect(reader.framesRead == count + reader.skippedCount)
                completed += 1
            } catch {
                #expect(!error.description.isEmpty)
                threw += 1
            }
            datagramsSeen += count
        }
        #expect(threw + completed == 1_000)
        // The mutations must reach both outcomes, or they test nothing.
        #expect(threw > 50 && completed > 50, "threw \(threw), completed \(completed)")
        #expect(datagramsSeen > 1_000)
    }
}
