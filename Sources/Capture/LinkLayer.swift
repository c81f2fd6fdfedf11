/// The network-layer protocol a link header announces.
enum NetworkProtocol {
    case ipv4
    case ipv6
    /// Raw IP link types: decide by the version nibble.
    case byVersion
}

/// Where a frame's IP header starts, or why there is none.
enum LinkResult {
    case network(NetworkProtocol, offset: Int)
    case skip(SkipReason)
}

/// Link-layer headers: finds the IP header inside a frame of a given pcap `LINKTYPE_*`.
enum LinkLayer {
    static let null: UInt32 = 0
    static let ethernet: UInt32 = 1
    static let rawBSD12: UInt32 = 12
    static let rawBSD14: UInt32 = 14
    static let raw: UInt32 = 101
    static let loop: UInt32 = 108
    static let linuxSLL: UInt32 = 113
    static let ipv4: UInt32 = 228
    static let ipv6: UInt32 = 229
    static let linuxSLL2: UInt32 = 276

    static let etherTypeIPv4: UInt16 = 0x0800
    static let etherTypeIPv6: UInt16 = 0x86DD
    /// 802.1Q, 802.1ad, and the pre-standard QinQ value.
    static let vlanEtherTypes: Set<UInt16> = [0x8100, 0x88A8, 0x9100]

    /// Locates the IP header in `frame`, captured on a link of type `linkType`.
    static func locate(in frame: ByteView, linkType: UInt32) -> LinkResult {
        switch linkType {
        case ethernet:
            return ethernetPayload(frame)
        case linuxSLL:
            // 16 bytes: packet type, ARPHRD type, address length, 8 address bytes, protocol.
            guard frame.count >= 16 else { return .skip(.truncated) }
            return byEtherType(frame.u16be(14), offset: 16)
        case linuxSLL2:
            // 20 bytes: protocol, reserved, interface index, ARPHRD type, packet type,
            // address length, 8 address bytes.
            guard frame.count >= 20 else { return .skip(.truncated) }
            return byEtherType(frame.u16be(0), offset: 20)
        case raw, rawBSD12, rawBSD14:
            return .network(.byVersion, offset: 0)
        case ipv4:
            return .network(.ipv4, offset: 0)
        case ipv6:
            return .network(.ipv6, offset: 0)
        case null, loop:
            // A 4-byte address family: host byte order of the capturing machine for NULL,
            // network byte order for LOOP.
            guard frame.count >= 4 else { return .skip(.truncated) }
            let big = frame.u32(0, bigEndian: true), little = frame.u32(0, bigEndian: false)
            let family: UInt32 = linkType == loop ? big : (big & 0xFFFF_0000 == 0 ? big : little)
            switch family {
            case 2: return .network(.ipv4, offset: 4)
            case 24, 28, 30: return .network(.ipv6, offset: 4)  // NetBSD/OpenBSD, FreeBSD, Darwin
            default: return .skip(.nonIP)
            }
        default:
            return .skip(.unsupportedLinkType)
        }
    }

    /// Ethernet II, through any number of VLAN tags.
    private static func ethernetPayload(_ frame: ByteView) -> LinkResult {
        guard frame.count >= 14 else { return .skip(.truncated) }
        var offset = 12
        var etherType = frame.u16be(offset)
        while vlanEtherTypes.contains(etherType) {
            offset += 4
            guard frame.count >= offset + 2 else { return .skip(.truncated) }
            etherType = frame.u16be(offset)
        }
        return byEtherType(etherType, offset: offset + 2)
    }

    private static func byEtherType(_ etherType: UInt16, offset: Int) -> LinkResult {
        switch etherType {
        case etherTypeIPv4: return .network(.ipv4, offset: offset)
        case etherTypeIPv6: return .network(.ipv6, offset: offset)
        default: return .skip(.nonIP)
        }
    }
}
