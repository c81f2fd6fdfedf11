/// The SRTP key-derivation function (RFC 3711 §4.3) with a key-derivation rate of 0, as DTLS-SRTP
/// requires (RFC 5764 §4.1.2), so `r` is always 0.
///
/// The PRF is AES-CM keyed with the master key (AES_256_CM_PRF, RFC 6188 §3, for 256-bit keys).
/// Counter block: bytes 0–13 hold the master salt, byte 7 is XORed with the label, bytes 14–15
/// count blocks. A 96-bit (GCM) master salt is zero-padded on the right to 14 bytes — RFC 7714 does
/// not say how; this is libsrtp's convention, which its AES-GCM known-answer packets confirm.
public enum SRTPKeyDerivation {
    /// The labels of RFC 3711 §4.3.1 and RFC 6904.
    public enum Label: UInt8, Sendable {
        case srtpEncryption = 0x00, srtpAuthentication = 0x01, srtpSalt = 0x02
        case srtcpEncryption = 0x03, srtcpAuthentication = 0x04, srtcpSalt = 0x05
        case headerEncryption = 0x06, headerSalt = 0x07
    }

    /// Derives `length` bytes for `label` from a master key (16 or 32 bytes) and a master salt (12 or 14 bytes).
    public static func derive(masterKey: SecretBytes, masterSalt: SecretBytes, label: Label, length: Int) throws(SRTPError) -> SecretBytes {
        guard masterSalt.count == 12 || masterSalt.count == 14 else {
            throw .invalidKeyLength(what: "master salt", expected: 14, got: masterSalt.count)
        }
        let blocks = (length + 15) / 16
        var counterBlocks = [UInt8](repeating: 0, count: blocks * 16)
        var output = [UInt8](repeating: 0, count: blocks * 16)
        defer {
            // Zero the working copies: they held salt- and key-derived bytes.
            for i in counterBlocks.indices { counterBlocks[i] = 0 }
            for i in output.indices { output[i] = 0 }
        }
        masterSalt.withUnsafeBytes { salt in
            for b in 0..<blocks {
                for i in 0..<salt.count { counterBlocks[b * 16 + i] = salt[i] }
                counterBlocks[b * 16 + 7] ^= label.rawValue
                counterBlocks[b * 16 + 14] = UInt8(truncatingIfNeeded: b >> 8)
                counterBlocks[b * 16 + 15] = UInt8(truncatingIfNeeded: b)
            }
        }
        let prf = try masterKey.withUnsafeBytes { (key) throws(SRTPError) in try AESBlockCipher(key: key) }
        let ok = counterBlocks.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out in prf.encrypt(input, into: out) }
        }
        guard ok else { throw .cryptoLibrary(openSSLErrorText("SRTP KDF")) }
        return SecretBytes(output[0..<length])
    }
}
