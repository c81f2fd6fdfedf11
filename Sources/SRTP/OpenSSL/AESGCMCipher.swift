internal import COpenSSL

/// AES-GCM with a 12-byte IV and 16-byte tag over one EVP context, for one key and one direction.
///
/// The key schedule is set once; each packet only re-initialises the IV (the cheap path measured
/// in the project notes). Opening decrypts into a private scratch buffer and copies back only
/// after the tag verified, so a packet that fails authentication is left exactly as it was.
/// Not thread-safe: one owner at a time.
package final class AESGCMCipher {
    package static let tagLength = 16
    private let ctx: OpaquePointer
    private let sealing: Bool
    private var scratch: UnsafeMutableRawBufferPointer

    package init(key: UnsafeRawBufferPointer, sealing: Bool) throws(SRTPError) {
        let cipher: OpaquePointer?
        switch key.count {
        case 16: cipher = EVP_aes_128_gcm()
        case 32: cipher = EVP_aes_256_gcm()
        default: throw .invalidKeyLength(what: "AES-GCM key", expected: 16, got: key.count)
        }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw .cryptoLibrary(openSSLErrorText("EVP_CIPHER_CTX_new")) }
        self.ctx = ctx
        self.sealing = sealing
        scratch = .allocate(byteCount: 2048, alignment: 16)
        guard EVP_CipherInit_ex(ctx, cipher, nil, nil, nil, sealing ? 1 : 0) == 1,
              percrec_gcm_set_ivlen(ctx, 12) == 1,
              EVP_CipherInit_ex(ctx, nil, nil, key.baseAddress?.assumingMemoryBound(to: UInt8.self), nil, -1) == 1
        else { throw .cryptoLibrary(openSSLErrorText("AES-GCM key setup")) }
    }

    deinit {
        EVP_CIPHER_CTX_free(ctx)   // cleanses the key schedule
        OPENSSL_cleanse(scratch.baseAddress, scratch.count)
        scratch.deallocate()
    }

    /// Encrypts `text` in place and writes the 16-byte tag to `tag`.
    /// `aad2` follows `aad1` in the authenticated data (SRTCP's ESRTCP word is not contiguous).
    package func seal(iv: UnsafeRawPointer, aad1: UnsafeRawBufferPointer, aad2: UnsafeRawBufferPointer = .init(start: nil, count: 0),
              text: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer) -> Bool {
        precondition(sealing, "seal on an opening context")
        var outl: Int32 = 0
        guard EVP_CipherInit_ex(ctx, nil, nil, nil, iv.assumingMemoryBound(to: UInt8.self), -1) == 1 else { return false }
        if aad1.count > 0 {
            guard EVP_CipherUpdate(ctx, nil, &outl, aad1.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(aad1.count)) == 1 else { return false }
        }
        if aad2.count > 0 {
            guard EVP_CipherUpdate(ctx, nil, &outl, aad2.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(aad2.count)) == 1 else { return false }
        }
        if text.count > 0 {
            let p = text.baseAddress!.assumingMemoryBound(to: UInt8.self)
            guard EVP_CipherUpdate(ctx, p, &outl, p, Int32(text.count)) == 1 else { return false }
        }
        var final: (UInt64, UInt64) = (0, 0)
        let ok = withUnsafeMutableBytes(of: &final) { f in
            EVP_CipherFinal_ex(ctx, f.baseAddress!.assumingMemoryBound(to: UInt8.self), &outl) == 1
        }
        guard ok else { return false }
        return percrec_gcm_get_tag(ctx, tag, Int32(Self.tagLength)) == 1
    }

    /// Verifies `tag` over the AAD and `text` and, only if it verifies, replaces `text` with the plaintext.
    package func open(iv: UnsafeRawPointer, aad1: UnsafeRawBufferPointer, aad2: UnsafeRawBufferPointer = .init(start: nil, count: 0),
              text: UnsafeMutableRawBufferPointer, tag: UnsafeRawPointer) -> Bool {
        precondition(!sealing, "open on a sealing context")
        var outl: Int32 = 0
        if text.count > scratch.count {
            OPENSSL_cleanse(scratch.baseAddress, scratch.count)
            scratch.deallocate()
            scratch = .allocate(byteCount: text.count, alignment: 16)
        }
        guard EVP_CipherInit_ex(ctx, nil, nil, nil, iv.assumingMemoryBound(to: UInt8.self), -1) == 1 else { return false }
        if aad1.count > 0 {
            guard EVP_CipherUpdate(ctx, nil, &outl, aad1.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(aad1.count)) == 1 else { return false }
        }
        if aad2.count > 0 {
            guard EVP_CipherUpdate(ctx, nil, &outl, aad2.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(aad2.count)) == 1 else { return false }
        }
        let out = scratch.baseAddress!.assumingMemoryBound(to: UInt8.self)
        if text.count > 0 {
            guard EVP_CipherUpdate(ctx, out, &outl, text.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(text.count)) == 1 else { return false }
        }
        guard percrec_gcm_set_tag(ctx, tag, Int32(Self.tagLength)) == 1 else { return false }
        var final: (UInt64, UInt64) = (0, 0)
        let ok = withUnsafeMutableBytes(of: &final) { f in
            EVP_CipherFinal_ex(ctx, f.baseAddress!.assumingMemoryBound(to: UInt8.self), &outl) > 0
        }
        guard ok else { return false }
        if text.count > 0 { text.baseAddress!.copyMemory(from: out, byteCount: text.count) }
        return true
    }
}
