import RTPWire
import TestSupport

/// Runs a typed-throwing parse and keeps the outcome.
func attempt<T>(_ body: () throws(RTPParseError) -> T) -> Result<T, RTPParseError> {
    Result(catching: body)
}

/// An input and the exact error it must produce.
struct MalformedCase: Sendable, CustomStringConvertible {
    var name: String
    var bytes: [UInt8]
    var error: RTPParseError
    init(_ name: String, _ hexBytes: String, _ error: RTPParseError) {
        self.name = name
        self.bytes = hex(hexBytes)
        self.error = error
    }
    var description: String { name }
}

enum Vectors {
    /// RFC 7714 §16 example RTP packet (spec/test-vectors.md §4.1).
    static let rfc7714RTP = hex("""
        8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
        20646976 69736120 696e2070 61727465 73207472 6573
        """)

    /// RFC 7714 §17 RTCP packet exactly as printed (spec/test-vectors.md §4.6). Its length field
    /// says 13 (56 bytes) but only 52 bytes are printed.
    static let rfc7714RTCPAsPrinted = hex("""
        81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
        deadbeef deadbeef deadbeef deadbeef deadbeef
        """)

    /// The same packet with its length field set to 12, matching the 52 bytes present.
    static let rfc7714RTCPConsistent: [UInt8] = {
        var bytes = rfc7714RTCPAsPrinted
        bytes[3] = 0x0C
        return bytes
    }()
}
