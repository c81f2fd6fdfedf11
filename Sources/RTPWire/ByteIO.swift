/// Bounds-checked big-endian reads over borrowed bytes.
///
/// Every read returns `nil` instead of reading past `end`, so parsers can `guard` and throw a
/// typed error (STYLE.md §4). Only lives inside a `withUnsafeBytes` scope.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    /// Index of the next byte to read.
    private(set) var offset: Int
    /// One past the last byte this reader may read.
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer, from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.offset = start
        self.end = end ?? bytes.count
    }

    var remaining: Int { end - offset }
    var isAtEnd: Bool { offset >= end }

    mutating func readUInt8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readUInt16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { offset += 2 }
        return bytes.loadBigEndianUInt16(at: offset)
    }

    mutating func readUInt32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        defer { offset += 4 }
        return bytes.loadBigEndianUInt32(at: offset)
    }

    mutating func readUInt64() -> UInt64? {
        guard remaining >= 8 else { return nil }
        defer { offset += 8 }
        return UInt64(bytes.loadBigEndianUInt32(at: offset)) << 32
            | UInt64(bytes.loadBigEndianUInt32(at: offset + 4))
    }

    /// Copies the next `count` bytes out, or returns `nil` if fewer remain.
    mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset ..< offset + count])
    }

    /// Copies everything up to `end`.
    mutating func readRest() -> [UInt8] {
        defer { offset = end }
        return offset < end ? Array(bytes[offset ..< end]) : []
    }
}

extension Array where Element == UInt8 {
    /// Runs a typed-throwing parser over the array's bytes.
    ///
    /// `withUnsafeBytes` only rethrows untyped errors, so the typed error is carried out in a `Result`.
    func parsingBytes<T>(_ body: (UnsafeRawBufferPointer) throws(RTPParseError) -> T) throws(RTPParseError) -> T {
        let result: Result<T, RTPParseError> = withUnsafeBytes { raw in
            Result { () throws(RTPParseError) -> T in try body(raw) }
        }
        return try result.get()
    }

    @inline(__always)
    mutating func appendBigEndian(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    mutating func appendBigEndian(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    mutating func appendBigEndian(_ value: UInt64) {
        appendBigEndian(UInt32(truncatingIfNeeded: value >> 32))
        appendBigEndian(UInt32(truncatingIfNeeded: value))
    }

    @inline(__always)
    mutating func appendZeros(_ count: Int) {
        if count > 0 { append(contentsOf: repeatElement(0, count: count)) }
    }
}

extension ArraySlice where Element == UInt8 {
    /// Runs a typed-throwing parser over the slice's bytes (indices rebased to 0).
    func parsingBytes<T>(_ body: (UnsafeRawBufferPointer) throws(RTPParseError) -> T) throws(RTPParseError) -> T {
        let result: Result<T, RTPParseError> = withUnsafeBytes { raw in
            Result { () throws(RTPParseError) -> T in try body(raw) }
        }
        return try result.get()
    }
}

/// Checks that `padding` is a well-formed RTP/RTCP padding tail: empty, or ending in its own length.
@inline(__always)
func isWellFormedPadding(_ padding: [UInt8]) -> Bool {
    guard let last = padding.last else { return true }
    return Int(last) == padding.count
}

/// Standard padding of `length` bytes: zeros, then the count (RFC 3550 §5.1).
func makePadding(length: Int) -> [UInt8] {
    guard length > 0 else { return [] }
    var bytes = [UInt8](repeating: 0, count: length)
    bytes[length - 1] = UInt8(truncatingIfNeeded: length)
    return bytes
}
