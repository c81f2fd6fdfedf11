import RTPWire

/// An SRTP session for one master key and one direction: the crypto context plus per-SSRC
/// streams created on demand (like libsrtp's "any SSRC" policy).
///
/// An inbound session creates a stream for a new SSRC only after that SSRC's first packet
/// authenticated, so forged packets leave no state behind. Streams are bounded by `maxStreams`.
/// Not thread-safe: one owner (one socket loop) at a time.
public final class SRTPSession {
    public let crypto: SRTPCryptoContext
    public let replayWindowSize: Int
    public let maxStreams: Int
    private var streams: [UInt32: SRTPStream] = [:]
    // Most datagrams repeat the previous SSRC; this skips the hash lookup for them.
    private var lastStream: SRTPStream?

    @inline(__always)
    private func cachedStream(_ ssrc: UInt32) -> SRTPStream? {
        if let s = lastStream, s.ssrc == ssrc { return s }
        let s = streams[ssrc]
        if s != nil { lastStream = s }
        return s
    }

    /// Default replay window for recording: 1024 packets (RFC 3711 asks for at least 64).
    public static let defaultReplayWindow = 1024

    public init(profile: SRTPProfile, masterKey: SecretBytes, masterSalt: SecretBytes, direction: SRTPDirection,
                replayWindowSize: Int = SRTPSession.defaultReplayWindow, maxStreams: Int = 4096) throws(SRTPError) {
        crypto = try SRTPCryptoContext(profile: profile, masterKey: masterKey, masterSalt: masterSalt, direction: direction)
        self.replayWindowSize = replayWindowSize
        self.maxStreams = maxStreams
    }

    public var profile: SRTPProfile { crypto.profile }
    public var direction: SRTPDirection { crypto.direction }
    /// Number of SSRCs with state.
    public var streamCount: Int { streams.count }
    /// The state for `ssrc`, if any packet of it was protected or authenticated.
    public func stream(for ssrc: UInt32) -> SRTPStream? { streams[ssrc] }

    /// The stream for `ssrc`, created if this side sends it. Throws when the bound is reached.
    public func outboundStream(for ssrc: UInt32, initialROC: UInt32 = 0) throws(SRTPError) -> SRTPStream {
        if let s = cachedStream(ssrc) { return s }
        guard streams.count < maxStreams else { throw .tooManyStreams(limit: maxStreams) }
        let s = SRTPStream(ssrc: ssrc, initialROC: initialROC, replayWindowSize: replayWindowSize)
        streams[ssrc] = s
        return s
    }

    /// Drops the state for `ssrc` (for example after RTCP BYE).
    public func removeStream(for ssrc: UInt32) {
        streams[ssrc] = nil
        if lastStream?.ssrc == ssrc { lastStream = nil }
    }

    // MARK: pointer-level (no allocation per packet)

    /// Protects the RTP packet in the first `length` bytes of `buffer`; returns the SRTP length.
    public func protect(_ buffer: UnsafeMutableRawBufferPointer, length: Int) throws(SRTPError) -> Int {
        guard length >= 12 else { throw .malformed(.truncated(field: .fixedHeader, needed: 12, available: length)) }
        let ssrc = loadBigEndian32(buffer.baseAddress!, at: 8)
        return try crypto.protectRTP(buffer, length: length, stream: try outboundStream(for: ssrc))
    }

    /// Unprotects the SRTP packet filling `buffer`; returns the RTP length.
    public func unprotect(_ buffer: UnsafeMutableRawBufferPointer) throws(SRTPError) -> Int {
        guard buffer.count >= 12 else { throw .malformed(.truncated(field: .fixedHeader, needed: 12, available: buffer.count)) }
        let ssrc = loadBigEndian32(buffer.baseAddress!, at: 8)
        if let s = cachedStream(ssrc) { return try crypto.unprotectRTP(buffer, stream: s) }
        guard streams.count < maxStreams else { throw .tooManyStreams(limit: maxStreams) }
        let candidate = SRTPStream(ssrc: ssrc, replayWindowSize: replayWindowSize)
        let n = try crypto.unprotectRTP(buffer, stream: candidate)
        streams[ssrc] = candidate   // only now: the packet authenticated
        return n
    }

    /// Protects the RTCP compound packet in the first `length` bytes of `buffer`; returns the SRTCP length.
    public func protectRTCP(_ buffer: UnsafeMutableRawBufferPointer, length: Int, encrypt: Bool = true) throws(SRTPError) -> Int {
        guard length >= 8 else { throw .malformed(.truncated(field: .rtcpHeader, needed: 8, available: length)) }
        let ssrc = loadBigEndian32(buffer.baseAddress!, at: 4)
        return try crypto.protectRTCP(buffer, length: length, stream: try outboundStream(for: ssrc), encrypt: encrypt)
    }

    /// Unprotects the SRTCP packet filling `buffer`; returns the RTCP length.
    public func unprotectRTCP(_ buffer: UnsafeMutableRawBufferPointer) throws(SRTPError) -> Int {
        guard buffer.count >= 8 else { throw .malformed(.truncated(field: .rtcpHeader, needed: 8, available: buffer.count)) }
        let ssrc = loadBigEndian32(buffer.baseAddress!, at: 4)
        if let s = cachedStream(ssrc) { return try crypto.unprotectRTCP(buffer, stream: s) }
        guard streams.count < maxStreams else { throw .tooManyStreams(limit: maxStreams) }
        let candidate = SRTPStream(ssrc: ssrc, replayWindowSize: replayWindowSize)
        let n = try crypto.unprotectRTCP(buffer, stream: candidate)
        streams[ssrc] = candidate
        return n
    }

    // MARK: array conveniences

    /// Protects `packet` (an RTP packet) in place.
    public func protect(_ packet: inout [UInt8]) throws(SRTPError) {
        let length = packet.count
        packet.append(contentsOf: repeatElement(0, count: crypto.srtpOverhead))
        let n = try packet.withSRTPBytes { (b) throws(SRTPError) in try protect(b, length: length) }
        packet.removeLast(packet.count - n)
    }

    /// Unprotects `packet` (an SRTP packet) in place; on failure `packet` is unchanged.
    public func unprotect(_ packet: inout [UInt8]) throws(SRTPError) {
        let n = try packet.withSRTPBytes { (b) throws(SRTPError) in try unprotect(b) }
        packet.removeLast(packet.count - n)
    }

    /// Protects `packet` (an RTCP compound packet) in place.
    public func protectRTCP(_ packet: inout [UInt8], encrypt: Bool = true) throws(SRTPError) {
        let length = packet.count
        packet.append(contentsOf: repeatElement(0, count: crypto.srtcpOverhead))
        let n = try packet.withSRTPBytes { (b) throws(SRTPError) in try protectRTCP(b, length: length, encrypt: encrypt) }
        packet.removeLast(packet.count - n)
    }

    /// Unprotects `packet` (an SRTCP packet) in place; on failure `packet` is unchanged.
    public func unprotectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        let n = try packet.withSRTPBytes { (b) throws(SRTPError) in try unprotectRTCP(b) }
        packet.removeLast(packet.count - n)
    }
}
