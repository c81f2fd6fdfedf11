/// Opus packets made only of zero-length frames: a decoder runs packet-loss concealment for
/// their duration (RFC 6716 §3.2.1; RFC 7845 §4.1 asks muxers to fill gaps with them).
public enum OpusConcealment {
    /// The smallest fillable gap: one 2.5 ms frame.
    public static let granularity = 120

    /// Packets covering `samples` 48 kHz samples, rounded DOWN to a multiple of 120.
    ///
    /// Following RFC 7845 §4.1, frames keep `toc`'s configuration (mode, bandwidth, frame size,
    /// stereo flag) as long as possible, then use smaller frames of the same mode, and switch to
    /// CELT (wideband for medium-band SILK) only for a remainder below 10 ms, at the end.
    /// One frame is a 1-byte code 0 packet (`F8` = 20 ms CELT); 2…48 frames are a 2-byte code 3
    /// CBR packet without padding (`FB 05` = 5 × 20 ms). No packet exceeds 120 ms.
    public static func packets(covering samples: Int, like toc: OpusTOC) -> [[UInt8]] {
        plan(covering: samples, like: toc).map(\.packet)
    }

    /// The packets of `packets(covering:like:)` with the samples each one covers.
    static func plan(covering samples: Int, like toc: OpusTOC) -> [(packet: [UInt8], samples: Int)] {
        guard samples >= granularity else { return [] }
        var remaining = samples - samples % granularity
        var out: [(packet: [UInt8], samples: Int)] = []
        let stereo: UInt8 = toc.isStereo ? OpusTOC.stereoBit : 0
        for (config, frameSamples) in frameChoices(toc) where remaining >= frameSamples {
            var frames = remaining / frameSamples
            remaining -= frames * frameSamples
            let perPacket = OpusConstants.maxPacketSamples / frameSamples
            while frames > 0 {
                let m = min(frames, perPacket)
                let first = config << OpusTOC.configShift | stereo
                out.append((m == 1 ? [first] : [first | 3, UInt8(m)], m * frameSamples))
                frames -= m
            }
        }
        return out
    }

    /// Configurations to fill with, largest frame first: `toc`'s own and the smaller frame sizes
    /// of its mode and bandwidth, then (SILK, Hybrid) CELT 5 and 2.5 ms for what 10 ms frames leave.
    private static func frameChoices(_ toc: OpusTOC) -> [(config: UInt8, samples: Int)] {
        let sizes: [Int]
        let base: UInt8
        switch toc.mode {
        case .silk: sizes = [480, 960, 1920, 2880]; base = toc.config & ~3
        case .hybrid: sizes = [480, 960]; base = toc.config & ~1
        case .celt: sizes = [120, 240, 480, 960]; base = toc.config & ~3
        }
        var choices: [(config: UInt8, samples: Int)] = sizes.indices.reversed()
            .filter { sizes[$0] <= toc.frameSamples }
            .map { (base + UInt8($0), sizes[$0]) }
        if toc.mode != .celt {
            let celt: UInt8
            switch toc.bandwidth {
            case .narrowband: celt = 16
            case .mediumband, .wideband: celt = 20   // CELT has no medium band: use wideband (RFC 7845 §4.1)
            case .superwideband: celt = 24
            case .fullband: celt = 28
            }
            choices += [(celt + 1, 240), (celt, 120)]
        }
        return choices
    }
}

/// Places Opus packets on a 48 kHz sample timeline starting at position 0, filling gaps with
/// zero-length-frame packets so the decoder conceals them (RFC 7845 §4.1). Shared by the Ogg and
/// WebM exports: what it returns is written back to back, so the container's clock follows the
/// sender's timestamps without ever jumping.
///
/// For each packet, `gap` = its position − `nextPosition`:
/// - 0: the packet is written as is;
/// - > 0: concealment for the gap rounded down to 2.5 ms (like the previous packet, or like this
///   one for a leading gap), then the packet, shifted earlier by the remainder (< 120 samples);
/// - < 0 (overlap): the packet is shifted later to `nextPosition` if the overlap is shorter than
///   the packet, else dropped (a duplicate or a replay).
///
/// The placer does not limit gap sizes: a long pause costs 2 bytes per 120 ms; callers that prefer
/// to split a recording at long gaps decide that before calling.
public struct OpusTimelinePlacer: Sendable {
    /// One packet to write, at `position` (48 kHz samples from the origin).
    public struct Placed: Sendable, Equatable {
        public var packet: [UInt8]
        public var position: Int64
        public var samples: Int
        /// A synthesized zero-length-frame packet rather than a packet from the sender.
        public var isConcealment: Bool

        public init(packet: [UInt8], position: Int64, samples: Int, isConcealment: Bool) {
            self.packet = packet
            self.position = position
            self.samples = samples
            self.isConcealment = isConcealment
        }
    }

    /// What the placer had to repair, for the export report.
    public struct Statistics: Sendable, Equatable {
        /// Sender packets written (shifted ones included).
        public var placedPackets = 0
        public var concealmentPackets = 0
        public var concealedSamples: Int64 = 0
        /// Packets dropped because they lay entirely inside audio already placed.
        public var droppedOverlaps = 0
        /// Packets written away from their position (gap remainder or partial overlap).
        public var shiftedPackets = 0
        /// Sum of those displacements, in samples.
        public var shiftedSamples: Int64 = 0
        /// Gap samples left unfilled because gaps are filled in whole 2.5 ms frames.
        public var roundedGapSamples: Int64 = 0

        public init() {}
    }

    /// TOC used to conceal when no packet has been seen yet: CELT fullband 20 ms mono.
    public static let defaultTOC = OpusTOC(0xF8)

    /// Whether a first packet at position p > 0 is preceded by concealment from 0. Without it
    /// the first packet is placed at its own position and the timeline starts there.
    public let fillsLeadingGap: Bool
    /// Where the next packet's first sample goes.
    public private(set) var nextPosition: Int64 = 0
    public private(set) var statistics = Statistics()
    private var lastTOC: OpusTOC?
    private var started = false

    public init(fillsLeadingGap: Bool = true) {
        self.fillsLeadingGap = fillsLeadingGap
    }

    /// `position` = where the packet's first sample belongs (48 kHz samples since the origin).
    /// Returns what to write, in order: concealment for any gap, then the packet (unless dropped).
    /// Throws, changing nothing, if the packet is not well-formed Opus (RFC 6716 §3.2).
    public mutating func place(_ packet: [UInt8], at position: Int64) throws(PayloadFormatError) -> [Placed] {
        let parsed = try OpusPayload(parsing: packet)
        let samples = parsed.sampleCount
        if !started && !fillsLeadingGap { nextPosition = max(0, position) }
        started = true
        var out: [Placed] = []
        if position > nextPosition {
            out = conceal(Int(clamping: position - nextPosition), like: lastTOC ?? parsed.toc)
            statistics.roundedGapSamples += position - nextPosition
        } else if nextPosition - position >= Int64(samples) {
            statistics.droppedOverlaps += 1
            return []
        }
        if position != nextPosition {
            statistics.shiftedPackets += 1
            statistics.shiftedSamples += abs(position - nextPosition)
        }
        out.append(Placed(packet: packet, position: nextPosition, samples: samples, isConcealment: false))
        nextPosition += Int64(samples)
        lastTOC = parsed.toc
        statistics.placedPackets += 1
        return out
    }

    /// Concealment from `nextPosition` up to `position` (rounded down to 2.5 ms), e.g. to extend
    /// the track to a cut point or to line up a following source; nothing if `position` is not
    /// ahead. Frames are like the last packet placed, or `defaultTOC` before any.
    public mutating func fill(upTo position: Int64) -> [Placed] {
        guard position > nextPosition else { return [] }
        started = true
        return conceal(Int(clamping: position - nextPosition), like: lastTOC ?? Self.defaultTOC)
    }

    private mutating func conceal(_ samples: Int, like toc: OpusTOC) -> [Placed] {
        var out: [Placed] = []
        for (packet, duration) in OpusConcealment.plan(covering: samples, like: toc) {
            out.append(Placed(packet: packet, position: nextPosition, samples: duration, isConcealment: true))
            nextPosition += Int64(duration)
            statistics.concealmentPackets += 1
            statistics.concealedSamples += Int64(duration)
        }
        return out
    }
}
