import Testing
import TestSupport
import SRTP
@testable import EKT

/// A small PERC conference: one EKTKey, senders, one Media Distributor hop per direction, a receiver.
private struct Bench {
    let ektKey: EKTParameterSet
    let senderHop = (SecretBytes(randomCount: 16), SecretBytes(randomCount: 12))
    let receiverHop = (SecretBytes(randomCount: 16), SecretBytes(randomCount: 12))
    let relay: DoubleSRTPRelay
    let receiver: PERCReceiver

    init(spi: UInt16 = 1) throws {
        ektKey = try Self.makeKey(spi: spi)
        relay = DoubleSRTPRelay(
            inbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: senderHop.0, masterSalt: senderHop.1, direction: .inbound),
            outbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: receiverHop.0, masterSalt: receiverHop.1, direction: .outbound))
        receiver = try PERCReceiver(outerKey: receiverHop.0, outerSalt: receiverHop.1)
        receiver.ekt.add(ektKey)
    }

    static func makeKey(spi: UInt16, cipher: EKTCipher = .aeskw128) throws -> EKTParameterSet {
        try EKTParameterSet(message: try EKTKeyMessage(ektKeyValue: SecretBytes(randomCount: cipher.keyLength),
                                                       srtpMasterSalt: SecretBytes(randomCount: 12), spi: spi, ttl: 3600),
                            cipher: cipher)
    }

    func sender(ssrc: UInt32, fullEvery: Int = 50) throws -> PERCSender {
        try PERCSender(ssrc: ssrc, outerKey: senderHop.0, outerSalt: senderHop.1, ektKey: ektKey, fullEvery: fullEvery)
    }

    static func rtp(ssrc: UInt32, seq: UInt16, payload: [UInt8] = Array("hello perc".utf8)) -> [UInt8] {
        [0x80, 111, UInt8(seq >> 8), UInt8(seq & 0xFF), 0, 0, 0x10, 0x00,
         UInt8(ssrc >> 24), UInt8((ssrc >> 16) & 0xFF), UInt8((ssrc >> 8) & 0xFF), UInt8(ssrc & 0xFF)] + payload
    }

    /// Sender → MD (rewriting SEQ) → wire bytes for the receiver.
    func send(_ s: PERCSender, seq: UInt16, outerSeq: UInt16? = nil) throws -> [UInt8] {
        var p = Self.rtp(ssrc: s.ssrc, seq: seq)
        try s.protect(&p)
        try relay.forwardPERC(&p, rewrite: HeaderRewrite(sequenceNumber: outerSeq ?? seq &+ 1000))
        return p
    }
}

@Suite("PERC endpoints: double SRTP with EKT")
struct PERCEndpointTests {
    @Test("a receiver learns a new sender from its Full EKT field and decrypts it end to end")
    func newSender() throws {
        let b = try Bench()
        let alice = try b.sender(ssrc: 0xA11CE)
        for seq in UInt16(1)...60 {
            var p = try b.send(alice, seq: seq)
            let info = try b.receiver.receive(&p)
            #expect(p == Bench.rtp(ssrc: 0xA11CE, seq: seq), "seq \(seq)")
            #expect(info.ekt.newSource == (seq == 1))
            #expect(info.hadFullField == (seq <= 3 || seq == 53), "seq \(seq): Full in the first 3 packets, then every 50")
            #expect(info.outer.ohb.sequenceNumber == seq)
        }
        #expect(b.receiver.accepted == 60 && b.receiver.drops.total == 0)
        #expect(b.receiver.ekt.keys(for: 0xA11CE).count == 1)
    }

    @Test("a Full field under an unknown SPI is refused and creates nothing")
    func unknownSPI() throws {
        let b = try Bench()
        let other = try Bench(spi: 9)
        let mallory = try other.sender(ssrc: 0xBAD)
        var p = Bench.rtp(ssrc: 0xBAD, seq: 1)
        try mallory.protect(&p)
        // Re-wrap the outer layer so only the EKT step can object.
        try DoubleSRTPRelay(inbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: other.senderHop.0, masterSalt: other.senderHop.1, direction: .inbound),
                            outbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: b.receiverHop.0, masterSalt: b.receiverHop.1, direction: .outbound))
            .forwardPERC(&p, rewrite: .none)
        let before = p
        #expect(throws: PERCError.unknownSPI(9)) { try b.receiver.receive(&p) }
        #expect(p == before)
        #expect(b.receiver.ekt.sourceCount == 0)
        #expect(b.receiver.drops["ekt_unknown_spi"] == 1)
    }

    @Test("a tampered EKT ciphertext fails the key unwrap and the packet is dropped")
    func tamperedField() throws {
        let b = try Bench()
        let alice = try b.sender(ssrc: 1)
        var p = try b.send(alice, seq: 1)
        p[p.count - 20] ^= 0x01   // inside the 40-byte EKT ciphertext (the EKT field is not SRTP-protected)
        #expect(throws: PERCError.ekt(.unwrapFailed)) { try b.receiver.receive(&p) }
        #expect(b.receiver.ekt.sourceCount == 0)
    }

    @Test("a Full field spliced onto another SSRC's packet is ignored, not used")
    func ssrcMismatch() throws {
        let b = try Bench()
        let alice = try b.sender(ssrc: 0xA), bob = try b.sender(ssrc: 0xB)
        let fromAlice = try b.send(alice, seq: 1)
        var fromBob = try b.send(bob, seq: 1)
        // Replace Bob's Full field with Alice's.
        let aliceField = Array(fromAlice.suffix(47)), bobBody = Array(fromBob.dropLast(47))
        fromBob = bobBody + aliceField
        #expect(throws: PERCError.ektSSRCMismatch(fieldSSRC: 0xA, packetSSRC: 0xB)) { try b.receiver.receive(&fromBob) }
        #expect(b.receiver.ekt.sourceCount == 0)
    }

    @Test("a forged packet carrying a genuine Full field creates no source")
    func forgedWithGenuineField() throws {
        let b = try Bench()
        let alice = try b.sender(ssrc: 0xA)
        let genuine = try b.send(alice, seq: 1)
        let field = Array(genuine.suffix(47))
        // A malicious MD holds the hop keys: it can build a valid outer layer around garbage E2E bytes.
        var inner = Bench.rtp(ssrc: 0xA, seq: 2, payload: [UInt8](repeating: 0x41, count: 26)) + [0x00]
        let mdOut = try SRTPSession(profile: .aeadAes128Gcm, masterKey: b.receiverHop.0, masterSalt: b.receiverHop.1, direction: .outbound)
        try mdOut.protect(&inner)
        var forged = inner + field
        #expect(throws: PERCError.srtp(.authenticationFailed(ssrc: 0xA))) { try b.receiver.receive(&forged) }
        #expect(b.receiver.ekt.sourceCount == 0)
        // The genuine packet still works afterwards: nothing was committed.
        var g = genuine
        _ = try b.receiver.receive(&g)
        #expect(b.receiver.ekt.sourceCount == 1)
    }

    @Test("after a rekey the receiver holds both keys and still opens late packets under the old one")
    func rekeyKeepsOldKeys() throws {
        let b = try Bench()
        let alice = try b.sender(ssrc: 0xA)
        for seq in UInt16(1)...5 { var p = try b.send(alice, seq: seq); _ = try b.receiver.receive(&p) }
        let late = try b.send(alice, seq: 6)            // sent before the rekey, delivered after
        let newKey = try Bench.makeKey(spi: 2)
        b.receiver.ekt.add(newKey)
        try alice.rekey(newKey)
        for seq in UInt16(7)...12 {
            var p = try b.send(alice, seq: seq)
            let info = try b.receiver.receive(&p)
            #expect(info.ekt.spi == 2 && info.ekt.epoch == 0)
            #expect(info.ekt.newKey == (seq == 7))
        }
        var l = late
        let info = try b.receiver.receive(&l)
        #expect(info.ekt.spi == 1)
        #expect(l == Bench.rtp(ssrc: 0xA, seq: 6))
        #expect(b.receiver.ekt.keys(for: 0xA).map(\.spi) == [2, 1])
        #expect(b.receiver.ekt.knownSPIs == [1, 2])
    }

    @Test("a new master key under the same SPI raises the epoch; a lower epoch is refused")
    func epochs() throws {
        let b = try Bench()
        let alice = try b.sender(ssrc: 0xA)
        var p = try b.send(alice, seq: 1); _ = try b.receiver.receive(&p)
        let epoch0Packet = try b.send(alice, seq: 2)
        try alice.changeMasterKey()
        var q = try b.send(alice, seq: 3)
        let info = try b.receiver.receive(&q)
        #expect(info.ekt.epoch == 1 && info.ekt.newKey)
        // The epoch-0 Full field arriving late is stale; its packet still opens with the kept key.
        var late = epoch0Packet
        let lateInfo = try b.receiver.receive(&late)
        #expect(lateInfo.ekt.epoch == 0)
        #expect(lateInfo.ekt.newKey == false)
    }

    @Test("a receiver joining after the sender's ROC wrapped uses the ROC from the Full field")
    func lateJoinerROC() throws {
        let b = try Bench()
        let alice = try b.sender(ssrc: 0xA, fullEvery: 10)
        var seq: UInt16 = 65500
        var joined = false, opened = 0
        for n in 0..<120 {
            var p = try b.send(alice, seq: seq, outerSeq: UInt16(n))
            seq &+= 1
            guard n >= 60 else { continue }   // the receiver joins after the wrap (SEQ 65535 → 0 at n = 36)
            do {
                let info = try b.receiver.receive(&p)
                if info.ekt.newSource { joined = true }
                opened += 1
            } catch PERCError.noKeyForSource { #expect(!joined) }
        }
        #expect(joined)
        #expect(b.receiver.ekt.stream(for: 0xA)?.rolloverCounter == 1)
        #expect(opened >= 50)
    }

    @Test("replays and garbage are counted by reason")
    func counters() throws {
        let b = try Bench()
        let alice = try b.sender(ssrc: 0xA)
        let p1 = try b.send(alice, seq: 1)
        var a = p1; _ = try b.receiver.receive(&a)
        var replay = p1
        #expect(throws: PERCError.srtp(.replayed(ssrc: 0xA, index: 1001))) { try b.receiver.receive(&replay) }
        var garbage: [UInt8] = [0x80, 0x00, 0x01] + [UInt8](repeating: 7, count: 30) + [0x00]
        #expect(throws: PERCError.self) { try b.receiver.receive(&garbage) }
        var unknownType: [UInt8] = Bench.rtp(ssrc: 1, seq: 1) + [0x05]
        #expect(throws: PERCError.ekt(.unknownMessageType(5))) { try b.receiver.receive(&unknownType) }
        #expect(b.receiver.drops["srtp_replayed"] == 1)
        #expect(b.receiver.drops["ekt_malformed"] == 1)
        #expect(b.receiver.drops.total == 3)
        #expect(b.receiver.accepted == 1)
    }

    @Test("the EKTKey's salt is the E2E master salt and AESKW_256 works too")
    func aeskw256() throws {
        let b = try Bench()
        let key256 = try Bench.makeKey(spi: 5, cipher: .aeskw256)
        b.receiver.ekt.add(key256)
        let alice = try PERCSender(ssrc: 0xA, outerKey: b.senderHop.0, outerSalt: b.senderHop.1, ektKey: key256)
        var p = try b.send(alice, seq: 1)
        let info = try b.receiver.receive(&p)
        #expect(info.ekt.spi == 5)
        #expect(p == Bench.rtp(ssrc: 0xA, seq: 1))
    }

    @Test("every truncation and 3000 mutations of a real datagram give a counted typed error or a valid packet")
    func receivePipelineRobustness() throws {
        let b = try Bench()
        let alice = try b.sender(ssrc: 0xA)
        let wire = try b.send(alice, seq: 1)
        var rng = SplitMix64(seed: 77)
        let inputs = truncations(of: wire) + (0..<3000).map { _ in Mutator.mutate(wire, using: &rng) }
        var refused = 0, accepted = 0
        for input in inputs {
            var p = input
            do { _ = try b.receiver.receive(&p); accepted += 1 } catch { refused += 1; #expect(p == input) }
        }
        #expect(refused + accepted == inputs.count)
        #expect(b.receiver.drops.total == refused)
        #expect(b.receiver.accepted == accepted)
        #expect(accepted <= 1, "only the untouched datagram can be accepted, once")
    }
}
