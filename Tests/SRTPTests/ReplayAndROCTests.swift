import Testing
import TestSupport
@testable import SRTP

@Suite("Replay window (RFC 3711 §3.3.2)")
struct ReplayWindowTests {
    @Test("rounds its size up to a multiple of 64 and defaults to 1024")
    func sizes() {
        #expect(ReplayWindow().size == 1024)
        #expect(ReplayWindow(size: 100).size == 128)
        #expect(ReplayWindow(size: 1).size == 64)
        #expect(SRTPSession.defaultReplayWindow >= 1024)
    }

    /// Scenario table: (accepted indices, probe, verdict) with a 64-wide window.
    @Test("gives distinct verdicts for fresh, already seen and too old", arguments: [
        ([UInt64](), UInt64(5), ReplayWindow.Verdict.fresh),
        ([10], 10, .alreadySeen),
        ([10], 11, .fresh),
        ([10], 9, .fresh),
        ([100], 37, .fresh),          // 100 − 37 = 63 < 64: still inside
        ([100], 36, .tooOld),         // 64 behind: outside
        ([1, 2, 3, 200], 3, .tooOld), // window moved on
        ([200, 150], 150, .alreadySeen),
        ([200, 150], 151, .fresh),
        ([0, 64], 0, .tooOld),
        ([0, 63], 0, .alreadySeen),
    ])
    func scenarios(accepted: [UInt64], probe: UInt64, verdict: ReplayWindow.Verdict) {
        var w = ReplayWindow(size: 64)
        for i in accepted { w.accept(i) }
        #expect(w.check(probe) == verdict)
    }

    @Test("forgets slots it moves past, so a larger window accepts old-but-unseen packets")
    func ringClearing() {
        var w = ReplayWindow(size: 1024)
        for i in stride(from: UInt64(0), to: 5000, by: 2) { w.accept(i) }
        #expect(w.check(4998) == .alreadySeen)
        #expect(w.check(4997) == .fresh)
        // The window now covers 3975…4998.
        #expect(w.check(3974) == .tooOld)
        #expect(w.check(3975) == .fresh)
        #expect(w.check(3976) == .alreadySeen)
    }
}

@Suite("ROC estimation (RFC 3711 §3.3.1)")
struct RolloverTests {
    @Test("estimates ROC−1, ROC and ROC+1 around a wrap", arguments: [
        // (s_l, ROC, SEQ, expected v, beforeStart)
        (UInt16(65530), UInt32(0), UInt16(3), UInt32(1), false),
        (65530, 0, 65000, 0, false),
        (5, 1, 65534, 0, false),
        (5, 0, 65534, 0, true),
        (40000, 7, 100, 8, false),
        (40000, 7, 7000, 8, false),   // 40000 − 32768 = 7232 > 7000: after the wrap
        (40000, 7, 7300, 7, false),   // 7232 > 7300 is false: same ROC
        (100, 3, 200, 3, false),
    ])
    func estimate(sl: UInt16, roc: UInt32, seq: UInt16, v: UInt32, before: Bool) {
        let s = SRTPStream(ssrc: 1, initialROC: roc)
        s.commit(sequence: sl, estimate: s.estimate(sequence: sl))
        let e = s.estimate(sequence: seq)
        let expected = v
        #expect(e.rolloverCounter == expected)
        #expect(e.beforeStart == before)
        if !before { #expect(e.index == UInt64(expected) << 16 | UInt64(seq)) }
    }

    @Test("follows a sender through two sequence-number wraps")
    func followsWraps() {
        let s = SRTPStream(ssrc: 1)
        var seq: UInt16 = 65000
        for n in 0..<140_000 {
            let e = s.estimate(sequence: seq)
            #expect(e.index == UInt64(65000 + n), "packet \(n)")
            s.commit(sequence: seq, estimate: e)
            seq &+= 1
        }
        #expect(s.rolloverCounter == 3)
    }
}
