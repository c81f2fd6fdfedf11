internal import COpenSSL
import SRTP

/// AES Key Wrap with Padding (RFC 5649), the EKT cipher AESKW (RFC 8870 §4.4.1), and plain
/// AES Key Wrap (RFC 3394), both through OpenSSL's EVP wrap ciphers.
///
/// The KEK size (16, 24 or 32 bytes) selects AES-128, -192 or -256. `init` creates and keys
/// one encrypt and one decrypt context per mode; `deinit` frees them. Calls are serialized by
/// an internal lock, so one instance may be shared between tasks.
public final class AESKeyWrap: @unchecked Sendable {
    /// KEK sizes OpenSSL has wrap ciphers for.
    public static let supportedKEKLengths = [16, 24, 32]

    /// KEK length in bytes.
    public let kekLength: Int

    // EVP_CIPHER_CTX pointers, keyed in init, used only under `lock`, freed in deinit.
    private let paddedWrap: OpaquePointer
    private let paddedUnwrap: OpaquePointer
    private let plainWrap: OpaquePointer
    private let plainUnwrap: OpaquePointer
    private let lock: UnsafeMutableRawPointer  // CRYPTO_RWLOCK*

    /// Keys the wrap contexts with `kek`. Throws `.selfTestFailed` if the known-answer test
    /// did not pass in this process.
    public convenience init(kek: SecretBytes) throws(EKTError) {
        guard AESKeyWrap.selfTestPassed else { throw .selfTestFailed }
        try self.init(uncheckedKEK: kek)
    }

    private init(uncheckedKEK kek: SecretBytes) throws(EKTError) {
        let ciphers: (padded: OpaquePointer?, plain: OpaquePointer?)
        switch kek.count {
        case 16: ciphers = (EVP_aes_128_wrap_pad(), EVP_aes_128_wrap())
        case 24: ciphers = (EVP_aes_192_wrap_pad(), EVP_aes_192_wrap())
        case 32: ciphers = (EVP_aes_256_wrap_pad(), EVP_aes_256_wrap())
        default: throw .invalidKEKLength(expected: AESKeyWrap.supportedKEKLengths, got: kek.count)
        }
        guard let padded = ciphers.padded, let plain = ciphers.plain else {
            throw .cryptoLibrary("AES wrap cipher unavailable: " + AESKeyWrap.drainErrors())
        }
        guard let lock = CRYPTO_THREAD_lock_new() else {
            throw .cryptoLibrary("CRYPTO_THREAD_lock_new failed")
        }
        // Build all four before storing, so a failure frees what was made.
        var made: [OpaquePointer] = []
        do throws(EKTError) {
            for (cipher, encrypt) in [(padded, true), (padded, false), (plain, true), (plain, false)] {
                made.append(try kek.withUnsafeBytes { (key) throws(EKTError) in
                    try AESKeyWrap.makeContext(cipher: cipher, key: key, encrypt: encrypt)
                })
            }
        } catch {
            made.forEach { EVP_CIPHER_CTX_free($0) }
            CRYPTO_THREAD_lock_free(lock)
            throw error
        }
        kekLength = kek.count
        paddedWrap = made[0]
        paddedUnwrap = made[1]
        plainWrap = made[2]
        plainUnwrap = made[3]
        self.lock = lock
    }

    deinit {
        EVP_CIPHER_CTX_free(paddedWrap)
        EVP_CIPHER_CTX_free(paddedUnwrap)
        EVP_CIPHER_CTX_free(plainWrap)
        EVP_CIPHER_CTX_free(plainUnwrap)
        CRYPTO_THREAD_lock_free(lock)
    }

    /// RFC 5649 output size for an `M`-byte plaintext: `8 * ceil(M / 8) + 8`.
    ///
    /// RFC 8870 §4.4.1 states `M + (M mod 8) + 8`, which is wrong (M = 25 gives 34, the real
    /// size is 40; see ekt.md §4.2).
    public static func wrappedLength(plaintextLength m: Int) -> Int {
        8 * ((m + 7) / 8) + 8
    }

    // MARK: RFC 5649 (with padding)

    /// Wraps 1 or more bytes with padding (RFC 5649 §4.1); the result is `wrappedLength` bytes.
    public func wrap(_ plaintext: [UInt8]) throws(EKTError) -> [UInt8] {
        let result = plaintext.withUnsafeBytes { wrap(bytes: $0, padded: true) }
        return try result.get()
    }

    /// Wraps secret bytes with padding (RFC 5649 §4.1) without copying them to an unwiped array.
    public func wrap(_ plaintext: SecretBytes) throws(EKTError) -> [UInt8] {
        try plaintext.withUnsafeBytes { wrap(bytes: $0, padded: true) }.get()
    }

    /// Unwraps and checks the RFC 5649 §4.2 integrity (AIV, MLI, zero padding).
    ///
    /// A length that cannot be a wrap output throws `.invalidCiphertextLength`; a failed
    /// integrity check (wrong KEK, tampering) throws `.unwrapFailed`.
    public func unwrap(_ ciphertext: [UInt8]) throws(EKTError) -> SecretBytes {
        try ciphertext.withUnsafeBytes { unwrap(bytes: $0, padded: true) }.get()
    }

    /// `unwrap(_:)` over borrowed bytes.
    public func unwrap(_ ciphertext: UnsafeRawBufferPointer) throws(EKTError) -> SecretBytes {
        try unwrap(bytes: ciphertext, padded: true).get()
    }

    // MARK: RFC 3394 (no padding)

    /// Wraps a multiple of 8 bytes, at least 16, with the default IV (RFC 3394 §2.2.1).
    public func wrapUnpadded(_ plaintext: [UInt8]) throws(EKTError) -> [UInt8] {
        try plaintext.withUnsafeBytes { wrap(bytes: $0, padded: false) }.get()
    }

    /// Unwraps and checks the default IV (RFC 3394 §2.2.2, §2.2.3).
    public func unwrapUnpadded(_ ciphertext: [UInt8]) throws(EKTError) -> SecretBytes {
        try ciphertext.withUnsafeBytes { unwrap(bytes: $0, padded: false) }.get()
    }

    // MARK: Self-test

    /// True if the RFC 3394 §4.1 and RFC 5649 §6 known answers were reproduced. Runs once,
    /// on first use; `init(kek:)` refuses to work when it is false.
    public static let selfTestPassed: Bool = runSelfTest()

    private static func runSelfTest() -> Bool {
        // RFC 3394 §4.1: 128-bit KEK, 128 bits of key data (unpadded path, AES-128).
        guard let kek128 = SecretBytes(hex: "000102030405060708090A0B0C0D0E0F"),
              let data128 = [UInt8](hexString: "00112233445566778899AABBCCDDEEFF"),
              let wrapped128 = [UInt8](hexString: "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"),
              // RFC 5649 §6, second example: 7-byte key (single-block padded path, AES-192).
              let kek192 = SecretBytes(hex: "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"),
              let data7 = [UInt8](hexString: "466f7250617369"),
              let wrapped7 = [UInt8](hexString: "afbeb0f07dfbf5419200f2ccb50bb24f")
        else { return false }
        do throws(EKTError) {
            let a = try AESKeyWrap(uncheckedKEK: kek128)
            guard try a.wrapUnpadded(data128) == wrapped128,
                  try a.unwrapUnpadded(wrapped128).unsafeCopiedBytes == data128 else { return false }
            let b = try AESKeyWrap(uncheckedKEK: kek192)
            guard try b.wrap(data7) == wrapped7,
                  try b.unwrap(wrapped7).unsafeCopiedBytes == data7 else { return false }
            var tampered = wrapped7
            tampered[0] ^= 1
            if (try? b.unwrap(tampered)) != nil { return false }
            return true
        } catch {
            return false
        }
    }

    // MARK: OpenSSL plumbing

    /// Inputs are passed to EVP as `int`; keep well inside it.
    private static let maxInputLength = Int(Int32.max) - 64

    private func wrap(bytes input: UnsafeRawBufferPointer, padded: Bool) -> Result<[UInt8], EKTError> {
        let m = input.count
        let outLength: Int
        if padded {
            guard m >= 1, m <= AESKeyWrap.maxInputLength else { return .failure(.invalidPlaintextLength(m)) }
            outLength = AESKeyWrap.wrappedLength(plaintextLength: m)
        } else {
            guard m >= 16, m % 8 == 0, m <= AESKeyWrap.maxInputLength else {
                return .failure(.invalidPlaintextLength(m))
            }
            outLength = m + 8
        }
        // EVP tells the provider it may write input + block size; leave that much room.
        var out = [UInt8](repeating: 0, count: Swift.max(outLength, m + 16))
        let written = out.withUnsafeMutableBytes { run(padded ? paddedWrap : plainWrap, encrypt: true, input, $0) }
        guard let written, written == outLength else {
            return .failure(.cryptoLibrary("key wrap produced \(written.map(String.init) ?? "no") bytes, expected \(outLength)"))
        }
        out.removeLast(out.count - outLength)
        return .success(out)
    }

    private func unwrap(bytes input: UnsafeRawBufferPointer, padded: Bool) -> Result<SecretBytes, EKTError> {
        let n = input.count
        guard n >= 16, n % 8 == 0, n <= AESKeyWrap.maxInputLength else {
            return .failure(.invalidCiphertextLength(n))
        }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: n + 16, alignment: 16)
        out.initializeMemory(as: UInt8.self, repeating: 0)
        defer {
            OPENSSL_cleanse(out.baseAddress, out.count)
            out.deallocate()
        }
        guard let written = run(padded ? paddedUnwrap : plainUnwrap, encrypt: false, input, out),
              written >= 1, written <= n - 8 else {
            return .failure(.unwrapFailed)
        }
        return .success(SecretBytes(UnsafeRawBufferPointer(rebasing: out[0..<written])))
    }

    /// One EVP update on `ctx` under the lock; the number of bytes written, or nil on failure.
    private func run(_ ctx: OpaquePointer, encrypt: Bool,
                     _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) -> Int? {
        guard let inBase = input.baseAddress, let outBase = output.baseAddress else { return nil }
        CRYPTO_THREAD_write_lock(lock)
        defer { CRYPTO_THREAD_unlock(lock) }
        // Re-initialising without cipher or key keeps the key schedule and resets the state.
        guard EVP_CipherInit_ex(ctx, nil, nil, nil, nil, encrypt ? 1 : 0) == 1 else {
            ERR_clear_error()
            return nil
        }
        var outLength: Int32 = 0
        guard EVP_CipherUpdate(ctx, outBase.assumingMemoryBound(to: UInt8.self), &outLength,
                               inBase.assumingMemoryBound(to: UInt8.self), Int32(input.count)) == 1,
              outLength >= 0 else {
            ERR_clear_error()
            return nil
        }
        return Int(outLength)
    }

    private static func makeContext(cipher: OpaquePointer, key: UnsafeRawBufferPointer,
                                    encrypt: Bool) throws(EKTError) -> OpaquePointer {
        guard let ctx = EVP_CIPHER_CTX_new() else {
            throw .cryptoLibrary("EVP_CIPHER_CTX_new: " + drainErrors())
        }
        percrec_allow_wrap(ctx)
        guard EVP_CipherInit_ex(ctx, cipher, nil, key.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                nil, encrypt ? 1 : 0) == 1 else {
            EVP_CIPHER_CTX_free(ctx)
            throw .cryptoLibrary("EVP_CipherInit_ex (AES wrap): " + drainErrors())
        }
        return ctx
    }

    /// OpenSSL's error queue as text, emptied.
    private static func drainErrors() -> String { OpenSSLErrorQueue.drain(fallback: "unknown error") }
}

/// Zeroes `bytes` in a way the optimizer keeps (OPENSSL_cleanse). For transient copies of keys.
func ektSecureZero(_ bytes: UnsafeMutableRawBufferPointer) {
    guard let base = bytes.baseAddress else { return }
    OPENSSL_cleanse(base, bytes.count)
}
