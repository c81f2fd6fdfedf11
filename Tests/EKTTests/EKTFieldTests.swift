import Testing
import TestSupport
import SRTP
import EKT

/// Hex literals in this file are valid; a typo should fail loudly.

@Suite("Full and Short EKT fields (RFC 8870 §4.1)")
struct EKTFieldTests {
    // test-vectors.md §10: SELF-COMPUTED regression vector, not authoritative (RFC 8870 has
    // no EKT vectors). AESKW128 per RFC 5649 of the §4.1 EKTPlaintext; the ciphertext was
    // cross-checked with Python `cryptography`'s aes_key_wrap_with_padding.
    static let selfComputedEKTKey = "000102030405060708090a0b0c0d0e0f"
    static let selfComputedPlaintext = "10" + "101112131415161718191a1b1c1d1e1f" + "cafebabe" + "00000000"
    static let selfComputedCiphertext = "24285742fa9f9199c4e97eec5eae18ce7723d76ab4d19a896872021e0027d746f57a64b8d9df65b2"
    static let selfComputedFullField = selfComputedCiphertext + "0001" + "0000" + "002f" + "02"

    static func selfComputedPlaintextValue() throws -> EKTPlaintext {
        try EKTPlaintext(masterKey: SecretBytes(hex("101112131415161718191a1b1c1d1e1f")), ssrc: 0xCAFE_BABE, roc: 0)
    }

    @Test("builds the self-computed AESKW128 Full field of test-vectors.md §10 byte for byte")
    func selfComputedVectorBuild() throws {
        let plaintext = try Self.selfComputedPlaintextValue()
        #expect(plaintext.serialized() == hex(Self.selfComputedPlaintext))
        let wrap = try EKTCipher.aeskw128.makeKeyWrap(ektKey: SecretBytes(hex(Self.selfComputedEKTKey)))
        let field = try EKTField.makeFull(plaintext: plaintext, spi: 1, epoch: 0, wrap: wrap)
        #expect(field.ciphertext == hex(Self.selfComputedCiphertext))
        #expect(field.serialized() == hex(Self.selfComputedFullField))
        #expect(EKTField.full(field).serialized() == hex(Self.selfComputedFullField))
    }

    @Test("parses and decrypts the self-computed §10 Full field at the end of a packet")
    func selfComputedVectorParse() throws {
        let packet = [UInt8](repeating: 0xAB, count: 30) + hex(Self.selfComputedFullField)
        let (field, length) = try EKTField.parse(trailerOf: packet)
        #expect(length == 47)
        guard case let .full(full) = field else {
            Issue.record("expected a Full field, got \(field)")
            return
        }
        #expect(full.spi == 1 && full.epoch == 0)
        let wrap = try AESKeyWrap(kek: SecretBytes(hex(Self.selfComputedEKTKey)))
        #expect(try full.decrypt(with: wrap) == Self.selfComputedPlaintextValue())
    }

    @Test("a trailing 0x00 is a one-byte Short field")
    func shortField() throws {
        let r = try EKTField.parse(trailerOf: [0x80, 0x00, 0x12, 0x00])
        #expect(r.field == .short && r.length == 1)
        #expect(EKTField.short.serialized() == [0x00])
        #expect(EKTField.short.serializedSize == 1)
        #expect(try EKTField.parse(trailerOf: [0x00]).field == .short)
    }

    @Test("Full field round trip: Length = ciphertext + 7 and parse(serialize(f)) == f",
          arguments: [1, 8, 40, 56, 250, 251])
    func fullRoundTrip(ciphertextLength: Int) throws {
        var rng = SplitMix64(seed: UInt64(ciphertextLength))
        let field = try FullEKTField(ciphertext: rng.bytes(ciphertextLength), spi: 0xBEEF, epoch: 0x0102)
        let bytes = field.serialized()
        #expect(bytes.count == ciphertextLength + 7)
        #expect(field.serializedSize == bytes.count)
        #expect(Int(bytes[bytes.count - 3]) << 8 | Int(bytes[bytes.count - 2]) == ciphertextLength + 7)
        #expect(Array(bytes.suffix(7)) == [0xBE, 0xEF, 0x01, 0x02, UInt8((ciphertextLength + 7) >> 8),
                                            UInt8((ciphertextLength + 7) & 0xFF), 0x02])
        let prefix: [UInt8] = [0x80, 0x60, 0x00, 0x01]
        let (parsed, length) = try EKTField.parse(trailerOf: prefix + bytes)
        #expect(parsed == .full(field))
        #expect(length == bytes.count)
        var appended = prefix
        EKTField.full(field).write(to: &appended)
        #expect(appended == prefix + bytes)
    }

    @Test("size table of ekt.md §2: a 16-byte key gives a 47-byte field, a 32-byte key 63",
          arguments: [(EKTCipher.aeskw128, 16, 25, 40, 47), (.aeskw256, 32, 41, 56, 63),
                      (.aeskw128, 32, 41, 56, 63), (.aeskw256, 16, 25, 40, 47)])
    func sizeTable(cipher: EKTCipher, keyLength: Int, plaintextSize: Int, ciphertextSize: Int, fieldSize: Int) throws {
        let plaintext = try EKTPlaintext(masterKey: SecretBytes(randomCount: keyLength), ssrc: 1, roc: 2)
        #expect(plaintext.serializedSize == plaintextSize)
        let wrap = try cipher.makeKeyWrap(ektKey: SecretBytes(randomCount: cipher.keyLength))
        let field = try EKTField.makeFull(plaintext: plaintext, spi: 7, epoch: 3, wrap: wrap)
        #expect(field.ciphertext.count == ciphertextSize)
        #expect(field.serializedSize == fieldSize)
        let bytes = field.serialized()
        #expect(bytes.suffix(3) == [0x00, UInt8(fieldSize), 0x02])
        #expect(try field.decrypt(with: wrap) == plaintext)
    }

    @Test("a master key over 231 bytes would need a ciphertext over the ABNF's 251 bytes")
    func ciphertextLimit() throws {
        let wrap = try AESKeyWrap(kek: SecretBytes(randomCount: 16))
        let ok = try EKTPlaintext(masterKey: SecretBytes(randomCount: 231), ssrc: 1, roc: 0)
        #expect(try EKTField.makeFull(plaintext: ok, spi: 1, epoch: 0, wrap: wrap).serializedSize == 248 + 7)
        let tooBig = try EKTPlaintext(masterKey: SecretBytes(randomCount: 232), ssrc: 1, roc: 0)
        #expect(throws: EKTError.invalidLength(256 + 7)) {
            try EKTField.makeFull(plaintext: tooBig, spi: 1, epoch: 0, wrap: wrap)
        }
    }

    @Test("ciphertexts outside 1...251 bytes cannot form a Full field", arguments: [0, 252, 300])
    func ciphertextRange(n: Int) {
        #expect(throws: EKTError.invalidLength(n + 7)) {
            try FullEKTField(ciphertext: [UInt8](repeating: 1, count: n), spi: 0, epoch: 0)
        }
    }

    // Malformed trailers, annotated byte by byte (the last byte is the message type).
    static let malformed: [(name: String, bytes: [UInt8], error: EKTError)] = [
        ("empty packet", [], .truncated(field: .messageType, needed: 1, available: 0)),
        ("type 0x02 alone: no Length", [0x02], .truncated(field: .length, needed: 3, available: 1)),
        ("one byte of Length", [0x00, 0x02], .truncated(field: .length, needed: 3, available: 2)),
        ("Length 0", [0x00, 0x00, 0x02], .invalidLength(0)),
        ("Length 7: empty ciphertext", [0xAA, 0xAA, 0xAA, 0xAA, 0x00, 0x07, 0x02], .invalidLength(7)),
        ("Length 259: ciphertext of 252", [0x01, 0x03, 0x02], .invalidLength(259)),
        ("Length 0xFFFF", [0xFF, 0xFF, 0x02], .invalidLength(0xFFFF)),
        ("Length 47, only 20 bytes", [UInt8](repeating: 0, count: 17) + [0x00, 0x2F, 0x02],
         .truncated(field: .fullField, needed: 47, available: 20)),
        ("Length 9, 8 bytes", [0x11, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09, 0x02],
         .truncated(field: .fullField, needed: 9, available: 8)),
        ("type 0x01 (legacy, never assigned)", [0x00, 0x2F, 0x01], .unknownMessageType(0x01)),
        ("type 0x03 (extension range)", [0x00, 0x08, 0x03], .unknownMessageType(0x03)),
        ("type 0xFF (reserved)", [0xFF], .unknownMessageType(0xFF)),
    ]

    @Test("malformed trailers give the matching typed error", arguments: malformed.indices)
    func malformedTrailers(i: Int) {
        let c = Self.malformed[i]
        #expect(throws: c.error, "\(c.name)") { try EKTField.parse(trailerOf: c.bytes) }
    }

    @Test("the smallest Full field (1-byte ciphertext, Length 8) parses")
    func smallest() throws {
        let (field, length) = try EKTField.parse(trailerOf: [0x99, 0x00, 0x01, 0x00, 0x02, 0x00, 0x08, 0x02])
        #expect(length == 8)
        #expect(field == .full(try FullEKTField(ciphertext: [0x99], spi: 1, epoch: 2)))
    }

    @Test("decrypting under the wrong EKTKey fails with .unwrapFailed")
    func wrongKey() throws {
        let field = try FullEKTField(ciphertext: hex(Self.selfComputedCiphertext), spi: 1, epoch: 0)
        let wrong = try AESKeyWrap(kek: SecretBytes(hex("000102030405060708090a0b0c0d0e0e")))
        #expect(throws: EKTError.unwrapFailed) { try field.decrypt(with: wrong) }
    }

    @Test("errors describe what was wrong")
    func errorText() {
        #expect(EKTError.truncated(field: .fullField, needed: 47, available: 20).description
                == "truncated in FullEKTField: needed 47 bytes, 20 available")
        #expect(EKTError.unknownMessageType(0x03).description == "unknown EKT message type 0x3")
        #expect(EKTError.invalidLength(7).description.contains("7"))
    }
}

@Suite("EKTPlaintext (RFC 8870 §4.1)")
struct EKTPlaintextTests {
    @Test("serializes as key length, key, SSRC, ROC in network order")
    func layout() throws {
        let p = try EKTPlaintext(masterKey: SecretBytes([0xA1, 0xA2, 0xA3]), ssrc: 0x0102_0304, roc: 0x0A0B_0C0D)
        #expect(p.serialized() == [0x03, 0xA1, 0xA2, 0xA3, 0x01, 0x02, 0x03, 0x04, 0x0A, 0x0B, 0x0C, 0x0D])
        #expect(p.serializedSize == 12)
        #expect(try EKTPlaintext(parsing: p.serialized()) == p)
    }

    @Test("round trips every allowed key length", arguments: [1, 16, 32, 241, 242])
    func roundTrip(keyLength: Int) throws {
        let p = try EKTPlaintext(masterKey: SecretBytes(randomCount: keyLength), ssrc: 0xFFFF_FFFF, roc: 0x8000_0000)
        let parsed = try EKTPlaintext(parsing: p.serialized())
        #expect(parsed == p)
        #expect(parsed.masterKey.count == keyLength)
        #expect(try EKTPlaintext(parsing: SecretBytes(p.serialized())) == p)
    }

    static let malformed: [(name: String, bytes: [UInt8], error: EKTError)] = [
        ("empty", [], .truncated(field: .masterKeyLength, needed: 1, available: 0)),
        ("key length 0", [0x00, 1, 2, 3, 4, 5, 6, 7, 8], .invalidMasterKeyLength(0)),
        ("key length 243", [0xF3] + [UInt8](repeating: 0, count: 251), .invalidMasterKeyLength(243)),
        ("key length 255", [0xFF], .invalidMasterKeyLength(255)),
        ("key cut short", [0x04, 0xAA, 0xBB], .truncated(field: .masterKey, needed: 13, available: 3)),
        ("SSRC cut short", [0x01, 0xAA, 0x00, 0x00], .truncated(field: .ssrc, needed: 10, available: 4)),
        ("ROC cut short", [0x01, 0xAA, 0, 0, 0, 1, 0, 0, 0], .truncated(field: .roc, needed: 10, available: 9)),
        ("one byte too many", [0x01, 0xAA, 0, 0, 0, 1, 0, 0, 0, 2, 0xEE], .trailingBytes(after: .roc, count: 1)),
        ("length byte says 1, 16 bytes follow (a key length mismatch)",
         [0x01] + [UInt8](repeating: 0x55, count: 24), .trailingBytes(after: .roc, count: 15)),
    ]

    @Test("malformed plaintexts give the matching typed error", arguments: malformed.indices)
    func malformedPlaintexts(i: Int) {
        let c = Self.malformed[i]
        #expect(throws: c.error, "\(c.name)") { try EKTPlaintext(parsing: c.bytes) }
    }

    @Test("keys of 0 or over 242 bytes are refused at construction", arguments: [0, 243])
    func constructionRange(n: Int) {
        #expect(throws: EKTError.invalidMasterKeyLength(n)) {
            try EKTPlaintext(masterKey: SecretBytes([UInt8](repeating: 1, count: n)), ssrc: 0, roc: 0)
        }
    }

    @Test("prints the master key as redacted")
    func redacted() throws {
        let p = try EKTPlaintext(masterKey: SecretBytes([UInt8](repeating: 0xAB, count: 16)), ssrc: 0xCAFE_BABE, roc: 3)
        #expect(!p.description.lowercased().contains("abab"))
        #expect(!String(describing: p).lowercased().contains("abab"))
        #expect(p.description.contains("redacted"))
        #expect(p.description.contains("0xcafebabe"))
    }
}

@Suite("EKT field and plaintext parsers never trap on hostile input")
struct EKTFieldRobustnessTests {
    /// A valid packet tail: some SRTP bytes and a real AESKW128 Full field.
    static func validPacket() -> [UInt8] {
        [0x80, 0x60, 0x12, 0x34, 0xDE, 0xAD] + hex(EKTFieldTests.selfComputedFullField)
    }

    enum Outcome { case rejected, parsed, decrypted }

    /// Parse; on success the field must re-serialize to exactly the bytes it claimed, and a
    /// Full field must decrypt to a plaintext or fail with a typed error.
    @discardableResult
    static func check(_ bytes: [UInt8], wrap: AESKeyWrap) -> Outcome {
        let result: (field: EKTField, length: Int)
        do {
            result = try EKTField.parse(trailerOf: bytes)
        } catch {
            _ = error.description   // any EKTError is fine; typed throws guarantee it is one
            return .rejected
        }
        #expect(result.length >= 1 && result.length <= bytes.count)
        #expect(result.field.serialized() == Array(bytes.suffix(result.length)))
        guard case let .full(full) = result.field else { return .parsed }
        do {
            let plaintext = try full.decrypt(with: wrap)
            #expect(EKTPlaintext.masterKeyLengthRange.contains(plaintext.masterKey.count))
            return .decrypted
        } catch {
            _ = error.description
            return .parsed
        }
    }

    @Test("every prefix and suffix of a valid packet tail gives a typed error or a valid parse")
    func truncationsOfFullField() throws {
        let wrap = try AESKeyWrap(kek: SecretBytes(hex(EKTFieldTests.selfComputedEKTKey)))
        let packet = Self.validPacket()
        for t in truncations(of: packet) { Self.check(t, wrap: wrap) }
        for t in truncations(of: hex(EKTFieldTests.selfComputedPlaintext)) {
            do { _ = try EKTPlaintext(parsing: t) } catch { _ = error.description }
        }
    }

    @Test("3000 seeded random mutations of a Full field give a typed error or a valid parse")
    func mutationsOfFullField() throws {
        let wrap = try AESKeyWrap(kek: SecretBytes(hex(EKTFieldTests.selfComputedEKTKey)))
        let packet = Self.validPacket()
        var rng = SplitMix64(seed: 0xF011_E47F)
        var outcomes: [Outcome: Int] = [:]
        for _ in 0 ..< 3000 {
            outcomes[Self.check(Mutator.mutate(packet, using: &rng), wrap: wrap), default: 0] += 1
        }
        // The mix must reach all three paths, or the mutator is not exercising the parser.
        #expect(outcomes[.rejected, default: 0] > 0)
        #expect(outcomes[.parsed, default: 0] > 0)
        #expect(outcomes[.decrypted, default: 0] > 0)
    }

    @Test("3000 seeded random mutations of an EKTPlaintext give a typed error or a parse that re-serializes exactly")
    func mutationsOfPlaintext() throws {
        let original = hex(EKTFieldTests.selfComputedPlaintext)
        var rng = SplitMix64(seed: 0x9A1E_7E47)
        var accepted = 0
        for _ in 0 ..< 3000 {
            let bytes = Mutator.mutate(original, using: &rng)
            do {
                let p = try EKTPlaintext(parsing: bytes)
                #expect(p.serialized() == bytes)
                accepted += 1
            } catch {
                _ = error.description
            }
        }
        // Byte flips inside the key, SSRC or ROC keep the structure valid, so some must pass.
        #expect(accepted > 0)
    }
}
