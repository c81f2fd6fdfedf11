import Testing
@testable import Capture

@Suite("pcapng")
struct PcapNGTests {
    @Test("an unknown block type in the middle is skipped by its length")
    func unknownBlock() throws {
        let bytes = Build.shb() + Build.idb(linkType: 1) + Build.epb(Build.ethUDP([1]))
            + Build.block(0x0000_0BAD, [UInt8](repeating: 0x0A, count: 37))  // custom block, odd body
            + Build.block(0x8000_1234, [])  // local-use type, empty
            + Build.epb(ticks: 2, Build.ethUDP([2]))
        let (datagrams, reader) = try readAll(bytes)
        #expect(datagrams.map(\.payload) == [[1], [2]])
        #expect(datagrams.map(\.frameNumber) == [1, 2])
        #expect(reader.framesRead == 2)
        #expect(reader.skipped.isEmpty)
    }

    @Test("a big-endian section header and blocks are read in that byte order")
    func bigEndianSection() throws {
        let ticks: UInt64 = 0x0000_0001_0000_0002  // crosses the high/low split
        let bytes = Build.shb(bigEndian: true) + Build.idb(linkType: 101, tsresol: 9, bigEndian: true)
            + Build.epb(ticks: ticks, Build.ipv4(Build.udp(3, 4, [9, 8])), bigEndian: true)
        let reader = try CaptureReader(bytes: bytes)
        #expect(reader.format == .pcapng)
        let datagram = try #require(try reader.next())
        #expect(datagram.payload == [9, 8])
        #expect(datagram.timestamp == CaptureTimestamp(seconds: 4, nanoseconds: 294_967_298))
        #expect(try reader.next() == nil)
    }

    @Test("a new section resets the interfaces and may switch byte order")
    func sections() throws {
        let bytes = Build.shb() + Build.idb(linkType: 1) + Build.idb(linkType: 101)
            + Build.epb(interface: 1, Build.ipv4(Build.udp(1, 1, [1])))
            + Build.epb(interface: 0, Build.ethUDP([2]))
            + Build.shb(bigEndian: true) + Build.idb(linkType: 101, bigEndian: true)
            + Build.epb(interface: 0, Build.ipv4(Build.udp(1, 1, [3])), bigEndian: true)
            + Build.epb(interface: 1, Build.ipv4(Build.udp(1, 1, [4])), bigEndian: true)  // gone with section 1
            + Build.shb() + Build.spb(Build.ethUDP([5]))  // no interface yet in section 3
        let (datagrams, reader) = try readAll(bytes)
        #expect(datagrams.map(\.payload) == [[1], [2], [3]])
        #expect(reader.framesRead == 5)
        #expect(reader.skipped == [.unknownInterface: 2])
    }

    @Test("if_tsresol: default µs, powers of ten and of two, finer than a nanosecond truncated", arguments: [
        (nil, 1_234_567_890_123, CaptureTimestamp(seconds: 1_234_567, nanoseconds: 890_123_000)),
        (3, 1_234_567, CaptureTimestamp(seconds: 1_234, nanoseconds: 567_000_000)),
        (9, 1_234_567_890_123, CaptureTimestamp(seconds: 1_234, nanoseconds: 567_890_123)),
        (12, 1_234_567_890_123, CaptureTimestamp(seconds: 1, nanoseconds: 234_567_890)),
        (0, 42, CaptureTimestamp(seconds: 42, nanoseconds: 0)),
        (0x80 | 10, 3 * 1024 + 512, CaptureTimestamp(seconds: 3, nanoseconds: 500_000_000)),
        (0x80 | 30, (7 << 30) + 1, CaptureTimestamp(seconds: 7, nanoseconds: 0)),  // 0.93 ns
        (0x80 | 30, (7 << 30) + 3, CaptureTimestamp(seconds: 7, nanoseconds: 2)),  // 2.79 ns
        (0x80 | 63, UInt64(1) << 62, CaptureTimestamp(seconds: 0, nanoseconds: 500_000_000)),
        (0x80 | 64, UInt64.max, CaptureTimestamp(seconds: 0, nanoseconds: 999_999_999)),
        (19, UInt64.max, CaptureTimestamp(seconds: 1, nanoseconds: 844_674_407)),
        (25, 10_000_000_000_000_000_000, CaptureTimestamp(seconds: 0, nanoseconds: 1_000)),  // 1e19 × 1e-25 s
    ] as [(UInt8?, UInt64, CaptureTimestamp)])
    func resolution(tsresol: UInt8?, ticks: UInt64, expected: CaptureTimestamp) throws {
        let bytes = Build.shb() + Build.idb(linkType: 1, tsresol: tsresol) + Build.epb(ticks: ticks, Build.ethUDP([1]))
        #expect(try readAll(bytes).0.map(\.timestamp) == [expected])
    }

    @Test("interfaces keep their own link type and resolution")
    func interfacesApart() throws {
        let bytes = Build.shb() + Build.idb(linkType: 1, tsresol: 3) + Build.idb(linkType: 0, tsresol: 0x80 | 1)
            + Build.idb(linkType: 113)
        var sll: [UInt8] = [0, 0, 0, 1, 0, 6] + [UInt8](repeating: 0, count: 8)
        sll.put16(0x0800)
        let all = bytes + Build.epb(interface: 2, ticks: 5, sll + Build.ipv4(Build.udp(1, 2, [2])))
            + Build.epb(interface: 1, ticks: 5, [2, 0, 0, 0] + Build.ipv4(Build.udp(1, 2, [1])))
            + Build.epb(interface: 0, ticks: 5, Build.ethUDP([0]))
        let (datagrams, _) = try readAll(all)
        #expect(datagrams.map(\.payload) == [[2], [1], [0]])
        #expect(datagrams.map(\.timestamp) == [
            CaptureTimestamp(seconds: 0, nanoseconds: 5_000),
            CaptureTimestamp(seconds: 2, nanoseconds: 500_000_000),
            CaptureTimestamp(seconds: 0, nanoseconds: 5_000_000),
        ])
    }

    @Test("Simple Packet Blocks use interface 0 with no timestamp; the obsolete Packet Block works")
    func simpleAndObsoleteBlocks() throws {
        let frame = Build.ethUDP([1, 2, 3])  // 45 bytes: the block pads to 48
        var packetBlock: [UInt8] = []
        packetBlock.put16(0, bigEndian: false)  // interface
        packetBlock.put16(0, bigEndian: false)  // drops
        packetBlock.put32(0, bigEndian: false)
        packetBlock.put32(2_000_000, bigEndian: false)
        packetBlock.put32(UInt32(frame.count), bigEndian: false)
        packetBlock.put32(UInt32(frame.count), bigEndian: false)
        let bytes = Build.shb() + Build.idb(linkType: 1) + Build.spb(frame) + Build.block(2, packetBlock + frame)
        let (datagrams, _) = try readAll(bytes)
        #expect(datagrams.map(\.payload) == [[1, 2, 3], [1, 2, 3]])
        #expect(datagrams.map(\.timestamp) == [CaptureTimestamp(seconds: 0, nanoseconds: 0),
                                               CaptureTimestamp(seconds: 2, nanoseconds: 0)])
        // The interface's snap length cuts an SPB's packet.
        let cut = Build.shb() + Build.idb(linkType: 1, snaplen: 40) + Build.spb(frame)
        #expect(try readAll(cut).1.skipped == [.truncated: 1])
    }

    @Test("an EPB naming an undescribed interface is counted, not thrown")
    func unknownInterface() throws {
        let bytes = Build.shb() + Build.idb(linkType: 1) + Build.epb(interface: 7, Build.ethUDP([1]))
            + Build.epb(Build.ethUDP([2]))
        let (datagrams, reader) = try readAll(bytes)
        #expect(datagrams.map(\.frameNumber) == [2])
        #expect(reader.skipped == [.unknownInterface: 1])
    }

    @Test("broken block lengths throw with the block's offset")
    func badLengths() throws {
        let head = Build.shb() + Build.idb(linkType: 1)
        let offset = head.count
        let epb = Build.epb(Build.ethUDP([1]))
        let total = UInt32(epb.count)

        func error(_ tail: [UInt8]) throws -> CaptureError? {
            let reader = try CaptureReader(bytes: head + tail)
            return #expect(throws: CaptureError.self) { try reader.readAll() }
        }
        func expectBadLength(_ tail: [UInt8], _ length: UInt32, _ words: String) throws {
            let got = try error(tail)
            guard case let .badBlockLength(at, value, reason)? = got else {
                Issue.record("expected badBlockLength, got \(String(describing: got))")
                return
            }
            #expect(at == offset && value == length)
            #expect(reason.contains(words), "\(reason)")
            #expect(got?.description.contains("offset \(offset)") == true)
        }
        var trailer = epb
        trailer[trailer.count - 4] ^= 0x04
        try expectBadLength(trailer, total, "trailing")
        var odd = epb
        odd[4] = UInt8(total + 1)
        try expectBadLength(odd, total + 1, "multiple of 4")
        var small = epb
        small[4] = 8
        try expectBadLength(small, 8, "at least 12")
        try expectBadLength(Build.block(6, [0, 0, 0, 0]), 16, "at least 32")
        try expectBadLength(Build.epb(Build.ethUDP([1]), caplen: 200), total, "captured length 200")
        try expectBadLength(Build.block(1, [1, 0]), 16, "interface description")

        #expect(try error(Array(epb.prefix(30))) == .truncatedBlock(offset: offset, needed: epb.count, available: 30))
        #expect(try error(Array(epb.prefix(5))) == .truncatedBlock(offset: offset, needed: 8, available: 5))
    }

    @Test("section header problems: short, bad byte-order magic, bad version")
    func sectionHeaderErrors() throws {
        let shb = Build.shb()
        #expect(throws: CaptureError.truncatedHeader(offset: 0, needed: 28, available: 20)) {
            try CaptureReader(bytes: Array(shb.prefix(20)))
        }
        #expect(throws: CaptureError.truncatedHeader(offset: 0, needed: 12, available: 9)) {
            try CaptureReader(bytes: Array(shb.prefix(9)))
        }
        var magic = shb
        magic[8] = 0x11
        let error = #expect(throws: CaptureError.self) { try CaptureReader(bytes: magic) }
        #expect(error == .unknownByteOrderMagic(0x113C_2B1A, offset: 8))
        #expect(throws: CaptureError.unsupportedVersion(major: 2, minor: 0, offset: 0)) {
            try CaptureReader(bytes: Build.shb(major: 2))
        }
        // A later section that is cut short is a truncated block, not a header.
        let later = Build.shb() + Build.idb(linkType: 1)
        let reader = try CaptureReader(bytes: later + Array(shb.prefix(20)))
        #expect(throws: CaptureError.truncatedBlock(offset: later.count, needed: 28, available: 20)) {
            try reader.readAll()
        }
    }
}
