/// How a pcapng interface counts time: `if_tsresol`, units of 10^-n or 2^-n seconds.
enum TimestampResolution: Equatable {
    case decimal(UInt8)
    case binary(UInt8)

    /// The default when an interface has no `if_tsresol` option: microseconds.
    static let microseconds = TimestampResolution.decimal(6)

    /// The `if_tsresol` byte: high bit set means a power of two.
    init(option byte: UInt8) {
        self = byte & 0x80 != 0 ? .binary(byte & 0x7F) : .decimal(byte)
    }

    /// `ticks` units since the epoch as seconds and nanoseconds (finer units truncated).
    func timestamp(_ ticks: UInt64) -> CaptureTimestamp {
        switch self {
        case let .decimal(exponent):
            let e = Int(exponent)
            if e <= 19 {
                let perSecond = Self.power10(e)
                let fraction = ticks % perSecond
                let ns = e <= 9 ? fraction * Self.power10(9 - e) : fraction / Self.power10(e - 9)
                return CaptureTimestamp(seconds: Int64(clamping: ticks / perSecond), nanoseconds: UInt32(ns))
            }
            // 10^e > 2^64 > ticks: under a second.
            let ns = e - 9 <= 19 ? ticks / Self.power10(e - 9) : 0
            return CaptureTimestamp(seconds: 0, nanoseconds: UInt32(ns))
        case let .binary(exponent):
            let e = Int(exponent)
            if e == 0 { return CaptureTimestamp(seconds: Int64(clamping: ticks), nanoseconds: 0) }
            let seconds = e < 64 ? ticks >> e : 0
            let fraction = e < 64 ? ticks & ((1 << e) - 1) : ticks
            // fraction * 1e9 / 2^e, in 128 bits.
            let (high, low) = fraction.multipliedFullWidth(by: 1_000_000_000)
            let ns: UInt64 = e < 64 ? (high << (64 - e)) | (low >> e) : high >> (e - 64)
            return CaptureTimestamp(seconds: Int64(clamping: seconds), nanoseconds: UInt32(ns))
        }
    }

    private static func power10(_ exponent: Int) -> UInt64 {
        var value: UInt64 = 1
        for _ in 0..<exponent { value *= 10 }
        return value
    }
}

/// pcapng: a sequence of blocks (type, total length, body, total length again) in one or more
/// sections, each opened by a Section Header Block that fixes the byte order and starts a new
/// list of interfaces. Packets come in Enhanced (6), Simple (3) and obsolete Packet (2) blocks;
/// every other block type is skipped by its length.
struct PcapNG {
    static let sectionHeaderType: UInt32 = 0x0A0D_0D0A
    static let interfaceDescriptionType: UInt32 = 1
    static let packetType: UInt32 = 2
    static let simplePacketType: UInt32 = 3
    static let enhancedPacketType: UInt32 = 6

    struct Interface {
        var linkType: UInt32
        var snapLength: UInt32
        var resolution: TimestampResolution
    }

    private(set) var bigEndian = false
    private(set) var interfaces: [Interface] = []

    /// Reads the Section Header Block at the read position and consumes it; `first` makes a
    /// short file a truncated header rather than a truncated block.
    mutating func readSectionHeader(_ source: ByteSource, first: Bool) throws(CaptureError) {
        let offset = source.offset
        func truncated(_ needed: Int) -> CaptureError {
            first ? .truncatedHeader(offset: offset, needed: needed, available: source.available)
                : .truncatedBlock(offset: offset, needed: needed, available: source.available)
        }
        guard try source.fill(12) else { throw truncated(12) }
        let byteOrderMagic = source.view(12).u32be(8)
        switch byteOrderMagic {
        case 0x1A2B_3C4D: bigEndian = true
        case 0x4D3C_2B1A: bigEndian = false
        default: throw .unknownByteOrderMagic(byteOrderMagic, offset: offset + 8)
        }
        let length = source.view(12).u32(4, bigEndian: bigEndian)
        try Self.checkLength(length, minimum: 28, offset: offset, what: "section header block")
        guard try source.fill(Int(length)) else { throw truncated(Int(length)) }
        let block = source.view(Int(length))
        try checkTrailer(block, offset: offset)
        let major = block.u16(12, bigEndian: bigEndian), minor = block.u16(14, bigEndian: bigEndian)
        guard major == 1 else { throw .unsupportedVersion(major: major, minor: minor, offset: offset) }
        interfaces = []
        source.advance(Int(length))
    }

    /// Reads blocks until a packet block, which it returns without consuming; nil at the end.
    mutating func nextFrame(_ source: ByteSource) throws(CaptureError) -> PendingFrame? {
        while true {
            let offset = source.offset
            guard try source.fill(1) else { return nil }
            guard try source.fill(8) else {
                throw .truncatedBlock(offset: offset, needed: 8, available: source.available)
            }
            let type = source.view(8).u32(0, bigEndian: bigEndian)
            if source.view(8).u32be(0) == Self.sectionHeaderType {
                try readSectionHeader(source, first: false)
                continue
            }
            let length32 = source.view(8).u32(4, bigEndian: bigEndian)
            try Self.checkLength(length32, minimum: 12, offset: offset, what: "block of type \(type)")
            let length = Int(length32)
            guard try source.fill(length) else {
                throw .truncatedBlock(offset: offset, needed: length, available: source.available)
            }
            let block = source.view(length)
            try checkTrailer(block, offset: offset)
            let body = block.view(8, length - 12)
            switch type {
            case Self.interfaceDescriptionType:
                try addInterface(body, offset: offset, length: length32)
            case Self.enhancedPacketType:
                return try packetBlock(body, offset: offset, length: length32, obsolete: false)
            case Self.simplePacketType:
                return try simplePacket(body, offset: offset, length: length32)
            case Self.packetType:
                return try packetBlock(body, offset: offset, length: length32, obsolete: true)
            default:
                break  // statistics, name resolution, secrets, custom, …
            }
            source.advance(length)
        }
    }

    private static func checkLength(_ length: UInt32, minimum: UInt32, offset: Int,
                                    what: String) throws(CaptureError) {
        guard length >= minimum else {
            throw .badBlockLength(offset: offset, length: length,
                                  reason: "\(what) must be at least \(minimum) bytes")
        }
        guard length % 4 == 0 else {
            throw .badBlockLength(offset: offset, length: length,
                                  reason: "\(what) length is not a multiple of 4")
        }
        guard length <= CaptureReader.maximumRecordLength else {
            throw .badBlockLength(offset: offset, length: length,
                                  reason: "\(what) is over the \(CaptureReader.maximumRecordLength)-byte limit")
        }
    }

    private func checkTrailer(_ block: ByteView, offset: Int) throws(CaptureError) {
        let leading = block.u32(4, bigEndian: bigEndian)
        let trailing = block.u32(block.count - 4, bigEndian: bigEndian)
        guard leading == trailing else {
            throw .badBlockLength(offset: offset, length: leading,
                                  reason: "trailing block length \(trailing) differs")
        }
    }

    private mutating func addInterface(_ body: ByteView, offset: Int, length: UInt32) throws(CaptureError) {
        guard body.count >= 8 else {
            throw .badBlockLength(offset: offset, length: length,
                                  reason: "interface description block must be at least 20 bytes")
        }
        var interface = Interface(linkType: UInt32(body.u16(0, bigEndian: bigEndian)),
                                  snapLength: body.u32(4, bigEndian: bigEndian),
                                  resolution: .microseconds)
        // Options: code, length, value padded to 4 bytes; opt_endofopt (0) ends the list.
        var cursor = 8
        while cursor + 4 <= body.count {
            let code = body.u16(cursor, bigEndian: bigEndian)
            let valueLength = Int(body.u16(cursor + 2, bigEndian: bigEndian))
            let value = cursor + 4
            if code == 0 || value + valueLength > body.count { break }
            if code == 9 && valueLength >= 1 {  // if_tsresol
                interface.resolution = TimestampResolution(option: body[value])
            }
            cursor = value + (valueLength + 3) / 4 * 4
        }
        interfaces.append(interface)
    }

    /// An Enhanced Packet Block, or the obsolete Packet Block (`obsolete`): the same layout but
    /// for the interface id, 32 bits in the first and 16 (then 16 of drop count) in the second.
    private func packetBlock(_ body: ByteView, offset: Int, length: UInt32, obsolete: Bool) throws(CaptureError) -> PendingFrame {
        let name = obsolete ? "packet block" : "enhanced packet block"
        guard body.count >= 20 else {
            throw .badBlockLength(offset: offset, length: length, reason: "\(name) must be at least 32 bytes")
        }
        let interfaceID = obsolete ? Int(body.u16(0, bigEndian: bigEndian)) : Int(body.u32(0, bigEndian: bigEndian))
        let ticks = UInt64(body.u32(4, bigEndian: bigEndian)) << 32 | UInt64(body.u32(8, bigEndian: bigEndian))
        let captured = body.u32(12, bigEndian: bigEndian)
        guard Int(captured) <= body.count - 20 else {
            throw .badBlockLength(offset: offset, length: length, reason: "captured length \(captured) runs past the \(name)")
        }
        return frame(body.view(20, Int(captured)), interfaceID: interfaceID, ticks: ticks, length: length)
    }

    /// A Simple Packet Block: interface 0, no timestamp; the captured length is the original
    /// length cut to the block and to the interface's snap length.
    private func simplePacket(_ body: ByteView, offset: Int, length: UInt32) throws(CaptureError) -> PendingFrame {
        guard body.count >= 4 else {
            throw .badBlockLength(offset: offset, length: length,
                                  reason: "simple packet block must be at least 16 bytes")
        }
        var captured = min(Int(body.u32(0, bigEndian: bigEndian)), body.count - 4)
        if let snap = interfaces.first?.snapLength, snap > 0 { captured = min(captured, Int(snap)) }
        return PendingFrame(data: body.view(4, captured), linkType: interfaces.first?.linkType,
                            timestamp: CaptureTimestamp(seconds: 0, nanoseconds: 0), length: Int(length))
    }

    private func frame(_ data: ByteView, interfaceID: Int, ticks: UInt64, length: UInt32) -> PendingFrame {
        guard interfaceID < interfaces.count else {
            return PendingFrame(data: data, linkType: nil,
                                timestamp: CaptureTimestamp(seconds: 0, nanoseconds: 0), length: Int(length))
        }
        let interface = interfaces[interfaceID]
        return PendingFrame(data: data, linkType: interface.linkType,
                            timestamp: interface.resolution.timestamp(ticks), length: Int(length))
    }
}
