/// A source description packet, SDES (RFC 3550 §6.5).
///
/// ```
///  header      V P SC | PT=202 | length
///  SC chunks, each starting on a 32-bit boundary:
///    bytes 0-3   SSRC or CSRC
///    items       type (1 byte, 1...255) | length (1 byte) | that many value bytes
///    end         a 0x00 type octet, then 0x00 octets up to the next 32-bit boundary
/// ```
public struct RTCPSourceDescription: Sendable, Equatable {
    public var chunks: [Chunk]
    /// Raw padding, the last byte being its count; empty when P is clear.
    public var padding: [UInt8]

    public init(chunks: [Chunk], padding: [UInt8] = []) {
        self.chunks = chunks
        self.padding = padding
    }

    /// The items describing one source.
    public struct Chunk: Sendable, Equatable {
        public var ssrc: UInt32
        public var items: [Item]
        /// Null octets ending the chunk, the END type octet included (1...4 when aligned).
        public var terminatorLength: Int

        /// A chunk ended by the null octets that reach the next 32-bit boundary.
        public init(ssrc: UInt32, items: [Item]) {
            self.ssrc = ssrc
            self.items = items
            let itemBytes = items.reduce(0) { $0 + 2 + $1.value.count }
            self.terminatorLength = 4 - itemBytes % 4
        }

        /// A chunk with an explicit terminator, as parsed.
        public init(ssrc: UInt32, items: [Item], terminatorLength: Int) {
            self.ssrc = ssrc
            self.items = items
            self.terminatorLength = terminatorLength
        }

        var size: Int { 4 + items.reduce(0) { $0 + 2 + $1.value.count } + terminatorLength }

        func write(to out: inout [UInt8]) {
            precondition(terminatorLength >= 1, "an SDES chunk needs its END octet")
            out.appendBigEndian(ssrc)
            for item in items {
                precondition(item.type != 0 && item.value.count <= 255, "SDES item type 0 or value over 255 bytes")
                out.append(item.type)
                out.append(UInt8(item.value.count))
                out.append(contentsOf: item.value)
            }
            out.appendZeros(terminatorLength)
        }
    }

    /// One SDES item; the value is kept as raw bytes (UTF-8 text for the standard types).
    public struct Item: Sendable, Equatable {
        public static let cname: UInt8 = 1
        public static let name: UInt8 = 2
        public static let email: UInt8 = 3
        public static let phone: UInt8 = 4
        public static let location: UInt8 = 5
        public static let tool: UInt8 = 6
        public static let note: UInt8 = 7
        /// Private extension: the value holds prefix length, prefix and value (RFC 3550 §6.5.8).
        public static let privateExtension: UInt8 = 8

        /// Item type, 1...255 (0 is the END marker).
        public var type: UInt8
        /// At most 255 bytes.
        public var value: [UInt8]

        public init(type: UInt8, value: [UInt8]) {
            self.type = type
            self.value = value
        }

        /// An item with UTF-8 text, e.g. `Item(type: Item.cname, text: "user@host")`.
        public init(type: UInt8, text: String) {
            self.init(type: type, value: Array(text.utf8))
        }

        /// The value decoded as UTF-8 (invalid sequences replaced).
        public var text: String { String(decoding: value, as: UTF8.self) }
    }

    init(body: inout ByteReader, _ context: RTCPBodyContext) throws(RTPParseError) {
        var chunks: [Chunk] = []
        for _ in 0 ..< context.count {
            guard let ssrc = body.readUInt32() else { throw .invalidLength(field: .sdesChunk, value: context.lengthField) }
            var items: [Item] = []
            var terminator = 0
            while terminator == 0 {
                guard let type = body.readUInt8() else { throw .invalidLength(field: .sdesChunk, value: context.lengthField) }
                if type == 0 {
                    terminator = 1
                    // Further null octets up to the next 32-bit boundary (or the padding) belong to the chunk.
                    while (body.offset - context.packetStart) % 4 != 0, let octet = body.readUInt8() {
                        guard octet == 0 else {
                            throw .invalidValue(field: .sdesChunk, reason: "non-zero octet \(octet) after the END item")
                        }
                        terminator += 1
                    }
                } else {
                    guard let length = body.readUInt8(), let value = body.readBytes(Int(length)) else {
                        throw .invalidLength(field: .sdesItem, value: context.lengthField)
                    }
                    items.append(Item(type: type, value: value))
                }
            }
            chunks.append(Chunk(ssrc: ssrc, items: items, terminatorLength: terminator))
        }
        guard body.isAtEnd else { throw .invalidLength(field: .sdesChunk, value: context.lengthField) }
        self.chunks = chunks
        self.padding = context.padding
    }

    var bodySize: Int { chunks.reduce(0) { $0 + $1.size } }

    /// Bytes `write(to:)` appends, header and padding included.
    public var serializedSize: Int { 4 + bodySize + padding.count }

    /// Appends the packet. Requires at most 31 chunks, item values of at most 255 bytes and a
    /// whole number of 32-bit words in total (the default chunk terminator ensures that).
    public func write(to out: inout [UInt8]) {
        writeRTCPHeader(count: chunks.count, packetType: RTCPPacketType.sourceDescription, bodySize: bodySize, padding: padding, to: &out)
        for chunk in chunks { chunk.write(to: &out) }
        out.append(contentsOf: padding)
    }
}
