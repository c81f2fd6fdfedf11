import Testing
import TestSupport
import SRTP
import EKT

@Suite("EKTKey handshake message body (RFC 8870 §5.2.2)")
struct EKTKeyMessageTests {
    static func example() throws -> EKTKeyMessage {
        try EKTKeyMessage(ektKeyValue: SecretBytes(Array(0x00 ... 0x0F)),
                          srtpMasterSalt: SecretBytes(Array(0xA0 ... 0xAB)),
                          spi: 0x1234, ttl: 86_400)
    }

    // Written out by hand from the TLS presentation language of RFC 8870 §5.2.2:
    // opaque<1..256> takes a 2-byte length (RFC 8446 §3.4), uint24 is 3 bytes big-endian.
    static let exampleBytes: [UInt8] = [
        0x00, 0x10,                                                         // ekt_key_value length 16
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
        0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,                     // ekt_key_value
        0x00, 0x0C,                                                         // srtp_master_salt length 12
        0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, // srtp_master_salt
        0x12, 0x34,                                                         // ekt_spi 0x1234
        0x01, 0x51, 0x80,                                                   // ekt_ttl 86400 s
    ]

    @Test("serializes to the hand-written byte layout")
    func layout() throws {
        let m = try Self.example()
        #expect(m.serialized() == Self.exampleBytes)
        #expect(m.serializedSize == 37)
        #expect(EKTKeyMessage.handshakeType == 26)
    }

    @Test("parses the hand-written bytes into the same fields")
    func parse() throws {
        let m = try EKTKeyMessage(parsing: Self.exampleBytes)
        #expect(m == (try Self.example()))
        #expect(m.ektKeyValue.unsafeCopiedBytes == Array(0x00 ... 0x0F))
        #expect(m.srtpMasterSalt.unsafeCopiedBytes == Array(0xA0 ... 0xAB))
        #expect(m.spi == 0x1234)
        #expect(m.ttl == 86_400)
    }

    @Test("round trips boundary sizes and values",
          arguments: [(1, 1, UInt16(0), UInt32(0)), (16, 12, 1, 1), (32, 14, 0xFFFF, 0xFF_FFFF), (256, 256, 0x8000, 0x80_0000)])
    func roundTrip(keyLength: Int, saltLength: Int, spi: UInt16, ttl: UInt32) throws {
        let m = try EKTKeyMessage(ektKeyValue: SecretBytes(randomCount: keyLength),
                                  srtpMasterSalt: SecretBytes(randomCount: saltLength), spi: spi, ttl: ttl)
        let bytes = m.serialized()
        #expect(bytes.count == 2 + keyLength + 2 + saltLength + 5)
        #expect(try EKTKeyMessage(parsing: bytes) == m)
    }

    static func replacing(_ range: Range<Int>, with bytes: [UInt8]) -> [UInt8] {
        var b = exampleBytes
        b.replaceSubrange(range, with: bytes)
        return b
    }

    // Malformed bodies, each a small edit of `exampleBytes` (offsets: key length 0-1,
    // key 2-17, salt length 18-19, salt 20-31, spi 32-33, ttl 34-36).
    static let malformed: [(name: String, bytes: [UInt8], error: EKTError)] = [
        ("empty", [], .truncated(field: .ektKeyValue, needed: 2, available: 0)),
        ("one length byte", [0x00], .truncated(field: .ektKeyValue, needed: 2, available: 1)),
        ("zero-length ekt_key_value", [0x00, 0x00] + Array(exampleBytes[18...]),
         .invalidVectorLength(field: .ektKeyValue, length: 0, allowed: 1 ... 256)),
        ("ekt_key_value length 257", replacing(0 ..< 2, with: [0x01, 0x01]),
         .invalidVectorLength(field: .ektKeyValue, length: 257, allowed: 1 ... 256)),
        ("ekt_key_value longer than the message", replacing(0 ..< 2, with: [0x00, 0xFF]),
         .truncated(field: .ektKeyValue, needed: 257, available: 37)),
        ("zero-length srtp_master_salt", Array(exampleBytes[0 ..< 18]) + [0x00, 0x00] + Array(exampleBytes[32...]),
         .invalidVectorLength(field: .srtpMasterSalt, length: 0, allowed: 1 ... 256)),
        ("srtp_master_salt length 0xFFFF", replacing(18 ..< 20, with: [0xFF, 0xFF]),
         .invalidVectorLength(field: .srtpMasterSalt, length: 0xFFFF, allowed: 1 ... 256)),
        ("salt cut short", Array(exampleBytes[0 ..< 25]), .truncated(field: .srtpMasterSalt, needed: 32, available: 25)),
        ("no ekt_spi", Array(exampleBytes[0 ..< 32]), .truncated(field: .ektSPI, needed: 34, available: 32)),
        ("half an ekt_spi", Array(exampleBytes[0 ..< 33]), .truncated(field: .ektSPI, needed: 34, available: 33)),
        ("no ekt_ttl", Array(exampleBytes[0 ..< 34]), .truncated(field: .ektTTL, needed: 37, available: 34)),
        ("two-byte ekt_ttl", Array(exampleBytes[0 ..< 36]), .truncated(field: .ektTTL, needed: 37, available: 36)),
        ("one trailing byte", exampleBytes + [0x00], .trailingBytes(after: .ektTTL, count: 1)),
        ("a second message appended", exampleBytes + exampleBytes, .trailingBytes(after: .ektTTL, count: 37)),
    ]

    @Test("malformed bodies give the matching typed error", arguments: malformed.indices)
    func rejects(i: Int) {
        let c = Self.malformed[i]
        #expect(throws: c.error, "\(c.name)") { try EKTKeyMessage(parsing: c.bytes) }
    }

    @Test("construction refuses empty or over-long vectors and TTLs over 24 bits")
    func constructionLimits() {
        let key = SecretBytes(randomCount: 16), salt = SecretBytes(randomCount: 12)
        #expect(throws: EKTError.invalidVectorLength(field: .ektKeyValue, length: 0, allowed: 1 ... 256)) {
            try EKTKeyMessage(ektKeyValue: SecretBytes([]), srtpMasterSalt: salt, spi: 1, ttl: 1)
        }
        #expect(throws: EKTError.invalidVectorLength(field: .srtpMasterSalt, length: 257, allowed: 1 ... 256)) {
            try EKTKeyMessage(ektKeyValue: key, srtpMasterSalt: SecretBytes(randomCount: 257), spi: 1, ttl: 1)
        }
        #expect(throws: EKTError.ttlOutOfRange(0x100_0000)) {
            try EKTKeyMessage(ektKeyValue: key, srtpMasterSalt: salt, spi: 1, ttl: 0x100_0000)
        }
    }

    @Test("prints key and salt as redacted")
    func redacted() throws {
        let m = try EKTKeyMessage(ektKeyValue: SecretBytes([UInt8](repeating: 0xCD, count: 16)),
                                  srtpMasterSalt: SecretBytes([UInt8](repeating: 0xEF, count: 12)), spi: 9, ttl: 60)
        for text in [m.description, String(describing: m), String(reflecting: m)] {
            #expect(!text.lowercased().contains("cdcd") && !text.lowercased().contains("efef"))
            #expect(!text.contains("205"))   // 0xCD in decimal
        }
        #expect(m.description.contains("spi: 9"))
    }

    @Test("every prefix and suffix of a valid body gives a typed error or a parse that re-serializes exactly")
    func truncationsNeverTrap() {
        for t in truncations(of: Self.exampleBytes) {
            do {
                let m = try EKTKeyMessage(parsing: t)
                #expect(m.serialized() == t)
            } catch {
                _ = error.description
            }
        }
    }

    @Test("3000 seeded random mutations give a typed error or a parse that re-serializes exactly")
    func mutationsNeverTrap() {
        var rng = SplitMix64(seed: 0xE47_4E7)
        var accepted = 0
        for _ in 0 ..< 3000 {
            let bytes = Mutator.mutate(Self.exampleBytes, using: &rng)
            do {
                let m = try EKTKeyMessage(parsing: bytes)
                #expect(m.serialized() == bytes)
                accepted += 1
            } catch {
                _ = error.description
            }
        }
        #expect(accepted > 0)
    }
}
