import EKT
import RTPWire
import SRTP

/// The media-plane tour behind `percrec demo`: one RTP packet with an EKT field goes
/// sender → Media Distributor → receiver under real keys, and every step is checked and reported.
///
/// The keys stand in for what the key plane (DTLS-SRTP + EKTKey from the Key Distributor) will
/// deliver; each step uses the same code the lab and the recorder use.
public struct MediaPlaneSelfTest {
    public struct Step: Sendable {
        public var actor: String
        public var text: String
        public var ok: Bool
    }

    public private(set) var steps: [Step] = []
    public var passed: Bool { !steps.isEmpty && steps.allSatisfy(\.ok) }

    public init() {}

    private mutating func log(_ actor: String, _ text: String, ok: Bool = true) {
        steps.append(Step(actor: actor, text: text, ok: ok))
    }

    /// Runs the tour. Never throws: a failure becomes a failed step.
    public mutating func run() {
        do { try runSteps() } catch { log("error", "\(error)", ok: false) }
    }

    private mutating func runSteps() throws {
        // Key Distributor: one EKTKey for the conference (RFC 8870 §5.2.2).
        let ektMessage = try EKTKeyMessage(ektKeyValue: SecretBytes(randomCount: 16), srtpMasterSalt: SecretBytes(randomCount: 12),
                                           spi: 1, ttl: 3600)
        let ektKey = try EKTParameterSet(message: ektMessage, cipher: .aeskw128)
        log("key distributor", "EKTKey SPI \(ektMessage.spi), AESKW_128, TTL \(ektMessage.ttl) s, \(ektMessage.serializedSize)-byte ekt_key body")
        // Hop-by-hop keys: sender↔MD and MD↔receiver (independent, RFC 8723 §5.2).
        let senderHop = (SecretBytes(randomCount: 16), SecretBytes(randomCount: 12))
        let receiverHop = (SecretBytes(randomCount: 16), SecretBytes(randomCount: 12))

        // Sender.
        let ssrc: UInt32 = 0x5E4D_0001
        let sender = try PERCSender(ssrc: ssrc, outerKey: senderHop.0, outerSalt: senderHop.1, ektKey: ektKey)
        let level = try RTPAudioLevel(voiceActivity: true, level: 30)
        let rtp = try RTPPacket(marker: true, payloadType: 111, sequenceNumber: 4242, timestamp: 960_000, ssrc: ssrc,
                                headerExtension: try .oneByte([level.element(id: 1)]),
                                payload: Array("percrec self-test: one Opus frame".utf8))
        let plain = rtp.serialized()
        log("sender", "RTP packet: \(plain.count) bytes, SSRC \(hex32(ssrc)), SEQ \(rtp.sequenceNumber), PT \(rtp.payloadType), M=1, audio level −\(level.level) dBov (RFC 6464 extension)")
        var wire = plain
        try sender.protect(&wire)
        let (field, fieldLength) = try EKTField.parse(trailerOf: wire)
        guard case let .full(full) = field else { log("sender", "expected a Full EKT field on the first packet", ok: false); return }
        log("sender", "double SRTP: inner E2E GCM seal (header without extension as AAD) + 16-byte E2E tag, OHB 0x00, outer HBH GCM seal + 16-byte tag")
        log("sender", "appended Full EKT field: \(fieldLength) bytes (SPI \(full.spi), epoch \(full.epoch), \(full.ciphertext.count)-byte AESKW ciphertext of the E2E master key + SSRC + ROC)")
        log("sender", "on the wire: \(wire.count) bytes = \(plain.count) RTP + 16 + 1 + 16 + \(fieldLength) EKT",
            ok: wire.count == plain.count + DoubleSRTPProfile.senderOverhead + fieldLength)
        let keyBytes = sender.currentMasterKey.unsafeCopiedBytes
        log("sender", "E2E master key absent from the datagram", ok: !contains(wire, keyBytes))

        // Media Distributor: hop keys only.
        let relay = DoubleSRTPRelay(
            inbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: senderHop.0, masterSalt: senderHop.1, direction: .inbound),
            outbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: receiverHop.0, masterSalt: receiverHop.1, direction: .outbound))
        let heldSessions = Mirror(reflecting: relay).children.allSatisfy { $0.value is SRTPSession }
        log("media distributor", "holds only hop-by-hop sessions (no E2E key)", ok: heldSessions)
        try relay.forwardPERC(&wire, rewrite: HeaderRewrite(payloadType: 96, sequenceNumber: 17, marker: false))
        log("media distributor", "opened the HBH layer, rewrote PT 111→96, SEQ 4242→17, M 1→0, recorded the originals in the OHB, re-sealed for the next hop; EKT field passed through untouched",
            ok: wire.suffix(fieldLength).elementsEqual(full.serialized()))

        // Receiver.
        let receiver = try PERCReceiver(outerKey: receiverHop.0, outerSalt: receiverHop.1)
        receiver.ekt.add(ektKey)
        var received = wire
        let info = try receiver.receive(&received)
        log("receiver", "outer HBH layer opened; forwarded header PT \(info.outer.outerPayloadType), SEQ \(info.outer.outerSequenceNumber)")
        log("receiver", "\(info.outer.ohb) restores the original header", ok: info.outer.ohb == OriginalHeaderBlock(payloadType: 111, sequenceNumber: 4242, marker: true))
        log("receiver", "EKT: SPI \(info.ekt.spi) found, key unwrapped, SSRC checked, new source created with the sender's ROC", ok: info.ekt.newSource && info.ekt.newKey)
        let expectedInner = try RTPPacket(marker: true, payloadType: 111, sequenceNumber: 4242, timestamp: 960_000, ssrc: ssrc,
                                          payload: rtp.payload).serialized()
        log("receiver", "inner E2E layer opened: \(received.count)-byte RTP packet, payload \"\(String(decoding: received.suffix(rtp.payload.count), as: UTF8.self))\"",
            ok: received == expectedInner)

        // Abuse: replay and tampering.
        var replay = wire
        do { _ = try receiver.receive(&replay); log("receiver", "replayed datagram was accepted", ok: false) } catch {
            log("receiver", "replayed datagram refused: \(error)", ok: error.reason == "srtp_replayed")
        }
        var next = try RTPPacket(payloadType: 111, sequenceNumber: 4243, timestamp: 960_960, ssrc: ssrc, payload: rtp.payload).serialized()
        try sender.protect(&next)
        try relay.forwardPERC(&next, rewrite: HeaderRewrite(payloadType: 96, sequenceNumber: 18))
        var tampered = next
        tampered[14] ^= 0x01
        do { _ = try receiver.receive(&tampered); log("receiver", "tampered datagram was accepted", ok: false) } catch {
            log("receiver", "tampered datagram refused: \(error)", ok: error.reason == "srtp_auth_failed")
        }
        _ = try receiver.receive(&next)
        log("receiver", "next genuine packet still accepted; drop counters: \(receiver.drops)", ok: receiver.accepted == 2 && receiver.drops.total == 2)
    }

    private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
        return false
    }

    private func hex32(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - s.count) + s
    }
}
