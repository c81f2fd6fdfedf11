/// Splits VP8 frames into RTP payloads (RFC 7741 §4).
///
/// Each payload starts with a 4-byte descriptor: X = 1, S = 1 on the first packet of a frame
/// and 0 on the others, PID = 0, N from the caller, and I = 1 with a 15-bit PictureID that
/// increases by one per frame (mod 2¹⁵). The frame is cut into the fewest payloads of at most
/// `maxPayloadSize` bytes, of nearly equal size. All packets of a frame carry the frame's RTP
/// timestamp (90 kHz); the caller sets it, and the marker bit on the packet marked `marker`.
public struct VP8Packetizer: Sendable {
    /// One RTP payload of a frame.
    public struct Packet: Sendable, Equatable {
        public var payload: [UInt8]
        /// Set on the last packet of the frame (RFC 7741 §4.1).
        public var marker: Bool
    }

    /// RTP clock rate for VP8 (RFC 7741 §4.1).
    public static let clockRate = 90_000
    /// Descriptor bytes this packetizer puts in front of every payload.
    public static let descriptorSize = 4

    public let maxPayloadSize: Int
    /// PictureID of the next frame (15 bits).
    public private(set) var nextPictureID: UInt16

    /// Throws `.invalidArgument` unless `maxPayloadSize` leaves room for at least one data byte
    /// after the descriptor and `firstPictureID` fits 15 bits.
    public init(maxPayloadSize: Int = 1200, firstPictureID: UInt16 = 0) throws(MediaError) {
        guard maxPayloadSize > Self.descriptorSize else {
            throw .invalidArgument(name: "maxPayloadSize", reason: "\(maxPayloadSize) leaves no room after the \(Self.descriptorSize)-byte descriptor")
        }
        guard firstPictureID <= 0x7FFF else {
            throw .invalidArgument(name: "firstPictureID", reason: "\(firstPictureID) does not fit 15 bits")
        }
        self.maxPayloadSize = maxPayloadSize
        nextPictureID = firstPictureID
    }

    /// Packetizes one frame; `nonReference` sets N on every packet.
    /// Throws `.invalidArgument` for an empty frame.
    public mutating func packetize(_ frame: [UInt8], nonReference: Bool = false) throws(MediaError) -> [Packet] {
        guard !frame.isEmpty else { throw .invalidArgument(name: "frame", reason: "empty VP8 frame") }
        let room = maxPayloadSize - Self.descriptorSize
        let count = (frame.count + room - 1) / room
        let base = frame.count / count, extra = frame.count % count   // first `extra` chunks get one more byte
        let pictureID = VP8PayloadDescriptor.PictureID.long(nextPictureID)
        nextPictureID = (nextPictureID &+ 1) & 0x7FFF
        var packets: [Packet] = []
        packets.reserveCapacity(count)
        var offset = 0
        for index in 0 ..< count {
            let size = base + (index < extra ? 1 : 0)
            // PID 0 and a 15-bit PictureID are always in range, so this cannot throw.
            guard let descriptor = try? VP8PayloadDescriptor(nonReference: nonReference, startOfPartition: index == 0,
                                                             partitionIndex: 0, pictureID: pictureID)
            else { preconditionFailure("VP8 descriptor with in-range fields rejected") }
            var payload: [UInt8] = []
            payload.reserveCapacity(Self.descriptorSize + size)
            descriptor.write(to: &payload)
            payload.append(contentsOf: frame[offset ..< offset + size])
            offset += size
            packets.append(Packet(payload: payload, marker: index == count - 1))
        }
        return packets
    }

    /// Packetizes an encoder frame, taking N from `isDroppable`.
    public mutating func packetize(_ frame: VP8EncodedFrame) throws(MediaError) -> [Packet] {
        try packetize(frame.data, nonReference: frame.isDroppable)
    }
}
