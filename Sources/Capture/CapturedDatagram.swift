/// A capture timestamp: whole seconds since the Unix epoch plus nanoseconds (0 ..< 1e9).
///
/// Timestamps finer than a nanosecond (pcapng `if_tsresol` above 10^-9 or 2^-30) are truncated
/// towards zero.
public struct CaptureTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var seconds: Int64
    /// Nanoseconds within the second, 0 ..< 1_000_000_000.
    public var nanoseconds: UInt32

    /// A timestamp from its parts; `nanoseconds` should be below one second.
    public init(seconds: Int64, nanoseconds: UInt32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// The timestamp as floating-point seconds (loses precision beyond about a microsecond).
    public var timeInterval: Double { Double(seconds) + Double(nanoseconds) / 1e9 }

    public static func < (lhs: CaptureTimestamp, rhs: CaptureTimestamp) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    /// `seconds.nnnnnnnnn`.
    public var description: String {
        let ns = String(nanoseconds)
        return "\(seconds)." + String(repeating: "0", count: max(0, 9 - ns.count)) + ns
    }
}

/// One UDP datagram found in a capture, with its addresses in canonical text form
/// (`"192.0.2.1"`, `"2001:db8::1"` as RFC 5952 prints it).
public struct CapturedDatagram: Sendable, Equatable {
    /// When the frame was captured. Zero for pcapng Simple Packet Blocks, which carry none.
    public var timestamp: CaptureTimestamp
    /// The IP source address, dotted quad or RFC 5952 IPv6 text.
    public var sourceAddress: String
    /// The UDP source port.
    public var sourcePort: UInt16
    /// The IP destination address, dotted quad or RFC 5952 IPv6 text.
    public var destinationAddress: String
    /// The UDP destination port.
    public var destinationPort: UInt16
    /// The bytes after the 8-byte UDP header, as many as the UDP length field says.
    public var payload: [UInt8]
    /// The 1-based number of the frame in the file, counting every record or packet block
    /// (also those skipped), as Wireshark numbers frames. `PcapWriter` ignores it.
    public var frameNumber: Int

    /// A datagram from its fields.
    public init(timestamp: CaptureTimestamp, sourceAddress: String, sourcePort: UInt16,
                destinationAddress: String, destinationPort: UInt16, payload: [UInt8],
                frameNumber: Int = 0) {
        self.timestamp = timestamp
        self.sourceAddress = sourceAddress
        self.sourcePort = sourcePort
        self.destinationAddress = destinationAddress
        self.destinationPort = destinationPort
        self.payload = payload
        self.frameNumber = frameNumber
    }
}

/// Why a frame did not yield a UDP datagram. The raw values are stable identifiers.
public enum SkipReason: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The link layer carries something other than IPv4 or IPv6 (ARP, LLC, an unknown
    /// address family on a loopback link).
    case nonIP
    /// An IP packet whose (final) protocol is not UDP, e.g. TCP or ICMP.
    case nonUDP
    /// An IPv4 fragment (MF set or offset non-zero) or an IPv6 packet with a Fragment header;
    /// fragments are not reassembled.
    case fragment
    /// The captured bytes end before the headers or the IP packet do (snaplen cut, short frame).
    case truncated
    /// A malformed IP header: wrong version, IPv4 IHL below 5, total length below the header
    /// length, or an IPv6 extension header running past the payload length.
    case badIPHeader
    /// An IPv6 jumbogram (payload length 0); not supported.
    case jumbogram
    /// The frame's link type is not one this reader decodes.
    case unsupportedLinkType
    /// The UDP length field is below 8 or larger than the IP payload.
    case udpLengthInconsistent
    /// A pcapng packet block names an interface that its section has not described.
    case unknownInterface

    public var description: String { rawValue }
}
