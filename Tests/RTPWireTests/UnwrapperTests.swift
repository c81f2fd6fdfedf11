import Testing
import TestSupport
import RTPWire

@Suite("Sequence and timestamp unwrapping")
struct UnwrapperTests {
    struct Scenario<Input: Sendable>: Sendable, CustomStringConvertible {
        var description: String
        var input: [Input]
        var expected: [Int64]
    }

    static let sequenceScenarios: [Scenario<UInt16>] = [
        .init(description: "first value maps to itself", input: [12345], expected: [12345]),
        .init(description: "steady increments", input: [1, 2, 3], expected: [1, 2, 3]),
        .init(description: "wraps forward", input: [65534, 65535, 0, 1], expected: [65534, 65535, 65536, 65537]),
        .init(description: "reordered across the wrap", input: [65535, 1, 0, 65534, 2], expected: [65535, 65537, 65536, 65534, 65538]),
        .init(description: "late packet from before the first", input: [5, 65530, 6], expected: [5, -6, 6]),
        .init(description: "jump of exactly half goes forward", input: [0, 32768], expected: [0, 32768]),
        .init(description: "jump beyond half reads as a step back", input: [0, 32769], expected: [0, -32767]),
        .init(description: "large jumps in steps under half", input: [0, 30000, 60000, 24464, 54464, 18928],
              expected: [0, 30000, 60000, 90000, 120_000, 150_000]),
        .init(description: "duplicate stays put", input: [65535, 65535, 0, 0], expected: [65535, 65535, 65536, 65536]),
    ]

    @Test("extends 16-bit sequence numbers", arguments: sequenceScenarios)
    func sequences(_ scenario: Scenario<UInt16>) {
        var unwrapper = SequenceUnwrapper()
        #expect(scenario.input.map { unwrapper.unwrap($0) } == scenario.expected)
        #expect(unwrapper.last == scenario.expected.last)
    }

    static let timestampScenarios: [Scenario<UInt32>] = [
        .init(description: "first value maps to itself", input: [0xFFFF_FF00], expected: [0xFFFF_FF00]),
        .init(description: "wraps forward", input: [0xFFFF_FF00, 0x0000_0100], expected: [0xFFFF_FF00, 0x1_0000_0100]),
        .init(description: "reordered across the wrap", input: [0xFFFF_FFF0, 0x10, 0xFFFF_FFF8, 0x20],
              expected: [0xFFFF_FFF0, 0x1_0000_0010, 0xFFFF_FFF8, 0x1_0000_0020]),
        .init(description: "jump beyond half reads as a step back", input: [0, 0x8000_0001], expected: [0, -0x7FFF_FFFF]),
        .init(description: "many wraps at 48 kHz", input: [0, 0x6000_0000, 0xC000_0000, 0x2000_0000, 0x8000_0000],
              expected: [0, 0x6000_0000, 0xC000_0000, 0x1_2000_0000, 0x1_8000_0000]),
    ]

    @Test("extends 32-bit timestamps", arguments: timestampScenarios)
    func timestamps(_ scenario: Scenario<UInt32>) {
        var unwrapper = TimestampUnwrapper()
        #expect(scenario.input.map { unwrapper.unwrap($0) } == scenario.expected)
    }

    static let extendCases: [(seq: UInt16, reference: Int64, expected: Int64)] = [
        (0, 65535, 65536),
        (65535, 65536, 65535),
        (100, 3 * 65536 + 50, 3 * 65536 + 100),
        (65500, 3 * 65536 + 50, 2 * 65536 + 65500),
        (0, -1, 0),
        (65535, 0, -1),
        (1, Int64.max, Int64.max - 65534),
        (65535, Int64.min, Int64.min + 65535),
    ]

    @Test("extends a sequence number near a reference", arguments: extendCases)
    func extendSequence(seq: UInt16, reference: Int64, expected: Int64) {
        #expect(SequenceUnwrapper.extend(seq, near: reference) == expected)
        #expect(Int64(seq) == expected & 0xFFFF)
    }

    @Test("never traps near the ends of Int64", arguments: [Int64.max, Int64.max - 1, Int64.min, Int64.min + 1])
    func extremes(reference: Int64) {
        for seq in [UInt16(0), 1, 32767, 32768, 32769, 65535] {
            let value = SequenceUnwrapper.extend(seq, near: reference)
            #expect(value & 0xFFFF == Int64(seq))
        }
        for ts in [UInt32(0), 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF] {
            let value = TimestampUnwrapper.extend(ts, near: reference)
            #expect(value & 0xFFFF_FFFF == Int64(ts))
        }
    }
}
