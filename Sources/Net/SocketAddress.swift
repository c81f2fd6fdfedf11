import Glibc

/// An IPv4 or IPv6 address with a port: what `bind`, `connect`, `sendto` and `recvmsg` take
/// and give, as a value (no `sockaddr_storage` kept around, so it is Hashable and cheap to copy).
///
/// Text forms: `127.0.0.1:5000`, `[::1]:5000`, `[fe80::1%eth0]:5000` and `name:5000`, where a
/// name is resolved with getaddrinfo (blocking; `/etc/hosts` first). An IPv6 literal needs the
/// brackets, since its colons would be ambiguous with the port's.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address family.
    public enum Family: Sendable, Hashable, CustomStringConvertible {
        case ipv4, ipv6

        var rawValue: Int32 { self == .ipv4 ? AF_INET : AF_INET6 }
        public var description: String { self == .ipv4 ? "IPv4" : "IPv6" }
    }

    /// The IP address, host byte order for IPv4 (`127.0.0.1` is `0x7F00_0001`), bytes 0...7
    /// and 8...15 big endian for IPv6. Integers rather than arrays so that a received
    /// datagram's source address costs no allocation.
    enum Host: Hashable, Sendable {
        case v4(UInt32)
        case v6(high: UInt64, low: UInt64, scopeID: UInt32)
    }

    let host: Host
    /// The port, host byte order. 0 asks `bind` for an ephemeral port.
    public let port: UInt16

    init(host: Host, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// An IPv4 address from its four bytes in written order; nil unless there are four.
    public init?<C: Collection>(ipv4Bytes bytes: C, port: UInt16) where C.Element == UInt8 {
        guard bytes.count == 4 else { return nil }
        self.init(host: .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) }), port: port)
    }

    /// An IPv6 address from its sixteen bytes; nil unless there are sixteen. `scopeID` is the
    /// interface index for link-local addresses, 0 otherwise.
    public init?<C: Collection>(ipv6Bytes bytes: C, port: UInt16, scopeID: UInt32 = 0) where C.Element == UInt8 {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { high = high << 8 | UInt64(b) } else { low = low << 8 | UInt64(b) }
        }
        self.init(host: .v6(high: high, low: low, scopeID: scopeID), port: port)
    }

    /// `127.0.0.1` or `::1`.
    public static func loopback(_ family: Family = .ipv4, port: UInt16) -> SocketAddress {
        family == .ipv4 ? SocketAddress(host: .v4(0x7F00_0001), port: port)
                        : SocketAddress(host: .v6(high: 0, low: 1, scopeID: 0), port: port)
    }

    /// The wildcard address (`0.0.0.0` or `::`), for binding on every interface.
    public static func any(_ family: Family = .ipv4, port: UInt16 = 0) -> SocketAddress {
        family == .ipv4 ? SocketAddress(host: .v4(0), port: port)
                        : SocketAddress(host: .v6(high: 0, low: 0, scopeID: 0), port: port)
    }

    public var family: Family {
        if case .v4 = host { return .ipv4 }
        return .ipv6
    }

    /// The same address with another port.
    public func withPort(_ port: UInt16) -> SocketAddress { SocketAddress(host: host, port: port) }

    /// The address bytes in network order: 4 for IPv4, 16 for IPv6.
    public var addressBytes: [UInt8] {
        switch host {
        case let .v4(a): return (0 ..< 4).map { UInt8(truncatingIfNeeded: a >> (24 - 8 * UInt32($0))) }
        case let .v6(high, low, _):
            return (0 ..< 16).map { i in
                let word = i < 8 ? high : low
                return UInt8(truncatingIfNeeded: word >> UInt64(56 - 8 * (i % 8)))
            }
        }
    }

    /// The interface index of an IPv6 link-local address; 0 for IPv4 and global addresses.
    public var scopeID: UInt32 {
        if case let .v6(_, _, scope) = host { return scope }
        return 0
    }

    /// `127.0.0.0/8` or `::1`.
    public var isLoopback: Bool {
        switch host {
        case let .v4(a): return a >> 24 == 127
        case let .v6(high, low, _): return high == 0 && low == 1
        }
    }

    /// The address without the port: `127.0.0.1`, `::1`, `fe80::1%2` (numeric scope).
    public var hostText: String {
        withSockAddr { address, _ in
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let ok: Bool
            if family == .ipv4 {
                ok = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    withUnsafePointer(to: sin.pointee.sin_addr) { inet_ntop(AF_INET, $0, &buffer, socklen_t(buffer.count)) != nil }
                }
            } else {
                ok = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    withUnsafePointer(to: sin6.pointee.sin6_addr) { inet_ntop(AF_INET6, $0, &buffer, socklen_t(buffer.count)) != nil }
                }
            }
            // inet_ntop fails only for a too-small buffer, and INET6_ADDRSTRLEN is its maximum.
            let text = ok ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
            return scopeID == 0 ? text : "\(text)%\(scopeID)"
        }
    }

    /// `127.0.0.1:5000` or `[::1]:5000`: what `init(parsing:)` reads back.
    public var description: String {
        family == .ipv4 ? "\(hostText):\(port)" : "[\(hostText)]:\(port)"
    }

    // MARK: - Parsing and resolution

    /// Parses `a.b.c.d:port`, `[v6]:port` (with an optional `%interface` in the brackets) or
    /// `name:port`. A name is resolved with getaddrinfo and the first answer taken (for
    /// `localhost` that may be `::1` or `127.0.0.1`, in the order the resolver prefers).
    /// Throws `.invalidAddress` for malformed text (a digits-and-dots host that is not an IPv4
    /// address is never sent to the resolver) and `.resolutionFailed` when a name has no address.
    public init(parsing text: String) throws(NetError) {
        func invalid(_ why: String) -> NetError {
            NetError(code: .invalidAddress, operation: "parse address", message: "\"\(text)\"", cause: why)
        }
        let hostPart: Substring, portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw invalid("missing ']' after an IPv6 address") }
            hostPart = text[text.index(after: text.startIndex) ..< close]
            let rest = text[text.index(after: close)...]
            guard rest.first == ":" else { throw invalid("expected ':port' after ']'") }
            portPart = rest.dropFirst()
            guard let v6 = SocketAddress.parseIPv6(hostPart) else { throw invalid("not an IPv6 address: \(hostPart)") }
            guard let port = SocketAddress.parsePort(portPart) else { throw invalid("port must be 0...65535, got \"\(portPart)\"") }
            self = v6.withPort(port)
            return
        }
        guard let colon = text.lastIndex(of: ":") else { throw invalid("missing ':port'") }
        hostPart = text[..<colon]
        portPart = text[text.index(after: colon)...]
        guard !hostPart.contains(":") else { throw invalid("an IPv6 address needs brackets: [address]:port") }
        guard !hostPart.isEmpty else { throw invalid("missing host") }
        guard let port = SocketAddress.parsePort(portPart) else { throw invalid("port must be 0...65535, got \"\(portPart)\"") }
        if let v4 = SocketAddress.parseIPv4(hostPart) {
            self = v4.withPort(port)
            return
        }
        guard !hostPart.allSatisfy({ $0 == "." || $0.isASCII && $0.isNumber }) else {
            throw invalid("not an IPv4 address: \(hostPart)")
        }
        guard SocketAddress.isHostName(hostPart) else { throw invalid("not a host name: \(hostPart)") }
        let found = try SocketAddress.resolve(host: String(hostPart), port: port)
        guard let first = found.first else {
            throw NetError(code: .resolutionFailed, operation: "getaddrinfo", message: String(hostPart), cause: "no addresses")
        }
        self = first
    }

    /// Every IPv4/IPv6 address of `host` (a name or a numeric address) in the resolver's order,
    /// without duplicates; `family` restricts the answer. Blocking.
    public static func resolve(host: String, port: UInt16, family: Family? = nil) throws(NetError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = family?.rawValue ?? AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)   // one entry per address, not per socket type
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else {
            let cause = status == EAI_SYSTEM ? NetError.text(errno: Glibc.errno) : String(cString: gai_strerror(status))
            throw NetError(code: .resolutionFailed, operation: "getaddrinfo", message: host, cause: cause)
        }
        defer { freeaddrinfo(list) }
        var out: [SocketAddress] = []
        var node = list
        while let entry = node {
            if let raw = entry.pointee.ai_addr, let found = SocketAddress(raw, length: entry.pointee.ai_addrlen) {
                let address = found.withPort(port)
                if !out.contains(address) { out.append(address) }
            }
            node = entry.pointee.ai_next
        }
        return out
    }

    /// Decimal 0...65535, digits only (no sign, no spaces).
    static func parsePort(_ text: Substring) -> UInt16? {
        guard (1 ... 5).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30 ... 0x39).contains($0) }) else { return nil }
        return UInt16(text)
    }

    /// Dotted quad, exactly as inet_pton(AF_INET) accepts it (four decimal parts).
    static func parseIPv4(_ text: Substring) -> SocketAddress? {
        var addr = in_addr()
        guard inet_pton(AF_INET, String(text), &addr) == 1 else { return nil }
        return SocketAddress(host: .v4(UInt32(bigEndian: addr.s_addr)), port: 0)
    }

    /// An IPv6 literal with an optional `%scope` (interface name or index).
    static func parseIPv6(_ text: Substring) -> SocketAddress? {
        let parts = text.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
        guard let literal = parts.first else { return nil }
        var scopeID: UInt32 = 0
        if parts.count == 2 {
            let scope = parts[1]
            if let index = UInt32(scope) {
                scopeID = index
            } else {
                scopeID = if_nametoindex(String(scope))
                guard scopeID != 0 else { return nil }
            }
        }
        var addr = in6_addr()
        guard inet_pton(AF_INET6, String(literal), &addr) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: addr) { Array($0) }
        return SocketAddress(ipv6Bytes: bytes, port: 0, scopeID: scopeID)
    }

    /// RFC 1123 host name: dot-separated labels of letters, digits and hyphens (not at either
    /// end of a label), at most 63 bytes each and 253 in all; one trailing dot allowed.
    static func isHostName(_ text: Substring) -> Bool {
        var name = text
        if name.hasSuffix(".") { name = name.dropLast() }
        guard (1 ... 253).contains(name.utf8.count) else { return false }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1 ... 63).contains(label.utf8.count), label.first != "-", label.last != "-",
                  label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return false }
        }
        return true
    }

    // MARK: - sockaddr conversion

    /// Reads a `sockaddr_in` or `sockaddr_in6`; nil for another family or a short length.
    init?(_ address: UnsafePointer<sockaddr>, length: socklen_t) {
        switch Int32(address.pointee.sa_family) {
        case AF_INET where Int(length) >= MemoryLayout<sockaddr_in>.size:
            let sin = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in.self)
            self.init(host: .v4(UInt32(bigEndian: sin.sin_addr.s_addr)), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6 where Int(length) >= MemoryLayout<sockaddr_in6>.size:
            let sin6 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in6.self)
            let bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
            self.init(ipv6Bytes: bytes, port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id)
        default:
            return nil
        }
    }

    /// Reads the address a system call wrote into `storage`.
    init?(storage: sockaddr_storage, length: socklen_t) {
        var storage = storage
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { SocketAddress($0, length: length) }
        }
        guard let result else { return nil }
        self = result
    }

    /// Calls `body` with this address as a `sockaddr` of the right length.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch host {
        case let .v4(a):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = a.bigEndian
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case let .v6(high, low, scope):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scope
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { raw in
                raw.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            return withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }
}
