import Testing
import TestSupport
import RTPWire

@Suite("RTP packet")
struct RTPPacketTests {
    @Test("parses the RFC 7714 §16 example packet and writes it back unchanged")
    func rfc7714Example() throws {
        let packet = try RTPPacket(parsing: Vectors.rfc7714RTP)
        #expect(packet.payloadType == 64)
        #expect(packet.marker == false)
        #expect(packet.sequenceNumber == 0xF17B)
        #expect(packet.timestamp == 0x8041_F8D3)
        #expect(packet.ssrc == 0x5501_A0B2)
        #expect(packet.csrcs.isEmpty)
        #expect(packet.headerExtension == nil)
        #expect(packet.hasPadding == false)
        #expect(packet.payload == Array("Gallia est omnis divisa in partes tres".utf8))
        #expect(packet.serializedSize == Vectors.rfc7714RTP.count)
        #expect(packet.serialized() == Vectors.rfc7714RTP)
    }

    @Test("agrees with RTPHeaderLayout on the RFC 7714 packet")
    func layoutAgrees() throws {
        let layout = try RTPHeaderLayout(Vectors.rfc7714RTP)
        let packet = try RTPPacket(parsing: Vectors.rfc7714RTP)
        #expect(layout.headerLength == packet.headerSize)
        #expect(layout.sequenceNumber == packet.sequenceNumber)
        #expect(layout.timestamp == packet.timestamp)
        #expect(layout.ssrc == packet.ssrc)
        #expect(layout.payloadType == packet.payloadType)
    }

    @Test("writes a hand-built packet as the byte layout of RFC 3550 §5.1")
    func goldenBytes() throws {
        let packet = try RTPPacket(
            marker: true, payloadType: 111, sequenceNumber: 0x1234, timestamp: 0xDEAD_BEEF, ssrc: 0x0102_0304,
            csrcs: [0xAABB_CCDD],
            headerExtension: try .oneByte([RTPHeaderExtensionElement(id: 1, data: [0x8A])]),
            payload: [1, 2, 3], paddingLength: 4)
        let expected = hex("b1ef1234 deadbeef 01020304 aabbccdd bede0001 108a0000 010203 00000004")
        #expect(packet.serialized() == expected)
        #expect(packet.serializedSize == expected.count)
        #expect(try RTPPacket(parsing: expected) == packet)
    }

    @Test("round-trips every CSRC count from 0 to 15", arguments: 0 ... 15)
    func csrcCounts(count: Int) throws {
        let csrcs = (0 ..< count).map { UInt32(0x1000_0000 + $0) }
        let packet = try RTPPacket(payloadType: 96, sequenceNumber: 7, timestamp: 9, ssrc: 11, csrcs: csrcs, payload: [0xFE])
        let bytes = packet.serialized()
        #expect(bytes.count == 12 + 4 * count + 1)
        #expect(bytes[0] & 0x0F == UInt8(count))
        let parsed = try RTPPacket(parsing: bytes)
        #expect(parsed == packet)
        #expect(parsed.serialized() == bytes)
    }

    @Test("keeps padding bytes verbatim, including non-zero filler", arguments: [1, 2, 3, 4, 17, 255])
    func paddingRoundTrip(length: Int) throws {
        var bytes = hex("a0600001 00000002 00000003 c0ffee")
        let filler = (0 ..< length - 1).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 1) }
        bytes += filler + [UInt8(length)]
        let packet = try RTPPacket(parsing: bytes)
        #expect(packet.payload == [0xC0, 0xFF, 0xEE])
        #expect(packet.paddingLength == length)
        #expect(packet.padding == filler + [UInt8(length)])
        #expect(packet.serialized() == bytes)
    }

    @Test("treats a padding count equal to the whole payload as all padding")
    func paddingIsWholePayload() throws {
        let packet = try RTPPacket(parsing: hex("a0000000 00000000 00000000 00000004"))
        #expect(packet.payload.isEmpty)
        #expect(packet.padding == [0, 0, 0, 4])
    }

    @Test("round-trips an extension with CSRCs, marker and padding together")
    func everythingAtOnce() throws {
        let ext = try RTPHeaderExtension.twoByte(
            [RTPHeaderExtensionElement(id: 200, data: []), RTPHeaderExtensionElement(id: 3, data: Array(0 ..< 40))], appBits: 5)
        var packet = try RTPPacket(
            marker: true, payloadType: 127, sequenceNumber: 0xFFFF, timestamp: 0xFFFF_FFFF, ssrc: 0,
            csrcs: Array(1 ... 15), headerExtension: ext, payload: Array(repeating: 0x55, count: 300), paddingLength: 3)
        packet.padding = [0x99, 0x98, 3]
        let bytes = packet.serialized()
        let parsed = try RTPPacket(parsing: bytes)
        #expect(parsed == packet)
        #expect(parsed.serialized() == bytes)
        #expect(try RTPPacket(parsing: bytes[...]) == packet)
    }

    @Test("refuses to build packets the header cannot express")
    func builderLimits() {
        #expect(throws: RTPParseError.self) { try RTPPacket(payloadType: 128, sequenceNumber: 0, timestamp: 0, ssrc: 0) }
        #expect(throws: RTPParseError.self) {
            try RTPPacket(payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0, csrcs: Array(repeating: 1, count: 16))
        }
        #expect(throws: RTPParseError.self) { try RTPPacket(payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0, paddingLength: 256) }
    }

    static let malformed: [MalformedCase] = [
        MalformedCase("empty", "", .truncated(field: .fixedHeader, needed: 12, available: 0)),
        MalformedCase("one byte", "80", .truncated(field: .fixedHeader, needed: 12, available: 1)),
        MalformedCase("eleven bytes", "80000000 00000000 000000", .truncated(field: .fixedHeader, needed: 12, available: 11)),
        MalformedCase("version 1", "40000000 00000000 00000000", .unsupportedVersion(1)),
        MalformedCase("version 3", "c0000000 00000000 00000000", .unsupportedVersion(3)),
        MalformedCase("CC=2 but 3 CSRC bytes", "82000000 00000000 00000000 aabbcc", .truncated(field: .csrcList, needed: 8, available: 3)),
        MalformedCase("CC=15 and nothing after", "8f000000 00000000 00000000", .truncated(field: .csrcList, needed: 60, available: 0)),
        MalformedCase("X set, half an extension header", "90000000 00000000 00000000 bede", .truncated(field: .extensionHeader, needed: 4, available: 2)),
        MalformedCase("extension says 2 words, has 1", "90000000 00000000 00000000 bede0002 10aa0000", .truncated(field: .extensionBody, needed: 8, available: 4)),
        MalformedCase("extension says 65535 words", "90000000 00000000 00000000 1000ffff", .truncated(field: .extensionBody, needed: 262_140, available: 0)),
        MalformedCase("P set, no payload byte", "a0000000 00000000 00000000", .truncated(field: .padding, needed: 1, available: 0)),
        MalformedCase("padding count 0", "a0000000 00000000 00000000 01020300", .invalidPadding(count: 0, available: 4)),
        MalformedCase("padding count beyond payload", "a0000000 00000000 00000000 01020309", .invalidPadding(count: 9, available: 4)),
        MalformedCase("padding reaching into the extension", "b0000000 00000000 00000000 bede0001 10aa0000 05", .invalidPadding(count: 5, available: 1)),
    ]

    @Test("rejects malformed packets with the exact typed error", arguments: malformed)
    func rejects(_ input: MalformedCase) {
        #expect(throws: input.error) { try RTPPacket(parsing: input.bytes) }
    }

    @Test("reports header errors exactly as RTPHeaderLayout does", arguments: malformed.filter {
        if case .truncated(field: .padding, _, _) = $0.error { return false }
        if case .invalidPadding = $0.error { return false }
        return true
    })
    func layoutSameErrors(_ input: MalformedCase) {
        #expect(throws: input.error) { try RTPHeaderLayout(input.bytes) }
    }
}
