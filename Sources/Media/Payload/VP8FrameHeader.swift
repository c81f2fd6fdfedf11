/// The first bytes of a VP8 frame: the 3-byte frame tag and, for key frames, the start code and
/// dimensions (RFC 6386 §9.1; RFC 7741 §4.3 calls it the VP8 payload header).
///
/// ```
///  byte 0    Size0 (0xE0) | H show_frame (0x10) | VER (0x0E) | P (0x01): 0 = key frame
///  byte 1-2  Size1, Size2: first partition size = Size0 + 8·Size1 + 2048·Size2
///  key frames only:
///  byte 3-5  start code 9D 01 2A
///  byte 6-7  little-endian: width (low 14 bits) | horizontal scale (top 2 bits)
///  byte 8-9  little-endian: height (low 14 bits) | vertical scale (top 2 bits)
/// ```
public struct VP8FrameHeader: Sendable, Equatable {
    public static let startCode: [UInt8] = [0x9D, 0x01, 0x2A]

    /// P = 0.
    public let isKeyFrame: Bool
    /// VER, 0...7.
    public let version: UInt8
    /// H: the decoder shows this frame.
    public let showFrame: Bool
    /// Size in bytes of the first partition, which follows the header.
    public let firstPartitionSize: Int
    /// Key frames only: coded width and height (14 bits each) and their 2-bit scale codes.
    public let width: Int?
    public let height: Int?
    public let horizontalScale: UInt8?
    public let verticalScale: UInt8?

    /// Reads the header from the start of a VP8 frame. Throws `.truncated` if fewer than 3 bytes
    /// (10 for a key frame) are present, `.invalidValue` for a wrong key-frame start code.
    public init(parsing frame: ArraySlice<UInt8>) throws(PayloadFormatError) {
        let s = frame.startIndex
        guard frame.count >= 3 else { throw .truncated(field: .vp8FrameTag, needed: 3, available: frame.count) }
        let b0 = frame[s], b1 = frame[s + 1], b2 = frame[s + 2]
        isKeyFrame = b0 & 0x01 == 0
        version = (b0 >> 1) & 0x07
        showFrame = b0 & 0x10 != 0
        firstPartitionSize = Int(b0 >> 5) | Int(b1) << 3 | Int(b2) << 11
        guard isKeyFrame else {
            width = nil; height = nil; horizontalScale = nil; verticalScale = nil
            return
        }
        guard frame.count >= 10 else { throw .truncated(field: .vp8KeyFrameHeader, needed: 10, available: frame.count) }
        guard frame[s + 3] == 0x9D, frame[s + 4] == 0x01, frame[s + 5] == 0x2A else {
            throw .invalidValue(field: .vp8KeyFrameHeader, reason: "start code is not 9D 01 2A")
        }
        let w = UInt16(frame[s + 6]) | UInt16(frame[s + 7]) << 8
        let h = UInt16(frame[s + 8]) | UInt16(frame[s + 9]) << 8
        width = Int(w & 0x3FFF)
        height = Int(h & 0x3FFF)
        horizontalScale = UInt8(w >> 14)
        verticalScale = UInt8(h >> 14)
    }

    /// `init(parsing:)` over a whole array.
    public init(parsing frame: [UInt8]) throws(PayloadFormatError) {
        try self.init(parsing: frame[...])
    }
}
