import Testing
import TestSupport
import RTPWire

@Suite("RTP header extension")
struct RTPHeaderExtensionTests {
    private func packet(withExtension ext: String) -> [UInt8] {
        hex("90000001 00000002 00000003") + hex(ext) + [0xAB]
    }

    @Test("reads one-byte elements and skips padding bytes between them (RFC 8285 §4.2)")
    func oneByteWithPadding() throws {
        let bytes = packet(withExtension: "bede0003 10aa0000 22bbccdd 308a0000")
        let parsed = try RTPPacket(parsing: bytes)
        let ext = try #require(parsed.headerExtension)
        #expect(ext.form == .oneByte)
        #expect(try ext.elements == [
            RTPHeaderExtensionElement(id: 1, data: [0xAA]),
            RTPHeaderExtensionElement(id: 2, data: [0xBB, 0xCC, 0xDD]),
            RTPHeaderExtensionElement(id: 3, data: [0x8A]),
        ])
        #expect(ext.element(id: 2) == [0xBB, 0xCC, 0xDD])
        #expect(ext.element(id: 4) == nil)
        #expect(parsed.serialized() == bytes)
    }

    @Test("stops at one-byte ID 15 and keeps the elements before it")
    func id15Stops() throws {
        let ext = try RTPHeaderExtension(profile: 0xBEDE, body: hex("10aaf3bb 20cc0000"))
        #expect(try ext.elements == [RTPHeaderExtensionElement(id: 1, data: [0xAA])])
        #expect(ext.element(id: 2) == nil)
    }

    @Test("stops at an ID 0 byte that carries a length")
    func id0WithLengthStops() throws {
        let ext = try RTPHeaderExtension(profile: 0xBEDE, body: hex("10aa0520 cc000000"))
        #expect(try ext.elements == [RTPHeaderExtensionElement(id: 1, data: [0xAA])])
    }

    @Test("reads two-byte elements, zero-length ones and appbits (RFC 8285 §4.3)")
    func twoByte() throws {
        let ext = try RTPHeaderExtension(profile: 0x100A, body: hex("01000201 aa000302 bbcc0000"))
        #expect(ext.form == .twoByte(appBits: 10))
        #expect(try ext.elements == [
            RTPHeaderExtensionElement(id: 1, data: []),
            RTPHeaderExtensionElement(id: 2, data: [0xAA]),
            RTPHeaderExtensionElement(id: 3, data: [0xBB, 0xCC]),
        ])
        #expect(ext.element(id: 1) == [])
    }

    static let overruns: [MalformedCase] = [
        MalformedCase("one-byte element longer than the block", "bede 10aa23bb", .extensionElementOverrun(id: 2, needed: 5, available: 2)),
        MalformedCase("one-byte 16-byte element in a 4-byte block", "bede 5f000000", .extensionElementOverrun(id: 5, needed: 17, available: 4)),
        MalformedCase("two-byte length past the block", "1000 0509aabb", .extensionElementOverrun(id: 5, needed: 11, available: 4)),
        MalformedCase("two-byte ID in the last byte", "1000 00000007", .extensionElementOverrun(id: 7, needed: 2, available: 1)),
    ]

    @Test("reports an element that runs past the block", arguments: overruns)
    func overrun(_ input: MalformedCase) throws {
        let profile = UInt16(input.bytes[0]) << 8 | UInt16(input.bytes[1])
        let ext = try RTPHeaderExtension(profile: profile, body: Array(input.bytes.dropFirst(2)))
        #expect(throws: input.error) { try ext.elements }
    }

    @Test("finds an element that sits before a malformed one")
    func elementBeforeOverrun() throws {
        let ext = try RTPHeaderExtension(profile: 0xBEDE, body: hex("10aa23bb"))
        #expect(ext.element(id: 1) == [0xAA])
        #expect(ext.element(id: 2) == nil)
    }

    @Test("keeps a block with an unknown profile byte for byte but has no elements")
    func unknownProfile() throws {
        let bytes = packet(withExtension: "abcd0002 01020304 05060708")
        let parsed = try RTPPacket(parsing: bytes)
        let ext = try #require(parsed.headerExtension)
        #expect(ext.form == nil)
        #expect(ext.body == hex("01020304 05060708"))
        #expect(parsed.serialized() == bytes)
        #expect(throws: RTPParseError.self) { try ext.elements }
        #expect(ext.element(id: 1) == nil)
    }

    @Test("round-trips an empty extension block")
    func emptyBlock() throws {
        let bytes = packet(withExtension: "bede0000")
        let parsed = try RTPPacket(parsing: bytes)
        #expect(try parsed.headerExtension?.elements == [])
        #expect(parsed.serialized() == bytes)
    }

    @Test("builds a padded one-byte block")
    func buildOneByte() throws {
        let ext = try RTPHeaderExtension.oneByte([
            RTPHeaderExtensionElement(id: 1, data: [0xAA]),
            RTPHeaderExtensionElement(id: 14, data: Array(repeating: 0x11, count: 16)),
        ])
        #expect(ext.profile == 0xBEDE)
        #expect(ext.body == hex("10aa") + [0xEF] + Array(repeating: 0x11, count: 16) + [0])
        #expect(ext.body.count % 4 == 0)
        var out: [UInt8] = []
        ext.write(to: &out)
        #expect(out == hex("bede0005") + ext.body)
    }

    @Test("builds a padded two-byte block with appbits")
    func buildTwoByte() throws {
        let ext = try RTPHeaderExtension.twoByte([
            RTPHeaderExtensionElement(id: 255, data: []),
            RTPHeaderExtensionElement(id: 16, data: [1, 2, 3]),
        ], appBits: 0xF)
        #expect(ext.profile == 0x100F)
        #expect(ext.body == hex("ff001003 01020300"))
        #expect(try ext.elements.map(\.id) == [255, 16])
    }

    struct BuilderCase: Sendable, CustomStringConvertible {
        var description: String
        var twoByte: Bool
        var element: RTPHeaderExtensionElement
        var appBits: UInt8 = 0
    }

    @Test("refuses elements the chosen form cannot carry", arguments: [
        BuilderCase(description: "one-byte ID 0", twoByte: false, element: .init(id: 0, data: [1])),
        BuilderCase(description: "one-byte ID 15", twoByte: false, element: .init(id: 15, data: [1])),
        BuilderCase(description: "one-byte ID 16", twoByte: false, element: .init(id: 16, data: [1])),
        BuilderCase(description: "one-byte empty data", twoByte: false, element: .init(id: 1, data: [])),
        BuilderCase(description: "one-byte 17 bytes", twoByte: false, element: .init(id: 1, data: Array(repeating: 0, count: 17))),
        BuilderCase(description: "two-byte ID 0", twoByte: true, element: .init(id: 0, data: [])),
        BuilderCase(description: "two-byte 256 bytes", twoByte: true, element: .init(id: 1, data: Array(repeating: 0, count: 256))),
        BuilderCase(description: "two-byte appbits 16", twoByte: true, element: .init(id: 1, data: []), appBits: 16),
    ])
    func builderRejects(_ input: BuilderCase) {
        #expect(throws: RTPParseError.self) {
            if input.twoByte {
                _ = try RTPHeaderExtension.twoByte([input.element], appBits: input.appBits)
            } else {
                _ = try RTPHeaderExtension.oneByte([input.element])
            }
        }
    }

    @Test("names reserved IDs in the builder's error")
    func reservedIDs() {
        #expect(throws: RTPParseError.reservedExtensionID(15)) { try RTPHeaderExtension.oneByte([.init(id: 15, data: [1])]) }
        #expect(throws: RTPParseError.reservedExtensionID(0)) { try RTPHeaderExtension.twoByte([.init(id: 0, data: [])]) }
    }

    @Test("rejects a raw body that is not whole 32-bit words")
    func rawBodyLength() {
        #expect(throws: RTPParseError.invalidLength(field: .extensionBody, value: 3)) {
            try RTPHeaderExtension(profile: 0xBEDE, body: [1, 2, 3])
        }
    }

    @Test("reads back what the builders wrote, for every one-byte data length", arguments: 1 ... 16)
    func builderRoundTrip(length: Int) throws {
        let elements = [
            RTPHeaderExtensionElement(id: 3, data: Array(repeating: 0x33, count: length)),
            RTPHeaderExtensionElement(id: 4, data: [0x44]),
        ]
        #expect(try RTPHeaderExtension.oneByte(elements).elements == elements)
        #expect(try RTPHeaderExtension.twoByte(elements).elements == elements)
    }

    @Test("reads the RFC 6464 audio level byte", arguments: [
        (UInt8(0x8A), true, UInt8(10)), (0x7F, false, 127), (0x00, false, 0), (0xFF, true, 127),
    ])
    func audioLevel(byte: UInt8, voice: Bool, level: UInt8) throws {
        let parsed = RTPAudioLevel(byte: byte)
        #expect(parsed.voiceActivity == voice)
        #expect(parsed.level == level)
        #expect(parsed.byte == byte)
        let ext = try RTPHeaderExtension.oneByte([parsed.element(id: 1)])
        #expect(ext.audioLevel(id: 1) == parsed)
        #expect(ext.audioLevel(id: 2) == nil)
    }

    @Test("refuses an audio level above 127 and empty level data")
    func audioLevelLimits() {
        #expect(throws: RTPParseError.self) { try RTPAudioLevel(voiceActivity: true, level: 128) }
        #expect(throws: RTPParseError.truncated(field: .extensionBody, needed: 1, available: 0)) { try RTPAudioLevel(elementData: []) }
    }
}
