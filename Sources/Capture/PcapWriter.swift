#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes UDP datagrams as a classic pcap file: little-endian, microsecond timestamps, one
/// record per datagram, with synthesised IPv4 or IPv6 and UDP headers.
///
/// IPv4 headers carry TTL 64, identification 0, no flags and a correct header checksum; the
/// UDP checksum is 0 (absent). IPv6 headers carry hop limit 64, and the UDP checksum (mandatory
/// there) is computed. With `.ethernet` each frame gets an Ethernet II header from
/// `02:00:00:00:00:01` to `02:00:00:00:00:02`. Timestamps are cut to microseconds;
/// `frameNumber` is ignored.
public final class PcapWriter {
    /// The link type written in the global header.
    public enum LinkType: UInt32, Sendable, CaseIterable {
        /// LINKTYPE_ETHERNET: Ethernet II frames with synthesised MAC addresses.
        case ethernet = 1
        /// LINKTYPE_RAW: the IP packet alone.
        case raw = 101
    }

    /// The snap length written in the global header.
    public static let snapLength: UInt32 = 262_144
    /// The source MAC address of synthesised Ethernet frames.
    public static let sourceMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
    /// The destination MAC address of synthesised Ethernet frames.
    public static let destinationMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x02]

    /// The file being written.
    public let path: String
    /// The link type of every record.
    public let linkType: LinkType
    /// Records written so far.
    public private(set) var recordsWritten = 0
    private var file: UnsafeMutablePointer<FILE>?

    /// Creates (or truncates) the file at `path` and writes the pcap global header.
    public init(path: String, linkType: LinkType = .raw) throws(CaptureError) {
        self.path = path
        self.linkType = linkType
        guard let handle = fopen(path, "wb") else {
            let code = errno
            throw .io(operation: "fopen", path: path, errno: code, message: ByteSource.errorText(code))
        }
        file = handle
        try put(Self.fileHeader(linkType: linkType))
    }

    deinit {
        if let handle = file { fclose(handle) }
    }

    /// Appends one record holding `datagram`. Throws `.invalidDatagram` if it cannot be
    /// encoded (nothing is written then), `.io` if writing fails or the writer is closed.
    public func write(_ datagram: CapturedDatagram) throws(CaptureError) {
        try put(Self.record(datagram, linkType: linkType))
        recordsWritten += 1
    }

    /// Flushes and closes the file. Further `write` calls throw; closing again does nothing.
    public func close() throws(CaptureError) {
        guard let handle = file else { return }
        file = nil
        if fclose(handle) != 0 {
            let code = errno
            throw .io(operation: "fclose", path: path, errno: code, message: ByteSource.errorText(code))
        }
    }

    private func put(_ bytes: [UInt8]) throws(CaptureError) {
        guard let handle = file else {
            throw .io(operation: "fwrite", path: path, errno: EBADF, message: "writer is closed")
        }
        let written = bytes.withUnsafeBufferPointer { pointer -> Int in
            guard let base = pointer.baseAddress else { return 0 }
            return fwrite(base, 1, pointer.count, handle)
        }
        guard written == bytes.count else {
            let code = errno
            throw .io(operation: "fwrite", path: path, errno: code, message: ByteSource.errorText(code))
        }
    }

    /// A whole pcap file (global header and one record per datagram) in memory.
    public static func encode(_ datagrams: [CapturedDatagram], linkType: LinkType = .raw) throws(CaptureError) -> [UInt8] {
        var bytes = fileHeader(linkType: linkType)
        for datagram in datagrams { bytes += try record(datagram, linkType: linkType) }
        return bytes
    }

    /// The 24-byte pcap global header.
    public static func fileHeader(linkType: LinkType) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLittleEndian(UInt32(0xA1B2_C3D4))
        bytes.appendLittleEndian(UInt16(2))
        bytes.appendLittleEndian(UInt16(4))
        bytes.appendLittleEndian(UInt32(0))  // thiszone
        bytes.appendLittleEndian(UInt32(0))  // sigfigs
        bytes.appendLittleEndian(snapLength)
        bytes.appendLittleEndian(linkType.rawValue)
        return bytes
    }

    /// One record: the 16-byte record header and the frame.
    public static func record(_ datagram: CapturedDatagram, linkType: LinkType) throws(CaptureError) -> [UInt8] {
        let timestamp = datagram.timestamp
        guard timestamp.seconds >= 0, timestamp.seconds <= Int64(UInt32.max) else {
            throw .invalidDatagram(reason: "timestamp seconds \(timestamp.seconds) do not fit 32 bits")
        }
        guard timestamp.nanoseconds < 1_000_000_000 else {
            throw .invalidDatagram(reason: "timestamp nanoseconds \(timestamp.nanoseconds) are a second or more")
        }
        let frame = try self.frame(datagram, linkType: linkType)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 + frame.count)
        bytes.appendLittleEndian(UInt32(timestamp.seconds))
        bytes.appendLittleEndian(timestamp.nanoseconds / 1000)
        bytes.appendLittleEndian(UInt32(frame.count))
        bytes.appendLittleEndian(UInt32(frame.count))
        return bytes + frame
    }

    /// The frame for `datagram`: optional Ethernet header, IP header, UDP header, payload.
    public static func frame(_ datagram: CapturedDatagram, linkType: LinkType) throws(CaptureError) -> [UInt8] {
        guard let source = AddressText.parse(datagram.sourceAddress) else {
            throw .invalidDatagram(reason: "source address \"\(datagram.sourceAddress)\" is not IPv4 or IPv6")
        }
        guard let destination = AddressText.parse(datagram.destinationAddress) else {
            throw .invalidDatagram(reason: "destination address \"\(datagram.destinationAddress)\" is not IPv4 or IPv6")
        }
        guard source.count == destination.count else {
            throw .invalidDatagram(reason: "source \(datagram.sourceAddress) and destination "
                                   + "\(datagram.destinationAddress) are of different families")
        }
        let isIPv6 = source.count == 16
        let udpLength = 8 + datagram.payload.count
        let limit = isIPv6 ? 65_535 : 65_535 - 20
        guard udpLength <= limit else {
            throw .invalidDatagram(reason: "payload of \(datagram.payload.count) bytes is too large for one "
                                   + (isIPv6 ? "IPv6" : "IPv4") + " packet")
        }
        var udp: [UInt8] = []
        udp.reserveCapacity(udpLength)
        udp.appendBigEndian(datagram.sourcePort)
        udp.appendBigEndian(datagram.destinationPort)
        udp.appendBigEndian(UInt16(udpLength))
        udp.appendBigEndian(UInt16(0))
        udp += datagram.payload

        var frame: [UInt8] = []
        frame.reserveCapacity(14 + 40 + udpLength)
        if linkType == .ethernet {
            frame += destinationMAC
            frame += sourceMAC
            frame.appendBigEndian(isIPv6 ? LinkLayer.etherTypeIPv6 : LinkLayer.etherTypeIPv4)
        }
        if isIPv6 {
            // RFC 8200 §8.1: the checksum covers a pseudo-header of both addresses, the upper-layer
            // length and next header; a computed 0 is sent as 0xFFFF.
            var pseudo = source + destination
            pseudo.appendBigEndian(UInt32(udpLength))
            pseudo += [0, 0, 0, NetworkDecoder.protocolUDP]
            var sum = onesComplementSum(pseudo, initial: 0)
            sum = onesComplementSum(udp, initial: sum)
            var checksum = ~UInt16(truncatingIfNeeded: sum)
            if checksum == 0 { checksum = 0xFFFF }
            udp[6] = UInt8(checksum >> 8)
            udp[7] = UInt8(checksum & 0xFF)

            frame.appendBigEndian(UInt32(0x6000_0000))  // version 6, traffic class 0, flow label 0
            frame.appendBigEndian(UInt16(udpLength))
            frame += [NetworkDecoder.protocolUDP, 64]
            frame += source
            frame += destination
        } else {
            var header: [UInt8] = [0x45, 0]
            header.appendBigEndian(UInt16(20 + udpLength))
            header += [0, 0, 0, 0, 64, NetworkDecoder.protocolUDP, 0, 0]  // id, flags/offset, TTL, proto, checksum
            header += source
            header += destination
            let checksum = ~UInt16(truncatingIfNeeded: onesComplementSum(header, initial: 0))
            header[10] = UInt8(checksum >> 8)
            header[11] = UInt8(checksum & 0xFF)
            frame += header
        }
        return frame + udp
    }

    /// The 16-bit ones' complement sum of `bytes` (odd length padded with a zero), folded.
    static func onesComplementSum(_ bytes: [UInt8], initial: UInt32) -> UInt32 {
        var sum = initial
        var index = 0
        while index + 1 < bytes.count {
            sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            sum = (sum & 0xFFFF) + (sum >> 16)
            index += 2
        }
        if index < bytes.count {
            sum += UInt32(bytes[index]) << 8
            sum = (sum & 0xFFFF) + (sum >> 16)
        }
        return sum
    }
}

extension [UInt8] {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
