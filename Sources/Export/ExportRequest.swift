import Foundation

/// What to export: which conference, who, which span, in which formats.
public struct ExportRequest: Sendable, Equatable {
    public enum Format: String, CaseIterable, Sendable, Codable { case ogg, webm }

    /// A point on the conference timeline: a wall-clock time (Unix seconds), or seconds since
    /// the conference's first recorded media sample.
    public enum TimePoint: Sendable, Equatable, CustomStringConvertible {
        case wallClock(Double)
        case offset(Double)

        public var description: String {
            switch self {
            case let .wallClock(t): ISO8601DateFormatter.percrec.string(from: Date(timeIntervalSince1970: t))
            case let .offset(s): String(format: "+%.3fs", s)
            }
        }

        func resolve(conferenceStart: Double) -> Double {
            switch self {
            case let .wallClock(t): t
            case let .offset(s): conferenceStart + s
            }
        }

        /// Parses `2026-11-22T10:00:05Z` (ISO 8601, optional fraction) as a wall-clock time, and
        /// `90`, `90.5s`, `1m30s`, `1h2m`, `01:30`, `1:02:03.5` as offsets. Nil if neither.
        public init?(parsing text: String) {
            let t = text.trimmingCharacters(in: .whitespaces)
            if t.contains("T") || t.contains("-") && t.count > 8 {
                for f in [ISO8601DateFormatter.percrec, ISO8601DateFormatter.percrecWhole] {
                    if let d = f.date(from: t) { self = .wallClock(d.timeIntervalSince1970); return }
                }
                return nil
            }
            if t.contains(":") {
                let parts = t.split(separator: ":", omittingEmptySubsequences: false)
                guard (2 ... 3).contains(parts.count) else { return nil }
                var seconds = 0.0
                for (i, p) in parts.enumerated() {
                    guard let v = Double(p), v >= 0, i == parts.count - 1 || v == v.rounded() else { return nil }
                    seconds = seconds * 60 + v
                }
                self = .offset(seconds)
                return
            }
            var seconds = 0.0, number = "", sawUnit = false
            for c in t {
                if c.isNumber || c == "." { number.append(c); continue }
                guard let v = Double(number), let unit = ["h": 3600.0, "m": 60, "s": 1][String(c)] else { return nil }
                seconds += v * unit
                number = ""
                sawUnit = true
            }
            if !number.isEmpty {
                guard let v = Double(number) else { return nil }
                seconds += v
            } else if !sawUnit {
                return nil
            }
            self = .offset(seconds)
        }
    }

    public var conference: String
    public var outputDirectory: String
    /// Participant names or certificate fingerprints (or fingerprint prefixes); empty: everyone.
    public var participants: [String]
    public var from: TimePoint?
    public var to: TimePoint?
    public var formats: Set<Format>
    /// One mixed Ogg Opus file of every selected participant instead of per-participant files.
    public var mix: Bool
    /// Replace existing output files (otherwise an existing file is an error before anything is written).
    public var overwrite: Bool

    public init(conference: String, outputDirectory: String, participants: [String] = [], from: TimePoint? = nil,
                to: TimePoint? = nil, formats: Set<Format> = [.ogg, .webm], mix: Bool = false, overwrite: Bool = false) {
        self.conference = conference
        self.outputDirectory = outputDirectory
        self.participants = participants
        self.from = from
        self.to = to
        self.formats = formats
        self.mix = mix
        self.overwrite = overwrite
    }
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) public static let percrec: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()
    nonisolated(unsafe) static let percrecWhole: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f
    }()
}

/// Where an export is: `done` of `total` units in `phase` (units are packets while decrypting,
/// 20 ms frames while mixing).
public struct ExportProgress: Sendable, Equatable {
    public var phase: String
    public var done: Int
    public var total: Int
}

/// What an export wrote and what it met on the way.
public struct ExportSummary: Sendable, Codable, Equatable {
    public struct File: Sendable, Codable, Equatable {
        public var path: String
        public var participant: String
        /// "audio", "video", "audio+video", or "mix".
        public var media: String
        public var format: ExportRequest.Format
        public var durationSeconds: Double
        public var audioPackets: Int
        /// Time filled with concealment packets (losses, DTX pauses, time before the first packet).
        public var concealedSeconds: Double
        public var videoFrames: Int
        public var keyFrames: Int
        public var bytes: Int
    }

    public struct Source: Sendable, Codable, Equatable {
        public var ssrc: UInt32
        public var participant: String
        public var media: String
        /// "rtcp-sr" or "arrival" (no sender report: placed by arrival time).
        public var timing: String
        public var decryption: DecryptionCounters
        /// Sequence numbers missing from what was stored.
        public var lostPackets: Int
        /// Audio packets dropped because they overlapped earlier audio on the participant's timeline.
        public var audioOverlapsDropped: Int
        /// Video frames not written: incomplete, or waiting for a key frame after a loss or a cut.
        public var videoFramesDropped: Int
        /// Packets outside the requested time range.
        public var outsideRange: Int
    }

    public var conference: String
    /// Unix time of the files' time zero, and of the conference's first recorded media sample.
    public var origin: Double
    public var conferenceStart: Double
    public var files: [File]
    public var sources: [Source]
    /// Epochs that could not be opened, with the reason.
    public var unopenedEpochs: [String]
    /// Sync fallbacks, clock corrections, resolution changes and the like.
    public var notes: [String]
}
