/// The CRC-32 of Ogg pages (RFC 3533 §6): polynomial 0x04C11DB7, initial value 0, no final XOR,
/// no bit reflection. Not zlib's CRC-32, which is reflected and starts at 0xFFFFFFFF.
public enum OggCRC {
    static let table: [UInt32] = (0 ..< 256).map { i in
        var r = UInt32(i) << 24
        for _ in 0 ..< 8 { r = r & 0x8000_0000 != 0 ? (r << 1) ^ 0x04C1_1DB7 : r << 1 }
        return r
    }

    /// The CRC of `bytes`, continuing from `crc` (0 for a fresh computation).
    public static func checksum(_ bytes: some Sequence<UInt8>, continuing crc: UInt32 = 0) -> UInt32 {
        var crc = crc
        for byte in bytes { crc = (crc << 8) ^ table[Int((crc >> 24) ^ UInt32(byte))] }
        return crc
    }
}

/// One Ogg page (RFC 3533 §6). All integers are little-endian.
///
/// ```
///  0  "OggS"             capture pattern
///  4  version            0
///  5  header type        0x01 continued packet, 0x02 first page (BOS), 0x04 last page (EOS)
///  6  granule position   Int64; −1 when no packet ends on the page
/// 14  serial number      UInt32, one per logical stream
/// 18  sequence number    UInt32, 0, 1, 2, … within the logical stream
/// 22  CRC-32             over the whole page with this field zeroed (`OggCRC`)
/// 26  n                  number of segments, 0…255
/// 27  lacing values      n bytes; 255 = the packet goes on, < 255 = it ends with this segment
/// 27+n body              Σ lacing values bytes
/// ```
public struct OggPage: Sendable, Equatable {
    /// The header type flags (RFC 3533 §6, `header_type_flag`).
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// The first segment continues a packet begun on the previous page.
        public static let continued = Flags(rawValue: 0x01)
        /// First page of the logical stream.
        public static let beginningOfStream = Flags(rawValue: 0x02)
        /// Last page of the logical stream.
        public static let endOfStream = Flags(rawValue: 0x04)
        static let all: Flags = [.continued, .beginningOfStream, .endOfStream]
    }

    public static let capturePattern: [UInt8] = [0x4F, 0x67, 0x67, 0x53]   // "OggS"
    /// Bytes before the segment table.
    public static let headerSize = 27
    public static let maxSegments = 255
    /// Granule position of a page on which no packet ends.
    public static let noGranulePosition: Int64 = -1
    static let crcOffset = 22

    public var flags: Flags
    public var granulePosition: Int64
    public var serialNumber: UInt32
    public var sequenceNumber: UInt32
    /// The lacing values; they always add up to `body.count`.
    public let segmentTable: [UInt8]
    public let body: [UInt8]

    /// A page from its parts; throws `.invalidArgument` if the segment table has more than 255
    /// entries or does not add up to the body's length.
    public init(flags: Flags = [], granulePosition: Int64, serialNumber: UInt32, sequenceNumber: UInt32,
                segmentTable: [UInt8], body: [UInt8]) throws(ContainerError) {
        guard segmentTable.count <= Self.maxSegments else {
            throw .invalidArgument(name: "segmentTable", reason: "\(segmentTable.count) lacing values, at most 255")
        }
        let total = segmentTable.reduce(0) { $0 + Int($1) }
        guard total == body.count else {
            throw .invalidArgument(name: "body", reason: "\(body.count) bytes but the lacing values add up to \(total)")
        }
        self.init(unchecked: flags, granulePosition, serialNumber, sequenceNumber, segmentTable, body)
    }

    /// A page whose segment table the caller has built itself (≤ 255 values summing to the body size).
    init(unchecked flags: Flags, _ granulePosition: Int64, _ serialNumber: UInt32, _ sequenceNumber: UInt32,
         _ segmentTable: [UInt8], _ body: [UInt8]) {
        self.flags = flags
        self.granulePosition = granulePosition
        self.serialNumber = serialNumber
        self.sequenceNumber = sequenceNumber
        self.segmentTable = segmentTable
        self.body = body
    }

    /// The lacing values of one packet of `size` bytes (RFC 3533 §5): 255s, then one value below
    /// 255, which is 0 when the size is a multiple of 255 (753 → 255 255 243; 255 → 255 0).
    public static func lacing(packetSize size: Int) -> [UInt8] {
        Array(repeating: 255, count: max(0, size) / 255) + [UInt8(max(0, size) % 255)]
    }

    /// Header, segment table and body.
    public var serializedSize: Int { Self.headerSize + segmentTable.count + body.count }

    /// Number of packets that end on this page (lacing values below 255).
    public var completedPacketCount: Int { segmentTable.reduce(0) { $1 < 255 ? $0 + 1 : $0 } }

    /// The last packet on the page goes on in the next page (the last lacing value is 255).
    public var endsInsidePacket: Bool { segmentTable.last == 255 }

    /// The page's bytes, with its CRC.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(serializedSize)
        out += Self.capturePattern
        out.append(0)
        out.append(flags.rawValue)
        out.appendLittleEndian(UInt64(bitPattern: granulePosition))
        out.appendLittleEndian(serialNumber)
        out.appendLittleEndian(sequenceNumber)
        out.appendLittleEndian(UInt32(0))
        out.append(UInt8(segmentTable.count))
        out += segmentTable
        out += body
        let crc = OggCRC.checksum(out)
        for i in 0 ..< 4 { out[Self.crcOffset + i] = UInt8(truncatingIfNeeded: crc >> (8 * i)) }
        return out
    }

    /// Reads the page at the start of `bytes`; anything after it is ignored (the next page starts
    /// at `serializedSize`). Checks the capture pattern, version 0, the flags, lengths and the CRC.
    public init(parsing bytes: ArraySlice<UInt8>) throws(OggFormatError) {
        let base = bytes.startIndex
        let available = bytes.count
        guard available >= Self.headerSize else {
            throw .truncated(field: .pageHeader, needed: Self.headerSize, available: available)
        }
        guard bytes[base ..< base + 4].elementsEqual(Self.capturePattern) else {
            throw .invalidValue(field: .capturePattern, reason: "\(Array(bytes[base ..< base + 4])) is not \"OggS\"")
        }
        guard bytes[base + 4] == 0 else {
            throw .unsupported(field: .streamStructureVersion, reason: "version \(bytes[base + 4]), only 0 exists")
        }
        let flags = Flags(rawValue: bytes[base + 5])
        guard Flags.all.isSuperset(of: flags) else {
            throw .invalidValue(field: .headerType, reason: "reserved bits set in 0x\(String(flags.rawValue, radix: 16))")
        }
        let segments = Int(bytes[base + 26])
        guard available >= Self.headerSize + segments else {
            throw .truncated(field: .segmentTable, needed: segments, available: available - Self.headerSize)
        }
        let tableStart = base + Self.headerSize
        let table = Array(bytes[tableStart ..< tableStart + segments])
        let bodyLength = table.reduce(0) { $0 + Int($1) }
        let bodyStart = tableStart + segments
        guard bytes.endIndex - bodyStart >= bodyLength else {
            throw .truncated(field: .pageBody, needed: bodyLength, available: bytes.endIndex - bodyStart)
        }
        let stored = UInt32(littleEndianBytes: bytes[(base + Self.crcOffset)...])
        var crc = OggCRC.checksum(bytes[base ..< base + Self.crcOffset])
        crc = OggCRC.checksum([0, 0, 0, 0], continuing: crc)
        crc = OggCRC.checksum(bytes[(base + Self.crcOffset + 4) ..< (bodyStart + bodyLength)], continuing: crc)
        guard crc == stored else { throw .crcMismatch(stored: stored, computed: crc) }
        self.init(unchecked: flags, Int64(bitPattern: UInt64(littleEndianBytes: bytes[(base + 6)...])),
                  UInt32(littleEndianBytes: bytes[(base + 14)...]), UInt32(littleEndianBytes: bytes[(base + 18)...]),
                  table, Array(bytes[bodyStart ..< bodyStart + bodyLength]))
    }

    public init(parsing bytes: [UInt8]) throws(OggFormatError) {
        try self.init(parsing: bytes[...])
    }

    /// All pages of a byte stream, back to back with nothing left over (e.g. a whole file).
    public static func pages(in bytes: [UInt8]) throws(OggFormatError) -> [OggPage] {
        var pages: [OggPage] = []
        var offset = 0
        while offset < bytes.count {
            let page = try OggPage(parsing: bytes[offset...])
            offset += page.serializedSize
            pages.append(page)
        }
        return pages
    }

    /// The packets whose bytes are in `pages` (one logical stream, in order); a packet still open
    /// after the last page is left out. Lacing per RFC 3533 §5.
    public static func packets(in pages: [OggPage]) -> [[UInt8]] {
        var packets: [[UInt8]] = []
        var current: [UInt8] = []
        for page in pages {
            var offset = 0
            for lacing in page.segmentTable {
                current += page.body[offset ..< offset + Int(lacing)]
                offset += Int(lacing)
                if lacing < 255 {
                    packets.append(current)
                    current = []
                }
            }
        }
        return packets
    }
}

// MARK: Little-endian helpers (Ogg and Ogg Opus store every integer little-endian)

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        for i in 0 ..< T.bitWidth / 8 { append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }
}

extension FixedWidthInteger {
    /// The value stored little-endian in the first `bitWidth / 8` bytes; callers check the length.
    @inline(__always)
    init(littleEndianBytes bytes: ArraySlice<UInt8>) {
        var value = Self.zero
        var index = bytes.startIndex
        for i in 0 ..< Self.bitWidth / 8 {
            value |= Self(truncatingIfNeeded: bytes[index]) << (8 * i)
            index += 1
        }
        self = value
    }
}
