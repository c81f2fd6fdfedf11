import SRTP

/// The EKT field that ends every SRTP packet when EKT is in use (RFC 8870 §4.1).
///
/// It sits after the SRTP authentication tag and is not covered by it; it is read from the
/// end of the packet, starting with the message type in the last byte.
public enum EKTField: Equatable, Sendable {
    /// Short EKT field: the single byte 0x00.
    case short
    /// Full EKT field (message type 0x02) carrying a wrapped SRTP master key.
    case full(FullEKTField)

    /// EKTMsgTypeShort.
    public static let shortMessageType: UInt8 = 0x00
    /// EKTMsgTypeFull.
    public static let fullMessageType: UInt8 = 0x02

    /// Bytes this field occupies at the end of a packet.
    public var serializedSize: Int {
        switch self {
        case .short: 1
        case let .full(field): field.serializedSize
        }
    }

    /// Appends the field's bytes.
    public func write(to out: inout [UInt8]) {
        switch self {
        case .short: out.append(EKTField.shortMessageType)
        case let .full(field): field.write(to: &out)
        }
    }

    /// The field's bytes.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(serializedSize)
        write(to: &out)
        return out
    }

    //  Full EKT field, read backwards from the last byte of the packet (RFC 8870 §4.1):
    //
    //   end - Length                                                    end
    //   |                                                                 |
    //   +----------------------+--------+--------+----------+-------------+
    //   | EKTCiphertext        |  SPI   | Epoch  |  Length  | type = 0x02 |
    //   | (Length - 7 bytes,   | 2 B BE | 2 B BE |  2 B BE  |    1 B      |
    //   |  1...251)            |        |        |          |             |
    //   +----------------------+--------+--------+----------+-------------+
    //                          ^end-7   ^end-5   ^end-3     ^end-1
    //
    //  "end" is the packet length; BE = big-endian (network order). Length counts the whole
    //  field, itself and the type byte included. A Short field is the lone type byte 0x00.
    //  Any other type is unknown and the field cannot be stripped safely.

    /// Offsets counted back from the end of the packet.
    private static let typeFromEnd = 1
    private static let lengthFromEnd = 3
    private static let epochFromEnd = 5
    private static let spiFromEnd = 7

    /// Parses the EKT field at the end of `packet` (RFC 8870 §4.3.2 step 1).
    ///
    /// Returns the field and how many trailing bytes it occupies, which the caller strips
    /// before SRTP processing. The Length is checked against the packet size, never trusted.
    public static func parse(trailerOf packet: UnsafeRawBufferPointer) throws(EKTError) -> (field: EKTField, length: Int) {
        let available = packet.count
        guard available >= 1 else {
            throw .truncated(field: .messageType, needed: 1, available: 0)
        }
        let type = packet[available - typeFromEnd]
        switch type {
        case shortMessageType:
            return (.short, 1)
        case fullMessageType:
            break
        default:
            throw .unknownMessageType(type)
        }
        guard available >= lengthFromEnd else {
            throw .truncated(field: .length, needed: lengthFromEnd, available: available)
        }
        let length = Int(readUInt16(packet, at: available - lengthFromEnd))
        let lengthRange = (FullEKTField.ciphertextLengthRange.lowerBound + FullEKTField.overhead)
            ... (FullEKTField.ciphertextLengthRange.upperBound + FullEKTField.overhead)
        guard lengthRange.contains(length) else {
            throw .invalidLength(length)
        }
        guard length <= available else {
            throw .truncated(field: .fullField, needed: length, available: available)
        }
        let start = available - length
        let ciphertext = [UInt8](packet[start ..< available - spiFromEnd])
        // Range-checked above: 1...251 bytes.
        let field = try FullEKTField(ciphertext: ciphertext,
                                     spi: readUInt16(packet, at: available - spiFromEnd),
                                     epoch: readUInt16(packet, at: available - epochFromEnd))
        return (.full(field), length)
    }

    /// `parse(trailerOf:)` over an array.
    public static func parse(trailerOf packet: [UInt8]) throws(EKTError) -> (field: EKTField, length: Int) {
        try packet.withUnsafeBytes { bytes in Result { () throws(EKTError) in try parse(trailerOf: bytes) } }.get()
    }

    /// Builds a Full field: wraps `plaintext` under the EKTKey in `wrap` (RFC 8870 §4.3.1).
    ///
    /// Throws `.invalidLength` if the ciphertext would exceed the ABNF's 251 bytes (master
    /// keys over 231 bytes).
    public static func makeFull(plaintext: EKTPlaintext, spi: UInt16, epoch: UInt16,
                                wrap: AESKeyWrap) throws(EKTError) -> FullEKTField {
        let sealed = plaintext.sealed()
        defer { sealed.wipe() }
        let ciphertext = try wrap.wrap(sealed)
        return try FullEKTField(ciphertext: ciphertext, spi: spi, epoch: epoch)
    }
}

/// A Full EKT field (RFC 8870 §4.1): EKTCiphertext || SPI || Epoch || Length || 0x02.
public struct FullEKTField: Equatable, Sendable {
    /// EKTCiphertext = 1*251BYTE (RFC 8870 §4.1 ABNF).
    public static let ciphertextLengthRange = 1...251
    /// SPI, Epoch, Length and type: the bytes after the ciphertext.
    public static let overhead = 7

    /// The wrapped EKTPlaintext.
    public let ciphertext: [UInt8]
    /// Selects the EKT parameter set (cipher, EKTKey, salt).
    public var spi: UInt16
    /// Master keys this sender sent under this SPI before this one.
    public var epoch: UInt16

    /// Throws `.invalidLength(ciphertext.count + 7)` unless the ciphertext is 1...251 bytes.
    public init(ciphertext: [UInt8], spi: UInt16, epoch: UInt16) throws(EKTError) {
        guard FullEKTField.ciphertextLengthRange.contains(ciphertext.count) else {
            throw .invalidLength(ciphertext.count + FullEKTField.overhead)
        }
        self.ciphertext = ciphertext
        self.spi = spi
        self.epoch = epoch
    }

    /// The EKTMsgLength value, which equals the whole field's size: ciphertext + 7.
    public var serializedSize: Int { ciphertext.count + FullEKTField.overhead }

    /// Appends the field's bytes, multi-byte values in network order.
    public func write(to out: inout [UInt8]) {
        out.append(contentsOf: ciphertext)
        appendUInt16(spi, to: &out)
        appendUInt16(epoch, to: &out)
        // ciphertext.count <= 251 (checked in init), so the length fits.
        appendUInt16(UInt16(serializedSize), to: &out)
        out.append(EKTField.fullMessageType)
    }

    /// The field's bytes.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(serializedSize)
        write(to: &out)
        return out
    }

    /// Unwraps and parses the EKTPlaintext (RFC 8870 §4.3.2 steps 3-4).
    ///
    /// `.unwrapFailed` means the packet should be dropped; the SSRC check is the caller's.
    public func decrypt(with wrap: AESKeyWrap) throws(EKTError) -> EKTPlaintext {
        let plaintext = try wrap.unwrap(ciphertext)
        defer { plaintext.wipe() }
        return try EKTPlaintext(parsing: plaintext)
    }
}

/// The plaintext of a Full EKT field (RFC 8870 §4.1):
/// SRTPMasterKeyLength (1 B) || SRTPMasterKey || SSRC (4 B) || ROC (4 B), network order.
///
/// The salt is not carried; it comes from the EKTKey message for the SPI.
public struct EKTPlaintext: Equatable, Sendable, CustomStringConvertible {
    /// SRTPMasterKey = 1*242BYTE.
    public static let masterKeyLengthRange = 1...242

    /// The sender's SRTP master key (in PERC: the inner, end-to-end half).
    public let masterKey: SecretBytes
    /// Must match the SSRC of the packet carrying the field (RFC 8870 §4.3.2 step 5).
    public var ssrc: UInt32
    /// The sender's rollover counter for that SSRC.
    public var roc: UInt32

    /// Throws `.invalidMasterKeyLength` unless the key is 1...242 bytes.
    public init(masterKey: SecretBytes, ssrc: UInt32, roc: UInt32) throws(EKTError) {
        guard EKTPlaintext.masterKeyLengthRange.contains(masterKey.count) else {
            throw .invalidMasterKeyLength(masterKey.count)
        }
        self.masterKey = masterKey
        self.ssrc = ssrc
        self.roc = roc
    }

    /// Parses an unwrapped plaintext; exactly 8 bytes (SSRC, ROC) must follow the key.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(EKTError) {
        let available = bytes.count
        guard available >= 1 else {
            throw .truncated(field: .masterKeyLength, needed: 1, available: 0)
        }
        let keyLength = Int(bytes[0])
        guard EKTPlaintext.masterKeyLengthRange.contains(keyLength) else {
            throw .invalidMasterKeyLength(keyLength)
        }
        let keyEnd = 1 + keyLength
        let total = keyEnd + 8
        guard available >= total else {
            let field: EKTWireElement = available < keyEnd ? .masterKey : (available < keyEnd + 4 ? .ssrc : .roc)
            throw .truncated(field: field, needed: total, available: available)
        }
        guard available == total else {
            throw .trailingBytes(after: .roc, count: available - total)
        }
        masterKey = SecretBytes(UnsafeRawBufferPointer(rebasing: bytes[1 ..< keyEnd]))
        ssrc = readUInt32(bytes, at: keyEnd)
        roc = readUInt32(bytes, at: keyEnd + 4)
    }

    /// `init(parsing:)` over an array.
    public init(parsing bytes: [UInt8]) throws(EKTError) {
        self = try bytes.withUnsafeBytes { raw in
            Result { () throws(EKTError) in try EKTPlaintext(parsing: raw) }
        }.get()
    }

    /// `init(parsing:)` over secret bytes, for unwrapped plaintexts.
    public init(parsing secret: SecretBytes) throws(EKTError) {
        self = try secret.withUnsafeBytes { (raw) throws(EKTError) in try EKTPlaintext(parsing: raw) }
    }

    /// 1 + key length + 8.
    public var serializedSize: Int { 1 + masterKey.count + 8 }

    /// The plaintext bytes. The array holds the master key and is not wiped; prefer
    /// `EKTField.makeFull`, which wraps without such a copy.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(serializedSize)
        // masterKey.count is 1...242 (checked in both inits).
        out.append(UInt8(masterKey.count))
        masterKey.withUnsafeBytes { out.append(contentsOf: $0) }
        appendUInt32(ssrc, to: &out)
        appendUInt32(roc, to: &out)
        return out
    }

    /// The plaintext as secret bytes; the intermediate array is zeroed.
    func sealed() -> SecretBytes {
        var bytes = serialized()
        defer { bytes.withUnsafeMutableBytes { ektSecureZero($0) } }
        return SecretBytes(bytes)
    }

    public var description: String {
        "EKTPlaintext(masterKey: \(masterKey), ssrc: \(hex32String(ssrc)), roc: \(roc))"
    }
}

// MARK: Network-order helpers (callers check bounds first)

@inline(__always)
func readUInt16(_ p: UnsafeRawBufferPointer, at i: Int) -> UInt16 {
    UInt16(p[i]) << 8 | UInt16(p[i + 1])
}

@inline(__always)
func readUInt32(_ p: UnsafeRawBufferPointer, at i: Int) -> UInt32 {
    UInt32(p[i]) << 24 | UInt32(p[i + 1]) << 16 | UInt32(p[i + 2]) << 8 | UInt32(p[i + 3])
}

@inline(__always)
func appendUInt16(_ v: UInt16, to out: inout [UInt8]) {
    out.append(UInt8(truncatingIfNeeded: v >> 8))
    out.append(UInt8(truncatingIfNeeded: v))
}

@inline(__always)
func appendUInt32(_ v: UInt32, to out: inout [UInt8]) {
    out.append(UInt8(truncatingIfNeeded: v >> 24))
    out.append(UInt8(truncatingIfNeeded: v >> 16))
    out.append(UInt8(truncatingIfNeeded: v >> 8))
    out.append(UInt8(truncatingIfNeeded: v))
}

func hex32String(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - s.count) + s
}
