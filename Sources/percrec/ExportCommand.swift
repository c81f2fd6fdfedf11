import ArgumentParser
import Archive
import Authority
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

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Decrypt an archived conference and write Ogg Opus / WebM files (authorized by the authority's private key).",
        discussion: """
            Files are named CONFERENCE_PARTICIPANT_MEDIA.(ogg|webm) and share one time zero: the \
            --from time, or the conference's first recorded media sample. Times for --from/--to are \
            wall-clock (2026-11-22T10:00:05Z) or offsets from the conference start (90, 1m30s, 01:30). \
            Exit codes: 0 ok, 1 failure, 2 usage, 3 not authorized (wrong or missing key; nothing is written).
            """)

    @Option(help: "The archive (SQLite).")
    var archive: String = Archive.defaultPath
    @Option(help: "The conference to export.")
    var conference: String
    @Option(name: .customLong("authority-key"), help: "The archive authority's private key (authority.key, PEM).")
    var authorityKey: String?
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

    func run() throws {
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
        guard let authorityKey else {
            throw unauthorizedError("--authority-key is required: export is authorized by the archive authority's private key")
        }
        let key: AuthorityPrivateKey
        do { key = try AuthorityPrivateKey(contentsOf: authorityKey) } catch {
            throw unauthorizedError("\(error)")
        }
        let store = try openArchive(archive, create: false)
        let request = ExportRequest(conference: conference, outputDirectory: out, participants: participant, from: fromPoint, to: toPoint,
                                    formats: formats, mix: mix, overwrite: overwrite)
        let meter = ProgressMeter()
        let summary: ExportSummary
        do {
            summary = try Exporter(archive: store, authority: key).run(request) { meter.update($0) }
        } catch {
            meter.end()
            switch error {
            case .unauthorized: throw unauthorizedError("\(error)")
            case .invalidRequest: throw usageError("\(error)")
            default: throw operationalError("\(error)")
            }
        }
        meter.end()
        if json { try printJSON(summary); return }
        printSummary(summary)
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
