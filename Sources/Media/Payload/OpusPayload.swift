/// The Opus TOC byte, first byte of every Opus packet (RFC 6716 §3.1).
///
/// ```
///  bits 7-3  config: mode, audio bandwidth and frame duration (table in RFC 6716 §3.1)
///  bit  2    s: stereo
///  bits 1-0  c: frame count code (0: one frame, 1: two equal, 2: two sized, 3: arbitrary)
/// ```
public struct OpusTOC: Sendable, Equatable, Hashable {
    public enum Mode: Sendable, Equatable { case silk, hybrid, celt }
    public enum Bandwidth: Sendable, Equatable { case narrowband, mediumband, wideband, superwideband, fullband }

    static let configShift: UInt8 = 3
    static let stereoBit: UInt8 = 0x04
    static let codeMask: UInt8 = 0x03

    public let byte: UInt8

    public init(_ byte: UInt8) { self.byte = byte }

    /// 0...31.
    public var config: UInt8 { byte >> Self.configShift }
    public var isStereo: Bool { byte & Self.stereoBit != 0 }
    /// The frame count code c, 0...3 (RFC 6716 §3.2).
    public var frameCountCode: UInt8 { byte & Self.codeMask }

    public var mode: Mode {
        switch config {
        case 0 ... 11: return .silk
        case 12 ... 15: return .hybrid
        default: return .celt
        }
    }

    public var bandwidth: Bandwidth {
        switch config {
        case 0 ... 3: return .narrowband
        case 4 ... 7: return .mediumband
        case 8 ... 11: return .wideband
        case 12 ... 13: return .superwideband
        case 14 ... 15: return .fullband
        case 16 ... 19: return .narrowband
        case 20 ... 23: return .wideband
        case 24 ... 27: return .superwideband
        default: return .fullband
        }
    }

    /// Duration of each frame in 48 kHz samples: 120 (2.5 ms) … 2880 (60 ms).
    public var frameSamples: Int {
        let index = Int(config & 3)
        switch mode {
        case .silk: return [480, 960, 1920, 2880][index]
        case .hybrid: return [480, 960][index & 1]
        case .celt: return [120, 240, 480, 960][index]
        }
    }
}

/// One RTP payload of the Opus format (RFC 7587 §4.2): exactly one Opus packet, no payload header.
///
/// Parsing checks the packet's framing against RFC 6716 §3.2 (the same rules as libopus's
/// `opus_packet_parse`): frame lengths fit, at most 1275 bytes per frame, at most 120 ms in total.
public struct OpusPayload: Sendable, Equatable {
    /// RTP clock rate for Opus, whatever the coded bandwidth (RFC 7587 §4.1).
    public static let clockRate = 48_000
    /// Largest frame in bytes (RFC 6716 §3.2.1).
    public static let maxFrameBytes = 1275

    /// The Opus packet (the whole RTP payload).
    public let packet: [UInt8]
    public let toc: OpusTOC
    /// Byte length of each frame in the packet; a 0 means DTX/lost (the decoder conceals it).
    public let frameLengths: [Int]

    public var frameCount: Int { frameLengths.count }
    /// Duration in 48 kHz samples, which is also the RTP timestamp increment (RFC 7587 §4.2).
    public var sampleCount: Int { frameCount * toc.frameSamples }
    /// A packet of 1–2 bytes: libopus's DTX output, which a sender need not transmit.
    public var isDTX: Bool { packet.count <= 2 }

    /// Reads an RTP payload as one Opus packet (the depacketizer of RFC 7587).
    public init(parsing payload: [UInt8]) throws(PayloadFormatError) {
        guard let first = payload.first else { throw .emptyPayload }
        let toc = OpusTOC(first)
        let n = payload.count
        var offset = 1
        var end = n          // end of frame data: the Opus padding (code 3) sits after it
        var lengths: [Int] = []

        /// Reads a frame length coded in 1 or 2 bytes (RFC 6716 §3.2.1), before `end`.
        func readLength(_ field: PayloadField) throws(PayloadFormatError) -> Int {
            guard offset < end else { throw .truncated(field: field, needed: 1, available: 0) }
            let b0 = Int(payload[offset])
            if b0 < 252 { offset += 1; return b0 }
            guard offset + 1 < end else { throw .truncated(field: field, needed: 2, available: end - offset) }
            let value = b0 + 4 * Int(payload[offset + 1])
            offset += 2
            return value
        }

        switch toc.frameCountCode {
        case 0:
            lengths = [n - 1]
        case 1:
            guard (n - 1) % 2 == 0 else {
                throw .invalidValue(field: .opusFrames, reason: "code 1 needs two equal frames, \(n - 1) bytes is odd")
            }
            lengths = [(n - 1) / 2, (n - 1) / 2]
        case 2:
            let first = try readLength(.opusFrameLength)
            guard first <= n - offset else {
                throw .truncated(field: .opusFrames, needed: first, available: n - offset)
            }
            lengths = [first, n - offset - first]
        default:
            guard offset < n else { throw .truncated(field: .opusFrameCount, needed: 1, available: 0) }
            let countByte = payload[offset]
            offset += 1
            let count = Int(countByte & 0x3F)
            let vbr = countByte & 0x80 != 0, padded = countByte & 0x40 != 0
            guard count >= 1 else { throw .invalidValue(field: .opusFrameCount, reason: "frame count 0") }
            guard count * toc.frameSamples <= 5760 else {
                throw .invalidValue(field: .opusFrameCount, reason: "\(count) frames of \(toc.frameSamples) samples exceed 120 ms")
            }
            var padding = 0
            if padded {
                // Each 255 adds 254 bytes and continues; the first byte below 255 ends the count.
                var more = true
                while more {
                    guard offset < n - padding else { throw .truncated(field: .opusPadding, needed: 1, available: 0) }
                    let p = Int(payload[offset])
                    offset += 1
                    padding += p == 255 ? 254 : p
                    more = p == 255
                }
            }
            guard n - offset - padding >= 0 else {
                throw .truncated(field: .opusPadding, needed: padding, available: n - offset)
            }
            end = n - padding
            if vbr {
                var sum = 0
                for _ in 0 ..< count - 1 {
                    let length = try readLength(.opusFrameLength)
                    guard length <= end - offset else {
                        throw .truncated(field: .opusFrames, needed: length, available: end - offset)
                    }
                    lengths.append(length)
                    sum += length
                }
                let last = end - offset - sum
                guard last >= 0 else { throw .truncated(field: .opusFrames, needed: sum, available: end - offset) }
                lengths.append(last)
            } else {
                let data = end - offset
                guard data % count == 0 else {
                    throw .invalidValue(field: .opusFrames, reason: "\(data) bytes do not split into \(count) equal (CBR) frames")
                }
                lengths = Array(repeating: data / count, count: count)
            }
        }
        if let longest = lengths.max(), longest > Self.maxFrameBytes {
            throw .invalidValue(field: .opusFrames, reason: "frame of \(longest) bytes exceeds \(Self.maxFrameBytes)")
        }
        self.packet = payload
        self.toc = toc
        self.frameLengths = lengths
    }
}

/// Turns a stream of encoder output into RFC 7587 RTP payloads with timestamps and markers.
///
/// One Opus packet per RTP packet; the timestamp advances by each packet's duration at 48 kHz.
/// With `skipsDTX`, packets of 1–2 bytes (DTX) are not sent but still advance the timestamp, and
/// the marker bit is set on the first packet after such a gap and on the very first packet
/// (RFC 7587 §4.2, following RFC 3551's talk-spurt rule).
public struct OpusPacketizer: Sendable {
    /// One RTP payload ready to send.
    public struct Packet: Sendable, Equatable {
        public var payload: [UInt8]
        public var timestamp: UInt32
        public var marker: Bool
    }

    /// Timestamp of the next packet.
    public private(set) var nextTimestamp: UInt32
    public let skipsDTX: Bool
    private var afterGap = true

    public init(initialTimestamp: UInt32, skipsDTX: Bool = true) {
        nextTimestamp = initialTimestamp
        self.skipsDTX = skipsDTX
    }

    /// Packetizes one encoder output; `nil` when it is DTX and `skipsDTX` is set.
    /// Throws if the bytes are not a well-formed Opus packet.
    public mutating func packetize(_ opusPacket: [UInt8]) throws(PayloadFormatError) -> Packet? {
        let parsed = try OpusPayload(parsing: opusPacket)
        let timestamp = nextTimestamp
        nextTimestamp &+= UInt32(parsed.sampleCount)
        if skipsDTX && parsed.isDTX {
            afterGap = true
            return nil
        }
        defer { afterGap = false }
        return Packet(payload: opusPacket, timestamp: timestamp, marker: afterGap)
    }
}
