internal import COpenSSL
import EKT
import RTPWire
import SRTP

/// Something the peer's datagrams caused, besides datagrams to send back.
public enum DTLSEvent: Sendable, Equatable {
    /// The handshake completed; keys can be exported.
    case handshakeCompleted(DTLSNegotiation)
    /// Application data arrived (decrypted).
    case applicationData([UInt8])
    /// The peer sent close_notify.
    case peerClosed
    /// Client: the Key Distributor's `ekt_key` message (RFC 8870 §5.2.2) arrived and was
    /// acknowledged. Retransmitted copies are acknowledged again but reported once.
    case ektKeyReceived(EKTKeyMessage)
    /// Client: an `ekt_key` message arrived that cannot be used (why attached); not acknowledged.
    case ektKeyRejected(String)
    /// Server: the client acknowledged the EKTKey with this SPI; retransmission stopped.
    case ektKeyAcknowledged(spi: UInt16)
}

/// The result of feeding a datagram to an endpoint: datagrams to send, then events.
public struct DTLSOutput: Sendable {
    /// Whole datagrams for the peer, each at most the link MTU, in order.
    public var datagrams: [[UInt8]]
    public var events: [DTLSEvent]
}

/// One DTLS 1.2 association (RFC 6347) with DTLS-SRTP (RFC 5764), driven entirely by the
/// caller: datagrams go in through `receive(datagram:)`, datagrams to send come back, and the
/// caller owns the socket (or the tunnel) and the clock. There is no socket inside.
///
/// OpenSSL sees two memory BIOs; what it writes is cut back into datagrams of at most `mtu`
/// bytes (`SSL_OP_NO_QUERY_MTU`, link MTU 1200 by default). Retransmission: after every call,
/// `nextTimeout` says when to call `handleTimeout(now:)`; OpenSSL doubles the wait from
/// `initialRetransmitTimeout` up to `maximumRetransmitTimeout` and gives up after 12 tries
/// (`.timeout`). Note that OpenSSL 3.0 checks expiry against its own wall clock: `now` decides
/// only whether to ask it, so a clock running ahead of real time cannot force a retransmission.
///
/// The peer is authenticated by the SHA-256 fingerprint of its (self-signed) certificate
/// (RFC 8122, RFC 5763 §5): a mismatch fails the handshake with `.fingerprintMismatch`. A server
/// always requests and requires a client certificate. HelloVerifyRequest cookies are not used.
///
/// EKTKey delivery (RFC 8870 §5.2.2) runs outside OpenSSL, which cannot send handshake type 26
/// and would abort on receiving one (notes §2): the server seals `ekt_key` into epoch-1 records
/// itself (`sendEKTKey(_:now:)`) and retransmits it on the same doubling timer until the
/// client's RFC 9147 ACK record arrives; the client lifts those records out of each datagram
/// before OpenSSL sees it, reports `.ektKeyReceived`, and answers with an ACK.
///
/// Not thread-safe: one owner drives it.
public final class DTLSEndpoint {
    public let context: DTLSContext
    public var role: DTLSRole { context.role }
    /// The peer certificate fingerprint to pin; nil accepts any certificate (read
    /// `negotiation.peerFingerprint` and decide yourself).
    public let expectedPeerFingerprint: DTLSFingerprint?
    /// When `expectedPeerFingerprint` is nil: the set of acceptable peer fingerprints (a Key
    /// Distributor accepting only invited participants). Any other certificate fails the
    /// handshake with `.unknownPeer` and a bad_certificate alert. nil accepts any certificate.
    public let acceptedPeerFingerprints: Set<DTLSFingerprint>?
    /// Link MTU: the largest datagram this endpoint emits.
    public let mtu: Int
    public let initialRetransmitTimeout: Duration
    public let maximumRetransmitTimeout: Duration

    public private(set) var state: DTLSState = .idle
    /// Set once the handshake completed.
    public private(set) var negotiation: DTLSNegotiation?
    /// When `handleTimeout(now:)` should next be called; nil while no retransmission timer runs.
    public private(set) var nextTimeout: ContinuousClock.Instant?

    private let ssl: OpaquePointer    // SSL *, owns both BIOs
    private let rbio: OpaquePointer   // datagrams from the peer
    private let wbio: OpaquePointer   // records for the peer
    /// Storage for the extension body OpenSSL copies out of the add callback.
    private let extensionBuffer: UnsafeMutablePointer<UInt8>
    private static let extensionBufferSize = 256
    private var pendingDatagrams: [[UInt8]] = []
    private var pinFailure: (expected: DTLSFingerprint?, got: DTLSFingerprint)?
    fileprivate let initialTimeoutMicros: UInt32
    fileprivate let maximumTimeoutMicros: UInt32
    /// EKT cipher agreed in ext 39: the server's choice (server) or the server's answer (client).
    var selectedEKTCipher: EKTCipher?

    /// Retransmissions of one EKTKey before `.ektKeyNotAcknowledged` (OpenSSL's own limit is 12).
    public static let ektKeyMaxTransmissions = 12
    /// First `message_seq` of percrec's ekt_key messages: the next one after the server's flight
    /// (ServerHello 0 … Finished 5; no HelloVerifyRequest).
    static let firstEKTMessageSequence: UInt16 = 6
    /// Whether an EKTKey is waiting for its ACK.
    public var ektKeyPending: Bool { pendingEKTKey != nil }
    /// How many EKTKey records were retransmitted on this association (for logs and tests).
    public private(set) var ektKeyRetransmissions = 0

    private struct PendingEKTKey {
        let spi: UInt16
        let handshake: [UInt8]
        var records: Set<DTLSAck.RecordNumber>
        var transmissions: Int
        var wait: Duration
        var deadline: ContinuousClock.Instant
    }
    private var epochOne: DTLSEpochOneRecords?
    private var sslDeadline: ContinuousClock.Instant?
    private var pendingEKTKey: PendingEKTKey?
    private var nextEKTMessageSequence = DTLSEndpoint.firstEKTMessageSequence
    private var lastReceivedEKTMessageSequence: UInt16?

    /// Creates an endpoint from `context` (which fixes role, identity and offers).
    public init(context: DTLSContext, expectedPeerFingerprint: DTLSFingerprint?,
                acceptedPeerFingerprints: Set<DTLSFingerprint>? = nil, mtu: Int = 1200,
                initialRetransmitTimeout: Duration = .seconds(1),
                maximumRetransmitTimeout: Duration = .seconds(60)) throws(DTLSError) {
        precondition(mtu >= 256 && mtu <= 65_535, "link MTU out of range")
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.ctx) else {
            throw .openSSL(operation: "SSL_new", message: OpenSSLErrorQueue.drain(fallback: "no SSL object"))
        }
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw .openSSL(operation: "BIO_new(BIO_s_mem)", message: OpenSSLErrorQueue.drain(fallback: "no BIO"))
        }
        // An empty read BIO means "no datagram yet" (retry), not end of file.
        _ = percrec_bio_set_mem_eof_return(rbio, -1)
        _ = percrec_bio_set_mem_eof_return(wbio, -1)
        SSL_set_bio(ssl, rbio, wbio)
        _ = SSL_set_options(ssl, percrec_SSL_OP_NO_QUERY_MTU)
        guard percrec_dtls_set_link_mtu(ssl, mtu) > 0 else {
            SSL_free(ssl)
            throw .openSSL(operation: "DTLS_set_link_mtu(\(mtu))", message: OpenSSLErrorQueue.drain(fallback: "rejected"))
        }
        if context.role == .client { SSL_set_connect_state(ssl) } else { SSL_set_accept_state(ssl) }
        DTLS_set_timer_cb(ssl, dtlsTimerCallback)

        self.context = context
        self.expectedPeerFingerprint = expectedPeerFingerprint
        self.acceptedPeerFingerprints = acceptedPeerFingerprints
        self.mtu = mtu
        self.initialRetransmitTimeout = initialRetransmitTimeout
        self.maximumRetransmitTimeout = maximumRetransmitTimeout
        initialTimeoutMicros = DTLSEndpoint.micros(initialRetransmitTimeout)
        maximumTimeoutMicros = max(initialTimeoutMicros, DTLSEndpoint.micros(maximumRetransmitTimeout))
        self.ssl = ssl
        self.rbio = rbio
        self.wbio = wbio
        extensionBuffer = .allocate(capacity: DTLSEndpoint.extensionBufferSize)
        // Unretained: the SSL object dies in deinit, before self is gone.
        _ = percrec_ssl_set_app_data(ssl, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Convenience: a context of its own (for one-off associations and tests).
    public convenience init(role: DTLSRole, identity: DTLSIdentity, expectedPeerFingerprint: DTLSFingerprint?,
                            ektCiphers: [EKTCipher] = [.aeskw128, .aeskw256], mtu: Int = 1200,
                            initialRetransmitTimeout: Duration = .seconds(1),
                            maximumRetransmitTimeout: Duration = .seconds(60)) throws(DTLSError) {
        let context = try DTLSContext(role: role, identity: identity, ektCiphers: ektCiphers)
        try self.init(context: context, expectedPeerFingerprint: expectedPeerFingerprint, mtu: mtu,
                      initialRetransmitTimeout: initialRetransmitTimeout,
                      maximumRetransmitTimeout: maximumRetransmitTimeout)
    }

    deinit {
        SSL_free(ssl)   // frees rbio and wbio, cleanses the session keys
        extensionBuffer.deallocate()
    }

    // MARK: - Driving the association

    /// Starts the handshake. A client returns its ClientHello flight; a server returns nothing
    /// and waits for one (`receive(datagram:)` also starts a server implicitly).
    public func handshakeStart(now: ContinuousClock.Instant = .now) throws(DTLSError) -> [[UInt8]] {
        guard state == .idle else { throw .invalidState(operation: "handshakeStart", state: state) }
        state = .handshaking
        if role == .client {
            var events: [DTLSEvent] = []
            try driveHandshake(&events, now: now)
        }
        updateTimeout(now)
        return drainOutgoing()
    }

    /// Feeds one datagram from the peer. Returns datagrams to send (a next flight, a
    /// retransmission, an alert) and what happened.
    public func receive(datagram: [UInt8], now: ContinuousClock.Instant = .now) throws(DTLSError) -> DTLSOutput {
        let kind = DatagramKind.classify(datagram)
        guard kind == .dtls else { throw .notDTLS(kind) }
        if state == .idle && role == .server { state = .handshaking }
        guard state == .handshaking || state == .connected else {
            throw .invalidState(operation: "receive", state: state)
        }
        var events: [DTLSEvent] = []
        // ekt_key and ACK records never reach OpenSSL (see the type's documentation).
        let forOpenSSL = interceptEpochOneRecords(datagram, events: &events)
        if !forOpenSSL.isEmpty {
            let written = forOpenSSL.withUnsafeBytes { BIO_write(rbio, $0.baseAddress, Int32($0.count)) }
            guard written == Int32(forOpenSSL.count) else {
                throw .openSSL(operation: "BIO_write", message: OpenSSLErrorQueue.drain(fallback: "short write"))
            }
        }
        if state == .handshaking { try driveHandshake(&events, now: now) }
        if state == .connected { try readApplicationData(&events) }
        // Anything OpenSSL could not use stays out of the next datagram.
        _ = BIO_ctrl(rbio, BIO_CTRL_RESET, 0, nil)
        updateTimeout(now)
        return DTLSOutput(datagrams: drainOutgoing(), events: events)
    }

    /// Retransmits the last flight, or a pending EKTKey, if its timer has passed (RFC 6347
    /// §4.2.4). Throws `.timeout` once OpenSSL gives up, and `.ektKeyNotAcknowledged` once an
    /// EKTKey went unacknowledged `ektKeyMaxTransmissions` times; both end the association.
    public func handleTimeout(now: ContinuousClock.Instant = .now) throws(DTLSError) -> [[UInt8]] {
        guard state == .handshaking || state == .connected, let deadline = nextTimeout, now >= deadline else { return [] }
        if let sslDeadline, now >= sslDeadline {
            OpenSSLErrorQueue.clear()
            if percrec_dtls_handle_timeout(ssl) < 0 {
                OpenSSLErrorQueue.clear()
                fail()
                throw .timeout
            }
        }
        var out: [[UInt8]] = []
        if var pending = pendingEKTKey, now >= pending.deadline {
            guard pending.transmissions < DTLSEndpoint.ektKeyMaxTransmissions else {
                pendingEKTKey = nil
                fail()
                throw .ektKeyNotAcknowledged(spi: pending.spi)
            }
            // A retransmission is a new record with a new sequence number (RFC 6347 §4.2.4).
            if let epochOne, let sealed = epochOne.seal(contentType: DTLSContentType.handshake, plaintext: pending.handshake) {
                out.append(sealed.record)
                pending.records.insert(sealed.number)
            }
            pending.transmissions += 1
            pending.wait = min(pending.wait * 2, maximumRetransmitTimeout)
            pending.deadline = now + pending.wait
            pendingEKTKey = pending
            ektKeyRetransmissions += 1
        }
        updateTimeout(now)
        return drainOutgoing() + out
    }

    /// Server: sends the Key Distributor's EKTKey (RFC 8870 §5.2.2) in an epoch-1 handshake
    /// record, and keeps retransmitting it from `handleTimeout(now:)` until the client's ACK
    /// arrives (`.ektKeyAcknowledged`). A newer EKTKey replaces one still pending: only the
    /// latest key matters to the client. Requires `supported_ekt_ciphers` to be negotiated.
    public func sendEKTKey(_ key: EKTKeyMessage, now: ContinuousClock.Instant = .now) throws(DTLSError) -> [[UInt8]] {
        guard role == .server, state == .connected else { throw .invalidState(operation: "sendEKTKey", state: state) }
        guard negotiation?.ektCipher != nil else { throw .ektNotNegotiated }
        let records = try epochOneRecords()
        let message = DTLSHandshakeMessage(messageType: EKTKeyMessage.handshakeType,
                                           messageSequence: nextEKTMessageSequence, body: key.serialized())
        nextEKTMessageSequence &+= 1
        let handshake = message.serialized()
        guard let sealed = records.seal(contentType: DTLSContentType.handshake, plaintext: handshake) else {
            throw .epochOneKeys(OpenSSLErrorQueue.drain(fallback: "AES-GCM seal failed"))
        }
        pendingEKTKey = PendingEKTKey(spi: key.spi, handshake: handshake, records: [sealed.number], transmissions: 1,
                                      wait: initialRetransmitTimeout, deadline: now + initialRetransmitTimeout)
        updateTimeout(now)
        return [sealed.record]
    }

    /// Encrypts application data for the peer (after the handshake).
    public func send(applicationData: [UInt8]) throws(DTLSError) -> [[UInt8]] {
        guard state == .connected else { throw .invalidState(operation: "send", state: state) }
        guard !applicationData.isEmpty else { return [] }
        OpenSSLErrorQueue.clear()
        let r = applicationData.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        guard r > 0 else {
            let text = OpenSSLErrorQueue.drain(fallback: "SSL_write error \(SSL_get_error(ssl, r))")
            fail()
            throw .connectionFailed(text)
        }
        return drainOutgoing()
    }

    /// Sends close_notify. Exported keys stay valid for packets already in flight.
    public func close() -> [[UInt8]] {
        if state == .connected || state == .handshaking {
            OpenSSLErrorQueue.clear()
            _ = SSL_shutdown(ssl)
            OpenSSLErrorQueue.clear()
        }
        if state != .failed { state = .closed }
        nextTimeout = nil
        pendingEKTKey = nil
        return drainOutgoing()
    }

    /// Datagrams OpenSSL produced that no call returned yet, such as the fatal alert queued
    /// when a call threw. Send them to tell the peer why the association ended.
    public func drainOutgoing() -> [[UInt8]] {
        var bytes: [UInt8] = []
        let pending = Int(BIO_ctrl_pending(wbio))
        if pending > 0 {
            bytes = [UInt8](repeating: 0, count: pending)
            let n = bytes.withUnsafeMutableBytes { BIO_read(wbio, $0.baseAddress, Int32(pending)) }
            bytes.removeLast(pending - max(0, Int(n)))
        }
        var out = pendingDatagrams
        pendingDatagrams = []
        out += DTLSRecordFraming.datagrams(from: bytes, mtu: mtu)
        return out
    }

    // MARK: - Key export

    /// Exports the SRTP master keys and salts (RFC 5764 §4.2, label "EXTRACTOR-dtls_srtp", no
    /// context) and slices them. This is the one place that maps PERC mode to keys:
    ///
    /// - PERC mode (`supported_ekt_ciphers` negotiated) over `SRTP_AEAD_AES_128_GCM`: OpenSSL 3.0
    ///   cannot negotiate DOUBLE_AEAD_AES_128_GCM_AEAD_AES_128_GCM (0x0009), so both sides export
    ///   112 bytes and slice them with the 0x0009 layout: client key 32 | server key 32 |
    ///   client salt 24 | server salt 24, each key inner 16 ‖ outer 16, each salt inner 12 ‖
    ///   outer 12 (RFC 8723 §10.1). This deviates from RFC 8723 on the wire; DESIGN §4.
    /// - A native double profile selected by the peer (possible only when built against
    ///   OpenSSL ≥ 3.5, where `DTLSContext` also offers
    ///   `SRTP_DOUBLE_AEAD_AES_128_GCM_AEAD_AES_128_GCM`): the same 112-byte layout, as the RFC says.
    /// - Otherwise the single profile: 56 bytes for AEAD_AES_128_GCM (16 | 16 | 12 | 12).
    public func exportSRTPKeys() throws(DTLSError) -> DTLSSRTPKeys {
        guard let negotiation, state == .connected || state == .closed else {
            throw .invalidState(operation: "exportSRTPKeys", state: state)
        }
        let id = negotiation.srtpProfileID
        let keying: DTLSSRTPKeying
        if let native = DoubleSRTPProfile(rawValue: id) {
            keying = .double(native)
        } else if let single = SRTPProfile(rawValue: id) {
            if negotiation.isPERCMode {
                guard let double = DoubleSRTPProfile.allCases.first(where: { $0.layerProfile == single }) else {
                    throw .unsupportedSRTPProfile(id)
                }
                keying = .double(double)
            } else {
                keying = .single(single)
            }
        } else {
            throw .unsupportedSRTPProfile(id)
        }

        let length = keying.keyingMaterialLength
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
        defer { OPENSSL_cleanse(buffer.baseAddress, length); buffer.deallocate() }
        let label = "EXTRACTOR-dtls_srtp"
        OpenSSLErrorQueue.clear()
        let ok = SSL_export_keying_material(ssl, buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), length,
                                            label, label.utf8.count, nil, 0, 0)
        guard ok == 1 else { throw .exportFailed(OpenSSLErrorQueue.drain(fallback: "SSL_export_keying_material")) }
        return try DTLSSRTPKeys(keying: keying, material: SecretBytes(UnsafeRawBufferPointer(buffer)))
    }

    // MARK: - Internals

    private func driveHandshake(_ events: inout [DTLSEvent], now: ContinuousClock.Instant) throws(DTLSError) {
        OpenSSLErrorQueue.clear()
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            let done = try completeHandshake()
            events.append(.handshakeCompleted(done))
            return
        }
        let code = SSL_get_error(ssl, r)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return }
        let text = OpenSSLErrorQueue.drain(fallback: "SSL_do_handshake error \(code)")
        fail()
        if let pin = pinFailure {
            if let expected = pin.expected { throw .fingerprintMismatch(expected: expected, got: pin.got) }
            throw .unknownPeer(pin.got)
        }
        throw .handshakeFailed(text)
    }

    private func completeHandshake() throws(DTLSError) -> DTLSNegotiation {
        guard let cert = SSL_get0_peer_certificate(ssl), let got = DTLSIdentity.fingerprint(of: cert) else {
            failAfterHandshake()
            throw .missingPeerCertificate
        }
        if let expected = expectedPeerFingerprint, expected != got {   // the callback already checked
            failAfterHandshake()
            throw .fingerprintMismatch(expected: expected, got: got)
        }
        if expectedPeerFingerprint == nil, let accepted = acceptedPeerFingerprints, !accepted.contains(got) {
            failAfterHandshake()
            throw .unknownPeer(got)
        }
        guard let profile = SSL_get_selected_srtp_profile(ssl) else {
            failAfterHandshake()
            throw .noSRTPProfile
        }
        let suite = SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? "?"
        let result = DTLSNegotiation(srtpProfileID: UInt16(truncatingIfNeeded: profile.pointee.id),
                                     ektCipher: selectedEKTCipher, cipherSuite: suite, peerFingerprint: got)
        negotiation = result
        state = .connected
        return result
    }

    private func readApplicationData(_ events: inout [DTLSEvent]) throws(DTLSError) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            OpenSSLErrorQueue.clear()
            let r = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if r > 0 {
                events.append(.applicationData(Array(buffer.prefix(Int(r)))))
                continue
            }
            let code = SSL_get_error(ssl, r)
            if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return }
            if code == SSL_ERROR_ZERO_RETURN {
                state = .closed
                nextTimeout = nil
                events.append(.peerClosed)
                return
            }
            let text = OpenSSLErrorQueue.drain(fallback: "SSL_read error \(code)")
            fail()
            throw .connectionFailed(text)
        }
    }

    /// Marks the association dead, keeping any alert OpenSSL queued for `drainOutgoing()`.
    private func fail() {
        state = .failed
        nextTimeout = nil
        pendingDatagrams += drainOutgoing()
    }

    /// The handshake succeeded in OpenSSL but percrec rejects it: tell the peer (close_notify).
    private func failAfterHandshake() {
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
        fail()
    }

    private func updateTimeout(_ now: ContinuousClock.Instant) {
        var tv = timeval()
        let live = state == .handshaking || state == .connected
        if live, percrec_dtls_get_timeout(ssl, &tv) == 1 {
            sslDeadline = now + .seconds(Int64(tv.tv_sec)) + .microseconds(Int64(tv.tv_usec))
        } else {
            sslDeadline = nil
        }
        if !live { pendingEKTKey = nil }
        switch (sslDeadline, pendingEKTKey?.deadline) {
        case let (a?, b?): nextTimeout = min(a, b)
        case let (a, b): nextTimeout = a ?? b
        }
    }

    // MARK: - ekt_key and ACK records (outside OpenSSL)

    /// The epoch-1 record keys, derived on first use once the session has a master secret.
    func epochOneRecords() throws(DTLSError) -> DTLSEpochOneRecords {
        if let epochOne { return epochOne }
        let made = try DTLSEpochOneRecords(ssl: ssl, role: role)
        epochOne = made
        return made
    }

    /// Takes the ekt_key handshake records and ACK records out of `datagram`, handles them,
    /// and returns the rest for OpenSSL. Only epoch-1 records are opened: an epoch-1 handshake
    /// record is decrypted here to see its type, and passed on untouched unless it is ekt_key.
    private func interceptEpochOneRecords(_ datagram: [UInt8], events: inout [DTLSEvent]) -> [UInt8] {
        let ranges = DTLSRecordHeader.records(in: datagram)
        let candidates = ranges.contains { range in
            let type = datagram[range.lowerBound], epoch = UInt16(datagram[range.lowerBound + 3]) << 8 | UInt16(datagram[range.lowerBound + 4])
            return epoch == 1 && (type == DTLSContentType.ack || type == DTLSContentType.handshake)
        }
        guard candidates, let records = try? epochOneRecords() else { return datagram }
        var rest: [UInt8] = []
        rest.reserveCapacity(datagram.count)
        for range in ranges {
            let type = datagram[range.lowerBound]
            if type == DTLSContentType.ack {
                if let opened = records.open(datagram, record: range) { handleAck(opened.plaintext, events: &events) }
                continue   // OpenSSL 3.0 does not know ACK records; never pass one on
            }
            if type == DTLSContentType.handshake, role == .client, let opened = records.open(datagram, record: range),
               opened.plaintext.first == EKTKeyMessage.handshakeType {
                handleEKTKeyRecord(opened.header, opened.plaintext, records: records, events: &events)
                continue
            }
            rest += datagram[range]
        }
        if let last = ranges.last, last.upperBound < datagram.count { rest += datagram[last.upperBound...] }
        else if ranges.isEmpty { rest = datagram }
        return rest
    }

    /// Client: an ekt_key record authenticated. Parse, acknowledge, report once.
    private func handleEKTKeyRecord(_ header: DTLSRecordHeader, _ plaintext: [UInt8], records: DTLSEpochOneRecords,
                                    events: inout [DTLSEvent]) {
        let message: DTLSHandshakeMessage
        let key: EKTKeyMessage
        do {
            message = try DTLSHandshakeMessage(parsing: plaintext)
            key = try EKTKeyMessage(parsing: message.body)
        } catch {
            events.append(.ektKeyRejected("\(error)"))
            return
        }
        guard selectedEKTCipher != nil else {
            events.append(.ektKeyRejected("supported_ekt_ciphers was not negotiated (RFC 8870 §5.2.1)"))
            return
        }
        let ack = DTLSAck(records: [DTLSAck.RecordNumber(epoch: UInt64(header.epoch), sequence: header.sequence)])
        if let sealed = records.seal(contentType: DTLSContentType.ack, plaintext: ack.serialized()) {
            pendingDatagrams.append(sealed.record)
        }
        // Retransmissions repeat the message_seq: acknowledge again, report once.
        if let last = lastReceivedEKTMessageSequence, message.messageSequence &- last == 0 || message.messageSequence &- last >= 0x8000 {
            return
        }
        lastReceivedEKTMessageSequence = message.messageSequence
        events.append(.ektKeyReceived(key))
    }

    /// Server: an ACK authenticated; stop retransmitting if it names a record of the pending key.
    private func handleAck(_ plaintext: [UInt8], events: inout [DTLSEvent]) {
        guard role == .server, let pending = pendingEKTKey, let ack = try? DTLSAck(parsing: plaintext) else { return }
        guard ack.records.contains(where: { pending.records.contains($0) }) else { return }
        pendingEKTKey = nil
        events.append(.ektKeyAcknowledged(spi: pending.spi))
    }

    // MARK: - Callback support

    /// The endpoint owning `ssl` (stored as unretained app data).
    static func from(ssl: OpaquePointer) -> DTLSEndpoint? {
        guard let raw = percrec_ssl_get_app_data(ssl) else { return nil }
        return Unmanaged<DTLSEndpoint>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Verify callback: records a pin failure and returns whether `got` is acceptable.
    func checkPeerFingerprint(_ got: DTLSFingerprint) -> Bool {
        if let expected = expectedPeerFingerprint {
            if expected == got { return true }
            pinFailure = (expected, got)
            return false
        }
        guard let accepted = acceptedPeerFingerprints, !accepted.contains(got) else { return true }
        pinFailure = (nil, got)
        return false
    }

    /// Copies an extension body into storage that outlives the add callback.
    func extensionScratch(_ body: [UInt8]) -> UnsafePointer<UInt8>? {
        guard body.count <= DTLSEndpoint.extensionBufferSize else { return nil }
        extensionBuffer.update(from: body, count: body.count)
        return UnsafePointer(extensionBuffer)
    }

    private static func micros(_ d: Duration) -> UInt32 {
        let (s, atto) = d.components
        let us = max(1_000, s * 1_000_000 + atto / 1_000_000_000_000)
        return UInt32(clamping: us)
    }
}

/// OpenSSL's retransmission timer: `initial` first, then doubling up to the maximum.
private let dtlsTimerCallback: @convention(c) (OpaquePointer?, UInt32) -> UInt32 = { ssl, current in
    guard let ssl, let endpoint = DTLSEndpoint.from(ssl: ssl) else { return 1_000_000 }
    if current == 0 { return endpoint.initialTimeoutMicros }
    return min(current.multipliedReportingOverflow(by: 2).partialValue, endpoint.maximumTimeoutMicros)
}
