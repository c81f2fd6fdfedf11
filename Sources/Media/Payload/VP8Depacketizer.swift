/// A complete VP8 frame reassembled from RTP packets.
public struct VP8AssembledFrame: Sendable, Equatable {
    /// The VP8 bitstream (descriptors stripped, payloads concatenated in sequence order).
    public var data: [UInt8]
    /// The RTP timestamp shared by the frame's packets, as passed in.
    public var timestamp: Int64
    /// From the frame tag's P bit (RFC 7741 §4.3).
    public var isKeyFrame: Bool { header.isKeyFrame }
    /// The parsed frame tag (and key-frame dimensions).
    public var header: VP8FrameHeader
    /// PictureID of the first packet, if the sender included one.
    public var pictureID: VP8PayloadDescriptor.PictureID?
    /// N bit of the first packet.
    public var nonReference: Bool
    /// Extended sequence numbers of the first and last packet.
    public var sequenceNumbers: ClosedRange<Int64>

    public init(data: [UInt8], timestamp: Int64, header: VP8FrameHeader, pictureID: VP8PayloadDescriptor.PictureID?,
                nonReference: Bool, sequenceNumbers: ClosedRange<Int64>) {
        self.data = data
        self.timestamp = timestamp
        self.header = header
        self.pictureID = pictureID
        self.nonReference = nonReference
        self.sequenceNumbers = sequenceNumbers
    }
}

/// Something the depacketizer could not turn into a frame, and why.
public struct VP8FrameLoss: Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        /// `count` sequence numbers were never delivered; the frame at `timestamp` (if known) is incomplete.
        case missingPackets(count: Int64)
        /// Packets of a frame whose first packet (S = 1, PID = 0) was never seen, e.g. at the start of a recording.
        case missingStart
        /// A frame started (S = 1, PID = 0) again before the previous one with the same timestamp ended.
        case frameRestarted
        /// The stream ended (`finish()`) while a frame was open.
        case missingEnd
        /// A packet's payload could not be read (descriptor or, at the end, the frame tag).
        case invalid(PayloadFormatError)
        /// A complete delta frame dropped because the decoder needs a key frame first.
        case waitingForKeyFrame
        /// A packet at or before the last sequence number seen (duplicate or reordered): ignored.
        case latePacket
    }

    public var reason: Reason
    /// Timestamp of the affected frame, when one is known.
    public var timestamp: Int64?
    /// Extended sequence numbers involved (missing ones for `.missingPackets`).
    public var sequenceNumbers: ClosedRange<Int64>

    public init(reason: Reason, timestamp: Int64?, sequenceNumbers: ClosedRange<Int64>) {
        self.reason = reason
        self.timestamp = timestamp
        self.sequenceNumbers = sequenceNumbers
    }
}

/// What one `push` produced, in order.
public enum VP8DepacketizerOutput: Sendable, Equatable {
    case frame(VP8AssembledFrame)
    case loss(VP8FrameLoss)
}

/// Reassembles VP8 frames from RTP payloads (RFC 7741 §4) and never returns a partial frame.
///
/// Contract: call `push` with packets of one SSRC in increasing extended sequence number (sort
/// stored packets first; a live caller puts a jitter buffer in front). A packet at or before the
/// last sequence number is reported as `.latePacket` and ignored, so reordering is not repaired
/// here. An empty payload (a padding-only packet) counts as received and carries no data.
///
/// A frame is emitted when its packets, from the one with S = 1 and PID = 0 through the one
/// with the marker bit, have contiguous sequence numbers; a timestamp change also ends a frame
/// whose marker was never set. Any gap drops the open frame (one `.missingPackets` event). Whole
/// frames may also have vanished in a gap; that is ruled out only when the next packet starts
/// the frame whose PictureID follows the last one started, or continues the frame the gap cut.
/// With `waitsForKeyFrame`, the stream starts out waiting for a key frame and waits again after
/// every loss that may have hit a reference frame (N = 0, or unknown frames in a gap); complete
/// delta frames are then dropped (`.waitingForKeyFrame`) until a key frame arrives. Losing part
/// of an N = 1 frame drops only that frame.
public struct VP8Depacketizer: Sendable {
    public let waitsForKeyFrame: Bool
    /// True while delta frames are being dropped.
    public private(set) var isWaitingForKeyFrame: Bool

    private struct OpenFrame: Sendable {
        var timestamp: Int64
        var first: Int64
        var last: Int64
        var data: [UInt8]
        var pictureID: VP8PayloadDescriptor.PictureID?
        var nonReference: Bool
    }

    private var open: OpenFrame?
    private var lastSequence: Int64?
    /// Missing sequence numbers not yet judged; `reported` if a loss event already covers them
    /// (the open frame they cut). The next packet with data decides whether whole frames were in it.
    private var pendingGap: (range: ClosedRange<Int64>, reported: Bool)?
    private var lastStartedPictureID: VP8PayloadDescriptor.PictureID?
    /// Timestamp of the last continuation packet dropped for want of a start, so a frame whose
    /// start was lost is reported once, not once per packet.
    private var orphanTimestamp: Int64?

    public init(waitsForKeyFrame: Bool = true) {
        self.waitsForKeyFrame = waitsForKeyFrame
        isWaitingForKeyFrame = waitsForKeyFrame
    }

    /// Feeds one packet: its extended sequence number, marker bit, RTP timestamp (any consistent
    /// extension of the 32-bit field) and payload. Returns the frames completed and the losses
    /// detected by this packet, in stream order.
    public mutating func push(sequenceNumber seq: Int64, marker: Bool, timestamp: Int64, payload: [UInt8]) -> [VP8DepacketizerOutput] {
        var out: [VP8DepacketizerOutput] = []
        if let last = lastSequence {
            guard seq > last else {
                out.append(.loss(VP8FrameLoss(reason: .latePacket, timestamp: timestamp, sequenceNumbers: seq ... seq)))
                return out
            }
            if seq > last + 1 {
                let missing = (last + 1) ... (seq - 1)
                var reported = false
                if let frame = open {
                    out.append(.loss(VP8FrameLoss(reason: .missingPackets(count: seq - last - 1), timestamp: frame.timestamp,
                                                  sequenceNumbers: missing)))
                    dropped(nonReference: frame.nonReference)
                    open = nil
                    orphanTimestamp = frame.timestamp   // its remaining packets need no second report
                    reported = true
                }
                // Whole frames may also be in the gap: judged at the next packet with data.
                if let earlier = pendingGap {
                    pendingGap = (earlier.range.lowerBound ... missing.upperBound, earlier.reported && reported)
                } else {
                    pendingGap = (missing, reported)
                }
            }
        }
        lastSequence = seq

        guard !payload.isEmpty else { return out }   // padding-only: received, no data
        let parsed: (descriptor: VP8PayloadDescriptor, length: Int)
        do throws(PayloadFormatError) {
            parsed = try VP8PayloadDescriptor.parse(payload)
            guard parsed.length < payload.count else { throw .truncated(field: .vp8Data, needed: 1, available: 0) }
        } catch {
            reportGap(into: &out, timestamp: timestamp, provenHarmless: false)
            if let frame = open {
                out.append(.loss(VP8FrameLoss(reason: .invalid(error), timestamp: frame.timestamp, sequenceNumbers: frame.first ... seq)))
                dropped(nonReference: frame.nonReference)
                open = nil
                orphanTimestamp = frame.timestamp
            } else {
                out.append(.loss(VP8FrameLoss(reason: .invalid(error), timestamp: timestamp, sequenceNumbers: seq ... seq)))
                dropped(nonReference: false)
            }
            return out
        }
        let descriptor = parsed.descriptor
        let data = payload[parsed.length...]

        // After a gap: no whole frame was lost if this packet starts the frame right after the last
        // one started, or if it continues the very frame the gap cut (and that loss was reported).
        if let gap = pendingGap {
            let nextPicture = descriptor.startsFrame && descriptor.pictureID != nil && lastStartedPictureID?.next == descriptor.pictureID
            let sameFrame = gap.reported && !descriptor.startsFrame && orphanTimestamp == timestamp
            reportGap(into: &out, timestamp: timestamp, provenHarmless: nextPicture || sameFrame)
            if !descriptor.startsFrame { orphanTimestamp = timestamp }   // this frame's loss is now reported
        }
        // Contiguous packets with a new timestamp: the open frame ended without a marker.
        if let frame = open, frame.timestamp != timestamp {
            open = nil
            complete(frame, into: &out)
        }
        if descriptor.startsFrame {
            if let frame = open {
                out.append(.loss(VP8FrameLoss(reason: .frameRestarted, timestamp: frame.timestamp, sequenceNumbers: frame.first ... seq - 1)))
                dropped(nonReference: frame.nonReference)
            }
            open = OpenFrame(timestamp: timestamp, first: seq, last: seq, data: Array(data),
                             pictureID: descriptor.pictureID, nonReference: descriptor.nonReference)
            lastStartedPictureID = descriptor.pictureID
            orphanTimestamp = nil
        } else if open != nil {
            open?.data.append(contentsOf: data)
            open?.last = seq
        } else {
            // A continuation without its start: the start was lost earlier (reported then) or
            // predates the stream. Report once per frame.
            if orphanTimestamp != timestamp {
                out.append(.loss(VP8FrameLoss(reason: .missingStart, timestamp: timestamp, sequenceNumbers: seq ... seq)))
                dropped(nonReference: descriptor.nonReference)
                orphanTimestamp = timestamp
            }
            return out
        }
        if marker, let frame = open {
            open = nil
            complete(frame, into: &out)
        }
        return out
    }

    /// Ends the stream: an open frame is reported as `.missingEnd`, an unresolved gap as lost packets.
    public mutating func finish() -> [VP8DepacketizerOutput] {
        var out: [VP8DepacketizerOutput] = []
        reportGap(into: &out, timestamp: nil, provenHarmless: false)
        if let frame = open {
            out.append(.loss(VP8FrameLoss(reason: .missingEnd, timestamp: frame.timestamp, sequenceNumbers: frame.first ... frame.last)))
            dropped(nonReference: frame.nonReference)
            open = nil
        }
        return out
    }

    // MARK: Helpers

    /// Judges the pending gap: nothing if the next frame's PictureID proves no frame was in it,
    /// otherwise a loss event (unless one already covers it) and, since the lost frames may have
    /// been references, a wait for the next key frame.
    private mutating func reportGap(into out: inout [VP8DepacketizerOutput], timestamp: Int64?, provenHarmless: Bool) {
        guard let gap = pendingGap else { return }
        pendingGap = nil
        guard !provenHarmless else { return }
        if !gap.reported {
            out.append(.loss(VP8FrameLoss(reason: .missingPackets(count: Int64(gap.range.count)), timestamp: timestamp,
                                          sequenceNumbers: gap.range)))
        }
        dropped(nonReference: false)
    }

    private mutating func dropped(nonReference: Bool) {
        if waitsForKeyFrame && !nonReference { isWaitingForKeyFrame = true }
    }

    private mutating func complete(_ frame: OpenFrame, into out: inout [VP8DepacketizerOutput]) {
        let header: VP8FrameHeader
        do {
            header = try VP8FrameHeader(parsing: frame.data)
        } catch {
            out.append(.loss(VP8FrameLoss(reason: .invalid(error), timestamp: frame.timestamp, sequenceNumbers: frame.first ... frame.last)))
            dropped(nonReference: frame.nonReference)
            return
        }
        if isWaitingForKeyFrame && !header.isKeyFrame {
            out.append(.loss(VP8FrameLoss(reason: .waitingForKeyFrame, timestamp: frame.timestamp, sequenceNumbers: frame.first ... frame.last)))
            return
        }
        if header.isKeyFrame { isWaitingForKeyFrame = false }
        out.append(.frame(VP8AssembledFrame(data: frame.data, timestamp: frame.timestamp, header: header, pictureID: frame.pictureID,
                                            nonReference: frame.nonReference, sequenceNumbers: frame.first ... frame.last)))
    }
}
