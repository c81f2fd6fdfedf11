// Helpers shared by every test target: hex literals, a seeded PRNG, byte mutations.

/// Bytes from a hex string; spaces and newlines are ignored. Traps on a typo in a test literal.
public func hex(_ text: String) -> [UInt8] {
    let digits = text.compactMap { $0.hexDigitValue }
    precondition(digits.count == text.filter { !$0.isWhitespace }.count && digits.count % 2 == 0, "bad hex literal: \(text)")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(digits[$0] << 4 | digits[$0 + 1]) }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator so random tests replay
/// exactly. Not for keys.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func bytes(_ count: Int) -> [UInt8] {
        (0 ..< count).map { _ in UInt8.random(in: .min ... .max, using: &self) }
    }
}

/// Byte-level mutations for robustness tests: each call applies one to four edits.
public enum Mutator {
    /// Values that sit on length and type boundaries of the EKT formats.
    public static let interesting: [UInt8] = [0x00, 0x01, 0x02, 0x03, 0x07, 0x08, 0x10, 0x20, 0x7F, 0x80, 0xF2, 0xF3, 0xFA, 0xFB, 0xFF]

    public static func mutate(_ input: [UInt8], using rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0 ..< Int.random(in: 1 ... 4, using: &rng) {
            let op = Int.random(in: 0 ..< 8, using: &rng)
            if bytes.isEmpty && op != 3 { bytes.append(UInt8.random(in: 0 ... 255, using: &rng)); continue }
            let i = bytes.isEmpty ? 0 : Int.random(in: 0 ..< bytes.count, using: &rng)
            switch op {
            case 0: bytes[i] ^= 1 << UInt8.random(in: 0 ..< 8, using: &rng)
            case 1: bytes[i] = UInt8.random(in: 0 ... 255, using: &rng)
            case 2: bytes[i] = interesting.randomElement(using: &rng)!  // non-empty literal
            case 3: bytes.insert(UInt8.random(in: 0 ... 255, using: &rng), at: Int.random(in: 0 ... bytes.count, using: &rng))
            case 4: bytes.remove(at: i)
            case 5: bytes.removeLast(Int.random(in: 0 ... bytes.count, using: &rng))
            case 6: bytes.removeFirst(Int.random(in: 0 ... bytes.count, using: &rng))
            default:
                // Overwrite a 16-bit big-endian value (a length field, often).
                let v = [UInt16(0), 1, 7, 8, 47, 63, 251, 256, 257, 258, 259, 0xFFFF].randomElement(using: &rng)!
                if i + 1 < bytes.count { bytes[i] = UInt8(v >> 8); bytes[i + 1] = UInt8(v & 0xFF) }
            }
        }
        return bytes
    }
}

/// Every prefix and every suffix of `bytes`, shortest first, without the input itself.
public func truncations(of bytes: [UInt8]) -> [[UInt8]] {
    (0 ..< bytes.count).flatMap { n in [Array(bytes.prefix(n)), Array(bytes.suffix(n))] }
}
