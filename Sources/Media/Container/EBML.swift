// EBML (RFC 8794), the binary format under Matroska and WebM: writing elements and walking them.
//
//  element  = ID | data size | data
//  ID       = VINT with its marker kept: 1–4 bytes, written exactly as the spec lists it (1A 45 DF A3)
//  size     = VINT with its marker stripped: 1–8 bytes; all value bits set means "unknown size"
//  VINT     = n−1 zero bits, a 1 bit (the marker), then 7·n value bits, big-endian (§4)
//
//  width  marker byte   largest size (all ones is reserved)
//    1    1xxx xxxx     2^7 − 2  = 126
//    2    01xx xxxx     2^14 − 2 = 16382
//    n    …             2^(7n) − 2          so a size of 2^(7n) − 1 needs n + 1 bytes
//    8    0000 0001     2^56 − 2

/// Why `EBMLReader` (or a value read through it) rejected its input. Offsets are into the reader's buffer.
public enum EBMLParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes are left than the field needs.
    case truncated(offset: Int, needed: Int, available: Int)
    /// A VINT whose first byte is 0 (longer than 8 bytes; RFC 8794 §4.1).
    case invalidVINT(offset: Int)
    /// An element ID longer than 4 bytes, or with all value bits 0 or 1 (RFC 8794 §5).
    case invalidID(offset: Int)
    /// An element's data does not fit its type (an integer over 8 bytes, a 5-byte float, bad UTF-8…).
    case invalidValue(id: UInt32, offset: Int, reason: String)

    public var description: String {
        switch self {
        case let .truncated(offset, needed, available):
            return "EBML truncated at \(offset): needs \(needed) bytes, \(available) left"
        case let .invalidVINT(offset): return "invalid EBML VINT at \(offset)"
        case let .invalidID(offset): return "invalid EBML element ID at \(offset)"
        case let .invalidValue(id, offset, reason):
            return "EBML element 0x\(String(id, radix: 16, uppercase: true)) at \(offset): \(reason)"
        }
    }
}

/// EBML variable-length integers (RFC 8794 §4) as used for data sizes.
public enum EBMLVarInt {
    /// The largest size a `width`-byte VINT (1...8) can carry: 2^(7·width) − 2.
    public static func maxSize(width: Int) -> UInt64 { (1 << (7 * UInt64(width))) - 2 }

    /// The shortest width for `size`: 127 needs 2 bytes, since `FF` means unknown.
    public static func width(of size: UInt64) -> Int {
        var width = 1
        while width < 8, size > maxSize(width: width) { width += 1 }
        return width
    }

    /// `size` as a VINT, in its shortest form or in `width` bytes (a longer form leaves room to patch).
    /// The caller guarantees that `size` fits (`size ≤ maxSize(width:)`), which every writer here checks.
    public static func encode(_ size: UInt64, width: Int? = nil) -> [UInt8] {
        let n = width ?? Self.width(of: size)
        precondition((1 ... 8).contains(n) && size <= maxSize(width: n), "EBML size \(size) does not fit \(n) bytes")
        let marked = size | (1 << (7 * UInt64(n)))
        return (0 ..< n).map { UInt8(truncatingIfNeeded: marked >> (8 * UInt64(n - 1 - $0))) }
    }

    /// The reserved "unknown size" of `width` bytes: `FF`, …, `01 FF FF FF FF FF FF FF` (RFC 8794 §6.2).
    public static func unknownSize(width: Int = 8) -> [UInt8] {
        encode(0, width: width).enumerated().map { $0.offset == 0 ? $0.element | (0xFF >> width) : 0xFF }
    }

    /// Reads the VINT at `offset` of `bytes` (absolute index; the slice's end bounds it): its value
    /// without the marker, its width, and whether every value bit is set (an unknown size).
    public static func read(_ bytes: ArraySlice<UInt8>, at offset: Int) throws(EBMLParseError)
        -> (value: UInt64, width: Int, allOnes: Bool) {
        let end = bytes.endIndex
        guard offset >= bytes.startIndex, offset < end else {
            throw .truncated(offset: offset, needed: 1, available: max(0, end - offset))
        }
        let first = bytes[offset]
        guard first != 0 else { throw .invalidVINT(offset: offset) }
        let width = first.leadingZeroBitCount + 1
        guard end - offset >= width else { throw .truncated(offset: offset, needed: width, available: end - offset) }
        var value = UInt64(first & (0xFF >> width))
        for i in 1 ..< width { value = value << 8 | UInt64(bytes[offset + i]) }
        return (value, width, value == (1 << (7 * UInt64(width))) - 1)
    }
}

/// One EBML element to write (RFC 8794 §6): an ID, a data size and the data, or children for a master.
public struct EBMLElement: Sendable, Equatable {
    public enum Content: Sendable, Equatable {
        case bytes([UInt8])
        case children([EBMLElement])
    }

    /// The ID with its marker bits, e.g. `0x1A45DFA3`.
    public var id: UInt32
    public var content: Content
    /// Writes the data size in this many bytes instead of the fewest (room to patch it later).
    public var sizeWidth: Int?

    public init(id: UInt32, bytes: [UInt8], sizeWidth: Int? = nil) {
        self.id = id; content = .bytes(bytes); self.sizeWidth = sizeWidth
    }
    public init(id: UInt32, children: [EBMLElement], sizeWidth: Int? = nil) {
        self.id = id; content = .children(children); self.sizeWidth = sizeWidth
    }

    /// A master element.
    public static func master(_ id: UInt32, _ children: [EBMLElement]) -> EBMLElement { .init(id: id, children: children) }
    /// Binary data, written as is.
    public static func binary(_ id: UInt32, _ bytes: [UInt8]) -> EBMLElement { .init(id: id, bytes: bytes) }
    /// A string or UTF-8 element: the UTF-8 bytes, no terminator.
    public static func string(_ id: UInt32, _ text: String) -> EBMLElement { .init(id: id, bytes: Array(text.utf8)) }
    /// An 8-byte IEEE 754 float, big-endian.
    public static func float(_ id: UInt32, _ value: Double) -> EBMLElement { .uint(id, value.bitPattern, width: 8) }

    /// An unsigned integer, big-endian, in the fewest bytes (at least one) or exactly `width` (1...8).
    public static func uint(_ id: UInt32, _ value: UInt64, width: Int? = nil) -> EBMLElement {
        let n = width ?? max(1, 8 - value.leadingZeroBitCount / 8)
        precondition((1 ... 8).contains(n) && (n == 8 || value >> (8 * UInt64(n)) == 0), "\(value) does not fit \(n) bytes")
        return .init(id: id, bytes: (0 ..< n).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64(n - 1 - $0))) })
    }

    /// A signed integer, two's complement big-endian, in the fewest bytes or exactly `width`
    /// (a date is `.int(id, nanoseconds, width: 8)`).
    public static func int(_ id: UInt32, _ value: Int64, width: Int? = nil) -> EBMLElement {
        var n = width ?? 8
        if width == nil {
            while n > 1, Int64(truncatingIfNeeded: UInt64(bitPattern: value) << (64 - 8 * UInt64(n - 1))) >> (64 - 8 * UInt64(n - 1)) == value { n -= 1 }
        }
        return .uint(id, UInt64(bitPattern: value) & (n == 8 ? .max : (1 << (8 * UInt64(n))) - 1), width: n)
    }

    /// A Void element (`EC`) of exactly `totalSize` bytes (2...128) including its ID and size, zero-filled.
    public static func void(totalSize: Int) -> EBMLElement {
        precondition((2 ... 128).contains(totalSize), "a Void element here takes 2...128 bytes")
        return .binary(0xEC, [UInt8](repeating: 0, count: totalSize - 2))
    }

    /// The encoded ID: 1–4 bytes, leading zero bytes dropped.
    public static func idBytes(_ id: UInt32) -> [UInt8] {
        let n = max(1, 4 - id.leadingZeroBitCount / 8)
        return (0 ..< n).map { UInt8(truncatingIfNeeded: id >> (8 * UInt32(n - 1 - $0))) }
    }

    /// Bytes of data, without the ID and size.
    public var dataSize: Int {
        switch content {
        case let .bytes(bytes): return bytes.count
        case let .children(children): return children.reduce(0) { $0 + $1.serializedSize }
        }
    }

    /// Bytes of the whole element.
    public var serializedSize: Int {
        let data = dataSize
        return Self.idBytes(id).count + (sizeWidth ?? EBMLVarInt.width(of: UInt64(data))) + data
    }

    /// Appends the element (ID, size, data) to `out`.
    public func write(to out: inout [UInt8]) {
        out += Self.idBytes(id)
        out += EBMLVarInt.encode(UInt64(dataSize), width: sizeWidth)
        switch content {
        case let .bytes(bytes): out += bytes
        case let .children(children): for child in children { child.write(to: &out) }
        }
    }

    public var serialized: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(serializedSize)
        write(to: &out)
        return out
    }
}

/// Where `EBMLReader` found one element.
public struct EBMLElementHeader: Sendable, Equatable {
    /// The ID with its marker bits.
    public var id: UInt32
    /// Offset of the ID's first byte in the reader's buffer.
    public var offset: Int
    /// The data's bytes in the buffer. An unknown size runs to the end of the enclosing range.
    public var data: Range<Int>
    public var hasUnknownSize: Bool

    /// Bytes of ID and size.
    public var headerSize: Int { data.lowerBound - offset }
    /// One past the element's last byte.
    public var end: Int { data.upperBound }
}

/// Walks the elements at one level of an EBML buffer, in order; `children(of:)` descends.
///
/// Every read is bounds-checked: malformed input throws `EBMLParseError` and never traps. A size
/// past the end of the enclosing range is `.truncated`.
public struct EBMLReader: Sendable {
    public let bytes: [UInt8]
    /// The part of `bytes` this level covers.
    public let range: Range<Int>
    /// Offset of the next element.
    public private(set) var position: Int

    /// Reads `bytes[range]` (all of it by default) as a sequence of elements.
    public init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        let r = range ?? 0 ..< bytes.count
        self.range = r.clamped(to: 0 ..< bytes.count)
        position = self.range.lowerBound
    }

    /// The next element's header, or `nil` at the end of the range.
    public mutating func next() throws(EBMLParseError) -> EBMLElementHeader? {
        guard position < range.upperBound else { return nil }
        let start = position, end = range.upperBound, level = bytes[range]
        // ID: a VINT of at most 4 bytes, kept with its marker.
        let id = try EBMLVarInt.read(level, at: start)
        guard id.width <= 4, id.value != 0, !id.allOnes else { throw .invalidID(offset: start) }
        let size = try EBMLVarInt.read(level, at: start + id.width)
        let dataStart = start + id.width + size.width
        let available = end - dataStart
        let dataEnd: Int
        if size.allOnes {
            dataEnd = end
        } else {
            guard size.value <= UInt64(available) else {
                throw .truncated(offset: dataStart, needed: Int(clamping: size.value), available: available)
            }
            dataEnd = dataStart + Int(size.value)
        }
        position = dataEnd
        var idValue: UInt32 = 0
        for i in 0 ..< id.width { idValue = idValue << 8 | UInt32(bytes[start + i]) }
        return EBMLElementHeader(id: idValue, offset: start, data: dataStart ..< dataEnd, hasUnknownSize: size.allOnes)
    }

    /// All the remaining elements at this level.
    public mutating func all() throws(EBMLParseError) -> [EBMLElementHeader] {
        var out: [EBMLElementHeader] = []
        while let element = try next() { out.append(element) }
        return out
    }

    /// The elements at this level with `id`, from the start of the range.
    public func elements(_ id: UInt32) throws(EBMLParseError) -> [EBMLElementHeader] {
        var reader = EBMLReader(bytes, range: range)
        return try reader.all().filter { $0.id == id }
    }

    /// The first element at this level with `id`, if any.
    public func first(_ id: UInt32) throws(EBMLParseError) -> EBMLElementHeader? {
        var reader = EBMLReader(bytes, range: range)
        while let element = try reader.next() {
            if element.id == id { return element }
        }
        return nil
    }

    /// A reader over a master element's data.
    public func children(of element: EBMLElementHeader) -> EBMLReader { EBMLReader(bytes, range: element.data) }

    public func data(of element: EBMLElementHeader) -> ArraySlice<UInt8> { bytes[element.data.clamped(to: range)] }

    /// An unsigned integer of 0–8 bytes (0 bytes reads as 0).
    public func uint(_ element: EBMLElementHeader) throws(EBMLParseError) -> UInt64 {
        let data = data(of: element)
        guard data.count <= 8 else { throw .invalidValue(id: element.id, offset: element.offset, reason: "\(data.count)-byte integer") }
        return data.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// A signed integer of 0–8 bytes, two's complement.
    public func int(_ element: EBMLElementHeader) throws(EBMLParseError) -> Int64 {
        let raw = try uint(element), bits = 8 * UInt64(data(of: element).count)
        guard bits > 0, bits < 64 else { return Int64(bitPattern: raw) }
        return Int64(bitPattern: raw << (64 - bits)) >> (64 - bits)
    }

    /// A float of 0, 4 or 8 bytes.
    public func float(_ element: EBMLElementHeader) throws(EBMLParseError) -> Double {
        let data = data(of: element)
        let raw = data.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        switch data.count {
        case 0: return 0
        case 4: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))
        case 8: return Double(bitPattern: raw)
        default: throw .invalidValue(id: element.id, offset: element.offset, reason: "\(data.count)-byte float")
        }
    }

    /// A string or UTF-8 element; trailing NUL padding is dropped (RFC 8794 §7.4).
    public func string(_ element: EBMLElementHeader) throws(EBMLParseError) -> String {
        var data = data(of: element)
        while data.last == 0 { data = data.dropLast() }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw .invalidValue(id: element.id, offset: element.offset, reason: "not UTF-8")
        }
        return text
    }
}
