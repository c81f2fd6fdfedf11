/// An SRTP protection profile (RFC 5764 §4.1.2, RFC 7714 §14.2) with its key, salt and tag sizes.
public enum SRTPProfile: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    case aes128CmHmacSha1_80 = 0x0001
    case aes128CmHmacSha1_32 = 0x0002
    case aeadAes128Gcm = 0x0007
    case aeadAes256Gcm = 0x0008

    /// The IANA name used in DTLS-SRTP and by OpenSSL/libsrtp.
    public var name: String {
        switch self {
        case .aes128CmHmacSha1_80: return "SRTP_AES128_CM_HMAC_SHA1_80"
        case .aes128CmHmacSha1_32: return "SRTP_AES128_CM_HMAC_SHA1_32"
        case .aeadAes128Gcm: return "SRTP_AEAD_AES_128_GCM"
        case .aeadAes256Gcm: return "SRTP_AEAD_AES_256_GCM"
        }
    }
    public var description: String { name }

    public var isAEAD: Bool { self == .aeadAes128Gcm || self == .aeadAes256Gcm }
    /// Master (and session encryption) key length in bytes.
    public var masterKeyLength: Int { self == .aeadAes256Gcm ? 32 : 16 }
    /// Master salt length: 112 bits for AES-CM, 96 bits for GCM (RFC 7714 §12).
    public var masterSaltLength: Int { isAEAD ? 12 : 14 }
    /// Session salt length (same as the master salt here).
    public var sessionSaltLength: Int { masterSaltLength }
    /// HMAC-SHA1 session key length (0 for AEAD).
    public var authKeyLength: Int { isAEAD ? 0 : 20 }
    /// Bytes the SRTP transform appends: the HMAC tag or the AEAD tag.
    public var srtpTagLength: Int {
        switch self {
        case .aes128CmHmacSha1_80: return 10
        case .aes128CmHmacSha1_32: return 4
        case .aeadAes128Gcm, .aeadAes256Gcm: return 16
        }
    }
    /// SRTCP tag: always 80 bits for HMAC (RFC 3711 §5.2), 16 bytes for AEAD.
    public var srtcpTagLength: Int { isAEAD ? 16 : 10 }
    /// Packets one key may protect: 2^31 for the CM profiles (RFC 5764), 2^48 for GCM (RFC 7714 §14.2).
    public var maximumLifetime: UInt64 { isAEAD ? 1 << 48 : 1 << 31 }
    /// DTLS-SRTP keying material length (RFC 5764 §4.2): 2 × (key + salt).
    public var keyingMaterialLength: Int { 2 * (masterKeyLength + masterSaltLength) }
}

/// Which way a context transforms packets.
public enum SRTPDirection: Sendable {
    /// Protects packets this side sends.
    case outbound
    /// Unprotects packets this side receives.
    case inbound
}
