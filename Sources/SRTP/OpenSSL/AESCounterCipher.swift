internal import COpenSSL

/// AES in counter mode (RFC 3711 §4.1.1) over one EVP context with the key set once.
/// Encryption and decryption are the same operation.
final class AESCounterCipher {
    private let ctx: OpaquePointer

    init(key: UnsafeRawBufferPointer) throws(SRTPError) {
        let cipher: OpaquePointer?
        switch key.count {
        case 16: cipher = EVP_aes_128_ctr()
        case 32: cipher = EVP_aes_256_ctr()
        default: throw .invalidKeyLength(what: "AES-CM key", expected: 16, got: key.count)
        }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw .cryptoLibrary(openSSLErrorText("EVP_CIPHER_CTX_new")) }
        self.ctx = ctx
        guard EVP_CipherInit_ex(ctx, cipher, nil, key.baseAddress?.assumingMemoryBound(to: UInt8.self), nil, 1) == 1
        else { throw .cryptoLibrary(openSSLErrorText("AES-CTR key setup")) }
    }

    deinit { EVP_CIPHER_CTX_free(ctx) }

    /// XORs the keystream that starts at the 16-byte counter block `iv` onto `text`.
    func apply(iv: UnsafeRawPointer, text: UnsafeMutableRawBufferPointer) -> Bool {
        guard text.count > 0 else { return true }
        var outl: Int32 = 0
        guard EVP_CipherInit_ex(ctx, nil, nil, nil, iv.assumingMemoryBound(to: UInt8.self), -1) == 1 else { return false }
        let p = text.baseAddress!.assumingMemoryBound(to: UInt8.self)
        return EVP_CipherUpdate(ctx, p, &outl, p, Int32(text.count)) == 1
    }
}

/// AES-ECB on single blocks, for the RFC 3711 §4.3.3 key-derivation PRF.
final class AESBlockCipher {
    private let ctx: OpaquePointer

    init(key: UnsafeRawBufferPointer) throws(SRTPError) {
        let cipher: OpaquePointer?
        switch key.count {
        case 16: cipher = EVP_aes_128_ecb()
        case 32: cipher = EVP_aes_256_ecb()
        default: throw .invalidKeyLength(what: "AES PRF key", expected: 16, got: key.count)
        }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw .cryptoLibrary(openSSLErrorText("EVP_CIPHER_CTX_new")) }
        self.ctx = ctx
        guard EVP_CipherInit_ex(ctx, cipher, nil, key.baseAddress?.assumingMemoryBound(to: UInt8.self), nil, 1) == 1,
              EVP_CIPHER_CTX_set_padding(ctx, 0) == 1
        else { throw .cryptoLibrary(openSSLErrorText("AES-ECB key setup")) }
    }

    deinit { EVP_CIPHER_CTX_free(ctx) }

    /// Encrypts `input` (a multiple of 16 bytes) into `output`.
    func encrypt(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        var outl: Int32 = 0
        return EVP_CipherUpdate(ctx, output.baseAddress!.assumingMemoryBound(to: UInt8.self), &outl,
                                input.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(input.count)) == 1
    }
}
