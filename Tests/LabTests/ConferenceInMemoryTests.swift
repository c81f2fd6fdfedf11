import EKT
import KeyExchange
@testable import Lab
import RTPWire
import SRTP
import Testing
import TestSupport

// KD + MD + participants wired in memory (no sockets): the full PERC data path with the
// reference Media Distributor in between, including its malicious test mode.

private final class Wiring {
    let kd: KeyDistributor
    let md: MediaDistributor
    var participants: [Int: ParticipantSession] = [:]
    var events: [Int: [ParticipantEvent]] = [:]
    private var toMD: [(Int, [UInt8])] = []
    private var toKD: [TunnelMessage] = []
    private(set) var mdToRecorderBytes = 0

    init(kd: KeyDistributor, md: MediaDistributor) {
        self.kd = kd
        self.md = md
        route(md.start())
    }

    func add(_ id: Int, _ p: ParticipantSession) throws {
        participants[id] = p
        for d in try p.start() { toMD.append((id, d)) }
    }

    func send(_ id: Int, _ datagram: [UInt8]) { toMD.append((id, datagram)) }

    func leave(_ id: Int) {
        guard let p = participants[id] else { return }
        for d in p.leave() { toMD.append((id, d)) }
    }

    private func route(_ actions: [MediaDistributor.Action]) {
        for a in actions {
            switch a {
            case let .tunnel(m): toKD.append(m)
            case let .udp(id, d):
                guard let p = participants[id] else { continue }
                let (replies, evs) = p.receive(datagram: d)
                events[id, default: []] += evs
                for r in replies { toMD.append((id, r)) }
            }
        }
    }

    /// Delivers everything queued (and what that causes), without waiting for timers.
    func drain() async throws {
        try await run(limit: .seconds(10), waitForTimers: false) { false }
    }

    func run(limit: Duration = .seconds(10), waitForTimers: Bool = true, until done: () -> Bool) async throws {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit, !done() {
            if toMD.isEmpty && toKD.isEmpty {
                if !waitForTimers { return }
                let next = ([kd.nextTimeout, md.nextTimeout] + participants.values.map(\.nextTimeout)).compactMap { $0 }.min()
                guard let next else { return }
                if next > .now { try await Task.sleep(for: min(next - .now, .milliseconds(20))) }
                for o in kd.handleTimeouts() { route(md.receive(tunnel: o.message)) }
                route(md.handleTimeouts())
                for (id, p) in participants { for d in (try? p.handleTimeout()) ?? [] { toMD.append((id, d)) } }
                continue
            }
            let forMD = toMD; toMD = []
            for (id, d) in forMD { route(md.receive(datagram: d, from: id)) }
            let forKD = toKD; toKD = []
            for m in forKD { for o in kd.receive(m, on: 1) { route(md.receive(tunnel: o.message)) } }
        }
    }

    var allReady: Bool { participants.values.allSatisfy(\.isReady) }
}

private struct People {
    let kd = try! DTLSIdentity(commonName: "kd")
    let ids: [DTLSIdentity] = (0 ..< 4).map { try! DTLSIdentity(commonName: "p\($0)") }

    var config: KeyDistributorConfig {
        KeyDistributorConfig(listen: "127.0.0.1:0", mediaDistributors: [], conferences: [
            ConferenceConfig(id: "lab", participants: ids.enumerated().map {
                InvitedParticipant(name: "p\($0.offset)", fingerprint: $0.element.fingerprint.description)
            }),
        ])
    }

    func participant(_ i: Int) throws -> ParticipantSession {
        let p = try ParticipantSession(name: "p\(i)", identity: ids[i], kdFingerprint: kd.fingerprint, conference: "lab",
                                       sendingSSRCs: [audioSSRC(i), videoSSRC(i)], initialRetransmitTimeout: .milliseconds(40))
        p.rekeyDelay = .zero   // these tests send by hand, in lockstep
        return p
    }
}

private func audioSSRC(_ i: Int) -> UInt32 { 0xA000 + UInt32(i) }
private func videoSSRC(_ i: Int) -> UInt32 { 0xB000 + UInt32(i) }

private func audioPacket(_ i: Int, seq: UInt16, level: UInt8) throws -> RTPPacket {
    let ext = try RTPHeaderExtension.oneByte([try RTPAudioLevel(voiceActivity: level < 127, level: level).element(id: 1)])
    return try RTPPacket(payloadType: 111, sequenceNumber: seq, timestamp: UInt32(seq) * 960, ssrc: audioSSRC(i),
                         headerExtension: ext, payload: [0x78] + Array("audio \(i) #\(seq)".utf8))
}

private func videoPacket(_ i: Int, seq: UInt16) throws -> RTPPacket {
    // One frame per 20 ms send interval: 1800 ticks of the 90 kHz clock.
    try RTPPacket(marker: true, payloadType: 96, sequenceNumber: seq, timestamp: UInt32(seq) * 1800, ssrc: videoSSRC(i),
                  payload: [0x90, 0x80] + Array("video \(i) #\(seq)".utf8))
}

private func media(_ events: [ParticipantEvent]?) -> [RTPPacket] {
    (events ?? []).compactMap { if case let .media(p, _) = $0 { p } else { nil } }
}

@Suite("Conference in memory: KD + MD + participants")
struct ConferenceInMemoryTests {
    @Test("Three participants decrypt each other's audio and video end to end; the MD holds only outer keys")
    func threeParticipants() async throws {
        let people = People()
        let kd = try KeyDistributor(config: people.config, identity: people.kd, initialRetransmitTimeout: .milliseconds(40),
                                    joinGrace: .milliseconds(100), log: { _ in })
        let md = MediaDistributor()
        let w = Wiring(kd: kd, md: md)
        for i in 0 ..< 3 { try w.add(i, people.participant(i)) }
        try await w.run { w.allReady && kd.members(of: "lab").count == 3 && w.participants.values.allSatisfy { $0.currentSPI == kd.currentSPI(of: "lab") } }
        #expect(w.allReady)

        var sent: [UInt32: [RTPPacket]] = [:]
        for seq in UInt16(100) ..< 110 {
            for i in 0 ..< 3 {
                let a = try audioPacket(i, seq: seq, level: UInt8(20 + 10 * i)), v = try videoPacket(i, seq: seq)
                w.send(i, try w.participants[i]!.protect(a)); sent[a.ssrc, default: []].append(a)
                w.send(i, try w.participants[i]!.protect(v)); sent[v.ssrc, default: []].append(v)
            }
            try await w.drain()
        }
        for i in 0 ..< 3 {
            let got = media(w.events[i])
            for j in 0 ..< 3 where j != i {
                let audio = got.filter { $0.ssrc == audioSSRC(j) }
                // Inner packets come back exactly: header (without the HBH extension) and payload.
                #expect(audio.map(\.payload) == sent[audioSSRC(j)]?.map(\.payload))
                #expect(audio.map(\.sequenceNumber) == Array(100 ..< 110))
                #expect(audio.allSatisfy { $0.headerExtension == nil })
            }
            #expect(w.participants[i]!.receiver?.drops.total == 0)
        }
        // Video: every receiver gets the speaker's video (the loudest is p0: level 20 = -20 dBov).
        #expect(md.currentSpeaker == 0)
        for i in 1 ..< 3 { #expect(media(w.events[i]).filter { $0.ssrc == videoSSRC(0) }.count == 10) }
        #expect(md.counters.keyFrameRequests >= 1)

        // The MD's key store: only the outer halves; no E2E key, EKTKey or E2E salt.
        let held = md.heldKeyMaterial.map(\.unsafeCopiedBytes)
        #expect(!held.isEmpty)
        for key in kd.ektKeyHistory(of: "lab") {
            #expect(!held.contains(key.ektKeyValue.unsafeCopiedBytes))
            #expect(!held.contains { $0 == Array(key.srtpMasterSalt.unsafeCopiedBytes.prefix($0.count)) })
        }
        for p in w.participants.values {
            let keys = try #require(p.keyPlane.srtpKeys)
            #expect(!held.contains(keys.clientWriteDouble!.innerKey.unsafeCopiedBytes))
            #expect(!held.contains(keys.serverWriteDouble!.innerKey.unsafeCopiedBytes))
        }
    }

    @Test("The loudest N audio sources are forwarded; sequence numbers stay contiguous per receiver (OHB in use)")
    func selection() async throws {
        let people = People()
        let kd = try KeyDistributor(config: people.config, identity: people.kd, initialRetransmitTimeout: .milliseconds(40),
                                    joinGrace: .milliseconds(100), log: { _ in })
        var cfg = MediaDistributorConfig()
        cfg.loudestAudioSources = 2
        let md = MediaDistributor(config: cfg)
        let w = Wiring(kd: kd, md: md)
        for i in 0 ..< 4 { try w.add(i, people.participant(i)) }
        try await w.run { w.allReady && w.participants.values.allSatisfy { $0.currentSPI == kd.currentSPI(of: "lab") } }
        for seq in UInt16(1) ... 30 {
            for i in 0 ..< 4 {
                // p0 and p1 loud, p2 quiet, p3 nearly silent.
                w.send(i, try w.participants[i]!.protect(try audioPacket(i, seq: seq, level: [10, 15, 60, 100][i])))
            }
            try await w.drain()
        }
        let atP3 = media(w.events[3])
        #expect(atP3.filter { $0.ssrc == audioSSRC(0) }.count >= 25)
        #expect(atP3.filter { $0.ssrc == audioSSRC(1) }.count >= 25)
        #expect(atP3.filter { $0.ssrc == audioSSRC(2) }.count <= 5)
        #expect(md.counters.rtpNotSelected > 0)
        // The inner (original) sequence numbers of what p3 got are restored from the OHB, while
        // on the wire the MD numbered them contiguously.
        #expect(md.counters.hbhAuthenticationFailures == 0)
        #expect(w.participants[3]!.receiver?.drops.total == 0)
    }

    @Test("Malicious MD: a replayed packet, a spliced SSRC and a delayed stream are each detected by receivers")
    func maliciousMD() async throws {
        let people = People()
        let kd = try KeyDistributor(config: people.config, identity: people.kd, initialRetransmitTimeout: .milliseconds(40),
                                    joinGrace: .milliseconds(100), log: { _ in })
        var cfg = MediaDistributorConfig()
        var bad = MaliciousBehavior()
        bad.replaySSRC = audioSSRC(0); bad.replayEvery = 10
        bad.spliceFrom = audioSSRC(1); bad.spliceInto = audioSSRC(0)
        bad.delaySSRC = videoSSRC(2); bad.delay = .milliseconds(400); bad.delayAfterPackets = 15
        cfg.malicious = bad
        cfg.speakerHold = .zero   // p2 (the loudest) becomes the speaker on its first packet
        let md = MediaDistributor(config: cfg)
        let w = Wiring(kd: kd, md: md)
        for i in 0 ..< 3 { try w.add(i, people.participant(i)) }
        try await w.run { w.allReady && w.participants.values.allSatisfy { $0.currentSPI == kd.currentSPI(of: "lab") } }
        let start = ContinuousClock.now
        for n in 0 ..< 40 {
            let seq = UInt16(n + 1)
            for i in 0 ..< 3 {
                w.send(i, try w.participants[i]!.protect(try audioPacket(i, seq: seq, level: i == 2 ? 5 : 30)))
            }
            // p2 is the loudest, so the MD forwards its video; after 15 frames it starts holding them.
            w.send(2, try w.participants[2]!.protect(try videoPacket(2, seq: seq)))
            try await w.drain()
            try await Task.sleep(until: start + .milliseconds(20 * (n + 1)))
        }
        try await w.run(limit: .seconds(2)) { md.nextTimeout == nil }
        #expect(md.counters.maliciousReplays > 0 && md.counters.maliciousSplices > 0 && md.counters.maliciousDelays > 0)
        let atP2 = try #require(w.participants[2]?.receiver?.drops)
        // Replay: the inner replay window catches the re-sent packet (its original SEQ restored from the OHB).
        #expect(atP2["srtp_replayed"] + atP2["srtp_too_old"] > 0)
        // Splice: p1's packets relabelled as p0's fail E2E authentication (or EKT's SSRC check).
        #expect(atP2.total - atP2["srtp_replayed"] - atP2["srtp_too_old"] > 0)
        // Delay: receivers flag p2's video.
        #expect(w.participants[1]!.delayedSources.contains(videoSSRC(2)) || w.participants[0]!.delayedSources.contains(videoSSRC(2)))
    }
}
