import Foundation
import Media
import Testing
import TestSupport

@Suite("Ogg pages (RFC 3533)")
struct OggOpusPageTests {
    /// spec/ogg-opus.md §2: the BOS page (OpusHead stereo, pre-skip 312) and the OpusTags page
    /// ("test", no comments), serial 1; byte-identical to libogg 1.3.5's output.
    static let headPage = hex("""
        4f 67 67 53 00 02 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 02 62 85 5c 01 13
        4f 70 75 73 48 65 61 64 01 02 38 01 80 bb 00 00 00 00 00
        """)
    static let tagsPage = hex("""
        4f 67 67 53 00 00 00 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 fe 9e af de 01 14
        4f 70 75 73 54 61 67 73 04 00 00 00 74 65 73 74 00 00 00 00
        """)

    @Test("the CRC of \"123456789\" is 0x89A1897F (direct, unreflected, init 0)")
    func crcCheckValue() {
        #expect(OggCRC.checksum(Array("123456789".utf8)) == 0x89A1_897F)
        #expect(OggCRC.checksum([]) == 0)
    }

    @Test("builds the spec's two header pages byte for byte")
    func specPages() throws {
        let head = try OpusHead(channels: 2, preSkip: 312).serialized()
        let page0 = try OggPage(flags: .beginningOfStream, granulePosition: 0, serialNumber: 1, sequenceNumber: 0,
                                segmentTable: OggPage.lacing(packetSize: head.count), body: head)
        #expect(page0.serialized() == Self.headPage)
        #expect(page0.serializedSize == 47)
        let tags = try OpusTags(vendor: "test").serialized()
        let page1 = try OggPage(granulePosition: 0, serialNumber: 1, sequenceNumber: 1,
                                segmentTable: OggPage.lacing(packetSize: tags.count), body: tags)
        #expect(page1.serialized() == Self.tagsPage)
        #expect(try OggPage(parsing: Self.headPage) == page0)
        #expect(try OggPage.pages(in: Self.headPage + Self.tagsPage) == [page0, page1])
    }

    @Test("lacing values of one packet (RFC 3533 §5)", arguments: [
        (753, [255, 255, 243]), (255, [255, 0]), (510, [255, 255, 0]), (0, [0]), (100, [100]), (254, [254]),
    ] as [(Int, [UInt8])])
    func lacing(size: Int, expected: [UInt8]) {
        #expect(OggPage.lacing(packetSize: size) == expected)
    }

    @Test("random pages survive serialize → parse, alone and back to back (seeded)")
    func roundTrip() throws {
        var rng = SplitMix64(seed: 0x3533)
        var pages: [OggPage] = []
        for _ in 0 ..< 200 {
            let table = (0 ..< Int.random(in: 0 ... 255, using: &rng)).map { _ in
                [UInt8(255), 255, 0, UInt8.random(in: 0 ... 255, using: &rng)].randomElement(using: &rng)!   // non-empty literal
            }
            let body = rng.bytes(table.reduce(0) { $0 + Int($1) })
            let page = try OggPage(flags: OggPage.Flags(rawValue: UInt8.random(in: 0 ... 7, using: &rng)),
                                   granulePosition: Int64(bitPattern: rng.next()), serialNumber: UInt32.random(in: .min ... .max, using: &rng),
                                   sequenceNumber: UInt32.random(in: .min ... .max, using: &rng), segmentTable: table, body: body)
            let bytes = page.serialized()
            #expect(bytes.count == page.serializedSize)
            #expect(try OggPage(parsing: bytes) == page)
            pages.append(page)
        }
        #expect(try OggPage.pages(in: pages.flatMap { $0.serialized() }) == pages)
    }

    @Test("refuses a segment table that does not describe the body")
    func inconsistentParts() {
        #expect(throws: ContainerError.invalidArgument(name: "body", reason: "3 bytes but the lacing values add up to 2")) {
            try OggPage(granulePosition: 0, serialNumber: 1, sequenceNumber: 0, segmentTable: [2], body: [1, 2, 3])
        }
        #expect(throws: ContainerError.self) {
            try OggPage(granulePosition: 0, serialNumber: 1, sequenceNumber: 0, segmentTable: Array(repeating: 0, count: 256), body: [])
        }
    }

    @Test("every truncated page is a .truncated error naming the part that is short")
    func truncated() {
        let page = Self.headPage
        for n in 0 ..< page.count {
            let expected: OggFormatError = n < 27 ? .truncated(field: .pageHeader, needed: 27, available: n)
                : n < 28 ? .truncated(field: .segmentTable, needed: 1, available: n - 27)
                : .truncated(field: .pageBody, needed: 19, available: n - 28)
            #expect(throws: expected) { try OggPage(parsing: Array(page.prefix(n))) }
        }
    }

    @Test("a changed byte anywhere is caught: CRC, capture pattern, version, flags")
    func corrupted() {
        var body = Self.headPage
        body[40] ^= 0x01
        #expect(throws: OggFormatError.crcMismatch(stored: 0x5C85_6202, computed: OggCRC.checksum(zeroingCRC(body)))) {
            try OggPage(parsing: body)
        }
        var crc = Self.headPage
        crc[22] = 0x03
        #expect(throws: OggFormatError.crcMismatch(stored: 0x5C85_6203, computed: 0x5C85_6202)) { try OggPage(parsing: crc) }
        var capture = Self.headPage
        capture[3] = 0x73
        #expect(throws: OggFormatError.invalidValue(field: .capturePattern, reason: "[79, 103, 103, 115] is not \"OggS\"")) {
            try OggPage(parsing: capture)
        }
        var version = Self.headPage
        version[4] = 1
        #expect(throws: OggFormatError.unsupported(field: .streamStructureVersion, reason: "version 1, only 0 exists")) {
            try OggPage(parsing: version)
        }
        var flags = Self.headPage
        flags[5] = 0x0A
        #expect(throws: OggFormatError.invalidValue(field: .headerType, reason: "reserved bits set in 0xa")) {
            try OggPage(parsing: flags)
        }
        #expect(throws: OggFormatError.self) { try OggPage.pages(in: Self.headPage + [0x4F]) }
    }

    private func zeroingCRC(_ page: [UInt8]) -> [UInt8] {
        var copy = page
        copy.replaceSubrange(22 ..< 26, with: [0, 0, 0, 0])
        return copy
    }

    @Test("mutated pages never trap; whatever parses re-serializes to the bytes it came from (seeded)")
    func mutations() throws {
        var rng = SplitMix64(seed: 0x0665)
        let spanning = try OggPage(flags: .continued, granulePosition: -1, serialNumber: 7, sequenceNumber: 9,
                                   segmentTable: [255, 255, 3], body: rng.bytes(513))
        let seeds = [Self.headPage, Self.tagsPage, spanning.serialized(), Self.headPage + Self.tagsPage]
        var parsed = 0
        for _ in 0 ..< 3000 {
            var input = Mutator.mutate(seeds.randomElement(using: &rng)!, using: &rng)   // non-empty literal
            if Bool.random(using: &rng), input.count >= 27 {
                // Also reach past the CRC check: fix the CRC of the mutated bytes.
                let n = min(input.count, 27 + Int(input[26]) + 65025)
                input.replaceSubrange(22 ..< 26, with: [0, 0, 0, 0])
                let crc = OggCRC.checksum(input.prefix(n))
                input.replaceSubrange(22 ..< 26, with: (0 ..< 4).map { UInt8(truncatingIfNeeded: crc >> (8 * $0)) })
            }
            if let page = try? OggPage(parsing: input) {
                parsed += 1
                #expect(page.serialized() == Array(input.prefix(page.serializedSize)))
            }
            _ = try? OggPage.pages(in: input)
        }
        #expect(parsed > 100)
    }
}

@Suite("Ogg Opus headers (RFC 7845 §5)")
struct OggOpusHeaderTests {
    @Test("OpusHead matches opusenc's mono header and round-trips")
    func opusHead() throws {
        let head = try OpusHead(channels: 1, preSkip: 312)
        #expect(head.serialized() == hex("4f 70 75 73 48 65 61 64 01 01 38 01 80 bb 00 00 00 00 00"))
        #expect(try OpusHead(parsing: head.serialized()) == head)
        let janus = try OpusHead(channels: 2, preSkip: 0, inputSampleRate: 48_000, outputGain: -256)
        #expect(janus.serialized() == hex("4f 70 75 73 48 65 61 64 01 02 00 00 80 bb 00 00 00 ff 00"))
        #expect(try OpusHead(parsing: janus.serialized()) == janus)
        // A later minor version may append fields (RFC 7845 §5.1): accepted, extra bytes ignored.
        var minor = head.serialized()
        minor[8] = 15
        #expect(try OpusHead(parsing: minor + [1, 2, 3]).preSkip == 312)
    }

    @Test("OpusHead refuses what family 0 cannot carry", arguments: [
        ("4f 70 75 73 48 65 61 64 01 01 38 01 80 bb 00 00 00 00", OggFormatError.truncated(field: .opusHead, needed: 19, available: 18)),
        ("4f 70 75 73 48 65 61 65 01 01 38 01 80 bb 00 00 00 00 00", .invalidValue(field: .opusHead, reason: "does not start with \"OpusHead\"")),
        ("4f 70 75 73 48 65 61 64 10 01 38 01 80 bb 00 00 00 00 00", .unsupported(field: .opusHeadVersion, reason: "major version 1, only 0 is defined")),
        ("4f 70 75 73 48 65 61 64 01 00 38 01 80 bb 00 00 00 00 00", .invalidValue(field: .channelCount, reason: "0 channels")),
        ("4f 70 75 73 48 65 61 64 01 03 38 01 80 bb 00 00 00 00 00", .invalidValue(field: .channelCount, reason: "3 channels; family 0 allows 1 or 2")),
        ("4f 70 75 73 48 65 61 64 01 02 38 01 80 bb 00 00 00 00 01 01 01 00 01", .unsupported(field: .channelMappingFamily, reason: "family 1; only family 0 is supported")),
    ])
    func badHead(bytes: String, error: OggFormatError) {
        #expect(throws: error) { try OpusHead(parsing: hex(bytes)) }
    }

    @Test("OpusHead's initializer checks channels and pre-skip")
    func headArguments() {
        #expect(throws: ContainerError.self) { try OpusHead(channels: 3, preSkip: 0) }
        #expect(throws: ContainerError.self) { try OpusHead(channels: 0, preSkip: 0) }
        #expect(throws: ContainerError.self) { try OpusHead(channels: 1, preSkip: 65_536) }
        #expect(throws: ContainerError.self) { try OpusHead(channels: 1, preSkip: -1) }
    }

    @Test("OpusTags round-trips vendor and comments, UTF-8 values included")
    func opusTags() throws {
        let tags = try OpusTags(vendor: "percrec 1.0", comments: ["ENCODER=percrec", "TITLE=Réunion ☎", "RECORDING_START_NTP=3913056000.25", "X="])
        let bytes = tags.serialized()
        #expect(Array(bytes.prefix(12)) == hex("4f 70 75 73 54 61 67 73 0b 00 00 00"))
        #expect(try OpusTags(parsing: bytes) == tags)
        #expect(try OpusTags(parsing: bytes + [0x00, 0x00]) == tags)   // padding after the comments is ignored
    }

    @Test("comment names must be ASCII 0x20…0x7D without '=' and precede a '='", arguments: [
        "NOEQUALS", "=value", "TILDE~=x", "TAB\t=x", "ÉTÉ=x",
    ])
    func badComment(comment: String) {
        #expect(throws: ContainerError.self) { try OpusTags(vendor: "v", comments: [comment]) }
    }

    @Test("OpusTags parsing refuses lengths past the end and non-UTF-8 text")
    func badTags() throws {
        let good = try OpusTags(vendor: "abc", comments: ["A=1"]).serialized()
        for n in 0 ..< good.count {
            #expect(throws: OggFormatError.self) { try OpusTags(parsing: Array(good.prefix(n))) }
        }
        var hugeCount = try OpusTags(vendor: "abc").serialized()
        hugeCount.replaceSubrange(15 ..< 19, with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: OggFormatError.truncated(field: .userComment, needed: 4 * 0xFFFF_FFFF, available: 0)) {
            try OpusTags(parsing: hugeCount)
        }
        var badUTF8 = good
        badUTF8[12] = 0xFF
        #expect(throws: OggFormatError.invalidValue(field: .vendorString, reason: "not UTF-8")) { try OpusTags(parsing: badUTF8) }
        var magic = good
        magic[7] = 0x54
        #expect(throws: OggFormatError.invalidValue(field: .opusTags, reason: "does not start with \"OpusTags\"")) {
            try OpusTags(parsing: magic)
        }
    }
}

@Suite("Ogg Opus writer (RFC 7845 §3-4)")
struct OggOpusWriterTests {
    static let preSkip = 312

    private func makeWriter(_ name: String = "w.opus", maxPageSamples: Int = 48_000) throws -> OggOpusWriter {
        let path = makeTemporaryDirectory("ogg-writer") + "/" + name
        return try OggOpusWriter(path: path, head: OpusHead(channels: 1, preSkip: Self.preSkip),
                                 tags: OpusTags(vendor: "percrec tests"), serial: 0xCAFE_F00D, maxPageSamples: maxPageSamples)
    }

    private func pages(_ path: String) throws -> [OggPage] {
        try OggPage.pages(in: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    @Test("header pages, page cuts every maxPageSamples, granules, sequence numbers and EOS on the last page only")
    func layout() throws {
        let writer = try makeWriter()
        for i in 0 ..< 120 { try writer.append([0xF8, UInt8(i)], samples: 960) }
        let summary = try writer.finish()
        let file = try pages(writer.path)
        #expect(file.count == 5 && summary.pages == 5)
        #expect(file.map(\.sequenceNumber) == [0, 1, 2, 3, 4])
        #expect(file.allSatisfy { $0.serialNumber == 0xCAFE_F00D })
        #expect(file.map(\.flags) == [.beginningOfStream, [], [], [], .endOfStream])
        let head = try OpusHead(channels: 1, preSkip: 312)
        #expect(file[0].segmentTable == [19] && file[0].body == head.serialized())
        let tags = try OpusTags(vendor: "percrec tests")
        #expect(try OpusTags(parsing: file[1].body) == tags)
        // 1 s per page: 50 + 50 + 20 packets; granule = samples so far (pre-skip included).
        let granules: [Int64] = [0, 0, 48_000, 96_000, 115_200]
        #expect(file.map(\.granulePosition) == granules)
        #expect(file.map(\.completedPacketCount) == [1, 1, 50, 50, 20])
        let sent: [[UInt8]] = (0 ..< 120).map { [0xF8, UInt8($0)] }
        #expect(OggPage.packets(in: Array(file.dropFirst(2))) == sent)
        let bytes = file.reduce(0) { $0 + $1.serializedSize }
        #expect(summary.path == writer.path && summary.packets == 120 && summary.pages == 5)
        #expect(summary.granulePosition == 115_200 && summary.preSkip == 312 && summary.bytes == Int64(bytes))
        #expect(summary.samples == 114_888 && summary.durationSeconds == 114_888.0 / 48_000)
    }

    @Test("a page closes when its segment table is full (255 lacing values)")
    func segmentLimit() throws {
        let writer = try makeWriter()
        for _ in 0 ..< 300 { try writer.append([0xE0], samples: 120) }
        try writer.finish()
        let audio = try pages(writer.path).dropFirst(2)
        #expect(audio.map(\.segmentTable.count) == [255, 45])
        let granules: [Int64] = [255 * 120, 300 * 120]
        #expect(audio.map(\.granulePosition) == granules)
    }

    @Test("a 70 000-byte packet spans two pages: granule −1 on the first, continued flag on the second")
    func spanning() throws {
        var rng = SplitMix64(seed: 70_000)
        let big = rng.bytes(70_000)
        let writer = try makeWriter()
        try writer.append([0xF8], samples: 960)
        try writer.append(big, samples: 960)
        try writer.append([0xF8], samples: 960)
        try writer.finish()
        let audio = Array(try pages(writer.path).dropFirst(2))
        #expect(audio.count == 2)
        #expect(audio[0].segmentTable.count == 255 && audio[0].endsInsidePacket)
        #expect(audio[0].granulePosition == 960)   // the first packet ends there; the big one does not
        #expect(audio[1].flags == [.continued, .endOfStream])
        #expect(audio[1].granulePosition == 2880)
        let tail: [UInt8] = Array(repeating: 255, count: 20) + [130, 1]   // 70 000 = 274 × 255 + 130
        #expect(audio[1].segmentTable == tail)
        #expect(OggPage.packets(in: audio) == [[0xF8], big, [0xF8]])
    }

    @Test("a packet of 2 × 255 bytes ending exactly at a full page puts its terminating 0 on the next page")
    func multipleOf255AtBoundary() throws {
        let writer = try makeWriter()
        for _ in 0 ..< 253 { try writer.append([0xE0], samples: 120) }
        let packet = [UInt8](repeating: 0xAB, count: 510)
        try writer.append(packet, samples: 960)
        try writer.append([0xF8], samples: 960)
        try writer.finish()
        let audio = Array(try pages(writer.path).dropFirst(2))
        #expect(audio.count == 2)
        #expect(audio[0].segmentTable == Array(repeating: 1, count: 253) + [255, 255])
        #expect(audio[0].granulePosition == 253 * 120)
        #expect(audio[0].flags == [])
        #expect(audio[1].flags == [.continued, .endOfStream])
        #expect(audio[1].segmentTable == [0, 1])
        #expect(audio[1].granulePosition == 253 * 120 + 1920)
        #expect(OggPage.packets(in: audio).suffix(2) == [packet, [0xF8]])
    }

    @Test("end trimming lowers the EOS granule by at most the last packet (RFC 7845 §4.4)")
    func endTrim() throws {
        let writer = try makeWriter()
        for _ in 0 ..< 3 { try writer.append([0xF8], samples: 960) }
        #expect(throws: ContainerError.invalidArgument(name: "endTrim", reason: "961 samples; the last packet has 960 (RFC 7845 §4.4)")) {
            try writer.finish(endTrim: 961)
        }
        let summary = try writer.finish(endTrim: 500)
        #expect(summary.granulePosition == 2880 - 500)
        #expect(try pages(writer.path).last?.granulePosition == 2880 - 500)
    }

    @Test("finish without audio throws .invalidArgument and leaves the writer usable")
    func noPackets() throws {
        let writer = try makeWriter()
        #expect(throws: ContainerError.invalidArgument(name: "packets", reason: "no audio packet: ffmpeg and opusdec cannot open an empty Ogg Opus stream")) {
            try writer.finish()
        }
        try writer.append([0xF8], samples: 960)
        let summary = try writer.finish()
        #expect(summary.packets == 1 && summary.pages == 3)
        #expect(try pages(writer.path).map(\.flags) == [.beginningOfStream, [], .endOfStream])
    }

    @Test("after finish every call throws .finished; abandon deletes the file")
    func lifecycle() throws {
        let writer = try makeWriter()
        try writer.append([0xF8], samples: 960)
        try writer.finish()
        #expect(throws: ContainerError.finished(path: writer.path)) { try writer.append([0xF8], samples: 960) }
        #expect(throws: ContainerError.finished(path: writer.path)) { try writer.finish() }
        #expect(FileManager.default.fileExists(atPath: writer.path))

        let partial = try makeWriter("partial.opus")
        for _ in 0 ..< 100 { try partial.append([0xF8], samples: 960) }
        #expect(FileManager.default.fileExists(atPath: partial.path))
        partial.abandon()
        partial.abandon()
        #expect(!FileManager.default.fileExists(atPath: partial.path))
        #expect(throws: ContainerError.finished(path: partial.path)) { try partial.append([0xF8], samples: 960) }
    }

    @Test("bad arguments are refused before anything is written")
    func arguments() throws {
        let writer = try makeWriter()
        #expect(throws: ContainerError.self) { try writer.append([], samples: 960) }
        #expect(throws: ContainerError.self) { try writer.append([0xF8], samples: 0) }
        #expect(throws: ContainerError.self) { try writer.append([0xF8], samples: 5761) }
        #expect(throws: ContainerError.self) { try makeWriter("zero.opus", maxPageSamples: 0) }
        try writer.append([0xF8], samples: 960)
        #expect(try writer.finish().packets == 1)
    }

    @Test("a file that cannot be created is an .io error with errno and its text")
    func ioError() throws {
        let path = makeTemporaryDirectory("ogg-writer") + "/missing/dir/x.opus"
        do throws(ContainerError) {
            _ = try OggOpusWriter(path: path, head: OpusHead(channels: 1, preSkip: 0), tags: OpusTags(vendor: "v"), serial: 1)
            Issue.record("created \(path)")
        } catch {
            #expect(error == .io(path: path, operation: "open", errno: ENOENT, message: String(cString: strerror(ENOENT))))
        }
    }
}

/// Real Opus streams through the placer and the writer, checked by the reference tools.
@Suite("Ogg Opus files checked by oggz-validate, opusinfo, opusdec and ffmpeg")
struct OggOpusToolTests {
    /// Encodes `frames` 20 ms frames of synthetic speech. Packets of ≤ 2 bytes (DTX) are left out,
    /// as an RTP sender does; `removing` drops more (lost packets). Positions are 48 kHz samples.
    private func voicePackets(frames: Int, seed: UInt64, dtx: Bool, removing: Range<Int> = 0 ..< 0) throws
        -> (packets: [(position: Int64, bytes: [UInt8])], lookahead: Int) {
        var voice = try SyntheticVoice(seed: seed)
        let encoder = try OpusEncoder(.init(dtx: dtx))
        var packets: [(position: Int64, bytes: [UInt8])] = []
        for index in 0 ..< frames {
            let packet = try encoder.encode(voice.nextFrame())
            guard !(dtx && packet.count <= 2), !removing.contains(index) else { continue }
            packets.append((Int64(index * 960), packet))
        }
        return (packets, encoder.lookahead)
    }

    /// Places the packets from position 0, conceals up to `totalSamples`, writes the file.
    private func write(_ packets: [(position: Int64, bytes: [UInt8])], totalSamples: Int64, preSkip: Int, path: String) throws
        -> (OggOpusSummary, OpusTimelinePlacer.Statistics) {
        var placer = OpusTimelinePlacer()
        let writer = try OggOpusWriter(path: path, head: OpusHead(channels: 1, preSkip: preSkip),
                                       tags: OpusTags(vendor: "percrec tests", comments: ["ENCODER=percrec"]), serial: 0x0BAD_CAFE)
        for (position, bytes) in packets {
            for placed in try placer.place(bytes, at: position) { try writer.append(placed.packet, samples: placed.samples) }
        }
        for placed in placer.fill(upTo: totalSamples) { try writer.append(placed.packet, samples: placed.samples) }
        #expect(placer.nextPosition == totalSamples)
        return (try writer.finish(), placer.statistics)
    }

    /// What the tools say about a file; expectations are checked by the caller.
    private struct ToolReport {
        var duration: Double
        var opusdecSamples: Int
    }

    /// Runs the validators (each must be silent and content) and measures duration and decoded length.
    private func check(_ path: String) async throws -> ToolReport {
        let validate = try await runTool("oggz-validate", [path])
        #expect(validate.status == 0 && validate.stdout.isEmpty && validate.stderr.isEmpty, "oggz-validate: \(validate.stdout)\(validate.stderr)")
        let info = try await runTool("opusinfo", [path])
        let complaints = (info.stdout + info.stderr).split(separator: "\n").filter { $0.contains("WARNING") || $0.contains("ERROR") }
        #expect(info.status == 0 && complaints.isEmpty, "opusinfo: \(complaints)")
        let ffmpeg = try await runTool("ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"])
        #expect(ffmpeg.status == 0 && ffmpeg.stdout.isEmpty && ffmpeg.stderr.isEmpty, "ffmpeg: \(ffmpeg.stderr)")
        let probe = try await runTool("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path])
        let duration = Double(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        let wav = path + ".wav"
        let opusdec = try await runTool("opusdec", ["--quiet", path, wav])
        #expect(opusdec.status == 0, "opusdec: \(opusdec.stderr)")
        return ToolReport(duration: duration, opusdecSamples: try wavSampleCount(wav, channels: 1))
    }

    /// Samples per channel in a 16-bit PCM WAV file: the bytes after the "data" chunk header.
    private func wavSampleCount(_ path: String, channels: Int) throws -> Int {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var offset = 12
        while offset + 8 <= bytes.count {
            let size = bytes[offset + 4 ..< offset + 8].reversed().reduce(0) { $0 << 8 | Int($1) }
            if bytes[offset ..< offset + 4].elementsEqual("data".utf8) { return (bytes.count - offset - 8) / (2 * channels) }
            offset += 8 + size + size % 2
        }
        return -1
    }

    @Test("5 s of speech with DTX gaps: valid for every tool, 5 s long, decodes to 5 s")
    func speechWithDTX() async throws {
        let frames = 250
        let (packets, lookahead) = try voicePackets(frames: frames, seed: 21, dtx: true)
        #expect(packets.count < frames - 10, "DTX left gaps")
        let path = makeTemporaryDirectory("ogg-tools") + "/speech.opus"
        let total = Int64(frames * 960)
        let (summary, statistics) = try write(packets, totalSamples: total, preSkip: lookahead, path: path)
        #expect(statistics.placedPackets == packets.count && statistics.concealmentPackets > 0)
        #expect(statistics.concealedSamples + Int64(packets.count * 960) == total)
        #expect(statistics.shiftedPackets == 0 && statistics.droppedOverlaps == 0)
        #expect(summary.granulePosition == total)
        let report = try await check(path)
        // ffprobe: (granule − pre-skip) / 48000 = 4.9935 s; opusdec decodes everything and drops
        // the pre-skip: 240 000 − 312 samples.
        #expect(abs(report.duration - 5.0) <= 0.020, "ffprobe duration \(report.duration)")
        #expect(report.opusdecSamples == frames * 960 - lookahead, "opusdec decoded \(report.opusdecSamples) samples")
    }

    @Test("51 packets with 10…19 lost: concealment keeps the full stream's length for every tool")
    func lostPackets() async throws {
        let dir = makeTemporaryDirectory("ogg-gap")
        let full = try voicePackets(frames: 51, seed: 5, dtx: false)
        let lossy = try voicePackets(frames: 51, seed: 5, dtx: false, removing: 10 ..< 20)
        #expect(full.packets.count == 51 && lossy.packets.count == 41)
        let total = Int64(51 * 960)
        let (fullSummary, _) = try write(full.packets, totalSamples: total, preSkip: full.lookahead, path: dir + "/full.opus")
        let (gapSummary, statistics) = try write(lossy.packets, totalSamples: total, preSkip: lossy.lookahead, path: dir + "/gap.opus")
        #expect(statistics.concealedSamples == 9600 && statistics.concealmentPackets == 2)   // 6 + 4 frames of 20 ms
        #expect(gapSummary.granulePosition == fullSummary.granulePosition)
        let fullReport = try await check(dir + "/full.opus")
        let gapReport = try await check(dir + "/gap.opus")
        #expect(abs(gapReport.duration - fullReport.duration) < 0.001)
        #expect(abs(gapReport.duration - 1.02) <= 0.020, "ffprobe duration \(gapReport.duration)")
        #expect(gapReport.opusdecSamples == fullReport.opusdecSamples)
        #expect(gapReport.opusdecSamples == 51 * 960 - lossy.lookahead, "opusdec decoded \(gapReport.opusdecSamples) samples")
    }
}
