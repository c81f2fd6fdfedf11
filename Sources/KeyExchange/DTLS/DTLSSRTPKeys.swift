import SRTP
import EKT

/// The SRTP protection profile a DTLS-SRTP association keys, after mapping PERC mode.
public enum DTLSSRTPKeying: Sendable, Equatable, CustomStringConvertible {
    /// One SRTP layer (RFC 5764 / RFC 7714), e.g. AEAD_AES_128_GCM.
    case single(SRTPProfile)
    /// Double encryption (RFC 8723): inner end-to-end and outer hop-by-hop layers.
    case double(DoubleSRTPProfile)

    /// Bytes exported with "EXTRACTOR-dtls_srtp" (RFC 5764 §4.2): 2 × (key + salt).
    public var keyingMaterialLength: Int {
        switch self {
        case let .single(p): p.keyingMaterialLength
        case let .double(p): p.keyingMaterialLength
        }
    }
    var keyLength: Int {
        switch self {
        case let .single(p): p.masterKeyLength
        case let .double(p): p.masterKeyLength
        }
    }
    var saltLength: Int {
        switch self {
        case let .single(p): p.masterSaltLength
        case let .double(p): p.masterSaltLength
        }
    }

    public var description: String {
        switch self {
        case let .single(p): p.name
        case let .double(p): p.name
        }
    }
}

/// SRTP master keys and salts exported from a DTLS association (RFC 5764 §4.2), split as
/// `client key | server key | client salt | server salt`.
///
/// For `.double` profiles each key is `inner ‖ outer` and each salt `inner 12 ‖ outer 12`
/// (RFC 8723 §3, §10.1); `clientWriteDouble`/`serverWriteDouble` hold the halves.
/// The client's key and salt protect what the client sends.
public struct DTLSSRTPKeys: Sendable {
    public let keying: DTLSSRTPKeying
    /// The whole exporter output (secret).
    public let keyingMaterial: SecretBytes
    public let clientWriteKey: SecretBytes
    public let serverWriteKey: SecretBytes
    public let clientWriteSalt: SecretBytes
    public let serverWriteSalt: SecretBytes
    /// Inner/outer halves of the client-write key and salt; nil for `.single`.
    public let clientWriteDouble: DoubleMasterKey?
    /// Inner/outer halves of the server-write key and salt; nil for `.single`.
    public let serverWriteDouble: DoubleMasterKey?

    /// Slices `material` (exactly `keying.keyingMaterialLength` bytes) by the RFC 5764 §4.2 layout.
    init(keying: DTLSSRTPKeying, material: SecretBytes) throws(DTLSError) {
        let k = keying.keyLength, s = keying.saltLength
        guard material.count == 2 * (k + s) else {
            throw .exportFailed("\(material.count) bytes of keying material for \(keying), expected \(2 * (k + s))")
        }
        self.keying = keying
        keyingMaterial = material
        clientWriteKey = material.slice(0 ..< k)
        serverWriteKey = material.slice(k ..< 2 * k)
        clientWriteSalt = material.slice(2 * k ..< 2 * k + s)
        serverWriteSalt = material.slice(2 * k + s ..< 2 * (k + s))
        if case let .double(profile) = keying {
            do {
                clientWriteDouble = try DoubleMasterKey(profile: profile, key: clientWriteKey, salt: clientWriteSalt)
                serverWriteDouble = try DoubleMasterKey(profile: profile, key: serverWriteKey, salt: serverWriteSalt)
            } catch {
                throw .exportFailed("\(error)")
            }
        } else {
            clientWriteDouble = nil
            serverWriteDouble = nil
        }
    }
}

/// What the handshake negotiated, read once it completed.
public struct DTLSNegotiation: Sendable, Equatable {
    /// The `use_srtp` profile the server selected, as OpenSSL reports it (0x0007 on OpenSSL 3.0).
    public let srtpProfileID: UInt16
    /// The EKT cipher the server selected in `supported_ekt_ciphers` (ext 39, RFC 8870 §5.2.1);
    /// nil when the server did not answer the extension.
    public let ektCipher: EKTCipher?
    /// The TLS cipher suite name (OpenSSL spelling), e.g. ECDHE-ECDSA-AES128-GCM-SHA256.
    public let cipherSuite: String
    /// The SHA-256 fingerprint of the peer's certificate.
    public let peerFingerprint: DTLSFingerprint

    /// PERC mode: the peers agreed on `supported_ekt_ciphers`, so the association keys the
    /// double profile (RFC 8871 §4.5.1) even though OpenSSL 3.0 negotiated a single profile.
    public var isPERCMode: Bool { ektCipher != nil }
}
