internal import CVPX

// The only file that calls libvpx. Each class owns one `vpx_codec_ctx_t` at a stable address,
// initialised in `init` and destroyed in `deinit`. Neither class is thread-safe.
//
// libvpx's `vpx_codec_enc_init`/`vpx_codec_dec_init` are macros over the `_ver` functions; the
// CVPX shim wraps them (`percrec_vpx_enc_init`/`percrec_vpx_dec_init`) together with the
// variadic `vpx_codec_control(…, VP8E_SET_CPUUSED, …)`. Everything else here (config fields,
// `VPX_EFLAG_FORCE_KF`, `VPX_DL_REALTIME`, packet iteration) imports directly.

private func vpxError(_ function: String, _ code: vpx_codec_err_t, _ ctx: UnsafeMutablePointer<vpx_codec_ctx_t>?) -> MediaError {
    var message = String(cString: vpx_codec_err_to_string(code))
    var detail: String?
    if let ctx {
        if let text = vpx_codec_error(ctx) { message = String(cString: text) }
        if let text = vpx_codec_error_detail(ctx) { detail = String(cString: text) }
    }
    return .vpx(function: function, code: Int32(bitPattern: code.rawValue), message: message, detail: detail)
}

/// One compressed VP8 frame from `VP8Encoder`.
public struct VP8EncodedFrame: Sendable, Equatable {
    /// The VP8 bitstream of one frame (RFC 6386), starting with the 3-byte frame tag.
    public var data: [UInt8]
    /// True for a key frame (`VPX_FRAME_IS_KEY`; equals the frame tag's P bit being 0).
    public var isKeyFrame: Bool
    /// True if no later frame references this one (`VPX_FRAME_IS_DROPPABLE`): RFC 7741's N bit.
    public var isDroppable: Bool
    /// Presentation time in frame periods (the encoder's time base is 1/framesPerSecond).
    public var pts: Int64
}

/// A libvpx VP8 encoder configured for real-time use (one pass, CBR, no lag).
public final class VP8Encoder {
    public struct Configuration: Sendable, Equatable {
        public var width: Int
        public var height: Int
        /// Frame rate; the time base of `pts` is 1/framesPerSecond.
        public var framesPerSecond: Int
        /// Target bitrate in kbit/s.
        public var targetBitrateKbps: Int
        /// Longest distance between key frames, in frames (`kf_max_dist`).
        public var keyFrameIntervalMax: Int
        /// libvpx speed/quality trade-off for VP8, −16...16 (higher = faster).
        public var cpuUsed: Int
        /// Error-resilient mode (recommended for RTP).
        public var errorResilient: Bool

        public init(width: Int, height: Int, framesPerSecond: Int = 30, targetBitrateKbps: Int = 500,
                    keyFrameIntervalMax: Int = 300, cpuUsed: Int = 8, errorResilient: Bool = true) {
            self.width = width
            self.height = height
            self.framesPerSecond = framesPerSecond
            self.targetBitrateKbps = targetBitrateKbps
            self.keyFrameIntervalMax = keyFrameIntervalMax
            self.cpuUsed = cpuUsed
            self.errorResilient = errorResilient
        }
    }

    public let configuration: Configuration
    private let ctx: UnsafeMutablePointer<vpx_codec_ctx_t>
    private var keyFrameRequested = false
    private var nextPTS: Int64 = 0

    /// Creates the encoder; throws with libvpx's error text if it rejects the configuration.
    public init(_ configuration: Configuration) throws(MediaError) {
        let c = configuration
        guard (2 ... 16_383).contains(c.width), (2 ... 16_383).contains(c.height) else {
            throw .invalidArgument(name: "size", reason: "\(c.width)×\(c.height) outside 2...16383")
        }
        guard (1 ... 1000).contains(c.framesPerSecond) else {
            throw .invalidArgument(name: "framesPerSecond", reason: "\(c.framesPerSecond) outside 1...1000")
        }
        guard c.targetBitrateKbps > 0 else {
            throw .invalidArgument(name: "targetBitrateKbps", reason: "\(c.targetBitrateKbps) is not positive")
        }
        guard c.keyFrameIntervalMax > 0 else {
            throw .invalidArgument(name: "keyFrameIntervalMax", reason: "\(c.keyFrameIntervalMax) is not positive")
        }
        guard (-16 ... 16).contains(c.cpuUsed) else {
            throw .invalidArgument(name: "cpuUsed", reason: "\(c.cpuUsed) outside −16...16")
        }
        var cfg = vpx_codec_enc_cfg_t()
        var rc = vpx_codec_enc_config_default(vpx_codec_vp8_cx(), &cfg, 0)
        guard rc == VPX_CODEC_OK else { throw vpxError("vpx_codec_enc_config_default", rc, nil) }
        cfg.g_w = UInt32(c.width)
        cfg.g_h = UInt32(c.height)
        cfg.g_timebase = vpx_rational(num: 1, den: Int32(c.framesPerSecond))
        cfg.rc_target_bitrate = UInt32(c.targetBitrateKbps)
        cfg.g_pass = VPX_RC_ONE_PASS
        cfg.g_lag_in_frames = 0
        cfg.g_threads = 1
        cfg.rc_end_usage = VPX_CBR
        cfg.rc_dropframe_thresh = 0       // every input frame yields an output frame
        cfg.g_error_resilient = c.errorResilient ? vpx_codec_er_flags_t(VPX_ERROR_RESILIENT_DEFAULT) : 0
        cfg.kf_mode = VPX_KF_AUTO
        cfg.kf_min_dist = 0
        cfg.kf_max_dist = UInt32(c.keyFrameIntervalMax)

        // Set up in a local and store it only on success, so `deinit` never sees a failed context.
        let context = UnsafeMutablePointer<vpx_codec_ctx_t>.allocate(capacity: 1)
        context.initialize(to: vpx_codec_ctx_t())
        rc = percrec_vpx_enc_init(context, &cfg, 0)
        guard rc == VPX_CODEC_OK else {
            let error = vpxError("vpx_codec_enc_init", rc, context)
            context.deallocate()
            throw error
        }
        rc = percrec_vpx_set_cpuused(context, Int32(c.cpuUsed))
        guard rc == VPX_CODEC_OK else {
            let error = vpxError("vpx_codec_control(VP8E_SET_CPUUSED)", rc, context)
            vpx_codec_destroy(context)
            context.deallocate()
            throw error
        }
        ctx = context
        self.configuration = c
    }

    deinit {
        vpx_codec_destroy(ctx)
        ctx.deallocate()
    }

    /// Makes the next encoded frame a key frame (`VPX_EFLAG_FORCE_KF`).
    public func forceKeyFrame() { keyFrameRequested = true }

    /// Encodes one frame with the real-time deadline; returns the compressed frames libvpx emits
    /// for it (with this configuration, normally exactly one).
    ///
    /// - Parameter pts: presentation time in frame periods; `nil` continues from the previous frame.
    /// Throws if the frame's size differs from the configuration or libvpx fails.
    public func encode(_ frame: I420Frame, pts: Int64? = nil) throws(MediaError) -> [VP8EncodedFrame] {
        guard frame.width == configuration.width, frame.height == configuration.height else {
            throw .invalidArgument(name: "frame", reason: "\(frame.width)×\(frame.height), encoder is \(configuration.width)×\(configuration.height)")
        }
        let pts = pts ?? nextPTS
        nextPTS = pts + 1
        let flags: vpx_enc_frame_flags_t = keyFrameRequested ? vpx_enc_frame_flags_t(VPX_EFLAG_FORCE_KF) : 0
        var image = vpx_image_t()
        let rc: vpx_codec_err_t = frame.y.withUnsafeBufferPointer { y in
            frame.u.withUnsafeBufferPointer { u in
                frame.v.withUnsafeBufferPointer { v in
                    // Wrap without data, then point the planes at our three arrays. libvpx only
                    // reads an input image, so the mutable casts are never written through.
                    guard vpx_img_wrap(&image, VPX_IMG_FMT_I420, UInt32(frame.width), UInt32(frame.height), 1,
                                       UnsafeMutablePointer(mutating: y.baseAddress)) != nil
                    else { return VPX_CODEC_INVALID_PARAM }
                    image.planes.0 = UnsafeMutablePointer(mutating: y.baseAddress)
                    image.planes.1 = UnsafeMutablePointer(mutating: u.baseAddress)
                    image.planes.2 = UnsafeMutablePointer(mutating: v.baseAddress)
                    image.stride.0 = Int32(frame.width)
                    image.stride.1 = Int32(frame.chromaWidth)
                    image.stride.2 = Int32(frame.chromaWidth)
                    return vpx_codec_encode(ctx, &image, pts, 1, flags, UInt(VPX_DL_REALTIME))
                }
            }
        }
        guard rc == VPX_CODEC_OK else { throw vpxError("vpx_codec_encode", rc, ctx) }
        keyFrameRequested = false
        return drain()
    }

    /// Flushes the encoder (end of stream) and returns any frames still held.
    public func flush() throws(MediaError) -> [VP8EncodedFrame] {
        let rc = vpx_codec_encode(ctx, nil, nextPTS, 1, 0, UInt(VPX_DL_REALTIME))
        guard rc == VPX_CODEC_OK else { throw vpxError("vpx_codec_encode(flush)", rc, ctx) }
        return drain()
    }

    private func drain() -> [VP8EncodedFrame] {
        var frames: [VP8EncodedFrame] = []
        var iterator: vpx_codec_iter_t?
        while let packet = vpx_codec_get_cx_data(ctx, &iterator) {
            guard packet.pointee.kind == VPX_CODEC_CX_FRAME_PKT else { continue }
            let f = packet.pointee.data.frame
            guard let buf = f.buf, f.sz > 0 else { continue }
            let bytes = Array(UnsafeRawBufferPointer(start: buf, count: Int(f.sz)))
            frames.append(VP8EncodedFrame(
                data: bytes,
                isKeyFrame: f.flags & vpx_codec_frame_flags_t(VPX_FRAME_IS_KEY) != 0,
                isDroppable: f.flags & vpx_codec_frame_flags_t(VPX_FRAME_IS_DROPPABLE) != 0,
                pts: f.pts))
        }
        return frames
    }
}

/// A libvpx VP8 decoder producing I420 frames.
public final class VP8Decoder {
    private let ctx: UnsafeMutablePointer<vpx_codec_ctx_t>

    /// Creates a VP8 decoder; throws with libvpx's error text on failure.
    public init() throws(MediaError) {
        // Set up in a local and store it only on success, so `deinit` never sees a failed context.
        let context = UnsafeMutablePointer<vpx_codec_ctx_t>.allocate(capacity: 1)
        context.initialize(to: vpx_codec_ctx_t())
        let rc = percrec_vpx_dec_init(context, 0)
        guard rc == VPX_CODEC_OK else {
            let error = vpxError("vpx_codec_dec_init", rc, context)
            context.deallocate()
            throw error
        }
        ctx = context
    }

    deinit {
        vpx_codec_destroy(ctx)
        ctx.deallocate()
    }

    /// Decodes one complete VP8 frame (RFC 6386). Returns the shown picture, or `nil` when the
    /// frame is valid but not meant to be shown (show_frame = 0).
    ///
    /// Throws `.invalidArgument` for empty input and `.vpx` with libvpx's text for corrupt or
    /// undecodable data (for example an inter frame before any key frame).
    public func decode(_ data: [UInt8]) throws(MediaError) -> I420Frame? {
        guard !data.isEmpty else { throw .invalidArgument(name: "data", reason: "empty VP8 frame") }
        guard data.count <= Int(UInt32.max) else { throw .invalidArgument(name: "data", reason: "\(data.count) bytes") }
        let rc = data.withUnsafeBufferPointer { p in
            vpx_codec_decode(ctx, p.baseAddress, UInt32(p.count), nil, 0)
        }
        guard rc == VPX_CODEC_OK else { throw vpxError("vpx_codec_decode", rc, ctx) }
        var iterator: vpx_codec_iter_t?
        var result: I420Frame?
        while let image = vpx_codec_get_frame(ctx, &iterator) {
            result = try copy(image.pointee)
        }
        return result
    }

    private func copy(_ image: vpx_image_t) throws(MediaError) -> I420Frame {
        guard image.fmt == VPX_IMG_FMT_I420 else {
            throw .invalidArgument(name: "decoded image", reason: "format \(image.fmt.rawValue), expected I420")
        }
        let width = Int(image.d_w), height = Int(image.d_h)
        let cw = (width + 1) / 2, ch = (height + 1) / 2
        func plane(_ base: UnsafeMutablePointer<UInt8>?, _ stride: Int32, _ w: Int, _ h: Int) -> [UInt8] {
            guard let base else { return [] }   // a missing plane fails I420Frame's size check below
            var out = [UInt8](); out.reserveCapacity(w * h)
            for row in 0 ..< h {
                out.append(contentsOf: UnsafeBufferPointer(start: base + row * Int(stride), count: w))
            }
            return out
        }
        return try I420Frame(width: width, height: height,
                             y: plane(image.planes.0, image.stride.0, width, height),
                             u: plane(image.planes.1, image.stride.1, cw, ch),
                             v: plane(image.planes.2, image.stride.2, cw, ch))
    }
}
