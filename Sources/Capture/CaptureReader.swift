/// Reads a classic pcap or pcapng capture and yields the UDP datagrams in it, one at a time.
///
/// The file is streamed in chunks of about 1 MiB, so captures of any size can be read. Frames
/// that are not usable UDP (other protocols, fragments, truncated or malformed headers,
/// unsupported link types) are counted in `skipped` and never thrown; only problems with the
/// file's own structure throw `CaptureError`.
///
/// ```swift
/// let reader = try CaptureReader(path: "call.pcapng")
/// while let datagram = try reader.next() { … }
/// print(reader.framesRead, reader.skipped)
/// ```
public final class CaptureReader {
    /// The container format, detected from the file's first bytes.
    public enum Format: Sendable, Equatable, CustomStringConvertible {
        /// Classic pcap: its byte order, and whether timestamps are in nanoseconds
        /// (magic `a1b23c4d`) rather than microseconds (`a1b2c3d4`).
        case pcap(bigEndian: Bool, nanosecond: Bool)
        /// pcapng (byte order may change from section to section).
        case pcapng

        public var description: String {
            switch self {
            case let .pcap(bigEndian, nanosecond):
                "pcap (\(bigEndian ? "big" : "little")-endian, \(nanosecond ? "ns" : "µs"))"
            case .pcapng: "pcapng"
            }
        }
    }

    /// Records and blocks larger than this are refused as a bad length rather than buffered.
    public static let maximumRecordLength = 64 << 20

    /// The container format.
    public let format: Format
    /// Packet records or packet blocks read so far, usable or not.
    public private(set) var framesRead = 0
    /// How many frames were passed over, by reason.
    public private(set) var skipped: [SkipReason: Int] = [:]
    /// The total of `skipped`.
    public var skippedCount: Int { skipped.values.reduce(0, +) }

    private let source: ByteSource
    private var closed = false
    private var classic: ClassicPcap?
    private var pcapng: PcapNG?

    /// Opens the capture file at `path` and reads its header (pcap global header or first
    /// pcapng Section Header Block).
    public convenience init(path: String) throws(CaptureError) {
        try self.init(source: ByteSource(path: path))
    }

    /// Reads a capture held in memory.
    public convenience init(bytes: [UInt8]) throws(CaptureError) {
        try self.init(source: ByteSource(bytes: bytes))
    }

    private init(source: ByteSource) throws(CaptureError) {
        self.source = source
        guard try source.fill(4) else {
            throw .truncatedHeader(offset: 0, needed: 4, available: source.available)
        }
        let magic = source.view(4).u32be(0)
        switch magic {
        case 0xA1B2_C3D4, 0xD4C3_B2A1, 0xA1B2_3C4D, 0x4D3C_B2A1:
            let header = try ClassicPcap(source: source, magic: magic)
            classic = header
            format = .pcap(bigEndian: header.bigEndian, nanosecond: header.nanosecond)
        case PcapNG.sectionHeaderType:
            var state = PcapNG()
            try state.readSectionHeader(source, first: true)
            pcapng = state
            format = .pcapng
        default:
            throw .unknownMagic(magic, offset: 0)
        }
    }

    /// The next UDP datagram, or nil at the end of the capture. Throws only for file-level
    /// problems; after a throw the reader should not be used further.
    public func next() throws(CaptureError) -> CapturedDatagram? {
        while !closed {
            guard let (outcome, timestamp, length) = try decodeNextFrame() else { return nil }
            source.advance(length)
            framesRead += 1
            switch outcome {
            case let .skip(reason):
                skipped[reason, default: 0] += 1
            case let .datagram(udp):
                return CapturedDatagram(
                    timestamp: timestamp, sourceAddress: udp.source, sourcePort: udp.sourcePort,
                    destinationAddress: udp.destination, destinationPort: udp.destinationPort,
                    payload: udp.payload, frameNumber: framesRead)
            }
        }
        return nil
    }

    /// Every remaining UDP datagram.
    public func readAll() throws(CaptureError) -> [CapturedDatagram] {
        var all: [CapturedDatagram] = []
        while let datagram = try next() { all.append(datagram) }
        return all
    }

    /// Closes the file early (it is also closed when the reader goes away); `next()` then
    /// returns nil.
    public func close() {
        closed = true
        source.close()
    }

    /// Finds and decodes the next packet, leaving the read position at its start so that no
    /// view into the buffer outlives this call; returns its length for the caller to skip.
    private func decodeNextFrame() throws(CaptureError) -> (FrameOutcome, CaptureTimestamp, Int)? {
        let frame: PendingFrame?
        if var state = pcapng {
            frame = try state.nextFrame(source)
            pcapng = state
        } else if let state = classic {
            frame = try state.nextFrame(source)
        } else {
            frame = nil
        }
        guard let frame else { return nil }
        let outcome: FrameOutcome
        if let linkType = frame.linkType {
            outcome = NetworkDecoder.decode(frame: frame.data, linkType: linkType)
        } else {
            outcome = .skip(.unknownInterface)
        }
        return (outcome, frame.timestamp, frame.length)
    }
}

/// A packet found in the container, not yet consumed from the source.
struct PendingFrame {
    /// The captured bytes.
    var data: ByteView
    /// The link type, or nil when a pcapng block names an undescribed interface.
    var linkType: UInt32?
    var timestamp: CaptureTimestamp
    /// The whole record or block length, to skip once decoded.
    var length: Int
}

/// Classic pcap: a 24-byte global header, then 16-byte record headers each followed by the
/// captured bytes.
struct ClassicPcap {
    let bigEndian: Bool
    let nanosecond: Bool
    let linkType: UInt32
    let snapLength: UInt32

    init(source: ByteSource, magic: UInt32) throws(CaptureError) {
        guard try source.fill(24) else {
            throw .truncatedHeader(offset: 0, needed: 24, available: source.available)
        }
        bigEndian = magic == 0xA1B2_C3D4 || magic == 0xA1B2_3C4D
        nanosecond = magic == 0xA1B2_3C4D || magic == 0x4D3C_B2A1
        let header = source.view(24)
        snapLength = header.u32(16, bigEndian: bigEndian)
        // The low 16 bits are the link type; the upper bits carry FCS information.
        linkType = header.u32(20, bigEndian: bigEndian) & 0xFFFF
        source.advance(24)
    }

    func nextFrame(_ source: ByteSource) throws(CaptureError) -> PendingFrame? {
        let offset = source.offset
        guard try source.fill(1) else { return nil }
        guard try source.fill(16) else {
            throw .truncatedRecord(offset: offset, needed: 16, available: source.available)
        }
        let header = source.view(16)
        let seconds = header.u32(0, bigEndian: bigEndian)
        let fraction = header.u32(4, bigEndian: bigEndian)
        let capturedLength = header.u32(8, bigEndian: bigEndian)
        guard capturedLength <= CaptureReader.maximumRecordLength else {
            throw .badBlockLength(offset: offset, length: capturedLength,
                                  reason: "captured length over the \(CaptureReader.maximumRecordLength)-byte limit")
        }
        let length = 16 + Int(capturedLength)
        guard try source.fill(length) else {
            throw .truncatedRecord(offset: offset, needed: length, available: source.available)
        }
        let perSecond: UInt32 = nanosecond ? 1_000_000_000 : 1_000_000
        let timestamp = CaptureTimestamp(
            seconds: Int64(seconds) + Int64(fraction / perSecond),
            nanoseconds: (fraction % perSecond) * (nanosecond ? 1 : 1000))
        return PendingFrame(data: source.view(length).view(16, Int(capturedLength)),
                            linkType: linkType, timestamp: timestamp, length: length)
    }
}
