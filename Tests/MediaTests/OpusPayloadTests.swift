import COpus
import Media
import RTPWire
import Testing
import TestSupport

@Suite("Opus RTP payload (RFC 7587, RFC 6716 §3)")
struct OpusPayloadTests {
    /// Packets and their durations at 48 kHz, checked with libopus 1.3.1 (spec/rtp-payloads.md §6.1).
    static let durations: [(String, Int)] = [("F8", 960), ("48", 960), ("F8 FF FE", 960), ("FB 05", 4800), ("4B 03", 2880)]

    @Test("reads the durations of the spec's example packets", arguments: durations)
    func specDurations(packet: String, samples: Int) throws {
        let payload = try OpusPayload(parsing: hex(packet))
        #expect(payload.sampleCount == samples)
        #expect(payload.packet == hex(packet))
    }

    @Test("decodes the TOC of 0xF8 as CELT fullband 20 ms mono, one frame")
    func tocFields() {
        let toc = OpusTOC(0xF8)
        #expect(toc.config == 31)
        #expect(toc.mode == .celt)
        #expect(toc.bandwidth == .fullband)
        #expect(toc.frameSamples == 960)
        #expect(!toc.isStereo)
        #expect(toc.frameCountCode == 0)
        #expect(OpusTOC(0x4B).mode == .silk && OpusTOC(0x4B).bandwidth == .wideband && OpusTOC(0x4B).frameCountCode == 3)
        #expect(OpusTOC(0x78).mode == .hybrid && OpusTOC(0x78).bandwidth == .fullband)
    }

    @Test("agrees with libopus on mode, bandwidth, channels and frame size for all 256 TOC bytes")
    func tocAgainstLibopus() {
        for byte in UInt8.min ... UInt8.max {
            let toc = OpusTOC(byte)
            let packet = [byte]
            #expect(Int(opus_packet_get_samples_per_frame(packet, 48_000)) == toc.frameSamples)
            #expect(Int(opus_packet_get_nb_channels(packet)) == (toc.isStereo ? 2 : 1))
            let bandwidth: Int32
            switch toc.bandwidth {
            case .narrowband: bandwidth = OPUS_BANDWIDTH_NARROWBAND
            case .mediumband: bandwidth = OPUS_BANDWIDTH_MEDIUMBAND
            case .wideband: bandwidth = OPUS_BANDWIDTH_WIDEBAND
            case .superwideband: bandwidth = OPUS_BANDWIDTH_SUPERWIDEBAND
            case .fullband: bandwidth = OPUS_BANDWIDTH_FULLBAND
            }
            #expect(opus_packet_get_bandwidth(packet) == bandwidth, "TOC \(byte)")
        }
    }

    @Test("an empty payload is a typed error")
    func emptyPayload() {
        #expect(throws: PayloadFormatError.emptyPayload) { try OpusPayload(parsing: []) }
    }

    @Test("rejects malformed framing with the field that is wrong", arguments: [
        ("F9 00", PayloadFormatError.invalidValue(field: .opusFrames, reason: "code 1 needs two equal frames, 1 bytes is odd")),
        ("FA", .truncated(field: .opusFrameLength, needed: 1, available: 0)),
        ("FA FC", .truncated(field: .opusFrameLength, needed: 2, available: 1)),
        ("FA 05 00", .truncated(field: .opusFrames, needed: 5, available: 1)),
        ("FB", .truncated(field: .opusFrameCount, needed: 1, available: 0)),
        ("FB 00", .invalidValue(field: .opusFrameCount, reason: "frame count 0")),
        ("FB 07", .invalidValue(field: .opusFrameCount, reason: "7 frames of 960 samples exceed 120 ms")),
        ("FB 42", .truncated(field: .opusPadding, needed: 1, available: 0)),
        ("FB 42 05 00", .truncated(field: .opusPadding, needed: 5, available: 1)),
        ("FB 02 00", .invalidValue(field: .opusFrames, reason: "1 bytes do not split into 2 equal (CBR) frames")),
    ])
    func malformed(packet: String, error: PayloadFormatError) {
        #expect(throws: error) { try OpusPayload(parsing: hex(packet)) }
    }

    /// libopus's own view of a packet: frame sizes, or nil if it rejects it.
    private func libopusFrames(_ packet: [UInt8]) -> [Int]? {
        var toc: UInt8 = 0
        var sizes = [Int16](repeating: 0, count: 48)
        var offset: Int32 = 0
        let count = opus_packet_parse(packet, Int32(packet.count), &toc, nil, &sizes, &offset)
        guard count > 0 else { return nil }
        return sizes.prefix(Int(count)).map(Int.init)
    }

    @Test("accepts exactly what opus_packet_parse accepts, with the same frame lengths (seeded)")
    func agreesWithLibopus() throws {
        var rng = SplitMix64(seed: 0x0_7587)
        var encoder = try OpusEncoder(.init(dtx: true))
        var voice = try SyntheticVoice(seed: 3)
        var seeds: [[UInt8]] = try (0 ..< 40).map { _ in try encoder.encode(voice.nextFrame()) }
        seeds += [hex("FB 85 03 02 01 AA BB CC DD EE FF"), hex("FB C3 FF 02 02 04 00 01 02 03 04 05 06"), hex("FA FC 01")]
        encoder = try OpusEncoder(.init(channels: 2, bitrate: 96_000, frameSize: 480))
        var accepted = 0, rejected = 0
        for round in 0 ..< 4000 {
            let input: [UInt8]
            if round % 4 == 0 {
                input = rng.bytes(Int.random(in: 1 ... 12, using: &rng))
            } else {
                let base = seeds[Int.random(in: 0 ..< seeds.count, using: &rng)]
                input = Mutator.mutate(base, using: &rng)
            }
            let ours = attempt { () throws(PayloadFormatError) in try OpusPayload(parsing: input) }
            let theirs = input.isEmpty ? nil : libopusFrames(input)
            switch ours {
            case let .success(payload):
                accepted += 1
                #expect(payload.frameLengths == theirs, "packet \(input)")
                #expect(payload.sampleCount == Int(opus_packet_get_nb_samples(input, Int32(input.count), 48_000)))
            case .failure:
                rejected += 1
                #expect(theirs == nil, "packet \(input) rejected but libopus reads \(String(describing: theirs))")
            }
        }
        #expect(accepted > 500 && rejected > 500)
    }

    @Test("the packetizer advances 960 per 20 ms, skips DTX packets and marks the first packet of each talk spurt")
    func packetizer() throws {
        var voice = try SyntheticVoice(seed: 1)
        let encoder = try OpusEncoder(.init(dtx: true))
        var packetizer = OpusPacketizer(initialTimestamp: 0xFFFF_F000)
        var sent: [OpusPacketizer.Packet] = []
        var encoded = 0
        for _ in 0 ..< 500 {
            let packet = try encoder.encode(voice.nextFrame())
            encoded += 1
            if let rtp = try packetizer.packetize(packet) { sent.append(rtp) }
        }
        #expect(packetizer.nextTimestamp == 0xFFFF_F000 &+ UInt32(500 * 960))   // wrapped past 2³²
        #expect(sent.count < encoded * 3 / 4)
        #expect(sent.allSatisfy { $0.payload.count > 2 })
        #expect(sent.first?.marker == true)
        var unwrapper = TimestampUnwrapper()
        var previous: Int64?
        for packet in sent {
            let ts = unwrapper.unwrap(packet.timestamp)
            if let previous {
                let step = ts - previous
                #expect(step % 960 == 0 && step > 0)
                #expect(packet.marker == (step > 960), "marker exactly after skipped DTX frames")
            }
            previous = ts
        }
    }
}
