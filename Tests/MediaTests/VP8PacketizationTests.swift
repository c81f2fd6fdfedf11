import Media
import RTPWire
import Testing
import TestSupport

@Suite("VP8 packetizer and frame assembler (RFC 7741 §4)")
struct VP8PacketizationTests {
    typealias Packet = Fixtures.Packet

    /// Runs packets through a fresh depacketizer and splits the output.
    private func assemble(_ packets: [Packet], waitsForKeyFrame: Bool = true)
        -> (frames: [VP8AssembledFrame], losses: [VP8FrameLoss]) {
        var depacketizer = VP8Depacketizer(waitsForKeyFrame: waitsForKeyFrame)
        var outputs: [VP8DepacketizerOutput] = []
        for p in packets {
            outputs += depacketizer.push(sequenceNumber: p.sequenceNumber, marker: p.marker, timestamp: p.timestamp, payload: p.payload)
        }
        outputs += depacketizer.finish()
        var frames: [VP8AssembledFrame] = [], losses: [VP8FrameLoss] = []
        for output in outputs {
            switch output {
            case let .frame(f): frames.append(f)
            case let .loss(l): losses.append(l)
            }
        }
        return (frames, losses)
    }

    @Test("splits every frame into payloads within the MTU: S only on the first, marker only on the last, one PictureID per frame")
    func packetizerLayout() throws {
        let clip = try Fixtures.vp8Clip.get()
        let packets = try Fixtures.packets(clip, maxPayloadSize: 300)
        #expect(packets.count > 2 * clip.frames.count)   // fragmentation really happened
        var expectedPictureID = Descriptor.PictureID.long(0x7FF0)
        for index in clip.frames.indices {
            let group = packets.filter { $0.frameIndex == index }
            let sizes = group.map(\.payload.count)
            #expect(sizes.allSatisfy { $0 <= 300 })
            #expect((sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1, "fragments are balanced")
            for (position, packet) in group.enumerated() {
                let (d, length) = try Descriptor.parse(packet.payload)
                #expect(length == 4)
                #expect(d.startOfPartition == (position == 0) && d.partitionIndex == 0)
                #expect(d.pictureID == expectedPictureID)
                #expect(packet.marker == (position == group.count - 1))
            }
            expectedPictureID = expectedPictureID.next   // wraps 0x7FFF → 0 inside the clip
        }
        #expect(throws: MediaError.self) { try VP8Packetizer(maxPayloadSize: 4) }
        var packetizer = try VP8Packetizer()
        #expect(throws: MediaError.self) { try packetizer.packetize([]) }
    }

    @Test("frames come back byte-identical through RTP packets whose sequence numbers wrap")
    func lossless() throws {
        let clip = try Fixtures.vp8Clip.get()
        let packets = try Fixtures.packets(clip, maxPayloadSize: 300)
        // Through real RTP packets: sequence numbers start near 65535, timestamps near 2³².
        var seqUnwrapper = SequenceUnwrapper(), tsUnwrapper = TimestampUnwrapper()
        var rebuilt: [Packet] = []
        for p in packets {
            let rtp = try RTPPacket(marker: p.marker, payloadType: 96, sequenceNumber: UInt16(truncatingIfNeeded: p.sequenceNumber + 64_000),
                                    timestamp: UInt32(truncatingIfNeeded: p.timestamp + 0xFFFF_0000), ssrc: 0xCAFE, payload: p.payload)
            let parsed = try RTPPacket(parsing: rtp.serialized())
            rebuilt.append(Packet(sequenceNumber: seqUnwrapper.unwrap(parsed.sequenceNumber), marker: parsed.marker,
                                  timestamp: tsUnwrapper.unwrap(parsed.timestamp), payload: parsed.payload, frameIndex: p.frameIndex))
        }
        let (frames, losses) = assemble(rebuilt)
        #expect(losses.isEmpty)
        #expect(frames.map(\.data) == clip.frames.map(\.data))
        #expect(frames.map(\.isKeyFrame) == clip.frames.map(\.isKeyFrame))
        #expect(frames.first?.header.width == 320)
        // Decodable: the reassembled stream decodes frame for frame.
        let decoder = try VP8Decoder()
        for frame in frames { #expect(try decoder.decode(frame.data) != nil) }
    }

    @Test("a dropped middle packet loses its frame and, while waiting for a key frame, every delta frame until one")
    func dropMiddlePacket() throws {
        let clip = try Fixtures.vp8Clip.get()
        var packets = try Fixtures.packets(clip, maxPayloadSize: 300)
        let hit = 5
        let inFrame = packets.indices.filter { packets[$0].frameIndex == hit }
        #expect(inFrame.count >= 3)
        let dropped = packets.remove(at: inFrame[1])
        let (frames, losses) = assemble(packets)
        let delivered = frames.map { Int($0.timestamp / 3000) }
        #expect(delivered == Array(0 ..< hit) + Array(Fixtures.forcedKeyFrame ..< clip.frames.count))
        for frame in frames { #expect(frame.data == clip.frames[Int(frame.timestamp / 3000)].data) }
        #expect(losses.first == VP8FrameLoss(reason: .missingPackets(count: 1), timestamp: Int64(hit) * 3000,
                                              sequenceNumbers: dropped.sequenceNumber ... dropped.sequenceNumber))
        let waiting = losses.dropFirst()
        #expect(waiting.allSatisfy { $0.reason == .waitingForKeyFrame })
        #expect(waiting.compactMap(\.timestamp) == (hit + 1 ..< Fixtures.forcedKeyFrame).map { Int64($0) * 3000 })
    }

    @Test("without waiting for key frames, only the damaged frame is lost")
    func dropWithoutWaiting() throws {
        let clip = try Fixtures.vp8Clip.get()
        var packets = try Fixtures.packets(clip, maxPayloadSize: 300)
        let index = try #require(packets.firstIndex { $0.frameIndex == 7 && !$0.marker })
        packets.remove(at: index + 1)
        let (frames, losses) = assemble(packets, waitsForKeyFrame: false)
        #expect(frames.count == clip.frames.count - 1)
        #expect(!frames.contains { $0.timestamp == 7 * 3000 })
        #expect(losses.count == 1 && losses.first?.timestamp == Int64(7 * 3000))
    }

    @Test("losing a frame's first packet or its marker packet is reported once, with no partial frame", arguments: [true, false])
    func dropFirstOrLast(first: Bool) throws {
        let clip = try Fixtures.vp8Clip.get()
        var packets = try Fixtures.packets(clip, maxPayloadSize: 300)
        let group = packets.indices.filter { packets[$0].frameIndex == 25 }
        packets.remove(at: first ? group[0] : group[group.count - 1])
        let (frames, losses) = assemble(packets)
        #expect(frames.map { Int($0.timestamp / 3000) } == Array(0 ..< 25))
        for frame in frames { #expect(frame.data == clip.frames[Int(frame.timestamp / 3000)].data) }
        // One report for frame 25, then the delta frames after it wait for a key frame.
        #expect(losses.first?.timestamp == Int64(25 * 3000))
        if case .missingPackets(count: 1) = losses.first?.reason {} else { Issue.record("got \(String(describing: losses.first))") }
        #expect(losses.dropFirst().allSatisfy { $0.reason == .waitingForKeyFrame })
        #expect(losses.count == clip.frames.count - 25)
    }

    @Test("a whole missing frame is detected from the PictureID jump; a lost padding packet between frames is harmless")
    func gapsBetweenFrames() throws {
        let clip = try Fixtures.vp8Clip.get()
        let packets = try Fixtures.packets(clip, maxPayloadSize: 300)
        // Whole frame 3 gone.
        let (frames, losses) = assemble(packets.filter { $0.frameIndex != 3 })
        #expect(frames.map { Int($0.timestamp / 3000) } == Array(0 ..< 3) + Array(Fixtures.forcedKeyFrame ..< clip.frames.count))
        #expect(losses.first?.timestamp == Int64(4 * 3000))
        if case .missingPackets = losses.first?.reason {} else { Issue.record("got \(String(describing: losses.first))") }
        // Padding-only packets (empty payloads) between frames, one of them lost: nothing else is.
        var padded: [Packet] = []
        var seq: Int64 = 0
        for p in packets {
            var copy = p
            copy.sequenceNumber = seq; seq += 1
            padded.append(copy)
            if p.marker {
                padded.append(Packet(sequenceNumber: seq, marker: false, timestamp: p.timestamp, payload: [], frameIndex: -1))
                seq += 1
            }
        }
        let lostPadding = try #require(padded.firstIndex { $0.frameIndex == -1 && $0.timestamp == 9 * 3000 })
        padded.remove(at: lostPadding)
        let result = assemble(padded)
        #expect(result.losses.isEmpty)
        #expect(result.frames.map(\.data) == clip.frames.map(\.data))
    }

    @Test("reordered and duplicated packets are reported late and never spliced into a frame; sorted input is whole again")
    func reordering() throws {
        let clip = try Fixtures.vp8Clip.get()
        let packets = try Fixtures.packets(clip, maxPayloadSize: 300)
        let group = packets.indices.filter { packets[$0].frameIndex == 10 }
        var swapped = packets
        swapped.swapAt(group[1], group[2])
        swapped.insert(packets[group[0] + 40], at: group[0] + 45)   // a duplicate, later
        let (frames, losses) = assemble(swapped, waitsForKeyFrame: false)
        #expect(!frames.contains { $0.timestamp == 10 * 3000 })
        for frame in frames { #expect(frame.data == clip.frames[Int(frame.timestamp / 3000)].data) }
        #expect(losses.filter { $0.reason == .latePacket }.count == 2)
        // The contract: sort by extended sequence number (dropping duplicates) first.
        var seen = Set<Int64>()
        let sorted = swapped.sorted { $0.sequenceNumber < $1.sequenceNumber }.filter { seen.insert($0.sequenceNumber).inserted }
        let repaired = assemble(sorted)
        #expect(repaired.losses.isEmpty)
        #expect(repaired.frames.map(\.data) == clip.frames.map(\.data))
    }

    @Test("joining mid-frame reports the orphan packets once and starts at the first key frame")
    func joinMidStream() throws {
        let clip = try Fixtures.vp8Clip.get()
        let packets = try Fixtures.packets(clip, maxPayloadSize: 300)
        let start = try #require(packets.firstIndex { $0.frameIndex == 12 }) + 1
        let (frames, losses) = assemble(Array(packets[start...]))
        #expect(frames.first?.isKeyFrame == true)
        #expect(frames.map { Int($0.timestamp / 3000) } == Array(Fixtures.forcedKeyFrame ..< clip.frames.count))
        #expect(losses.first?.reason == .missingStart && losses.first?.timestamp == Int64(12 * 3000))
        #expect(losses.dropFirst().allSatisfy { $0.reason == .waitingForKeyFrame })
    }

    @Test("an unreadable descriptor drops the open frame; a stream ending mid-frame reports it")
    func invalidAndUnfinished() throws {
        let clip = try Fixtures.vp8Clip.get()
        var packets = Array(try Fixtures.packets(clip, maxPayloadSize: 300).prefix { $0.frameIndex <= 2 })
        let second = try #require(packets.firstIndex { $0.frameIndex == 1 }) + 1
        packets[second].payload = [0x80]   // X set, extension byte missing
        var (frames, losses) = assemble(packets)
        #expect(frames.map(\.timestamp) == [0])
        #expect(losses.first?.reason == .invalid(.truncated(field: .vp8Extension, needed: 1, available: 0)))
        #expect(losses.first?.timestamp == Int64(3000))
        // The last frame without its marker packet: open at the end of the stream.
        packets = Array(try Fixtures.packets(clip, maxPayloadSize: 300).prefix { $0.frameIndex <= 2 }.dropLast())
        (frames, losses) = assemble(packets)
        #expect(frames.count == 2)
        #expect(losses.map(\.reason) == [.missingEnd])
    }

    @Test("under seeded loss, duplication and reordering, every frame returned is byte-identical to one sent")
    func randomDamage() throws {
        let clip = try Fixtures.vp8Clip.get()
        let packets = try Fixtures.packets(clip, maxPayloadSize: 200)
        var rng = SplitMix64(seed: 0xDAB)
        for round in 0 ..< 40 {
            var damaged: [Packet] = []
            for p in packets {
                let roll = Int.random(in: 0 ..< 100, using: &rng)
                if roll < 3 { continue }                                   // lost
                damaged.append(p)
                if roll < 5 { damaged.append(p) }                           // duplicated
            }
            for _ in 0 ..< 3 where damaged.count > 2 {                       // local swaps
                let i = Int.random(in: 0 ..< damaged.count - 1, using: &rng)
                damaged.swapAt(i, i + 1)
            }
            let (frames, losses) = assemble(damaged, waitsForKeyFrame: round % 2 == 0)
            for frame in frames {
                #expect(frame.data == clip.frames[Int(frame.timestamp / 3000)].data)
            }
            #expect(frames.count + losses.count > 0)
        }
    }

    /// The clip packetized with frame `droppable` sent as non-reference (N = 1).
    private func packets(markingNonReference droppable: Int) throws -> [Packet] {
        let clip = try Fixtures.vp8Clip.get()
        var packetizer = try VP8Packetizer(maxPayloadSize: 300)
        var out: [Packet] = []
        for (index, frame) in clip.frames.enumerated() {
            for p in try packetizer.packetize(frame.data, nonReference: index == droppable) {
                out.append(Packet(sequenceNumber: Int64(out.count), marker: p.marker, timestamp: Int64(index) * 3000, payload: p.payload, frameIndex: index))
            }
        }
        return out
    }

    @Test("losing part of a non-reference (N = 1) frame drops only that frame, even while waiting is on")
    func nonReferenceLoss() throws {
        let clip = try Fixtures.vp8Clip.get()
        var packets = try packets(markingNonReference: 6)
        let group = packets.indices.filter { packets[$0].frameIndex == 6 }
        packets.remove(at: group[1])
        let (frames, losses) = assemble(packets)
        #expect(frames.count == clip.frames.count - 1 && frames.allSatisfy { $0.timestamp != 6 * 3000 })
        #expect(losses.count == 1)
        #expect(frames.first { $0.timestamp == 5 * 3000 }?.nonReference == false)
    }

    @Test("a gap that cuts a non-reference frame and swallows the next whole frame still waits for a key frame")
    func gapBeyondNonReferenceFrame() throws {
        let clip = try Fixtures.vp8Clip.get()
        var packets = try packets(markingNonReference: 6)
        let tail = try #require(packets.last { $0.frameIndex == 6 }).sequenceNumber
        packets.removeAll { $0.frameIndex == 7 || $0.sequenceNumber == tail }
        let (frames, losses) = assemble(packets)
        #expect(frames.map { Int($0.timestamp / 3000) } == Array(0 ..< 6) + Array(Fixtures.forcedKeyFrame ..< clip.frames.count))
        #expect(losses.first?.timestamp == Int64(6 * 3000))
        #expect(losses.dropFirst().allSatisfy { $0.reason == .waitingForKeyFrame })
    }

    typealias Descriptor = VP8PayloadDescriptor
}
