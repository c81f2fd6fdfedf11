/// Why a `TLSStream` failed.
///
/// The pinning outcomes are distinct cases: `peerNotPinned` when this side refused the peer's
/// certificate, `peerAlert` when the peer refused ours (or failed for its own reasons) and said
/// so with a fatal alert (RFC 8446 §6.2).
public enum TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// OpenSSL refused a setup call (`operation`); its error queue is attached.
    case openSSL(operation: String, message: String)
    /// The peer's certificate fingerprint (SHA-256 of the DER certificate) is not among the
    /// pinned ones; the handshake was aborted with a `bad_certificate` alert.
    case peerNotPinned(DTLSFingerprint)
    /// The peer sent no certificate. The server requires one; a client always gets one.
    case missingPeerCertificate
    /// The peer sent a fatal alert: `code` from the TLS AlertDescription registry
    /// (42 bad_certificate, 116 certificate_required, …) and OpenSSL's name for it.
    case peerAlert(code: UInt8, description: String)
    /// The handshake failed for another reason (no common version or cipher, bad message, …).
    case handshakeFailed(String)
    /// The connection failed after the handshake (bad record MAC, unexpected message, …).
    case connectionFailed(String)
    /// The call is not valid in the stream's current state.
    case invalidState(operation: String, state: TLSState)

    public var description: String {
        switch self {
        case let .openSSL(operation, message): "OpenSSL \(operation) failed: \(message)"
        case let .peerNotPinned(got): "peer certificate \(got) is not pinned"
        case .missingPeerCertificate: "the peer presented no certificate"
        case let .peerAlert(code, text): "the peer sent fatal alert \(code) (\(text))"
        case let .handshakeFailed(text): "TLS handshake failed: \(text)"
        case let .connectionFailed(text): "TLS connection failed: \(text)"
        case let .invalidState(operation, state): "\(operation) is not valid while the TLS stream is \(state)"
        }
    }
}

/// Where a `TLSStream` is in its life: the same states as a DTLS association.
public typealias TLSState = DTLSState

/// What the handshake settled, reported once with `TLSEvent.handshakeCompleted`.
public struct TLSNegotiation: Sendable, Equatable {
    /// SHA-256 fingerprint of the peer's certificate, one of the pinned ones.
    public let peerFingerprint: DTLSFingerprint
    /// OpenSSL's version name: `TLSv1.3` or `TLSv1.2`.
    public let protocolVersion: String
    /// OpenSSL's cipher suite name, for example `TLS_AES_256_GCM_SHA384`.
    public let cipherSuite: String
}

/// Something the peer's bytes caused, besides bytes to send back and plaintext.
public enum TLSEvent: Sendable, Equatable {
    /// The handshake completed and the peer is pinned (as far as this side can tell: in TLS
    /// 1.3 a client learns that the server refused its certificate only from a later alert).
    case handshakeCompleted(TLSNegotiation)
    /// The peer sent close_notify: no more plaintext will come.
    case peerClosed
}

/// The result of feeding bytes to a `TLSStream`.
public struct TLSOutput: Sendable {
    /// Bytes for the peer (handshake messages, alerts, close_notify, key update answers), in order.
    public var toSend: [UInt8]
    /// Decrypted application data, in order. May hold keys (MediaKeys): wipe it after use.
    public var plaintext: [UInt8]
    public var events: [TLSEvent]
}

/// The two sides of a TLS handshake; in the DTLS tunnel the Media Distributor is the client
/// and the Key Distributor the server (draft-ietf-perc-dtls-tunnel-12 §5.1).
public typealias TLSRole = DTLSRole
