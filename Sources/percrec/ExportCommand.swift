import Access
import ArgumentParser
import Archive
import Authority
import AuthorityService
import Export
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Prints `error: message` to stderr and returns exit code 3 (not authorized).
func unauthorizedError(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode(3)
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Decrypt an archived conference and write Ogg Opus / WebM files (authorized by the authority's key or by an access token).",
        discussion: """
            Files are named CONFERENCE_PARTICIPANT_MEDIA.(ogg|webm) and share one time zero: the \
            --from time, or the conference's first recorded media sample. Times for --from/--to are \
            wall-clock (2026-11-22T10:00:05Z) or offsets from the conference start (90, 1m30s, 01:30). \
            Two ways to be authorized: --authority-key (the administrator holding the authority's private key \
            opens every epoch), or --token with --authority (the authority service applies the conference \
            policy and releases only the epochs the token's principal may see, sealed to a one-time key of \
            this process). Exit codes: 0 ok, 1 failure, 2 usage, 3 not authorized: a wrong or missing key, a \
            refused token (nothing is written), or a span that reaches into epochs the token does not cover \
            (the covered part is written, the refused epochs are listed and nothing of them is written).
            """)

    @Option(help: "The archive (SQLite).")
    var archive: String = Archive.defaultPath
    @Option(help: "The conference to export.")
    var conference: String
    @Option(name: .customLong("authority-key"), help: "The archive authority's private key (authority.key, PEM).")
    var authorityKey: String?
    @Option(help: "An access token (JWT from `percrec token issue`); with --authority.")
    var token: String?
    @Option(name: .customLong("token-file"), help: "Read the access token from this file instead.")
    var tokenFile: String?
    @Option(help: "The authority service (https://HOST:PORT) that releases keys for --token.")
    var authority: String?
    @Option(name: .customLong("authority-ca"), help: "The authority service's certificate to trust (its tls-cert.pem); default: the system's roots.")
    var authorityCA: String?
    @Option(help: "Output directory (created if missing).")
    var out: String
    @Option(help: "Only this participant (roster name, or certificate fingerprint or its first 8+ hex digits); repeatable.")
    var participant: [String] = []
    @Option(help: "Start of the span to export (wall-clock time or offset).")
    var from: String?
    @Option(help: "End of the span to export (wall-clock time or offset).")
    var to: String?
    @Option(help: "ogg, webm or both.")
    var format: String = "both"
    @Flag(help: "Write one Ogg Opus file with every selected participant mixed (libopus decode, mix, encode) instead of per-participant files.")
    var mix = false
    @Flag(help: "Replace output files that already exist.")
    var overwrite = false
    @Flag(help: "Print the summary as JSON on stdout.")
    var json = false

    func run() async throws {
        let formats: Set<ExportRequest.Format>
        switch format {
        case "ogg": formats = [.ogg]
        case "webm": formats = [.webm]
        case "both": formats = [.ogg, .webm]
        default: throw usageError("--format must be ogg, webm or both, not \(format)")
        }
        var fromPoint: ExportRequest.TimePoint?, toPoint: ExportRequest.TimePoint?
        if let from {
            guard let p = ExportRequest.TimePoint(parsing: from) else { throw usageError("--from \(from): not a time (2026-11-22T10:00:05Z) or an offset (90, 1m30s, 01:30)") }
            fromPoint = p
        }
        if let to {
            guard let p = ExportRequest.TimePoint(parsing: to) else { throw usageError("--to \(to): not a time (2026-11-22T10:00:05Z) or an offset (90, 1m30s, 01:30)") }
            toPoint = p
        }
        let store = try openArchive(archive, create: false)
        let request = ExportRequest(conference: conference, outputDirectory: out, participants: participant, from: fromPoint, to: toPoint,
                                    formats: formats, mix: mix, overwrite: overwrite)
        let exporter: Exporter
        let refusals = RefusalBox()
        if token != nil || tokenFile != nil || authority != nil {
            guard authorityKey == nil else { throw usageError("use either --authority-key or --token with --authority, not both") }
            let released = try await releasedKeys(store)
            exporter = Exporter(archive: store, released: released.epochs, requesterKey: released.requester,
                                refused: released.refused.map { "SPI \($0.spi): refused by the authority: \($0.reason)" })
            // Before anything is written, the request is checked against what the token covers:
            // a refused epoch counts when it was in force during the span (the KD's roster times)
            // and the selected sources have packets under it there. No granted epoch with packets
            // in the span → exit 3, no files. Refused ones among others → their packets stay
            // encrypted (silence in the files), they are listed, and the exit code is 3.
            let spans = released.spans, refused = released.refused, granted = Set(released.epochs.map(\.spi))
            let conference = self.conference
            exporter.checkRange = { (from: Double, to: Double, ssrcs: [UInt32]) throws(ExportError) in
                let counts: [UInt16: Int]
                do throws(ArchiveError) { counts = try store.tiedPacketCounts(conference: conference, ssrcs: ssrcs, from: from, to: to) } catch {
                    throw .archive(error)
                }
                func asked(_ spi: UInt16) -> Bool {
                    guard let s = spans[spi], (counts[spi] ?? 0) > 0 else { return false }
                    return min(s.end ?? .infinity, to) - max(s.start, from) > 0
                }
                refusals.refused = refused.filter { asked($0.spi) }.map { ($0, spans[$0.spi]) }
                guard !counts.isEmpty else { return }   // nothing stored in the span: the exporter says so
                guard granted.contains(where: asked) else {
                    let detail = refusals.refused.map { "SPI \($0.epoch.spi): \($0.epoch.reason)" }.joined(separator: "; ")
                    throw .unauthorized("the token covers none of the requested media" + (detail.isEmpty ? "" : ": " + detail))
                }
            }
        } else {
            guard let authorityKey else {
                throw unauthorizedError("--authority-key, or --token with --authority, is required: export is authorized by the archive "
                                        + "authority's private key or by an access token the authority service accepts")
            }
            let key: AuthorityPrivateKey
            do { key = try AuthorityPrivateKey(contentsOf: authorityKey) } catch {
                throw unauthorizedError("\(error)")
            }
            exporter = Exporter(archive: store, authority: key)
        }
        let meter = ProgressMeter()
        let summary: ExportSummary
        do {
            summary = try exporter.run(request) { meter.update($0) }
        } catch {
            meter.end()
            switch error {
            case .unauthorized: throw unauthorizedError("\(error)")
            case .invalidRequest: throw usageError("\(error)")
            default: throw operationalError("\(error)")
            }
        }
        meter.end()
        if json { try printJSON(summary) } else { printSummary(summary) }
        guard refusals.refused.isEmpty else {
            for (epoch, span) in refusals.refused {
                let when = span.map { " (in force \(timeText($0.start)) to \($0.end.map(timeText) ?? "the end"))" } ?? ""
                FileHandle.standardError.write(Data("refused: SPI \(epoch.spi)\(when): \(epoch.reason); nothing of it was exported\n".utf8))
            }
            throw unauthorizedError("the token does not cover \(refusals.refused.count) epoch(s) of the requested span "
                                    + "(SPI \(refusals.refused.map { String($0.epoch.spi) }.joined(separator: ", "))); "
                                    + "the files hold only what it covers")
        }
    }

    /// What the authority service released for this export.
    struct Released {
        var epochs: [ArchivedEpoch]
        var requester: AuthorityPrivateKey
        var refused: [RefusedEpoch]
        var spans: [UInt16: (start: Double, end: Double?)]
    }

    /// Asks the authority service for the keys the token allows, sealed to a one-time key that
    /// exists only in this process.
    func releasedKeys(_ store: Archive) async throws -> Released {
        guard let authority else { throw usageError("--token needs --authority https://HOST:PORT (the authority service)") }
        let tokenText: String
        if let token {
            guard tokenFile == nil else { throw usageError("use --token or --token-file, not both") }
            tokenText = token
        } else if let tokenFile {
            do { tokenText = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
                throw usageError("--token-file \(tokenFile): \(error.localizedDescription)")
            }
        } else {
            throw usageError("--authority needs --token or --token-file")
        }
        let client: AuthorityClient
        do { client = try AuthorityClient(baseURL: authority, trustedCertificates: authorityCA) } catch { throw usageError("\(error)") }
        let facts: ConferenceAccessFacts
        do { facts = try store.accessFacts(conference: conference) } catch {
            if case .unknownConference = error { throw usageError("\(error)") }
            throw operationalError("\(error)")
        }
        let requester = AuthorityPrivateKey()
        let response: KeyReleaseResponse
        do {
            response = try await client.requestKeys(conference: conference, token: tokenText, requesterPublicKey: requester.publicKey.rawRepresentation)
        } catch {
            switch error {
            case let .refused(status, reason, refused):
                for r in refused {
                    FileHandle.standardError.write(Data("refused: SPI \(r.spi) (key \(r.keyID)): \(r.reason)\n".utf8))
                }
                if status == 404 { throw usageError("the authority: \(reason)") }
                if status >= 500 { throw operationalError("the authority failed: \(reason)") }
                throw unauthorizedError("the authority refused (HTTP \(status)): \(reason); nothing was written")
            case .configuration: throw usageError("\(error)")
            case .unreachable, .badResponse: throw operationalError("\(error)")
            }
        }
        guard response.conference == conference else {
            throw operationalError("the authority answered for conference \(response.conference), not \(conference)")
        }
        let epochs = response.granted.compactMap { $0.asArchivedEpoch(requesterKeyID: requester.publicKey.keyID) }
        FileHandle.standardError.write(Data(("authority: \(response.decision) for \(response.principal) (\(response.role)): "
            + "\(epochs.count) epoch key(s) released, \(response.refused.count) refused; audit entry \(response.auditSequence)\n").utf8))
        return Released(epochs: epochs, requester: requester, refused: response.refused, spans: ConferencePolicy.inForce(facts))
    }

    func printSummary(_ s: ExportSummary) {
        let err = FileHandle.standardError
        func line(_ text: String) { err.write(Data((text + "\n").utf8)) }
        line(String(format: "export: %@ from %@ (%.3f s after the conference start)", s.conference, timeText(s.origin), s.origin - s.conferenceStart))
        for src in s.sources {
            let d = src.decryption
            var parts = [String(format: "0x%08x", src.ssrc), src.participant, src.media, "timing=\(src.timing)", "opened=\(d.opened)"]
            if src.lostPackets > 0 { parts.append("lost=\(src.lostPackets)") }
            if d.duplicates > 0 { parts.append("duplicates=\(d.duplicates)") }
            if d.authenticationFailed > 0 {
                parts.append("auth_failed=\(d.authenticationFailed) (seq \(d.failedSequences.map(String.init).joined(separator: ",")); skipped)")
            }
            if d.noKey > 0 { parts.append("no_key=\(d.noKey)") }
            for (k, v) in d.other.sorted(by: { $0.key < $1.key }) { parts.append("\(k)=\(v)") }
            if src.videoFramesDropped > 0 { parts.append("video_frames_dropped=\(src.videoFramesDropped)") }
            if src.audioOverlapsDropped > 0 { parts.append("audio_overlaps_dropped=\(src.audioOverlapsDropped)") }
            if src.outsideRange > 0 { parts.append("outside_range=\(src.outsideRange)") }
            line("  source " + parts.joined(separator: " "))
        }
        for n in s.notes { line("  note: \(n)") }
        for e in s.unopenedEpochs { line("  epoch not opened: \(e)") }
        for f in s.files {
            var detail = String(format: "%.2f s", f.durationSeconds)
            if f.audioPackets > 0 { detail += String(format: ", %d audio packets (%.2f s concealed)", f.audioPackets, f.concealedSeconds) }
            if f.videoFrames > 0 { detail += ", \(f.videoFrames) video frames (\(f.keyFrames) key)" }
            line("  wrote \(f.path) [\(f.media), \(detail), \(f.bytes) bytes]")
        }
        // The paths on stdout, one per line, for scripts.
        for f in s.files { print(f.path) }
    }
}

/// Refused epochs the requested span reaches (set by the exporter's range check).
final class RefusalBox: @unchecked Sendable {
    var refused: [(epoch: RefusedEpoch, span: (start: Double, end: Double?)?)] = []
}

/// Progress on stderr: a redrawn bar on a terminal, a plain line every ~10 % or 2 s otherwise.
final class ProgressMeter: @unchecked Sendable {
    private let terminal = isatty(STDERR_FILENO) == 1
    private let lines: Bool

    init(linesWhenNotTerminal: Bool = true) { lines = linesWhenNotTerminal }
    private var lastLine = Date.distantPast
    private var lastPercent = -100
    private var drawn = false

    func update(_ p: ExportProgress) {
        let percent = p.total > 0 ? min(100, p.done * 100 / p.total) : 0
        if terminal {
            let width = 30
            let filled = width * percent / 100
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r\(p.phase) [\(bar)] \(percent)% (\(p.done)/\(p.total))".utf8))
            drawn = true
        } else if lines, percent - lastPercent >= 10 || Date().timeIntervalSince(lastLine) >= 2 {
            FileHandle.standardError.write(Data("progress: \(p.phase) \(percent)% (\(p.done)/\(p.total))\n".utf8))
            lastPercent = percent
            lastLine = Date()
        }
    }

    func end() {
        if drawn { FileHandle.standardError.write(Data("\n".utf8)); drawn = false }
    }
}
