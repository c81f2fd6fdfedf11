/// A file-level problem with a capture: the file cannot be opened or read, or its structure
/// (magic, headers, record and block lengths) is broken so that reading cannot go on.
///
/// Problems inside a single frame (non-IP, fragments, truncated or inconsistent headers) are
/// never thrown; `CaptureReader` counts them in `skipped` instead. Offsets are byte offsets from
/// the start of the file (or of the byte array the reader was given).
public enum CaptureError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The first four bytes are neither a classic pcap magic (`a1b2c3d4`, `a1b23c4d`, either
    /// byte order) nor a pcapng Section Header Block (`0a0d0d0a`). `magic` holds the bytes in
    /// file order, as a big-endian number.
    case unknownMagic(UInt32, offset: Int)
    /// The pcapng Section Header Block at `offset` has an unknown byte-order magic (file order).
    case unknownByteOrderMagic(UInt32, offset: Int)
    /// The file ends inside the pcap global header or the first pcapng Section Header Block:
    /// `needed` bytes from `offset`, but only `available` were there.
    case truncatedHeader(offset: Int, needed: Int, available: Int)
    /// The file ends inside the classic pcap record (16-byte header plus captured bytes) that
    /// starts at `offset`.
    case truncatedRecord(offset: Int, needed: Int, available: Int)
    /// The file ends inside the pcapng block that starts at `offset`.
    case truncatedBlock(offset: Int, needed: Int, available: Int)
    /// The record or block at `offset` declares a length that cannot be right: `reason` says
    /// why (too small for its type, not a multiple of 4, trailing length differs, over the limit).
    case badBlockLength(offset: Int, length: UInt32, reason: String)
    /// The pcapng section at `offset` has a major version this reader does not know.
    case unsupportedVersion(major: UInt16, minor: UInt16, offset: Int)
    /// A system call on `path` failed (`operation` is `"fopen"`, `"fread"`, `"fwrite"`, …).
    case io(operation: String, path: String, errno: Int32, message: String)
    /// `PcapWriter` cannot encode a datagram: `reason` names the field (bad address text,
    /// mixed address families, payload too large, timestamp out of range).
    case invalidDatagram(reason: String)

    public var description: String {
        switch self {
        case let .unknownMagic(magic, offset):
            return "unknown capture file magic 0x\(hex32(magic)) at byte offset \(offset) "
                + "(expected pcap a1b2c3d4/a1b23c4d in either byte order, or pcapng 0a0d0d0a)"
        case let .unknownByteOrderMagic(magic, offset):
            return "pcapng section header at byte offset \(offset) has unknown byte-order magic "
                + "0x\(hex32(magic)) (expected 1a2b3c4d in either byte order)"
        case let .truncatedHeader(offset, needed, available):
            return "capture file header at byte offset \(offset) is truncated: needs \(needed) "
                + "bytes, only \(available) present"
        case let .truncatedRecord(offset, needed, available):
            return "pcap record at byte offset \(offset) is truncated: needs \(needed) bytes "
                + "(16-byte header plus captured length), only \(available) present"
        case let .truncatedBlock(offset, needed, available):
            return "pcapng block at byte offset \(offset) is truncated: needs \(needed) bytes, "
                + "only \(available) present"
        case let .badBlockLength(offset, length, reason):
            return "bad length \(length) in record or block at byte offset \(offset): \(reason)"
        case let .unsupportedVersion(major, minor, offset):
            return "pcapng section at byte offset \(offset) has unsupported version \(major).\(minor)"
        case let .io(operation, path, errno, message):
            return "\(operation) failed on \(path): \(message) (errno \(errno))"
        case let .invalidDatagram(reason):
            return "cannot encode datagram: \(reason)"
        }
    }
}

/// Eight lowercase hex digits.
func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
