import Archive
import Authority
import EKT
import Foundation
import Media
import RTPWire

/// Exports an archived conference: unseals the epoch keys with the archive authority's private
/// key, opens every selected packet end to end, puts each participant's sources on one
/// timeline, and writes Ogg Opus and WebM files (or one mixed Ogg Opus file).
///
/// Nothing is written until the key has opened the conference's epochs and every output name
/// has been checked; files are written under a `.part` name and renamed when complete, and a
/// failure removes what was started.
///
/// Which sources are audio (Opus) and video (VP8) comes from the archive's `source.media`, which
/// the recorder sets from the payload type (`SegmentWriter.Options.mediaKinds`).
public final class Exporter {
    /// Pre-skip written for recorded Opus: libopus's look-ahead at 48 kHz, which is what WebRTC
    /// senders (libopus) use; see ogg-opus.md §7.
    public static let recordedPreSkip = 312
    /// A sender clock further than this from arrival times is not wall-clock time.
    static let maximumClockOffset = 5.0

    let archive: Archive
    let authority: AuthorityPrivateKey
    /// Epoch keys released by the authority service, sealed to `authority` (a requester's
    /// one-time key); nil: the archive's own sealed keys, opened with the authority's key.
    let released: [ArchivedEpoch]?
    /// Epochs the authority refused ("SPI n: reason"), reported with the unopened ones.
    let refused: [String]
    var progress: (ExportProgress) -> Void = { _ in }
    /// Called with the resolved span (Unix seconds; `to` may be infinite) and the selected
    /// sources' SSRCs before anything is written; throwing stops the export. The CLI uses it to
    /// refuse a span the token does not cover.
    public var checkRange: ((_ from: Double, _ to: Double, _ ssrcs: [UInt32]) throws(ExportError) -> Void)?

    /// The administrator's path: the archive authority's private key opens every sealed epoch.
    public init(archive: Archive, authority: AuthorityPrivateKey) {
        self.archive = archive
        self.authority = authority
        released = nil
        refused = []
    }

    /// The token path: only the epoch keys the authority released, sealed to `requesterKey`.
    public init(archive: Archive, released: [ArchivedEpoch], requesterKey: AuthorityPrivateKey, refused: [String]) {
        self.archive = archive
        self.authority = requesterKey
        self.released = released
        self.refused = refused
    }

    /// A participant and the sources they sent.
    struct Participant {
        var name: String
        var fingerprint: String?
        var audio: [ExportableSource] = []
        var video: [ExportableSource] = []
    }

    /// State shared by the steps of one run.
    final class Run {
        let request: ExportRequest
        let keys: EpochKeyRing
        let fields: [StoredEKTField]
        var clocks: SenderClocks
        var origin = 0.0
        var end = Double.infinity
        var conferenceStart = 0.0
        var notes: [String] = []
        var sourceReports: [UInt32: ExportSummary.Source] = [:]
        var files: [ExportSummary.File] = []
        var partial: [String] = []
        var done = 0
        var total = 0
        var lastReport = 0
        /// Per-source time basis, with any clock correction applied.
        var timelines: [UInt32: SourceTimeline] = [:]

        init(request: ExportRequest, keys: EpochKeyRing, fields: [StoredEKTField], clocks: SenderClocks) {
            self.request = request
            self.keys = keys
            self.fields = fields
            self.clocks = clocks
        }
    }

    /// Runs the export. `progress` is called every few thousand packets.
    public func run(_ request: ExportRequest, progress: @escaping (ExportProgress) -> Void = { _ in }) throws(ExportError) -> ExportSummary {
        self.progress = progress
        let conference = request.conference
        let epochs: [ArchivedEpoch]
        if let released { epochs = released } else {
            do { epochs = try archive.epochs(conference: conference) } catch { throw Self.archiveError(error) }
        }
        // Authorization first: nothing is looked at further, or written, without the key.
        let keys = try EpochKeyRing(conference: conference, epochs: epochs, authority: authority)
        defer { keys.wipe() }

        let sources: [ExportableSource], fields: [StoredEKTField], rtcp: [(segment: Int64, arrival: Double, data: [UInt8])]
        do {
            sources = try archive.exportableSources(conference: conference)
            fields = try archive.ektFields(conference: conference)
            rtcp = try archive.rtcpPackets(conference: conference)
        } catch { throw Self.archiveError(error) }
        let run = Run(request: request, keys: keys, fields: fields, clocks: SenderClocks(rtcp: rtcp))
        if run.clocks.unreadable > 0 { run.notes.append("\(run.clocks.unreadable) stored RTCP packets could not be parsed") }

        let everyone = Self.participants(sources, cnames: run.clocks.cnames)
        let chosen = try Self.select(everyone, request.participants, conference: conference)
        try establishTimelines(run, sources: sources, participants: everyone)
        try resolveRange(run)
        // Audio is always read; video only for WebM.
        let readsVideo = !request.mix && request.formats.contains(.webm)
        try checkRange?(run.origin, run.end, chosen.flatMap { $0.audio + (readsVideo ? $0.video : []) }.map(\.ssrc))
        let plan = try planOutputs(run, chosen)

        // Progress counts the packets that will be read.
        run.total = chosen.reduce(0) { $0 + ($1.audio + (readsVideo ? $1.video : [])).reduce(0) { $0 + $1.packets } }
        do {
            try FileManager.default.createDirectory(atPath: request.outputDirectory, withIntermediateDirectories: true)
        } catch {
            throw .output(.io(path: request.outputDirectory, operation: "create directory", errno: 0, message: "\(error.localizedDescription)"))
        }
        do throws(ExportError) {
            if request.mix {
                var tracks: [AudioTrack] = []
                for p in chosen where !p.audio.isEmpty { tracks.append(try collectAudio(run, p)) }
                guard let path = plan.first?.path else { throw .nothingToExport("no audio in the selection") }
                try writeMix(run, tracks, path: path)
            } else {
                for p in chosen {
                    let audio = try collectAudio(run, p)
                    for output in plan where output.participant == p.name {
                        switch output.format {
                        case .ogg: try writeOgg(run, audio, participant: p, path: output.path)
                        case .webm: try writeWebM(run, audio, participant: p, path: output.path)
                        }
                    }
                }
            }
        } catch {
            for path in run.partial { try? FileManager.default.removeItem(atPath: path) }
            throw error
        }
        guard !run.files.isEmpty else {
            throw .nothingToExport("no decryptable media of the selected participants in the requested time range")
        }
        report(run)
        return ExportSummary(conference: conference, origin: run.origin, conferenceStart: run.conferenceStart, files: run.files,
                             sources: chosen.flatMap { $0.audio + $0.video }.compactMap { run.sourceReports[$0.ssrc] },
                             unopenedEpochs: refused + keys.unopened.map { "SPI \($0.spi): \($0.reason)" }, notes: run.notes)
    }

    // MARK: Planning

    static func archiveError(_ e: ArchiveError) -> ExportError {
        if case let .unknownConference(name) = e { return .invalidRequest("the archive has no conference named \(name)") }
        return .archive(e)
    }

    /// Groups sources by roster participant, else by RTCP CNAME, else by SSRC.
    static func participants(_ sources: [ExportableSource], cnames: [UInt32: String]) -> [Participant] {
        var order: [String] = []
        var byName: [String: Participant] = [:]
        for s in sources {
            let name = s.participant ?? cnames[s.ssrc] ?? String(format: "ssrc-%08x", s.ssrc)
            if byName[name] == nil {
                order.append(name)
                byName[name] = Participant(name: name, fingerprint: s.fingerprint)
            }
            if s.media == "video" {
                byName[name]?.video.append(s)
            } else if s.media == "audio" {
                byName[name]?.audio.append(s)
            }
        }
        return order.compactMap { byName[$0] }.filter { !($0.audio.isEmpty && $0.video.isEmpty) }
    }

    static func select(_ all: [Participant], _ wanted: [String], conference: String) throws(ExportError) -> [Participant] {
        guard !all.isEmpty else { throw .nothingToExport("conference \(conference) has no recorded audio or video") }
        guard !wanted.isEmpty else { return all }
        var chosen: [Participant] = []
        for w in wanted {
            // A fingerprint as the roster writes it ("sha-256 AB:CD:…"), or its hex digits' prefix.
            func digits(_ text: String) -> String {
                text.lowercased().replacingOccurrences(of: "sha-256", with: "").filter { $0.isHexDigit }
            }
            let needle = digits(w)
            let match = all.first { $0.name == w } ?? all.first { p in
                guard let f = p.fingerprint, needle.count >= 8 else { return false }
                return digits(f).hasPrefix(needle)
            }
            guard let match else {
                throw .invalidRequest("no participant \"\(w)\" in \(conference); it has: \(all.map(\.name).joined(separator: ", "))")
            }
            if !chosen.contains(where: { $0.name == match.name }) { chosen.append(match) }
        }
        return chosen
    }

    /// Picks each source's clock, corrects sender clocks that are not wall-clock time, and finds
    /// the conference start (the first media sample of any source).
    func establishTimelines(_ run: Run, sources: [ExportableSource], participants: [Participant]) throws(ExportError) {
        var start = Double.infinity
        for p in participants {
            var offsets: [Double] = []
            var firsts: [(UInt32, Double)] = []
            for s in p.audio + p.video {
                let rate = p.video.contains(where: { $0.ssrc == s.ssrc }) ? 90_000 : 48_000
                let timeline = SourceTimeline(clock: run.clocks.clock(for: s.ssrc, rate: rate), rate: rate)
                guard let segment = s.segments.first, let first = try firstPacket(segment: segment, ssrc: s.ssrc) else { continue }
                var probe = timeline
                let wall = probe.wallTime(timestamp: first.record.rtpTimestamp, arrival: first.record.arrival)
                if timeline.basis == .senderReports { offsets.append(first.record.arrival - wall) }
                firsts.append((s.ssrc, wall))
                if timeline.basis == .arrival {
                    run.notes.append(String(format: "SSRC %08x (%@): no RTCP sender report; placed by arrival time", s.ssrc, p.name))
                }
                run.timelines[s.ssrc] = timeline
            }
            // A sender whose NTP clock is far from the arrival times uses a private clock: keep
            // its streams' relative timing (lip sync) but anchor them on arrival.
            var correction = 0.0
            if let worst = offsets.max(by: { abs($0) < abs($1) }), abs(worst) > Self.maximumClockOffset {
                correction = offsets.sorted()[offsets.count / 2]
                run.notes.append(String(format: "%@: sender clock is %.1f s from arrival times; anchored on arrival", p.name, correction))
                for s in p.audio + p.video where run.timelines[s.ssrc]?.basis == .senderReports {
                    run.timelines[s.ssrc]?.correct(by: correction)
                }
            }
            for (_, wall) in firsts { start = min(start, wall + correction) }
        }
        guard start.isFinite else { throw .nothingToExport("no stored packets in \(run.request.conference)") }
        run.conferenceStart = start
        run.end = sources.map(\.lastSeen).max() ?? start
    }

    func firstPacket(segment: Int64, ssrc: UInt32) throws(ExportError) -> StoredPacket? {
        var first: StoredPacket?
        do { try archive.forEachPacket(segment: segment, ssrc: ssrc) { first = $0; return false } } catch { throw Self.archiveError(error) }
        return first
    }

    func resolveRange(_ run: Run) throws(ExportError) {
        let from = run.request.from?.resolve(conferenceStart: run.conferenceStart) ?? run.conferenceStart
        let to = run.request.to?.resolve(conferenceStart: run.conferenceStart) ?? .infinity
        guard to > from else {
            throw .invalidRequest("--to (\(run.request.to.map { "\($0)" } ?? "")) must come after --from (\(run.request.from.map { "\($0)" } ?? "the start"))")
        }
        if from > run.end + 1 {
            let length = run.end - run.conferenceStart
            throw .invalidRequest(String(format: "--from is after the end of the recording (%.1f s long)", length))
        }
        run.origin = from
        run.end = to
    }

    struct PlannedOutput { var participant: String; var format: ExportRequest.Format; var path: String }

    /// Output names (conference, participant, media), checked before anything is written.
    func planOutputs(_ run: Run, _ chosen: [Participant]) throws(ExportError) -> [PlannedOutput] {
        let r = run.request
        let base = Self.fileComponent(r.conference)
        var plan: [PlannedOutput] = []
        if r.mix {
            plan.append(.init(participant: "mix", format: .ogg, path: "\(r.outputDirectory)/\(base)_mix_audio.ogg"))
        } else {
            for p in chosen {
                let who = Self.fileComponent(p.name)
                if r.formats.contains(.ogg) && !p.audio.isEmpty {
                    plan.append(.init(participant: p.name, format: .ogg, path: "\(r.outputDirectory)/\(base)_\(who)_audio.ogg"))
                }
                if r.formats.contains(.webm) {
                    let media = p.video.isEmpty ? "audio" : p.audio.isEmpty ? "video" : "audio-video"
                    plan.append(.init(participant: p.name, format: .webm, path: "\(r.outputDirectory)/\(base)_\(who)_\(media).webm"))
                }
            }
        }
        if !r.overwrite {
            for o in plan where FileManager.default.fileExists(atPath: o.path) {
                throw .invalidRequest("\(o.path) already exists (pass --overwrite to replace it)")
            }
        }
        return plan
    }

    /// A file-name-safe form of a name: letters, digits, '.', '-' and '_' kept, the rest '_'.
    static func fileComponent(_ name: String) -> String {
        let mapped = name.unicodeScalars.map { c -> Character in
            CharacterSet.alphanumerics.contains(c) && c.isASCII || c == "." || c == "-" || c == "_" ? Character(c) : "_"
        }
        let s = String(mapped).trimmingCharacters(in: CharacterSet(charactersIn: "."))
        return s.isEmpty ? "unnamed" : s
    }

    // MARK: Decryption

    /// Calls `body` with each packet of `source` that opened, segment by segment in extended
    /// sequence order, and records the source's counters.
    func decrypt(_ run: Run, _ source: ExportableSource, participant: String, media: String,
                 _ body: (DecryptedPacket) throws(ExportError) -> Void) throws(ExportError) {
        var counters = DecryptionCounters()
        var lost = 0
        var failure: ExportError?
        for segment in source.segments {
            var decryptor = SourceDecryptor(ssrc: source.ssrc, receiver: run.keys.makeReceiver(), fields: run.fields)
            var lastSequence: Int64?
            do throws(ArchiveError) {
                try archive.forEachPacket(segment: segment, ssrc: source.ssrc) { stored in
                    run.done += 1
                    if run.done - run.lastReport >= 2000 { report(run) }
                    for p in decryptor.push(stored) {
                        if let last = lastSequence, p.extendedSequence > last + 1 { lost += Int(p.extendedSequence - last - 1) }
                        lastSequence = max(lastSequence ?? p.extendedSequence, p.extendedSequence)
                        do throws(ExportError) { try body(p) } catch { failure = error; return false }
                    }
                    return true
                }
            } catch { throw Self.archiveError(error) }
            if let failure { throw failure }
            decryptor.finish()
            counters.add(decryptor.counters)
        }
        var entry = run.sourceReports[source.ssrc] ?? ExportSummary.Source(
            ssrc: source.ssrc, participant: participant, media: media, timing: (run.timelines[source.ssrc]?.basis ?? .arrival).rawValue,
            decryption: DecryptionCounters(), lostPackets: 0, audioOverlapsDropped: 0, videoFramesDropped: 0, outsideRange: 0)
        entry.decryption = counters
        entry.lostPackets = lost
        run.sourceReports[source.ssrc] = entry
    }

    func report(_ run: Run) {
        run.lastReport = run.done
        progress(ExportProgress(phase: run.request.mix ? "decrypt+mix" : "export", done: min(run.done, run.total), total: run.total))
    }

    // MARK: Audio

    /// A participant's audio on the export timeline: Opus packets from position 0 (48 kHz samples
    /// since `origin`), gaps already filled with concealment.
    struct AudioTrack {
        var participant: String
        var placed: [OpusTimelinePlacer.Placed] = []
        var channels = 1
        var concealedSamples: Int64 = 0
    }

    func collectAudio(_ run: Run, _ p: Participant) throws(ExportError) -> AudioTrack {
        // Every opened packet with its position, from all of the participant's audio sources.
        var items: [(position: Int64, order: Int, ssrc: UInt32, payload: [UInt8])] = []
        var stereo = false
        var continuesPastEnd = false
        for source in p.audio {
            var timeline = run.timelines[source.ssrc] ?? SourceTimeline(clock: nil, rate: 48_000)
            var outside = 0
            var segment: Int64 = -1
            try decrypt(run, source, participant: p.name, media: "audio") { (packet) throws(ExportError) in
                if packet.segment != segment { segment = packet.segment; timeline.resetAnchor() }
                guard !packet.payload.isEmpty else { return }   // padding only
                let wall = timeline.wallTime(timestamp: packet.timestamp, arrival: packet.arrival)
                guard wall >= run.origin, wall < run.end else {
                    outside += 1
                    if wall >= run.end { continuesPastEnd = true }
                    return
                }
                let position = Int64(((wall - run.origin) * 48_000).rounded())
                if packet.payload[0] & 0x04 != 0 { stereo = true }
                items.append((position, items.count, source.ssrc, packet.payload))
            }
            run.sourceReports[source.ssrc]?.outsideRange = outside
        }
        items.sort { ($0.position, $0.order) < ($1.position, $1.order) }
        var track = AudioTrack(participant: p.name, channels: stereo ? 2 : 1)
        var placer = OpusTimelinePlacer(fillsLeadingGap: true)
        let endPosition = run.end.isFinite ? Int64(((run.end - run.origin) * 48_000).rounded()) : Int64.max
        var overlaps: [UInt32: Int] = [:]
        var malformed: [UInt32: Int] = [:]
        for item in items {
            let before = placer.statistics.droppedOverlaps
            let placed: [OpusTimelinePlacer.Placed]
            do { placed = try placer.place(item.payload, at: item.position) } catch { malformed[item.ssrc, default: 0] += 1; continue }
            if placer.statistics.droppedOverlaps > before { overlaps[item.ssrc, default: 0] += 1 }
            for q in placed where q.position + Int64(q.samples) <= endPosition { track.placed.append(q) }
        }
        // The participant was still there at --to (silent, in DTX): the file runs to --to.
        if continuesPastEnd, endPosition != .max, !track.placed.isEmpty {
            track.placed += placer.fill(upTo: endPosition)
        }
        for (ssrc, n) in overlaps { run.sourceReports[ssrc]?.audioOverlapsDropped = n }
        for (ssrc, n) in malformed { run.sourceReports[ssrc]?.decryption.other["opus_malformed", default: 0] += n }
        track.concealedSamples = track.placed.filter(\.isConcealment).reduce(0) { $0 + Int64($1.samples) }
        return track
    }

    func opusHead(channels: Int, preSkip: Int) throws(ExportError) -> OpusHead {
        do { return try OpusHead(channels: channels, preSkip: preSkip) } catch { throw .output(error) }
    }

    func opusTags(_ run: Run, participant: String) throws(ExportError) -> OpusTags {
        do { return try OpusTags(vendor: "percrec", comments: Self.tags(run, participant: participant)) } catch { throw .output(error) }
    }

    func writeOgg(_ run: Run, _ track: AudioTrack, participant: Participant, path: String) throws(ExportError) {
        // Only concealment (the participant's audio is outside the range): no file.
        guard track.placed.contains(where: { !$0.isConcealment }) else {
            run.notes.append("\(participant.name): no audio in the requested range; no Ogg file")
            return
        }
        let tags = try opusTags(run, participant: participant.name)
        let head = try opusHead(channels: track.channels, preSkip: Self.recordedPreSkip)
        let writer: OggOpusWriter
        do {
            writer = try OggOpusWriter(path: path + ".part", head: head, tags: tags, serial: UInt32.random(in: 1 ... .max))
        } catch { throw .output(error) }
        run.partial.append(path + ".part")
        do {
            for q in track.placed { try writer.append(q.packet, samples: q.samples) }
            _ = try writer.finish()
            try Self.commit(path)
        } catch {
            writer.abandon()
            throw .output(error)
        }
        run.files.append(.init(path: path, participant: participant.name, media: "audio", format: .ogg,
                               durationSeconds: Double(track.placed.last.map { $0.position + Int64($0.samples) } ?? 0) / 48_000,
                               audioPackets: track.placed.count, concealedSeconds: Double(track.concealedSamples) / 48_000,
                               videoFrames: 0, keyFrames: 0, bytes: Self.size(of: path)))
    }

    static func tags(_ run: Run, participant: String) -> [String] {
        var tags = ["TITLE=\(run.request.conference): \(participant)", "ARTIST=\(participant)",
                    "ALBUM=\(run.request.conference)", "ENCODER=percrec export",
                    "DATE=\(ISO8601DateFormatter.percrec.string(from: Date(timeIntervalSince1970: run.origin)))",
                    String(format: "PERCREC_ORIGIN_UNIX=%.6f", run.origin)]
        tags = tags.map { $0.replacingOccurrences(of: "\n", with: " ") }
        return tags
    }

    /// Moves a finished `.part` file to its name.
    static func commit(_ path: String) throws(ContainerError) {
        if rename(path + ".part", path) != 0 {
            let e = errno
            throw .io(path: path, operation: "rename", errno: e, message: String(cString: strerror(e)))
        }
    }

    static func size(of path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }
}
