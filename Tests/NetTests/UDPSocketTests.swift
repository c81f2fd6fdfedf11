import Glibc
import Testing
@testable import Net

/// Whether `::1` can be bound here (containers often run without IPv6).
let ipv6LoopbackAvailable: Bool = (try? UDPSocket(bindingTo: .loopback(.ipv6, port: 0))) != nil

@Suite("UDP sockets")
struct UDPSocketTests {
    private func roundTrip(_ family: SocketAddress.Family) throws {
        let a = try UDPSocket(bindingTo: .loopback(family, port: 0))
        let b = try UDPSocket(bindingTo: .loopback(family, port: 0))
        #expect(a.localAddress.port != 0 && a.localAddress.family == family)
        let payload: [UInt8] = Array(0 ... 255) + [0, 0, 1]
        try a.send(payload, to: b.localAddress)
        let got = try #require(try b.receive(timeout: .seconds(2)))
        #expect(got.bytes == payload)
        #expect(got.source == a.localAddress)
        #expect(!got.truncated)

        try b.send([42], to: got.source)
        var buffer = [UInt8](repeating: 0, count: 16)
        let reply = try buffer.withUnsafeMutableBytes { try a.receive(into: $0, timeout: .seconds(2)) }
        #expect(reply == ReceivedDatagram(count: 1, source: b.localAddress, truncated: false))
        #expect(buffer[0] == 42)
    }

    @Test("a datagram crosses IPv4 loopback byte-exact, with its source address")
    func ipv4RoundTrip() throws { try roundTrip(.ipv4) }

    @Test("a datagram crosses IPv6 loopback byte-exact, with its source address",
          .enabled(if: ipv6LoopbackAvailable, "::1 cannot be bound here"))
    func ipv6RoundTrip() throws { try roundTrip(.ipv6) }

    @Test("receive returns nil after the timeout, and at once with a zero timeout")
    func receiveTimeout() throws {
        let socket = try UDPSocket(bindingTo: .loopback(port: 0))
        let clock = ContinuousClock()
        var result: Datagram?
        let waited = try clock.measure { result = try socket.receive(timeout: .milliseconds(150)) }
        #expect(result == nil)
        #expect(waited >= .milliseconds(140))
        #expect(waited < .seconds(2))
        let instant = try clock.measure { result = try socket.receive(timeout: .zero) }
        #expect(result == nil)
        #expect(instant < .milliseconds(50))
    }

    @Test("a datagram longer than the buffer is marked truncated")
    func truncation() throws {
        let a = try UDPSocket(bindingTo: .loopback(port: 0))
        let b = try UDPSocket(bindingTo: .loopback(port: 0))
        try a.send([UInt8](repeating: 7, count: 100), to: b.localAddress)
        let got = try #require(try b.receive(maximumLength: 10, timeout: .seconds(2)))
        #expect(got.bytes == [UInt8](repeating: 7, count: 10))
        #expect(got.truncated)
    }

    @Test("buffer sizes can be set; Linux reports at least what was asked")
    func bufferSizes() throws {
        let socket = try UDPSocket(bindingTo: .loopback(port: 0))
        try socket.setReceiveBufferSize(65_536)
        try socket.setSendBufferSize(32_768)
        #expect(try socket.receiveBufferSize() >= 65_536)
        #expect(try socket.sendBufferSize() >= 32_768)
    }

    @Test("SO_RXQ_OVFL reports datagrams the kernel dropped on a full receive buffer")
    func kernelDrops() throws {
        let receiver = try UDPSocket(bindingTo: .loopback(port: 0), reportsKernelDrops: true)
        let sender = try UDPSocket(bindingTo: .loopback(port: 0))
        #expect(receiver.kernelDropCount == 0)
        try receiver.setReceiveBufferSize(4096)   // the kernel's minimum is about 2 KiB, doubled
        let datagram = [UInt8](repeating: 1, count: 1000)
        for _ in 0 ..< 200 { try sender.send(datagram, to: receiver.localAddress) }
        while try receiver.receive(timeout: .zero) != nil {}
        // The count travels with each queued datagram; one sent after the drops carries the total.
        try sender.send(datagram, to: receiver.localAddress)
        _ = try #require(try receiver.receive(timeout: .seconds(2)))
        let drops = try #require(receiver.kernelDropCount)
        #expect(drops > 0 && drops < 200)
        #expect(try UDPSocket(bindingTo: .loopback(port: 0)).kernelDropCount == nil)
    }

    @Test("after close every call throws .closed and the descriptor is -1")
    func closed() throws {
        let socket = try UDPSocket(bindingTo: .loopback(port: 0))
        #expect(socket.fileDescriptor >= 0)
        socket.close()
        socket.close()
        #expect(socket.isClosed && socket.fileDescriptor == -1)
        #expect(throws: NetError.self) { try socket.send([1], to: .loopback(port: 9)) }
        do {
            _ = try socket.receive(timeout: .zero)
            Issue.record("receive on a closed socket returned")
        } catch {
            #expect(error.code == .closed && error.operation == "recvmsg")
        }
    }

    @Test("binding a taken port without SO_REUSEADDR is .addressUnavailable")
    func addressInUse() throws {
        let first = try UDPSocket(bindingTo: .loopback(port: 0))
        do {
            _ = try UDPSocket(bindingTo: first.localAddress)
            Issue.record("second bind succeeded")
        } catch {
            #expect(error.code == .addressUnavailable)
            #expect(error.operation == "bind" && error.errno == EADDRINUSE)
            #expect(error.description.contains(first.localAddress.description))
        }
    }
}
