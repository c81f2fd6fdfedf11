import RTPWire

/// Why a DTLS identity, context or endpoint operation failed.
///
/// Handshake failures carry OpenSSL's error text; a pinned-fingerprint mismatch, a missing
/// SRTP profile and a retransmission give-up are distinct cases so callers can switch on them.
public enum DTLSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// OpenSSL refused a setup call (`operation`); its error queue is attached.
    case openSSL(operation: String, message: String)
    /// The handshake failed inside OpenSSL (bad message, peer alert, …); its error text is attached.
    case handshakeFailed(String)
    /// The peer's certificate does not have the pinned SHA-256 fingerprint (RFC 8122 §5).
    case fingerprintMismatch(expected: DTLSFingerprint, got: DTLSFingerprint)
    /// The peer's certificate is not among the accepted fingerprints (not invited).
    case unknownPeer(DTLSFingerprint)
    /// The peer completed the handshake without presenting a certificate.
    case missingPeerCertificate
    /// The handshake completed but the peer selected no `use_srtp` profile (RFC 5764 §4.1.1).
    case noSRTPProfile
    /// The peer selected an SRTP profile percrec cannot key (code point from RFC 5764 §4.1.2).
    case unsupportedSRTPProfile(UInt16)
    /// OpenSSL gave up retransmitting: the peer did not answer (RFC 6347 §4.2.4).
    case timeout
    /// The datagram is not DTLS by its first byte (RFC 7983 §7); route it elsewhere.
    case notDTLS(DatagramKind)
    /// The call is not valid in the endpoint's current state.
    case invalidState(operation: String, state: DTLSState)
    /// The association failed after the handshake (OpenSSL's text attached).
    case connectionFailed(String)
    /// A fingerprint string is not `sha-256` followed by 32 colon-separated hex bytes.
    case invalidFingerprint(String)
    /// PEM input could not be read as `what` ("certificate", "private key").
    case invalidPEM(what: String, message: String)
    /// The private key does not belong to the certificate.
    case keyDoesNotMatchCertificate
    /// Keying material export failed (RFC 5705 exporter); OpenSSL's text attached.
    case exportFailed(String)
    /// A record or handshake message percrec parses itself (ekt_key, ACK) is malformed.
    case malformedRecord(String)
    /// The epoch-1 keys for ekt_key records could not be derived (suite, session, PRF).
    case epochOneKeys(String)
    /// `supported_ekt_ciphers` was not negotiated, so no EKTKey may be sent (RFC 8870 §5.2.1).
    case ektNotNegotiated
    /// The peer did not acknowledge the EKTKey with this SPI after every retransmission.
    case ektKeyNotAcknowledged(spi: UInt16)
    /// The peer's EKTKey message could not be parsed (RFC 8870 §5.2.2).
    case invalidEKTKey(String)

    public var description: String {
        switch self {
        case let .openSSL(operation, message): "OpenSSL \(operation) failed: \(message)"
        case let .handshakeFailed(text): "DTLS handshake failed: \(text)"
        case let .fingerprintMismatch(expected, got): "peer certificate fingerprint mismatch: expected \(expected), got \(got)"
        case let .unknownPeer(got): "unknown peer certificate fingerprint \(got): not accepted here"
        case .missingPeerCertificate: "the peer presented no certificate"
        case .noSRTPProfile: "the peer negotiated no use_srtp profile"
        case let .unsupportedSRTPProfile(id): "unsupported SRTP protection profile 0x\(String(id, radix: 16))"
        case .timeout: "DTLS retransmission limit reached without an answer"
        case let .notDTLS(kind): "datagram is \(kind), not DTLS"
        case let .invalidState(operation, state): "\(operation) is not valid while the endpoint is \(state)"
        case let .connectionFailed(text): "DTLS association failed: \(text)"
        case let .invalidFingerprint(text): "invalid fingerprint \"\(text)\""
        case let .invalidPEM(what, message): "invalid PEM \(what): \(message)"
        case .keyDoesNotMatchCertificate: "the private key does not match the certificate"
        case let .exportFailed(text): "keying material export failed: \(text)"
        case let .malformedRecord(text): "malformed DTLS record: \(text)"
        case let .epochOneKeys(text): "cannot derive the epoch-1 record keys for ekt_key: \(text)"
        case .ektNotNegotiated: "supported_ekt_ciphers was not negotiated; no EKTKey may be sent"
        case let .ektKeyNotAcknowledged(spi): "the peer never acknowledged the EKTKey for SPI \(spi)"
        case let .invalidEKTKey(text): "invalid EKTKey message: \(text)"
        }
    }
}

/// Where a `DTLSEndpoint` (or a `TLSStream`, as `TLSState`) is in its life.
public enum DTLSState: Sendable, Equatable, CustomStringConvertible {
    /// Created; `handshakeStart()` not called yet.
    case idle
    /// Flights are being exchanged.
    case handshaking
    /// The handshake completed; keys can be exported.
    case connected
    /// close_notify sent or received.
    case closed
    /// A fatal error ended the association.
    case failed

    public var description: String {
        switch self {
        case .idle: "idle"
        case .handshaking: "handshaking"
        case .connected: "connected"
        case .closed: "closed"
        case .failed: "failed"
        }
    }
}
