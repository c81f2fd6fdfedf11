import Foundation

/// Matroska element IDs the WebM writer uses, with their marker bits (RFC 8794, RFC 9559; webm.md §2).
public enum MatroskaID {
    public static let ebml: UInt32 = 0x1A45_DFA3
    public static let ebmlVersion: UInt32 = 0x4286
    public static let ebmlReadVersion: UInt32 = 0x42F7
    public static let ebmlMaxIDLength: UInt32 = 0x42F2
    public static let ebmlMaxSizeLength: UInt32 = 0x42F3
    public static let docType: UInt32 = 0x4282
    public static let docTypeVersion: UInt32 = 0x4287
    public static let docTypeReadVersion: UInt32 = 0x4285
    public static let void: UInt32 = 0xEC
    public static let segment: UInt32 = 0x1853_8067
    public static let seekHead: UInt32 = 0x114D_9B74
    public static let seek: UInt32 = 0x4DBB
    public static let seekID: UInt32 = 0x53AB
    public static let seekPosition: UInt32 = 0x53AC
    public static let info: UInt32 = 0x1549_A966
    public static let timestampScale: UInt32 = 0x2A_D7B1
    public static let duration: UInt32 = 0x4489
    public static let dateUTC: UInt32 = 0x4461
    public static let title: UInt32 = 0x7BA9
    public static let muxingApp: UInt32 = 0x4D80
    public static let writingApp: UInt32 = 0x5741
    public static let tracks: UInt32 = 0x1654_AE6B
    public static let trackEntry: UInt32 = 0xAE
    public static let trackNumber: UInt32 = 0xD7
    public static let trackUID: UInt32 = 0x73C5
    public static let trackType: UInt32 = 0x83
    public static let flagLacing: UInt32 = 0x9C
    public static let name: UInt32 = 0x536E
    public static let language: UInt32 = 0x22_B59C
    public static let codecID: UInt32 = 0x86
    public static let codecPrivate: UInt32 = 0x63A2
    public static let codecDelay: UInt32 = 0x56AA
    public static let seekPreRoll: UInt32 = 0x56BB
    public static let video: UInt32 = 0xE0
    public static let pixelWidth: UInt32 = 0xB0
    public static let pixelHeight: UInt32 = 0xBA
    public static let audio: UInt32 = 0xE1
    public static let samplingFrequency: UInt32 = 0xB5
    public static let channels: UInt32 = 0x9F
    public static let cluster: UInt32 = 0x1F43_B675
    public static let timestamp: UInt32 = 0xE7
    public static let simpleBlock: UInt32 = 0xA3
    public static let cues: UInt32 = 0x1C53_BB6B
    public static let cuePoint: UInt32 = 0xBB
    public static let cueTime: UInt32 = 0xB3
    public static let cueTrackPositions: UInt32 = 0xB7
    public static let cueTrack: UInt32 = 0xF7
    public static let cueClusterPosition: UInt32 = 0xF1
    public static let cueRelativePosition: UInt32 = 0xF0
}

/// The data of a SimpleBlock holding one frame, without lacing (RFC 9559 §10.2; webm.md §3.1).
///
/// ```
///  byte 0      track number, a VINT (track 1 = 0x81); 1 byte for tracks 1...126
///  byte 1-2    timestamp relative to the Cluster's, signed 16-bit big-endian, in ms (TimestampScale)
///  byte 3      flags: 0x80 key frame | 0x08 invisible | 0x06 lacing | 0x01 discardable
///  byte 4…     the frame
/// ```
public struct WebMSimpleBlock: Sendable, Equatable {
    public static let keyFrameFlag: UInt8 = 0x80
    public static let lacingMask: UInt8 = 0x06

    public var track: UInt64
    public var relativeTimestamp: Int16
    public var flags: UInt8
    public var frame: [UInt8]

    public var isKeyFrame: Bool { flags & Self.keyFrameFlag != 0 }

    public init(track: UInt64, relativeTimestamp: Int16, flags: UInt8, frame: [UInt8]) {
        self.track = track
        self.relativeTimestamp = relativeTimestamp
        self.flags = flags
        self.frame = frame
    }

    /// Reads a SimpleBlock's data (the element's body). Throws `.truncated` when the header is
    /// short, `.invalidValue` for a laced block (this subset never laces).
    public init(parsing data: ArraySlice<UInt8>) throws(EBMLParseError) {
        let track = try EBMLVarInt.read(data, at: data.startIndex)
        let header = data.startIndex + track.width
        guard data.endIndex - header >= 3 else {
            throw .truncated(offset: header, needed: 3, available: data.endIndex - header)
        }
        flags = data[header + 2]
        guard flags & Self.lacingMask == 0 else {
            throw .invalidValue(id: MatroskaID.simpleBlock, offset: header + 2, reason: "laced block")
        }
        self.track = track.value
        relativeTimestamp = Int16(bitPattern: UInt16(data[header]) << 8 | UInt16(data[header + 1]))
        frame = Array(data[(header + 3)...])
    }

    /// Bytes of the block's data.
    public var dataSize: Int { EBMLVarInt.width(of: track) + 3 + frame.count }

    /// Appends the whole SimpleBlock element (`A3`, size, data).
    public func write(to out: inout [UInt8]) {
        out.append(0xA3)
        out += EBMLVarInt.encode(UInt64(dataSize))
        out += EBMLVarInt.encode(track)
        out += [UInt8(truncatingIfNeeded: UInt16(bitPattern: relativeTimestamp) >> 8),
                UInt8(truncatingIfNeeded: relativeTimestamp), flags]
        out += frame
    }
}

/// The VP8 track of a WebM file.
public struct WebMVideoTrack: Sendable, Equatable {
    /// PixelWidth/PixelHeight: the size in the first key frame's header (webm.md §7), 1...16383.
    public var width: Int
    public var height: Int
    /// Track name, e.g. the participant's.
    public var name: String?

    public init(width: Int, height: Int, name: String? = nil) {
        self.width = width
        self.height = height
        self.name = name
    }
}

/// The Opus track of a WebM file (codec mapping A_OPUS; webm.md §6).
public struct WebMAudioTrack: Sendable, Equatable {
    /// The 19-byte OpusHead (RFC 7845 §5.1), stored as CodecPrivate.
    public var codecPrivate: [UInt8]
    /// Must equal OpusHead's channel count (byte 9).
    public var channels: Int
    /// CodecDelay: OpusHead's pre-skip in ns (`codecDelay(preSkip:)`).
    public var codecDelayNanoseconds: UInt64
    /// SeekPreRoll: decoder convergence after a seek, 80 ms recommended.
    public var seekPreRollNanoseconds: UInt64
    public var name: String?

    public init(codecPrivate: [UInt8], channels: Int, codecDelayNanoseconds: UInt64,
                seekPreRollNanoseconds: UInt64 = 80_000_000, name: String? = nil) {
        self.codecPrivate = codecPrivate
        self.channels = channels
        self.codecDelayNanoseconds = codecDelayNanoseconds
        self.seekPreRollNanoseconds = seekPreRollNanoseconds
        self.name = name
    }

    /// A pre-skip of 48 kHz samples in ns, rounded: 312 → 6,500,000.
    public static func codecDelay(preSkip: Int) -> UInt64 { (UInt64(max(0, preSkip)) * 1_000_000_000 + 24_000) / 48_000 }
}

/// What `WebMWriter.finish()` wrote.
public struct WebMSummary: Sendable, Equatable {
    public var clusters: Int
    public var cuePoints: Int
    public var videoFrames: Int
    public var audioPackets: Int
    /// The Info Duration: where the last frame or packet ends, in ms of presentation time (0 if empty).
    public var durationMilliseconds: Double
    /// Size of the file.
    public var bytes: Int64

    public init(clusters: Int, cuePoints: Int, videoFrames: Int, audioPackets: Int, durationMilliseconds: Double, bytes: Int64) {
        self.clusters = clusters
        self.cuePoints = cuePoints
        self.videoFrames = videoFrames
        self.audioPackets = audioPackets
        self.durationMilliseconds = durationMilliseconds
        self.bytes = bytes
    }
}

/// Writes a seekable WebM file: one VP8 and/or one Opus track (webm.md §4).
///
/// The file is written front to back: the EBML header, a Segment of unknown size, SeekHead, Void,
/// Info, Tracks, then each Cluster once it is complete (buffered in memory, written with its exact
/// size). `finish()` appends the Cues and patches the Segment size, the Duration and the Cues
/// entry of the SeekHead into space held by Void elements, so an unfinished file is still a valid
/// live-style WebM.
///
/// The two tracks are fed independently; blocks are buffered until the other track has moved
/// past them and then written in block-time order, audio before video at equal times. If one
/// track stops being fed, the other's blocks wait in memory until it resumes or `finish()`.
/// Not thread-safe.
public final class WebMWriter {
    public static let muxingApp = "percrec"
    /// An audio-only Cluster spans less than this many ms (RFC 9559 recommends ≤ 5 s).
    static let maxClusterSpan: Int64 = 5_000
    /// With video, clusters start at key frames (WebM guidelines), so one spans a whole GOP; only
    /// a GOP longer than this (libwebm's default cluster limit, within the int16 block offset)
    /// is cut at an inter frame.
    static let maxVideoClusterSpan: Int64 = 30_000
    /// A Cluster holds at most about this many bytes (≤ 5 MB recommended).
    static let maxClusterBytes = 5_000_000
    /// Audio-only files get at most one CuePoint per 500 ms (webm.md §9).
    static let minAudioCueSpacing: Int64 = 500
    /// The placeholders' sizes: a Seek with an 8-byte SeekPosition, and an 8-byte float Duration.
    private static let seekSize = 21, durationSize = 11

    public let path: String
    /// Track numbers: video is 1 when present, audio follows.
    public let videoTrackNumber: UInt64?
    public let audioTrackNumber: UInt64?

    private var file: UnsafeMutablePointer<FILE>?
    private var fileSize: Int64 = 0
    private let segmentDataStart: Int64
    private let cuesSeekOffset: Int64
    private let durationOffset: Int64
    private let codecDelay: Int64
    private var finished = false
    private var failure: ContainerError?

    private struct Block {
        var time: Int64          // ms, what the SimpleBlock carries
        var isKeyFrame: Bool
        var data: [UInt8]
    }

    /// A FIFO that drops consumed blocks in batches.
    private struct Queue {
        private var items: [Block] = []
        private var head = 0
        var first: Block? { head < items.count ? items[head] : nil }
        mutating func append(_ block: Block) { items.append(block) }
        mutating func removeFirst() -> Block? {
            guard let block = first else { return nil }
            head += 1
            if head >= 256, head * 2 >= items.count { items.removeFirst(head); head = 0 }
            return block
        }
    }

    private struct Track {
        var queue = Queue()
        var count = 0
        var lastTimestamp: Int64?    // ns, as given
        var lastBlockTime: Int64?    // ms
        var end: Int64 = 0           // ns, presentation end of the last frame
        var lastDuration: Int64 = 0  // ns
    }

    private struct Cluster {
        var position: Int64          // Segment Position
        var timestamp: Int64         // ms
        var body: [UInt8]
        var blocks = 0
        var videoBlocks = 0
        var keyFrameTime: Int64?     // opened for the video key frame at this time
    }

    private struct Cue { var time: Int64; var track: UInt64; var cluster: Int64; var relative: Int? }

    private var video = Track(), audio = Track()
    private var cluster: Cluster?
    private var clusters = 0
    private var cues: [Cue] = []

    /// Validates the tracks, creates (or truncates) `path` and writes everything up to Tracks.
    ///
    /// Throws `.invalidArgument` (nothing created) without a track, for a size outside 1...16383,
    /// a CodecPrivate that is not an OpusHead, channels that differ from it, a CodecDelay over
    /// OpusHead's largest pre-skip, or an unrepresentable date; `.io` when the file can't be written.
    public init(path: String, video videoTrack: WebMVideoTrack?, audio audioTrack: WebMAudioTrack?,
                title: String? = nil, date: Date? = nil, writingApp: String) throws(ContainerError) {
        self.path = path
        guard videoTrack != nil || audioTrack != nil else {
            throw .invalidArgument(name: "tracks", reason: "a WebM file needs a video or an audio track")
        }
        var entries: [EBMLElement] = []
        func common(_ number: UInt64, type: UInt64, codec: String, name: String?) -> [EBMLElement] {
            [.uint(MatroskaID.trackNumber, number), .uint(MatroskaID.trackUID, .random(in: 1 ... .max)),
             .uint(MatroskaID.trackType, type), .uint(MatroskaID.flagLacing, 0)]
                + (name.map { [.string(MatroskaID.name, $0)] } ?? [])
                + [.string(MatroskaID.language, "und"), .string(MatroskaID.codecID, codec)]
        }
        if let v = videoTrack {
            guard (1 ... 16_383).contains(v.width), (1 ... 16_383).contains(v.height) else {
                throw .invalidArgument(name: "video size", reason: "\(v.width)×\(v.height) outside 1...16383 (VP8's 14 bits)")
            }
            videoTrackNumber = 1
            entries.append(.master(MatroskaID.trackEntry, common(1, type: 1, codec: "V_VP8", name: v.name) + [
                .master(MatroskaID.video, [.uint(MatroskaID.pixelWidth, UInt64(v.width)),
                                           .uint(MatroskaID.pixelHeight, UInt64(v.height))]),
            ]))
        } else {
            videoTrackNumber = nil
        }
        if let a = audioTrack {
            let head = a.codecPrivate
            guard head.count >= 19, head.starts(with: Array("OpusHead".utf8)) else {
                throw .invalidArgument(name: "codecPrivate", reason: "\(head.count) bytes, not an OpusHead (RFC 7845 §5.1)")
            }
            guard a.channels == Int(head[9]), a.channels > 0 else {
                throw .invalidArgument(name: "channels", reason: "\(a.channels), OpusHead says \(head[9])")
            }
            guard a.codecDelayNanoseconds <= WebMAudioTrack.codecDelay(preSkip: 65_535) else {
                throw .invalidArgument(name: "codecDelay", reason: "\(a.codecDelayNanoseconds) ns exceeds a 65535-sample pre-skip")
            }
            let number: UInt64 = videoTrack == nil ? 1 : 2
            audioTrackNumber = number
            codecDelay = Int64(a.codecDelayNanoseconds)
            entries.append(.master(MatroskaID.trackEntry, common(number, type: 2, codec: "A_OPUS", name: a.name) + [
                .binary(MatroskaID.codecPrivate, head),
                .uint(MatroskaID.codecDelay, a.codecDelayNanoseconds),
                .uint(MatroskaID.seekPreRoll, a.seekPreRollNanoseconds),
                .master(MatroskaID.audio, [.float(MatroskaID.samplingFrequency, 48_000),
                                           .uint(MatroskaID.channels, UInt64(a.channels))]),
            ]))
        } else {
            audioTrackNumber = nil
            codecDelay = 0
        }
        var infoChildren: [EBMLElement] = [.uint(MatroskaID.timestampScale, 1_000_000), .void(totalSize: Self.durationSize)]
        if let date {
            // DateUTC: ns since 2001-01-01T00:00:00 UTC, Foundation's reference date.
            let ns = (date.timeIntervalSinceReferenceDate * 1e9).rounded()
            guard ns.isFinite, abs(ns) < 9e18 else {
                throw .invalidArgument(name: "date", reason: "\(date) does not fit a Matroska date")
            }
            infoChildren.append(.int(MatroskaID.dateUTC, Int64(ns), width: 8))
        }
        if let title { infoChildren.append(.string(MatroskaID.title, title)) }
        infoChildren += [.string(MatroskaID.muxingApp, Self.muxingApp), .string(MatroskaID.writingApp, writingApp)]

        // Positions inside the Segment: SeekHead (fixed size), Void, Info, Tracks.
        let info = EBMLElement.master(MatroskaID.info, infoChildren)
        let tracks = EBMLElement.master(MatroskaID.tracks, entries)
        func seek(_ id: UInt32, _ position: Int) -> EBMLElement {
            .master(MatroskaID.seek, [.binary(MatroskaID.seekID, EBMLElement.idBytes(id)),
                                      .uint(MatroskaID.seekPosition, UInt64(position), width: 8)])
        }
        let reserve = EBMLElement.void(totalSize: 48)   // room for two more Seeks (Tags, Chapters)
        let seekHeadSize = EBMLElement.master(MatroskaID.seekHead, [seek(MatroskaID.info, 0), seek(MatroskaID.tracks, 0),
                                                                        .void(totalSize: Self.seekSize)]).serializedSize
        let infoPosition = seekHeadSize + reserve.serializedSize
        let tracksPosition = infoPosition + info.serializedSize
        let seekHead = EBMLElement.master(MatroskaID.seekHead, [seek(MatroskaID.info, infoPosition),
                                                                seek(MatroskaID.tracks, tracksPosition),
                                                                .void(totalSize: Self.seekSize)])
        var bytes = Self.ebmlHeader.serialized
        bytes += EBMLElement.idBytes(MatroskaID.segment) + EBMLVarInt.unknownSize(width: 8)
        segmentDataStart = Int64(bytes.count)
        cuesSeekOffset = segmentDataStart + Int64(seekHeadSize - Self.seekSize)
        durationOffset = segmentDataStart + Int64(infoPosition + info.serializedSize - info.dataSize)
            + Int64(infoChildren[0].serializedSize)
        for element in [seekHead, reserve, info, tracks] { element.write(to: &bytes) }

        guard let handle = fopen(path, "wb") else { throw Self.ioError(path, "fopen") }
        file = handle
        try put(bytes)
    }

    deinit {
        if let file { fclose(file) }   // an unfinished file stays valid, with unknown sizes
    }

    /// The EBML header: EBML 1, DocType "webm" version 4 (for CodecDelay/SeekPreRoll), read version 2.
    public static let ebmlHeader = EBMLElement.master(MatroskaID.ebml, [
        .uint(MatroskaID.ebmlVersion, 1), .uint(MatroskaID.ebmlReadVersion, 1),
        .uint(MatroskaID.ebmlMaxIDLength, 4), .uint(MatroskaID.ebmlMaxSizeLength, 8),
        .string(MatroskaID.docType, "webm"), .uint(MatroskaID.docTypeVersion, 4), .uint(MatroskaID.docTypeReadVersion, 2),
    ])

    /// A VP8 frame presented at `timestamp` ns from the file origin (≥ 0). Per-track timestamps must
    /// not decrease (`.outOfOrder`). The first video frame must be a key frame (`.invalidArgument`).
    public func addVideoFrame(_ frame: [UInt8], timestamp: Int64, isKeyFrame: Bool) throws(ContainerError) {
        try checkUsable()
        guard videoTrackNumber != nil else { throw .invalidArgument(name: "video", reason: "the file has no video track") }
        try check(frame, timestamp, video, track: "video")
        guard video.count > 0 || isKeyFrame else {
            throw .invalidArgument(name: "frame", reason: "the first video frame must be a key frame")
        }
        if let last = video.lastTimestamp { video.lastDuration = timestamp - last }
        video.end = timestamp + video.lastDuration
        try enqueue(Block(time: Self.milliseconds(timestamp), isKeyFrame: isKeyFrame, data: frame), into: \.video, timestamp)
    }

    /// An Opus packet presented at `timestamp` ns; its block time is `timestamp` + CodecDelay
    /// (webm.md §6), which must be ≥ 0. Per-track timestamps must not decrease.
    ///
    /// In Matroska terms `timestamp` is when the packet's first decoded sample plays; the decoder
    /// drops the first CodecDelay of the stream. So a first packet at −CodecDelay puts the first
    /// post-pre-skip sample at 0 (ffmpeg's convention), and packet k of 20 ms at k·20 ms − CodecDelay.
    public func addAudioPacket(_ packet: [UInt8], timestamp: Int64) throws(ContainerError) {
        try checkUsable()
        guard audioTrackNumber != nil else { throw .invalidArgument(name: "audio", reason: "the file has no audio track") }
        try check(packet, timestamp, audio, track: "audio", earliest: -codecDelay)
        let samples = (try? OpusPayload(parsing: packet))?.sampleCount
        let last = audio.lastTimestamp
        audio.lastDuration = samples.map { Int64($0) * 1_000_000_000 / 48_000 } ?? last.map { timestamp - $0 } ?? 20_000_000
        audio.end = timestamp + audio.lastDuration
        try enqueue(Block(time: Self.milliseconds(timestamp + codecDelay), isKeyFrame: true, data: packet), into: \.audio, timestamp)
    }

    /// Writes what is buffered, the last Cluster and the Cues, patches the sizes, Duration and
    /// SeekHead, and closes the file.
    public func finish() throws(ContainerError) -> WebMSummary {
        try checkUsable()
        do throws(ContainerError) {
            try drain(final: true)
            try closeCluster()
            if !cues.isEmpty {
                let seek = EBMLElement.master(MatroskaID.seek, [
                    .binary(MatroskaID.seekID, EBMLElement.idBytes(MatroskaID.cues)),
                    .uint(MatroskaID.seekPosition, UInt64(fileSize - segmentDataStart), width: 8)])
                try put(cuesElement().serialized)
                try patch(seek.serialized, at: cuesSeekOffset, size: Self.seekSize)
            }
            let end = max(video.end, audio.end)
            if end > 0 {
                try patch(EBMLElement.float(MatroskaID.duration, Double(end) / 1e6).serialized, at: durationOffset, size: Self.durationSize)
            }
            try patch(EBMLVarInt.encode(UInt64(fileSize - segmentDataStart), width: 8), at: segmentDataStart - 8, size: 8)
            let handle = file
            file = nil
            finished = true
            if let handle, fclose(handle) != 0 { throw Self.ioError(path, "fclose") }
            return WebMSummary(clusters: clusters, cuePoints: cues.count, videoFrames: video.count, audioPackets: audio.count,
                               durationMilliseconds: Double(end) / 1e6, bytes: fileSize)
        } catch {
            failure = error
            throw error
        }
    }

    /// Closes the file and deletes it. Does nothing after a successful `finish()`.
    public func abandon() {
        guard !finished else { return }
        finished = true
        if let file { fclose(file) }
        file = nil
        unlink(path)
    }

    // MARK: Interleaving and clusters

    /// Rounds ns to the nearest ms (half up), from the exact value every time (webm.md §6).
    static func milliseconds(_ ns: Int64) -> Int64 { ns / 1_000_000 + (ns % 1_000_000 >= 500_000 ? 1 : 0) }

    private func check(_ data: [UInt8], _ timestamp: Int64, _ track: Track, track name: String,
                       earliest: Int64 = 0) throws(ContainerError) {
        guard !data.isEmpty else { throw .invalidArgument(name: "\(name) frame", reason: "empty") }
        guard timestamp >= earliest, timestamp <= Int64.max / 2 else {
            throw .invalidArgument(name: "timestamp", reason: "\(timestamp) ns is outside \(earliest)...2^62")
        }
        if let last = track.lastTimestamp, timestamp < last { throw .outOfOrder(track: name, previous: last, next: timestamp) }
    }

    private func enqueue(_ block: Block, into track: ReferenceWritableKeyPath<WebMWriter, Track>, _ timestamp: Int64) throws(ContainerError) {
        self[keyPath: track].queue.append(block)
        self[keyPath: track].count += 1
        self[keyPath: track].lastTimestamp = timestamp
        self[keyPath: track].lastBlockTime = block.time
        try drain(final: false)
    }

    /// Writes every queued block that no future block can precede: an audio block at t once video
    /// has reached t, a video block at t once audio is past t (audio goes first at equal times).
    private func drain(final: Bool) throws(ContainerError) {
        let videoHorizon = videoTrackNumber == nil ? Int64.max : video.lastBlockTime ?? .min
        let audioHorizon = audioTrackNumber == nil ? Int64.max : audio.lastBlockTime ?? .min
        while true {
            let a = audio.queue.first, v = video.queue.first
            let takeAudio: Bool
            if let a, let v {
                takeAudio = a.time <= v.time
            } else if let a, final || a.time <= videoHorizon {
                takeAudio = true
            } else if let v, final || v.time < audioHorizon {
                takeAudio = false
            } else {
                return
            }
            // The queues are non-empty on the side chosen.
            guard let block = takeAudio ? audio.queue.removeFirst() : video.queue.removeFirst() else { return }
            try write(block, isVideo: !takeAudio)
        }
    }

    /// Appends a block to the current Cluster, first starting a new one at a video key frame (or at
    /// audio sharing its time), after 5 s, or at 5 MB (webm.md §8); records CuePoints (§9).
    private func write(_ block: Block, isVideo: Bool) throws(ContainerError) {
        let next = video.queue.first
        let keyFrameTime: Int64? = isVideo ? (block.isKeyFrame ? block.time : nil)
            : (next?.isKeyFrame == true && next?.time == block.time ? block.time : nil)
        let simple = WebMSimpleBlock(track: (isVideo ? videoTrackNumber : audioTrackNumber) ?? 1,
                                     relativeTimestamp: 0, flags: block.isKeyFrame ? WebMSimpleBlock.keyFrameFlag : 0,
                                     frame: block.data)
        var startNew = cluster == nil
        if let c = cluster {
            let openedForThisKeyFrame = c.keyFrameTime == keyFrameTime && c.videoBlocks == 0
            startNew = (keyFrameTime != nil && !openedForThisKeyFrame)
                || block.time - c.timestamp >= (videoTrackNumber == nil ? Self.maxClusterSpan : Self.maxVideoClusterSpan)   // int16 offset ≤ 32767
                || c.body.count + simple.dataSize > Self.maxClusterBytes
        }
        if startNew {
            try closeCluster()
            cluster = Cluster(position: fileSize - segmentDataStart, timestamp: block.time,
                              body: EBMLElement.uint(MatroskaID.timestamp, UInt64(block.time)).serialized, keyFrameTime: keyFrameTime)
        }
        guard var c = cluster else { return }   // set just above
        let track = simple.track
        if isVideo, block.isKeyFrame {
            cues.append(Cue(time: block.time, track: track, cluster: c.position, relative: c.blocks == 0 ? nil : c.body.count))
        } else if videoTrackNumber == nil, c.blocks == 0,
                  cues.last.map({ block.time - $0.time >= Self.minAudioCueSpacing }) ?? true {
            cues.append(Cue(time: block.time, track: track, cluster: c.position, relative: nil))
        }
        var placed = simple
        placed.relativeTimestamp = Int16(block.time - c.timestamp)   // 0...4999 by the span rule
        placed.write(to: &c.body)
        c.blocks += 1
        if isVideo { c.videoBlocks += 1 }
        cluster = c
    }

    private func closeCluster() throws(ContainerError) {
        guard let c = cluster else { return }
        cluster = nil
        try put(EBMLElement.idBytes(MatroskaID.cluster) + EBMLVarInt.encode(UInt64(c.body.count)))
        try put(c.body)
        clusters += 1
    }

    private func cuesElement() -> EBMLElement {
        .master(MatroskaID.cues, cues.map { cue in
            .master(MatroskaID.cuePoint, [
                .uint(MatroskaID.cueTime, UInt64(cue.time)),
                .master(MatroskaID.cueTrackPositions, [.uint(MatroskaID.cueTrack, cue.track),
                                                       .uint(MatroskaID.cueClusterPosition, UInt64(cue.cluster))]
                        + (cue.relative.map { [.uint(MatroskaID.cueRelativePosition, UInt64($0))] } ?? [])),
            ])
        })
    }

    // MARK: File

    private func checkUsable() throws(ContainerError) {
        if let failure { throw failure }
        if finished { throw .finished(path: path) }
    }

    private static func ioError(_ path: String, _ operation: String) -> ContainerError {
        let code = errno
        return .io(path: path, operation: operation, errno: code, message: String(cString: strerror(code)))
    }

    /// Appends at the end of the file. A failure makes every later call throw the same error.
    private func put(_ bytes: [UInt8]) throws(ContainerError) {
        guard let file else { throw .finished(path: path) }
        let written = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, file) }
        guard written == bytes.count else {
            let error = Self.ioError(path, "fwrite")
            failure = error
            throw error
        }
        fileSize += Int64(bytes.count)
    }

    /// Overwrites `size` bytes at `offset` (a placeholder) with `bytes`, then returns to the end.
    private func patch(_ bytes: [UInt8], at offset: Int64, size: Int) throws(ContainerError) {
        precondition(bytes.count == size, "patch of \(bytes.count) bytes into a \(size)-byte placeholder")
        guard let file else { throw .finished(path: path) }
        guard fseeko(file, off_t(offset), SEEK_SET) == 0 else { throw Self.ioError(path, "fseeko") }
        guard bytes.withUnsafeBufferPointer({ fwrite($0.baseAddress, 1, $0.count, file) }) == size else {
            throw Self.ioError(path, "fwrite")
        }
        guard fseeko(file, 0, SEEK_END) == 0 else { throw Self.ioError(path, "fseeko") }
    }
}
