internal import COpus

// The only file that calls libopus. Each class owns one C state, created in `init`, freed in
// `deinit`. Neither class is thread-safe: one owner at a time.

/// Opus constants shared by the encoder, decoder and the RTP payload format (RFC 6716, RFC 7587).
public enum OpusConstants {
    /// Opus always runs at 48 kHz in this package (and RTP always counts 48 kHz, RFC 7587 §4.1).
    public static let sampleRate = 48_000
    /// Samples per channel in a 20 ms frame at 48 kHz.
    public static let samplesPer20ms = 960
    /// The frame durations an encoder accepts, in samples per channel: 2.5, 5, 10, 20, 40, 60 ms.
    public static let frameSizes: Set<Int> = [120, 240, 480, 960, 1920, 2880]
    /// The longest packet duration, 120 ms (RFC 6716 §3.2.5).
    public static let maxPacketSamples = 5760
    /// Recommended output buffer for one packet (opus_encode documentation).
    static let maxPacketBytes = 4000

    /// The libopus version string, e.g. "libopus 1.3.1".
    public static var libraryVersion: String { String(cString: opus_get_version_string()) }
}

private func opusError(_ function: String, _ code: Int32) -> MediaError {
    .opus(function: function, code: code, message: String(cString: opus_strerror(code)))
}

/// A libopus encoder at 48 kHz for the VOIP application (RFC 6716).
public final class OpusEncoder {
    /// Encoder settings; the defaults suit one voice over RTP.
    public struct Configuration: Sendable, Equatable {
        /// 1 (mono) or 2 (stereo, interleaved input).
        public var channels: Int
        /// Target bitrate in bits per second (500...512000).
        public var bitrate: Int
        /// Samples per channel in each input frame; one of `OpusConstants.frameSizes` (default 960 = 20 ms).
        public var frameSize: Int
        /// Discontinuous transmission: during silence libopus emits packets of 1–2 bytes that need not be sent.
        public var dtx: Bool
        /// In-band forward error correction (a low-rate copy of the previous frame).
        public var inbandFEC: Bool
        /// 0...10; `nil` keeps libopus's default.
        public var complexity: Int?

        public init(channels: Int = 1, bitrate: Int = 32_000, frameSize: Int = OpusConstants.samplesPer20ms,
                    dtx: Bool = false, inbandFEC: Bool = false, complexity: Int? = nil) {
            self.channels = channels
            self.bitrate = bitrate
            self.frameSize = frameSize
            self.dtx = dtx
            self.inbandFEC = inbandFEC
            self.complexity = complexity
        }
    }

    public let configuration: Configuration
    /// The encoder's algorithmic delay in samples per channel at 48 kHz (`OPUS_GET_LOOKAHEAD`):
    /// decoded audio lags the input by this much.
    public let lookahead: Int
    private let state: OpaquePointer
    private var output: [UInt8]

    /// Creates and configures the encoder; throws with libopus's error text on failure.
    public init(_ configuration: Configuration = Configuration()) throws(MediaError) {
        guard configuration.channels == 1 || configuration.channels == 2 else {
            throw .invalidArgument(name: "channels", reason: "\(configuration.channels); Opus encodes 1 or 2")
        }
        guard OpusConstants.frameSizes.contains(configuration.frameSize) else {
            throw .invalidArgument(name: "frameSize", reason: "\(configuration.frameSize) samples is not 2.5/5/10/20/40/60 ms at 48 kHz")
        }
        guard (500 ... 512_000).contains(configuration.bitrate) else {
            throw .invalidArgument(name: "bitrate", reason: "\(configuration.bitrate) bit/s outside 500...512000")
        }
        if let c = configuration.complexity, !(0 ... 10).contains(c) {
            throw .invalidArgument(name: "complexity", reason: "\(c) outside 0...10")
        }
        var err: Int32 = 0
        guard let state = opus_encoder_create(Int32(OpusConstants.sampleRate), Int32(configuration.channels),
                                              OPUS_APPLICATION_VOIP, &err), err == OPUS_OK
        else { throw opusError("opus_encoder_create", err) }
        self.state = state
        self.configuration = configuration
        self.output = [UInt8](repeating: 0, count: OpusConstants.maxPacketBytes)
        // On a failed ctl, free the state here: `lookahead` is assigned last, so `self` is not yet
        // fully initialised and `deinit` will not run.
        func check(_ rc: Int32, _ request: String) throws(MediaError) {
            guard rc == OPUS_OK else { opus_encoder_destroy(state); throw opusError(request, rc) }
        }
        try check(percrec_opus_set_bitrate(state, Int32(configuration.bitrate)), "OPUS_SET_BITRATE")
        try check(percrec_opus_set_dtx(state, configuration.dtx ? 1 : 0), "OPUS_SET_DTX")
        try check(percrec_opus_set_inband_fec(state, configuration.inbandFEC ? 1 : 0), "OPUS_SET_INBAND_FEC")
        if let c = configuration.complexity {
            try check(percrec_opus_set_complexity(state, Int32(c)), "OPUS_SET_COMPLEXITY")
        }
        var lookahead: Int32 = 0
        try check(percrec_opus_get_lookahead(state, &lookahead), "OPUS_GET_LOOKAHEAD")
        self.lookahead = Int(lookahead)
    }

    deinit { opus_encoder_destroy(state) }

    /// Encodes one frame of interleaved 16-bit PCM (`frameSize × channels` samples) into one Opus packet.
    ///
    /// With DTX on, a packet of 1–2 bytes means "silence, need not be transmitted" (libopus API).
    public func encode(_ pcm: [Int16]) throws(MediaError) -> [UInt8] {
        try checkCount(pcm.count)
        let n = opus_encode(state, pcm, Int32(configuration.frameSize), &output, Int32(output.count))
        guard n > 0 else { throw opusError("opus_encode", n) }
        return Array(output[0 ..< Int(n)])
    }

    /// Encodes one frame of interleaved float PCM in −1...1 (`frameSize × channels` samples).
    public func encode(_ pcm: [Float]) throws(MediaError) -> [UInt8] {
        try checkCount(pcm.count)
        let n = opus_encode_float(state, pcm, Int32(configuration.frameSize), &output, Int32(output.count))
        guard n > 0 else { throw opusError("opus_encode_float", n) }
        return Array(output[0 ..< Int(n)])
    }

    private func checkCount(_ count: Int) throws(MediaError) {
        let expected = configuration.frameSize * configuration.channels
        guard count == expected else {
            throw .invalidArgument(name: "pcm", reason: "\(count) samples, expected \(expected) (\(configuration.frameSize) × \(configuration.channels) channels)")
        }
    }
}

/// A libopus decoder at 48 kHz, with packet-loss concealment for missing packets.
public final class OpusDecoder {
    /// 1 or 2; output samples are interleaved.
    public let channels: Int
    private let state: OpaquePointer
    private var pcm16: [Int16]
    private var pcmFloat: [Float]

    /// Creates a decoder producing `channels` interleaved channels at 48 kHz.
    public init(channels: Int = 1) throws(MediaError) {
        guard channels == 1 || channels == 2 else {
            throw .invalidArgument(name: "channels", reason: "\(channels); Opus decodes to 1 or 2")
        }
        var err: Int32 = 0
        guard let state = opus_decoder_create(Int32(OpusConstants.sampleRate), Int32(channels), &err), err == OPUS_OK
        else { throw opusError("opus_decoder_create", err) }
        self.state = state
        self.channels = channels
        pcm16 = [Int16](repeating: 0, count: OpusConstants.maxPacketSamples * channels)
        pcmFloat = [Float](repeating: 0, count: OpusConstants.maxPacketSamples * channels)
    }

    deinit { opus_decoder_destroy(state) }

    /// Decodes one packet to interleaved 16-bit PCM; its length follows from the packet's TOC.
    ///
    /// Pass `nil` for a lost packet: libopus conceals `lostSamples` samples per channel
    /// (a multiple of 120, i.e. 2.5 ms, up to 5760). A packet of 1–2 bytes (DTX) decodes to
    /// comfort noise or silence of the packet's duration.
    public func decode(_ packet: [UInt8]?, lostSamples: Int = OpusConstants.samplesPer20ms) throws(MediaError) -> [Int16] {
        let frames = try frameCount(packet, lostSamples: lostSamples)
        let n: Int32
        if let packet {
            guard !packet.isEmpty else { throw .invalidArgument(name: "packet", reason: "empty; pass nil for a lost packet") }
            n = packet.withUnsafeBufferPointer { p in
                opus_decode(state, p.baseAddress, Int32(p.count), &pcm16, frames, 0)
            }
        } else {
            n = opus_decode(state, nil, 0, &pcm16, frames, 0)
        }
        guard n >= 0 else { throw opusError("opus_decode", n) }
        return Array(pcm16[0 ..< Int(n) * channels])
    }

    /// Decodes one packet to interleaved float PCM in −1...1; `nil` conceals `lostSamples` as above.
    public func decodeFloat(_ packet: [UInt8]?, lostSamples: Int = OpusConstants.samplesPer20ms) throws(MediaError) -> [Float] {
        let frames = try frameCount(packet, lostSamples: lostSamples)
        let n: Int32
        if let packet {
            guard !packet.isEmpty else { throw .invalidArgument(name: "packet", reason: "empty; pass nil for a lost packet") }
            n = packet.withUnsafeBufferPointer { p in
                opus_decode_float(state, p.baseAddress, Int32(p.count), &pcmFloat, frames, 0)
            }
        } else {
            n = opus_decode_float(state, nil, 0, &pcmFloat, frames, 0)
        }
        guard n >= 0 else { throw opusError("opus_decode_float", n) }
        return Array(pcmFloat[0 ..< Int(n) * channels])
    }

    /// Forgets all decoder history (`OPUS_RESET_STATE`), e.g. when a new SSRC starts.
    public func reset() throws(MediaError) {
        let rc = percrec_opus_decoder_reset(state)
        guard rc == OPUS_OK else { throw opusError("OPUS_RESET_STATE", rc) }
    }

    private func frameCount(_ packet: [UInt8]?, lostSamples: Int) throws(MediaError) -> Int32 {
        if packet != nil { return Int32(OpusConstants.maxPacketSamples) }
        guard lostSamples > 0, lostSamples % 120 == 0, lostSamples <= OpusConstants.maxPacketSamples else {
            throw .invalidArgument(name: "lostSamples", reason: "\(lostSamples) is not a multiple of 120 (2.5 ms) in 120...5760")
        }
        return Int32(lostSamples)
    }
}
