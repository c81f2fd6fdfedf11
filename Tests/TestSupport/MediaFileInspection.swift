import Foundation

/// What the reference tools said about a produced media file.
public struct MediaFileInspection: Sendable {
    /// ffprobe's format duration, in seconds (nil if it printed none).
    public var duration: Double?
    /// Every complaint, one line per tool; empty when the file is clean.
    public var problems: [String]
}

/// Runs the reference inspectors on an Ogg Opus (`.ogg`/`.opus`) or WebM (`.webm`) file:
/// `ffmpeg -v error` full decode (must print nothing); for Ogg `oggz-validate` (silent, exit 0)
/// and `opusinfo` (no WARNING/ERROR); for WebM `mkvinfo -a` (no "error", and Cue points present,
/// i.e. seekable); then ffprobe's duration.
public func inspectMediaFile(_ path: String) async throws -> MediaFileInspection {
    var problems: [String] = []
    let decode = try await runTool("ffmpeg", ["-nostdin", "-v", "error", "-i", path, "-f", "null", "-"])
    if decode.status != 0 || !decode.stderr.isEmpty || !decode.stdout.isEmpty {
        problems.append("ffmpeg (\(decode.status)): \(decode.stderr)")
    }
    if path.hasSuffix(".webm") {
        let info = try await runTool("mkvinfo", ["-a", path])
        let text = info.stdout + info.stderr
        if info.status != 0 || text.lowercased().contains("error") { problems.append("mkvinfo (\(info.status)): \(text)") }
        if !info.stdout.contains("Cue point") { problems.append("mkvinfo: no Cue points (not seekable)") }
    } else {
        let validate = try await runTool("oggz-validate", [path])
        if validate.status != 0 || !(validate.stdout + validate.stderr).isEmpty {
            problems.append("oggz-validate (\(validate.status)): \(validate.stdout)\(validate.stderr)")
        }
        let info = try await runTool("opusinfo", [path])
        let text = info.stdout + info.stderr
        if info.status != 0 || text.contains("WARNING") || text.contains("ERROR") { problems.append("opusinfo (\(info.status)): \(text)") }
    }
    let probe = try await runTool("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path])
    let duration = Double(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    if duration == nil { problems.append("ffprobe printed no duration: \(probe.stdout)\(probe.stderr)") }
    return MediaFileInspection(duration: duration, problems: problems)
}
