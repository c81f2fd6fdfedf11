import Archive
import Authority
import EKT
import Export
import Foundation
import Media
import Recorder
import RTPWire
import SRTP
import Testing
import TestSupport

// Synthetic PERC archives for export tests: packets are made by `PERCSender` from real
// libopus/libvpx payloads, opened on the sender's hop and re-sealed towards the recorder the way
// a Media Distributor does (`DoubleSRTPRelay.sealHop`), and fed to the recorder's own receive
// path (`ArchivingReceiver`) with controlled arrival times. No sockets, no clocks.

/// 2026-11-22T10:00:00Z: the wall-clock time the synthetic conferences start at.
let conferenceBase = 1_795_341_600.0

/// Unix seconds as a 64-bit NTP timestamp (RFC 3550 §4).
func ntpTimestamp(unix: Double) -> UInt64 {
    let ntp = unix + 2_208_988_800
    let seconds = ntp.rounded(.down)
    return UInt64(seconds) << 32 | UInt64(((ntp - seconds) * 4_294_967_296).rounded(.down))
}

/// One packet as the Media Distributor holds it after opening the sender's hop layer.
struct SentPacket {
    var ssrc: UInt32
    var sequence: UInt16
    var timestamp: UInt32
    var marker: Bool
    var payload: [UInt8]
    /// Header ‖ inner ciphertext ‖ inner tag ‖ OHB: what the MD re-seals for each receiver.
    var hopOpened: [UInt8]
    /// The EKT field the sender appended (passes through the MD untouched).
    var ektTrailer: [UInt8]
    var hasFullField: Bool { ektTrailer.last == 0x02 }
}

/// A PERC sending endpoint and the MD's inbound hop session for it.
final class PERCStream {
    let ssrc: UInt32
    let payloadType: UInt8
    let sender: PERCSender
    let mdInbound: SRTPSession

    init(ssrc: UInt32, payloadType: UInt8, ektKey: EKTKeyMessage, fullRepeat: Int = 3, fullEvery: Int = 50) throws {
        self.ssrc = ssrc
        self.payloadType = payloadType
        let hopKey = SecretBytes(randomCount: 16), hopSalt = SecretBytes(randomCount: 12)
        sender = try PERCSender(ssrc: ssrc, outerKey: hopKey, outerSalt: hopSalt,
                                ektKey: try EKTParameterSet(message: ektKey, cipher: .aeskw128),
                                fullRepeat: fullRepeat, fullEvery: fullEvery)
        mdInbound = try SRTPSession(profile: .aeadAes128Gcm, masterKey: hopKey, masterSalt: hopSalt, direction: .inbound)
    }

    /// Protects one RTP packet end to end and on the hop, then opens the hop layer as the MD does.
    func send(sequence: UInt16, timestamp: UInt32, marker: Bool = false, payload: [UInt8]) throws -> SentPacket {
        var bytes = try RTPPacket(marker: marker, payloadType: payloadType, sequenceNumber: sequence, timestamp: timestamp,
                                  ssrc: ssrc, payload: payload).serialized()
        try sender.protect(&bytes)
        let fieldLength = try EKTField.parse(trailerOf: bytes).length
        let trailer = Array(bytes.suffix(fieldLength))
        bytes.removeLast(fieldLength)
        try mdInbound.unprotect(&bytes)
        return SentPacket(ssrc: ssrc, sequence: sequence, timestamp: timestamp, marker: marker, payload: payload,
                          hopOpened: bytes, ektTrailer: trailer)
    }
}

/// An EKTKey (one epoch of the conference).
func makeEKTKey(spi: UInt16) throws -> EKTKeyMessage {
    try EKTKeyMessage(ektKeyValue: SecretBytes(randomCount: 16), srtpMasterSalt: SecretBytes(randomCount: 12), spi: spi, ttl: 3600)
}

/// One archive with one recording segment fed through the recorder's receive path.
final class ArchiveFixture {
    let conference = "pipe"
    let directory: String
    let archive: Archive
    let authority: AuthorityPrivateKey
    let writer: SegmentWriter
    let receiver: ArchivingReceiver
    /// The MD → recorder hop (the recorder holds the matching inbound key).
    let mdOutbound: SRTPSession
    private var outerSequence: UInt16 = 1
    private(set) var rejected = 0

    init(authority: AuthorityPrivateKey = AuthorityPrivateKey(), startedAt: Double = conferenceBase) throws {
        directory = makeTemporaryDirectory("export-pipe")
        archive = try Archive(path: directory + "/archive.sqlite")
        self.authority = authority
        writer = try SegmentWriter(archive: archive, conference: conference, origin: .live(recorder: "test"),
                                   authorityKeyID: authority.publicKey.keyID, startedAt: startedAt)
        let hopKey = SecretBytes(randomCount: 16), hopSalt = SecretBytes(randomCount: 12)
        receiver = try ArchivingReceiver(writer: writer, outerKey: hopKey, outerSalt: hopSalt)
        mdOutbound = try SRTPSession(profile: .aeadAes128Gcm, masterKey: hopKey, masterSalt: hopSalt, direction: .outbound)
    }

    /// Seals `message` into the epoch ledger, to this fixture's authority or to `authority`.
    func addEpoch(_ message: EKTKeyMessage, sealedTo authority: AuthorityPublicKey? = nil, at time: Double = conferenceBase) throws {
        writer.record(epoch: try ArchivingReceiver.ledgerEntry(for: message, cipher: .aeskw128, conference: conference,
                                                               authority: authority ?? self.authority.publicKey, seenAt: time))
    }

    /// Binds `ssrcs` to a participant (a roster "join").
    func join(sequence: UInt32, name: String, fingerprint: String, ssrcs: [UInt32], at time: Double) {
        writer.record(roster: [ArchivedRosterEvent(sequence: sequence, kind: "join", fingerprint: fingerprint, name: name,
                                                   role: "participant", ssrcs: ssrcs, receivedAt: time)])
    }

    /// The MD forwards `packet` to the recorder (a fresh outer sequence number each time, so a
    /// packet forwarded twice reaches the archive twice), which receives it at `arrival`.
    @discardableResult
    func deliver(_ packet: SentPacket, arrival: Double) throws -> Bool {
        var buffer = packet.hopOpened + [UInt8](repeating: 0, count: 3 + mdOutbound.crypto.srtpOverhead)
        let rewrite = HeaderRewrite(sequenceNumber: outerSequence)
        let opened = packet.hopOpened.count
        let outbound = mdOutbound
        let n = try buffer.withUnsafeMutableBytes { raw throws(SRTPError) in
            try DoubleSRTPRelay.sealHop(raw, length: opened, rewrite: rewrite, outbound: outbound)
        }
        buffer.removeLast(buffer.count - n)
        buffer += packet.ektTrailer
        outerSequence &+= 1
        let stored = buffer.withUnsafeMutableBytes { receiver.receive($0, arrival: arrival) }
        if !stored { rejected += 1 }
        return stored
    }

    /// An RTCP compound from a sender, sealed on the MD → recorder hop (SRTCP) and received.
    @discardableResult
    func deliverRTCP(_ compound: RTCPCompoundPacket, arrival: Double) throws -> Bool {
        var bytes = compound.serialized()
        try mdOutbound.protectRTCP(&bytes)
        let stored = bytes.withUnsafeMutableBytes { receiver.receive($0, arrival: arrival) }
        if !stored { rejected += 1 }
        return stored
    }

    /// SR (+ SDES CNAME) for `ssrc`: `rtpTimestamp` is the sender's clock at `wall`.
    func deliverSenderReport(ssrc: UInt32, wall: Double, rtpTimestamp: UInt32, cname: String, arrival: Double) throws {
        let sr = RTCPSenderReport(ssrc: ssrc, ntpTimestamp: ntpTimestamp(unix: wall), rtpTimestamp: rtpTimestamp,
                                  packetCount: 0, octetCount: 0)
        let sdes = RTCPSourceDescription(chunks: [.init(ssrc: ssrc, items: [.init(type: RTCPSourceDescription.Item.cname, text: cname)])])
        #expect(try deliverRTCP(RTCPCompoundPacket(packets: [.senderReport(sr), .sourceDescription(sdes)]), arrival: arrival))
    }

    func finish() throws {
        try writer.finish(reason: "test", at: conferenceBase + 60)
    }

    /// Runs the exporter into a fresh output directory (which does not exist beforehand).
    func export(formats: Set<ExportRequest.Format>, key: AuthorityPrivateKey? = nil,
                into output: String? = nil) throws(ExportError) -> (summary: ExportSummary, directory: String) {
        let out = output ?? directory + "/out-\(UUID().uuidString.prefix(6))"
        let exporter = Exporter(archive: archive, authority: key ?? authority)
        let summary = try exporter.run(ExportRequest(conference: conference, outputDirectory: out, formats: formats))
        return (summary, out)
    }
}

// MARK: Media

/// `count` 20 ms Opus packets (48 kHz mono, DTX off) of a synthetic voice.
func opusPackets(count: Int, seed: UInt64) throws -> [[UInt8]] {
    let encoder = try OpusEncoder(.init(channels: 1, bitrate: 32_000, dtx: false))
    var voice = try SyntheticVoice(seed: seed)
    return try (0 ..< count).map { _ in try encoder.encode(voice.nextFrame()) }
}

/// VP8 frames of synthetic video; key frames at the indexes in `keyFrames` (and the first).
func vp8Frames(count: Int, width: Int = 320, height: Int = 240, keyFrames: Set<Int>) throws -> [VP8EncodedFrame] {
    let encoder = try VP8Encoder(.init(width: width, height: height, framesPerSecond: 30, targetBitrateKbps: 400))
    var video = try SyntheticVideo(width: width, height: height, framesPerSecond: 30, seed: 3)
    var frames: [VP8EncodedFrame] = []
    for i in 0 ..< count {
        if keyFrames.contains(i) { encoder.forceKeyFrame() }
        frames += try encoder.encode(video.nextFrame(), pts: Int64(i))
    }
    frames += try encoder.flush()
    return frames
}

// MARK: Reading outputs

func fileBytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

/// The packets of a one-stream Ogg file after the two header packets.
func oggAudioPackets(_ path: String) throws -> [[UInt8]] {
    let packets = OggPage.packets(in: try OggPage.pages(in: try fileBytes(path)))
    #expect(packets.count >= 2 && packets[0].starts(with: Array("OpusHead".utf8)) && packets[1].starts(with: Array("OpusTags".utf8)))
    return Array(packets.dropFirst(2))
}

/// A packet of zero-length frames only: concealment the exporter wrote, not sender audio.
func isConcealment(_ packet: [UInt8]) -> Bool {
    guard let parsed = try? OpusPayload(parsing: packet) else { return false }
    return parsed.frameLengths.allSatisfy { $0 == 0 }
}

func opusSamples(_ packet: [UInt8]) -> Int { (try? OpusPayload(parsing: packet).sampleCount) ?? 0 }

/// Every SimpleBlock of a WebM file with its absolute time (ms), and the track numbers by type.
struct WebMContents {
    var blocks: [(time: Int64, block: WebMSimpleBlock)] = []
    var trackTypes: [UInt64: UInt64] = [:]   // track number → TrackType (1 video, 2 audio)
    var videoTrack: UInt64? { trackTypes.first { $0.value == 1 }?.key }
    var videoBlocks: [(time: Int64, block: WebMSimpleBlock)] { blocks.filter { $0.block.track == videoTrack } }
}

func readWebM(_ path: String) throws -> WebMContents {
    let top = EBMLReader(try fileBytes(path))
    let segment = try #require(try top.first(MatroskaID.segment))
    let level = top.children(of: segment)
    var out = WebMContents()
    if let tracks = try level.first(MatroskaID.tracks) {
        let entries = level.children(of: tracks)
        for entry in try entries.elements(MatroskaID.trackEntry) {
            let fields = entries.children(of: entry)
            let number = try fields.uint(try #require(try fields.first(MatroskaID.trackNumber)))
            let type = try fields.uint(try #require(try fields.first(MatroskaID.trackType)))
            out.trackTypes[number] = type
        }
    }
    for cluster in try level.elements(MatroskaID.cluster) {
        let items = level.children(of: cluster)
        let base = try items.uint(try #require(try items.first(MatroskaID.timestamp)))
        for block in try items.elements(MatroskaID.simpleBlock) {
            let simple = try WebMSimpleBlock(parsing: items.data(of: block))
            out.blocks.append((Int64(base) + Int64(simple.relativeTimestamp), simple))
        }
    }
    return out
}

/// Runs the reference inspectors on a produced file (each must be content); returns ffprobe's duration.
func checkWithTools(_ path: String) async throws -> Double {
    let inspection = try await inspectMediaFile(path)
    #expect(inspection.problems.isEmpty, "\(path): \(inspection.problems)")
    return try #require(inspection.duration)
}
