/// Regroups the bytes OpenSSL wrote to a memory BIO into datagrams.
///
/// A memory BIO concatenates what OpenSSL meant as separate datagrams. Each DTLS record has a
/// 13-byte header ending in a 2-byte length (RFC 6347 §4.1), and OpenSSL sizes every record to
/// the link MTU, so packing whole records greedily up to `mtu` bytes gives valid datagrams
/// (RFC 6347 §4.1.1 allows several records per datagram). Bytes that do not parse as records
/// are passed on as one datagram rather than dropped.
enum DTLSRecordFraming {
    static let headerLength = 13

    static func datagrams(from bytes: [UInt8], mtu: Int) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var current: [UInt8] = []
        var i = 0
        while i < bytes.count {
            guard bytes.count - i >= headerLength else { break }
            let length = Int(bytes[i + 11]) << 8 | Int(bytes[i + 12])
            let end = i + headerLength + length
            guard end <= bytes.count else { break }
            if !current.isEmpty && current.count + (end - i) > mtu {
                out.append(current)
                current = []
            }
            current.append(contentsOf: bytes[i ..< end])
            i = end
        }
        if i < bytes.count { current.append(contentsOf: bytes[i...]) }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
