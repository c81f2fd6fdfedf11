import Archive
import Authority
import EKT
import Export
import Foundation
import Media
import RTPWire
import Testing
import TestSupport

/// Send time of 20 ms packet `i` of a stream that starts at `start` seconds into the conference.
private func audioSendTime(_ i: Int, start: Double = 0) -> Double { conferenceBase + start + 0.020 * Double(i) }

@Suite("Export pipeline: edge cases over synthetic PERC archives")
struct ExportPipelineTests {
    // MARK: 1. Wraparound, reordering, duplicates, loss

    @Test("audio: sequence and timestamp wrap, reordering, duplicates and loss export to exactly the distinct delivered packets")
    func audioWrapReorderDuplicatesLoss() async throws {
        let fixture = try ArchiveFixture()
        let ekt = try makeEKTKey(spi: 5)
        try fixture.addEpoch(ekt)
        let ssrc: UInt32 = 0x5EC0_0001
        let stream = try PERCStream(ssrc: ssrc, payloadType: 111, ektKey: ekt)
        let count = 400                           // 8 s
        let firstSequence = 65_400, firstTimestamp: UInt32 = 0xFFFF_0000
        let opus = try opusPackets(count: count, seed: 11)
        var packetizer = OpusPacketizer(initialTimestamp: firstTimestamp, skipsDTX: false)
        var sent: [SentPacket] = []
        for (i, o) in opus.enumerated() {
            let p = try #require(try packetizer.packetize(o))
            sent.append(try stream.send(sequence: UInt16(truncatingIfNeeded: firstSequence + i), timestamp: p.timestamp,
                                        marker: p.marker, payload: p.payload))
        }
        let sequenceWrap = 65_536 - firstSequence                         // index of sequence number 0
        let timestampWrap = Int((UInt64(1) << 32 - UInt64(firstTimestamp) + 959) / 960)   // first index past the wrap
        #expect(sent[sequenceWrap].sequence == 0 && sent[sequenceWrap - 1].sequence == 65_535)
        #expect(sent[timestampWrap].timestamp < sent[timestampWrap - 1].timestamp)

        // The network: some packets never arrive, some swap places (by 1–3), some arrive twice.
        let lost: Set<Int> = [17, 90, sequenceWrap - 2, sequenceWrap + 5, 250, 251, 252, 333]
        var order = Array(0 ..< count)
        for (a, b) in [(timestampWrap - 1, timestampWrap), (sequenceWrap - 1, sequenceWrap + 1), (sequenceWrap, sequenceWrap + 3),
                       (200, 202), (301, 302), (370, 373)] {
            order.swapAt(a, b)
        }
        order.removeAll { lost.contains($0) }
        let duplicated = [0, timestampWrap, sequenceWrap, 210, count - 1]
        for d in duplicated.reversed() {
            let at = try #require(order.firstIndex(of: d))
            order.insert(d, at: min(order.count, at + 3))
        }
        // Sender reports on the sender's clock (its send times), arrivals 30 ms later, never decreasing.
        try fixture.deliverSenderReport(ssrc: ssrc, wall: audioSendTime(0), rtpTimestamp: firstTimestamp, cname: "carol@pipe",
                                        arrival: audioSendTime(0) + 0.001)
        var arrival = 0.0
        for (j, i) in order.enumerated() {
            arrival = max(arrival + 0.000_5, audioSendTime(i) + 0.030)
            #expect(try fixture.deliver(sent[i], arrival: arrival))
            if j == 250 {
                try fixture.deliverSenderReport(ssrc: ssrc, wall: audioSendTime(250), rtpTimestamp: firstTimestamp &+ 250 * 960,
                                                cname: "carol@pipe", arrival: arrival)
            }
        }
        try fixture.finish()
        #expect(fixture.receiver.drops.total == 0 && fixture.receiver.storedPackets == order.count)

        let (summary, _) = try fixture.export(formats: [.ogg])
        let file = try #require(summary.files.first)
        #expect(summary.files.count == 1 && file.format == .ogg)
        let source = try #require(summary.sources.first { $0.ssrc == ssrc })
        let delivered = (0 ..< count).filter { !lost.contains($0) }
        #expect(source.decryption.opened == delivered.count)
        #expect(source.decryption.authenticationFailed == 0 && source.decryption.noKey == 0 && source.decryption.other.isEmpty)
        #expect(source.decryption.duplicates == duplicated.count)
        #expect(source.lostPackets == lost.count)
        #expect(source.timing == "rtcp-sr")

        // The file: the distinct delivered packets in sequence order, each at its sender's
        // position (index × 960 samples), losses filled with exactly their samples of concealment.
        let packets = try oggAudioPackets(file.path)
        let real = packets.filter { !isConcealment($0) }
        #expect(real == delivered.map { sent[$0].payload })
        let concealed = packets.filter(isConcealment).reduce(0) { $0 + opusSamples($1) }
        #expect(concealed == lost.count * 960)
        var position = 0, next = 0
        for p in packets {
            if !isConcealment(p) {
                #expect(position == delivered[next] * 960, "packet of index \(delivered[next]) at sample \(position)")
                next += 1
            }
            position += opusSamples(p)
        }
        #expect(position == count * 960)
        #expect(abs(file.concealedSeconds - Double(lost.count) * 0.020) < 1e-9)

        let duration = try await checkWithTools(file.path)
        // The last granule position counts every sample written (pre-skip included, opusenc's
        // convention); ffprobe reports it divided by 48 kHz without subtracting the pre-skip.
        let pages = try OggPage.pages(in: try fileBytes(file.path))
        #expect(pages.last?.granulePosition == Int64(count * 960) && pages.last?.flags.contains(.endOfStream) == true)
        let expected = Double(count * 960) / 48_000
        #expect(abs(duration - expected) < 0.001, "ffprobe \(duration) s, expected \(expected) s")
        print("[pipeline] wrap/reorder: \(order.count) delivered (\(delivered.count) distinct), duplicates \(source.decryption.duplicates), "
              + "lost \(source.lostPackets), concealed \(concealed) samples, ffprobe \(duration) s, summary \(file.durationSeconds) s")
    }

    // MARK: 2. ROC anchoring

    @Test("ROC anchoring: packets stored before the wrap, tied to a Full EKT field sent after it, all open")
    func rocAnchoring() async throws {
        let fixture = try ArchiveFixture()
        let ekt = try makeEKTKey(spi: 9)
        try fixture.addEpoch(ekt)
        let ssrc: UInt32 = 0x0A0C_0002
        // Full fields on the first 3 packets, then only every 100th.
        let stream = try PERCStream(ssrc: ssrc, payloadType: 111, ektKey: ekt, fullRepeat: 3, fullEvery: 100)
        let count = 150, firstSequence = 65_500
        let opus = try opusPackets(count: count, seed: 21)
        var packetizer = OpusPacketizer(initialTimestamp: 0x1234_5678, skipsDTX: false)
        var sent: [SentPacket] = []
        for (i, o) in opus.enumerated() {
            let p = try #require(try packetizer.packetize(o))
            sent.append(try stream.send(sequence: UInt16(truncatingIfNeeded: firstSequence + i), timestamp: p.timestamp,
                                        marker: p.marker, payload: p.payload))
        }
        let wrap = 65_536 - firstSequence
        let withFull = sent.indices.filter { sent[$0].hasFullField }
        #expect(Array(withFull.prefix(3)) == [0, 1, 2])
        // The recorder misses the first packets (and their Full fields); the next Full field comes after the wrap.
        let delivered = Array(3 ..< count)
        let firstFullDelivered = try #require(withFull.first { $0 >= 3 })
        #expect(firstFullDelivered > wrap, "the first delivered Full EKT field must come after the sequence wrap")
        for i in delivered { #expect(try fixture.deliver(sent[i], arrival: audioSendTime(i) + 0.02)) }
        try fixture.finish()

        // What the archive holds: one Full field, first seen after the wrap, and every packet
        // (those from before the wrap too) tied to it.
        let fields = try fixture.archive.ektFields(conference: fixture.conference)
        #expect(fields.count == 1 && fields.first?.firstSequence == sent[firstFullDelivered].sequence)
        let stored = try fixture.archive.packets(conference: fixture.conference)
        #expect(stored.count == delivered.count && stored.allSatisfy { $0.tie?.spi == 9 })
        #expect(stored.filter { $0.record.sequence >= UInt16(firstSequence) }.count == wrap - 3)

        let (summary, _) = try fixture.export(formats: [.ogg])
        let source = try #require(summary.sources.first { $0.ssrc == ssrc })
        #expect(source.decryption.authenticationFailed == 0, "failed: \(source.decryption.failedSequences)")
        #expect(source.decryption.opened == delivered.count)
        #expect(source.decryption.noKey == 0 && source.lostPackets == 0)
        let file = try #require(summary.files.first)
        #expect(try oggAudioPackets(file.path).filter { !isConcealment($0) } == delivered.map { sent[$0].payload })
        print("[pipeline] ROC anchoring: \(wrap - 3) packets before the wrap, first delivered Full field at sequence "
              + "\(sent[firstFullDelivered].sequence); opened \(source.decryption.opened)/\(delivered.count), "
              + "authentication failures \(source.decryption.authenticationFailed)")
    }

    // MARK: 3. One participant, two SSRCs

    @Test("a rejoin: two SSRCs of one participant in one file, A by sender reports, B by arrival, ~2 s of concealment between")
    func rejoinTwoSSRCs() async throws {
        let fixture = try ArchiveFixture()
        let ekt = try makeEKTKey(spi: 2)
        try fixture.addEpoch(ekt)
        let a: UInt32 = 0x0000_A11A, b: UInt32 = 0x0000_B11B
        let fingerprint = "sha-256 AB:CD:EF:01:23:45:67:89"
        let delay = 0.005
        fixture.join(sequence: 1, name: "alice", fingerprint: fingerprint, ssrcs: [a], at: conferenceBase)

        // A: 0–4 s, with sender reports at 0 s and 2 s.
        let streamA = try PERCStream(ssrc: a, payloadType: 111, ektKey: ekt)
        let opusA = try opusPackets(count: 200, seed: 31)
        var packetizerA = OpusPacketizer(initialTimestamp: 3_000_000_000, skipsDTX: false)
        for (i, o) in opusA.enumerated() {
            let p = try #require(try packetizerA.packetize(o))
            if i % 100 == 0 {
                try fixture.deliverSenderReport(ssrc: a, wall: audioSendTime(i), rtpTimestamp: p.timestamp, cname: "alice@pipe",
                                                arrival: audioSendTime(i) + delay)
            }
            let packet = try streamA.send(sequence: UInt16(40_000 + i), timestamp: p.timestamp, marker: p.marker, payload: p.payload)
            #expect(try fixture.deliver(packet, arrival: audioSendTime(i) + delay))
        }
        // B: 6–10 s, a new SSRC after a rejoin, no RTCP at all.
        fixture.join(sequence: 2, name: "alice", fingerprint: fingerprint, ssrcs: [b], at: conferenceBase + 5.9)
        let streamB = try PERCStream(ssrc: b, payloadType: 111, ektKey: ekt)
        let opusB = try opusPackets(count: 200, seed: 32)
        var packetizerB = OpusPacketizer(initialTimestamp: 17, skipsDTX: false)
        for (i, o) in opusB.enumerated() {
            let p = try #require(try packetizerB.packetize(o))
            let packet = try streamB.send(sequence: UInt16(900 + i), timestamp: p.timestamp, marker: p.marker, payload: p.payload)
            #expect(try fixture.deliver(packet, arrival: audioSendTime(i, start: 6) + delay))
        }
        try fixture.finish()

        let (summary, _) = try fixture.export(formats: [.ogg])
        #expect(summary.files.count == 1)
        let file = try #require(summary.files.first)
        #expect(file.participant == "alice" && file.path.hasSuffix("_alice_audio.ogg"))
        let sourceA = try #require(summary.sources.first { $0.ssrc == a })
        let sourceB = try #require(summary.sources.first { $0.ssrc == b })
        #expect(sourceA.timing == "rtcp-sr" && sourceB.timing == "arrival")
        #expect(sourceA.participant == "alice" && sourceB.participant == "alice")
        #expect(sourceA.decryption.opened == 200 && sourceB.decryption.opened == 200)
        let note = summary.notes.first { $0.contains(String(format: "%08x", b)) && $0.contains("no RTCP sender report") }
        #expect(note != nil, "notes: \(summary.notes)")
        #expect(!summary.notes.contains { $0.contains(String(format: "%08x", a)) && $0.contains("no RTCP sender report") })

        let packets = try oggAudioPackets(file.path)
        #expect(packets.filter { !isConcealment($0) } == opusA + opusB)
        // Concealment only between A and B: A's end on its sender clock to B's first arrival.
        // (Silent frames repeat byte for byte, so find A's last and B's first packet by count.)
        let realIndexes = packets.indices.filter { !isConcealment(packets[$0]) }
        try #require(realIndexes.count == 400)
        let lastA = realIndexes[199], firstB = realIndexes[200]
        #expect(packets[..<lastA].allSatisfy { !isConcealment($0) })
        let gap = Double(packets[(lastA + 1) ..< firstB].reduce(0) { $0 + opusSamples($1) }) / 48_000
        #expect(packets[(lastA + 1) ..< firstB].allSatisfy(isConcealment))
        let expectedGap = (audioSendTime(0, start: 6) + delay) - audioSendTime(200)
        #expect(abs(gap - expectedGap) <= 120.0 / 48_000, "gap \(gap) s, expected \(expectedGap) s")
        #expect(abs(gap - 2.0) <= 0.020)
        #expect(abs(file.concealedSeconds - gap) < 1e-9)
        let duration = try await checkWithTools(file.path)
        print("[pipeline] rejoin: gap \(gap) s (expected \(expectedGap) s), ffprobe \(duration) s, note: \(note ?? "-")")
    }

    // MARK: 4. Video loss inside a frame

    @Test("video: a packet lost inside an inter frame drops the frames up to the next key frame; the rest are byte-exact")
    func videoLossInsideFrame() async throws {
        let fixture = try ArchiveFixture()
        let ekt = try makeEKTKey(spi: 4)
        try fixture.addEpoch(ekt)
        let ssrc: UInt32 = 0x0B0B_0003
        fixture.join(sequence: 1, name: "bob", fingerprint: "sha-256 01:02:03:04:05:06:07:08", ssrcs: [ssrc], at: conferenceBase)
        let stream = try PERCStream(ssrc: ssrc, payloadType: 96, ektKey: ekt)
        let frames = try vp8Frames(count: 120, keyFrames: [0, 60])
        #expect(frames.filter(\.isKeyFrame).map(\.pts) == [0, 60])
        var packetizer = try VP8Packetizer(maxPayloadSize: 300, firstPictureID: 100)
        var sequence: UInt16 = 65_300          // wraps during the stream
        let firstTimestamp: UInt32 = 0xFFFF_8000
        var sent: [(frame: Int64, packets: [SentPacket])] = []
        for f in frames {
            let ts = firstTimestamp &+ UInt32(f.pts * 3000)
            var group: [SentPacket] = []
            for p in try packetizer.packetize(f) {
                group.append(try stream.send(sequence: sequence, timestamp: ts, marker: p.marker, payload: p.payload))
                sequence &+= 1
            }
            sent.append((f.pts, group))
        }
        // Lose the middle packet of frame 20 (an inter frame of several packets).
        let lossFrame = try #require(sent.firstIndex { $0.frame == 20 })
        #expect(!frames[lossFrame].isKeyFrame && sent[lossFrame].packets.count >= 3, "frame 20: \(sent[lossFrame].packets.count) packets")
        let lostPacket = sent[lossFrame].packets.count / 2
        for (k, group) in sent.enumerated() {
            for (j, packet) in group.packets.enumerated() where !(k == lossFrame && j == lostPacket) {
                #expect(try fixture.deliver(packet, arrival: conferenceBase + Double(group.frame) / 30 + 0.01 + 0.0001 * Double(j)))
            }
        }
        try fixture.finish()

        let (summary, _) = try fixture.export(formats: [.webm])
        let file = try #require(summary.files.first)
        #expect(summary.files.count == 1 && file.format == .webm && file.media == "video")
        let source = try #require(summary.sources.first { $0.ssrc == ssrc })
        #expect(source.lostPackets == 1 && source.decryption.authenticationFailed == 0)
        #expect(source.videoFramesDropped > 0)

        let webm = try readWebM(file.path)
        let video = webm.videoBlocks
        #expect(webm.trackTypes.count == 1 && webm.videoTrack != nil)
        // Expected: everything before the damaged frame and everything from the next key frame on.
        let nextKey = try #require(frames.indices.first { $0 > lossFrame && frames[$0].isKeyFrame })
        let expected = frames.indices.filter { $0 < lossFrame || $0 >= nextKey }
        #expect(video.map(\.block.frame) == expected.map { frames[$0].data })
        #expect(video.first?.block.isKeyFrame == true)
        #expect(video.map(\.block.isKeyFrame) == expected.map { frames[$0].isKeyFrame })
        // Each frame at its capture time (ms, from the RTP timestamps), measured from the first.
        if video.count == expected.count {
            for (block, index) in zip(video, expected) {
                let want = Int64((Double(frames[index].pts) * 1000 / 30).rounded())
                #expect(abs(block.time - video[0].time - want) <= 1, "frame \(index) at \(block.time) ms")
            }
        }
        #expect(file.videoFrames == expected.count && file.keyFrames == 2)
        #expect(source.videoFramesDropped == nextKey - lossFrame)   // the damaged frame and those waiting for the key frame

        _ = try await checkWithTools(file.path)   // ffmpeg, mkvinfo -a (with Cues), ffprobe
        let frameCount = try await runTool("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0",
                                                       "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file.path])
        #expect(Int(frameCount.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == expected.count, "ffprobe: \(frameCount.stdout)")
        print("[pipeline] video: \(frames.count) frames encoded, loss in frame \(lossFrame) (packet \(lostPacket + 1) of "
              + "\(sent[lossFrame].packets.count)), next key \(nextKey), \(video.count) written, dropped reported \(source.videoFramesDropped)")
    }

    // MARK: 5. Authorization

    /// 100 packets under `first`, then a rekey and 100 packets under `second` (if given).
    private func twoEpochConference(_ fixture: ArchiveFixture, first: EKTKeyMessage, second: EKTKeyMessage?) throws -> [[UInt8]] {
        let ssrc: UInt32 = 0x0E0E_0005
        let stream = try PERCStream(ssrc: ssrc, payloadType: 111, ektKey: first)
        let opus = try opusPackets(count: second == nil ? 100 : 200, seed: 51)
        var packetizer = OpusPacketizer(initialTimestamp: 5_000, skipsDTX: false)
        for (i, o) in opus.enumerated() {
            if i == 100, let second { try stream.sender.rekey(try EKTParameterSet(message: second, cipher: .aeskw128)) }
            let p = try #require(try packetizer.packetize(o))
            let packet = try stream.send(sequence: UInt16(7_000 + i), timestamp: p.timestamp, marker: p.marker, payload: p.payload)
            #expect(try fixture.deliver(packet, arrival: audioSendTime(i) + 0.01))
        }
        try fixture.finish()
        return opus
    }

    @Test("a key that opens no epoch is refused before anything is written")
    func wrongAuthorityKey() async throws {
        let fixture = try ArchiveFixture()
        let ekt = try makeEKTKey(spi: 1)
        try fixture.addEpoch(ekt)
        _ = try twoEpochConference(fixture, first: ekt, second: nil)
        let out = fixture.directory + "/refused-output"
        #expect(!FileManager.default.fileExists(atPath: out))
        do {
            _ = try fixture.export(formats: [.ogg, .webm], key: AuthorityPrivateKey(), into: out)
            Issue.record("an unrelated authority key exported the conference")
        } catch {
            guard case let .unauthorized(reason) = error else { Issue.record("expected .unauthorized, got \(error)"); return }
            #expect(reason.contains(fixture.authority.publicKey.keyID), "\(reason)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        // The right key works on the same archive.
        let (summary, _) = try fixture.export(formats: [.ogg], into: out)
        #expect(summary.files.count == 1 && summary.unopenedEpochs.isEmpty)
    }

    @Test("epochs sealed to two authorities: each key opens its own epoch; the other's packets count as no key")
    func twoAuthorities() async throws {
        let first = AuthorityPrivateKey(), second = AuthorityPrivateKey()
        let fixture = try ArchiveFixture(authority: first)
        let ekt1 = try makeEKTKey(spi: 0x0101), ekt2 = try makeEKTKey(spi: 0x0202)
        try fixture.addEpoch(ekt1, sealedTo: first.publicKey)
        try fixture.addEpoch(ekt2, sealedTo: second.publicKey, at: conferenceBase + 2)
        let opus = try twoEpochConference(fixture, first: ekt1, second: ekt2)
        let epochs = try fixture.archive.epochs(conference: fixture.conference)
        #expect(Set(epochs.map(\.spi)) == [0x0101, 0x0202] && Set(epochs.map(\.authorityKeyID)).count == 2)

        for (key, mine, other, payloads) in [(first, UInt16(0x0101), UInt16(0x0202), Array(opus[..<100])),
                                             (second, UInt16(0x0202), UInt16(0x0101), Array(opus[100...]))] {
            let (summary, _) = try fixture.export(formats: [.ogg], key: key)
            let source = try #require(summary.sources.first)
            #expect(source.decryption.opened == 100, "key for SPI \(mine)")
            #expect(source.decryption.noKey == 100, "key for SPI \(mine): \(source.decryption)")
            #expect(source.decryption.authenticationFailed == 0 && source.decryption.other.isEmpty)
            #expect(summary.unopenedEpochs.count == 1 && summary.unopenedEpochs.first?.hasPrefix("SPI \(other):") == true,
                    "\(summary.unopenedEpochs)")
            #expect(summary.unopenedEpochs.first?.contains(key == first ? second.publicKey.keyID : first.publicKey.keyID) == true)
            let file = try #require(summary.files.first)
            #expect(try oggAudioPackets(file.path).filter { !isConcealment($0) } == payloads)
            print("[pipeline] two authorities, key for SPI \(mine): opened \(source.decryption.opened), noKey \(source.decryption.noKey), "
                  + "unopened \(summary.unopenedEpochs)")
        }
    }
}

extension AuthorityPrivateKey {
    fileprivate static func == (a: AuthorityPrivateKey, b: AuthorityPrivateKey) -> Bool { a.publicKey == b.publicKey }
}
