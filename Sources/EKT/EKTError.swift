/// A named piece of an EKT wire structure, used in error reports.
public enum EKTWireElement: String, Sendable, Equatable, CustomStringConvertible {
    /// The message type byte at the end of the EKT field (RFC 8870 §4.1).
    case messageType = "EKTMsgType"
    /// The 2-byte EKTMsgLength before the type byte.
    case length = "EKTMsgLength"
    /// The whole Full EKT field, as announced by EKTMsgLength.
    case fullField = "FullEKTField"
    /// The first byte of the EKTPlaintext.
    case masterKeyLength = "SRTPMasterKeyLength"
    case masterKey = "SRTPMasterKey"
    case ssrc = "SSRC"
    case roc = "ROC"
    /// The EKTKey handshake message body fields (RFC 8870 §5.2.2).
    case ektKeyValue = "ekt_key_value"
    case srtpMasterSalt = "srtp_master_salt"
    case ektSPI = "ekt_spi"
    case ektTTL = "ekt_ttl"

    public var description: String { rawValue }
}

/// Why an EKT field, EKTPlaintext, EKTKey message or key-wrap operation was rejected.
///
/// Malformed input (lengths, truncation) is kept apart from `unwrapFailed`, the integrity
/// failure of the EKT cipher (RFC 8870 §4.3.2 step 3).
public enum EKTError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended inside `field`: `needed` bytes in total, `available` present.
    case truncated(field: EKTWireElement, needed: Int, available: Int)
    /// A Full EKT field's EKTMsgLength is outside 8...258 (ciphertext 1...251 bytes + 7).
    case invalidLength(Int)
    /// The last byte is neither Short (0x00) nor Full (0x02); the field must be dropped.
    case unknownMessageType(UInt8)
    /// SRTPMasterKeyLength outside 1...242 (RFC 8870 §4.1 ABNF).
    case invalidMasterKeyLength(Int)
    /// Bytes left over after the last field of a fixed structure.
    case trailingBytes(after: EKTWireElement, count: Int)
    /// An opaque vector whose length is outside its allowed range (TLS `opaque x<lo..hi>`).
    case invalidVectorLength(field: EKTWireElement, length: Int, allowed: ClosedRange<Int>)
    /// `ekt_ttl` does not fit in 24 bits.
    case ttlOutOfRange(UInt32)
    /// A key-encryption key that is not 16, 24 or 32 bytes (or not the cipher's length).
    case invalidKEKLength(expected: [Int], got: Int)
    /// Key-wrap input of a length the algorithm cannot take (RFC 3394 needs a multiple of 8, at least 16).
    case invalidPlaintextLength(Int)
    /// Key-unwrap input that cannot be a wrap output (not a multiple of 8, or under 16 bytes).
    case invalidCiphertextLength(Int)
    /// The integrity check of AES key unwrap failed: wrong key, or tampered ciphertext.
    case unwrapFailed
    /// The key-wrap known-answer self-test did not pass; the cipher must not be used.
    case selfTestFailed
    /// OpenSSL refused an operation; its error text is attached.
    case cryptoLibrary(String)

    public var description: String {
        switch self {
        case let .truncated(field, needed, available):
            return "truncated in \(field): needed \(needed) bytes, \(available) available"
        case let .invalidLength(length):
            return "Full EKT field EKTMsgLength \(length) outside 8...258"
        case let .unknownMessageType(type):
            return "unknown EKT message type 0x\(String(type, radix: 16))"
        case let .invalidMasterKeyLength(length):
            return "SRTPMasterKeyLength \(length) outside 1...242"
        case let .trailingBytes(after, count):
            return "\(count) unexpected bytes after \(after)"
        case let .invalidVectorLength(field, length, allowed):
            return "\(field) length \(length) outside \(allowed.lowerBound)...\(allowed.upperBound)"
        case let .ttlOutOfRange(ttl):
            return "ekt_ttl \(ttl) does not fit in 24 bits (max 16777215)"
        case let .invalidKEKLength(expected, got):
            return "key-encryption key must be \(expected.map(String.init).joined(separator: ", ")) bytes, got \(got)"
        case let .invalidPlaintextLength(length):
            return "cannot key-wrap \(length) bytes"
        case let .invalidCiphertextLength(length):
            return "\(length) bytes cannot be a key-wrap output (need a multiple of 8, at least 16)"
        case .unwrapFailed:
            return "AES key unwrap integrity check failed (wrong key or tampered ciphertext)"
        case .selfTestFailed:
            return "AES key wrap known-answer self-test failed"
        case let .cryptoLibrary(message):
            return "OpenSSL: \(message)"
        }
    }
}
