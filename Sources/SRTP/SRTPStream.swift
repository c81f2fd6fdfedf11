/// Per-SSRC state of one SRTP layer: the rollover counter, the highest sequence number and the
/// replay windows for SRTP and SRTCP (RFC 3711 §3.2.1, §3.3.1).
///
/// Keys live elsewhere (`SRTPCryptoContext`), because the ROC and replay state survive a rekey
/// (RFC 3711 §3.3.1: the ROC is never reset). Decisions (`estimate`, `check`) are pure; commits
/// happen only after a packet authenticated.
public final class SRTPStream {
    public let ssrc: UInt32
    /// The rollover counter (32 bits).
    public private(set) var rolloverCounter: UInt32
    /// Highest sequence number seen in the current ROC (`s_l`), or nil before the first packet.
    public private(set) var highestSequence: UInt16?
    public private(set) var replay: ReplayWindow
    public private(set) var rtcpReplay: ReplayWindow
    /// Next SRTCP index to send (31 bits).
    public private(set) var nextSRTCPIndex: UInt32 = 0
    /// Packets protected under the current key, against the profile's lifetime.
    var packetsProtected: UInt64 = 0

    public init(ssrc: UInt32, initialROC: UInt32 = 0, replayWindowSize: Int = 1024) {
        self.ssrc = ssrc
        rolloverCounter = initialROC
        replay = ReplayWindow(size: replayWindowSize)
        rtcpReplay = ReplayWindow(size: replayWindowSize)
    }

    /// The index estimate for a received sequence number (RFC 3711 §3.3.1, Appendix A).
    public struct Estimate: Sendable, Equatable {
        public var rolloverCounter: UInt32
        public var index: UInt64
        /// True when the guess is ROC−1 while the ROC is 0: the packet predates the stream.
        public var beforeStart: Bool
    }

    /// Picks v ∈ {ROC−1, ROC, ROC+1} so the index is closest to 2^16·ROC + s_l.
    @inline(__always)
    public func estimate(sequence seq: UInt16) -> Estimate {
        guard let sl = highestSequence else {
            return Estimate(rolloverCounter: rolloverCounter,
                            index: UInt64(rolloverCounter) << 16 | UInt64(seq), beforeStart: false)
        }
        var v = rolloverCounter
        var before = false
        let s = Int(seq), l = Int(sl)
        if l < 32768 {
            if s - l > 32768 {
                if rolloverCounter == 0 { before = true } else { v = rolloverCounter &- 1 }
            }
        } else if l - 32768 > s {
            v = rolloverCounter &+ 1
        }
        return Estimate(rolloverCounter: v, index: UInt64(v) << 16 | UInt64(seq), beforeStart: before)
    }

    /// Records an authenticated packet: updates ROC/`s_l` and the replay window.
    public func commit(sequence seq: UInt16, estimate e: Estimate) {
        if highestSequence == nil {
            highestSequence = seq
            rolloverCounter = e.rolloverCounter
        } else if e.rolloverCounter == rolloverCounter {
            if let sl = highestSequence, seq > sl { highestSequence = seq }
        } else if e.rolloverCounter == rolloverCounter &+ 1 {
            rolloverCounter = e.rolloverCounter
            highestSequence = seq
        }
        replay.accept(e.index)
    }

    /// Records an authenticated SRTCP index.
    public func commitRTCP(index: UInt32) { rtcpReplay.accept(UInt64(index)) }

    /// Takes the next SRTCP index for sending (wraps at 2^31).
    func takeSRTCPIndex() -> UInt32 {
        let i = nextSRTCPIndex
        nextSRTCPIndex = (nextSRTCPIndex &+ 1) & 0x7FFF_FFFF
        return i
    }

    /// Sets the next SRTCP index to send (tests and resumed senders).
    func setNextSRTCPIndex(_ index: UInt32) { nextSRTCPIndex = index & 0x7FFF_FFFF }

    /// Sets the ROC out of band (for example from a Full EKT field) before the first packet.
    public func setRolloverCounter(_ roc: UInt32) { rolloverCounter = roc }
}
