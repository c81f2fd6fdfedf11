import Testing
import TestSupport
@testable import SRTP

@Suite("Double SRTP (RFC 8723)")
struct DoubleSRTPTests {
    // test-vectors.md §9 (self-computed from our reading of RFC 8723; no public vector exists).
    static let masterKey = "101112131415161718191a1b1c1d1e1f000102030405060708090a0b0c0d0e0f"
    static let masterSalt = "b0b1b2b3b4b5b6b7b8b9babba0a1a2a3a4a5a6a7a8a9aaab"
    static let plain = "800f1234decafbadcafebabe" + String(repeating: "ab", count: 16)
    static let senderPacket = "800f1234decafbadcafebabe9226540a3aa9a5e8a75d1fd2ecd1bee707e9d7cc8d91809e76f682c9868c1f8e778c0cb753cd4a1ae54e73393c728ad59f"
    static let forwardedPacket = "80a05678decafbadcafebabe88cd28307e69b5de6e26fc051aacdf4966323fca1aeb59f93d49372b53fe05bfde544bf37e2eb705ddec255064c1463497530f9e"

    static func split() throws -> DoubleMasterKey {
        try DoubleMasterKey(profile: .doubleAeadAes128Gcm, key: secret(masterKey), salt: secret(masterSalt))
    }

    @Test("regression vector §9: the sender's packet")
    func senderVector() throws {
        let sender = try DoubleSRTPSender(key: try Self.split())
        var p = hex(Self.plain)
        try sender.protect(&p)
        #expect(p.count == 61)
        #expect(p == hex(Self.senderPacket))
    }

    @Test("regression vector §9: the MD rewrite to M=1, PT=0x20, SEQ=5678 with OHB 0f 1234 07")
    func relayVector() throws {
        let key = try Self.split()
        let relay = DoubleSRTPRelay(
            inbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: key.outerKey, masterSalt: key.outerSalt, direction: .inbound),
            outbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: secret("202122232425262728292a2b2c2d2e2f"),
                                      masterSalt: secret("c0c1c2c3c4c5c6c7c8c9cacb"), direction: .outbound))
        var p = hex(Self.senderPacket)
        try relay.forward(&p, rewrite: HeaderRewrite(payloadType: 0x20, sequenceNumber: 0x5678, marker: true))
        #expect(p == hex(Self.forwardedPacket))
    }

    @Test("regression vector §9: the receiver restores 800f1234… and opens the inner layer")
    func receiverVector() throws {
        let rx = try DoubleSRTPReceiver(profile: .doubleAeadAes128Gcm, outerKey: secret("202122232425262728292a2b2c2d2e2f"),
                                        outerSalt: secret("c0c1c2c3c4c5c6c7c8c9cacb"))
        var p = hex(Self.forwardedPacket)
        let info = try rx.openOuter(&p)
        #expect(info.ohb == OriginalHeaderBlock(payloadType: 0x0f, sequenceNumber: 0x1234, marker: false))
        #expect(info.outerSequenceNumber == 0x5678 && info.outerPayloadType == 0x20 && info.outerMarker)
        #expect(Array(p.prefix(12)) == hex("800f1234decafbadcafebabe"))
        let key = try Self.split()
        let inner = try SRTPSession(profile: .aeadAes128Gcm, masterKey: key.innerKey, masterSalt: key.innerSalt, direction: .inbound)
        try inner.unprotect(&p)
        #expect(p == hex(Self.plain))
    }

    /// A sender, a chain of Media Distributor hops and a receiver, all with fresh random keys.
    struct Conference {
        let profile: DoubleSRTPProfile
        let sender: DoubleSRTPSender
        let innerKey: SecretBytes, innerSalt: SecretBytes
        var hops: [DoubleSRTPRelay] = []
        let receiver: DoubleSRTPReceiver
        let innerReceiver: SRTPSession
        let hopKeys: [(SecretBytes, SecretBytes)]

        init(profile: DoubleSRTPProfile = .doubleAeadAes128Gcm, mdCount: Int = 1) throws {
            self.profile = profile
            let lp = profile.layerProfile
            innerKey = SecretBytes(randomCount: lp.masterKeyLength); innerSalt = SecretBytes(randomCount: 12)
            let hopKeys = (0...mdCount).map { _ in (SecretBytes(randomCount: lp.masterKeyLength), SecretBytes(randomCount: 12)) }
            self.hopKeys = hopKeys
            sender = try DoubleSRTPSender(profile: profile, innerKey: innerKey, innerSalt: innerSalt,
                                          outerKey: hopKeys[0].0, outerSalt: hopKeys[0].1)
            for i in 0..<mdCount {
                hops.append(DoubleSRTPRelay(
                    inbound: try SRTPSession(profile: lp, masterKey: hopKeys[i].0, masterSalt: hopKeys[i].1, direction: .inbound),
                    outbound: try SRTPSession(profile: lp, masterKey: hopKeys[i + 1].0, masterSalt: hopKeys[i + 1].1, direction: .outbound)))
            }
            let last = hopKeys[mdCount]
            receiver = try DoubleSRTPReceiver(profile: profile, outerKey: last.0, outerSalt: last.1)
            innerReceiver = try SRTPSession(profile: lp, masterKey: innerKey, masterSalt: innerSalt, direction: .inbound)
        }

        func receive(_ packet: [UInt8]) throws(SRTPError) -> (plain: [UInt8], info: OuterLayerInfo) {
            var p = packet
            let info = try receiver.openOuter(&p)
            try innerReceiver.unprotect(&p)
            return (p, info)
        }
    }

    /// Every OHB case: each subset of {PT, SEQ, M} changed by the MD.
    @Test("round-trips through an MD rewrite for every OHB config", arguments: 0..<8)
    func everyOHBCase(mask: Int) throws {
        for profile in DoubleSRTPProfile.allCases {
            let conf = try Conference(profile: profile)
            var rng = SplitMix64(seed: UInt64(mask) + 100)
            let firstSeq = UInt16.random(in: 0...65535, using: &rng)
            for marker in [false, true] {
                let seq = firstSeq &+ (marker ? 1 : 0)
                var original = randomRTPPacket(ssrc: 0xFEEDFACE ^ UInt32(mask), seq: seq, rng: &rng)
                original[1] = (original[1] & 0x7F) | (marker ? 0x80 : 0)
                let originalPT = original[1] & 0x7F
                var p = original
                try conf.sender.protect(&p)
                let rewrite = HeaderRewrite(payloadType: mask & 2 != 0 ? (originalPT ^ 0x15) & 0x7F : nil,
                                            sequenceNumber: mask & 1 != 0 ? seq &+ 777 : nil,
                                            marker: mask & 4 != 0 ? !marker : nil)
                try conf.hops[0].forward(&p, rewrite: rewrite)
                let (plain, info) = try conf.receive(p)
                #expect(info.ohb.config & 0x07 == UInt8(mask), "config \(info.ohb)")
                if mask & 4 != 0 { #expect(info.ohb.marker == marker) }
                // The inner packet is the original header (X cleared, extension removed) plus the original payload.
                let layout = try RTPWireLayout(original)
                #expect(Array(plain[0..<layout.base]) == clearX(Array(original[0..<layout.base])))
                #expect(Array(plain[layout.base...]) == Array(original[layout.header...]))
            }
        }
    }

    @Test("a second MD keeps the first MD's originals and drops entries restored to the original")
    func chainedRelays() throws {
        let conf = try Conference(mdCount: 2)
        var rng = SplitMix64(seed: 42)
        let original = randomRTPPacket(ssrc: 77, seq: 1000, rng: &rng)
        let pt = original[1] & 0x7F
        var p = original
        try conf.sender.protect(&p)
        try conf.hops[0].forward(&p, rewrite: HeaderRewrite(payloadType: (pt + 1) & 0x7F, sequenceNumber: 2000))
        try conf.hops[1].forward(&p, rewrite: HeaderRewrite(payloadType: pt, sequenceNumber: 3000))
        let (plain, info) = try conf.receive(p)
        #expect(info.ohb == OriginalHeaderBlock(payloadType: nil, sequenceNumber: 1000, marker: nil))
        #expect(info.outerSequenceNumber == 3000)
        #expect(plain[2] == 0x03 && plain[3] == 0xE8)   // SEQ 1000 restored
    }

    @Test("changing any byte of the packet on the wire makes the outer layer fail")
    func outerTamper() throws {
        let conf = try Conference()
        var rng = SplitMix64(seed: 5)
        var p = randomRTPPacket(ssrc: 1234, seq: 1, rng: &rng)
        try conf.sender.protect(&p)
        try conf.hops[0].forward(&p, rewrite: HeaderRewrite(sequenceNumber: 9))
        for i in 0..<p.count {
            var q = p
            q[i] ^= 0x04
            #expect(throws: (any Error).self, "byte \(i)") { try conf.receive(q) }
        }
        #expect(conf.receiver.outer.streamCount == 0)
        _ = try conf.receive(p)   // the untouched packet still works: nothing above changed state
    }

    @Test("an MD holding the hop keys cannot change any E2E-protected byte unnoticed")
    func innerTamper() throws {
        let conf = try Conference()
        var rng = SplitMix64(seed: 6)
        var header = Array(randomRTPPacket(ssrc: 4321, seq: 50, rng: &rng).prefix(12))
        header[0] = 0x82   // two CSRCs, no extension, no padding: every byte is E2E protected
        let original = header + rng.bytes(8) + rng.bytes(40)
        var p = original
        try conf.sender.protect(&p)
        var opened = p
        try conf.hops[0].inbound.unprotect(&opened)   // what the MD sees: header ‖ Cinner ‖ inner tag ‖ OHB
        let lp = conf.profile.layerProfile
        var outerPassed = 0
        for i in 0..<opened.count - 1 {
            var evil = opened
            evil[i] ^= 0x01
            // The MD re-seals with its real hop key, so the outer layer authenticates.
            let md = try SRTPSession(profile: lp, masterKey: conf.hopKeys[1].0, masterSalt: conf.hopKeys[1].1, direction: .outbound)
            guard (try? md.protect(&evil)) != nil else { continue }
            let rx = try DoubleSRTPReceiver(profile: conf.profile, outerKey: conf.hopKeys[1].0, outerSalt: conf.hopKeys[1].1)
            let inner = try SRTPSession(profile: lp, masterKey: conf.innerKey, masterSalt: conf.innerSalt, direction: .inbound)
            guard (try? rx.openOuter(&evil)) != nil else { continue }
            outerPassed += 1
            #expect(throws: SRTPError.self, "byte \(i)") { try inner.unprotect(&evil) }
            #expect(inner.streamCount == 0)
        }
        // Only the version bits of byte 0 can make the MD's own seal refuse; everything else reached the inner check.
        #expect(outerPassed == opened.count - 1)
    }

    @Test("the MD's relay object holds hop-by-hop sessions only")
    func relayHoldsNoInnerKey() throws {
        let conf = try Conference()
        let relay = conf.hops[0]
        let children = Mirror(reflecting: relay).children.map { $0.value }
        #expect(children.count == 2)
        #expect(children.allSatisfy { $0 is SRTPSession })
        // And it relays without ever being given the inner key.
        var rng = SplitMix64(seed: 12)
        let original = randomRTPPacket(ssrc: 99, seq: 7, rng: &rng)
        var p = original
        try conf.sender.protect(&p)
        try relay.forward(&p, rewrite: HeaderRewrite(sequenceNumber: 8))
        _ = try conf.receive(p)
    }

    @Test("inner and outer layers keep separate ROC and replay state")
    func separateState() throws {
        let conf = try Conference()
        var rng = SplitMix64(seed: 13)
        var outerSeq: UInt16 = 100
        for seq in UInt16(65530)...UInt16(65535) {
            var p = randomRTPPacket(ssrc: 3, seq: seq, rng: &rng)
            try conf.sender.protect(&p)
            try conf.hops[0].forward(&p, rewrite: HeaderRewrite(sequenceNumber: outerSeq)); outerSeq += 1
            _ = try conf.receive(p)
        }
        for seq in UInt16(0)...UInt16(4) {   // the sender wraps; the MD's sequence does not
            var p = randomRTPPacket(ssrc: 3, seq: seq, rng: &rng)
            try conf.sender.protect(&p)
            try conf.hops[0].forward(&p, rewrite: HeaderRewrite(sequenceNumber: outerSeq)); outerSeq += 1
            _ = try conf.receive(p)
        }
        #expect(conf.innerReceiver.stream(for: 3)?.rolloverCounter == 1)
        #expect(conf.receiver.outer.stream(for: 3)?.rolloverCounter == 0)
        #expect(conf.receiver.outer.stream(for: 3)?.highestSequence == 110)
        #expect(conf.innerReceiver.stream(for: 3)?.highestSequence == 4)
    }

    @Test("replaying a forwarded packet is refused by the outer layer without state change")
    func replay() throws {
        let conf = try Conference()
        var rng = SplitMix64(seed: 14)
        var p = randomRTPPacket(ssrc: 8, seq: 1, rng: &rng)
        try conf.sender.protect(&p)
        try conf.hops[0].forward(&p, rewrite: .none)
        _ = try conf.receive(p)
        let window = conf.receiver.outer.stream(for: 8)?.replay
        #expect(throws: SRTPError.replayed(ssrc: 8, index: 1)) { try conf.receive(p) }
        #expect(conf.receiver.outer.stream(for: 8)?.replay == window)
    }

    @Test("the OHB parser accepts exactly the valid configs", arguments: 0...255)
    func ohbConfigs(config: Int) {
        let c = UInt8(config)
        let valid = c & 0xF0 == 0 && c & 0x0C != 0x08
        let bytes: [UInt8] = (c & 0x02 != 0 ? [0x11] : []) + (c & 0x01 != 0 ? [0x12, 0x34] : []) + [c]
        let parsed = try? OriginalHeaderBlock(parsing: bytes)
        #expect((parsed != nil) == valid)
        if let p = parsed { #expect(p.serialized() == bytes) }
    }

    @Test("the OHB parser survives every truncation and random mutation")
    func ohbRobustness() {
        var rng = SplitMix64(seed: 15)
        let valid = [OriginalHeaderBlock.empty, OriginalHeaderBlock(payloadType: 0x0f, sequenceNumber: 0x1234, marker: true),
                     OriginalHeaderBlock(sequenceNumber: 7), OriginalHeaderBlock(payloadType: 96, marker: false)].map { $0.serialized() }
        let inputs = valid.flatMap { truncations(of: $0) } + valid.flatMap { v in (0..<1000).map { _ in Mutator.mutate(v, using: &rng) } }
            + (0..<2000).map { _ in rng.bytes(Int.random(in: 0...6, using: &rng)) }
        for bytes in inputs {
            do {
                let ohb = try OriginalHeaderBlock(parsing: bytes)
                #expect(ohb.serialized() == bytes)
            } catch {
                switch error {
                case .invalidOHB, .packetTooShort: break
                default: Issue.record("unexpected error \(error)")
                }
            }
        }
    }
}

// MARK: helpers

struct RTPWireLayout {
    let base: Int, header: Int
    init(_ p: [UInt8]) throws {
        base = 12 + 4 * Int(p[0] & 0x0F)
        header = p[0] & 0x10 != 0 ? base + 4 + 4 * (Int(p[base + 2]) << 8 | Int(p[base + 3])) : base
    }
}

func clearX(_ h: [UInt8]) -> [UInt8] { var h = h; h[0] &= ~0x10; return h }

