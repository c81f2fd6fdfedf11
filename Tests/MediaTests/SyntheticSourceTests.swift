#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Media
import RTPWire
import Testing

@Suite("Synthetic participants and RFC 6464 levels")
struct SyntheticSourceTests {
    @Test("the same seed gives the same audio and video; another seed does not")
    func deterministic() throws {
        var a = try SyntheticVoice(seed: 5), b = try SyntheticVoice(seed: 5), c = try SyntheticVoice(seed: 6)
        var same = true, different = false
        for _ in 0 ..< 200 {
            let x = a.nextFrame(), y = b.nextFrame(), z = c.nextFrame()
            same = same && x == y
            different = different || x != z
        }
        #expect(same && different)
        let v1 = try SyntheticVideo(width: 160, height: 90, seed: 1), v2 = try SyntheticVideo(width: 160, height: 90, seed: 2)
        #expect(v1.frame(at: 17) == (try SyntheticVideo(width: 160, height: 90, seed: 1)).frame(at: 17))
        #expect(v1.frame(at: 17) != v2.frame(at: 17))
        #expect(v1.frame(at: 17) != v1.frame(at: 18))   // it moves
    }

    @Test("speech comes in 1–4 s talk spurts separated by 0.5–3 s of digital silence")
    func talkSpurts() throws {
        var voice = try SyntheticVoice(seed: 21)
        var runs: [(talking: Bool, frames: Int)] = []
        var silentFramesAreZero = true
        for _ in 0 ..< 1500 {   // 30 s
            let frame = voice.next()
            #expect(frame.samples.count == 960)
            #expect(voice.isTalking == frame.isTalking && voice.isSyncBeep == frame.isSyncBeep)
            if !frame.isTalking && !frame.isSyncBeep { silentFramesAreZero = silentFramesAreZero && frame.samples.allSatisfy { $0 == 0 } }
            if let last = runs.last, last.talking == frame.isTalking { runs[runs.count - 1].frames += 1 } else { runs.append((frame.isTalking, 1)) }
        }
        #expect(silentFramesAreZero)
        let inner = runs.dropFirst().dropLast()   // the first and last runs are cut by the clip
        let talk = inner.filter(\.talking).map(\.frames), quiet = inner.filter { !$0.talking }.map(\.frames)
        #expect(talk.count >= 4 && quiet.count >= 4)
        // A spurt may overrun its drawn length by the syllable and pause in progress (< 0.4 s).
        #expect(talk.allSatisfy { (48 ... 222).contains($0) }, "talk runs \(talk)")
        #expect(quiet.allSatisfy { (24 ... 152).contains($0) }, "silence runs \(quiet)")
    }

    @Test("voiced frames have a pitch period of 100–250 Hz and speech never reaches the beep's level")
    func pitchAndLevel() throws {
        var voice = try SyntheticVoice(seed: 3)
        var periods: [Int] = []
        var loudest: Int16 = 0
        for _ in 0 ..< 240 {
            let frame = voice.next()
            guard frame.isTalking, !frame.isSyncBeep else { continue }
            loudest = max(loudest, frame.samples.map { $0 == .min ? .max : abs($0) }.max() ?? 0)
            guard AudioLevel.measure(frame.samples).level < 32 else { continue }
            let x = frame.samples.map(Double.init)
            func autocorrelation(_ lag: Int) -> Double {
                var s = 0.0
                for i in 0 ..< x.count - lag { s += x[i] * x[i + lag] }
                return s
            }
            let lags = 150 ... 600
            periods.append(lags.max { autocorrelation($0) < autocorrelation($1) } ?? 0)
        }
        #expect(periods.count > 50)
        #expect(periods.filter { (192 ... 480).contains($0) }.count * 100 >= periods.count * 95, "periods \(periods)")
        #expect(Double(loudest) <= 0.25 * 1.04 * 32767)
    }

    @Test("a 50 ms 1 kHz beep starts exactly at every 5 s instant, in frames 250, 500, …")
    func syncBeeps() throws {
        var voice = try SyntheticVoice(seed: 8)
        var pcm: [Int16] = []
        var beepFrames: [Int] = [], starts: [Int] = []
        for _ in 0 ..< 800 {
            let frame = voice.next()
            pcm += frame.samples
            if frame.isSyncBeep { beepFrames.append(frame.index) }
            if frame.startsSyncBeep { starts.append(frame.index) }
        }
        #expect(starts == [250, 500, 750])
        #expect(starts == [1, 2, 3].map(SyntheticVoice.syncFrameIndex))
        #expect(beepFrames == [250, 251, 252, 500, 501, 502, 750, 751, 752])
        #expect(SyntheticVoice.syncBeepOnsets(in: pcm) == [240_000, 480_000, 720_000])
        // The tone itself: sin(2π·1000·t) at half scale, zero at the instant, ending after 2400 samples.
        #expect(pcm[240_000] == 0 && pcm[240_012] == 16_384 && pcm[240_036] == -16_384)
        #expect(AudioLevel.measure(Array(pcm[240_000 ..< 240_960])).level == 9)
    }

    @Test("the video's sync frames are entirely white at 5 s, 10 s …, and every other frame shows its number")
    func videoSyncFrames() throws {
        var video = try SyntheticVideo(width: 320, height: 180, framesPerSecond: 10, seed: 4)
        var white: [Int] = []
        for index in 0 ..< 110 {
            let frame = video.nextFrame()
            #expect(video.isSyncFrame == SyntheticVideo.isSyncFrame(frame))
            if SyntheticVideo.isSyncFrame(frame) {
                white.append(index)
                #expect(frame.y.allSatisfy { $0 == 235 } && frame.u.allSatisfy { $0 == 128 } && frame.v.allSatisfy { $0 == 128 })
            } else {
                #expect(video.readCounter(frame) == index)
            }
        }
        #expect(white == [50, 100])
        #expect(video.rtpTimestamp(ofFrame: 50) == 450_000)   // 5 s at 90 kHz
        #expect(throws: MediaError.self) { try SyntheticVideo(width: 321, height: 180) }
    }

    @Test("RFC 6464 level: a full-scale sine reads 3, −20 dBFS reads 23, silence 127", arguments: [
        (1.0, UInt8(3), true), (0.1, 23, true), (0.001, 63, false), (0, 127, false),
    ])
    func audioLevel(amplitude: Double, level: UInt8, voice: Bool) {
        let pcm = (0 ..< 960).map { Int16((amplitude * 32767 * sin(2 * .pi * 440 * Double($0) / 48_000)).rounded()) }
        let measured = AudioLevel.measure(pcm)
        #expect(measured.level == level)
        #expect(measured.voiceActivity == voice)
        #expect(AudioLevel.measure([]).level == 127)
        // The value goes straight into RTPWire's header-extension element.
        #expect(measured.element(id: 1).data == [measured.byte])
    }
}
