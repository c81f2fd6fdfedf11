import Testing
@testable import Net

@Suite("Socket addresses")
struct SocketAddressTests {
    @Test("parses numeric IPv4 and bracketed IPv6 text and prints it back unchanged", arguments: [
        ("127.0.0.1:5000", SocketAddress.Family.ipv4, UInt16(5000)),
        ("0.0.0.0:0", .ipv4, 0),
        ("192.0.2.255:65535", .ipv4, 65535),
        ("[::1]:5000", .ipv6, 5000),
        ("[::]:1", .ipv6, 1),
        ("[2001:db8::7]:443", .ipv6, 443),
        ("[fe80::1%1]:9", .ipv6, 9),
        ("[::ffff:10.0.0.1]:80", .ipv6, 80),
    ])
    func numericRoundTrip(text: String, family: SocketAddress.Family, port: UInt16) throws {
        let address = try SocketAddress(parsing: text)
        #expect(address.family == family)
        #expect(address.port == port)
        #expect(address.description == text)
        #expect(try SocketAddress(parsing: address.description) == address)
    }

    @Test("keeps the address bytes, the port and the IPv6 scope")
    func fields() throws {
        let v4 = try SocketAddress(parsing: "10.1.2.3:7")
        #expect(v4.addressBytes == [10, 1, 2, 3])
        #expect(v4 == SocketAddress(ipv4Bytes: [10, 1, 2, 3], port: 7))
        #expect(v4.hostText == "10.1.2.3")
        let v6 = try SocketAddress(parsing: "[fe80::a:1%3]:9")
        #expect(v6.scopeID == 3)
        #expect(v6.addressBytes == [0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0A, 0, 1])
        #expect(v6.hostText == "fe80::a:1%3")
        #expect(SocketAddress(ipv4Bytes: [1, 2, 3], port: 1) == nil)
        #expect(SocketAddress(ipv6Bytes: [UInt8](repeating: 0, count: 15), port: 1) == nil)
    }

    @Test("equal addresses hash alike; port, family and scope tell them apart")
    func hashing() throws {
        let a = try SocketAddress(parsing: "127.0.0.1:5000")
        let set: Set = [a, try SocketAddress(parsing: "127.0.0.1:5000"), a.withPort(5001),
                        .loopback(.ipv6, port: 5000), try SocketAddress(parsing: "[::1%1]:5000")]
        #expect(set.count == 4)
        #expect(a == .loopback(port: 5000))
        #expect(a.isLoopback && SocketAddress.loopback(.ipv6, port: 1).isLoopback)
        #expect(!SocketAddress.any(port: 1).isLoopback)
        #expect(SocketAddress.any(.ipv6).description == "[::]:0")
    }

    @Test("resolves localhost to a loopback address with the given port")
    func localhost() throws {
        let address = try SocketAddress(parsing: "localhost:5000")
        #expect(address.isLoopback)
        #expect(address.port == 5000)
        let v4 = try SocketAddress.resolve(host: "localhost", port: 7, family: .ipv4)
        #expect(v4.contains(.loopback(port: 7)))
    }

    @Test("refuses malformed text with .invalidAddress, without asking the resolver", arguments: [
        "", "127.0.0.1", "127.0.0.1:", ":5000", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+1",
        "127.0.0.1: 1", "127.0.0.1:5000 ", "127.0.0.1:123456", "::1:5000", "::1", "[::1]", "[::1]5000",
        "[::1:5000", "[::1]:", "[127.0.0.1]:5000", "[::1%no-such-interface-0]:1", "[gggg::1]:1",
        "256.1.1.1:80", "1.2.3:80", "1.2.3.4.5:80", "host_name:80", "-bad.example:80", "bad-.example:80",
        "a..b:80", " localhost:80", "läuft.example:80",
    ])
    func malformed(text: String) {
        #expect {
            try SocketAddress(parsing: text)
        } throws: { error in
            (error as? NetError)?.code == .invalidAddress
        }
    }

    @Test("an unknown name is .resolutionFailed, naming the host")
    func unresolvable() {
        // RFC 6761 §6.4: .invalid never resolves.
        #expect {
            try SocketAddress(parsing: "percrec-no-such-host.invalid:1")
        } throws: { error in
            guard let error = error as? NetError else { return false }
            return error.code == .resolutionFailed && error.message.contains("percrec-no-such-host.invalid")
        }
    }

    @Test("poll timeouts round up to whole milliseconds and clamp", arguments: [
        (Duration.zero, Int32(0)), (.nanoseconds(1), 1), (.milliseconds(5), 5), (.microseconds(5_001), 6),
        (.seconds(-3), 0), (.seconds(3_000_000), .max),
    ])
    func pollMilliseconds(duration: Duration, expected: Int32) {
        #expect(duration.pollMilliseconds == expected)
    }
}
