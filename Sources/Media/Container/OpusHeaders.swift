/// The Ogg Opus identification header (RFC 7845 §5.1), channel mapping family 0 only (mono or
/// stereo, one Opus stream per Ogg packet: what WebRTC sends).
///
/// ```
///  0  "OpusHead"          magic
///  8  version             1 (readers accept 0…15)
///  9  channel count C     1 or 2 for family 0
/// 10  pre-skip            UInt16 LE, 48 kHz samples to drop at the start
/// 12  input sample rate   UInt32 LE, Hz, informational (0 = unknown)
/// 16  output gain         Int16 LE, Q7.8 dB
/// 18  mapping family      0
/// ```
public struct OpusHead: Sendable, Equatable {
    public static let magic: [UInt8] = Array("OpusHead".utf8)
    /// Size of a family-0 header.
    public static let size = 19

    /// 1 when written by us; a parsed header keeps what it said (0…15).
    public let version: UInt8
    public let channels: Int
    /// Samples at 48 kHz that the decoder discards at the start (RFC 7845 §4.2).
    public let preSkip: Int
    public let inputSampleRate: UInt32
    /// Q7.8 dB added to the decoded output (RFC 7845 §5.1 field 6).
    public let outputGain: Int16

    /// Throws `.invalidArgument` unless `channels` is 1 or 2 and `preSkip` fits 16 bits.
    public init(channels: Int, preSkip: Int, inputSampleRate: UInt32 = 48_000, outputGain: Int16 = 0) throws(ContainerError) {
        guard channels == 1 || channels == 2 else {
            throw .invalidArgument(name: "channels", reason: "\(channels); mapping family 0 carries 1 or 2 channels")
        }
        guard (0 ... Int(UInt16.max)).contains(preSkip) else {
            throw .invalidArgument(name: "preSkip", reason: "\(preSkip) samples outside 0...65535")
        }
        self.version = 1
        self.channels = channels
        self.preSkip = preSkip
        self.inputSampleRate = inputSampleRate
        self.outputGain = outputGain
    }

    public func serialized() -> [UInt8] {
        var out = Self.magic
        out.reserveCapacity(Self.size)
        out.append(version)
        out.append(UInt8(channels))
        out.appendLittleEndian(UInt16(preSkip))
        out.appendLittleEndian(inputSampleRate)
        out.appendLittleEndian(outputGain)
        out.append(0)
        return out
    }

    /// Reads an identification header packet. Bytes after the 19 of family 0 are ignored (RFC 7845
    /// §5.1 lets a later minor version append fields).
    public init(parsing packet: [UInt8]) throws(OggFormatError) {
        guard packet.count >= Self.size else {
            throw .truncated(field: .opusHead, needed: Self.size, available: packet.count)
        }
        guard packet.starts(with: Self.magic) else {
            throw .invalidValue(field: .opusHead, reason: "does not start with \"OpusHead\"")
        }
        let version = packet[8]
        guard version & 0xF0 == 0 else {
            throw .unsupported(field: .opusHeadVersion, reason: "major version \(version >> 4), only 0 is defined")
        }
        let channels = Int(packet[9])
        guard channels > 0 else { throw .invalidValue(field: .channelCount, reason: "0 channels") }
        guard packet[18] == 0 else {
            throw .unsupported(field: .channelMappingFamily, reason: "family \(packet[18]); only family 0 is supported")
        }
        guard channels <= 2 else {
            throw .invalidValue(field: .channelCount, reason: "\(channels) channels; family 0 allows 1 or 2")
        }
        self.version = version
        self.channels = channels
        self.preSkip = Int(UInt16(littleEndianBytes: packet[10...]))
        self.inputSampleRate = UInt32(littleEndianBytes: packet[12...])
        self.outputGain = Int16(littleEndianBytes: packet[16...])
    }
}

/// The Ogg Opus comment header (RFC 7845 §5.2): a vendor string and "NAME=value" comments,
/// the Vorbis comment layout without its framing bit.
///
/// ```
///  0  "OpusTags"          magic
///  8  vendor length V     UInt32 LE, then V bytes of UTF-8
///     comment count K     UInt32 LE, then K × (UInt32 LE length + UTF-8 "NAME=value")
///     [anything]          optional; ignored here
/// ```
public struct OpusTags: Sendable, Equatable {
    public static let magic: [UInt8] = Array("OpusTags".utf8)

    public let vendor: String
    /// User comments, each "NAME=value"; NAME is ASCII 0x20…0x7D without '=' (case-insensitive).
    public let comments: [String]

    /// Throws `.invalidArgument` for a comment without '=' or with a name outside 0x20…0x7D.
    public init(vendor: String, comments: [String] = []) throws(ContainerError) {
        for comment in comments {
            let bytes = Array(comment.utf8)
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")), equals > 0 else {
                throw .invalidArgument(name: "comment", reason: "\"\(comment)\" is not NAME=value")
            }
            guard bytes[..<equals].allSatisfy({ (0x20 ... 0x7D).contains($0) }) else {
                throw .invalidArgument(name: "comment", reason: "name of \"\(comment)\" has a byte outside 0x20...0x7D")
            }
        }
        self.vendor = vendor
        self.comments = comments
    }

    public func serialized() -> [UInt8] {
        var out = Self.magic
        let vendorBytes = Array(vendor.utf8)
        out.appendLittleEndian(UInt32(vendorBytes.count))
        out += vendorBytes
        out.appendLittleEndian(UInt32(comments.count))
        for comment in comments {
            let bytes = Array(comment.utf8)
            out.appendLittleEndian(UInt32(bytes.count))
            out += bytes
        }
        return out
    }

    /// Reads a comment header packet: checks lengths and UTF-8. Comment names are not checked
    /// (readers should be lenient) and data after the last comment is ignored.
    public init(parsing packet: [UInt8]) throws(OggFormatError) {
        guard packet.count >= 16 else { throw .truncated(field: .opusTags, needed: 16, available: packet.count) }
        guard packet.starts(with: Self.magic) else {
            throw .invalidValue(field: .opusTags, reason: "does not start with \"OpusTags\"")
        }
        var offset = 8
        func string(_ field: OggField) throws(OggFormatError) -> String {
            guard packet.count - offset >= 4 else {
                throw .truncated(field: field, needed: 4, available: packet.count - offset)
            }
            let length = Int(UInt32(littleEndianBytes: packet[offset...]))
            offset += 4
            guard packet.count - offset >= length else {
                throw .truncated(field: field, needed: length, available: packet.count - offset)
            }
            defer { offset += length }
            guard let text = String(validating: packet[offset ..< offset + length], as: UTF8.self) else {
                throw .invalidValue(field: field, reason: "not UTF-8")
            }
            return text
        }
        vendor = try string(.vendorString)
        guard packet.count - offset >= 4 else {
            throw .truncated(field: .opusTags, needed: 4, available: packet.count - offset)
        }
        let count = Int(UInt32(littleEndianBytes: packet[offset...]))
        offset += 4
        // Each comment takes at least its 4-byte length: refuse counts the packet cannot hold
        // before reserving anything.
        guard count <= (packet.count - offset) / 4 else {
            throw .truncated(field: .userComment, needed: 4 * count, available: packet.count - offset)
        }
        var comments: [String] = []
        comments.reserveCapacity(count)
        for _ in 0 ..< count { comments.append(try string(.userComment)) }
        self.comments = comments
    }
}
