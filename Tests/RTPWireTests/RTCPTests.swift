import Testing
import TestSupport
import RTPWire

@Suite("RTCP")
struct RTCPTests {
    /// RR with one block, SDES with a CNAME, BYE with a reason: written out by hand from RFC 3550 §6.4.2–§6.6.
    static let handWritten = hex("""
        81c90007 11111111 22222222 40fffffe 00010005 00000010 12345678 00000100
        81ca0003 11111111 01026162 00000000
        81cb0002 11111111 03627965
        """)

    /// One of every packet kind, with padding, profile extensions and odd terminators.
    static func everyKind() throws -> RTCPCompoundPacket {
        let sr = RTCPSenderReport(
            ssrc: 0xCAFE_BABE, ntpTimestamp: 0xE8FE_6F80_1234_5678, rtpTimestamp: 960_000, packetCount: 1000, octetCount: 160_000,
            reportBlocks: [
                RTCPReportBlock(ssrc: 1, fractionLost: 0x80, cumulativeLost: -5, extendedHighestSequence: 0x0001_FFFF,
                                jitter: 12, lastSR: 0x6F80_1234, delaySinceLastSR: 0x0001_8000),
                RTCPReportBlock(ssrc: 2, cumulativeLost: 0x7F_FFFF),
            ],
            profileExtension: hex("0a0b0c0d"))
        let rr = RTCPReceiverReport(ssrc: 0xCAFE_BABE)
        let sdes = RTCPSourceDescription(chunks: [
            .init(ssrc: 0xCAFE_BABE, items: [.init(type: RTCPSourceDescription.Item.cname, text: "rec@percrec"),
                                               .init(type: RTCPSourceDescription.Item.tool, text: "percrec")]),
            .init(ssrc: 7, items: []),
        ])
        let bye = RTCPGoodbye(ssrcs: [0xCAFE_BABE, 7], reason: Array("done".utf8))
        let app = RTCPApplication(subtype: 31, ssrc: 0xCAFE_BABE, name: 0x5045_5243, data: hex("00010203"))
        let feedback = try RTCPOpaque(packetType: 206, count: 1, body: hex("cafebabe 00000007"), padding: hex("aabbcc04"))
        return RTCPCompoundPacket(packets: [.senderReport(sr), .receiverReport(rr), .sourceDescription(sdes),
                                            .goodbye(bye), .application(app), .unknown(feedback)])
    }

    @Test("parses a hand-written RR + SDES + BYE compound and writes it back unchanged")
    func handWrittenCompound() throws {
        let compound = try RTCPCompoundPacket(parsing: Self.handWritten)
        #expect(compound.packets == [
            .receiverReport(RTCPReceiverReport(ssrc: 0x1111_1111, reportBlocks: [
                RTCPReportBlock(ssrc: 0x2222_2222, fractionLost: 0x40, cumulativeLost: -2, extendedHighestSequence: 0x0001_0005,
                                jitter: 0x10, lastSR: 0x1234_5678, delaySinceLastSR: 0x100),
            ])),
            .sourceDescription(RTCPSourceDescription(chunks: [
                .init(ssrc: 0x1111_1111, items: [.init(type: 1, text: "ab")], terminatorLength: 4),
            ])),
            .goodbye(RTCPGoodbye(ssrcs: [0x1111_1111], reason: Array("bye".utf8), reasonPadding: 0)),
        ])
        #expect(compound.serialized() == Self.handWritten)
    }

    @Test("builds the same bytes a person writes from RFC 3550")
    func buildsHandWritten() throws {
        let compound = RTCPCompoundPacket(packets: [
            .receiverReport(RTCPReceiverReport(ssrc: 0x1111_1111, reportBlocks: [
                RTCPReportBlock(ssrc: 0x2222_2222, fractionLost: 0x40, cumulativeLost: -2, extendedHighestSequence: 0x0001_0005,
                                jitter: 0x10, lastSR: 0x1234_5678, delaySinceLastSR: 0x100),
            ])),
            .sourceDescription(RTCPSourceDescription(chunks: [.init(ssrc: 0x1111_1111, items: [.init(type: 1, text: "ab")])])),
            .goodbye(RTCPGoodbye(ssrcs: [0x1111_1111], reason: Array("bye".utf8))),
        ])
        #expect(compound.serialized() == Self.handWritten)
        #expect(compound.serializedSize == Self.handWritten.count)
    }

    @Test("round-trips SR, RR, SDES, BYE, APP and an unknown type in one compound")
    func everyKindRoundTrip() throws {
        let compound = try Self.everyKind()
        let bytes = compound.serialized()
        #expect(bytes.count == compound.serializedSize)
        #expect(bytes.count % 4 == 0)
        let parsed = try RTCPCompoundPacket(parsing: bytes)
        #expect(parsed == compound)
        #expect(parsed.serialized() == bytes)
        #expect(parsed.packets.map(\.packetType) == [200, 201, 202, 203, 204, 206])
        #expect(try RTCPCompoundPacket(parsing: bytes[...]) == compound)
    }

    @Test("parses the RFC 7714 §17 sender report once its length field matches its 52 bytes")
    func rfc7714SenderReport() throws {
        let compound = try RTCPCompoundPacket(parsing: Vectors.rfc7714RTCPConsistent)
        #expect(compound.packets.count == 1)
        guard case let .senderReport(sr) = try #require(compound.packets.first) else {
            Issue.record("expected a sender report, got \(compound.packets)")
            return
        }
        #expect(sr.ssrc == 0x4D61_7273)
        #expect(sr.ntpTimestamp == 0x4E54_5031_4E54_5032)
        #expect(sr.rtpTimestamp == 0x5254_5020)
        #expect(sr.packetCount == 0x42A)
        #expect(sr.octetCount == 0xE930)
        #expect(sr.reportBlocks == [RTCPReportBlock(
            ssrc: 0x4C75_6E61, fractionLost: 0xDE, cumulativeLost: 0xAD_BEEF - 0x100_0000, extendedHighestSequence: 0xDEAD_BEEF,
            jitter: 0xDEAD_BEEF, lastSR: 0xDEAD_BEEF, delaySinceLastSR: 0xDEAD_BEEF)])
        #expect(sr.profileExtension.isEmpty)
        #expect(compound.serialized() == Vectors.rfc7714RTCPConsistent)
    }

    @Test("rejects the RFC 7714 §17 packet as printed: its length field claims 4 bytes more than it has")
    func rfc7714AsPrinted() {
        #expect(throws: RTPParseError.truncated(field: .rtcpBody, needed: 52, available: 48)) {
            try RTCPCompoundPacket(parsing: Vectors.rfc7714RTCPAsPrinted)
        }
    }

    @Test("keeps each packet's padding verbatim")
    func perPacketPadding() throws {
        // RR with 4 padding bytes (filler a1 a2 a3), then an APP with 8 padding bytes.
        let bytes = hex("a0c90002 11111111 a1a2a304  a4cc0005 11111111 54455354 01010101 00000000 00000008")
        let compound = try RTCPCompoundPacket(parsing: bytes)
        #expect(compound.packets.map(\.padding) == [hex("a1a2a304"), hex("0000000000000008")])
        guard case let .application(app) = compound.packets[1] else { Issue.record("expected APP"); return }
        #expect(app.subtype == 4)
        #expect(app.nameBytes == Array("TEST".utf8))
        #expect(app.data == hex("01010101"))
        #expect(compound.serialized() == bytes)
    }

    @Test("ends each SDES chunk with the null octets that reach a 32-bit boundary", arguments: 0 ... 8)
    func sdesTerminator(cnameLength: Int) throws {
        let chunk = RTCPSourceDescription.Chunk(ssrc: 9, items: [.init(type: 1, value: Array(repeating: 0x61, count: cnameLength))])
        #expect(chunk.terminatorLength == 4 - (2 + cnameLength) % 4)
        let compound = RTCPCompoundPacket(packets: [.sourceDescription(RTCPSourceDescription(chunks: [chunk, chunk]))])
        let bytes = compound.serialized()
        #expect(bytes.count % 4 == 0)
        #expect(try RTCPCompoundPacket(parsing: bytes) == compound)
    }

    @Test("sign-extends and clamps the 24-bit cumulative loss", arguments: [
        (Int32(-1), "ffffff"), (-0x80_0000, "800000"), (0x7F_FFFF, "7fffff"), (0, "000000"),
        (10_000_000, "7fffff"), (-10_000_000, "800000"),
    ])
    func cumulativeLost(value: Int32, wire: String) throws {
        var out: [UInt8] = []
        RTCPReportBlock(ssrc: 1, cumulativeLost: value).write(to: &out)
        #expect(Array(out[5 ..< 8]) == hex(wire))
        let rr = RTCPCompoundPacket(packets: [.receiverReport(RTCPReceiverReport(ssrc: 0, reportBlocks: [RTCPReportBlock(ssrc: 1, cumulativeLost: value)]))])
        let parsed = try RTCPCompoundPacket(parsing: rr.serialized())
        guard case let .receiverReport(report) = parsed.packets[0] else { Issue.record("expected RR"); return }
        #expect(report.reportBlocks[0].cumulativeLost == min(max(value, -0x80_0000), 0x7F_FFFF))
    }

    @Test("keeps BYE reason padding and a BYE without reason")
    func byeShapes() throws {
        let noReason = hex("82cb0002 00000001 00000002")
        let oddPadding = hex("81cb0003 00000001 01410000 00000000")
        for bytes in [noReason, oddPadding] {
            #expect(try RTCPCompoundPacket(parsing: bytes).serialized() == bytes)
        }
        let packet = try RTCPPacket(parsing: oddPadding)
        #expect(packet == .goodbye(RTCPGoodbye(ssrcs: [1], reason: [0x41], reasonPadding: 6)))
    }

    @Test("refuses opaque packets whose type has its own case or is not RTCP")
    func opaqueTypes() {
        #expect(throws: RTPParseError.invalidPacketType(200)) { try RTCPOpaque(packetType: 200, count: 0, body: []) }
        #expect(throws: RTPParseError.invalidPacketType(191)) { try RTCPOpaque(packetType: 191, count: 0, body: []) }
    }

    static let malformed: [MalformedCase] = [
        MalformedCase("empty datagram", "", .truncated(field: .rtcpHeader, needed: 4, available: 0)),
        MalformedCase("half a header", "81c8", .truncated(field: .rtcpHeader, needed: 4, available: 2)),
        MalformedCase("version 1", "41c90001 00000000", .unsupportedVersion(1)),
        MalformedCase("version 0", "00c90001 00000000", .unsupportedVersion(0)),
        MalformedCase("packet type 191", "80bf0000", .invalidPacketType(191)),
        MalformedCase("packet type 224", "80e00000", .invalidPacketType(224)),
        MalformedCase("RTP-looking packet type 72", "80480000", .invalidPacketType(72)),
        MalformedCase("length past the datagram", "80c90002 11111111", .truncated(field: .rtcpBody, needed: 8, available: 4)),
        MalformedCase("SR without sender info", "80c80001 11111111", .invalidLength(field: .senderInfo, value: 1)),
        MalformedCase("SR promising a block it lacks", "81c80006 11111111 00000000 00000000 00000000 00000000 00000000", .invalidLength(field: .reportBlock, value: 6)),
        MalformedCase("RR without SSRC", "80c90000", .invalidLength(field: .rtcpBody, value: 0)),
        MalformedCase("RR promising a block it lacks", "81c90001 11111111", .invalidLength(field: .reportBlock, value: 1)),
        MalformedCase("padding count 0", "a0c90001 00000000", .invalidPadding(count: 0, available: 4)),
        MalformedCase("padding count past the body", "a0c90001 00000011", .invalidPadding(count: 17, available: 4)),
        MalformedCase("padding bit on an empty body", "a0cd0000", .invalidPadding(count: 0, available: 0)),
        MalformedCase("SDES chunk without END", "81ca0001 11111111", .invalidLength(field: .sdesChunk, value: 1)),
        MalformedCase("SDES item longer than the packet", "81ca0002 11111111 01056162", .invalidLength(field: .sdesItem, value: 2)),
        MalformedCase("SDES count larger than the chunks", "82ca0002 11111111 00000000", .invalidLength(field: .sdesChunk, value: 2)),
        MalformedCase("SDES bytes after the last chunk", "81ca0003 11111111 01016100 00000000", .invalidLength(field: .sdesChunk, value: 3)),
        MalformedCase("BYE count larger than the SSRCs", "82cb0001 11111111", .invalidLength(field: .rtcpBody, value: 1)),
        MalformedCase("BYE reason longer than the packet", "81cb0002 11111111 05616263", .invalidLength(field: .byeReason, value: 2)),
        MalformedCase("APP without name", "80cc0001 11111111", .invalidLength(field: .appName, value: 1)),
        MalformedCase("APP without SSRC", "80cc0000", .invalidLength(field: .rtcpBody, value: 0)),
        MalformedCase("second packet cut short", "80c90001 11111111 81c9", .truncated(field: .rtcpHeader, needed: 4, available: 2)),
        MalformedCase("second packet bad version", "80c90001 11111111 40c90001 11111111", .unsupportedVersion(1)),
    ]

    @Test("rejects malformed compounds with the exact typed error", arguments: malformed)
    func rejects(_ input: MalformedCase) {
        #expect(throws: input.error) { try RTCPCompoundPacket(parsing: input.bytes) }
    }

    @Test("rejects non-zero octets where RFC 3550 wants null padding")
    func nonZeroNulls() {
        let sdes = hex("81ca0002 11111111 00010000")
        let bye = hex("81cb0002 11111111 01410100")
        for bytes in [sdes, bye] {
            let result = attempt { () throws(RTPParseError) in try RTCPCompoundPacket(parsing: bytes) }
            guard case .failure(.invalidValue) = result else {
                Issue.record("expected .invalidValue, got \(result)")
                continue
            }
        }
    }

    @Test("rejects a single packet followed by extra bytes")
    func singlePacketExtra() {
        #expect(throws: RTPParseError.invalidLength(field: .rtcpHeader, value: 1)) {
            try RTCPPacket(parsing: hex("80c90001 11111111 00000000"))
        }
    }
}
