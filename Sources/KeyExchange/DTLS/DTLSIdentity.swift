internal import COpenSSL
import SRTP

/// A DTLS certificate and its private key: an ECDSA P-256 key and a self-signed X.509 v3
/// certificate (SHA-256 signature), as WebRTC-style endpoints use (RFC 8827 §6.5, RFC 8122).
///
/// Peers authenticate each other by pinning `fingerprint`, not through a CA. Immutable after
/// `init`, so one identity may be shared by several contexts and threads.
public final class DTLSIdentity: @unchecked Sendable {
    // Immutable after init; OpenSSL's X509 and EVP_PKEY are safe to read from several threads.
    let certificate: OpaquePointer  // X509 *
    let privateKey: OpaquePointer   // EVP_PKEY *
    /// SHA-256 fingerprint of the DER certificate, for SDP `a=fingerprint` and pinning.
    public let fingerprint: DTLSFingerprint

    /// Generates a fresh P-256 key and a self-signed certificate for `commonName`, valid from one
    /// hour ago for `validityDays` days, with a random 63-bit serial number.
    public init(commonName: String = "percrec", validityDays: Int = 365) throws(DTLSError) {
        OpenSSLErrorQueue.clear()
        guard let key = percrec_ec_gen_p256() else {
            throw .openSSL(operation: "EVP_EC_gen(P-256)", message: OpenSSLErrorQueue.drain(fallback: "no key"))
        }
        guard let cert = X509_new() else {
            EVP_PKEY_free(key)
            throw .openSSL(operation: "X509_new", message: OpenSSLErrorQueue.drain(fallback: "out of memory"))
        }
        var serial = UInt64(0)
        withUnsafeMutableBytes(of: &serial) { _ = RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 8) }
        let ok = X509_set_version(cert, 2) == 1   // v3
            && ASN1_INTEGER_set_int64(X509_get_serialNumber(cert), Int64(bitPattern: serial >> 1 | 1)) == 1
            && X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nil
            && X509_gmtime_adj(X509_getm_notAfter(cert), validityDays * 86_400) != nil
            && X509_set_pubkey(cert, key) == 1
            && X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", Int32(percrec_MBSTRING_ASC),
                                          commonName, -1, -1, 0) == 1
            && X509_set_issuer_name(cert, X509_get_subject_name(cert)) == 1
            && X509_sign(cert, key, EVP_sha256()) > 0
        guard ok else {
            X509_free(cert); EVP_PKEY_free(key)
            throw .openSSL(operation: "self-signed certificate", message: OpenSSLErrorQueue.drain(fallback: "X509 setup failed"))
        }
        guard let fp = DTLSIdentity.fingerprint(of: cert) else {
            X509_free(cert); EVP_PKEY_free(key)
            throw .openSSL(operation: "X509_digest", message: OpenSSLErrorQueue.drain(fallback: "digest failed"))
        }
        certificate = cert; privateKey = key; fingerprint = fp
    }

    /// Loads a certificate and its unencrypted private key from PEM text (for example a
    /// recorder's long-term identity kept in files). The key must match the certificate.
    public init(certificatePEM: [UInt8], privateKeyPEM: SecretBytes) throws(DTLSError) {
        OpenSSLErrorQueue.clear()
        let cert: OpaquePointer? = certificatePEM.withUnsafeBytes { raw in
            DTLSIdentity.readPEM(raw, { bio in PEM_read_bio_X509(bio, nil, nil, nil) })
        }
        guard let cert else {
            throw .invalidPEM(what: "certificate", message: OpenSSLErrorQueue.drain(fallback: "no certificate found"))
        }
        let key: OpaquePointer? = privateKeyPEM.withUnsafeBytes { raw in
            DTLSIdentity.readPEM(raw, { bio in PEM_read_bio_PrivateKey(bio, nil, nil, nil) })
        }
        guard let key else {
            X509_free(cert)
            throw .invalidPEM(what: "private key", message: OpenSSLErrorQueue.drain(fallback: "no private key found"))
        }
        guard X509_check_private_key(cert, key) == 1 else {
            X509_free(cert); EVP_PKEY_free(key); OpenSSLErrorQueue.clear()
            throw .keyDoesNotMatchCertificate
        }
        guard let fp = DTLSIdentity.fingerprint(of: cert) else {
            X509_free(cert); EVP_PKEY_free(key)
            throw .openSSL(operation: "X509_digest", message: OpenSSLErrorQueue.drain(fallback: "digest failed"))
        }
        certificate = cert; privateKey = key; fingerprint = fp
    }

    /// Convenience: PEM text as strings.
    public convenience init(certificatePEM: String, privateKeyPEM: String) throws(DTLSError) {
        try self.init(certificatePEM: Array(certificatePEM.utf8), privateKeyPEM: SecretBytes(Array(privateKeyPEM.utf8)))
    }

    deinit {
        X509_free(certificate)
        EVP_PKEY_free(privateKey)   // cleanses the scalar
    }

    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`).
    public var certificatePEM: String {
        String(decoding: DTLSIdentity.writePEM { bio in PEM_write_bio_X509(bio, certificate) }, as: UTF8.self)
    }

    /// The private key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Secret.
    public var privateKeyPEM: SecretBytes {
        var bytes = DTLSIdentity.writePEM { bio in PEM_write_bio_PrivateKey(bio, privateKey, nil, nil, 0, nil, nil) }
        defer { bytes.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        return SecretBytes(bytes)
    }

    /// The DER certificate.
    public var certificateDER: [UInt8] {
        var out: UnsafeMutablePointer<UInt8>? = nil
        let n = i2d_X509(certificate, &out)
        guard n > 0, let out else { return [] }
        defer { CRYPTO_free(out, #fileID, #line) }
        return Array(UnsafeBufferPointer(start: out, count: Int(n)))
    }

    /// SHA-256 fingerprint of an `X509 *` (also used for the peer's certificate).
    static func fingerprint(of cert: OpaquePointer) -> DTLSFingerprint? {
        var md = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var len: UInt32 = 0
        guard X509_digest(cert, EVP_sha256(), &md, &len) == 1 else { return nil }
        return DTLSFingerprint(sha256Digest: Array(md.prefix(Int(len))))
    }

    /// Reads one PEM object from `raw` through a read-only memory BIO (no copy of the bytes).
    private static func readPEM(_ raw: UnsafeRawBufferPointer, _ read: (OpaquePointer) -> OpaquePointer?) -> OpaquePointer? {
        guard raw.count > 0, raw.count <= Int(Int32.max),
              let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
        defer { BIO_free(bio) }
        return read(bio)
    }

    private static func writePEM(_ write: (OpaquePointer) -> Int32) -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { return [] }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { return [] }
        let n = Int(BIO_ctrl_pending(bio))
        var out = [UInt8](repeating: 0, count: n)
        let got = out.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32(n)) }
        out.removeLast(n - max(0, Int(got)))   // in place: no unwiped copy of a key
        return out
    }
}
