internal import COpenSSL

/// HMAC-SHA1 (RFC 2104) over one EVP_MAC context whose key is set once; each message
/// re-initialises the context without a key, which keeps the key.
final class HMACSHA1 {
    static let digestLength = 20
    private let ctx: OpaquePointer

    init(key: UnsafeRawBufferPointer) throws(SRTPError) {
        guard let ctx = "SHA1".withCString({ name in
            percrec_hmac_new(name, key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count)
        }) else { throw .cryptoLibrary(openSSLErrorText("HMAC-SHA1 setup")) }
        self.ctx = ctx
    }

    deinit { EVP_MAC_CTX_free(ctx) }

    /// Computes HMAC(key, part1 || part2 || part3) into `out` (20 bytes).
    func mac(_ part1: UnsafeRawBufferPointer, _ part2: UnsafeRawBufferPointer, _ part3: UnsafeRawBufferPointer,
             into out: UnsafeMutableRawPointer) -> Bool {
        guard EVP_MAC_init(ctx, nil, 0, nil) == 1 else { return false }
        guard update(part1), update(part2), update(part3) else { return false }
        var outl = 0
        return EVP_MAC_final(ctx, out.assumingMemoryBound(to: UInt8.self), &outl, Self.digestLength) == 1
    }

    @inline(__always)
    private func update(_ part: UnsafeRawBufferPointer) -> Bool {
        part.count == 0 || EVP_MAC_update(ctx, part.baseAddress!.assumingMemoryBound(to: UInt8.self), part.count) == 1
    }

    /// Constant-time comparison of `n` bytes.
    static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count n: Int) -> Bool {
        CRYPTO_memcmp(a, b, n) == 0
    }
}
