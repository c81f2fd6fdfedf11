import SRTP

/// The body of the DTLS `ekt_key` handshake message (RFC 8870 §5.2.2), sent by the Key
/// Distributor to hand out an EKTKey, its SPI and the SRTP master salt.
///
/// ```
/// struct {
///   opaque ekt_key_value<1..256>;     // 2-byte length, then the key
///   opaque srtp_master_salt<1..256>;  // 2-byte length, then the salt
///   uint16 ekt_spi;                   // network order
///   uint24 ekt_ttl;                   // seconds, network order
/// } EKTKey;
/// ```
/// The prefix width follows the TLS presentation rules (RFC 8446 §3.4): a 256 maximum needs
/// two bytes. Prints as redacted.
public struct EKTKeyMessage: Equatable, Sendable, CustomStringConvertible {
    /// HandshakeType `ekt_key` (RFC 8870 §5.2.2; TLS HandshakeType registry).
    public static let handshakeType: UInt8 = 26
    /// Allowed length of both opaque vectors.
    public static let vectorLengthRange = 1...256
    /// Largest `ekt_ttl` (24 bits).
    public static let maxTTL: UInt32 = 0xFF_FFFF

    /// The EKTKey (16 bytes for AESKW128, 32 for AESKW256; not checked here, the cipher is
    /// negotiated separately).
    public let ektKeyValue: SecretBytes
    /// Salt for every master key wrapped under this EKTKey; if longer than the transform
    /// needs, its first bytes are used.
    public let srtpMasterSalt: SecretBytes
    /// The SPI that Full EKT fields use to name this key and salt.
    public let spi: UInt16
    /// Lifetime in seconds, at most 2^24 - 1.
    public let ttl: UInt32

    /// Throws `.invalidVectorLength` for a key or salt outside 1...256 bytes and
    /// `.ttlOutOfRange` for a TTL over 24 bits.
    public init(ektKeyValue: SecretBytes, srtpMasterSalt: SecretBytes, spi: UInt16, ttl: UInt32) throws(EKTError) {
        let range = EKTKeyMessage.vectorLengthRange
        guard range.contains(ektKeyValue.count) else {
            throw .invalidVectorLength(field: .ektKeyValue, length: ektKeyValue.count, allowed: range)
        }
        guard range.contains(srtpMasterSalt.count) else {
            throw .invalidVectorLength(field: .srtpMasterSalt, length: srtpMasterSalt.count, allowed: range)
        }
        guard ttl <= EKTKeyMessage.maxTTL else { throw .ttlOutOfRange(ttl) }
        self.ektKeyValue = ektKeyValue
        self.srtpMasterSalt = srtpMasterSalt
        self.spi = spi
        self.ttl = ttl
    }

    /// Parses a message body (without the handshake header). Rejects empty or over-long
    /// vectors, truncation anywhere, and bytes after `ekt_ttl`.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(EKTError) {
        var offset = 0
        let key = try EKTKeyMessage.readVector(bytes, at: &offset, field: .ektKeyValue)
        let salt = try EKTKeyMessage.readVector(bytes, at: &offset, field: .srtpMasterSalt)
        guard bytes.count >= offset + 2 else {
            throw .truncated(field: .ektSPI, needed: offset + 2, available: bytes.count)
        }
        let spi = readUInt16(bytes, at: offset)
        offset += 2
        guard bytes.count >= offset + 3 else {
            throw .truncated(field: .ektTTL, needed: offset + 3, available: bytes.count)
        }
        let ttl = UInt32(bytes[offset]) << 16 | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2])
        offset += 3
        guard bytes.count == offset else {
            throw .trailingBytes(after: .ektTTL, count: bytes.count - offset)
        }
        // Lengths and TTL width were checked while reading.
        try self.init(ektKeyValue: key, srtpMasterSalt: salt, spi: spi, ttl: ttl)
    }

    /// `init(parsing:)` over an array.
    public init(parsing bytes: [UInt8]) throws(EKTError) {
        self = try bytes.withUnsafeBytes { raw in
            Result { () throws(EKTError) in try EKTKeyMessage(parsing: raw) }
        }.get()
    }

    /// Body size: 2 + key + 2 + salt + 2 + 3.
    public var serializedSize: Int { 2 + ektKeyValue.count + 2 + srtpMasterSalt.count + 5 }

    /// Appends the body bytes. The array then holds the key and is not wiped.
    public func write(to out: inout [UInt8]) {
        for vector in [ektKeyValue, srtpMasterSalt] {
            // 1...256 (checked in init), fits in the 2-byte prefix.
            appendUInt16(UInt16(vector.count), to: &out)
            vector.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        appendUInt16(spi, to: &out)
        out.append(UInt8(truncatingIfNeeded: ttl >> 16))
        out.append(UInt8(truncatingIfNeeded: ttl >> 8))
        out.append(UInt8(truncatingIfNeeded: ttl))
    }

    /// The body bytes (no handshake header). The array holds the key and is not wiped.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(serializedSize)
        write(to: &out)
        return out
    }

    public var description: String {
        "EKTKeyMessage(ektKeyValue: \(ektKeyValue), srtpMasterSalt: \(srtpMasterSalt), spi: \(spi), ttl: \(ttl) s)"
    }

    /// Reads `opaque x<1..256>` at `offset`, advancing it.
    private static func readVector(_ bytes: UnsafeRawBufferPointer, at offset: inout Int,
                                   field: EKTWireElement) throws(EKTError) -> SecretBytes {
        guard bytes.count >= offset + 2 else {
            throw .truncated(field: field, needed: offset + 2, available: bytes.count)
        }
        let length = Int(readUInt16(bytes, at: offset))
        guard vectorLengthRange.contains(length) else {
            throw .invalidVectorLength(field: field, length: length, allowed: vectorLengthRange)
        }
        let start = offset + 2
        guard bytes.count >= start + length else {
            throw .truncated(field: field, needed: start + length, available: bytes.count)
        }
        offset = start + length
        return SecretBytes(UnsafeRawBufferPointer(rebasing: bytes[start ..< start + length]))
    }
}
