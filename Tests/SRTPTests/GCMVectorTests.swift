import Testing
import TestSupport
@testable import SRTP

/// RFC 7714 §16–§17 examples. They give session keys (no KDF), so contexts are built from them directly.
@Suite("AEAD AES-GCM SRTP and SRTCP (RFC 7714 §16–17)")
struct GCMVectorTests {
    static let k128 = "000102030405060708090a0b0c0d0e0f"
    static let k256 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    static let salt = "517569642070726f2071756f"
    static let rtp = "8040f17b8041f8d35501a0b247616c6c69612065737420" + "6f6d6e697320646976697361" + "20696e2070617274657320747265" + "73"
    static let rtcp = "81c8000d4d6172734e5450314e54503252545020" + "0000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"

    static func context(_ key: String, _ direction: SRTPDirection) throws -> SRTPCryptoContext {
        let profile: SRTPProfile = key.count == 32 ? .aeadAes128Gcm : .aeadAes256Gcm
        let keys = SRTPCryptoContext.SessionKeys(encryption: secret(key), salt: secret(salt), authentication: nil)
        return try SRTPCryptoContext(profile: profile, direction: direction, rtp: keys, rtcp: keys)
    }

    @Test("§16.1.1/§16.2.1: protects the example packet to the printed SRTP packet", arguments: [
        (k128, "8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce"),
        (k256, "8040f17b8041f8d35501a0b232b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b7aa3db36dfffd6b0f9bb7878d7a76c13"),
    ])
    func protectRTP(key: String, expected: String) throws {
        let ctx = try Self.context(key, .outbound)
        var p = hex(Self.rtp) + [UInt8](repeating: 0, count: 16)
        let length = p.count - 16
        let n = try p.withSRTPBytes { (b) throws(SRTPError) in try ctx.protectRTP(b, length: length, stream: SRTPStream(ssrc: 0x5501a0b2)) }
        #expect(n == p.count)
        #expect(p == hex(expected))
    }

    @Test("§16.1.2/§16.2.2: unprotects the printed SRTP packet to the example packet", arguments: [
        (k128, "8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce"),
        (k256, "8040f17b8041f8d35501a0b232b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b7aa3db36dfffd6b0f9bb7878d7a76c13"),
    ])
    func unprotectRTP(key: String, srtp: String) throws {
        let ctx = try Self.context(key, .inbound)
        var p = hex(srtp)
        let n = try p.withSRTPBytes { (b) throws(SRTPError) in try ctx.unprotectRTP(b, stream: SRTPStream(ssrc: 0x5501a0b2)) }
        #expect(Array(p[0..<n]) == hex(Self.rtp))
    }

    /// §16.1.3 / §16.2.3: the GCM primitive with the whole packet as AAD and no plaintext.
    @Test("§16.1.3/§16.2.3: tag over AAD only matches", arguments: [
        (k128, "22493f82d2bce397e9d79e3b19aa4216"), (k256, "a866d5910f887463067ceefec45215d4"),
    ])
    func aadOnly(key: String, tag: String) throws {
        let gcm = try secret(key).withUnsafeBytes { (k) throws(SRTPError) in try AESGCMCipher(key: k, sealing: true) }
        var iv = hex("51753c6580c2726f20718414"), aad = hex(Self.rtp), out = [UInt8](repeating: 0, count: 16)
        var empty: [UInt8] = []
        let ok = iv.withUnsafeBytes { ivp in aad.withUnsafeBytes { a in empty.withUnsafeMutableBytes { e in out.withUnsafeMutableBytes { t in
            gcm.seal(iv: ivp.baseAddress!, aad1: a, text: e, tag: t.baseAddress!) } } } }
        #expect(ok)
        #expect(out == hex(tag))
    }

    @Test("§17.1–§17.4: SRTCP with E=1 and E=0, both key sizes", arguments: [
        (k128, true, "81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4"),
        (k256, true, "81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be800005d4"),
        (k128, false, rtcp + "841dd9683dd78ec92ae58790125f62b3000005d4"),
        (k256, false, rtcp + "91db4afbfeee5a978fab4393ed2615fe000005d4"),
    ])
    func srtcp(key: String, encrypt: Bool, expected: String) throws {
        let sender = try Self.context(key, .outbound)
        let stream = SRTPStream(ssrc: 0x4d617273)
        stream.setNextSRTCPIndex(0x5d4)
        var p = hex(Self.rtcp) + [UInt8](repeating: 0, count: 20)
        let length = p.count - 20
        _ = try p.withSRTPBytes { (b) throws(SRTPError) in try sender.protectRTCP(b, length: length, stream: stream, encrypt: encrypt) }
        #expect(p == hex(expected))

        let receiver = try Self.context(key, .inbound)
        var q = hex(expected)
        let n = try q.withSRTPBytes { (b) throws(SRTPError) in try receiver.unprotectRTCP(b, stream: SRTPStream(ssrc: 0x4d617273)) }
        #expect(Array(q[0..<n]) == hex(Self.rtcp))
    }

    /// libsrtp's `srtp_validate_gcm` known-answer packets (test-vectors.md §7): master key → KDF → packet.
    @Test("reproduces libsrtp's AES-GCM known-answer SRTP and SRTCP packets from the master key")
    func libsrtpKAT() throws {
        let key = secret("000102030405060708090a0b0c0d0e0f"), salt = secret("a0a1a2a3a4a5a6a7a8a9aaab")
        let tx = try SRTPSession(profile: .aeadAes128Gcm, masterKey: key, masterSalt: salt, direction: .outbound)
        var rtp = hex("800f1234decafbadcafebabeabababababababababababababababab")
        try tx.protect(&rtp)
        #expect(rtp == hex("800f1234decafbadcafebabec5002ede04cfdd2eb91159e0880aa06ed2976826f796b201df3131a127e8a392"))

        try tx.outboundStream(for: 0xcafebabe).setNextSRTCPIndex(1)
        var rtcp = hex("81c8000bcafebabeabababababababababababababababab")
        try tx.protectRTCP(&rtcp)
        #expect(rtcp == hex("81c8000bcafebabec98b8b5df0392a55852b6c21ac8e7025c52c6fbea2b3b446ea31123ba88ce61e80000001"))

        let rx = try SRTPSession(profile: .aeadAes128Gcm, masterKey: key, masterSalt: salt, direction: .inbound)
        try rx.unprotect(&rtp)
        #expect(rtp == hex("800f1234decafbadcafebabeabababababababababababababababab"))
        try rx.unprotectRTCP(&rtcp)
        #expect(rtcp == hex("81c8000bcafebabeabababababababababababababababab"))
    }
}
