/// One reception report block of an SR or RR (RFC 3550 §6.4.1).
///
/// ```
///  bytes 0-3    SSRC of the source reported on
///  byte  4      fraction lost (fixed point, /256)
///  bytes 5-7    cumulative packets lost, 24-bit two's complement
///  bytes 8-11   extended highest sequence number received
///  bytes 12-15  interarrival jitter (timestamp units)
///  bytes 16-19  LSR: middle 32 bits of the last SR's NTP timestamp
///  bytes 20-23  DLSR: delay since that SR, in 1/65536 s
/// ```
public struct RTCPReportBlock: Sendable, Equatable {
    /// Wire size of a block.
    public static let size = 24
    /// Range of the 24-bit signed cumulative-loss field.
    public static let cumulativeLostRange: ClosedRange<Int32> = -0x80_0000 ... 0x7F_FFFF

    public var ssrc: UInt32
    public var fractionLost: UInt8
    /// Cumulative packets lost; written clamped to `cumulativeLostRange` (RFC 3550 §6.4.1).
    public var cumulativeLost: Int32
    public var extendedHighestSequence: UInt32
    public var jitter: UInt32
    public var lastSR: UInt32
    public var delaySinceLastSR: UInt32

    public init(
        ssrc: UInt32, fractionLost: UInt8 = 0, cumulativeLost: Int32 = 0, extendedHighestSequence: UInt32 = 0,
        jitter: UInt32 = 0, lastSR: UInt32 = 0, delaySinceLastSR: UInt32 = 0
    ) {
        self.ssrc = ssrc
        self.fractionLost = fractionLost
        self.cumulativeLost = cumulativeLost
        self.extendedHighestSequence = extendedHighestSequence
        self.jitter = jitter
        self.lastSR = lastSR
        self.delaySinceLastSR = delaySinceLastSR
    }

    /// Reads a block; `nil` if fewer than 24 bytes remain.
    init?(reading reader: inout ByteReader) {
        guard reader.remaining >= Self.size,
              let ssrc = reader.readUInt32(), let lossWord = reader.readUInt32(),
              let highest = reader.readUInt32(), let jitter = reader.readUInt32(),
              let lsr = reader.readUInt32(), let dlsr = reader.readUInt32()
        else { return nil }
        self.ssrc = ssrc
        self.fractionLost = UInt8(truncatingIfNeeded: lossWord >> 24)
        // Shift the 24-bit field to the top, then arithmetic-shift back to sign-extend it.
        self.cumulativeLost = Int32(bitPattern: lossWord << 8) >> 8
        self.extendedHighestSequence = highest
        self.jitter = jitter
        self.lastSR = lsr
        self.delaySinceLastSR = dlsr
    }

    public func write(to out: inout [UInt8]) {
        let lost = min(max(cumulativeLost, Self.cumulativeLostRange.lowerBound), Self.cumulativeLostRange.upperBound)
        out.appendBigEndian(ssrc)
        out.appendBigEndian(UInt32(fractionLost) << 24 | UInt32(bitPattern: lost) & 0x00FF_FFFF)
        out.appendBigEndian(extendedHighestSequence)
        out.appendBigEndian(jitter)
        out.appendBigEndian(lastSR)
        out.appendBigEndian(delaySinceLastSR)
    }
}

/// Reads `count` report blocks or throws `.invalidLength(field: .reportBlock, …)`.
private func readReportBlocks(_ count: UInt8, from body: inout ByteReader, lengthField: Int) throws(RTPParseError) -> [RTCPReportBlock] {
    var blocks: [RTCPReportBlock] = []
    blocks.reserveCapacity(Int(count))
    for _ in 0 ..< count {
        guard let block = RTCPReportBlock(reading: &body) else {
            throw .invalidLength(field: .reportBlock, value: lengthField)
        }
        blocks.append(block)
    }
    return blocks
}

/// A sender report, SR (RFC 3550 §6.4.1).
///
/// ```
///  header      V P RC | PT=200 | length
///  bytes 4-7   SSRC of the sender
///  bytes 8-15  NTP timestamp (64-bit, seconds since 1900 in 32.32 fixed point)
///  bytes 16-19 RTP timestamp of the same instant
///  bytes 20-23 sender's packet count      bytes 24-27 sender's octet count
///  then        RC report blocks, 24 bytes each
///  then        profile-specific extension bytes up to the padding (kept raw)
/// ```
public struct RTCPSenderReport: Sendable, Equatable {
    public var ssrc: UInt32
    public var ntpTimestamp: UInt64
    public var rtpTimestamp: UInt32
    public var packetCount: UInt32
    public var octetCount: UInt32
    /// At most 31 blocks.
    public var reportBlocks: [RTCPReportBlock]
    /// Profile-specific extension bytes after the report blocks, verbatim.
    public var profileExtension: [UInt8]
    /// Raw padding, the last byte being its count; empty when P is clear.
    public var padding: [UInt8]

    public init(
        ssrc: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32,
        reportBlocks: [RTCPReportBlock] = [], profileExtension: [UInt8] = [], padding: [UInt8] = []
    ) {
        self.ssrc = ssrc
        self.ntpTimestamp = ntpTimestamp
        self.rtpTimestamp = rtpTimestamp
        self.packetCount = packetCount
        self.octetCount = octetCount
        self.reportBlocks = reportBlocks
        self.profileExtension = profileExtension
        self.padding = padding
    }

    init(body: inout ByteReader, _ context: RTCPBodyContext) throws(RTPParseError) {
        guard let ssrc = body.readUInt32(), let ntp = body.readUInt64(), let rtp = body.readUInt32(),
              let packets = body.readUInt32(), let octets = body.readUInt32()
        else { throw .invalidLength(field: .senderInfo, value: context.lengthField) }
        self.ssrc = ssrc
        self.ntpTimestamp = ntp
        self.rtpTimestamp = rtp
        self.packetCount = packets
        self.octetCount = octets
        self.reportBlocks = try readReportBlocks(context.count, from: &body, lengthField: context.lengthField)
        self.profileExtension = body.readRest()
        self.padding = context.padding
    }

    var bodySize: Int { 24 + RTCPReportBlock.size * reportBlocks.count + profileExtension.count }

    /// Bytes `write(to:)` appends, header and padding included.
    public var serializedSize: Int { 4 + bodySize + padding.count }

    /// Appends the packet. Requires at most 31 blocks and a whole number of 32-bit words in total.
    public func write(to out: inout [UInt8]) {
        writeRTCPHeader(count: reportBlocks.count, packetType: RTCPPacketType.senderReport, bodySize: bodySize, padding: padding, to: &out)
        out.appendBigEndian(ssrc)
        out.appendBigEndian(ntpTimestamp)
        out.appendBigEndian(rtpTimestamp)
        out.appendBigEndian(packetCount)
        out.appendBigEndian(octetCount)
        for block in reportBlocks { block.write(to: &out) }
        out.append(contentsOf: profileExtension)
        out.append(contentsOf: padding)
    }
}

/// A receiver report, RR (RFC 3550 §6.4.2).
///
/// ```
///  header      V P RC | PT=201 | length
///  bytes 4-7   SSRC of the packet's sender
///  then        RC report blocks, 24 bytes each
///  then        profile-specific extension bytes up to the padding (kept raw)
/// ```
public struct RTCPReceiverReport: Sendable, Equatable {
    public var ssrc: UInt32
    /// At most 31 blocks.
    public var reportBlocks: [RTCPReportBlock]
    /// Profile-specific extension bytes after the report blocks, verbatim.
    public var profileExtension: [UInt8]
    /// Raw padding, the last byte being its count; empty when P is clear.
    public var padding: [UInt8]

    public init(ssrc: UInt32, reportBlocks: [RTCPReportBlock] = [], profileExtension: [UInt8] = [], padding: [UInt8] = []) {
        self.ssrc = ssrc
        self.reportBlocks = reportBlocks
        self.profileExtension = profileExtension
        self.padding = padding
    }

    init(body: inout ByteReader, _ context: RTCPBodyContext) throws(RTPParseError) {
        guard let ssrc = body.readUInt32() else { throw .invalidLength(field: .rtcpBody, value: context.lengthField) }
        self.ssrc = ssrc
        self.reportBlocks = try readReportBlocks(context.count, from: &body, lengthField: context.lengthField)
        self.profileExtension = body.readRest()
        self.padding = context.padding
    }

    var bodySize: Int { 4 + RTCPReportBlock.size * reportBlocks.count + profileExtension.count }

    /// Bytes `write(to:)` appends, header and padding included.
    public var serializedSize: Int { 4 + bodySize + padding.count }

    /// Appends the packet. Requires at most 31 blocks and a whole number of 32-bit words in total.
    public func write(to out: inout [UInt8]) {
        writeRTCPHeader(count: reportBlocks.count, packetType: RTCPPacketType.receiverReport, bodySize: bodySize, padding: padding, to: &out)
        out.appendBigEndian(ssrc)
        for block in reportBlocks { block.write(to: &out) }
        out.append(contentsOf: profileExtension)
        out.append(contentsOf: padding)
    }
}
