/// The association identifier of the DTLS tunnel (draft-ietf-perc-dtls-tunnel-12 §5.3,
/// §6.1 `opaque uuid[16]`): 16 bytes naming one endpoint-initiated DTLS association.
///
/// The Media Distributor must assign a random (version 4) UUID, RFC 4122 §4.4. Parsing
/// accepts any 16 bytes; `isRandomUUID` tells whether they have the version 4 layout.
public struct AssociationID: Hashable, Sendable, CustomStringConvertible {
    /// Wire size in bytes.
    public static let byteCount = 16

    /// Bytes 0...7 and 8...15, big endian.
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Exactly 16 bytes, else `.invalidVectorLength(field: .associationID, ...)`.
    public init<C: Collection>(bytes: C) throws(TunnelError) where C.Element == UInt8 {
        guard bytes.count == AssociationID.byteCount else {
            throw .invalidVectorLength(field: .associationID, length: bytes.count, allowed: 16...16)
        }
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
        }
        self.init(high: h, low: l)
    }

    /// A fresh random UUID (RFC 4122 §4.4): 122 random bits, version nibble 4, variant 10.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> AssociationID {
        let h = generator.next() as UInt64
        let l = generator.next() as UInt64
        return AssociationID(high: h & ~0xF000 | 0x4000,
                             low: l & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000)
    }

    /// `random(using:)` with the system CSPRNG.
    public static func random() -> AssociationID {
        var g = SystemRandomNumberGenerator()
        return random(using: &g)
    }

    /// The 16 wire bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        write(to: &out)
        return out
    }

    /// Appends the 16 wire bytes.
    public func write(to out: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
    }

    /// Version nibble 4 and RFC 4122 variant (binary 10), as §5.3 requires of the MD.
    public var isRandomUUID: Bool {
        (high >> 12) & 0xF == 4 && low >> 62 == 0b10
    }

    /// Canonical lowercase UUID text, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    public var description: String {
        let digits = Array("0123456789abcdef".utf8)
        var s: [UInt8] = []
        s.reserveCapacity(36)
        for (i, b) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { s.append(UInt8(ascii: "-")) }
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: s, as: UTF8.self)
    }

    /// Parses the canonical 36-character form (either case); nil otherwise.
    public init?(uuidString: String) {
        let utf8 = Array(uuidString.utf8)
        guard utf8.count == 36 else { return nil }
        var nibbles: [UInt8] = []
        nibbles.reserveCapacity(32)
        for (i, c) in utf8.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                guard c == UInt8(ascii: "-") else { return nil }
                continue
            }
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibbles.append(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibbles.append(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibbles.append(c - UInt8(ascii: "A") + 10)
            default: return nil
            }
        }
        var h: UInt64 = 0, l: UInt64 = 0
        for n in nibbles[0 ..< 16] { h = h << 4 | UInt64(n) }
        for n in nibbles[16 ..< 32] { l = l << 4 | UInt64(n) }
        self.init(high: h, low: l)
    }
}
