import Foundation
import Media
import Testing
import TestSupport

// MARK: - EBML encoding and reading (RFC 8794; byte snippets from webm.md §4)

@Suite("EBML elements")
struct EBMLTests {
    @Test("size VINTs take the fewest bytes and read back at every length boundary; 2^(7n)−1 needs n+1 bytes")
    func vintBoundaries() throws {
        for width in 1 ... 8 {
            let top = EBMLVarInt.maxSize(width: width)
            for value in [top - 1, top] + (width == 1 ? [0, 1] : [EBMLVarInt.maxSize(width: width - 1) + 1]) {
                let bytes = EBMLVarInt.encode(value)
                #expect(bytes.count == width, "\(value)")
                let read = try EBMLVarInt.read(bytes[...], at: 0)
                #expect(read.value == value && read.width == width && !read.allOnes)
            }
            if width < 8 {
                #expect(EBMLVarInt.encode(top + 1).count == width + 1)   // all ones would mean "unknown"
            }
            let unknown = EBMLVarInt.unknownSize(width: width)
            #expect(try EBMLVarInt.read(unknown[...], at: 0).allOnes)
        }
        #expect(EBMLVarInt.encode(126) == [0xFE])
        #expect(EBMLVarInt.encode(127) == hex("40 7F"))
        #expect(EBMLVarInt.encode(16_383) == hex("20 3F FF"))
        #expect(EBMLVarInt.encode(2, width: 4) == hex("10 00 00 02"))
        #expect(EBMLVarInt.unknownSize(width: 1) == [0xFF])
        #expect(EBMLVarInt.unknownSize() == hex("01 FF FF FF FF FF FF FF"))
    }

    @Test("elements match the bytes of real WebM files (webm.md §4)")
    func snippets() {
        #expect(WebMWriter.ebmlHeader.serialized == hex("""
            1a 45 df a3 9f 42 86 81 01 42 f7 81 01 42 f2 81 04 42 f3 81 08
            42 82 84 77 65 62 6d 42 87 81 04 42 85 81 02
            """))
        #expect(EBMLElement.uint(MatroskaID.timestampScale, 1_000_000).serialized == hex("2a d7 b1 83 0f 42 40"))
        #expect(EBMLElement.float(MatroskaID.duration, 2008).serialized == hex("44 89 88 40 9f 60 00 00 00 00 00"))
        #expect(EBMLElement.uint(MatroskaID.codecDelay, WebMAudioTrack.codecDelay(preSkip: 312)).serialized == hex("56 aa 83 63 2e a0"))
        #expect(EBMLElement.uint(MatroskaID.seekPreRoll, 80_000_000).serialized == hex("56 bb 84 04 c4 b4 00"))
        #expect(EBMLElement.uint(MatroskaID.pixelWidth, 320).serialized == hex("b0 82 01 40"))
        #expect(EBMLElement.uint(MatroskaID.pixelHeight, 240).serialized == hex("ba 81 f0"))
        #expect(EBMLElement.float(MatroskaID.samplingFrequency, 48_000).serialized == hex("b5 88 40 e7 70 00 00 00 00 00"))
        #expect(EBMLElement.uint(MatroskaID.channels, 1).serialized == hex("9f 81 01"))
        #expect(EBMLElement.string(MatroskaID.codecID, "V_VP8").serialized == hex("86 85 56 5f 56 50 38"))
        #expect(EBMLElement.string(MatroskaID.codecID, "A_OPUS").serialized == hex("86 86 41 5f 4f 50 55 53"))
        #expect(EBMLElement.uint(MatroskaID.timestamp, 0).serialized == hex("e7 81 00"))
        #expect(EBMLElement.binary(0xEC, [UInt8](repeating: 0, count: 127)).serialized.prefix(3) == [0xEC, 0x40, 0x7F])
        #expect(EBMLElement.void(totalSize: 11).serializedSize == 11)
        // A CuePoint as ffmpeg writes it (webm.md §9).
        let cue = EBMLElement.master(MatroskaID.cuePoint, [
            .uint(MatroskaID.cueTime, 7),
            .master(MatroskaID.cueTrackPositions, [.uint(MatroskaID.cueTrack, 1), .uint(MatroskaID.cueClusterPosition, 618),
                                                   .uint(MatroskaID.cueRelativePosition, 310)]),
        ])
        #expect(cue.serialized == hex("bb 90 b3 81 07 b7 8b f7 81 01 f1 82 02 6a f0 82 01 36"))
        #expect(WebMFixtures.opusHead(channels: 1, preSkip: 312) == hex("4f 70 75 73 48 65 61 64 01 01 38 01 80 bb 00 00 00 00 00"))
    }

    @Test("a SimpleBlock round-trips byte for byte (webm.md §3.1)")
    func simpleBlock() throws {
        let bytes = hex("a3 87 82 00 00 80 f8 b4 af")
        let block = WebMSimpleBlock(track: 2, relativeTimestamp: 0, flags: 0x80, frame: hex("f8 b4 af"))
        var out: [UInt8] = []
        block.write(to: &out)
        #expect(out == bytes)
        #expect(try WebMSimpleBlock(parsing: bytes[2...]) == block)
        let inter = try WebMSimpleBlock(parsing: hex("81 00 28 00 31 14 00")[...])
        #expect(inter.track == 1 && inter.relativeTimestamp == 40 && !inter.isKeyFrame && inter.frame == hex("31 14 00"))
        #expect(try WebMSimpleBlock(parsing: hex("81 ff f6 80 00")[...]).relativeTimestamp == -10)
        #expect(throws: EBMLParseError.invalidValue(id: MatroskaID.simpleBlock, offset: 3, reason: "laced block")) {
            try WebMSimpleBlock(parsing: hex("81 00 00 82 00")[...])
        }
    }

    @Test("integers, floats, strings and dates read back; signed integers take the fewest bytes",
          arguments: [Int64(0), 1, -1, 127, 128, -128, -129, 32_767, -32_768, 1 << 40, .min, .max])
    func values(value: Int64) throws {
        let tree = EBMLElement.master(0x1A45_DFA3, [
            .int(0xFB, value), .uint(0x4286, UInt64(bitPattern: value)), .float(0x4489, Double(value) / 3),
            .string(0x7BA9, "Zoë \(value)"), .int(0x4461, value, width: 8),
        ])
        let bytes = tree.serialized
        var top = EBMLReader(bytes)
        let master = try #require(try top.next())
        let after = try top.next()
        #expect(master.id == 0x1A45_DFA3 && master.end == bytes.count && after == nil)
        let level = top.children(of: master)
        var walker = level
        let children = try walker.all()
        #expect(children.map(\.id) == [0xFB, 0x4286, 0x4489, 0x7BA9, 0x4461])
        #expect(try level.int(children[0]) == value)
        let minimal = (1 ... 8).first { n in n == 8 || (-(Int64(1) << (8 * n - 1)) ... (Int64(1) << (8 * n - 1)) - 1).contains(value) }
        #expect(children[0].data.count == minimal)
        #expect(try level.uint(children[1]) == UInt64(bitPattern: value))
        #expect(try level.float(children[2]) == Double(value) / 3)
        #expect(try level.string(children[3]) == "Zoë \(value)")
        #expect(try children[4].data.count == 8 && level.int(children[4]) == value)
    }

    @Test("the reader names what is wrong with malformed input")
    func readerErrors() throws {
        func first(_ bytes: [UInt8]) throws(EBMLParseError) -> EBMLElementHeader? { var r = EBMLReader(bytes); return try r.next() }
        #expect(throws: EBMLParseError.invalidVINT(offset: 0)) { try first([0x00, 0x81]) }
        #expect(throws: EBMLParseError.truncated(offset: 0, needed: 4, available: 2)) { try first(hex("1a 45")) }
        #expect(throws: EBMLParseError.invalidID(offset: 0)) { try first(hex("ff 80")) }
        #expect(throws: EBMLParseError.invalidID(offset: 0)) { try first(hex("08 00 00 00 00 80")) }
        #expect(throws: EBMLParseError.truncated(offset: 2, needed: 5, available: 3)) { try first(hex("ec 85 00 00 00")) }
        #expect(throws: EBMLParseError.truncated(offset: 1, needed: 1, available: 0)) { try first(hex("ec")) }
        let reader = EBMLReader(hex("ec 89 00 00 00 00 00 00 00 00 00"))
        let void = try #require(try first(hex("ec 89 00 00 00 00 00 00 00 00 00")))
        #expect(throws: EBMLParseError.invalidValue(id: 0xEC, offset: 0, reason: "9-byte integer")) { try reader.uint(void) }
        #expect(throws: EBMLParseError.invalidValue(id: 0xEC, offset: 0, reason: "9-byte float")) { try reader.float(void) }
        let unknown = try #require(try first(hex("1f 43 b6 75 01 ff ff ff ff ff ff ff e7 81 00")))
        #expect(unknown.hasUnknownSize && unknown.data == 12 ..< 15)
    }

    @Test("truncated and mutated WebM files only ever throw")
    func robustness() throws {
        let bytes = try WebMFixtures.smallFile()
        #expect(try WebMFixtures.walk(EBMLReader(bytes)) > 40)
        for cut in truncations(of: bytes) { _ = try? WebMFixtures.walk(EBMLReader(cut)) }
        var rng = SplitMix64(seed: 0xEB41)
        var failures = 0
        for _ in 0 ..< 4000 {
            do { _ = try WebMFixtures.walk(EBMLReader(Mutator.mutate(bytes, using: &rng))) } catch { failures += 1 }
        }
        #expect(failures > 100)
    }
}

// MARK: - The writer

@Suite("WebM writer")
struct WebMWriterTests {
    @Test("an 8 s VP8 + Opus file is accepted by mkvinfo and ffmpeg, seeks, and has the structure of webm.md §4")
    func realFile() async throws {
        let media = try WebMFixtures.media.get()
        let dir = makeTemporaryDirectory("webm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/call.webm"
        let delay = Int64(media.audioTrack.codecDelayNanoseconds)
        #expect(delay == 6_500_000)   // libopus's lookahead at 48 kHz: 312 samples
        let writer = try WebMWriter(path: path, video: .init(width: 320, height: 180, name: "Alice camera"),
                                    audio: media.audioTrack, title: "PERC call", date: Date(timeIntervalSince1970: 1_700_000_000),
                                    writingApp: "percrec tests")
        // Feed a second of video, then the same second of audio: the writer interleaves.
        for second in 0 ..< 8 {
            let window = Int64(second) * 1_000_000_000 ..< Int64(second + 1) * 1_000_000_000
            for v in media.video where window.contains(v.timestamp) {
                try writer.addVideoFrame(v.data, timestamp: v.timestamp, isKeyFrame: v.isKeyFrame)
            }
            for a in media.audio where window.contains(a.timestamp + delay) {
                try writer.addAudioPacket(a.data, timestamp: a.timestamp)
            }
        }
        let summary = try writer.finish()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(summary.videoFrames == 120 && summary.audioPackets == 400)
        #expect(summary.clusters == 4 && summary.cuePoints == 4)   // a key frame every 2 s
        #expect(summary.durationMilliseconds == 8000 && summary.bytes == Int64(bytes.count))

        // Bytes where webm.md §4 fixes them.
        #expect(Array(bytes.prefix(48)) == WebMWriter.ebmlHeader.serialized + hex("18 53 80 67") + EBMLVarInt.encode(UInt64(bytes.count - 48), width: 8))
        for snippet in ["2a d7 b1 83 0f 42 40", "56 aa 83 63 2e a0", "56 bb 84 04 c4 b4 00", "b0 82 01 40", "ba 81 b4",
                        "b5 88 40 e7 70 00 00 00 00 00", "9f 81 01", "44 89 88 40 bf 40 00 00 00 00 00", "22 b5 9c 83 75 6e 64",
                        "9c 81 00", "86 85 56 5f 56 50 38", "86 86 41 5f 4f 50 55 53"] {
            #expect(bytes.firstRange(of: hex(snippet)) != nil, "\(snippet)")
        }

        let file = try ParsedWebM(bytes)
        #expect(file.duration == 8000 && file.timestampScale == 1_000_000)
        #expect(file.tracks[1]?.codec == "V_VP8" && file.tracks[2]?.codec == "A_OPUS" && file.tracks[2]?.codecDelay == 6_500_000)
        #expect(file.tracks[2]?.codecPrivate == media.audioTrack.codecPrivate)
        file.checkInvariants(videoTrack: 1)
        #expect(file.clusters.allSatisfy { c in file.blocks[c.blocks].first { $0.track == 1 }?.isKeyFrame == true })
        #expect(file.clusters.map(\.timestamp) == [0, 2000, 4000, 6000])
        #expect(file.cues.map(\.time) == [0, 2000, 4000, 6000] && file.cues.allSatisfy { $0.track == 1 })
        // Every frame and packet, at its rounded ns time (+ CodecDelay for audio).
        #expect(file.blocks.filter { $0.track == 1 }.map(\.time) == media.video.map { ($0.timestamp + 500_000) / 1_000_000 })
        #expect(file.blocks.filter { $0.track == 2 }.map(\.time) == media.audio.map { ($0.timestamp + 6_500_000 + 500_000) / 1_000_000 })
        #expect(file.blocks.filter { $0.track == 1 }.map(\.isKeyFrame) == media.video.map(\.isKeyFrame))
        #expect(file.blocks.filter { $0.track == 1 }.map(\.frame) == media.video.map(\.data))

        try await WebMOracles.expectValid(path, streams: ["vp8", "opus"], duration: 8.0)
        // ffmpeg drops the pre-skip from the first packet, so the first kept sample plays at 0.
        let frames = try await runTool("ffprobe", ["-v", "error", "-select_streams", "a", "-show_entries", "frame=pts_time,nb_samples",
                                                   "-of", "csv=p=0", path])
        #expect(frames.stdout.split(separator: "\n").first == "0.000000,\(960 - 312)", "\(frames.stdout.prefix(80))")
        let seek = try await runTool("ffmpeg", ["-nostdin", "-v", "error", "-ss", "4.5", "-i", path, "-frames:v", "1", "-f", "null", "-"])
        #expect(seek.status == 0 && seek.stdout.isEmpty && seek.stderr.isEmpty, "\(seek.stderr)")
    }

    @Test("an audio-only file has a Cue per cluster and clusters of under 5 s", arguments: [false, true])
    func audioOnly(stereo: Bool) async throws {
        let media = try WebMFixtures.media.get()
        let dir = makeTemporaryDirectory("webm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/voice.webm"
        var track = media.audioTrack
        if stereo { track.codecPrivate[9] = 2; track.channels = 2 }   // mono packets decode fine as stereo
        let writer = try WebMWriter(path: path, video: nil, audio: track, writingApp: "percrec tests")
        for a in media.audio { try writer.addAudioPacket(a.data, timestamp: a.timestamp) }
        let summary = try writer.finish()
        let file = try ParsedWebM(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        file.checkInvariants(videoTrack: nil)
        #expect(summary.clusters == 2 && summary.cuePoints == 2 && file.tracks[1]?.codec == "A_OPUS")
        #expect(file.clusters.map(\.timestamp) == [0, 5000])
        #expect(file.cues.map(\.time) == [0, 5000] && file.cues.allSatisfy { $0.track == 1 && $0.relative == nil })
        try await WebMOracles.expectValid(path, streams: ["opus"], duration: 7.9935)
    }

    @Test("a video-only file is valid, with a Cue per key frame")
    func videoOnly() async throws {
        let media = try WebMFixtures.media.get()
        let dir = makeTemporaryDirectory("webm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/camera.webm"
        let writer = try WebMWriter(path: path, video: .init(width: 320, height: 180), audio: nil, writingApp: "percrec tests")
        for v in media.video { try writer.addVideoFrame(v.data, timestamp: v.timestamp, isKeyFrame: v.isKeyFrame) }
        let summary = try writer.finish()
        let file = try ParsedWebM(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        file.checkInvariants(videoTrack: 1)
        #expect(summary.clusters == 4 && file.cues.count == 4 && file.cues.allSatisfy { $0.relative == nil })
        try await WebMOracles.expectValid(path, streams: ["vp8"], duration: 8.0)
    }

    @Test("block times follow the ns timestamps to within 1 ms as ffprobe reads them (audio = pts + CodecDelay)")
    func timing() async throws {
        let dir = makeTemporaryDirectory("webm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/timing.webm"
        let media = try WebMFixtures.media.get()
        let writer = try WebMWriter(path: path, video: .init(width: 320, height: 180), audio: media.audioTrack, writingApp: "t")
        // 30 fps on a 90 kHz clock (33.333… ms) with jitter, audio packets at the same instants.
        var times: [Int64] = []
        for (k, v) in media.video.prefix(60).enumerated() {
            let t = Int64(k) * 100_000_000 / 3 + Int64(k % 7) * 123_457
            times.append(t)
            try writer.addAudioPacket(media.audio[k].data, timestamp: t)
            try writer.addVideoFrame(v.data, timestamp: t, isKeyFrame: k == 0 || v.isKeyFrame)
        }
        _ = try writer.finish()
        let file = try ParsedWebM(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        file.checkInvariants(videoTrack: 1)
        let probe = try await runTool("ffprobe", ["-v", "error", "-show_entries", "packet=stream_index,pts_time", "-of", "csv=p=0", path])
        #expect(probe.status == 0 && probe.stderr.isEmpty, "\(probe.stderr)")
        var seen: [Int: [Double]] = [:]
        for line in probe.stdout.split(separator: "\n") {
            let fields = line.split(separator: ",")
            guard fields.count == 2, let stream = Int(fields[0]), let pts = Double(fields[1]) else { continue }
            seen[stream, default: []].append(pts)
        }
        let video = seen[0] ?? [], audio = seen[1] ?? []
        #expect(video.count == 60 && audio.count == 60)
        for (t, pts) in zip(times, video) { #expect(abs(pts * 1e9 - Double(t)) <= 1e6, "video \(t) read as \(pts)") }
        // ffprobe shows block time − CodecDelay (rounded to ms), so audio reads back as the pts given.
        for (t, pts) in zip(times, audio) { #expect(abs(pts * 1e9 - Double(t)) <= 1e6, "audio \(t) read as \(pts)") }
        let blockTimes = file.blocks.filter { $0.track == 2 }.map(\.time)
        #expect(blockTimes == times.map { ($0 + 6_500_000 + 500_000) / 1_000_000 })
    }

    @Test("blocks come out in time order with audio first at ties, whatever order the tracks are fed in",
          arguments: ["video first", "audio first", "alternating", "random"])
    func interleaving(order: String) throws {
        let dir = makeTemporaryDirectory("webm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/order.webm"
        let writer = try WebMWriter(path: path, video: .init(width: 64, height: 64), audio: WebMFixtures.fakeAudioTrack, writingApp: "t")
        // Video at 25 fps with a key frame every second; audio every 20 ms, shifted so that the
        // packets at 1 s, 2 s … share their block time with the key frames (CodecDelay 6.5 ms).
        let video = (0 ..< 100).map { k in (Int64(k) * 40_000_000, k % 25 == 0) }
        let audio = (0 ..< 200).map { k in Int64(k) * 20_000_000 - 6_500_000 }
        var rng = SplitMix64(seed: 7)
        var v = 0, a = 0
        while v < video.count || a < audio.count {
            let takeVideo: Bool = switch order {
            case "video first": v < video.count
            case "audio first": a >= audio.count
            case "alternating": a >= audio.count || (v < video.count && (v + a) % 2 == 0)
            default: a >= audio.count || (v < video.count && Bool.random(using: &rng))
            }
            if takeVideo {
                try writer.addVideoFrame(WebMFixtures.fakeFrame(v, key: video[v].1), timestamp: video[v].0, isKeyFrame: video[v].1)
                v += 1
            } else {
                try writer.addAudioPacket(WebMFixtures.fakePacket, timestamp: audio[a])
                a += 1
            }
        }
        _ = try writer.finish()
        let file = try ParsedWebM(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        file.checkInvariants(videoTrack: 1)
        let expected = (video.map { (time: $0.0 / 1_000_000, track: UInt64(1)) } + audio.map { (time: ($0 + 6_500_000) / 1_000_000, track: UInt64(2)) })
            .sorted { ($0.time, 2 - $0.track) < ($1.time, 2 - $1.track) }
        #expect(file.blocks.map(\.time) == expected.map(\.time))
        #expect(file.blocks.map(\.track) == expected.map(\.track))
        // Each key-frame cluster starts with the audio packet at the key frame's time.
        #expect(file.clusters.map(\.timestamp) == [0, 1000, 2000, 3000])
        #expect(file.clusters.allSatisfy { file.blocks[$0.blocks.lowerBound].track == 2 })
        #expect(file.cues.map(\.time) == [0, 1000, 2000, 3000] && file.cues.allSatisfy { $0.relative != nil })
    }

    @Test("with video, clusters split at key frames, or at 30 s in a longer GOP, and at 5 MB; only key frames get Cues")
    func clusterLimits() throws {
        let dir = makeTemporaryDirectory("webm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let long = try WebMWriter(path: dir + "/long.webm", video: .init(width: 64, height: 64), audio: nil, writingApp: "t")
        // Key frames at 0 and 12 s, then a 53 s GOP: cut at 42 s, at 30 s past 12.
        for k in 0 ..< 650 {
            let key = k == 0 || k == 120
            try long.addVideoFrame(WebMFixtures.fakeFrame(k, key: key), timestamp: Int64(k) * 100_000_000, isKeyFrame: key)
        }
        let summary = try long.finish()
        #expect(summary == WebMSummary(clusters: 3, cuePoints: 2, videoFrames: 650, audioPackets: 0,
                                       durationMilliseconds: 65_000, bytes: try WebMFixtures.size(dir + "/long.webm")))
        let file = try ParsedWebM(try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/long.webm"))))
        #expect(file.clusters.map(\.timestamp) == [0, 12_000, 42_000])

        let big = try WebMWriter(path: dir + "/big.webm", video: .init(width: 64, height: 64), audio: nil, writingApp: "t")
        let megabyte = [UInt8](repeating: 0x01, count: 1_000_000)
        for k in 0 ..< 12 { try big.addVideoFrame([k == 0 ? 0x00 : 0x01] + megabyte, timestamp: Int64(k) * 10_000_000, isKeyFrame: k == 0) }
        #expect(try big.finish().clusters == 3)   // 4 + 4 + 4 frames
        let bigFile = try ParsedWebM(try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/big.webm"))))
        #expect(bigFile.clusters.map(\.blocks.count) == [4, 4, 4] && bigFile.cues.count == 1)
    }

    @Test("the writer refuses what the container cannot hold, and is done after finish or abandon")
    func errors() throws {
        let dir = makeTemporaryDirectory("webm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/e.webm"
        let video = WebMVideoTrack(width: 64, height: 64)
        #expect(throws: ContainerError.invalidArgument(name: "tracks", reason: "a WebM file needs a video or an audio track")) {
            try WebMWriter(path: path, video: nil, audio: nil, writingApp: "t")
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(throws: ContainerError.self) { try WebMWriter(path: path, video: .init(width: 0, height: 64), audio: nil, writingApp: "t") }
        var bad = WebMFixtures.fakeAudioTrack
        bad.channels = 2
        #expect(throws: ContainerError.invalidArgument(name: "channels", reason: "2, OpusHead says 1")) {
            try WebMWriter(path: path, video: nil, audio: bad, writingApp: "t")
        }
        bad = WebMFixtures.fakeAudioTrack
        bad.codecPrivate = Array(bad.codecPrivate.prefix(18))
        #expect(throws: ContainerError.self) { try WebMWriter(path: path, video: nil, audio: bad, writingApp: "t") }
        #expect(throws: ContainerError.io(path: dir + "/missing/e.webm", operation: "fopen", errno: ENOENT,
                                          message: String(cString: strerror(ENOENT)))) {
            try WebMWriter(path: dir + "/missing/e.webm", video: video, audio: nil, writingApp: "t")
        }

        let writer = try WebMWriter(path: path, video: video, audio: WebMFixtures.fakeAudioTrack, writingApp: "t")
        #expect(throws: ContainerError.invalidArgument(name: "frame", reason: "the first video frame must be a key frame")) {
            try writer.addVideoFrame(WebMFixtures.fakeFrame(0, key: false), timestamp: 0, isKeyFrame: false)
        }
        try writer.addVideoFrame(WebMFixtures.fakeFrame(0, key: true), timestamp: 40_000_000, isKeyFrame: true)
        #expect(throws: ContainerError.outOfOrder(track: "video", previous: 40_000_000, next: 39_999_999)) {
            try writer.addVideoFrame(WebMFixtures.fakeFrame(1, key: false), timestamp: 39_999_999, isKeyFrame: false)
        }
        try writer.addAudioPacket(WebMFixtures.fakePacket, timestamp: -6_500_000)
        #expect(throws: ContainerError.self) { try writer.addAudioPacket(WebMFixtures.fakePacket, timestamp: -6_500_001) }   // block time < 0
        #expect(throws: ContainerError.self) { try writer.addVideoFrame([], timestamp: 50_000_000, isKeyFrame: false) }
        #expect(throws: ContainerError.self) { try writer.addVideoFrame([1], timestamp: -1, isKeyFrame: false) }
        try writer.addVideoFrame(WebMFixtures.fakeFrame(1, key: false), timestamp: 40_000_000, isKeyFrame: false)   // equal is fine
        let summary = try writer.finish()
        #expect(summary.videoFrames == 2 && summary.audioPackets == 1 && summary.clusters == 2)
        #expect(throws: ContainerError.finished(path: path)) { try writer.addAudioPacket(WebMFixtures.fakePacket, timestamp: 0) }
        #expect(throws: ContainerError.finished(path: path)) { try writer.finish() }
        writer.abandon()   // a finished file stays
        #expect(FileManager.default.fileExists(atPath: path))

        let partial = try WebMWriter(path: dir + "/p.webm", video: nil, audio: WebMFixtures.fakeAudioTrack, writingApp: "t")
        #expect(throws: ContainerError.invalidArgument(name: "video", reason: "the file has no video track")) {
            try partial.addVideoFrame([0], timestamp: 0, isKeyFrame: true)
        }
        try partial.addAudioPacket(WebMFixtures.fakePacket, timestamp: 0)
        #expect(FileManager.default.fileExists(atPath: dir + "/p.webm"))
        partial.abandon()
        #expect(!FileManager.default.fileExists(atPath: dir + "/p.webm"))
        #expect(throws: ContainerError.finished(path: dir + "/p.webm")) { try partial.addAudioPacket(WebMFixtures.fakePacket, timestamp: 1) }
    }

    @Test("an empty file and an unfinished one are still valid WebM")
    func emptyAndUnfinished() async throws {
        let dir = makeTemporaryDirectory("webm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let empty = try WebMWriter(path: dir + "/empty.webm", video: .init(width: 64, height: 64), audio: nil, writingApp: "t")
        #expect(try empty.finish().clusters == 0)
        let file = try ParsedWebM(try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/empty.webm"))))
        #expect(file.clusters.isEmpty && file.cues.isEmpty && file.duration == nil && file.seeks.count == 2)
        let info = try await runTool("mkvinfo", [dir + "/empty.webm"])
        #expect(info.status == 0 && !(info.stdout + info.stderr).localizedCaseInsensitiveContains("error"), "\(info.stdout)")

        // Not finished: the Segment keeps its unknown size, the written clusters are readable.
        let media = try WebMFixtures.media.get()
        var writer: WebMWriter? = try WebMWriter(path: dir + "/cut.webm", video: .init(width: 320, height: 180), audio: nil, writingApp: "t")
        for v in media.video.prefix(65) { try writer?.addVideoFrame(v.data, timestamp: v.timestamp, isKeyFrame: v.isKeyFrame) }
        writer = nil
        let cut = try ParsedWebM(try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/cut.webm"))))
        #expect(cut.segmentHasUnknownSize && cut.clusters.count == 2 && cut.blocks.count == 60)
        let decode = try await runTool("ffmpeg", ["-nostdin", "-v", "error", "-i", dir + "/cut.webm", "-f", "null", "-"])
        #expect(decode.status == 0 && decode.stderr.isEmpty, "\(decode.stderr)")
    }
}

// MARK: - Helpers

/// Media and small inputs for the writer tests.
enum WebMFixtures {
    struct Frame: Sendable {
        var data: [UInt8]
        var timestamp: Int64
        var isKeyFrame: Bool
    }

    struct Media: Sendable {
        var video: [Frame]
        var audio: [Frame]
        var audioTrack: WebMAudioTrack
    }

    /// OpusHead for mapping family 0 at 48 kHz (RFC 7845 §5.1; ogg-opus.md §5.1).
    static func opusHead(channels: UInt8, preSkip: UInt16) -> [UInt8] {
        Array("OpusHead".utf8) + [1, channels, UInt8(preSkip & 0xFF), UInt8(preSkip >> 8), 0x80, 0xBB, 0, 0, 0, 0, 0]
    }

    /// 8 s of 320×180 VP8 at 15 fps with a key frame forced every 2 s, and 8 s of mono Opus in
    /// 20 ms packets timed so the first post-pre-skip sample plays at 0.
    static let media: Result<Media, MediaError> = Result { () throws(MediaError) -> Media in
        var source = try SyntheticVideo(width: 320, height: 180, framesPerSecond: 15, seed: 21)
        let vp8 = try VP8Encoder(.init(width: 320, height: 180, framesPerSecond: 15, targetBitrateKbps: 300, keyFrameIntervalMax: 1000))
        var video: [Frame] = []
        for index in 0 ..< 120 {
            if index % 30 == 0 { vp8.forceKeyFrame() }
            for f in try vp8.encode(source.nextFrame()) {
                video.append(Frame(data: f.data, timestamp: Int64(index) * 1_000_000_000 / 15, isKeyFrame: f.isKeyFrame))
            }
        }
        var voice = try SyntheticVoice(seed: 21)
        let opus = try OpusEncoder(.init())
        let delay = Int64(WebMAudioTrack.codecDelay(preSkip: opus.lookahead))
        var audio: [Frame] = []
        for k in 0 ..< 400 {
            audio.append(Frame(data: try opus.encode(voice.nextFrame()), timestamp: Int64(k) * 20_000_000 - delay, isKeyFrame: true))
        }
        let track = WebMAudioTrack(codecPrivate: opusHead(channels: 1, preSkip: UInt16(opus.lookahead)), channels: 1,
                                   codecDelayNanoseconds: UInt64(delay), name: "Alice")
        return Media(video: video, audio: audio, audioTrack: track)
    }

    static let fakeAudioTrack = WebMAudioTrack(codecPrivate: opusHead(channels: 1, preSkip: 312), channels: 1, codecDelayNanoseconds: 6_500_000)
    /// A CELT 20 ms TOC byte and a little payload; the writer never decodes it.
    static let fakePacket: [UInt8] = [0xF8, 0xB4, 0xAF, 0x01]

    /// Bytes with a VP8 frame tag whose P bit says key or inter frame; not decodable.
    static func fakeFrame(_ index: Int, key: Bool) -> [UInt8] { [key ? 0x10 : 0x11, 0, 0, UInt8(truncatingIfNeeded: index)] }

    static func size(_ path: String) throws -> Int64 {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? -1
    }

    /// A small two-track file of fake frames (two clusters, Cues, title and date) for mutation tests.
    static func smallFile() throws -> [UInt8] {
        let dir = makeTemporaryDirectory("webm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try WebMWriter(path: dir + "/s.webm", video: .init(width: 64, height: 48, name: "v"), audio: fakeAudioTrack,
                                    title: "small", date: Date(timeIntervalSinceReferenceDate: 0), writingApp: "t")
        for k in 0 ..< 8 {
            try writer.addVideoFrame(fakeFrame(k, key: k % 4 == 0), timestamp: Int64(k) * 100_000_000, isKeyFrame: k % 4 == 0)
            try writer.addAudioPacket(fakePacket, timestamp: Int64(k) * 100_000_000)
        }
        _ = try writer.finish()
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/s.webm")))
    }

    static let masters: Set<UInt32> = [MatroskaID.ebml, MatroskaID.segment, MatroskaID.seekHead, MatroskaID.seek, MatroskaID.info,
                                       MatroskaID.tracks, MatroskaID.trackEntry, MatroskaID.video, MatroskaID.audio, MatroskaID.cluster,
                                       MatroskaID.cues, MatroskaID.cuePoint, MatroskaID.cueTrackPositions]
    static let floats: Set<UInt32> = [MatroskaID.duration, MatroskaID.samplingFrequency]
    static let strings: Set<UInt32> = [MatroskaID.docType, MatroskaID.title, MatroskaID.muxingApp, MatroskaID.writingApp,
                                       MatroskaID.name, MatroskaID.language, MatroskaID.codecID]

    /// Reads every element of a WebM file by its type; returns how many there were.
    static func walk(_ reader: EBMLReader, depth: Int = 0) throws(EBMLParseError) -> Int {
        var level = reader, count = 0
        while let e = try level.next() {
            count += 1
            if masters.contains(e.id), depth < 6 {
                count += try walk(level.children(of: e), depth: depth + 1)
            } else if e.id == MatroskaID.simpleBlock {
                _ = try WebMSimpleBlock(parsing: level.data(of: e))
            } else if floats.contains(e.id) {
                _ = try level.float(e)
            } else if strings.contains(e.id) {
                _ = try level.string(e)
            } else if e.id != MatroskaID.void, e.id != MatroskaID.codecPrivate, e.id != MatroskaID.seekID {
                _ = try level.int(e)
            }
        }
        return count
    }
}

/// A WebM file read back with `EBMLReader`: what the tests check.
struct ParsedWebM {
    struct Track { var codec: String?; var codecDelay: UInt64?; var codecPrivate: [UInt8]? }
    struct Block { var track: UInt64; var time: Int64; var isKeyFrame: Bool; var flags: UInt8; var frame: [UInt8]; var cluster: Int; var offset: Int }
    struct Cluster { var position: Int; var timestamp: Int64; var blocks: Range<Int> }
    struct Cue { var time: Int64; var track: UInt64; var cluster: Int; var relative: Int? }

    var segmentHasUnknownSize = false
    /// Segment Position of every top-level element, by ID.
    var positions: [Int: UInt32] = [:]
    var seeks: [UInt32: Int] = [:]
    var timestampScale: UInt64?
    var duration: Double?
    var tracks: [UInt64: Track] = [:]
    var clusters: [Cluster] = []
    var blocks: [Block] = []
    var cues: [Cue] = []

    struct MissingElement: Error { var id: UInt32 }

    /// The first element `id` at this level; throws if there is none.
    func need(_ level: EBMLReader, _ id: UInt32) throws -> EBMLElementHeader {
        guard let element = try level.first(id) else { throw MissingElement(id: id) }
        return element
    }

    init(_ bytes: [UInt8]) throws {
        var top = EBMLReader(bytes)
        let header = try #require(try top.next())
        #expect(header.id == MatroskaID.ebml)
        let segment = try #require(try top.next())
        #expect(segment.id == MatroskaID.segment && segment.end == bytes.count)
        segmentHasUnknownSize = segment.hasUnknownSize
        let base = segment.data.lowerBound
        var level = top.children(of: segment)
        while let e = try level.next() {
            positions[e.offset - base] = e.id
            let children = level.children(of: e)
            switch e.id {
            case MatroskaID.seekHead:
                for seek in try children.elements(MatroskaID.seek) {
                    let s = children.children(of: seek)
                    let id = try s.data(of: need(s, MatroskaID.seekID)).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                    seeks[id] = Int(try s.uint(need(s, MatroskaID.seekPosition)))
                }
            case MatroskaID.info:
                timestampScale = try children.first(MatroskaID.timestampScale).map(children.uint)
                duration = try children.first(MatroskaID.duration).map(children.float)
            case MatroskaID.tracks:
                for entry in try children.elements(MatroskaID.trackEntry) {
                    let t = children.children(of: entry)
                    let number = try t.uint(need(t, MatroskaID.trackNumber))
                    tracks[number] = Track(codec: try t.first(MatroskaID.codecID).map(t.string),
                                           codecDelay: try t.first(MatroskaID.codecDelay).map(t.uint),
                                           codecPrivate: try t.first(MatroskaID.codecPrivate).map { Array(t.data(of: $0)) })
                }
            case MatroskaID.cluster:
                let timestamp = Int64(try children.uint(need(children, MatroskaID.timestamp)))
                let first = blocks.count
                for b in try children.elements(MatroskaID.simpleBlock) {
                    let block = try WebMSimpleBlock(parsing: children.data(of: b))
                    blocks.append(Block(track: block.track, time: timestamp + Int64(block.relativeTimestamp), isKeyFrame: block.isKeyFrame,
                                        flags: block.flags, frame: block.frame, cluster: clusters.count, offset: b.offset - e.data.lowerBound))
                }
                clusters.append(Cluster(position: e.offset - base, timestamp: timestamp, blocks: first ..< blocks.count))
            case MatroskaID.cues:
                for point in try children.elements(MatroskaID.cuePoint) {
                    let p = children.children(of: point)
                    let positions = try need(p, MatroskaID.cueTrackPositions)
                    let c = p.children(of: positions)
                    cues.append(Cue(time: Int64(try p.uint(need(p, MatroskaID.cueTime))),
                                    track: try c.uint(need(c, MatroskaID.cueTrack)),
                                    cluster: Int(try c.uint(need(c, MatroskaID.cueClusterPosition))),
                                    relative: try c.first(MatroskaID.cueRelativePosition).map { Int(try c.uint($0)) }))
                }
            default:
                break
            }
        }
    }

    /// The rules of webm.md §3, §4, §8 and §9 that hold for every file the writer finishes.
    func checkInvariants(videoTrack: UInt64?) {
        // SeekHead first, pointing at Info, Tracks and Cues; Info and Tracks before any Cluster.
        #expect(positions[0] == MatroskaID.seekHead)
        for id in [MatroskaID.info, MatroskaID.tracks, MatroskaID.cues] {
            #expect(seeks[id].flatMap { positions[$0] } == id, "SeekHead entry for \(String(id, radix: 16))")
        }
        let firstCluster = clusters.first?.position ?? .max
        #expect(seeks[MatroskaID.info].map { $0 < firstCluster } == true && seeks[MatroskaID.tracks].map { $0 < firstCluster } == true)
        // Clusters: increasing timestamps, spans under 5 s (key frames every 2 s), a key frame only
        // as the first video block.
        #expect(zip(clusters, clusters.dropFirst()).allSatisfy { $0.timestamp < $1.timestamp })
        for cluster in clusters {
            let video = blocks[cluster.blocks].filter { $0.track == videoTrack }
            #expect(video.dropFirst().allSatisfy { !$0.isKeyFrame }, "cluster at \(cluster.timestamp) ms")
            #expect(blocks[cluster.blocks].allSatisfy { $0.time - cluster.timestamp < 5000 })
        }
        #expect(blocks.first { $0.track == videoTrack }.map(\.isKeyFrame) != false)
        // Blocks: audio always 0x80, no lacing, times non-decreasing per track and overall.
        #expect(blocks.filter { $0.track != videoTrack }.allSatisfy { $0.flags == 0x80 })
        #expect(blocks.filter { $0.track == videoTrack }.allSatisfy { $0.flags == ($0.isKeyFrame ? 0x80 : 0x00) })
        #expect(zip(blocks, blocks.dropFirst()).allSatisfy { $0.time <= $1.time })
        // Cues: sorted; each points at a cluster start and, with the relative position, at the block.
        #expect(zip(cues, cues.dropFirst()).allSatisfy { $0.time < $1.time })
        if let videoTrack {
            #expect(cues.count == blocks.filter { $0.track == videoTrack && $0.isKeyFrame }.count)
        }
        for cue in cues {
            guard let cluster = clusters.first(where: { $0.position == cue.cluster }) else {
                Issue.record("cue at \(cue.time) ms points at \(cue.cluster), not a cluster"); continue
            }
            let target = cue.relative.flatMap { r in blocks[cluster.blocks].first { $0.offset == r } } ?? blocks[cluster.blocks.lowerBound]
            #expect(target.track == cue.track && target.time == cue.time && target.isKeyFrame)
            if cue.track == videoTrack {
                #expect(blocks[cluster.blocks].first { $0.track == videoTrack }?.offset == target.offset)
            }
        }
    }
}

/// The external oracles: mkvinfo (MKVToolNix), ffmpeg and ffprobe.
enum WebMOracles {
    struct Probe: Decodable {
        struct Stream: Decodable { var codec_name: String; var width: Int?; var height: Int? }
        struct Format: Decodable { var duration: String }
        var streams: [Stream]
        var format: Format
    }

    /// mkvinfo (all elements) reads it without errors and lists Cue points; ffmpeg decodes it silently; ffprobe
    /// sees `streams` (VP8 at 320×180) and a duration within one video frame of `duration` s.
    static func expectValid(_ path: String, streams: [String], duration: Double) async throws {
        let info = try await runTool("mkvinfo", ["-a", path])
        #expect(info.status == 0, "\(info.stdout)\(info.stderr)")
        let errors = (info.stdout + info.stderr).split(separator: "\n").filter { $0.localizedCaseInsensitiveContains("error") }
        #expect(errors.isEmpty, "\(errors)")
        #expect(info.stdout.contains("Cue point"), "\(info.stdout)")
        let decode = try await runTool("ffmpeg", ["-nostdin", "-v", "error", "-i", path, "-f", "null", "-"])
        #expect(decode.status == 0 && decode.stdout.isEmpty && decode.stderr.isEmpty, "\(decode.stderr)")
        let probe = try await runTool("ffprobe", ["-v", "error", "-show_entries", "format=duration:stream=codec_name,width,height",
                                                  "-of", "json", path])
        #expect(probe.status == 0 && probe.stderr.isEmpty, "\(probe.stderr)")
        let parsed = try JSONDecoder().decode(Probe.self, from: Data(probe.stdout.utf8))
        #expect(parsed.streams.map(\.codec_name) == streams)
        for stream in parsed.streams where stream.codec_name == "vp8" { #expect(stream.width == 320 && stream.height == 180) }
        let seconds = try #require(Double(parsed.format.duration))
        #expect(abs(seconds - duration) <= 1.0 / 15, "duration \(seconds) s")
    }
}
