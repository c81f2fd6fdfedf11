import Testing
import TestSupport
import RTPWire

@Suite("RFC 7983 demultiplexing")
struct DatagramKindTests {
    @Test("classifies by the first byte (RFC 7983 §7)", arguments: [
        (UInt8(0), DatagramKind.stun), (3, .stun), (4, .unknown), (15, .unknown),
        (16, .zrtp), (19, .zrtp), (20, .dtls), (22, .dtls), (63, .dtls),
        (64, .turnChannel), (79, .turnChannel), (80, .unknown), (127, .unknown),
        (192, .unknown), (255, .unknown),
    ])
    func firstByte(byte: UInt8, kind: DatagramKind) {
        #expect(DatagramKind.classify([byte, 0x00, 0x00, 0x00]) == kind)
    }

    @Test("tells RTCP from RTP by the packet type byte (RFC 5761 §4)", arguments: [
        (UInt8(0x00), DatagramKind.rtp), (0x60, .rtp), (0xBF, .rtp), (0xC0, .rtcp), (0xC8, .rtcp),
        (0xDF, .rtcp), (0xE0, .rtp), (0xEF, .rtp), (0xFF, .rtp),
    ])
    func rtpOrRTCP(second: UInt8, kind: DatagramKind) {
        for first in [UInt8(128), 0x90, 191] {
            #expect(DatagramKind.classify([first, second]) == kind)
        }
    }

    @Test("calls empty input and a lone RTP/RTCP byte unknown")
    func tooShort() {
        #expect(DatagramKind.classify([UInt8]()) == .unknown)
        #expect(DatagramKind.classify([0x80]) == .unknown)
        #expect(DatagramKind.classify([0x00]) == .stun)
    }

    @Test("classifies the RFC 7714 example packets")
    func rfcPackets() {
        #expect(DatagramKind.classify(Vectors.rfc7714RTP) == .rtp)
        #expect(DatagramKind.classify(Vectors.rfc7714RTCPAsPrinted) == .rtcp)
        #expect(DatagramKind.classify(Vectors.rfc7714RTP[...]) == .rtp)
    }
}
