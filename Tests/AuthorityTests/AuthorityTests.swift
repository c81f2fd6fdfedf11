import Authority
import EKT
import Foundation
import SRTP
import Testing
import TestSupport

@Suite("Archive authority keys and HPKE epoch-key sealing")
struct AuthorityTests {
    static func epochKey(spi: UInt16 = 7, byte: UInt8 = 0x42) throws -> EKTKeyMessage {
        try EKTKeyMessage(ektKeyValue: SecretBytes([UInt8](repeating: byte, count: 16)),
                          srtpMasterSalt: SecretBytes((0 ..< 12).map { UInt8($0) &+ byte }), spi: spi, ttl: 3600)
    }

    @Test("init writes a 0600 PKCS#8 private key and an SPKI public key that read back, and never overwrites")
    func keyFiles() throws {
        let dir = makeTemporaryDirectory("authority")
        let key = AuthorityPrivateKey()
        let (priv, pub) = try key.write(to: dir)
        let mode = try #require(FileManager.default.attributesOfItem(atPath: priv)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        #expect(try AuthorityPrivateKey(contentsOf: priv).publicKey == key.publicKey)
        #expect(try AuthorityPublicKey(contentsOf: pub) == key.publicKey)
        #expect(throws: AuthorityError.fileExists(path: priv)) { try AuthorityPrivateKey().write(to: dir) }
        #expect(throws: AuthorityError.notPEM(path: pub, expected: "PRIVATE KEY")) { try AuthorityPrivateKey(contentsOf: pub) }
    }

    @Test("openssl reads both files as X25519 and derives the same public key")
    func opensslAgrees() async throws {
        let dir = makeTemporaryDirectory("authority-openssl")
        let key = AuthorityPrivateKey()
        let (priv, pub) = try key.write(to: dir)
        let derived = try await runTool("openssl", ["pkey", "-in", priv, "-pubout"])
        #expect(derived.status == 0, "\(derived.stderr)")
        #expect(try AuthorityPublicKey(pemRepresentation: derived.stdout) == key.publicKey)
        let text = try await runTool("openssl", ["pkey", "-pubin", "-in", pub, "-text", "-noout"])
        #expect(text.status == 0 && text.stdout.contains("X25519"), "\(text.stdout)\(text.stderr)")
    }

    @Test("a sealed EKTKey opens with the authority key and gives back key, salt, SPI and TTL")
    func roundTrip() throws {
        let authority = AuthorityPrivateKey()
        let message = try Self.epochKey()
        let sealed = try SealedEpochKey.seal(message, cipher: .aeskw128, conference: "c1", to: authority.publicKey)
        #expect(sealed.encapsulatedKey.count == 32)
        #expect(sealed.ciphertext.count == 1 + message.serializedSize + 16)
        let opened = try sealed.open(with: authority)
        #expect(opened == message)
        // Fresh randomness each time: two seals of one key differ.
        let again = try SealedEpochKey.seal(message, cipher: .aeskw128, conference: "c1", to: authority.publicKey)
        #expect(again.encapsulatedKey != sealed.encapsulatedKey && again.ciphertext != sealed.ciphertext)
    }

    @Test("the wrong authority key, a flipped byte, or a moved record (other conference or SPI) fails to open")
    func refusals() throws {
        let authority = AuthorityPrivateKey()
        let sealed = try SealedEpochKey.seal(try Self.epochKey(), cipher: .aeskw128, conference: "c1", to: authority.publicKey)
        let wrongKey = #expect(throws: AuthorityError.self) { try sealed.open(with: AuthorityPrivateKey()) }
        #expect(wrongKey?.description.contains("sealed to authority key \(authority.publicKey.keyID)") == true)
        for i in [0, sealed.ciphertext.count / 2, sealed.ciphertext.count - 1] {
            var t = sealed
            t.ciphertext[i] ^= 0x01
            #expect(throws: AuthorityError.self) { try t.open(with: authority) }
        }
        var e = sealed
        e.encapsulatedKey[3] ^= 0x80
        #expect(throws: AuthorityError.self) { try e.open(with: authority) }
        var moved = sealed
        moved.conference = "c2"
        #expect(throws: AuthorityError.self) { try moved.open(with: authority) }
        moved = sealed
        moved.spi = 8
        #expect(throws: AuthorityError.self) { try moved.open(with: authority) }
    }

    @Test("an independent RFC 9180 implementation (Python pyhpke) opens what we seal")
    func pyhpkeOpens() async throws {
        let authority = AuthorityPrivateKey()
        let message = try Self.epochKey(spi: 513, byte: 0x17)
        let sealed = try SealedEpochKey.seal(message, cipher: .aeskw128, conference: "conf-é", to: authority.publicKey)
        let aad = SealedEpochKey.associatedData(conference: "conf-é", spi: 513, cipher: .aeskw128)
        let script = """
        import sys
        from pyhpke import AEADId, CipherSuite, KDFId, KEMId
        sk, enc, ct, aad, info = (bytes.fromhex(a) for a in sys.argv[1:6])
        suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
        r = suite.create_recipient_context(enc, suite.kem.deserialize_private_key(sk), info=info)
        print(r.open(ct, aad=aad).hex())
        """
        let hexOf = { (b: [UInt8]) in b.map { String(format: "%02x", $0) }.joined() }
        let result = try await runTool("python3", ["-c", script, hexOf([UInt8](authority.key.rawRepresentation)),
                                             hexOf(sealed.encapsulatedKey), hexOf(sealed.ciphertext), hexOf(aad),
                                             hexOf(SealedEpochKey.info)])
        #expect(result.status == 0, "pyhpke failed (install: python3 -m pip install pyhpke): \(result.stderr)")
        let plaintext = [UInt8](hexString: result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(plaintext == [EKTCipher.aeskw128.wireValue()] + message.serialized())
    }

    @Test("the key id is stable per EKTKey, differs between keys, and does not contain the key")
    func keyID() throws {
        let a = try Self.epochKey(byte: 1), b = try Self.epochKey(byte: 2)
        #expect(SealedEpochKey.keyID(of: a) == SealedEpochKey.keyID(of: try Self.epochKey(byte: 1)))
        #expect(SealedEpochKey.keyID(of: a) != SealedEpochKey.keyID(of: b))
        #expect(SealedEpochKey.keyID(of: a).count == 16)
    }
}
