import Foundation
import Media
import RTPWire

extension Exporter {
    // MARK: WebM

    /// Writes the participant's video (VP8 frames reassembled per RFC 7741, never partial, each
    /// source starting at a key frame) with their audio into one WebM file. The writer is
    /// created at the first key frame, whose size becomes the track's size.
    func writeWebM(_ run: Run, _ audio: AudioTrack, participant p: Participant, path: String) throws(ExportError) {
        let codecDelay = UInt64(Self.recordedPreSkip) * 1_000_000_000 / 48_000
        let audioTrack = audio.placed.contains(where: { !$0.isConcealment })
            ? WebMAudioTrack(codecPrivate: try opusHead(channels: audio.channels, preSkip: Self.recordedPreSkip).serialized(),
                             channels: audio.channels, codecDelayNanoseconds: codecDelay, name: p.name)
            : nil
        var writer: WebMWriter?
        var nextAudio = 0
        var videoFrames = 0, keyFrames = 0
        var lastVideo: Int64 = -1
        var size: (Int, Int)?
        let endNanoseconds = run.end.isFinite ? Int64(((run.end - run.origin) * 1e9).rounded()) : Int64.max

        // Matroska presents a block at its time − CodecDelay, and the decoder drops the first
        // CodecDelay of output: a packet whose first input sample belongs at p is given p − CodecDelay.
        func audioTime(_ q: OpusTimelinePlacer.Placed) -> Int64 { q.position * 1_000_000_000 / 48_000 - Int64(codecDelay) }
        func open(video: WebMVideoTrack?) throws(ExportError) -> WebMWriter {
            do {
                let w = try WebMWriter(path: path + ".part", video: video, audio: audioTrack, title: "\(run.request.conference): \(p.name)",
                                       date: Date(timeIntervalSince1970: run.origin), writingApp: "percrec export")
                run.partial.append(path + ".part")
                return w
            } catch { throw .output(error) }
        }
        func addAudio(through t: Int64, into w: WebMWriter) throws(ExportError) {
            guard audioTrack != nil else { return }
            while nextAudio < audio.placed.count, audioTime(audio.placed[nextAudio]) <= t {
                do { try w.addAudioPacket(audio.placed[nextAudio].packet, timestamp: audioTime(audio.placed[nextAudio])) } catch {
                    throw .output(error)
                }
                nextAudio += 1
            }
        }

        for source in p.video {
            var timeline = run.timelines[source.ssrc] ?? SourceTimeline(clock: nil, rate: 90_000)
            var depacketizer = VP8Depacketizer()
            var unwrapper = TimestampUnwrapper()
            var segment: Int64 = -1
            var dropped = 0, outside = 0
            var waitingAfterCut = true
            func handle(_ outputs: [VP8DepacketizerOutput], arrival: Double) throws(ExportError) {
                for output in outputs {
                    guard case let .frame(frame) = output else {
                        if case let .loss(loss) = output, loss.reason != .latePacket { dropped += 1 }
                        continue
                    }
                    let wall = timeline.wallTime(timestamp: UInt32(truncatingIfNeeded: frame.timestamp), arrival: arrival)
                    let t = Int64(((wall - run.origin) * 1e9).rounded())
                    guard t >= 0, t < endNanoseconds else { outside += 1; waitingAfterCut = true; continue }
                    // Each source, and the file, starts at a key frame; frames overlapping an
                    // earlier source's are dropped.
                    guard t > lastVideo, frame.isKeyFrame || !waitingAfterCut else { dropped += 1; continue }
                    waitingAfterCut = false
                    if frame.isKeyFrame, let w = frame.header.width, let h = frame.header.height {
                        if let s = size, (s.0, s.1) != (w, h) {
                            run.notes.append(String(format: "%@: video size changes to %dx%d at %.2f s (the track header says %dx%d)",
                                                    p.name, w, h, Double(t) / 1e9, s.0, s.1))
                        }
                        if size == nil { size = (w, h) }
                    }
                    if writer == nil, let s = size { writer = try open(video: WebMVideoTrack(width: s.0, height: s.1, name: p.name)) }
                    guard let w = writer else { dropped += 1; continue }
                    try addAudio(through: t, into: w)
                    do { try w.addVideoFrame(frame.data, timestamp: t, isKeyFrame: frame.isKeyFrame) } catch { throw .output(error) }
                    lastVideo = t
                    videoFrames += 1
                    if frame.isKeyFrame { keyFrames += 1 }
                }
            }
            var lastArrival = 0.0
            try decrypt(run, source, participant: p.name, media: "video") { (packet) throws(ExportError) in
                if packet.segment != segment {
                    if segment >= 0 { try handle(depacketizer.finish(), arrival: lastArrival) }
                    segment = packet.segment
                    depacketizer = VP8Depacketizer()
                    unwrapper = TimestampUnwrapper()
                    timeline.resetAnchor()
                    waitingAfterCut = true
                }
                lastArrival = packet.arrival
                let outputs = depacketizer.push(sequenceNumber: packet.extendedSequence, marker: packet.marker,
                                                timestamp: unwrapper.unwrap(packet.timestamp), payload: packet.payload)
                try handle(outputs, arrival: packet.arrival)
            }
            try handle(depacketizer.finish(), arrival: lastArrival)
            run.sourceReports[source.ssrc]?.videoFramesDropped = dropped
            run.sourceReports[source.ssrc]?.outsideRange = outside
        }

        if writer == nil {
            guard audioTrack != nil else {
                run.notes.append("\(p.name): no audio or complete video in the requested range; no WebM file")
                return
            }
            if !p.video.isEmpty { run.notes.append("\(p.name): no complete video frame; the WebM file holds audio only") }
            writer = try open(video: nil)
        }
        guard let w = writer else { return }
        do { try addAudio(through: .max, into: w) } catch { w.abandon(); throw error }
        do {
            let summary = try w.finish()
            try Self.commit(path)
            let audioEnd = audio.placed.last.map { Double($0.position + Int64($0.samples)) / 48_000 } ?? 0
            run.files.append(.init(path: path, participant: p.name, media: p.video.isEmpty ? "audio" : audioTrack == nil ? "video" : "audio+video",
                                   format: .webm, durationSeconds: max(audioEnd, summary.durationMilliseconds / 1000),
                                   audioPackets: audioTrack == nil ? 0 : audio.placed.count,
                                   concealedSeconds: Double(audio.concealedSamples) / 48_000,
                                   videoFrames: videoFrames, keyFrames: keyFrames, bytes: Self.size(of: path)))
        } catch {
            w.abandon()
            throw .output(error)
        }
    }

    // MARK: Mix

    /// Decodes every participant's audio (libopus), sums it sample by sample on the shared
    /// timeline, and encodes one mono Ogg Opus track at 20 ms frames.
    func writeMix(_ run: Run, _ tracks: [AudioTrack], path: String) throws(ExportError) {
        let tracks = tracks.filter { $0.placed.contains { !$0.isConcealment } }
        guard !tracks.isEmpty else { throw .nothingToExport("no audio of the selected participants in the requested time range") }
        let frame = OpusConstants.samplesPer20ms
        let total = Int(tracks.map { $0.placed.last.map { $0.position + Int64($0.samples) } ?? 0 }.max() ?? 0)
        let encoder: OpusEncoder
        var decoders: [OpusDecoder] = []
        do {
            encoder = try OpusEncoder(.init(channels: 1, bitrate: 64_000, dtx: false))
            for _ in tracks { decoders.append(try OpusDecoder(channels: 1)) }
        } catch { throw .media(error) }
        let writer: OggOpusWriter
        let head = try opusHead(channels: 1, preSkip: encoder.lookahead)
        let tags = try opusTags(run, participant: tracks.map(\.participant).joined(separator: ", "))
        do {
            writer = try OggOpusWriter(path: path + ".part", head: head, tags: tags, serial: UInt32.random(in: 1 ... .max))
        } catch { throw .output(error) }
        run.partial.append(path + ".part")

        var next = [Int](repeating: 0, count: tracks.count)
        var fifo = [[Int16]](repeating: [], count: tracks.count)
        // Each sender's own look-ahead: decoded sample k is input sample k − pre-skip.
        var skip = [Int](repeating: Self.recordedPreSkip, count: tracks.count)
        let frames = (total + encoder.lookahead + frame - 1) / frame
        run.total += frames
        var mixed = [Int32](repeating: 0, count: frame)
        var pcm = [Int16](repeating: 0, count: frame)
        do {
            for index in 0 ..< frames {
                for i in mixed.indices { mixed[i] = 0 }
                for t in tracks.indices {
                    while fifo[t].count < frame, next[t] < tracks[t].placed.count {
                        var decoded = try decoders[t].decode(tracks[t].placed[next[t]].packet)
                        next[t] += 1
                        if skip[t] > 0 {
                            let n = min(skip[t], decoded.count)
                            decoded.removeFirst(n)
                            skip[t] -= n
                        }
                        fifo[t] += decoded
                    }
                    let n = min(frame, fifo[t].count)
                    for i in 0 ..< n { mixed[i] += Int32(fifo[t][i]) }
                    fifo[t].removeFirst(n)
                }
                for i in 0 ..< frame { pcm[i] = Int16(clamping: mixed[i]) }
                try writer.append(try encoder.encode(pcm), samples: frame)
                run.done += 1
                if index % 500 == 0 { report(run) }
            }
            _ = try writer.finish(endTrim: frames * frame - total - encoder.lookahead)
            try Self.commit(path)
        } catch let e as MediaError {
            writer.abandon()
            throw .media(e)
        } catch let e as ContainerError {
            writer.abandon()
            throw .output(e)
        } catch {
            writer.abandon()
            throw .nothingToExport("\(error)")
        }
        run.files.append(.init(path: path, participant: tracks.map(\.participant).joined(separator: ", "), media: "mix", format: .ogg,
                               durationSeconds: Double(total) / 48_000, audioPackets: frames,
                               concealedSeconds: 0, videoFrames: 0, keyFrames: 0, bytes: Self.size(of: path)))
    }
}

