/// Where the parts of an RTP header sit in a datagram, read without copying.
///
/// The SRTP hot path needs only lengths and a few fixed fields, so this reads them straight
/// from the bytes; `RTPPacket` is the full value type.
///
/// ```
///  byte 0: V(2) P(1) X(1) CC(4)   byte 1: M(1) PT(7)   bytes 2-3: SEQ
///  bytes 4-7: timestamp           bytes 8-11: SSRC     then CC × 4-byte CSRC
///  if X: 2-byte profile, 2-byte length in 32-bit words, then the extension body
/// ```
/// (RFC 3550 §5.1, §5.3.1.)
public struct RTPHeaderLayout: Sendable, Equatable {
    /// Bytes of the fixed header plus CSRCs: `12 + 4·CC`.
    public var baseLength: Int
    /// Bytes of the whole header including the extension block, if any.
    public var headerLength: Int
    public var csrcCount: Int
    public var hasExtension: Bool
    public var hasPadding: Bool
    public var marker: Bool
    public var payloadType: UInt8
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32

    /// Reads the header layout from the first `count` bytes at `base`.
    /// Throws if the header is not version 2 or does not fit.
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer) throws(RTPParseError) {
        let count = bytes.count
        guard count >= 12 else { throw .truncated(field: .fixedHeader, needed: 12, available: count) }
        let b0 = bytes[0]
        guard b0 >> 6 == 2 else { throw .unsupportedVersion(b0 >> 6) }
        let b1 = bytes[1]
        csrcCount = Int(b0 & 0x0F)
        hasPadding = b0 & 0x20 != 0
        hasExtension = b0 & 0x10 != 0
        marker = b1 & 0x80 != 0
        payloadType = b1 & 0x7F
        sequenceNumber = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        timestamp = bytes.loadBigEndianUInt32(at: 4)
        ssrc = bytes.loadBigEndianUInt32(at: 8)
        baseLength = 12 + 4 * csrcCount
        guard count >= baseLength else {
            throw .truncated(field: .csrcList, needed: baseLength - 12, available: count - 12)
        }
        headerLength = baseLength
        if hasExtension {
            guard count >= baseLength + 4 else {
                throw .truncated(field: .extensionHeader, needed: 4, available: count - baseLength)
            }
            let words = Int(bytes[baseLength + 2]) << 8 | Int(bytes[baseLength + 3])
            headerLength = baseLength + 4 + 4 * words
            guard count >= headerLength else {
                throw .truncated(field: .extensionBody, needed: 4 * words, available: count - baseLength - 4)
            }
        }
    }

    /// Reads the header layout of `bytes`.
    @inlinable
    public init(_ bytes: [UInt8]) throws(RTPParseError) {
        // withUnsafeBytes cannot forward a typed error, so carry it out by hand.
        var result: Result<RTPHeaderLayout, RTPParseError> = .failure(.truncated(field: .fixedHeader, needed: 12, available: 0))
        bytes.withUnsafeBytes { raw in
            do throws(RTPParseError) { result = .success(try RTPHeaderLayout(raw)) } catch { result = .failure(error) }
        }
        self = try result.get()
    }
}

extension UnsafeRawBufferPointer {
    /// Big-endian 32-bit read at `offset`; the caller has checked the bounds.
    @inlinable
    public func loadBigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8 | UInt32(self[offset + 3])
    }
    /// Big-endian 16-bit read at `offset`; the caller has checked the bounds.
    @inlinable
    public func loadBigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
    }
}
