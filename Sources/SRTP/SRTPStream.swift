/// Per-SSRC state of one SRTP layer: the rollover counter, the highest sequence number and the
/// replay windows for SRTP and SRTCP (RFC 3711 §3.2.1, §3.3.1).
///
/// Keys live elsewhere (`SRTPCryptoContext`), because the ROC and replay state survive a rekey
/// (RFC 3711 §3.3.1: the ROC is never reset). Decisions (`estimate`, `check`) are pure; commits
/// happen only after a packet authenticated.
public final class SRTPStream {
    public let ssrc: UInt32
    // Stored state is private so the optimizer can see every access and drop dynamic
    // exclusivity checks on the per-packet path; the public views below are read-only.
    private var roc: UInt32
    private var sl: UInt16 = 0
    private var started = false
    private var window: ReplayWindow
    private var rtcpWindow: ReplayWindow
    private var srtcpIndex: UInt32 = 0

    /// The rollover counter (32 bits).
    public var rolloverCounter: UInt32 { roc }
    /// Highest sequence number seen in the current ROC (`s_l`), or nil before the first packet.
    public var highestSequence: UInt16? { started ? sl : nil }
    public var replay: ReplayWindow { window }
    public var rtcpReplay: ReplayWindow { rtcpWindow }
    /// Next SRTCP index to send (31 bits).
    public var nextSRTCPIndex: UInt32 { srtcpIndex }
    /// Packets protected under the current key, against the profile's lifetime.
    var packetsProtected: UInt64 = 0

    public init(ssrc: UInt32, initialROC: UInt32 = 0, replayWindowSize: Int = 1024) {
        self.ssrc = ssrc
        roc = initialROC
        window = ReplayWindow(size: replayWindowSize)
        rtcpWindow = ReplayWindow(size: replayWindowSize)
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
        let roc = self.roc
        guard started else {
            return Estimate(rolloverCounter: roc, index: UInt64(roc) << 16 | UInt64(seq), beforeStart: false)
        }
        var v = roc
        var before = false
        let s = Int(seq), l = Int(sl)
        if l < 32768 {
            if s - l > 32768 {
                if roc == 0 { before = true } else { v = roc &- 1 }
            }
        } else if l - 32768 > s {
            v = roc &+ 1
        }
        return Estimate(rolloverCounter: v, index: UInt64(v) << 16 | UInt64(seq), beforeStart: before)
    }

    /// The replay verdict for an SRTP index (pure).
    @inline(__always)
    public func checkReplay(_ index: UInt64) -> ReplayWindow.Verdict { window.check(index) }

    /// The replay verdict for an SRTCP index (pure).
    @inline(__always)
    public func checkRTCPReplay(_ index: UInt32) -> ReplayWindow.Verdict { rtcpWindow.check(UInt64(index)) }

    /// Records an authenticated packet: updates ROC/`s_l` and the replay window.
    public func commit(sequence seq: UInt16, estimate e: Estimate) {
        if !started {
            started = true
            sl = seq
            roc = e.rolloverCounter
        } else if e.rolloverCounter == roc {
            if seq > sl { sl = seq }
        } else if e.rolloverCounter == roc &+ 1 {
            roc = e.rolloverCounter
            sl = seq
        }
        window.accept(e.index)
    }

    /// Records an authenticated SRTCP index.
    public func commitRTCP(index: UInt32) { rtcpWindow.accept(UInt64(index)) }

    /// Takes the next SRTCP index for sending (wraps at 2^31).
    func takeSRTCPIndex() -> UInt32 {
        let i = srtcpIndex
        srtcpIndex = (srtcpIndex &+ 1) & 0x7FFF_FFFF
        return i
    }

    /// Sets the next SRTCP index to send (tests and resumed senders).
    func setNextSRTCPIndex(_ index: UInt32) { srtcpIndex = index & 0x7FFF_FFFF }

    /// Sets the ROC out of band (for example from a Full EKT field) before the first packet.
    public func setRolloverCounter(_ roc: UInt32) { self.roc = roc }
}
