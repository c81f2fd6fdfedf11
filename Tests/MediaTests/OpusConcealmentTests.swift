import Media
import Testing
import TestSupport

@Suite("Opus concealment packets (RFC 7845 §4.1)")
struct OpusConcealmentTests {
    /// spec/ogg-opus.md §8 and RFC 7845 §4.1's 95 ms example.
    static let examples: [(toc: UInt8, samples: Int, packets: [String])] = [
        (0xF8, 960, ["F8"]),                    // one frame: the 1-byte code 0 form
        (0xF8, 4800, ["FB 05"]),                // five 20 ms frames, code 3 CBR
        (0xF8, 5760, ["FB 06"]),                // 120 ms, the most one packet holds
        (0xF8, 6720, ["FB 06", "F8"]),
        (0xF8, 1000, ["F8"]),                   // rounded down to 960
        (0xF8, 119, []),
        (0xF8, 4560, ["FB 04", "F0", "E8"]),    // 95 ms after CELT 20 ms: 4 × 20, then 10 and 5 ms frames
        (0x48, 4560, ["4B 04", "40", "A8"]),    // 95 ms after SILK WB 20 ms: 4 × 20 ms, 10 ms SILK, 5 ms CELT WB
        (0x28, 600, ["20", "A0"]),              // SILK MB 20 ms: 10 ms SILK MB, then CELT wideband (no MB in CELT)
    ]

    @Test("byte values of the spec's and the RFC's examples", arguments: examples)
    func examplePackets(toc: UInt8, samples: Int, packets: [String]) {
        #expect(OpusConcealment.packets(covering: samples, like: OpusTOC(toc)) == packets.map { hex($0) })
    }

    @Test("SILK NB 60 ms stereo: two 60 ms frames per packet, then SILK 10 ms, then CELT NB keeping the stereo flag")
    func silk60Stereo() {
        // TOC 0x1C: config 3 (SILK NB 60 ms), s = 1. 5880 = 2 × 2880 + 120 → "1F 02" + CELT NB 2.5 ms stereo (0x84).
        #expect(OpusConcealment.packets(covering: 5880, like: OpusTOC(0x1C)) == [hex("1F 02"), hex("84")])
        // 3000 = 2880 + 120.
        #expect(OpusConcealment.packets(covering: 3000, like: OpusTOC(0x1C)) == [hex("1C"), hex("84")])
    }

    @Test("for every TOC and gap, libopus decodes each packet to exactly the samples promised", arguments: [0, 1] as [UInt8])
    func everyConfiguration(stereo: UInt8) throws {
        let gaps = [120, 360, 960, 1000, 2760, 4560, 5760, 5880, 9999, 20_000]
        for config in UInt8(0) ... 31 {
            let toc = OpusTOC(config << 3 | stereo << 2)
            let decoder = try OpusDecoder(channels: 1)
            for gap in gaps {
                let packets = OpusConcealment.packets(covering: gap, like: toc)
                var total = 0
                for packet in packets {
                    let parsed = try OpusPayload(parsing: packet)
                    #expect(parsed.sampleCount <= 5760 && parsed.frameLengths.allSatisfy { $0 == 0 })
                    #expect(parsed.toc.isStereo == toc.isStereo)
                    #expect(packet.count <= 2)
                    #expect(try decoder.decode(packet).count == parsed.sampleCount, "TOC \(toc.byte) gap \(gap) packet \(packet)")
                    total += parsed.sampleCount
                }
                #expect(total == gap - gap % 120, "TOC \(toc.byte) gap \(gap)")
                // The first packet keeps the TOC's configuration whenever one frame fits.
                if gap >= toc.frameSamples { #expect(packets.first.map { $0[0] >> 3 } == config) }
            }
        }
    }
}

@Suite("Opus timeline placer")
struct OpusConcealmentPlacerTests {
    typealias Placed = OpusTimelinePlacer.Placed

    private func packet(_ toc: UInt8 = 0xF8, _ tag: UInt8 = 0) -> [UInt8] { [toc, 0xFF, tag] }

    @Test("contiguous packets pass through unchanged")
    func contiguous() throws {
        var placer = OpusTimelinePlacer()
        for i in 0 ..< 5 {
            #expect(try placer.place(packet(0xF8, UInt8(i)), at: Int64(i * 960))
                == [Placed(packet: packet(0xF8, UInt8(i)), position: Int64(i * 960), samples: 960, isConcealment: false)])
        }
        var expected = OpusTimelinePlacer.Statistics()
        expected.placedPackets = 5
        #expect(placer.statistics == expected)
        #expect(placer.nextPosition == 4800)
    }

    @Test("a gap is concealed like the previous packet, then the packet follows at its position")
    func gap() throws {
        var placer = OpusTimelinePlacer()
        _ = try placer.place(packet(0xF8), at: 0)
        #expect(try placer.place(packet(0x48), at: 960 + 4800) == [
            Placed(packet: [0xFB, 0x05], position: 960, samples: 4800, isConcealment: true),
            Placed(packet: packet(0x48), position: 5760, samples: 960, isConcealment: false),
        ])
        #expect(placer.statistics.concealedSamples == 4800 && placer.statistics.concealmentPackets == 1)
        #expect(placer.statistics.shiftedPackets == 0)
    }

    @Test("a gap that is not a multiple of 2.5 ms is rounded down and the packet shifted earlier")
    func roundedGap() throws {
        var placer = OpusTimelinePlacer()
        _ = try placer.place(packet(), at: 0)
        #expect(try placer.place(packet(), at: 960 + 1000) == [
            Placed(packet: [0xF8], position: 960, samples: 960, isConcealment: true),
            Placed(packet: packet(), position: 1920, samples: 960, isConcealment: false),
        ])
        #expect(placer.statistics.roundedGapSamples == 40)
        #expect(placer.statistics.shiftedPackets == 1 && placer.statistics.shiftedSamples == 40)
        // A gap under 120 samples: no concealment, only the shift.
        #expect(try placer.place(packet(), at: 2880 + 100) == [Placed(packet: packet(), position: 2880, samples: 960, isConcealment: false)])
        #expect(placer.statistics.roundedGapSamples == 140 && placer.statistics.shiftedPackets == 2)
    }

    @Test("a partial overlap shifts the packet later; a full overlap (duplicate) drops it")
    func overlaps() throws {
        var placer = OpusTimelinePlacer()
        _ = try placer.place(packet(), at: 0)
        #expect(try placer.place(packet(0xF8, 1), at: 500) == [Placed(packet: packet(0xF8, 1), position: 960, samples: 960, isConcealment: false)])
        #expect(try placer.place(packet(0xF8, 1), at: 500) == [])     // the same packet again
        #expect(try placer.place(packet(0xF8, 2), at: 960) == [])     // overlap 960 = its whole duration
        #expect(placer.statistics.shiftedPackets == 1 && placer.statistics.shiftedSamples == 460)
        #expect(placer.statistics.droppedOverlaps == 2 && placer.statistics.placedPackets == 2)
        #expect(placer.nextPosition == 1920)
    }

    @Test("a late first packet is preceded by concealment from 0 in its own configuration, unless asked not to")
    func leadingGap() throws {
        var placer = OpusTimelinePlacer()
        #expect(try placer.place(packet(0x48), at: 4800) == [
            Placed(packet: [0x4B, 0x05], position: 0, samples: 4800, isConcealment: true),
            Placed(packet: packet(0x48), position: 4800, samples: 960, isConcealment: false),
        ])
        var plain = OpusTimelinePlacer(fillsLeadingGap: false)
        #expect(try plain.place(packet(0x48), at: 4800) == [Placed(packet: packet(0x48), position: 4800, samples: 960, isConcealment: false)])
        #expect(plain.nextPosition == 5760 && plain.statistics.concealmentPackets == 0)
    }

    @Test("fill(upTo:) conceals to a cut point, like the last packet or as CELT 20 ms before any")
    func fill() throws {
        var placer = OpusTimelinePlacer()
        #expect(placer.fill(upTo: 1920) == [Placed(packet: [0xFB, 0x02], position: 0, samples: 1920, isConcealment: true)])
        _ = try placer.place(packet(0x48), at: 1920)
        #expect(placer.fill(upTo: 2880 + 1000) == [Placed(packet: [0x48], position: 2880, samples: 960, isConcealment: true)])
        #expect(placer.nextPosition == 3840)
        #expect(placer.fill(upTo: 100) == [])
        #expect(placer.statistics.concealedSamples == 2880 && placer.statistics.roundedGapSamples == 0)
    }

    @Test("an unparsable packet throws and changes nothing")
    func unparsable() throws {
        var placer = OpusTimelinePlacer()
        _ = try placer.place(packet(), at: 0)
        let before = placer
        #expect(throws: PayloadFormatError.emptyPayload) { try placer.place([], at: 9600) }
        #expect(throws: PayloadFormatError.invalidValue(field: .opusFrameCount, reason: "frame count 0")) {
            try placer.place([0xFB, 0x00], at: 9600)
        }
        #expect(placer.nextPosition == before.nextPosition && placer.statistics == before.statistics)
        #expect(try placer.place(packet(), at: 960).count == 1)   // no concealment: the failed calls left no trace
    }

    @Test("under random jitter, loss, duplicates and overlaps the output is gapless from 0 and accounts for every packet (seeded)")
    func randomTimeline() throws {
        var rng = SplitMix64(seed: 0x7845)
        let tocs: [UInt8] = [0xF8, 0x48, 0x78, 0xE0, 0x0C, 0xFC, 0x4B]   // CELT 20, SILK WB 20, Hybrid 20, CELT 2.5, SILK NB 20 stereo, CELT stereo, 2 × SILK WB 20
        var placer = OpusTimelinePlacer()
        var clock = Int64(Int.random(in: 0 ... 50, using: &rng) * 120)
        var output: [Placed] = []
        var inputs = 0
        for _ in 0 ..< 3000 {
            let toc = tocs.randomElement(using: &rng)!   // non-empty literal
            let bytes = toc & 3 == 3 ? [toc, 0x02, 0xAA, 0xBB] : [toc, 0xAA, 0xBB]   // 0x4B: two CBR frames
            let samples = Int64(try OpusPayload(parsing: bytes).sampleCount)
            var at = clock
            switch Int.random(in: 0 ..< 10, using: &rng) {
            case 0: at += Int64(Int.random(in: 1 ... 40, using: &rng) * 120)    // DTX or loss
            case 1: at += Int64.random(in: 1 ... 3000, using: &rng)             // clock glitch
            case 2: at -= Int64.random(in: 0 ... 2 * samples, using: &rng)       // duplicate or overlap
            default: break
            }
            let placed = try placer.place(bytes, at: at)
            inputs += 1
            if let last = placed.last, !last.isConcealment {
                #expect(last.packet == bytes)
                #expect(abs(last.position - at) < max(120, samples))
            }
            output += placed
            if at >= clock { clock = at + samples }
        }
        #expect(output.first?.position == 0)
        for (a, b) in zip(output, output.dropFirst()) { #expect(b.position == a.position + Int64(a.samples)) }
        for p in output where p.isConcealment {
            let parsed = try OpusPayload(parsing: p.packet)
            #expect(parsed.sampleCount == p.samples && parsed.frameLengths.allSatisfy { $0 == 0 })
        }
        let s = placer.statistics
        #expect(s.placedPackets + s.droppedOverlaps == inputs)
        #expect(s.placedPackets == output.filter { !$0.isConcealment }.count)
        #expect(s.concealmentPackets == output.filter(\.isConcealment).count)
        #expect(s.concealedSamples == output.filter(\.isConcealment).reduce(0) { $0 + Int64($1.samples) })
        #expect(placer.nextPosition == (output.last.map { $0.position + Int64($0.samples) } ?? 0))
        #expect(s.droppedOverlaps > 0 && s.shiftedPackets > 0 && s.roundedGapSamples > 0)
    }
}
