import SRTP

/// Which table of EKT cipher code points goes on the wire.
///
/// RFC 8870 disagrees with itself (ekt.md §4.4): the DTLS `EKTCipherType` enum in §5.2.1 is
/// `reserved(0), aeskw_128(1), aeskw_256(2)`, while the IANA "EKT Ciphers" table in §7.2 lists
/// AESKW128 = 0, AESKW256 = 1. Draft-13 has the same mismatch. The pre-RFC implementations
/// found use the §5.2.1 values, so those are the default; confirm against the Key Distributor.
public enum EKTCipherNumbering: Sendable, Equatable, CaseIterable {
    /// RFC 8870 §5.2.1 wire enum: aeskw_128 = 1, aeskw_256 = 2 (0 reserved).
    case rfc8870Section5_2_1
    /// RFC 8870 §7.2 IANA registry: AESKW128 = 0, AESKW256 = 1.
    case ianaRegistry

    /// `.rfc8870Section5_2_1`.
    public static let `default`: EKTCipherNumbering = .rfc8870Section5_2_1
}

/// An EKT cipher (RFC 8870 §4.4): AES Key Wrap with Padding (RFC 5649) under a 128- or
/// 256-bit EKTKey.
public enum EKTCipher: Sendable, Equatable, Hashable, CaseIterable, CustomStringConvertible {
    /// AESKW128 (RFC 8870 §4.4.1): mandatory to implement.
    case aeskw128
    /// AESKW256 (RFC 8870 §4.4.1): optional.
    case aeskw256

    /// EKTKey length L in bytes.
    public var keyLength: Int {
        switch self {
        case .aeskw128: 16
        case .aeskw256: 32
        }
    }

    /// Usage limit T: the most distinct Full EKT fields one EKTKey may encrypt (2^48).
    public var usageLimit: UInt64 { 1 << 48 }

    /// The `EKTCipherType` byte for this cipher under `numbering`.
    public func wireValue(_ numbering: EKTCipherNumbering = .default) -> UInt8 {
        switch (self, numbering) {
        case (.aeskw128, .rfc8870Section5_2_1): 1
        case (.aeskw256, .rfc8870Section5_2_1): 2
        case (.aeskw128, .ianaRegistry): 0
        case (.aeskw256, .ianaRegistry): 1
        }
    }

    /// The cipher a received `EKTCipherType` byte names under `numbering`; nil if unassigned.
    public init?(wireValue: UInt8, numbering: EKTCipherNumbering = .default) {
        guard let cipher = EKTCipher.allCases.first(where: { $0.wireValue(numbering) == wireValue }) else {
            return nil
        }
        self = cipher
    }

    /// A key-wrap instance for `ektKey`, which must be `keyLength` bytes.
    public func makeKeyWrap(ektKey: SecretBytes) throws(EKTError) -> AESKeyWrap {
        guard ektKey.count == keyLength else {
            throw .invalidKEKLength(expected: [keyLength], got: ektKey.count)
        }
        return try AESKeyWrap(kek: ektKey)
    }

    public var description: String {
        switch self {
        case .aeskw128: "AESKW128"
        case .aeskw256: "AESKW256"
        }
    }
}
