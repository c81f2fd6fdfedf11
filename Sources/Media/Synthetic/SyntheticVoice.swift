#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// A deterministic, speech-like test participant: 48 kHz mono in 20 ms frames.
///
/// Talk spurts (voiced "syllables": a harmonic series on a slowly gliding pitch of 100–250 Hz,
/// shaped by three vowel formants, at a syllable rate of about 3–6 Hz) alternate with stretches
/// of digital silence, so an Opus encoder with DTX stops sending. The same seed always yields the
/// same samples.
///
/// Every `syncInterval` samples (5 s: t = 5, 10, 15 … s) a `beepDuration` (50 ms) 1 kHz tone at
/// a clearly higher level replaces the signal, starting exactly at the instant, which is always
/// the first sample of a frame (5 s = 250 frames). Exporters use it to check A/V sync against
/// `SyntheticVideo`'s white frames.
public struct SyntheticVoice: Sendable {
    /// One 20 ms frame and what it contains.
    public struct Frame: Sendable, Equatable {
        /// 960 samples of 16-bit PCM.
        public var samples: [Int16]
        /// 0 for the first frame.
        public var index: Int
        /// Index of `samples[0]` in the stream (= index × 960).
        public var firstSample: Int
        /// Some sample of the frame lies in a talk spurt.
        public var isTalking: Bool
        /// Some sample of the frame is part of a sync beep.
        public var isSyncBeep: Bool
        /// A sync beep starts at `samples[0]`.
        public var startsSyncBeep: Bool
    }

    public static let sampleRate = 48_000
    public static let frameSize = 960
    /// Distance between sync instants: 5 s.
    public static let syncInterval = 5 * 48_000
    /// Length of a sync beep: 50 ms.
    public static let beepDuration = 2_400
    /// Frequency of a sync beep in Hz.
    public static let beepFrequency = 1_000.0
    /// Peak amplitude of a sync beep as a fraction of full scale (−9 dBov RMS, RFC 6464 level 9).
    public static let beepAmplitude = 0.5

    /// Peak amplitude of the speech as a fraction of full scale; speech never exceeds it by more than 4 %.
    public let peakLevel: Double
    private let talkSpurt: ClosedRange<Double>
    private let silence: ClosedRange<Double>
    private var rng: SeededGenerator

    /// Index of the next sample to generate.
    public private(set) var sampleIndex = 0
    /// Index of the next frame `nextFrame()` returns.
    public private(set) var frameIndex = 0
    /// Whether the frame last returned had speech in it.
    public private(set) var isTalking = false
    /// Whether the frame last returned had (part of) a sync beep in it.
    public private(set) var isSyncBeep = false

    // Schedule state.
    private var talking = false
    private var segmentRemaining = 0          // silence samples left, or talk-spurt samples left
    private var inGap = true
    private var gapRemaining = 0
    private var syllablePosition = 0
    private var syllableLength = 1
    // Voice state.
    private var phase = 0.0
    private var spurtBasePitch = 150.0
    private var spurtPosition = 0
    private var intonationPhase = 0.0
    private var formants: (Double, Double, Double) = (730, 1090, 2440)
    private var amplitudes: [Double] = []
    private var pitch = 150.0

    /// Vowel formant targets (F1, F2, F3) in Hz, roughly /a e i o u/ of an adult speaker.
    private static let vowels: [(Double, Double, Double)] = [
        (730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410), (300, 870, 2240),
    ]

    /// - Parameters:
    ///   - seed: selects the talk/silence pattern, pitches and vowels.
    ///   - talkSpurtSeconds: range of talk-spurt lengths (default 1–4 s).
    ///   - silenceSeconds: range of silence lengths between spurts (default 0.5–3 s).
    ///   - peakLevel: speech peak as a fraction of full scale, below the beep's 0.5 (default 0.25).
    public init(seed: UInt64, talkSpurtSeconds: ClosedRange<Double> = 1 ... 4,
                silenceSeconds: ClosedRange<Double> = 0.5 ... 3, peakLevel: Double = 0.25) throws(MediaError) {
        guard talkSpurtSeconds.lowerBound >= 0.2, talkSpurtSeconds.upperBound <= 60 else {
            throw .invalidArgument(name: "talkSpurtSeconds", reason: "\(talkSpurtSeconds) outside 0.2...60 s")
        }
        guard silenceSeconds.lowerBound >= 0.02, silenceSeconds.upperBound <= 60 else {
            throw .invalidArgument(name: "silenceSeconds", reason: "\(silenceSeconds) outside 0.02...60 s")
        }
        guard peakLevel > 0, peakLevel <= 0.4 else {
            throw .invalidArgument(name: "peakLevel", reason: "\(peakLevel) outside (0, 0.4]; the sync beep must stay clearly louder")
        }
        self.talkSpurt = talkSpurtSeconds
        self.silence = silenceSeconds
        self.peakLevel = peakLevel
        rng = SeededGenerator(seed: seed)
        // Open with a short silence so a stream never starts mid-word.
        segmentRemaining = Int(rng.uniform(0.2 ... 0.8) * Double(Self.sampleRate))
    }

    /// True if a sync beep covers stream sample `n`.
    public static func isSyncBeepSample(_ n: Int) -> Bool {
        n >= syncInterval && n % syncInterval < beepDuration
    }

    /// The frame in which the `k`-th sync beep starts (k ≥ 1): frame 250·k.
    public static func syncFrameIndex(_ k: Int) -> Int { k * syncInterval / frameSize }

    /// The next 960 samples; also updates `isTalking` and `isSyncBeep`.
    public mutating func nextFrame() -> [Int16] { next().samples }

    /// The next 20 ms frame with its flags.
    public mutating func next() -> Frame {
        let first = sampleIndex
        var samples = [Int16](repeating: 0, count: Self.frameSize)
        var talked = false, beeped = false
        for i in 0 ..< Self.frameSize {
            let n = first + i
            let (speech, speaking) = nextSpeechSample()
            talked = talked || speaking
            var x = speech
            if Self.isSyncBeepSample(n) {
                beeped = true
                let t = Double(n % Self.syncInterval) / Double(Self.sampleRate)
                x = Self.beepAmplitude * sin(2 * .pi * Self.beepFrequency * t)
            }
            samples[i] = Int16(max(-32768, min(32767, (x * 32767).rounded())))
        }
        sampleIndex += Self.frameSize
        let frame = Frame(samples: samples, index: frameIndex, firstSample: first, isTalking: talked,
                          isSyncBeep: beeped, startsSyncBeep: first >= Self.syncInterval && first % Self.syncInterval == 0)
        frameIndex += 1
        isTalking = talked
        isSyncBeep = beeped
        return frame
    }

    // MARK: Speech model

    /// One speech sample in −(peak·1.04)...peak·1.04 and whether it belongs to a talk spurt.
    private mutating func nextSpeechSample() -> (Double, Bool) {
        guard talking else {
            segmentRemaining -= 1
            if segmentRemaining <= 0 { startSpurt() }
            return (0, false)
        }
        segmentRemaining -= 1
        spurtPosition += 1
        if inGap {
            gapRemaining -= 1
            if gapRemaining <= 0 {
                if segmentRemaining <= 0 { startSilence() } else { startSyllable() }
            }
            return (0, true)
        }
        if syllablePosition % 240 == 0 { updateSpectrum() }   // every 5 ms
        let p = Double(syllablePosition) / Double(syllableLength)
        let envelope = sin(.pi * p)
        // Harmonics h·f0 by the Chebyshev recurrence sin((h+1)φ) = 2cosφ·sin(hφ) − sin((h−1)φ).
        let s1 = sin(phase), twoCos = 2 * cos(phase)
        var previous = 0.0, current = s1, voiced = 0.0
        for a in amplitudes {
            voiced += a * current
            let next = twoCos * current - previous
            previous = current
            current = next
        }
        let breath = 0.04 * Double.random(in: -1 ... 1, using: &rng)
        phase += 2 * .pi * pitch / Double(Self.sampleRate)
        if phase > 2 * .pi { phase -= 2 * .pi }
        syllablePosition += 1
        if syllablePosition >= syllableLength { startGap() }
        return (peakLevel * envelope * (voiced * 0.96 + breath), true)
    }

    private mutating func startSpurt() {
        talking = true
        segmentRemaining = Int(rng.uniform(talkSpurt) * Double(Self.sampleRate))
        spurtPosition = 0
        spurtBasePitch = rng.uniform(110 ... 200)
        intonationPhase = rng.uniform(0 ... 2 * .pi)
        startSyllable()
    }

    private mutating func startSilence() {
        talking = false
        segmentRemaining = Int(rng.uniform(silence) * Double(Self.sampleRate))
    }

    private mutating func startSyllable() {
        inGap = false
        syllablePosition = 0
        syllableLength = Int(rng.uniform(0.12 ... 0.28) * Double(Self.sampleRate))
        formants = Self.vowels[Int.random(in: 0 ..< Self.vowels.count, using: &rng)]
    }

    private mutating func startGap() {
        inGap = true
        gapRemaining = Int(rng.uniform(0.02 ... 0.08) * Double(Self.sampleRate))
    }

    /// Recomputes pitch and the harmonic amplitudes (formant envelope, normalised to sum 1).
    private mutating func updateSpectrum() {
        let t = Double(spurtPosition) / Double(Self.sampleRate)
        let declination = 12 * t
        pitch = max(100, min(250, spurtBasePitch + 25 * sin(2 * .pi * 0.7 * t + intonationPhase) - declination))
        // Formants glide in from a closed (consonant-like) onset over the first 30 % of the syllable.
        let glide = min(1, Double(syllablePosition) / (0.3 * Double(syllableLength)))
        let f1 = formants.0 * (0.6 + 0.4 * glide), f2 = formants.1 * (0.85 + 0.15 * glide), f3 = formants.2
        let count = Int(3800 / pitch)
        var amps = [Double](repeating: 0, count: count)
        var total = 0.0
        for h in 1 ... count {
            let f = Double(h) * pitch
            func peak(_ centre: Double, _ width: Double) -> Double {
                let d = (f - centre) / width
                return 1 / (1 + d * d)
            }
            let a = 1.0 * peak(f1, 90) + 0.6 * peak(f2, 120) + 0.3 * peak(f3, 160) + 0.03
            amps[h - 1] = a
            total += a
        }
        amplitudes = amps.map { $0 / total }
    }

    // MARK: Detection

    /// Stream positions (sample indices into `pcm`) where a sync beep starts, found by level and
    /// confirmed by a 1 kHz Goertzel filter; works on decoded audio (shifted by codec delay).
    ///
    /// A beep is a run of samples louder than `threshold` (default 12000 ≈ 0.37 of full scale,
    /// above any speech peak) whose next 10 ms carry at least 60 % of their energy at 1 kHz; the
    /// onset is the last non-positive sample before the tone's first rising half-cycle (exact on
    /// the generated signal, within a few samples after lossy coding).
    public static func syncBeepOnsets(in pcm: [Int16], threshold: Int16 = 12_000) -> [Int] {
        var onsets: [Int] = []
        let window = 480
        let limit = Int(threshold)
        var i = 0
        while i < pcm.count {
            guard abs(Int(pcm[i])) >= limit else { i += 1; continue }
            guard i + window <= pcm.count, toneFraction(pcm[i ..< i + window]) >= 0.6 else { i += 1; continue }
            // Back down the first rising half-cycle to the zero crossing where the tone begins.
            var j = i
            while j > 0, i - j < 12, pcm[j - 1] > 0, pcm[j - 1] < pcm[j] { j -= 1 }
            if j > 0 { j -= 1 }
            onsets.append(j)
            i = j + beepDuration
        }
        return onsets
    }

    /// Share of the window's energy at `beepFrequency` (Goertzel; 1 for a pure tone over whole periods).
    static func toneFraction(_ window: ArraySlice<Int16>) -> Double {
        let coefficient = 2 * cos(2 * .pi * beepFrequency / Double(sampleRate))
        var s1 = 0.0, s2 = 0.0, energy = 0.0
        for sample in window {
            let x = Double(sample)
            energy += x * x
            let s = x + coefficient * s1 - s2
            s2 = s1
            s1 = s
        }
        guard energy > 0 else { return 0 }
        let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
        return 2 * power / (Double(window.count) * energy)
    }
}
