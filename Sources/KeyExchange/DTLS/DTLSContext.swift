internal import COpenSSL
import EKT
import SRTP

/// Which side of the DTLS handshake an endpoint plays. In PERC the endpoint (and the recorder)
/// is the client and the Key Distributor the server (RFC 8871 §4.5.1).
public enum DTLSRole: Sendable, Equatable, CustomStringConvertible {
    case client, server
    public var description: String { self == .client ? "client" : "server" }
}

/// An `SSL_CTX` for DTLS 1.2 with DTLS-SRTP: one identity, one role, the `use_srtp` offer and
/// the `supported_ekt_ciphers` extension (type 39, RFC 8870 §5.2.1).
///
/// On the wire percrec offers `SRTP_AEAD_AES_128_GCM` (0x0007) because OpenSSL 3.0 rejects the
/// double profiles; `supported_ekt_ciphers` marks PERC mode instead and both sides key the
/// double profile from a 112-byte export (DESIGN §4, `DTLSEndpoint.exportSRTPKeys()`). When
/// built against OpenSSL ≥ 3.5 the native `SRTP_DOUBLE_AEAD_AES_128_GCM_AEAD_AES_128_GCM`
/// (0x0009) is offered first as well.
///
/// Immutable after `init`; endpoints created from one context may live on different threads.
public final class DTLSContext: @unchecked Sendable {
    let ctx: OpaquePointer   // SSL_CTX *
    public let role: DTLSRole
    public let identity: DTLSIdentity
    /// Client: the EKT ciphers offered, most preferred first. Server: the ciphers accepted (the
    /// client's first acceptable choice is selected). Empty: ext 39 is neither sent nor answered.
    public let ektCiphers: [EKTCipher]
    /// The EKT cipher code point table used on the wire (ekt.md §4.4).
    public let ektNumbering: EKTCipherNumbering
    /// The `use_srtp` profile list handed to OpenSSL, in preference order.
    public let srtpProfileList: String

    /// TLS extension type of `supported_ekt_ciphers` (RFC 8870 §7.3).
    public static let supportedEKTCiphersExtension: UInt32 = 39
    /// Whether this build's OpenSSL knows the RFC 8723 double profiles (≥ 3.5).
    public static let opensslSupportsDoubleProfiles = percrec_OPENSSL_VERSION_NUMBER >= 0x3050_0000
    /// AES-GCM only: the ekt_key path seals and opens epoch-1 records itself (notes §2), and
    /// `DTLSEpochOneRecords` knows exactly these two suites.
    public static let cipherList = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"

    /// `cipherSuites` is an OpenSSL cipher string; keep it within `cipherList` (tests narrow it to
    /// one suite).
    public init(role: DTLSRole, identity: DTLSIdentity, ektCiphers: [EKTCipher] = [.aeskw128, .aeskw256],
                ektNumbering: EKTCipherNumbering = .default, cipherSuites: String = DTLSContext.cipherList) throws(DTLSError) {
        precondition(ektCiphers.count < 256, "supported_ekt_ciphers holds at most 255 entries")
        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(role == .client ? DTLS_client_method() : DTLS_server_method()) else {
            throw .openSSL(operation: "SSL_CTX_new", message: OpenSSLErrorQueue.drain(fallback: "no context"))
        }
        self.ctx = ctx
        self.role = role
        self.identity = identity
        self.ektCiphers = ektCiphers
        self.ektNumbering = ektNumbering
        var profiles = [SRTPProfile.aeadAes128Gcm.name]
        if DTLSContext.opensslSupportsDoubleProfiles {
            profiles.insert("SRTP_DOUBLE_AEAD_AES_128_GCM_AEAD_AES_128_GCM", at: 0)
        }
        srtpProfileList = profiles.joined(separator: ":")

        guard percrec_ssl_ctx_set_min_proto(ctx, DTLS1_2_VERSION) == 1,
              percrec_ssl_ctx_set_max_proto(ctx, DTLS1_2_VERSION) == 1 else {
            throw .openSSL(operation: "DTLS 1.2 version bounds", message: OpenSSLErrorQueue.drain(fallback: "rejected"))
        }
        guard SSL_CTX_set_cipher_list(ctx, cipherSuites) == 1 else {
            throw .openSSL(operation: "SSL_CTX_set_cipher_list", message: OpenSSLErrorQueue.drain(fallback: "rejected"))
        }
        guard SSL_CTX_use_certificate(ctx, identity.certificate) == 1,
              SSL_CTX_use_PrivateKey(ctx, identity.privateKey) == 1,
              SSL_CTX_check_private_key(ctx) == 1 else {
            throw .openSSL(operation: "load identity", message: OpenSSLErrorQueue.drain(fallback: "rejected"))
        }
        // Inverted convention: 0 means success (notes §1).
        guard SSL_CTX_set_tlsext_use_srtp(ctx, srtpProfileList) == 0 else {
            throw .openSSL(operation: "SSL_CTX_set_tlsext_use_srtp(\(srtpProfileList))", message: OpenSSLErrorQueue.drain(fallback: "rejected"))
        }
        // Self-signed peers: the callback accepts any chain and checks the pinned fingerprint.
        // The server demands a client certificate (RFC 5763 §5).
        let mode = percrec_SSL_VERIFY_PEER | (role == .server ? percrec_SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0)
        SSL_CTX_set_verify(ctx, mode, dtlsVerifyCallback)
        _ = SSL_CTX_set_options(ctx, percrec_SSL_OP_NO_QUERY_MTU)
        if !ektCiphers.isEmpty {
            let context = percrec_SSL_EXT_CLIENT_HELLO | percrec_SSL_EXT_TLS1_2_SERVER_HELLO
            guard SSL_CTX_add_custom_ext(ctx, DTLSContext.supportedEKTCiphersExtension, context,
                                         dtlsEKTExtensionAdd, nil, nil, dtlsEKTExtensionParse, nil) == 1 else {
                throw .openSSL(operation: "SSL_CTX_add_custom_ext(39)", message: OpenSSLErrorQueue.drain(fallback: "rejected"))
            }
        }
    }

    deinit { SSL_CTX_free(ctx) }

    /// The ClientHello body of `supported_ekt_ciphers`: `EKTCipherType supported_ciphers<1..255>`.
    var offeredEKTExtension: [UInt8] {
        [UInt8(ektCiphers.count)] + ektCiphers.map { $0.wireValue(ektNumbering) }
    }

    /// Server: the cipher to select from a received ClientHello extension body; nil when the
    /// body is malformed (`malformed` = true) or nothing offered is acceptable.
    func selectEKTCipher(fromClientHello body: UnsafeRawBufferPointer) -> (cipher: EKTCipher?, malformed: Bool) {
        guard let n = body.first, n >= 1, body.count == 1 + Int(n) else { return (nil, true) }
        for wire in body.dropFirst() {
            if let c = EKTCipher(wireValue: wire, numbering: ektNumbering), ektCiphers.contains(c) { return (c, false) }
        }
        return (nil, false)
    }

    /// Client: the cipher named by the server's one-byte answer, if it is one we offered.
    func acceptEKTCipher(fromServerHello body: UnsafeRawBufferPointer) -> EKTCipher? {
        guard body.count == 1, let c = EKTCipher(wireValue: body[0], numbering: ektNumbering),
              ektCiphers.contains(c) else { return nil }
        return c
    }
}

// MARK: - C callbacks (no captures: the endpoint is found through SSL app data)

/// Accepts self-signed certificates and checks the leaf against the endpoint's pinned fingerprint.
private let dtlsVerifyCallback: @convention(c) (Int32, OpaquePointer?) -> Int32 = { _, store in
    guard let store,
          let sslRaw = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
          let endpoint = DTLSEndpoint.from(ssl: OpaquePointer(sslRaw)) else { return 0 }
    // Only the leaf (depth 0) is pinned; anything above it is irrelevant without a CA.
    guard X509_STORE_CTX_get_error_depth(store) == 0 else { return 1 }
    guard let cert = X509_STORE_CTX_get_current_cert(store),
          let got = DTLSIdentity.fingerprint(of: cert) else { return 0 }
    guard endpoint.checkPeerFingerprint(got) else {
        // Without an error code OpenSSL would send a vague alert; this one maps to bad_certificate.
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED)
        return 0
    }
    return 1
}

private let dtlsEKTExtensionAdd: SSL_custom_ext_add_cb_ex = { ssl, _, context, out, outlen, _, _, alert, _ in
    guard let ssl, let endpoint = DTLSEndpoint.from(ssl: ssl), let out, let outlen else { return -1 }
    let body: [UInt8]
    if context & percrec_SSL_EXT_CLIENT_HELLO != 0 {
        body = endpoint.context.offeredEKTExtension
    } else {
        guard let chosen = endpoint.selectedEKTCipher else { return 0 }   // nothing to answer
        body = [chosen.wireValue(endpoint.context.ektNumbering)]
    }
    guard let buffer = endpoint.extensionScratch(body) else { alert?.pointee = Int32(SSL_AD_INTERNAL_ERROR); return -1 }
    out.pointee = buffer
    outlen.pointee = body.count
    return 1
}

private let dtlsEKTExtensionParse: SSL_custom_ext_parse_cb_ex = { ssl, _, context, input, inlen, _, _, alert, _ in
    guard let ssl, let endpoint = DTLSEndpoint.from(ssl: ssl) else { return 0 }
    let body = UnsafeRawBufferPointer(start: input, count: input == nil ? 0 : inlen)
    if context & percrec_SSL_EXT_CLIENT_HELLO != 0 {
        let (cipher, malformed) = endpoint.context.selectEKTCipher(fromClientHello: body)
        if malformed { alert?.pointee = Int32(SSL_AD_DECODE_ERROR); return 0 }
        endpoint.selectedEKTCipher = cipher
        return 1
    }
    guard let cipher = endpoint.context.acceptEKTCipher(fromServerHello: body) else {
        alert?.pointee = Int32(SSL_AD_ILLEGAL_PARAMETER)
        return 0
    }
    endpoint.selectedEKTCipher = cipher
    return 1
}
