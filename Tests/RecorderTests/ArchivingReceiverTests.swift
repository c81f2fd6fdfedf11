import Archive
import Authority
import EKT
import Foundation
import Recorder
import RTPWire
import SRTP
import Testing
import TestSupport

/// Builds what a Media Distributor sends a recorder: a participant's double-SRTP packets with
/// EKT fields, re-sealed on the MD→recorder hop.
struct HopFixture {
    let ektKey: EKTKeyMessage
    let sender: PERCSender
    let relay: DoubleSRTPRelay
    let recorderHopKey = SecretBytes(randomCount: 16), recorderHopSalt = SecretBytes(randomCount: 12)
    var sequence: UInt16 = 100
    var outerSequence: UInt16 = 7

    init(ssrc: UInt32 = 0xCAFE_0001, spi: UInt16 = 3) throws {
        ektKey = try EKTKeyMessage(ektKeyValue: SecretBytes(randomCount: 16), srtpMasterSalt: SecretBytes(randomCount: 12), spi: spi, ttl: 600)
        let senderHopKey = SecretBytes(randomCount: 16), senderHopSalt = SecretBytes(randomCount: 12)
        sender = try PERCSender(ssrc: ssrc, outerKey: senderHopKey, outerSalt: senderHopSalt,
                                ektKey: try EKTParameterSet(message: ektKey, cipher: .aeskw128))
        relay = DoubleSRTPRelay(
            inbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: senderHopKey, masterSalt: senderHopSalt, direction: .inbound),
            outbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: recorderHopKey, masterSalt: recorderHopSalt, direction: .outbound))
    }

    /// The next datagram to the recorder, and the plaintext RTP packet inside it.
    mutating func next(payloadSize: Int = 80) throws -> (datagram: [UInt8], plain: [UInt8]) {
        let plain = try RTPPacket(payloadType: 111, sequenceNumber: sequence, timestamp: UInt32(sequence) * 960, ssrc: sender.ssrc,
                              payload: (0 ..< payloadSize).map { UInt8(truncatingIfNeeded: $0 &+ Int(sequence)) }).serialized()
        var bytes = plain
        try sender.protect(&bytes)
        try relay.forwardPERC(&bytes, rewrite: HeaderRewrite(sequenceNumber: outerSequence))
        sequence &+= 1
        outerSequence &+= 1
        return (bytes, plain)
    }
}

@Suite("Recorder receive path: what is stored and what is refused")
struct ArchivingReceiverTests {
    func make() throws -> (Archive, SegmentWriter, ArchivingReceiver, HopFixture) {
        let archive = try Archive(path: makeTemporaryDirectory("recv") + "/a.sqlite")
        let writer = try SegmentWriter(archive: archive, conference: "c", origin: .live(recorder: "test"), authorityKeyID: "k")
        let fixture = try HopFixture()
        let receiver = try ArchivingReceiver(writer: writer, outerKey: fixture.recorderHopKey, outerSalt: fixture.recorderHopSalt)
        return (archive, writer, receiver, fixture)
    }

    @Test("valid datagrams are stored as inner packets that the E2E key opens to the sent packet")
    func storesInnerPackets() throws {
        var (archive, writer, receiver, fixture) = try make()
        var plains: [[UInt8]] = []
        for _ in 0 ..< 60 {
            var (d, plain) = try fixture.next()
            plains.append(plain)
            #expect(d.withUnsafeMutableBytes { receiver.receive($0, arrival: 1000) })
        }
        try writer.finish(reason: "test")
        let stored = try archive.packets(conference: "c")
        #expect(stored.count == 60 && receiver.drops.total == 0)
        #expect(stored.allSatisfy { $0.tie?.spi == 3 })
        #expect(stored.map(\.record.sequence) == (0 ..< 60).map { UInt16(100 + $0) })
        // Open the stored bytes end to end with an independent receiver fed the stored Full field.
        let e2e = EKTReceiver()
        try e2e.add(fixture.ektKey, cipher: .aeskw128)
        let field = try #require(try archive.ektFields(conference: "c").first)
        for (i, p) in stored.enumerated() {
            var bytes = p.data
            let ektField = i == 0 ? try EKTField.parse(trailerOf: field.field).field : .short
            let n = try bytes.withUnsafeMutableBytes { raw throws(PERCError) in try e2e.open(raw, field: ektField).length }
            #expect(Array(bytes.prefix(n)) == plains[i])
        }
    }

    @Test("garbage, replays, forged tags, bad EKT fields and non-media are counted by reason and never stored")
    func refusals() throws {
        var (archive, writer, receiver, fixture) = try make()
        for _ in 0 ..< 3 { _ = try fixture.next() }   // the first packets carry Full EKT fields
        var good = try fixture.next().datagram
        #expect(good.last == 0x00, "expected a Short EKT field")
        let copy = good
        #expect(good.withUnsafeMutableBytes { receiver.receive($0, arrival: 1) })
        var replay = copy
        #expect(!replay.withUnsafeMutableBytes { receiver.receive($0, arrival: 2) })
        var forgedTag = try fixture.next().datagram
        forgedTag[forgedTag.count - 5] ^= 0x40      // inside the outer tag
        var forgedBody = try fixture.next().datagram
        forgedBody[20] ^= 0x01                      // hop-encrypted byte
        var badEKT = try fixture.next().datagram
        badEKT[badEKT.count - 1] = 0x05             // unknown EKT message type
        let stun: [UInt8] = [0x00, 0x01, 0x00, 0x00] + [UInt8](repeating: 0x21, count: 16)
        var rng = SplitMix64(seed: 42)
        let randomRTP: [UInt8] = [0x80, 0x6F] + rng.bytes(120) + [0x00]
        for var d in [forgedTag, forgedBody, badEKT, stun, [0xFF, 0xFE, 0xFD], [], randomRTP] {
            #expect(!d.withUnsafeMutableBytes { receiver.receive($0, arrival: 3) })
        }
        try writer.finish(reason: "test")
        #expect(try archive.packets(conference: "c").count == 1)
        #expect(receiver.drops[.replay] == 1)
        #expect(receiver.drops[.malformedEKTField] == 1)
        #expect(receiver.drops[.notRTPOrRTCP] == 3)
        #expect(receiver.drops[.hopAuthenticationFailed] == 3)
        #expect(receiver.drops.total == 8)
        // The counters reach the archive.
        let w2 = try SegmentWriter(archive: archive, conference: "c", origin: .live(recorder: "test"), authorityKeyID: "k")
        w2.setDropCounters(receiver.drops.byName)
        try w2.finish(reason: "test")
        #expect(try archive.inspect(conference: "c").segments.last?.drops["replay"] == 1)
    }

    @Test("a forged Full EKT field (passes the hop, fails the key wrap) is refused; the packet is kept")
    func forgedEKTField() throws {
        var (archive, writer, receiver, fixture) = try make()
        receiver.addEKTKey(fixture.ektKey, cipher: .aeskw128)
        var first = try fixture.next().datagram
        // The Full field trails the hop tag, outside its authentication: an MD can change it.
        first[first.count - 20] ^= 0x01
        #expect(first.withUnsafeMutableBytes { receiver.receive($0, arrival: 1) })
        var second = try fixture.next().datagram   // a genuine Full field
        #expect(second.withUnsafeMutableBytes { receiver.receive($0, arrival: 2) })
        try writer.finish(reason: "test")
        #expect(receiver.drops[.invalidEKTField] == 1)
        let fields = try archive.ektFields(conference: "c")
        #expect(fields.count == 1)
        let stored = try archive.packets(conference: "c")
        #expect(stored.count == 2 && stored.allSatisfy { $0.tie != nil })
        // The stored field is the genuine one: it opens the packets.
        let e2e = EKTReceiver()
        try e2e.add(fixture.ektKey, cipher: .aeskw128)
        var bytes = stored[0].data
        let genuine = try EKTField.parse(trailerOf: fields[0].field).field
        let opened = try bytes.withUnsafeMutableBytes { raw throws(PERCError) in try e2e.open(raw, field: genuine).length }
        #expect(opened > 12)
    }

    @Test("1000 seeded mutations of valid datagrams never crash and never store a changed packet")
    func mutations() throws {
        var (archive, writer, receiver, fixture) = try make()
        receiver.addEKTKey(fixture.ektKey, cipher: .aeskw128)
        var rng = SplitMix64(seed: 7)
        // The inner packet each genuine datagram holds, opened on the hop independently.
        let hop = try DoubleSRTPReceiver(profile: .doubleAeadAes128Gcm, outerKey: fixture.recorderHopKey, outerSalt: fixture.recorderHopSalt)
        var genuine: Set<[UInt8]> = []
        var accepted = 0
        for _ in 0 ..< 1000 {
            let (d, _) = try fixture.next(payloadSize: 40)
            var inner = Array(d.dropLast(try EKTField.parse(trailerOf: d).length))
            _ = try hop.openOuter(&inner)
            genuine.insert(inner)
            var m = Mutator.mutate(d, using: &rng)
            if m.withUnsafeMutableBytes({ receiver.receive($0, arrival: 5) }) { accepted += 1 }
        }
        try writer.finish(reason: "test")
        let stored = try archive.packets(conference: "c")
        // Whatever was stored passed the hop tag: it is exactly a genuine inner packet, and every
        // stored EKT field passed the key wrap check.
        #expect(stored.count == accepted && accepted > 0)
        #expect(stored.allSatisfy { genuine.contains($0.data) })
        for f in try archive.ektFields(conference: "c") {
            guard case let .full(full) = try EKTField.parse(trailerOf: f.field).field else { Issue.record("stored a non-Full field"); continue }
            #expect(try EKTParameterSet(message: fixture.ektKey, cipher: .aeskw128).verifies(full, ssrc: f.ssrc))
        }
    }
}
