import Media
import TestSupport

/// Media shared by several suites, built once from the synthetic sources.
enum Fixtures {
    /// A 320×180, 30 fps VP8 clip: 40 frames, key frames at 0 and (forced) 20.
    struct Clip: Sendable {
        var sources: [I420Frame]
        var frames: [VP8EncodedFrame]
    }

    static let forcedKeyFrame = 20

    static let vp8Clip: Result<Clip, MediaError> = Result { () throws(MediaError) -> Clip in
        var video = try SyntheticVideo(width: 320, height: 180, framesPerSecond: 30, seed: 11)
        let encoder = try VP8Encoder(.init(width: 320, height: 180, framesPerSecond: 30, targetBitrateKbps: 600))
        var clip = Clip(sources: [], frames: [])
        for index in 0 ..< 40 {
            let frame = video.nextFrame()
            if index == forcedKeyFrame { encoder.forceKeyFrame() }
            clip.sources.append(frame)
            clip.frames += try encoder.encode(frame)
        }
        return clip
    }

    /// One RTP packet's worth of what the depacketizer needs, plus the frame it came from.
    struct Packet: Sendable {
        var sequenceNumber: Int64
        var marker: Bool
        var timestamp: Int64
        var payload: [UInt8]
        var frameIndex: Int
    }

    /// The clip packetized with `maxPayloadSize`, sequence numbers from `firstSequence`, 3000 ticks per frame.
    static func packets(_ clip: Clip, maxPayloadSize: Int, firstSequence: Int64 = 1000) throws -> [Packet] {
        var packetizer = try VP8Packetizer(maxPayloadSize: maxPayloadSize, firstPictureID: 0x7FF0)
        var out: [Packet] = []
        var seq = firstSequence
        for (index, frame) in clip.frames.enumerated() {
            for p in try packetizer.packetize(frame) {
                out.append(Packet(sequenceNumber: seq, marker: p.marker, timestamp: Int64(index) * 3000, payload: p.payload, frameIndex: index))
                seq += 1
            }
        }
        return out
    }
}

/// Runs a typed-throwing call and keeps the outcome.
func attempt<T, E: Error>(_ body: () throws(E) -> T) -> Result<T, E> {
    Result(catching: body)
}
