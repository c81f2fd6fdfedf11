/// A UDP datagram found in a frame, before the reader adds timestamp and frame number.
struct DecodedUDP {
    var source: String
    var sourcePort: UInt16
    var destination: String
    var destinationPort: UInt16
    var payload: [UInt8]
}

/// What one frame turned out to be.
enum FrameOutcome {
    case datagram(DecodedUDP)
    case skip(SkipReason)
}

/// IPv4, IPv6 (with extension headers) and UDP decoding over a frame.
enum NetworkDecoder {
    static let protocolUDP: UInt8 = 17

    /// Decodes the frame of link type `linkType` down to its UDP payload.
    static func decode(frame: ByteView, linkType: UInt32) -> FrameOutcome {
        switch LinkLayer.locate(in: frame, linkType: linkType) {
        case let .skip(reason):
            return .skip(reason)
        case let .network(proto, offset):
            let packet = frame.view(offset, frame.count - offset)
            switch proto {
            case .ipv4: return ipv4(packet)
            case .ipv6: return ipv6(packet)
            case .byVersion:
                guard packet.count >= 1 else { return .skip(.truncated) }
                switch packet[0] >> 4 {
                case 4: return ipv4(packet)
                case 6: return ipv6(packet)
                default: return .skip(.badIPHeader)
                }
            }
        }
    }

    /// IPv4: header length from IHL, packet length from total length (Ethernet padding after
    /// it is ignored); fragments and other protocols are skipped.
    static func ipv4(_ packet: ByteView) -> FrameOutcome {
        guard packet.count >= 20 else { return .skip(.truncated) }
        guard packet[0] >> 4 == 4 else { return .skip(.badIPHeader) }
        let headerLength = Int(packet[0] & 0x0F) * 4
        guard headerLength >= 20 else { return .skip(.badIPHeader) }
        guard packet.count >= headerLength else { return .skip(.truncated) }
        let totalLength = Int(packet.u16be(2))
        guard totalLength >= headerLength else { return .skip(.badIPHeader) }
        let flagsAndOffset = packet.u16be(6)
        if flagsAndOffset & 0x2000 != 0 || flagsAndOffset & 0x1FFF != 0 { return .skip(.fragment) }
        guard packet[9] == protocolUDP else { return .skip(.nonUDP) }
        guard packet.count >= totalLength else { return .skip(.truncated) }
        let source = AddressText.ipv4(packet, at: 12)
        let destination = AddressText.ipv4(packet, at: 16)
        return udp(packet.view(headerLength, totalLength - headerLength),
                   source: source, destination: destination)
    }

    /// IPv6: walks hop-by-hop, routing, destination options and AH headers to UDP; a
    /// Fragment header means a fragment; payload length 0 means a jumbogram (skipped).
    static func ipv6(_ packet: ByteView) -> FrameOutcome {
        guard packet.count >= 40 else { return .skip(.truncated) }
        guard packet[0] >> 4 == 6 else { return .skip(.badIPHeader) }
        let payloadLength = Int(packet.u16be(4))
        guard payloadLength > 0 else { return .skip(.jumbogram) }
        let end = 40 + payloadLength
        var next = packet[6]
        var offset = 40
        while next != protocolUDP {
            let length: Int
            switch next {
            case 0, 43, 60:  // hop-by-hop, routing, destination options: (len + 1) * 8
                guard packet.count >= offset + 2 else { return .skip(.truncated) }
                length = (Int(packet[offset + 1]) + 1) * 8
            case 51:  // authentication header: (len + 2) * 4
                guard packet.count >= offset + 2 else { return .skip(.truncated) }
                length = (Int(packet[offset + 1]) + 2) * 4
            case 44:
                return .skip(.fragment)
            default:
                return .skip(.nonUDP)
            }
            guard offset + length <= end else { return .skip(.badIPHeader) }
            guard packet.count >= offset + length else { return .skip(.truncated) }
            next = packet[offset]
            offset += length
        }
        guard packet.count >= end else { return .skip(.truncated) }
        return udp(packet.view(offset, end - offset),
                   source: AddressText.ipv6(packet, at: 8),
                   destination: AddressText.ipv6(packet, at: 24))
    }

    /// UDP over exactly the IP payload `segment`: the payload is what the UDP length field
    /// covers, which must be at least the header and at most the segment.
    static func udp(_ segment: ByteView, source: String, destination: String) -> FrameOutcome {
        guard segment.count >= 8 else { return .skip(.udpLengthInconsistent) }
        let length = Int(segment.u16be(4))
        guard length >= 8, length <= segment.count else { return .skip(.udpLengthInconsistent) }
        return .datagram(DecodedUDP(source: source, sourcePort: segment.u16be(0),
                                    destination: destination, destinationPort: segment.u16be(2),
                                    payload: segment.bytes(8..<length)))
    }
}
