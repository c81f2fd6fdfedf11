import Testing
import TestSupport
@testable import SRTP

@Suite("SRTP key derivation (RFC 3711 §4.3)")
struct KeyDerivationTests {
    static let b3Key = "E1F97A0D3E018BE0D64FA32C06DE4139", b3Salt = "0EC675AD498AFEEBB6960B3AABE6"

    /// RFC 3711 Appendix B.3, plus RFC 6904 Appendix A.1 (labels 6, 7) for the same master key.
    @Test("derives the RFC 3711 B.3 and RFC 6904 A.1 session keys", arguments: [
        (SRTPKeyDerivation.Label.srtpEncryption, "C61E7A93744F39EE10734AFE3FF7A087"),
        (.srtpSalt, "30CBBC08863D8C85D49DB34A9AE1"),
        (.srtpAuthentication, "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCEE049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC256D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2"),
        (.headerEncryption, "549752054D6FB708622C4A2E596A1B93"),
        (.headerSalt, "AB01818174C40D39A3781F7C2D27"),
    ])
    func rfc3711B3(label: SRTPKeyDerivation.Label, expected: String) throws {
        let out = try SRTPKeyDerivation.derive(masterKey: secret(Self.b3Key), masterSalt: secret(Self.b3Salt),
                                               label: label, length: hex(expected).count)
        #expect(out.unsafeCopiedBytes == hex(expected))
    }

    /// Self-computed SRTCP labels for the B.3 master key (test-vectors.md §2.3; not from an RFC).
    @Test("derives the SRTCP labels 3–5 (self-computed regression values)", arguments: [
        (SRTPKeyDerivation.Label.srtcpEncryption, "4c1aa45a81f73d61c800bbb00fbb1eaa"),
        (.srtcpAuthentication, "8d54534feb49ae8e7993a6bd0b844fc323a93dfd"),
        (.srtcpSalt, "9581c7ad87b3e530bf3e4454a8b3"),
    ])
    func srtcpLabels(label: SRTPKeyDerivation.Label, expected: String) throws {
        let out = try SRTPKeyDerivation.derive(masterKey: secret(Self.b3Key), masterSalt: secret(Self.b3Salt),
                                               label: label, length: hex(expected).count)
        #expect(out.unsafeCopiedBytes == hex(expected))
    }

    /// RFC 6188 §7.2: AES_256_CM_PRF.
    @Test("derives the RFC 6188 §7.2 AES-256 PRF keys", arguments: [
        (SRTPKeyDerivation.Label.srtpEncryption, "5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4"),
        (.srtpSalt, "fa31791685ca444a9e07c6c64e93"),
        (.srtpAuthentication, "fd9c32d39ed5fbb5a9dc96b30818454d1313dc05"),
    ])
    func rfc6188(label: SRTPKeyDerivation.Label, expected: String) throws {
        let out = try SRTPKeyDerivation.derive(
            masterKey: secret("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6"),
            masterSalt: secret("3b04803de51ee7c96423ab5b78d2"), label: label, length: hex(expected).count)
        #expect(out.unsafeCopiedBytes == hex(expected))
    }

    /// A 96-bit GCM master salt is right-padded with zeros (libsrtp convention, test-vectors.md §7).
    @Test("pads a 96-bit GCM salt on the right, as libsrtp's GCM vectors require", arguments: [
        (SRTPKeyDerivation.Label.srtpEncryption, "077c6143cb221bc355ff23d5f984a16e"),
        (.srtpSalt, "9af3e95364ebac9c99c5a7c4"),
        (.srtcpEncryption, "615dcd9042600666f6fd4d9e4fe4519f"),
        (.srtcpSalt, "fcca937b9112a500dac72269"),
    ])
    func gcmSaltPadding(label: SRTPKeyDerivation.Label, expected: String) throws {
        let out = try SRTPKeyDerivation.derive(masterKey: secret("000102030405060708090a0b0c0d0e0f"),
                                               masterSalt: secret("a0a1a2a3a4a5a6a7a8a9aaab"), label: label, length: hex(expected).count)
        #expect(out.unsafeCopiedBytes == hex(expected))
    }

    @Test("rejects a master salt of the wrong length")
    func badSalt() {
        #expect(throws: SRTPError.invalidKeyLength(what: "master salt", expected: 14, got: 5)) {
            try SRTPKeyDerivation.derive(masterKey: secret("000102030405060708090a0b0c0d0e0f"), masterSalt: secret("0102030405"),
                                         label: .srtpEncryption, length: 16)
        }
    }
}

@Suite("AES counter-mode keystream (RFC 3711 B.2, RFC 6188 §7.1)")
struct KeystreamTests {
    static func keystream(key: String, blocks: Int) throws -> [UInt8] {
        let ctr = try secret(key).withUnsafeBytes { (k) throws(SRTPError) in try AESCounterCipher(key: k) }
        var iv = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")
        var out = [UInt8](repeating: 0, count: blocks * 16)
        let ok = iv.withUnsafeMutableBytes { ivp in out.withUnsafeMutableBytes { ctr.apply(iv: ivp.baseAddress!, text: $0) } }
        #expect(ok)
        return out
    }

    @Test("produces the RFC 3711 B.2 AES-128 keystream over the full 65282-block segment")
    func rfc3711B2() throws {
        let ks = try Self.keystream(key: "2B7E151628AED2A6ABF7158809CF4F3C", blocks: 65282)
        let expected: [(Int, String)] = [(0, "E03EAD0935C95E80E166B16DD92B4EB4"), (1, "D23513162B02D0F72A43A2FE4A5F97AB"),
                                         (2, "41E95B3BB0A2E8DD477901E4FCA894C0"), (0xFEFF, "EC8CDF7398607CB0F2D21675EA9EA1E4"),
                                         (0xFF00, "362B7C3C6773516318A077D7FC5073AE"), (0xFF01, "6A2CC3787889374FBEB4C81B17BA6C44")]
        for (block, value) in expected { #expect(Array(ks[block * 16..<block * 16 + 16]) == hex(value), "block \(block)") }
    }

    @Test("produces the RFC 6188 §7.1 AES-256 keystream")
    func rfc6188() throws {
        let ks = try Self.keystream(key: "57f82fe3613fd170a85ec93c40b1f0922ec4cb0dc025b58272147cc438944a98", blocks: 65282)
        let expected: [(Int, String)] = [(0, "92bdd28a93c3f52511c677d08b5515a4"), (1, "9da71b2378a854f67050756ded165bac"),
                                         (2, "63c4868b7096d88421b563b8c94c9a31"), (0xFEFF, "cea518c90fd91ced9cbb18c078a54711"),
                                         (0xFF00, "3dbc4814f4da5f00a08772b63c6a046d"), (0xFF01, "6eb246913062a16891433e97dd01a57f")]
        for (block, value) in expected { #expect(Array(ks[block * 16..<block * 16 + 16]) == hex(value), "block \(block)") }
    }
}
