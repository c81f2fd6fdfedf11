import Media
import Testing
import TestSupport

@Suite("VP8 codec (libvpx)")
struct VP8CodecTests {
    @Test("every decoded frame matches its source above 30 dB PSNR, and the counter reads back")
    func roundTripPSNR() throws {
        let clip = try Fixtures.vp8Clip.get()
        #expect(clip.frames.count == clip.sources.count)
        let decoder = try VP8Decoder()
        let video = try SyntheticVideo(width: 320, height: 180, framesPerSecond: 30, seed: 11)
        var worst = Double.infinity
        for (index, (frame, source)) in zip(clip.frames, clip.sources).enumerated() {
            let decoded = try #require(try decoder.decode(frame.data))
            #expect(decoded.width == 320 && decoded.height == 180)
            let psnr = try #require(decoded.psnr(against: source))
            worst = min(worst, psnr)
            #expect(video.readCounter(decoded) == index)
        }
        #expect(worst > 30)   // measured ≥ 43 dB at 600 kbit/s
    }

    @Test("the first frame is a key frame whose header carries the configured size")
    func firstFrameIsKey() throws {
        let clip = try Fixtures.vp8Clip.get()
        let first = try #require(clip.frames.first)
        #expect(first.isKeyFrame)
        #expect(first.pts == 0)
        let header = try VP8FrameHeader(parsing: first.data)
        #expect(header.isKeyFrame && header.width == 320 && header.height == 180 && header.showFrame)
        // The frame tag's P bit agrees with libvpx's flag on every frame (RFC 7741 §4.3).
        for frame in clip.frames {
            #expect(try VP8FrameHeader(parsing: frame.data).isKeyFrame == frame.isKeyFrame)
        }
        #expect(clip.frames.map(\.pts) == (0 ..< 40).map(Int64.init))
    }

    @Test("forceKeyFrame makes the next frame, and only that one, a key frame")
    func forcedKeyFrame() throws {
        let clip = try Fixtures.vp8Clip.get()
        let keys = clip.frames.enumerated().filter { $0.element.isKeyFrame }.map(\.offset)
        #expect(keys == [0, Fixtures.forcedKeyFrame])
    }

    @Test("no two key frames are further apart than keyFrameIntervalMax", arguments: [5, 12])
    func keyFrameInterval(maximum: Int) throws {
        var video = try SyntheticVideo(width: 160, height: 90, framesPerSecond: 30, seed: 1)
        let encoder = try VP8Encoder(.init(width: 160, height: 90, targetBitrateKbps: 200, keyFrameIntervalMax: maximum))
        var keys: [Int] = []
        for index in 0 ..< 40 {
            for frame in try encoder.encode(video.nextFrame()) where frame.isKeyFrame { keys.append(index) }
        }
        #expect(keys.first == 0)
        let gaps = zip(keys.dropFirst(), keys).map { $0 - $1 }
        #expect(!gaps.isEmpty && gaps.allSatisfy { $0 <= maximum })
        #expect(keys.count >= 40 / maximum)
    }

    @Test("the decoder refuses input it cannot decode, with libvpx's error text")
    func decoderErrors() throws {
        let decoder = try VP8Decoder()
        // An inter frame before any key frame (frame tag from spec/rtp-payloads.md §7.3).
        let delta = attempt { () throws(MediaError) in try decoder.decode(hex("31 14 00 01 02 03 04 05")) }
        guard case let .failure(.vpx(function, code, message, _)) = delta else { Issue.record("got \(delta)"); return }
        #expect(function == "vpx_codec_decode")
        #expect(code == 5)   // VPX_CODEC_UNSUP_BITSTREAM
        #expect(message == "Bitstream not supported by this decoder")
        // A key frame header with no partition data after it.
        let truncated = attempt { () throws(MediaError) in try decoder.decode(hex("b0 5a 00 9d 01 2a 40 01 f0 00")) }
        guard case .failure(.vpx(_, 7, _, _)) = truncated else { Issue.record("got \(truncated)"); return }   // VPX_CODEC_CORRUPT_FRAME
        #expect(throws: MediaError.invalidArgument(name: "data", reason: "empty VP8 frame")) { try decoder.decode([]) }
        // The decoder still works afterwards.
        let clip = try Fixtures.vp8Clip.get()
        #expect(try decoder.decode(clip.frames[0].data) != nil)
    }

    @Test("the encoder rejects a frame of the wrong size and bad configurations")
    func encoderArguments() throws {
        let encoder = try VP8Encoder(.init(width: 160, height: 90))
        let wrong = try I420Frame(width: 320, height: 180)
        #expect(throws: MediaError.self) { try encoder.encode(wrong) }
        #expect(throws: MediaError.self) { try VP8Encoder(.init(width: 0, height: 90)) }
        #expect(throws: MediaError.self) { try VP8Encoder(.init(width: 160, height: 90, keyFrameIntervalMax: 0)) }
        #expect(throws: MediaError.self) { try I420Frame(width: 4, height: 4, y: [0], u: [0], v: [0]) }
    }
}
