import RTPWire

/// Why SRTP or SRTCP protection or unprotection failed.
///
/// Authentication failures, replays and unknown keys are distinct cases so that receivers can
/// count each reason (compare libsrtp's `srtp_err_status_auth_fail`, `replay_fail`, `replay_old`).
public enum SRTPError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The header could not be parsed.
    case malformed(RTPParseError)
    /// The packet is shorter than the transform's tag or trailer.
    case packetTooShort(field: RTPField, needed: Int, available: Int)
    /// The authentication tag did not verify; nothing was changed.
    case authenticationFailed(ssrc: UInt32)
    /// The packet index is inside the replay window and was already accepted.
    case replayed(ssrc: UInt32, index: UInt64)
    /// The packet index is behind the replay window (or before the stream started).
    case tooOld(ssrc: UInt32, index: UInt64)
    /// No key or context is known for this SSRC (for example, no EKT field seen yet).
    case unknownSSRC(UInt32)
    /// Per-SSRC state is bounded; this SSRC would exceed the bound.
    case tooManyStreams(limit: Int)
    /// A key or salt of the wrong length was supplied.
    case invalidKeyLength(what: String, expected: Int, got: Int)
    /// The sender exhausted the 48-bit SRTP index or 31-bit SRTCP index for this key (RFC 3711 §9.2).
    case keyLifetimeExhausted(ssrc: UInt32)
    /// An invalid original header block (RFC 8723 §4).
    case invalidOHB(config: UInt8, reason: String)
    /// The library (OpenSSL) refused an operation; its error text is attached.
    case cryptoLibrary(String)

    public var description: String {
        switch self {
        case let .malformed(e): return "malformed RTP: \(e)"
        case let .packetTooShort(field, needed, available):
            return "packet too short for \(field): needed \(needed) bytes, \(available) available"
        case let .authenticationFailed(ssrc): return "authentication failed for SSRC \(hex32(ssrc))"
        case let .replayed(ssrc, index): return "replayed packet: SSRC \(hex32(ssrc)) index \(index) already seen"
        case let .tooOld(ssrc, index): return "packet too old: SSRC \(hex32(ssrc)) index \(index) is behind the replay window"
        case let .unknownSSRC(ssrc): return "no key for SSRC \(hex32(ssrc))"
        case let .tooManyStreams(limit): return "too many SSRCs (limit \(limit))"
        case let .invalidKeyLength(what, expected, got): return "\(what) must be \(expected) bytes, got \(got)"
        case let .keyLifetimeExhausted(ssrc): return "key lifetime exhausted for SSRC \(hex32(ssrc))"
        case let .invalidOHB(config, reason): return "invalid OHB config 0x\(String(config, radix: 16)): \(reason)"
        case let .cryptoLibrary(msg): return "OpenSSL: \(msg)"
        }
    }
}

@inline(__always)
func hex32(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - s.count) + s
}
