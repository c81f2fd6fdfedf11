import Media
import Testing
import TestSupport

@Suite("VP8 payload descriptor and frame header (RFC 7741 §4.2–4.3)")
struct VP8DescriptorTests {
    typealias Descriptor = VP8PayloadDescriptor

    @Test("reads worked example 1 (ffmpeg's first key-frame packet) and writes it back")
    func example1() throws {
        let payload = hex("90 80 80 00 b0 5a 00 9d 01 2a 40 01 f0 00")
        let (d, length) = try Descriptor.parse(payload)
        #expect(length == 4)
        #expect(d.startOfPartition && d.partitionIndex == 0 && !d.nonReference && d.startsFrame)
        #expect(d.pictureID == .long(0))
        #expect(d.tl0PicIndex == nil && d.temporalLayer == nil && d.keyIndex == nil)
        #expect(d.serialized() == Array(payload.prefix(4)))
        let header = try VP8FrameHeader(parsing: payload[length...])
        #expect(header.isKeyFrame && header.version == 0 && header.showFrame)
        #expect(header.firstPartitionSize == 725)
        #expect(header.width == 320 && header.height == 240 && header.horizontalScale == 0 && header.verticalScale == 0)
    }

    @Test("reads worked example 2 (every field) and writes it back")
    func example2() throws {
        let bytes = hex("90 e0 9a bc 05 a0")
        let (d, length) = try Descriptor.parse(bytes + [0x31])
        #expect(length == 6)
        #expect(d.pictureID == .long(0x1ABC) && d.pictureID?.value == 6844)
        #expect(d.tl0PicIndex == 5)
        #expect(d.temporalLayer == (try .init(index: 2, layerSync: true)))
        #expect(d.keyIndex == nil)
        #expect(d.serialized() == bytes)
        #expect(d.serializedSize == 6)
    }

    @Test("reads worked example 3 (a continuation of a non-reference frame, 7-bit PictureID)")
    func example3() throws {
        let bytes = hex("a0 80 2a")
        let (d, length) = try Descriptor.parse(bytes + [0xFF])
        #expect(length == 3)
        #expect(d.nonReference && !d.startOfPartition && d.partitionIndex == 0 && !d.startsFrame)
        #expect(d.pictureID == .short(42))
        #expect(d.serialized() == bytes)
    }

    @Test("every prefix of example 2 fails on the field that is cut", arguments: [
        ("", PayloadFormatError.emptyPayload),
        ("90", .truncated(field: .vp8Extension, needed: 1, available: 0)),
        ("90 e0", .truncated(field: .vp8PictureID, needed: 1, available: 0)),
        ("90 e0 9a", .truncated(field: .vp8PictureID, needed: 2, available: 1)),
        ("90 e0 9a bc", .truncated(field: .vp8TL0PicIndex, needed: 1, available: 0)),
        ("90 e0 9a bc 05", .truncated(field: .vp8TemporalKey, needed: 1, available: 0)),
    ])
    func truncations(bytes: String, error: PayloadFormatError) {
        #expect(throws: error) { try Descriptor.parse(hex(bytes)) }
    }

    /// Every combination of I (none, 7-bit, 15-bit), L, T, K, N, S and a PID.
    static var allShapes: [Descriptor] {
        var out: [Descriptor] = []
        for picture in [nil, Descriptor.PictureID.short(0x55), .long(0x7ABC)] {
            for l in [false, true] {
                for t in [false, true] {
                    for k in [false, true] {
                        for flags in 0 ..< 4 {
                            // All values are in range: the initialisers cannot throw here.
                            let layer = t ? try? Descriptor.TemporalLayer(index: 3, layerSync: flags & 1 == 0) : nil
                            if let d = try? Descriptor(nonReference: flags & 1 != 0, startOfPartition: flags & 2 != 0,
                                                       partitionIndex: UInt8(flags * 2 + 1), pictureID: picture,
                                                       tl0PicIndex: l ? 0xC3 : nil, temporalLayer: layer,
                                                       keyIndex: k ? 0x1E : nil) {
                                out.append(d)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    @Test("every field combination round-trips byte for byte")
    func roundTrips() throws {
        let shapes = Self.allShapes
        #expect(shapes.count == 96)
        for d in shapes {
            let bytes = d.serialized()
            #expect(bytes.count == d.serializedSize)
            let (parsed, length) = try Descriptor.parse(bytes + [0xAA, 0xBB])
            #expect(parsed == d)
            #expect(length == bytes.count)
            // Any cut inside the descriptor fails with a typed error.
            for n in 0 ..< bytes.count {
                #expect(throws: PayloadFormatError.self) { try Descriptor.parse(Array(bytes.prefix(n))) }
            }
        }
    }

    /// The canonical form of a descriptor's bytes, computed byte by byte: reserved bits cleared,
    /// fields that the set flags say are ignored cleared, an X byte with no flags removed.
    private func canonical(_ bytes: [UInt8]) -> [UInt8] {
        var out = [bytes[0] & 0xB7]           // clear R (0x40, 0x08)
        guard bytes[0] & 0x80 != 0 else { return out }
        let x = bytes[1] & 0xF0                // clear RSV
        guard x != 0 else { out[0] &= 0x7F; return out }
        out.append(x)
        var i = 2
        if x & 0x80 != 0 {
            if bytes[i] & 0x80 != 0 { out += bytes[i ... i + 1]; i += 2 } else { out.append(bytes[i]); i += 1 }
        }
        if x & 0x40 != 0 { out.append(bytes[i]); i += 1 }
        if x & 0x30 != 0 {
            var mask: UInt8 = 0
            if x & 0x20 != 0 { mask |= 0xE0 }
            if x & 0x10 != 0 { mask |= 0x1F }
            out.append(bytes[i] & mask)
        }
        return out
    }

    @Test("seeded mutations either fail with a typed error or re-parse to the same descriptor from canonical bytes")
    func mutations() throws {
        var rng = SplitMix64(seed: 0x7741)
        let seeds = [hex("90 80 80 00 b0"), hex("90 e0 9a bc 05 a0 31"), hex("a0 80 2a 00"), hex("10 9d"), hex("ff ff ff ff ff ff")]
            + Self.allShapes.map { $0.serialized() }
        var failures = 0, successes = 0
        for _ in 0 ..< 5000 {
            let input = Mutator.mutate(seeds[Int.random(in: 0 ..< seeds.count, using: &rng)], using: &rng)
            switch attempt({ () throws(PayloadFormatError) in try Descriptor.parse(input) }) {
            case .failure:
                failures += 1
            case let .success((d, length)):
                successes += 1
                #expect(length <= input.count)
                let written = d.serialized()
                #expect(written == canonical(Array(input.prefix(length))), "input \(input)")
                let again = try Descriptor.parse(written)
                #expect(again.descriptor == d && again.length == written.count)
            }
        }
        #expect(failures > 100 && successes > 1000)
    }

    @Test("out-of-range values are refused when building a descriptor")
    func invalidValues() {
        #expect(throws: PayloadFormatError.self) { try Descriptor(startOfPartition: true, partitionIndex: 8) }
        #expect(throws: PayloadFormatError.self) { try Descriptor(startOfPartition: true, pictureID: .short(0x80)) }
        #expect(throws: PayloadFormatError.self) { try Descriptor(startOfPartition: true, pictureID: .long(0x8000)) }
        #expect(throws: PayloadFormatError.self) { try Descriptor(startOfPartition: true, keyIndex: 32) }
        #expect(throws: PayloadFormatError.self) { try Descriptor.TemporalLayer(index: 4, layerSync: false) }
    }

    @Test("PictureIDs wrap in their own width")
    func pictureIDWrap() {
        #expect(Descriptor.PictureID.short(0x7F).next == .short(0))
        #expect(Descriptor.PictureID.long(0x7FFF).next == .long(0))
        #expect(Descriptor.PictureID.long(41).next.value == 42)
    }

    @Test("the frame header reads inter frames and rejects short or mislabelled key frames")
    func frameHeader() throws {
        let inter = try VP8FrameHeader(parsing: hex("31 14 00"))
        #expect(!inter.isKeyFrame && inter.showFrame && inter.width == nil)
        #expect(inter.firstPartitionSize == 1 | 0x14 << 3)
        #expect(throws: PayloadFormatError.truncated(field: .vp8FrameTag, needed: 3, available: 2)) {
            try VP8FrameHeader(parsing: hex("31 14"))
        }
        #expect(throws: PayloadFormatError.truncated(field: .vp8KeyFrameHeader, needed: 10, available: 9)) {
            try VP8FrameHeader(parsing: hex("b0 5a 00 9d 01 2a 40 01 f0"))
        }
        #expect(throws: PayloadFormatError.invalidValue(field: .vp8KeyFrameHeader, reason: "start code is not 9D 01 2A")) {
            try VP8FrameHeader(parsing: hex("b0 5a 00 9d 01 2b 40 01 f0 00"))
        }
        // Scale bits are the top two of each 16-bit size field.
        let scaled = try VP8FrameHeader(parsing: hex("b0 5a 00 9d 01 2a 40 41 f0 c0"))
        #expect(scaled.width == 320 && scaled.horizontalScale == 1 && scaled.height == 240 && scaled.verticalScale == 3)
    }
}
