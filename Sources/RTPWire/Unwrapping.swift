/// Extends 16-bit RTP sequence numbers to a monotonic 64-bit count across wraps (RFC 3550 §A.1).
///
/// Each number is placed within half the 16-bit range of the previous result, so reordering
/// around a wrap maps correctly, while a jump of more than 32768 reads as a step back.
public struct SequenceUnwrapper: Sendable, Equatable {
    /// The last value returned, or `nil` before the first call.
    public private(set) var last: Int64?

    public init() {}

    /// Extends `seq` near the previous result; the first number maps to itself.
    ///
    /// Numbers from before the first one (across a wrap) come out negative.
    public mutating func unwrap(_ seq: UInt16) -> Int64 {
        let value = last.map { Self.extend(seq, near: $0) } ?? Int64(seq)
        last = value
        return value
    }

    /// The value ≡ `seq` mod 2¹⁶ in `reference − 32768 < value ≤ reference + 32768`.
    public static func extend(_ seq: UInt16, near reference: Int64) -> Int64 {
        extendModular(UInt64(seq), bits: 16, near: reference)
    }
}

/// Extends 32-bit RTP timestamps to a monotonic 64-bit count across wraps (RFC 3550 §5.1).
///
/// Same half-range rule as `SequenceUnwrapper`, with a window of 2³¹.
public struct TimestampUnwrapper: Sendable, Equatable {
    /// The last value returned, or `nil` before the first call.
    public private(set) var last: Int64?

    public init() {}

    /// Extends `timestamp` near the previous result; the first timestamp maps to itself.
    public mutating func unwrap(_ timestamp: UInt32) -> Int64 {
        let value = last.map { Self.extend(timestamp, near: $0) } ?? Int64(timestamp)
        last = value
        return value
    }

    /// The value ≡ `timestamp` mod 2³² in `reference − 2³¹ < value ≤ reference + 2³¹`.
    public static func extend(_ timestamp: UInt32, near reference: Int64) -> Int64 {
        extendModular(UInt64(timestamp), bits: 32, near: reference)
    }
}

/// The value ≡ `value` mod 2^bits closest to `reference` (ties go forward), never overflowing.
func extendModular(_ value: UInt64, bits: Int, near reference: Int64) -> Int64 {
    let modulus = Int64(1) << bits
    let half = modulus >> 1
    // `reference & (modulus - 1)` is reference mod 2^bits, also for negative references.
    var delta = Int64(value) - (reference & (modulus - 1))
    if delta > half { delta -= modulus } else if delta <= -half { delta += modulus }
    let (sum, overflow) = reference.addingReportingOverflow(delta)
    if !overflow { return sum }
    // Only at the ends of Int64: take the candidate on the other side, which fits.
    return reference &+ (delta > 0 ? delta - modulus : delta + modulus)
}
