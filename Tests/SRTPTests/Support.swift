@testable import SRTP
import TestSupport

func secret(_ s: String) -> SecretBytes { SecretBytes(hex(s)) }

/// Builds a random but valid RTP packet: random CSRC count, optional RFC 8285 one- or two-byte
/// extension, optional padding, random payload. Written independently of RTPWire so that the
/// SRTP tests do not depend on its parser.
func randomRTPPacket(ssrc: UInt32, seq: UInt16, rng: inout SplitMix64, maxPayload: Int = 200) -> [UInt8] {
    let cc = Int.random(in: 0...15, using: &rng)
    let ext = Int.random(in: 0...2, using: &rng)   // 0 none, 1 one-byte, 2 two-byte
    let pad = Int.random(in: 0...3, using: &rng) == 0 ? Int.random(in: 1...16, using: &rng) : 0
    let payload = rng.bytes(Int.random(in: 0...maxPayload, using: &rng))
    var p: [UInt8] = [0x80 | (pad > 0 ? 0x20 : 0) | (ext > 0 ? 0x10 : 0) | UInt8(cc),
                      UInt8.random(in: 0...127, using: &rng) | (Bool.random(using: &rng) ? 0x80 : 0),
                      UInt8(seq >> 8), UInt8(seq & 0xFF)]
    p += rng.bytes(4)
    p += [UInt8(ssrc >> 24), UInt8((ssrc >> 16) & 0xFF), UInt8((ssrc >> 8) & 0xFF), UInt8(ssrc & 0xFF)]
    p += rng.bytes(4 * cc)
    if ext > 0 {
        var body: [UInt8] = []
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            if ext == 1 {
                let len = Int.random(in: 1...16, using: &rng)
                body.append(UInt8(Int.random(in: 1...14, using: &rng) << 4 | (len - 1)))
                body += rng.bytes(len)
            } else {
                let len = Int.random(in: 0...20, using: &rng)
                body.append(UInt8.random(in: 1...255, using: &rng)); body.append(UInt8(len))
                body += rng.bytes(len)
            }
        }
        while body.count % 4 != 0 { body.append(0) }
        p += ext == 1 ? [0xBE, 0xDE] : [0x10, 0x00]
        p += [UInt8((body.count / 4) >> 8), UInt8((body.count / 4) & 0xFF)]
        p += body
    }
    p += payload
    if pad > 0 { p += [UInt8](repeating: 0, count: pad - 1) + [UInt8(pad)] }
    return p
}

/// A random RTCP compound-like packet (an SR header with random report bytes).
func randomRTCPPacket(ssrc: UInt32, rng: inout SplitMix64) -> [UInt8] {
    let words = Int.random(in: 6...30, using: &rng)   // length field: words − 1
    var p: [UInt8] = [0x80, 200, UInt8((words - 1) >> 8), UInt8((words - 1) & 0xFF)]
    p += [UInt8(ssrc >> 24), UInt8((ssrc >> 16) & 0xFF), UInt8((ssrc >> 8) & 0xFF), UInt8(ssrc & 0xFF)]
    p += rng.bytes(4 * (words - 2))
    return p
}
