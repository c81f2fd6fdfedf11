import Testing
import TestSupport
import SRTP
import EKT

/// One key-wrap known answer: KEK, key data, expected wrap output (hex).
struct KeyWrapVector: CustomTestStringConvertible, Sendable {
    var name: String
    var kek: String
    var plaintext: String
    var wrapped: String
    var testDescription: String { name }

    var kekBytes: SecretBytes { SecretBytes(hex: kek)! }            // literals below are valid hex
    var plaintextBytes: [UInt8] { [UInt8](hexString: plaintext)! }
    var wrappedBytes: [UInt8] { [UInt8](hexString: wrapped)! }
}

@Suite("AES key wrap with padding (RFC 5649)")
struct AESKeyWrapPaddedTests {
    // RFC 5649 §6 (both examples use a 192-bit KEK).
    static let rfc5649Vectors = [
        KeyWrapVector(name: "RFC 5649 §6, 20-octet key",
                      kek: "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
                      plaintext: "c37b7e6492584340bed12207808941155068f738",
                      wrapped: "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"),
        KeyWrapVector(name: "RFC 5649 §6, 7-octet key (single ECB block)",
                      kek: "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
                      plaintext: "466f7250617369",
                      wrapped: "afbeb0f07dfbf5419200f2ccb50bb24f"),
    ]

    @Test("wraps the RFC 5649 §6 examples byte for byte", arguments: rfc5649Vectors)
    func wrapsRFCVectors(_ v: KeyWrapVector) throws {
        let kw = try AESKeyWrap(kek: v.kekBytes)
        #expect(try kw.wrap(v.plaintextBytes) == v.wrappedBytes)
        #expect(try kw.wrap(SecretBytes(v.plaintextBytes)) == v.wrappedBytes)
    }

    @Test("unwraps the RFC 5649 §6 examples to the original key", arguments: rfc5649Vectors)
    func unwrapsRFCVectors(_ v: KeyWrapVector) throws {
        let kw = try AESKeyWrap(kek: v.kekBytes)
        #expect(try kw.unwrap(v.wrappedBytes).unsafeCopiedBytes == v.plaintextBytes)
    }

    @Test("output size is 8*ceil(M/8)+8, not the M+(M mod 8)+8 printed in RFC 8870 §4.4.1",
          arguments: [(1, 16), (7, 16), (8, 16), (9, 24), (16, 24), (20, 32), (25, 40), (41, 56), (251, 264)])
    func wrappedLength(m: Int, n: Int) throws {
        #expect(AESKeyWrap.wrappedLength(plaintextLength: m) == n)
        let kw = try AESKeyWrap(kek: SecretBytes(randomCount: 16))
        #expect(try kw.wrap([UInt8](repeating: 0x5A, count: m)).count == n)
    }

    @Test("the known-answer self-test passed")
    func selfTest() {
        #expect(AESKeyWrap.selfTestPassed)
    }

    @Test("any single flipped bit in the ciphertext makes unwrap fail with .unwrapFailed")
    func tamperedCiphertextFails() throws {
        let v = Self.rfc5649Vectors[0]
        let kw = try AESKeyWrap(kek: v.kekBytes)
        let good = v.wrappedBytes
        for i in good.indices {
            for bit in 0 ..< 8 {
                var bad = good
                bad[i] ^= 1 << bit
                #expect(throws: EKTError.unwrapFailed) { try kw.unwrap(bad) }
            }
        }
    }

    @Test("unwrap under a different KEK fails with .unwrapFailed", arguments: [16, 32])
    func wrongKEKFails(kekLength: Int) throws {
        let kek = SecretBytes(randomCount: kekLength)
        var other = kek.unsafeCopiedBytes
        other[other.count - 1] ^= 0x01
        let wrapped = try AESKeyWrap(kek: kek).wrap([UInt8](repeating: 0x11, count: 25))
        #expect(throws: EKTError.unwrapFailed) { try AESKeyWrap(kek: SecretBytes(other)).unwrap(wrapped) }
    }

    @Test("an RFC 3394 (default IV) wrap is not accepted by the padded unwrap")
    func unpaddedWrapRejectedByPaddedUnwrap() throws {
        let v = AESKeyWrapUnpaddedTests.rfc3394Vectors[0]
        #expect(throws: EKTError.unwrapFailed) { try AESKeyWrap(kek: v.kekBytes).unwrap(v.wrappedBytes) }
    }

    @Test("malformed ciphertext lengths are reported as such, not as unwrap failures",
          arguments: [0, 1, 8, 15, 17, 23, 41])
    func malformedCiphertextLength(n: Int) throws {
        let kw = try AESKeyWrap(kek: SecretBytes(randomCount: 16))
        #expect(throws: EKTError.invalidCiphertextLength(n)) { try kw.unwrap([UInt8](repeating: 0, count: n)) }
    }

    @Test("an empty plaintext cannot be wrapped")
    func emptyPlaintext() throws {
        let kw = try AESKeyWrap(kek: SecretBytes(randomCount: 16))
        #expect(throws: EKTError.invalidPlaintextLength(0)) { try kw.wrap([]) }
    }

    @Test("KEKs other than 16, 24 or 32 bytes are rejected", arguments: [0, 1, 15, 17, 23, 31, 33, 64])
    func invalidKEKLength(n: Int) {
        #expect(throws: EKTError.invalidKEKLength(expected: [16, 24, 32], got: n)) {
            try AESKeyWrap(kek: SecretBytes([UInt8](repeating: 7, count: n)))
        }
    }

    @Test("one instance gives the same results when shared between tasks")
    func concurrentUse() async throws {
        let v = Self.rfc5649Vectors[0]
        let kw = try AESKeyWrap(kek: v.kekBytes)
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0 ..< 8 {
                group.addTask {
                    for _ in 0 ..< 200 {
                        guard (try? kw.wrap(v.plaintextBytes)) == v.wrappedBytes,
                              (try? kw.unwrap(v.wrappedBytes))?.unsafeCopiedBytes == v.plaintextBytes else { return false }
                    }
                    return true
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: true, count: 8))
    }

    @Test("agrees with Python cryptography's RFC 5649 on 50 seeded random cases, both directions")
    func crossCheckWithPython() throws {
        var rng = SplitMix64(seed: 0xE4_7C_5649)
        var cases: [(kek: [UInt8], plaintext: [UInt8], ourWrap: [UInt8])] = []
        for _ in 0 ..< 50 {
            let kek = rng.bytes(Bool.random(using: &rng) ? 16 : 32)
            let plaintext = rng.bytes(Int.random(in: 1 ... 64, using: &rng))
            let ours = try AESKeyWrap(kek: SecretBytes(kek)).wrap(plaintext)
            #expect(try AESKeyWrap(kek: SecretBytes(kek)).unwrap(ours).unsafeCopiedBytes == plaintext)
            cases.append((kek, plaintext, ours))
        }
        let answers: [PythonKeyWrapOracle.Answer]
        do {
            answers = try PythonKeyWrapOracle.run(cases)
        } catch {
            // Deliberately a failure, not a skip: the oracle is part of the test environment.
            Issue.record("Python oracle unavailable: \(error)")
            return
        }
        for (c, answer) in zip(cases, answers) {
            #expect(answer.wrapped == c.ourWrap, "python wrap differs for KEK \(c.kek.count) B, plaintext \(c.plaintext.hexString)")
            #expect(answer.unwrappedOurs == c.plaintext, "python unwrap of our wrap differs for \(c.plaintext.hexString)")
        }
    }
}

@Suite("AES key wrap without padding (RFC 3394)")
struct AESKeyWrapUnpaddedTests {
    static let kek128 = "000102030405060708090A0B0C0D0E0F"
    static let kek192 = "000102030405060708090A0B0C0D0E0F1011121314151617"
    static let kek256 = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
    static let kd128 = "00112233445566778899AABBCCDDEEFF"
    static let kd192 = "00112233445566778899AABBCCDDEEFF0001020304050607"
    static let kd256 = "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"

    // RFC 3394 §4.1-§4.6.
    static let rfc3394Vectors = [
        KeyWrapVector(name: "RFC 3394 §4.1 128-bit key data, 128-bit KEK", kek: kek128, plaintext: kd128,
                      wrapped: "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"),
        KeyWrapVector(name: "RFC 3394 §4.2 128-bit key data, 192-bit KEK", kek: kek192, plaintext: kd128,
                      wrapped: "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"),
        KeyWrapVector(name: "RFC 3394 §4.3 128-bit key data, 256-bit KEK", kek: kek256, plaintext: kd128,
                      wrapped: "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"),
        KeyWrapVector(name: "RFC 3394 §4.4 192-bit key data, 192-bit KEK", kek: kek192, plaintext: kd192,
                      wrapped: "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2"),
        KeyWrapVector(name: "RFC 3394 §4.5 192-bit key data, 256-bit KEK", kek: kek256, plaintext: kd192,
                      wrapped: "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"),
        KeyWrapVector(name: "RFC 3394 §4.6 256-bit key data, 256-bit KEK", kek: kek256, plaintext: kd256,
                      wrapped: "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"),
    ]

    @Test("wraps the RFC 3394 §4 vectors byte for byte", arguments: rfc3394Vectors)
    func wraps(_ v: KeyWrapVector) throws {
        #expect(try AESKeyWrap(kek: v.kekBytes).wrapUnpadded(v.plaintextBytes) == v.wrappedBytes)
    }

    @Test("unwraps the RFC 3394 §4 vectors to the key data", arguments: rfc3394Vectors)
    func unwraps(_ v: KeyWrapVector) throws {
        #expect(try AESKeyWrap(kek: v.kekBytes).unwrapUnpadded(v.wrappedBytes).unsafeCopiedBytes == v.plaintextBytes)
    }

    @Test("a tampered RFC 3394 ciphertext fails the default-IV check with .unwrapFailed", arguments: rfc3394Vectors)
    func tampered(_ v: KeyWrapVector) throws {
        var bad = v.wrappedBytes
        bad[bad.count / 2] ^= 0x80
        #expect(throws: EKTError.unwrapFailed) { try AESKeyWrap(kek: v.kekBytes).unwrapUnpadded(bad) }
    }

    @Test("plaintexts that are not a multiple of 8 or shorter than 16 bytes are rejected", arguments: [0, 8, 15, 17, 20])
    func invalidPlaintext(n: Int) throws {
        let kw = try AESKeyWrap(kek: SecretBytes(randomCount: 16))
        #expect(throws: EKTError.invalidPlaintextLength(n)) { try kw.wrapUnpadded([UInt8](repeating: 1, count: n)) }
    }
}

@Suite("EKT cipher code points and parameters (RFC 8870 §4.4, §5.2.1, §7.2)")
struct EKTCipherTests {
    @Test("the default numbering is the §5.2.1 wire enum: aeskw_128 = 1, aeskw_256 = 2")
    func defaultNumbering() {
        #expect(EKTCipherNumbering.default == .rfc8870Section5_2_1)
        #expect(EKTCipher.aeskw128.wireValue() == 1)
        #expect(EKTCipher.aeskw256.wireValue() == 2)
        #expect(EKTCipher(wireValue: 0) == nil)
    }

    @Test("the IANA registry numbering is AESKW128 = 0, AESKW256 = 1")
    func ianaNumbering() {
        #expect(EKTCipher.aeskw128.wireValue(.ianaRegistry) == 0)
        #expect(EKTCipher.aeskw256.wireValue(.ianaRegistry) == 1)
        #expect(EKTCipher(wireValue: 2, numbering: .ianaRegistry) == nil)
    }

    @Test("every wire value decodes back to its cipher under each numbering",
          arguments: EKTCipher.allCases, EKTCipherNumbering.allCases)
    func roundTrip(cipher: EKTCipher, numbering: EKTCipherNumbering) {
        #expect(EKTCipher(wireValue: cipher.wireValue(numbering), numbering: numbering) == cipher)
    }

    @Test("unassigned and reserved values decode to nil", arguments: [UInt8(3), 4, 0x80, 0xFE, 0xFF])
    func unassigned(v: UInt8) {
        for numbering in EKTCipherNumbering.allCases { #expect(EKTCipher(wireValue: v, numbering: numbering) == nil) }
    }

    @Test("key lengths are 16 and 32 bytes and T is 2^48")
    func parameters() {
        #expect(EKTCipher.aeskw128.keyLength == 16)
        #expect(EKTCipher.aeskw256.keyLength == 32)
        #expect(EKTCipher.aeskw128.usageLimit == 1 << 48)
        #expect(EKTCipher.aeskw256.usageLimit == 281_474_976_710_656)
    }

    @Test("an EKTKey of the other cipher's length is refused")
    func wrongKeyLength() {
        #expect(throws: EKTError.invalidKEKLength(expected: [16], got: 32)) {
            try EKTCipher.aeskw128.makeKeyWrap(ektKey: SecretBytes(randomCount: 32))
        }
        #expect(throws: EKTError.invalidKEKLength(expected: [32], got: 24)) {
            try EKTCipher.aeskw256.makeKeyWrap(ektKey: SecretBytes(randomCount: 24))
        }
    }
}
