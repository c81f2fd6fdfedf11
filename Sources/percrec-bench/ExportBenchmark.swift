import Archive
import Authority
import Export
import Foundation
import KeyExchange
import Lab
import Recorder

/// `percrec-bench export`: how fast a recorded conference becomes files.
///
/// Records a lab conference in real time (3 participants, 640×360 VP8 at 15 fps plus Opus, a
/// join and a leave), or takes an existing archive, then times in one run:
/// - the per-participant export (Ogg + WebM: unseal, decrypt, depacketize, mux) → `export_pps`
///   (stored packets per second) and `export_x_realtime` (conference seconds per wall second);
/// - the mixed export (decode, mix, encode) → `mix_x_realtime`;
/// - the peer: `ffmpeg -c copy` remuxing the exported files → `ffmpeg_copy_x_realtime`.
enum ExportBenchmark {
    static let summary = "export speed: archive → Ogg/WebM per participant, and --mix (vs ffmpeg -c copy of the same files)"
    static let usageText = """
        options (export):
          --seconds N        length of the recorded lab conference (default 30)
          --archive P --conference C --authority-key K
                             export an existing recording instead of recording one
          --keep DIR         keep the exported files in DIR

        """

    struct Options {
        var seconds = 30
        var archive: String?
        var conference: String?
        var authorityKey: String?
        var keep: String?
    }

    static func parse(_ arguments: [String]) -> Options? {
        var o = Options()
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            guard i + 1 < arguments.count else { return nil }
            let v = arguments[i + 1]
            switch a {
            case "--seconds": guard let n = Int(v), n >= 6 else { return nil }; o.seconds = n
            case "--archive": o.archive = v
            case "--conference": o.conference = v
            case "--authority-key": o.authorityKey = v
            case "--keep": o.keep = v
            default: return nil
            }
            i += 2
        }
        if (o.archive == nil) != (o.conference == nil) || (o.archive == nil) != (o.authorityKey == nil) { return nil }
        return o
    }

    static func run(_ arguments: [String]) -> Int32 {
        guard let options = parse(arguments) else {
            writeStderr(usage())
            return 2
        }
        do { return try benchmark(options) } catch {
            writeStderr("percrec-bench export: \(error)\n")
            return 1
        }
    }

    static func benchmark(_ options: Options) throws -> Int32 {
        let work = options.keep ?? (NSTemporaryDirectory() + "percrec-export-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { if options.keep == nil { try? FileManager.default.removeItem(atPath: work) } }
        let archivePath: String, conference: String, authority: AuthorityPrivateKey
        if let a = options.archive, let c = options.conference, let k = options.authorityKey {
            archivePath = a
            conference = c
            authority = try AuthorityPrivateKey(contentsOf: k)
        } else {
            authority = AuthorityPrivateKey()
            archivePath = work + "/archive.sqlite"
            conference = try recordLab(seconds: options.seconds, archivePath: archivePath, authority: authority.publicKey)
        }
        let archive = try Archive(path: archivePath, create: false)
        defer { archive.close() }
        let report = try archive.inspect(conference: conference)
        let packets = report.sources.reduce(0) { $0 + $1.packets }
        var out = Report()
        out.line("conference", conference)
        out.line("stored_packets", packets)

        // 1. Per participant: Ogg + WebM.
        var start = monotonicNanoseconds()
        let files = try Exporter(archive: archive, authority: authority)
            .run(ExportRequest(conference: conference, outputDirectory: work + "/files", overwrite: true))
        let exportSeconds = Double(monotonicNanoseconds() - start) / 1e9
        let conferenceSeconds = files.files.map(\.durationSeconds).max() ?? 0
        let mediaSeconds = files.files.filter { $0.format == .webm }.reduce(0) { $0 + $1.durationSeconds }
        out.line("conference_seconds", fixed(conferenceSeconds, decimals: 2))
        out.line("files", files.files.count)
        out.line("export_seconds", fixed(exportSeconds, decimals: 3))
        out.line("export_pps", pps(Double(packets) / exportSeconds))
        out.line("export_x_realtime", fixed(conferenceSeconds / exportSeconds, decimals: 1))

        // 2. Mixed audio.
        start = monotonicNanoseconds()
        let mix = try Exporter(archive: archive, authority: authority)
            .run(ExportRequest(conference: conference, outputDirectory: work + "/mix", mix: true, overwrite: true))
        let mixSeconds = Double(monotonicNanoseconds() - start) / 1e9
        out.line("mix_seconds", fixed(mixSeconds, decimals: 3))
        out.line("mix_x_realtime", fixed((mix.files.first?.durationSeconds ?? 0) / mixSeconds, decimals: 1))

        // 3. The peer: ffmpeg remuxing the same files without decoding.
        start = monotonicNanoseconds()
        for (i, f) in files.files.enumerated() {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["ffmpeg", "-v", "error", "-y", "-i", f.path, "-c", "copy", work + "/copy-\(i)." + f.format.rawValue]
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw ExportError.nothingToExport("ffmpeg -c copy failed on \(f.path)") }
        }
        let copySeconds = Double(monotonicNanoseconds() - start) / 1e9
        out.line("ffmpeg_copy_seconds", fixed(copySeconds, decimals: 3))
        out.line("ffmpeg_copy_x_realtime", fixed(conferenceSeconds / copySeconds, decimals: 1))
        out.line("export_vs_ffmpeg_copy", fixed(copySeconds / exportSeconds, decimals: 2))
        out.line("webm_media_seconds", fixed(mediaSeconds, decimals: 1))
        // Packets under the epoch before the recorder's own join have no key (by design); any
        // other refusal is a failure.
        let noKey = files.sources.reduce(0) { $0 + $1.decryption.noKey }
        let failed = files.sources.reduce(0) { $0 + $1.decryption.authenticationFailed + $1.decryption.other.values.reduce(0, +) }
        out.line("no_key_packets", noKey)
        out.line("failed_packets", failed)
        return failed == 0 ? 0 : 1
    }

    /// Records a lab conference of `seconds` (join at a third, leave at two thirds) and returns its name.
    static func recordLab(seconds: Int, archivePath: String, authority: AuthorityPublicKey) throws -> String {
        let identity = try DTLSIdentity(commonName: "bench-recorder")
        var options = LabConference.Options()
        options.participants = 3
        options.spareIdentities = 1
        options.extraInvitations = [InvitedParticipant(name: "recorder", fingerprint: identity.fingerprint.description, role: .recorder)]
        let lab = try LabConference(options: options, log: { _ in })
        defer { lab.stop() }
        let archive = try Archive(path: archivePath)
        let runner = RecorderRunner(configuration: .init(mediaDistributor: lab.md.localAddress, kdFingerprint: lab.kdIdentity.fingerprint,
                                                         identity: identity, conference: options.conference, authority: authority),
                                    archive: archive, log: { _ in })
        try lab.start()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { _ = runner.run(); done.signal() }
        writeStderr("percrec-bench export: recording a \(seconds) s lab conference…\n")
        let third = Double(seconds) / 3
        Thread.sleep(forTimeInterval: third)
        try lab.join(3)
        Thread.sleep(forTimeInterval: third)
        lab.leave(0)
        Thread.sleep(forTimeInterval: third)
        for i in lab.activeIndices { lab.leave(i) }
        if done.wait(timeout: .now() + 20) == .timedOut { runner.stop(); done.wait() }
        archive.close()
        return options.conference
    }
}
