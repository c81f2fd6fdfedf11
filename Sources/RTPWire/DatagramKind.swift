/// What a datagram on a shared media port carries, judged by its first bytes (RFC 7983 §7).
///
/// ```
///  first byte   0...3 STUN | 16...19 ZRTP | 20...63 DTLS | 64...79 TURN channel | 128...191 RTP/RTCP
///  second byte  192...223 within RTP/RTCP: RTCP packet type, else RTP (RFC 5761 §4)
/// ```
public enum DatagramKind: Sendable, Equatable, CaseIterable {
    case stun, zrtp, dtls, turnChannel, rtp, rtcp, unknown

    /// Classifies `bytes`; empty input, unlisted first bytes and a lone RTP/RTCP byte are `.unknown`.
    public static func classify(_ bytes: UnsafeRawBufferPointer) -> DatagramKind {
        guard let first = bytes.first else { return .unknown }
        switch first {
        case 0 ... 3: return .stun
        case 16 ... 19: return .zrtp
        case 20 ... 63: return .dtls
        case 64 ... 79: return .turnChannel
        case 128 ... 191:
            guard bytes.count >= 2 else { return .unknown }
            return RTCPPacketType.validRange.contains(bytes[1]) ? .rtcp : .rtp
        default: return .unknown
        }
    }

    /// Classifies `bytes`.
    public static func classify(_ bytes: [UInt8]) -> DatagramKind {
        bytes.withUnsafeBytes { classify($0) }
    }

    /// Classifies `bytes`.
    public static func classify(_ bytes: ArraySlice<UInt8>) -> DatagramKind {
        bytes.withUnsafeBytes { classify($0) }
    }
}
