import RTPWire

/// Bytes from a hex string; spaces and newlines are ignored. Test literals only.
func hex(_ text: String) -> [UInt8] {
    let digits = text.compactMap { $0.hexDigitValue }
    precondition(digits.count == text.filter { !$0.isWhitespace }.count && digits.count % 2 == 0, "bad hex literal")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(digits[$0] << 4 | digits[$0 + 1]) }
}

/// Runs a typed-throwing parse and keeps the outcome.
func attempt<T>(_ body: () throws(RTPParseError) -> T) -> Result<T, RTPParseError> {
    Result(catching: body)
}

/// SplitMix64: a small deterministic PRNG so mutation runs repeat exactly.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// An input and the exact error it must produce.
struct MalformedCase: Sendable, CustomStringConvertible {
    var name: String
    var bytes: [UInt8]
    var error: RTPParseError
    init(_ name: String, _ hexBytes: String, _ error: RTPParseError) {
        self.name = name
        self.bytes = hex(hexBytes)
        self.error = error
    }
    var description: String { name }
}

enum Vectors {
    /// RFC 7714 §16 example RTP packet (spec/test-vectors.md §4.1).
    static let rfc7714RTP = hex("""
        8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
        20646976 69736120 696e2070 61727465 73207472 6573
        """)

    /// RFC 7714 §17 RTCP packet exactly as printed (spec/test-vectors.md §4.6). Its length field
    /// says 13 (56 bytes) but only 52 bytes are printed.
    static let rfc7714RTCPAsPrinted = hex("""
        81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
        deadbeef deadbeef deadbeef deadbeef deadbeef
        """)

    /// The same packet with its length field set to 12, matching the 52 bytes present.
    static let rfc7714RTCPConsistent: [UInt8] = {
        var bytes = rfc7714RTCPAsPrinted
        bytes[3] = 0x0C
        return bytes
    }()
}
