/// A sliding replay window over 48-bit packet indices (RFC 3711 §3.3.2).
///
/// The window remembers the highest accepted index and which of the `size` indices at or below
/// it were accepted. `check` is a pure decision; `accept` records an index and must be called
/// only after the packet authenticated. Bits live in a ring keyed by `index mod size`, so moving
/// the window forward clears only the slots it passes.
public struct ReplayWindow: Sendable, Equatable {
    /// The verdict on an index.
    public enum Verdict: Sendable, Equatable {
        case fresh
        /// Inside the window and already accepted.
        case alreadySeen
        /// Behind the window: it can no longer be told apart from a replay.
        case tooOld
    }

    /// Number of indices remembered, a multiple of 64.
    public let size: Int
    /// The highest accepted index, or nil before the first packet.
    public private(set) var highest: UInt64?
    private var bits: [UInt64]

    /// A window remembering at least `size` indices (rounded up to a multiple of 64, minimum 64).
    public init(size: Int = 1024) {
        let rounded = Swift.max(64, (size + 63) / 64 * 64)
        self.size = rounded
        bits = [UInt64](repeating: 0, count: rounded / 64)
    }

    @inline(__always)
    private func slot(_ index: UInt64) -> (word: Int, mask: UInt64) {
        let s = Int(index % UInt64(size))
        return (s >> 6, 1 << UInt64(s & 63))
    }

    /// Whether `index` would be accepted. Does not change the window.
    public func check(_ index: UInt64) -> Verdict {
        guard let top = highest else { return .fresh }
        if index > top { return .fresh }
        if top - index >= UInt64(size) { return .tooOld }
        let (w, m) = slot(index)
        return bits[w] & m != 0 ? .alreadySeen : .fresh
    }

    /// Records `index` as accepted, moving the window forward if it is ahead.
    public mutating func accept(_ index: UInt64) {
        if let top = highest {
            if index > top {
                let advance = index - top
                if advance >= UInt64(size) {
                    for i in bits.indices { bits[i] = 0 }
                } else {
                    var i = top + 1
                    while i < index {   // slots passed over become "not seen"
                        let (w, m) = slot(i); bits[w] &= ~m; i += 1
                    }
                }
                highest = index
            } else if top - index >= UInt64(size) {
                return
            }
        } else {
            highest = index
        }
        let (w, m) = slot(index)
        bits[w] |= m
    }
}
