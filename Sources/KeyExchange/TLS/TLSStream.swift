internal import COpenSSL
import SRTP

/// One TLS connection (TLS 1.3, at least TLS 1.2) driven entirely by the caller, as
/// `DTLSEndpoint` is for DTLS: bytes from the peer go in through `receive(_:)`, bytes to send
/// come back, and the caller owns the socket. OpenSSL sees two memory BIOs; there is no socket
/// inside.
///
/// Both sides authenticate with self-signed certificates pinned by SHA-256 fingerprint: each
/// side presents `identity`, the server requires a client certificate, and the peer is accepted
/// only if its certificate's fingerprint is in `pinnedPeers`. Chain verification is replaced by
/// this check (OpenSSL's certificate verification callback); CertificateVerify still proves the
/// peer holds the key. A mismatch aborts the handshake with a `bad_certificate` alert and
/// `TLSError.peerNotPinned(received)`.
///
/// Each stream has its own `SSL_CTX`, no session tickets and no session cache shared with other
/// streams, so every connection runs a full handshake and the pin check; renegotiation is off.
///
/// Not thread-safe: one owner drives it.
public final class TLSStream {
    public let role: TLSRole
    public let identity: DTLSIdentity
    /// Fingerprints of the certificates accepted from the peer. Empty accepts nobody.
    public let pinnedPeers: Set<DTLSFingerprint>

    public private(set) var state: TLSState = .idle
    /// Set once the handshake completed.
    public private(set) var negotiation: TLSNegotiation?

    private let ctx: OpaquePointer    // SSL_CTX *
    private let ssl: OpaquePointer    // SSL *, owns both BIOs
    private let rbio: OpaquePointer   // bytes from the peer
    private let wbio: OpaquePointer   // bytes for the peer
    /// Plaintext scratch for SSL_read: one record at most, wiped after every use.
    private let scratch: UnsafeMutableRawBufferPointer
    private static let scratchSize = 16_384
    /// Output queued when a call failed (the fatal alert), for `drainOutgoing()`.
    private var pendingOutgoing: [UInt8] = []
    /// The certificate the verification callback refused, if it did.
    private var rejectedPeer: DTLSFingerprint?
    private var closeNotifySent = false

    /// TLS 1.2 suites: ECDSA (the identity's key type) with forward secrecy and AEAD only.
    /// TLS 1.3 uses OpenSSL's default suites.
    static let tls12CipherList = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"

    public init(role: TLSRole, identity: DTLSIdentity, pinnedPeers: Set<DTLSFingerprint>) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(TLS_method()) else {
            throw .openSSL(operation: "SSL_CTX_new(TLS_method)", message: OpenSSLErrorQueue.drain(fallback: "no context"))
        }
        guard percrec_ssl_ctx_set_min_proto(ctx, TLS1_2_VERSION) == 1 else {
            SSL_CTX_free(ctx)
            throw .openSSL(operation: "minimum version TLS 1.2", message: OpenSSLErrorQueue.drain(fallback: "rejected"))
        }
        guard SSL_CTX_set_cipher_list(ctx, TLSStream.tls12CipherList) == 1 else {
            SSL_CTX_free(ctx)
            throw .openSSL(operation: "SSL_CTX_set_cipher_list", message: OpenSSLErrorQueue.drain(fallback: "rejected"))
        }
        guard SSL_CTX_use_certificate(ctx, identity.certificate) == 1,
              SSL_CTX_use_PrivateKey(ctx, identity.privateKey) == 1,
              SSL_CTX_check_private_key(ctx) == 1 else {
            SSL_CTX_free(ctx)
            throw .openSSL(operation: "load identity", message: OpenSSLErrorQueue.drain(fallback: "rejected"))
        }
        // Pinning replaces chain verification; the server demands a client certificate.
        let mode = percrec_SSL_VERIFY_PEER | (role == .server ? percrec_SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0)
        SSL_CTX_set_verify(ctx, mode, nil)
        SSL_CTX_set_cert_verify_callback(ctx, tlsPinningCallback, nil)
        // No resumption: a resumed session would skip the pin check of this connection.
        _ = SSL_CTX_set_options(ctx, percrec_SSL_OP_NO_TICKET | percrec_SSL_OP_NO_RENEGOTIATION)
        _ = SSL_CTX_set_num_tickets(ctx, 0)

        guard let ssl = SSL_new(ctx) else {
            SSL_CTX_free(ctx)
            throw .openSSL(operation: "SSL_new", message: OpenSSLErrorQueue.drain(fallback: "no SSL object"))
        }
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl); SSL_CTX_free(ctx)
            throw .openSSL(operation: "BIO_new(BIO_s_mem)", message: OpenSSLErrorQueue.drain(fallback: "no BIO"))
        }
        // An empty read BIO means "no bytes yet" (retry), not end of stream.
        _ = percrec_bio_set_mem_eof_return(rbio, -1)
        _ = percrec_bio_set_mem_eof_return(wbio, -1)
        SSL_set_bio(ssl, rbio, wbio)
        if role == .client { SSL_set_connect_state(ssl) } else { SSL_set_accept_state(ssl) }

        self.role = role
        self.identity = identity
        self.pinnedPeers = pinnedPeers
        self.ctx = ctx
        self.ssl = ssl
        self.rbio = rbio
        self.wbio = wbio
        scratch = .allocate(byteCount: TLSStream.scratchSize, alignment: 16)
        scratch.initializeMemory(as: UInt8.self, repeating: 0)
        // Unretained: the SSL object dies in deinit, before self is gone.
        _ = percrec_ssl_set_app_data(ssl, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        SSL_free(ssl)   // frees both BIOs, cleanses the traffic keys
        SSL_CTX_free(ctx)
        OPENSSL_cleanse(scratch.baseAddress, scratch.count)
        scratch.deallocate()
        TLSStream.cleanse(&pendingOutgoing)
    }

    // MARK: - Driving the connection

    /// Starts the handshake. A client returns its ClientHello; a server returns nothing and
    /// waits for one (`receive(_:)` also starts a server implicitly).
    public func start() throws(TLSError) -> [UInt8] {
        guard state == .idle else { throw .invalidState(operation: "start", state: state) }
        state = .handshaking
        if role == .client {
            var events: [TLSEvent] = []
            try driveHandshake(&events)
        }
        return drainOutgoing()
    }

    /// Feeds bytes from the peer (any split: partial records wait for the rest). Returns bytes
    /// to send, decrypted plaintext and events. After a throw, `drainOutgoing()` has the fatal
    /// alert to send before closing the socket; plaintext from records earlier in the same
    /// input is dropped with the connection.
    public func receive(_ bytes: UnsafeRawBufferPointer) throws(TLSError) -> TLSOutput {
        if state == .idle && role == .server { state = .handshaking }
        if state == .closed { return TLSOutput(toSend: drainOutgoing(), plaintext: [], events: []) }
        guard state == .handshaking || state == .connected else {
            throw .invalidState(operation: "receive", state: state)
        }
        if bytes.count > 0 {
            let written = BIO_write(rbio, bytes.baseAddress, Int32(clamping: bytes.count))
            guard written == Int32(clamping: bytes.count), bytes.count <= Int(Int32.max) else {
                throw .openSSL(operation: "BIO_write", message: OpenSSLErrorQueue.drain(fallback: "short write"))
            }
        }
        var output = TLSOutput(toSend: [], plaintext: [], events: [])
        if state == .handshaking { try driveHandshake(&output.events) }
        if state == .connected { try readApplicationData(&output) }
        output.toSend = drainOutgoing()
        return output
    }

    /// Feeds bytes from the peer (see `receive(_: UnsafeRawBufferPointer)`).
    public func receive(_ bytes: [UInt8]) throws(TLSError) -> TLSOutput {
        try bytes.withUnsafeBytes { raw in Result { () throws(TLSError) in try receive(raw) } }.get()
    }

    /// Encrypts application data (after the handshake) into records for the peer.
    public func send(_ plaintext: UnsafeRawBufferPointer) throws(TLSError) -> [UInt8] {
        guard state == .connected else { throw .invalidState(operation: "send", state: state) }
        guard plaintext.count > 0 else { return [] }
        OpenSSLErrorQueue.clear()
        var offset = 0
        while offset < plaintext.count {   // SSL_write takes an int length
            let chunk = min(plaintext.count - offset, 1 << 30)
            let r = SSL_write(ssl, plaintext.baseAddress.map { $0 + offset }, Int32(chunk))
            guard r > 0 else {
                let error = classifyFailure(SSL_get_error(ssl, r), during: "SSL_write", handshake: false)
                fail()
                throw error
            }
            offset += Int(r)
        }
        return drainOutgoing()
    }

    /// Encrypts application data (see `send(_: UnsafeRawBufferPointer)`).
    public func send(_ plaintext: [UInt8]) throws(TLSError) -> [UInt8] {
        try plaintext.withUnsafeBytes { raw in Result { () throws(TLSError) in try send(raw) } }.get()
    }

    /// Sends close_notify (once) and moves to `.closed`. Also the answer to `.peerClosed`.
    public func close() -> [UInt8] {
        if !closeNotifySent, state == .connected || state == .closed {
            OpenSSLErrorQueue.clear()
            _ = SSL_shutdown(ssl)
            OpenSSLErrorQueue.clear()
            closeNotifySent = true
        }
        if state != .failed { state = .closed }
        return drainOutgoing()
    }

    /// Bytes OpenSSL produced that no call returned yet, such as the fatal alert queued when a
    /// call threw.
    public func drainOutgoing() -> [UInt8] {
        var out = pendingOutgoing
        pendingOutgoing = []
        let pending = Int(BIO_ctrl_pending(wbio))
        guard pending > 0 else { return out }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: pending))
        let n = out.withUnsafeMutableBytes { BIO_read(wbio, $0.baseAddress.map { $0 + start }, Int32(clamping: pending)) }
        out.removeLast(pending - max(0, Int(n)))
        return out
    }

    // MARK: - Internals

    private func driveHandshake(_ events: inout [TLSEvent]) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            events.append(.handshakeCompleted(try completeHandshake()))
            return
        }
        let code = SSL_get_error(ssl, r)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return }
        let error = classifyFailure(code, during: "SSL_do_handshake", handshake: true)
        fail()
        throw error
    }

    private func completeHandshake() throws(TLSError) -> TLSNegotiation {
        // The callback has pinned the certificate; this reads it back for the caller.
        guard let cert = SSL_get0_peer_certificate(ssl), let got = DTLSIdentity.fingerprint(of: cert) else {
            failAfterHandshake()
            throw .missingPeerCertificate
        }
        guard pinnedPeers.contains(got) else {
            failAfterHandshake()
            throw .peerNotPinned(got)
        }
        let version = SSL_get_version(ssl).map { String(cString: $0) } ?? "?"
        let suite = SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? "?"
        let result = TLSNegotiation(peerFingerprint: got, protocolVersion: version, cipherSuite: suite)
        negotiation = result
        state = .connected
        return result
    }

    /// Reads every complete record's plaintext; stops at WANT_READ or close_notify.
    private func readApplicationData(_ output: inout TLSOutput) throws(TLSError) {
        defer { OPENSSL_cleanse(scratch.baseAddress, scratch.count) }
        while true {
            OpenSSLErrorQueue.clear()
            let r = SSL_read(ssl, scratch.baseAddress, Int32(scratch.count))
            if r > 0 {
                output.plaintext.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<Int(r)]))
                continue
            }
            let code = SSL_get_error(ssl, r)
            if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return }
            if code == SSL_ERROR_ZERO_RETURN {
                state = .closed
                output.events.append(.peerClosed)
                return
            }
            let error = classifyFailure(code, during: "SSL_read", handshake: false)
            fail()
            throw error
        }
    }

    /// Turns OpenSSL's error queue into a typed error (and empties it): our pin refusal, a
    /// missing client certificate, a fatal alert from the peer, or OpenSSL's text.
    private func classifyFailure(_ code: Int32, during operation: String, handshake: Bool) -> TLSError {
        if let rejectedPeer {
            OpenSSLErrorQueue.clear()
            return .peerNotPinned(rejectedPeer)
        }
        let first = ERR_peek_error()
        if first != 0, ERR_GET_LIB(first) == ERR_LIB_SSL {
            let reason = ERR_GET_REASON(first)
            if reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE {
                OpenSSLErrorQueue.clear()
                return .missingPeerCertificate
            }
            let alert = reason - SSL_AD_REASON_OFFSET
            if (0 ... 255).contains(alert) {
                OpenSSLErrorQueue.clear()
                let name = SSL_alert_desc_string_long(alert).map { String(cString: $0) } ?? "unknown"
                return .peerAlert(code: UInt8(alert), description: name)
            }
        }
        let text = OpenSSLErrorQueue.drain(fallback: "\(operation) error \(code)")
        return handshake ? .handshakeFailed(text) : .connectionFailed(text)
    }

    /// Marks the connection dead, keeping any alert OpenSSL queued for `drainOutgoing()`.
    private func fail() {
        state = .failed
        pendingOutgoing = drainOutgoing()
    }

    /// OpenSSL finished the handshake but percrec refuses it: tell the peer (close_notify).
    private func failAfterHandshake() {
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
        fail()
    }

    // MARK: - Callback support

    /// The stream owning `ssl` (stored as unretained app data).
    static func from(ssl: OpaquePointer) -> TLSStream? {
        guard let raw = percrec_ssl_get_app_data(ssl) else { return nil }
        return Unmanaged<TLSStream>.fromOpaque(raw).takeUnretainedValue()
    }

    /// The verification callback's decision: pinned, or remembered as refused.
    func acceptsPeer(_ got: DTLSFingerprint) -> Bool {
        if pinnedPeers.contains(got) { return true }
        rejectedPeer = got
        return false
    }

    /// Zeroes a plaintext buffer in place (tunnel messages carry keys). The array must not
    /// share its storage, or only a fresh copy would be wiped.
    static func cleanse(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
    }
}

/// Replaces chain verification (SSL_CTX_set_cert_verify_callback): the peer's leaf certificate
/// must have a pinned SHA-256 fingerprint. Anything else in the chain is irrelevant without a CA.
private let tlsPinningCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Int32 = { store, _ in
    guard let store,
          let sslRaw = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
          let stream = TLSStream.from(ssl: OpaquePointer(sslRaw)) else { return 0 }
    guard let cert = X509_STORE_CTX_get0_cert(store), let got = DTLSIdentity.fingerprint(of: cert) else {
        X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED)
        return 0
    }
    guard stream.acceptsPeer(got) else {
        // OpenSSL turns this error into a bad_certificate alert.
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED)
        return 0
    }
    X509_STORE_CTX_set_error(store, X509_V_OK)
    return 1
}
