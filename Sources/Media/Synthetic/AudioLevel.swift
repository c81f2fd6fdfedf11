#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif
import RTPWire

/// The client-to-mixer audio level of a PCM frame (RFC 6464 §3), as RTPWire's `RTPAudioLevel`.
///
/// The level is the frame's RMS relative to full scale (±32768) in −dBov, rounded and clamped
/// to 0...127: a full-scale sine reads 3, digital silence 127. The voice-activity flag is a plain
/// energy gate: set when the level is at or below `voiceThreshold` (i.e. at least that loud).
public enum AudioLevel {
    /// Default gate for the V flag: −50 dBov.
    public static let defaultVoiceThreshold: UInt8 = 50

    /// RMS level of `pcm` in dBov (≤ 0); `-infinity` for digital silence or an empty frame.
    public static func dBov(_ pcm: [Int16]) -> Double {
        guard !pcm.isEmpty else { return -.infinity }
        var sum = 0.0
        for s in pcm { let x = Double(s) / 32768; sum += x * x }
        guard sum > 0 else { return -.infinity }
        return 10 * log10(sum / Double(pcm.count))
    }

    /// The RFC 6464 element value for one frame (any length; 20 ms = 960 samples at 48 kHz).
    public static func measure(_ pcm: [Int16], voiceThreshold: UInt8 = defaultVoiceThreshold) -> RTPAudioLevel {
        let db = dBov(pcm)
        let level: UInt8 = db.isFinite ? UInt8(min(127, max(0, (-db).rounded()))) : 127
        return RTPAudioLevel(byte: (level <= voiceThreshold && level < 127 ? 0x80 : 0) | level)
    }
}
