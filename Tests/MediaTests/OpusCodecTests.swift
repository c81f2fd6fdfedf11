#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
import Media
import TestSupport

@Suite("Opus codec (libopus)")
struct OpusCodecTests {
    /// Encodes `frames` 20 ms frames of the synthetic voice and decodes them again.
    private func roundTrip(seed: UInt64, frames: Int, bitrate: Int) throws -> (input: [Int16], output: [Int16], lookahead: Int) {
        var voice = try SyntheticVoice(seed: seed)
        let encoder = try OpusEncoder(.init(bitrate: bitrate))
        let decoder = try OpusDecoder()
        var input: [Int16] = [], output: [Int16] = []
        for _ in 0 ..< frames {
            let pcm = voice.nextFrame()
            input += pcm
            output += try decoder.decode(try encoder.encode(pcm))
        }
        return (input, output, encoder.lookahead)
    }

    private func correlation(_ x: [Int16], _ y: [Int16], lag: Int) -> Double {
        var xy = 0.0, xx = 0.0, yy = 0.0
        for i in 0 ..< x.count - lag {
            let a = Double(x[i]), b = Double(y[i + lag])
            xy += a * b; xx += a * a; yy += b * b
        }
        return xx > 0 && yy > 0 ? xy / (xx * yy).squareRoot() : 0
    }

    /// Bitrate, minimum waveform correlation, minimum SNR (dB). Measured with libopus 1.3.1 on
    /// 5 s of seed-7 speech: r 0.902 / 9.1 dB at 32 kbit/s (SILK does not keep the waveform
    /// exactly), r 0.972 / 12.5 dB at 64 kbit/s.
    static let fidelity: [(Int, Double, Double)] = [(32_000, 0.85, 7), (64_000, 0.95, 11)]

    @Test("decoded speech matches the input once shifted by the encoder's lookahead", arguments: fidelity)
    func roundTripFidelity(bitrate: Int, minimumCorrelation: Double, minimumSNR: Double) throws {
        let (input, output, lookahead) = try roundTrip(seed: 7, frames: 250, bitrate: bitrate)
        #expect(output.count == input.count)
        #expect(lookahead == 312)   // libopus 1.3.1, VOIP, 48 kHz: 6.5 ms
        // The best alignment is the lookahead, within a few samples.
        let lags = (lookahead - 6) ... (lookahead + 6)
        let scores = lags.map { correlation(input, output, lag: $0) }
        let best = lags.lowerBound + (scores.indices.max { scores[$0] < scores[$1] } ?? 0)
        #expect(abs(best - lookahead) <= 2)
        #expect(correlation(input, output, lag: lookahead) > minimumCorrelation)
        var signal = 0.0, noise = 0.0
        for i in 0 ..< input.count - best {
            let x = Double(input[i]), e = x - Double(output[i + best])
            signal += x * x; noise += e * e
        }
        #expect(10 * log10(signal / noise) > minimumSNR)
        // The loudness contour survives: per 20 ms frame, decoded level within 1 dB on average
        // (measured 0.34 dB at 32 kbit/s, 0.10 dB at 64 kbit/s).
        var differences: [Double] = []
        for start in stride(from: 0, to: input.count - 960 - lookahead, by: 960) {
            let a = AudioLevel.dBov(Array(input[start ..< start + 960]))
            let b = AudioLevel.dBov(Array(output[start + lookahead ..< start + lookahead + 960]))
            if a > -50 { differences.append(abs(a - b)) }
        }
        #expect(differences.count > 100)
        #expect(differences.reduce(0, +) / Double(differences.count) < 1)
    }

    @Test("the float API decodes what the Int16 API encodes, at the same length")
    func floatAPI() throws {
        var voice = try SyntheticVoice(seed: 2)
        let encoder = try OpusEncoder()
        let decoder = try OpusDecoder()
        for _ in 0 ..< 60 {
            let pcm = voice.nextFrame().map { Float($0) / 32768 }
            let packet = try encoder.encode(pcm)
            let decoded = try decoder.decodeFloat(packet)
            #expect(decoded.count == 960)
            #expect(decoded.allSatisfy { $0.magnitude <= 1.5 })
        }
    }

    @Test("with DTX, digital silence becomes 1-byte packets (TOC only) after a short hangover, with a refresh every 400 ms")
    func dtxPacketSizes() throws {
        var voice = try SyntheticVoice(seed: 1)
        let encoder = try OpusEncoder(.init(dtx: true))
        var sizes: [Int] = [], talking: [Bool] = []
        for _ in 0 ..< 500 {
            let frame = voice.next()
            sizes.append(try encoder.encode(frame.samples).count)
            talking.append(frame.isTalking || frame.isSyncBeep)
        }
        // Silent frames at least 10 frames (200 ms) after the last sound: libopus's hangover is over.
        var quiet: [Int] = []
        var sinceSound = 0
        for i in sizes.indices {
            sinceSound = talking[i] ? 0 : sinceSound + 1
            if !talking[i] && sinceSound > 10 && i > 10 { quiet.append(sizes[i]) }
        }
        #expect(quiet.count > 100)
        let dtx = quiet.filter { $0 == 1 }.count
        // Measured with libopus 1.3.1 (seed 1, 20 s): after a hangover of 6–10 normal-size frames,
        // 210 quiet frames were exactly 1 byte (TOC only, a 0-length frame) and 6 were 32-byte
        // comfort-noise updates, one every 21st frame (≈ 400 ms).
        #expect(Set(quiet).isSubset(of: [1] + Array(20 ... 40)))
        #expect(dtx * 100 >= quiet.count * 90)
        #expect(sizes.enumerated().allSatisfy { talking[$0.offset] ? $0.element > 2 : true })
    }

    @Test("a lost packet is concealed with exactly the requested duration", arguments: [120, 480, 960, 1920, 5760])
    func packetLossConcealment(samples: Int) throws {
        var voice = try SyntheticVoice(seed: 4)
        let encoder = try OpusEncoder()
        let decoder = try OpusDecoder()
        for _ in 0 ..< 50 { _ = try decoder.decode(try encoder.encode(voice.nextFrame())) }
        let concealed = try decoder.decode(nil, lostSamples: samples)
        #expect(concealed.count == samples)
        // After real audio, concealment extrapolates it rather than returning silence.
        if samples == 960 { #expect(concealed.contains { $0 != 0 }) }
        #expect(try decoder.decodeFloat(nil, lostSamples: samples).count == samples)
    }

    @Test("stereo encodes 2 × 960 interleaved samples and decodes to the same count")
    func stereo() throws {
        let encoder = try OpusEncoder(.init(channels: 2, bitrate: 64_000))
        let decoder = try OpusDecoder(channels: 2)
        var voice = try SyntheticVoice(seed: 9)
        let mono = voice.nextFrame()
        let interleaved = mono.flatMap { [$0, $0 / 2] }
        let packet = try encoder.encode(interleaved)
        #expect(packet[0] & 0x04 != 0)   // TOC s bit
        #expect(try decoder.decode(packet).count == 1920)
        #expect(try decoder.decode(nil).count == 1920)
    }

    @Test("bad arguments are rejected before libopus sees them")
    func invalidArguments() throws {
        #expect(throws: MediaError.self) { try OpusEncoder(.init(channels: 3)) }
        #expect(throws: MediaError.self) { try OpusEncoder(.init(frameSize: 1000)) }
        #expect(throws: MediaError.self) { try OpusEncoder(.init(bitrate: 100)) }
        #expect(throws: MediaError.self) { try OpusDecoder(channels: 0) }
        let encoder = try OpusEncoder()
        let short = attempt { () throws(MediaError) in try encoder.encode([Int16](repeating: 0, count: 959)) }
        guard case .failure(.invalidArgument(name: "pcm", _)) = short else { Issue.record("got \(short)"); return }
        let decoder = try OpusDecoder()
        #expect(throws: MediaError.self) { try decoder.decode(nil, lostSamples: 100) }
        #expect(throws: MediaError.self) { try decoder.decode([]) }
    }

    @Test("a corrupt packet fails with libopus's own error text")
    func libraryErrorText() throws {
        let decoder = try OpusDecoder()
        // Code 3 with a frame count of 63 × 20 ms: over the 120 ms limit (RFC 6716 §3.2.5).
        let result = attempt { () throws(MediaError) in try decoder.decode([0xFB, 0x3F]) }
        #expect(result.failure == .opus(function: "opus_decode", code: -4, message: "corrupted stream"))
        try decoder.reset()
        #expect(try decoder.decode([0xF8, 0xFF, 0xFE]).count == 960)
    }
}

extension Result {
    var failure: Failure? {
        if case let .failure(error) = self { return error }
        return nil
    }
}
