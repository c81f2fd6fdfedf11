internal import COpenSSL

/// Key material held off the Swift heap's value semantics: zeroed when released, compared in
/// constant time, and printed as `<redacted>`.
///
/// A reference type so that copies share one buffer that is wiped exactly once, in `deinit`.
/// Call `wipe()` to zero it earlier (for example when a conference ends).
public final class SecretBytes: @unchecked Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    // Immutable after init except through wipe(); callers confine mutation to one owner.
    private let storage: UnsafeMutableRawBufferPointer

    /// Copies `bytes` into a fresh buffer.
    public init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        storage = .allocate(byteCount: Swift.max(bytes.count, 1), alignment: 16)
        _ = storage.initializeMemory(as: UInt8.self, from: bytes)
        count = bytes.count
    }

    /// `count` bytes from OpenSSL's CSPRNG.
    public init(randomCount count: Int) {
        storage = .allocate(byteCount: Swift.max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        self.count = count
        // RAND_bytes only fails if the DRBG cannot be seeded; continuing with zeros would be
        // a silent key-reuse disaster, so this is an invariant failure, not input handling.
        precondition(RAND_bytes(storage.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(count)) == 1,
                     "OpenSSL RAND_bytes failed")
    }

    /// Parses lowercase or uppercase hex; returns nil for odd length or a non-hex digit.
    public convenience init?(hex: String) {
        guard let bytes = [UInt8](hexString: hex) else { return nil }
        self.init(bytes)
    }

    public let count: Int

    deinit {
        OPENSSL_cleanse(storage.baseAddress, storage.count)
        storage.deallocate()
    }

    /// Zeroes the bytes now. Later reads see zeros.
    public func wipe() {
        OPENSSL_cleanse(storage.baseAddress, storage.count)
    }

    /// Runs `body` with a read-only view of the key bytes. Do not let the pointer escape.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: storage.baseAddress, count: count))
    }

    /// A copy of a byte range, still secret.
    public func slice(_ range: Range<Int>) -> SecretBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "slice out of range")
        return SecretBytes(UnsafeRawBufferPointer(start: storage.baseAddress! + range.lowerBound, count: range.count))
    }

    /// The bytes as an ordinary array. For tests and for sealing keys; the copy is not wiped.
    public var unsafeCopiedBytes: [UInt8] { [UInt8](UnsafeRawBufferPointer(start: storage.baseAddress, count: count)) }

    /// Constant-time comparison (CRYPTO_memcmp); lengths are not secret.
    public static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return CRYPTO_memcmp(lhs.storage.baseAddress, rhs.storage.baseAddress, lhs.count) == 0
    }

    public var description: String { "<redacted \(count) bytes>" }
    public var debugDescription: String { description }
}

extension Array where Element == UInt8 {
    /// Parses a hex string, ignoring spaces; nil on odd length or a non-hex digit.
    public init?(hexString: String) {
        var out: [UInt8] = []
        out.reserveCapacity(hexString.utf8.count / 2)
        var high: UInt8? = nil
        for c in hexString.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - UInt8(ascii: "A") + 10
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"): continue
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        guard high == nil else { return nil }
        self = out
    }

    /// Lowercase hex, no separators.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var s = [UInt8](); s.reserveCapacity(count * 2)
        for b in self { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 0x0F)]) }
        return String(decoding: s, as: UTF8.self)
    }
}
