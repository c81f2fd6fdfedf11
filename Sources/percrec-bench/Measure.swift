// Shared measurement machinery: a monotonic clock, fixed-slot packet storage, pass results,
// and `name: value` output.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Clock

/// Nanoseconds on CLOCK_MONOTONIC.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

// MARK: - Packet storage

/// `count` packets in one contiguous allocation of fixed-size slots (`stride` bytes each, a
/// multiple of 64 so every slot starts on a cache line), with each packet's length.
/// Filled once before timing; the timed loops read it through raw pointers only.
final class PacketSet {
    let count: Int
    let stride: Int
    let base: UnsafeMutableRawPointer
    let lengths: UnsafeMutablePointer<Int>

    init(count: Int, maxPacketLength: Int) {
        precondition(count > 0 && maxPacketLength > 0)
        self.count = count
        stride = (maxPacketLength + 63) / 64 * 64
        base = .allocate(byteCount: count * stride, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: count * stride)
        lengths = .allocate(capacity: count)
        lengths.initialize(repeating: 0, count: count)
    }

    deinit {
        base.deallocate()
        lengths.deallocate()
    }

    @inline(__always)
    func slot(_ i: Int) -> UnsafeMutableRawPointer { base + i * stride }

    func store(_ bytes: [UInt8], at i: Int) {
        precondition(bytes.count <= stride, "packet of \(bytes.count) bytes does not fit a \(stride)-byte slot")
        bytes.withUnsafeBytes { slot(i).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        lengths[i] = bytes.count
    }

    func bytes(at i: Int) -> [UInt8] {
        [UInt8](UnsafeRawBufferPointer(start: slot(i), count: lengths[i]))
    }

    /// The one length every packet has, or nil if they differ.
    var uniformLength: Int? {
        let first = lengths[0]
        for i in 1..<count where lengths[i] != first { return nil }
        return first
    }
}

/// A reusable, cache-line aligned buffer that each packet is copied into before it is
/// unprotected in place (both implementations decrypt in place, so the stored packets must stay intact).
final class ScratchBuffer {
    static let size = 2048
    let pointer: UnsafeMutableRawPointer
    init() {
        pointer = .allocate(byteCount: Self.size, alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: Self.size)
    }
    deinit { pointer.deallocate() }
}

// MARK: - Results

/// The outcome of one pass over a packet set.
/// Failures seen in one timed loop: how many, and the first one in full.
struct FailureLog {
    private(set) var count = 0
    private(set) var first: (index: Int, reason: String)?

    /// Counts a failure; the reason is built only for the first one.
    mutating func record(_ index: Int, _ reason: @autoclosure () -> String) {
        count += 1
        if first == nil { first = (index, reason()) }
    }
}

struct PassResult {
    var packets: Int
    var nanoseconds: UInt64
    var failures: Int
    /// The first failure: packet index and reason.
    var firstFailure: (index: Int, reason: String)?

    var packetsPerSecond: Double { nanoseconds == 0 ? 0 : Double(packets) * 1e9 / Double(nanoseconds) }
    var nanosecondsPerPacket: Double { packets == 0 ? 0 : Double(nanoseconds) / Double(packets) }
}

/// All passes of one measurement.
struct Measurement {
    let name: String
    var passes: [PassResult] = []
    init(name: String) { self.name = name }

    var failures: Int { passes.reduce(0) { $0 + $1.failures } }
    var best: PassResult? { passes.min { $0.nanoseconds < $1.nanoseconds } }
    var median: PassResult? {
        guard !passes.isEmpty else { return nil }
        return passes.sorted { $0.nanoseconds < $1.nanoseconds }[passes.count / 2]
    }
    var bestPPS: Double { best?.packetsPerSecond ?? 0 }
}

// MARK: - Output

/// Collects `name: value` lines and checks that every name is unique.
struct Report {
    private(set) var names: Set<String> = []

    mutating func line(_ name: String, _ value: String) {
        precondition(names.insert(name).inserted, "duplicate report line \(name)")
        print("\(name): \(value)")
    }
    mutating func line(_ name: String, _ value: Int) { line(name, String(value)) }
}

/// `value` rounded to `decimals` places, without Foundation's formatter.
func fixed(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return String(value) }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let negative = value < 0
    let scaled = (abs(value) * scale).rounded()
    let whole = UInt64(scaled / scale)
    var text = (negative && scaled != 0 ? "-" : "") + String(whole)
    if decimals > 0 {
        let fraction = UInt64(scaled - Double(whole) * scale)
        let digits = String(fraction)
        text += "." + String(repeating: "0", count: max(0, decimals - digits.count)) + digits
    }
    return text
}

/// Packets per second, rounded to a whole number.
func pps(_ value: Double) -> String { String(UInt64(value.rounded())) }

func writeStderr(_ text: String) {
    var text = text
    text.withUTF8 { buf in
        var offset = 0
        while offset < buf.count {
            let n = write(2, buf.baseAddress! + offset, buf.count - offset)
            if n <= 0 { break }
            offset += n
        }
    }
}

// MARK: - Options

/// Parses `--name N` options with positive integer values; unknown options are errors.
func parseIntegerOptions(_ arguments: [String], allowed: [String: Int]) -> [String: Int]? {
    var values = allowed
    var i = 0
    while i < arguments.count {
        let a = arguments[i]
        guard allowed[a] != nil else { writeStderr("percrec-bench: unknown option '\(a)'\n"); return nil }
        guard i + 1 < arguments.count, let v = Int(arguments[i + 1]), v > 0 else {
            writeStderr("percrec-bench: \(a) needs a positive integer\n"); return nil
        }
        values[a] = v
        i += 2
    }
    return values
}

// MARK: - Deterministic data

/// SplitMix64: a small deterministic generator for payload bytes.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
