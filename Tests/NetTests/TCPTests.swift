import Glibc
import Testing
@testable import Net

/// A connected pair over loopback: (client, server side).
private func connectedPair(_ family: SocketAddress.Family = .ipv4) throws -> (TCPListener, TCPStream, TCPStream) {
    let listener = try TCPListener(bindingTo: .loopback(family, port: 0))
    let client = try TCPStream.connect(to: listener.localAddress, timeout: .seconds(2))
    let server = try #require(try listener.accept(timeout: .seconds(2)))
    return (listener, client, server)
}

/// Reads everything available now (until would-block or end of stream) and appends it.
private func drain(_ stream: TCPStream, into out: inout [UInt8], scratch: inout [UInt8]) throws -> Bool {
    while true {
        let result = try scratch.withUnsafeMutableBytes { try stream.read(into: $0) }
        switch result {
        case let .read(n): out.append(contentsOf: scratch[..<n])
        case .wouldBlock: return false
        case .endOfStream: return true
        }
    }
}

@Suite("TCP streams")
struct TCPTests {
    @Test("connect and accept agree on both addresses; an idle read would block", arguments: [false, true])
    func connectAccept(ipv6: Bool) throws {
        guard !ipv6 || ipv6LoopbackAvailable else { return }   // no ::1 here: nothing to test
        let (listener, client, server) = try connectedPair(ipv6 ? .ipv6 : .ipv4)
        #expect(client.peerAddress == listener.localAddress)
        #expect(server.peerAddress == client.localAddress)
        #expect(server.localAddress == listener.localAddress)
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(try buffer.withUnsafeMutableBytes { try client.read(into: $0) } == .wouldBlock)
        #expect(try listener.accept() == nil)
        let nodelay = try SocketCalls.option(client.fileDescriptor, Int32(IPPROTO_TCP), TCP_NODELAY, "getsockopt", "test")
        #expect(nodelay != 0)
        let reuse = try SocketCalls.option(listener.fileDescriptor, SOL_SOCKET, SO_REUSEADDR, "getsockopt", "test")
        #expect(reuse != 0)
    }

    @Test("4 MiB echo through small socket buffers: partial writes, would-block and Poller deliver every byte in order")
    func largeEcho() throws {
        let (_, client, server) = try connectedPair()
        try client.setSendBufferSize(16_384)
        try server.setReceiveBufferSize(16_384)
        let total = 4 << 20
        let data = (0 ..< total).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }

        var sent = 0, partialWrites = 0, wouldBlocks = 0
        var echo: [UInt8] = [], echoSent = 0
        var received: [UInt8] = []
        received.reserveCapacity(total)
        var scratch = [UInt8](repeating: 0, count: 65_536)
        var poller = Poller()
        let deadline = ContinuousClock.now + .seconds(30)
        while received.count < total, ContinuousClock.now < deadline {
            poller.register(client.fileDescriptor, interest: sent < total ? [.read, .write] : .read)
            poller.register(server.fileDescriptor, interest: echoSent < echo.count ? [.read, .write] : .read)
            for event in try poller.poll(timeout: .seconds(1)) {
                if event.fd == client.fileDescriptor {
                    if event.isWritable, sent < total {
                        let chunk = min(1 << 20, total - sent)
                        switch try client.write(data[sent ..< sent + chunk]) {
                        case let .wrote(n):
                            if n < chunk { partialWrites += 1 }
                            sent += n
                        case .wouldBlock:
                            wouldBlocks += 1
                        }
                    }
                    if event.isReadable { #expect(try !drain(client, into: &received, scratch: &scratch)) }
                } else if event.fd == server.fileDescriptor {
                    if event.isReadable { #expect(try !drain(server, into: &echo, scratch: &scratch)) }
                    if echoSent < echo.count, case let .wrote(n) = try server.write(echo[echoSent...]) { echoSent += n }
                }
            }
        }
        #expect(received.count == total)
        #expect(received == data)
        #expect(partialWrites > 0)
        #expect(partialWrites + wouldBlocks > 1)
    }

    @Test("closing one side gives end of stream to the other; writing to it then fails with .connectionReset")
    func endOfStream() throws {
        let (_, client, server) = try connectedPair()
        _ = try client.write([1, 2, 3][...])
        client.close()
        var got: [UInt8] = [], scratch = [UInt8](repeating: 0, count: 16)
        var ended = false
        let deadline = ContinuousClock.now + .seconds(2)
        while !ended, ContinuousClock.now < deadline {
            _ = try Poller.wait(for: server.fileDescriptor, interest: .read, timeout: .milliseconds(100))
            ended = try drain(server, into: &got, scratch: &scratch)
        }
        #expect(ended && got == [1, 2, 3])
        // The first write may still be accepted; the RST it provokes fails a later one.
        var failure: NetError?
        for _ in 0 ..< 50 where failure == nil {
            do { _ = try server.write([UInt8](repeating: 0, count: 1024)[...]) } catch { failure = error }
            usleep(10_000)
        }
        #expect(failure?.code == .connectionReset)
    }

    @Test("connecting to a port nobody listens on is .connectionRefused with errno text")
    func refused() throws {
        let port = try TCPListener(bindingTo: .loopback(port: 0)).localAddress.port   // closed at once
        do {
            _ = try TCPStream.connect(to: .loopback(port: port), timeout: .seconds(2))
            Issue.record("connected to a closed port")
        } catch {
            #expect(error.code == .connectionRefused)
            #expect(error.operation == "connect")
            #expect(error.errno == ECONNREFUSED)
            #expect(error.cause == "Connection refused")
            #expect(error.description.contains("127.0.0.1:\(port)"))
        }
    }

    @Test("a connect the listener never answers (accept queue full, SYN dropped) is .timedOut")
    func connectTimeout() throws {
        let listener = try TCPListener(bindingTo: .loopback(port: 0), backlog: 0)
        var held: [TCPStream] = []
        var timedOut = false
        for _ in 0 ..< 4 where !timedOut {
            do {
                held.append(try TCPStream.connect(to: listener.localAddress, timeout: .milliseconds(300)))
            } catch {
                #expect(error.code == .timedOut)
                timedOut = error.code == .timedOut
            }
        }
        #expect(timedOut)
    }
}

@Suite("Poller")
struct PollerTests {
    @Test("an idle set times out empty; a datagram makes its socket readable; removed fds are not reported")
    func readiness() throws {
        let a = try UDPSocket(bindingTo: .loopback(port: 0))
        let b = try UDPSocket(bindingTo: .loopback(port: 0))
        var poller = Poller()
        poller.register(a.fileDescriptor, interest: .read)
        poller.register(b.fileDescriptor, interest: .read)
        let clock = ContinuousClock()
        var events: [PollEvent] = []
        let waited = try clock.measure { events = try poller.poll(timeout: .milliseconds(100)) }
        #expect(events.isEmpty && waited >= .milliseconds(90))

        try a.send([1], to: b.localAddress)
        events = try poller.poll(timeout: .seconds(2))
        #expect(events == [PollEvent(fd: b.fileDescriptor, readiness: .readable)])

        poller.register(a.fileDescriptor, interest: [.read, .write])   // replaces
        #expect(poller.interest(of: a.fileDescriptor) == [.read, .write])
        #expect(poller.descriptors == [a.fileDescriptor, b.fileDescriptor])
        poller.remove(b.fileDescriptor)
        #expect(poller.interest(of: b.fileDescriptor) == nil)
        events = try poller.poll(timeout: .zero)
        #expect(events == [PollEvent(fd: a.fileDescriptor, readiness: .writable)])
    }

    @Test("a peer's close is readable (and hangup once both directions are shut)")
    func hangup() throws {
        let (_, client, server) = try connectedPair()
        client.close()
        let readiness = try Poller.wait(for: server.fileDescriptor, interest: .read, timeout: .seconds(2))
        #expect(readiness.contains(.readable))
        try server.shutdownWrite()
        let after = try Poller.wait(for: server.fileDescriptor, interest: [], timeout: .seconds(2))
        #expect(after.contains(.hangup))
        #expect(!after.contains(.readable))   // no read interest: hangup alone
    }
}
