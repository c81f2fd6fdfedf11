import Media
import RTPWire
import Testing

/// End to end through real codecs and RTP: the sync marks survive and line up.
@Suite("A/V sync marks through Opus, VP8 and RTP")
struct AVSyncTests {
    static let seconds = 11
    static let audioBase: UInt32 = 0xFFFF_0000   // wraps a few seconds in
    static let videoBase: UInt32 = 0x1234_5678

    /// Sends the voice as Opus/RTP with DTX and RFC 6464 levels, then rebuilds the 48 kHz timeline
    /// from the received packets (concealing the DTX gaps) as an exporter would.
    /// Returns beep onsets in seconds since the stream's first RTP timestamp, corrected for the codec delay.
    private func audioBeepTimes() throws -> [Double] {
        var voice = try SyntheticVoice(seed: 12)
        let encoder = try OpusEncoder(.init(dtx: true))
        var packetizer = OpusPacketizer(initialTimestamp: Self.audioBase)
        var wire: [[UInt8]] = []
        var seq: UInt16 = 0xFFF0
        for _ in 0 ..< Self.seconds * 50 {
            let frame = voice.next()
            guard let out = try packetizer.packetize(try encoder.encode(frame.samples)) else { continue }
            let level = AudioLevel.measure(frame.samples)
            let rtp = try RTPPacket(marker: out.marker, payloadType: 111, sequenceNumber: seq, timestamp: out.timestamp, ssrc: 1,
                                    headerExtension: try .oneByte([level.element(id: 1)]), payload: out.payload)
            wire.append(rtp.serialized())
            seq &+= 1
        }
        // Receiver.
        let decoder = try OpusDecoder()
        var unwrapper = TimestampUnwrapper()
        let origin = unwrapper.unwrap(Self.audioBase)
        var pcm: [Int16] = []
        var silentLevels = 0
        for bytes in wire {
            let rtp = try RTPPacket(parsing: bytes)
            let payload = try OpusPayload(parsing: rtp.payload)
            let position = Int(unwrapper.unwrap(rtp.timestamp) - origin)
            while pcm.count < position {   // DTX gap: conceal in ≤ 120 ms steps
                pcm += try decoder.decode(nil, lostSamples: min(5760, position - pcm.count))
            }
            let decoded = try decoder.decode(payload.packet)
            #expect(decoded.count == payload.sampleCount)
            pcm += decoded
            if rtp.headerExtension?.audioLevel(id: 1)?.level == 127 { silentLevels += 1 }
        }
        #expect(wire.count < Self.seconds * 50 * 3 / 4, "DTX left gaps")
        #expect(silentLevels > 0)
        let delay = encoder.lookahead
        return SyntheticVoice.syncBeepOnsets(in: pcm).map { Double($0 - delay) / 48_000 }
    }

    /// Sends the video as VP8/RTP and returns the times of the white frames found after decoding,
    /// with their frame counter position (seconds since the first RTP timestamp, frame index).
    private func videoFlashes() throws -> [(time: Double, index: Int)] {
        var video = try SyntheticVideo(width: 320, height: 180, framesPerSecond: 10, seed: 12)
        let encoder = try VP8Encoder(.init(width: 320, height: 180, framesPerSecond: 10, targetBitrateKbps: 400))
        var packetizer = try VP8Packetizer(maxPayloadSize: 1000)
        var depacketizer = VP8Depacketizer()
        let decoder = try VP8Decoder()
        var seq: Int64 = 0
        var flashes: [(Double, Int)] = []
        for index in 0 ..< Self.seconds * 10 {
            let timestamp = Int64(Self.videoBase) + video.rtpTimestamp(ofFrame: index)
            for frame in try encoder.encode(video.nextFrame()) {
                for packet in try packetizer.packetize(frame) {
                    for output in depacketizer.push(sequenceNumber: seq, marker: packet.marker, timestamp: timestamp, payload: packet.payload) {
                        guard case let .frame(assembled) = output else { Issue.record("unexpected \(output)"); continue }
                        let picture = try #require(try decoder.decode(assembled.data))
                        if SyntheticVideo.isSyncFrame(picture) {
                            flashes.append((Double(assembled.timestamp - Int64(Self.videoBase)) / 90_000, index))
                        } else {
                            #expect(video.readCounter(picture) == index)
                        }
                    }
                    seq += 1
                }
            }
        }
        return flashes
    }

    @Test("beeps decode at exactly 5 s and 10 s, and the white frames are frames 50 and 100 at the same instants")
    func marksLineUp() throws {
        let beeps = try audioBeepTimes()
        let flashes = try videoFlashes()
        #expect(beeps.count == 2 && flashes.count == 2)
        for (k, time) in beeps.enumerated() {
            let expected = Double(5 * (k + 1))
            #expect(abs(time - expected) <= 0.020, "beep \(k + 1) at \(time) s")   // ± 1 audio frame
        }
        #expect(flashes.map(\.index) == [50, 100])
        #expect(flashes.map(\.time) == [5.0, 10.0])
        for (beep, flash) in zip(beeps, flashes) {
            #expect(abs(beep - flash.time) <= 0.020)
        }
    }
}
