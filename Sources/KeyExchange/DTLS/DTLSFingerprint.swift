/// A certificate fingerprint as SDP carries it (RFC 8122 §5): the hash function name and the
/// digest of the DER certificate, written `sha-256 AB:CD:…` (uppercase hex, colon-separated).
///
/// Only SHA-256 is produced and accepted (RFC 8122 §5 requires it to be supported; SHA-1 is
/// not accepted). Fingerprints are public, so `==` is an ordinary comparison.
public struct DTLSFingerprint: Sendable, Hashable, CustomStringConvertible {
    /// The hash function token, always `sha-256`.
    public static let algorithm = "sha-256"
    /// The 32-byte SHA-256 digest of the DER certificate.
    public let digest: [UInt8]

    /// Wraps a SHA-256 digest; nil unless it is 32 bytes.
    public init?(sha256Digest digest: [UInt8]) {
        guard digest.count == 32 else { return nil }
        self.digest = digest
    }

    /// Parses `sha-256 AB:CD:…` (hash name case-insensitive, hex either case, one or more spaces
    /// between), or the bare colon-separated hex form.
    public init(parsing text: String) throws(DTLSError) {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        let hexPart: Substring
        switch parts.count {
        case 1: hexPart = parts[0]
        case 2:
            guard parts[0].lowercased() == DTLSFingerprint.algorithm else { throw .invalidFingerprint(text) }
            hexPart = parts[1]
        default: throw .invalidFingerprint(text)
        }
        var bytes: [UInt8] = []
        for pair in hexPart.split(separator: ":", omittingEmptySubsequences: false) {
            guard pair.count == 2, let b = UInt8(pair, radix: 16) else { throw .invalidFingerprint(text) }
            bytes.append(b)
        }
        guard let fp = DTLSFingerprint(sha256Digest: bytes) else { throw .invalidFingerprint(text) }
        self = fp
    }

    /// The colon-separated uppercase hex digest without the hash name.
    public var hexDigest: String {
        let digits = Array("0123456789ABCDEF")
        return digest.map { String([digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]]) }.joined(separator: ":")
    }

    /// `sha-256 AB:CD:…`, the SDP `a=fingerprint` value.
    public var description: String { "\(DTLSFingerprint.algorithm) \(hexDigest)" }
}
