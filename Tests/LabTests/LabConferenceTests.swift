import Foundation
import KeyExchange
@testable import Lab
import Media
import RTPWire
import Testing
import TestSupport

// A real lab conference on loopback: KD and MD servers, three participants sending Opus and
// VP8 through libopus/libvpx, double SRTP with EKT, every hop over UDP or the TLS tunnel.

@Suite("Lab conference over loopback (Opus + VP8)", .serialized)
struct LabConferenceTests {
    @Test("Three participants: each decrypts every other's audio and video end to end, byte for byte; the MD holds no E2E key")
    func threeParticipants() async throws {
        var options = LabConference.Options()
        options.participants = 3
        options.width = 320
        options.height = 180
        options.framesPerSecond = 15
        options.forwardAllVideo = true
        let lab = try LabConference(options: options, recordPayloads: true, log: { _ in })
        try lab.start()
        try await withCleanup({ lab.stop() }) {

        let names = (0 ..< 3).map(LabConference.name(of:))
        let enough = try await eventually(.seconds(20)) {
            let stats = lab.stats()
            return stats.allSatisfy { me in
                me.rtcpReceived >= 2 && stats.filter { $0.name != me.name }.allSatisfy {
                    (me.decryptedBySource[$0.audioSSRC] ?? 0) >= 10 && (me.decryptedBySource[$0.videoSSRC] ?? 0) >= 10
                }
            }
        }
        #expect(enough, "\(lab.stats().map { "\($0.name): \($0.decryptedBySource) drops \($0.drops)" })")

        // Byte for byte: every decrypted packet is what its sender packetized: payload, PT,
        // marker and timestamp (the inner header carries no extension; the level rode outside).
        // Snapshot what was received first: anything in it was sent before, so it is in `sent`.
        let receivedByName = names.map { lab.receivedPackets(of: $0) }
        let sent = lab.sentPackets()
        for (i, name) in names.enumerated() {
            let got = receivedByName[i]
            for j in 0 ..< 3 where j != i {
                for ssrc in [LabConference.audioSSRC(of: j), LabConference.videoSSRC(of: j)] {
                    let received = got[ssrc] ?? [:]
                    #expect(!received.isEmpty, "\(name) got nothing on \(ssrc)")
                    for (seq, p) in received {
                        let original = sent[ssrc]?[seq]
                        #expect(original?.payload == p.payload && original?.marker == p.marker
                                && original?.timestamp == p.timestamp && original?.payloadType == p.payloadType,
                                "\(name) SSRC \(ssrc) seq \(seq)")
                        #expect(p.headerExtension == nil)
                    }
                }
            }
        }

        // The decrypted media is real: Opus packets decode, VP8 frames reassemble and decode,
        // and the decoded picture shows the sender's frame counter.
        let atAlice = lab.receivedPackets(of: names[0])
        let opus = try OpusDecoder(channels: 1)
        let bobAudio = (atAlice[LabConference.audioSSRC(of: 1)] ?? [:]).sorted { $0.key < $1.key }
        #expect(bobAudio.allSatisfy { (try? OpusPayload(parsing: $0.value.payload)) != nil })
        for (_, p) in bobAudio.prefix(20) { #expect(try opus.decode(p.payload).count == 960) }

        let bobVideo = (atAlice[LabConference.videoSSRC(of: 1)] ?? [:]).sorted { $0.key < $1.key }
        var assembler = VP8Depacketizer(waitsForKeyFrame: true)
        let decoder = try VP8Decoder()
        var decoded: [I420Frame] = []
        for (seq, p) in bobVideo {
            for output in assembler.push(sequenceNumber: Int64(seq), marker: p.marker, timestamp: Int64(p.timestamp), payload: p.payload) {
                if case let .frame(frame) = output, let image = try decoder.decode(frame.data) { decoded.append(image) }
            }
        }
        #expect(decoded.count >= 3)
        let video = try SyntheticVideo(width: 320, height: 180, framesPerSecond: 15, seed: 0)
        #expect(decoded.contains { video.readCounter($0) != nil })

        // The Media Distributor's key store: outer keys only.
        let held = Set(lab.md.withCore { $0.heldKeyMaterial.map(\.unsafeCopiedBytes) })
        #expect(!held.isEmpty)
        let secrets = lab.endToEndSecrets()
        #expect(!secrets.isEmpty)
        #expect(held.isDisjoint(with: Set(secrets)))
        #expect(lab.md.withCore { $0.counters.hbhAuthenticationFailures } == 0)
        // SRTCP (SR + SDES every second) crossed the MD hop by hop.
        #expect(lab.md.withCore { $0.counters.rtcpForwarded } > 0)
        #expect(lab.stats().allSatisfy { $0.rtcpReceived > 0 })
        }
    }
}
