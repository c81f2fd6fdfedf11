#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// IP addresses as canonical text, and back.
public enum AddressText {
    /// Dotted-quad text for the four bytes of `bytes` (must hold exactly 4).
    public static func ipv4(_ bytes: [UInt8]) -> String {
        ipv4(ByteView(bytes), at: 0)
    }

    /// RFC 5952 text for the 16 bytes of `bytes` (must hold exactly 16): lowercase hex, no
    /// leading zeros, the longest run (first if tied) of two or more zero groups as `::`, and
    /// IPv4-mapped addresses as `::ffff:a.b.c.d`.
    public static func ipv6(_ bytes: [UInt8]) -> String {
        ipv6(ByteView(bytes), at: 0)
    }

    static func ipv4(_ view: ByteView, at offset: Int) -> String {
        "\(view[offset]).\(view[offset + 1]).\(view[offset + 2]).\(view[offset + 3])"
    }

    static func ipv6(_ view: ByteView, at offset: Int) -> String {
        var groups = [UInt16](repeating: 0, count: 8)
        for index in 0..<8 { groups[index] = view.u16be(offset + 2 * index) }
        if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xFFFF {
            return "::ffff:" + ipv4(view, at: offset + 12)
        }
        // The longest run of zero groups, at least two long; the first one wins a tie.
        var bestStart = -1, bestLength = 0
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > bestLength { bestStart = index; bestLength = end - index }
                index = end
            } else {
                index += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestLength >= 2 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    /// The 4 or 16 address bytes of IPv4 or IPv6 text (any form `inet_pton` accepts), or nil.
    public static func parse(_ text: String) -> [UInt8]? {
        if text.contains(":") {
            var address = in6_addr()
            guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
            return withUnsafeBytes(of: &address) { Array($0) }
        }
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }
}
