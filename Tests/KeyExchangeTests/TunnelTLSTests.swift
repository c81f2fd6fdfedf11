import Dispatch
import Foundation
import Glibc
@testable import KeyExchange
import Net
import SRTP
import Testing
import TestSupport

// The DTLS tunnel over TLS (draft-ietf-perc-dtls-tunnel-12 §5.1): Media Distributor = TLS
// client, Key Distributor = TLS server, both pinned by certificate fingerprint.

// MARK: - Helpers

/// One message of every tunnel type (§6.2-§6.6), with random ids and payloads from `seed`.
private func everyMessageType(seed: UInt64) throws -> [TunnelMessage] {
    var rng = SplitMix64(seed: seed)
    let id = AssociationID.random(using: &rng)
    return [
        .supportedProfiles(try .init(protectionProfiles: [0x0009, 0x000A, 0x0007])),
        .unsupportedVersion(.init(highestVersion: 0)),
        .mediaKeys(try .init(associationID: id, protectionProfile: 0x0009, mki: rng.bytes(4),
                             clientWriteMasterKey: SecretBytes(rng.bytes(16)), serverWriteMasterKey: SecretBytes(rng.bytes(16)),
                             clientWriteMasterSalt: SecretBytes(rng.bytes(12)), serverWriteMasterSalt: SecretBytes(rng.bytes(12)))),
        .tunneledDtls(try .init(associationID: id, dtlsMessage: [22, 0xFE, 0xFD] + rng.bytes(300))),
        .endpointDisconnect(.init(associationID: id)),
    ]
}

/// `count` TunneledDtls messages of 1...1400 bytes, each numbered in its first four bytes.
private func burst(count: Int, seed: UInt64) throws -> [TunnelMessage] {
    var rng = SplitMix64(seed: seed)
    let id = AssociationID.random(using: &rng)
    return try (0 ..< count).map { i in
        let length = Int.random(in: 4 ... 1400, using: &rng)
        let number = withUnsafeBytes(of: UInt32(i).bigEndian) { Array($0) }
        return .tunneledDtls(try .init(associationID: id, dtlsMessage: number + rng.bytes(length - 4)))
    }
}

/// A client and a server connection over loopback, nothing exchanged yet (the client's
/// ClientHello is on its way). The TCP connect completes from the listen queue.
private func connectionPair(clientID: DTLSIdentity, serverID: DTLSIdentity,
                            clientPins: Set<DTLSFingerprint>? = nil, serverPins: Set<DTLSFingerprint>? = nil)
    throws -> (client: TunnelConnection, server: TunnelConnection) {
    let listener = try TCPListener(bindingTo: .loopback(port: 0))
    let stream = try TCPStream.connect(to: listener.localAddress, timeout: .seconds(5))
    let accepted = try #require(try listener.accept(timeout: .seconds(5)))
    let client = try TunnelConnection(stream: stream, role: .client, identity: clientID,
                                      pinnedPeers: clientPins ?? [serverID.fingerprint])
    let server = try TunnelConnection(stream: accepted, role: .server, identity: serverID,
                                      pinnedPeers: serverPins ?? [clientID.fingerprint])
    return (client, server)
}

/// Runs a poll loop over `connections` until `done` says so or `limit` passes, collecting each
/// connection's messages. Throws the first error a connection throws.
private func pump(_ connections: [TunnelConnection], within limit: Duration = .seconds(20),
                  until done: ([[TunnelMessage]]) -> Bool) throws -> [[TunnelMessage]] {
    var received = [[TunnelMessage]](repeating: [], count: connections.count)
    var poller = Poller()
    let deadline = ContinuousClock.now + limit
    while !done(received), ContinuousClock.now < deadline {
        for c in connections where !c.isClosed {
            poller.register(c.fd, interest: c.wantsWrite ? [.read, .write] : .read)
        }
        let ready = try poller.poll(timeout: .milliseconds(200))
        for event in ready {
            guard let index = connections.firstIndex(where: { $0.fd == event.fd }) else { continue }
            let c = connections[index]
            if event.isWritable { try c.handleWritable() }
            if event.isReadable { received[index] += try c.handleReadable() }
            if c.isClosed { poller.remove(event.fd) }
        }
    }
    return received
}

/// Runs `body` on a GCD thread, not the cooperative pool that blocking socket calls would
/// starve, and hands its Sendable result back.
private final class Background<T: Sendable>: @unchecked Sendable {
    // `result` is written once on the worker before `done` is signalled and read after waiting.
    private var result: T?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> T) {
        DispatchQueue.global().async {
            self.result = body()
            self.done.signal()
        }
    }

    func wait(seconds: Int = 30) -> T? {
        guard done.wait(timeout: .now() + .seconds(seconds)) == .success else { return nil }
        return result
    }
}

/// What the background client in the blocking tests did.
private struct ClientRun: Sendable {
    var connectError: TunnelConnectionError?
    var readError: TunnelConnectionError?
    var peerFingerprint: DTLSFingerprint?
    var received: [TunnelMessage] = []
}

// MARK: - Tests

@Suite("Tunnel over TLS")
struct TunnelTLSTests {
    @Test("every tunnel message type crosses in both directions byte-exact, with both sides pinned")
    func everyTypeBothWays() throws {
        let clientID = try DTLSIdentity(commonName: "media-distributor"), serverID = try DTLSIdentity(commonName: "key-distributor")
        let (client, server) = try connectionPair(clientID: clientID, serverID: serverID)
        let fromClient = try everyMessageType(seed: 1), fromServer = try everyMessageType(seed: 2)
        // Sent before the handshake completed: queued, then sent right after it.
        for m in fromClient { try client.send(m) }
        for m in fromServer { try server.send(m) }
        #expect(!client.isEstablished && !server.isEstablished)

        let received = try pump([client, server]) { $0[0].count >= fromServer.count && $0[1].count >= fromClient.count }
        #expect(client.isEstablished && server.isEstablished)
        #expect(client.peerFingerprint == serverID.fingerprint)
        #expect(server.peerFingerprint == clientID.fingerprint)
        #expect(client.negotiation?.protocolVersion == "TLSv1.3")
        #expect(received[1] == fromClient)
        #expect(received[0] == fromServer)
        #expect(received[1].map { $0.serialized() } == fromClient.map { $0.serialized() })
        #expect(received[0].map { $0.serialized() } == fromServer.map { $0.serialized() })
        #expect(Set(received[1].map(\.messageType)) == Set(TunnelMessageType.allCases))
        #expect(client.framingErrors.isEmpty && server.framingErrors.isEmpty)

        // close_notify: the server sees a clean close, and answers in kind.
        client.close()
        #expect(client.isClosed && client.fd == -1)
        _ = try pump([server]) { _ in server.isClosed }
        #expect(server.isClosed && server.peerClosedCleanly == true)
        #expect(throws: TunnelConnectionError.closed) { try server.send(fromServer[0]) }
        server.close()
    }

    @Test("2000 TunneledDtls messages sent in a burst each way arrive complete and in order")
    func burstInOrder() throws {
        let clientID = try DTLSIdentity(), serverID = try DTLSIdentity()
        let (client, server) = try connectionPair(clientID: clientID, serverID: serverID)
        _ = try pump([client, server]) { _ in client.isEstablished && server.isEstablished }
        let up = try burst(count: 2000, seed: 3), down = try burst(count: 2000, seed: 4)
        for m in up { try client.send(m) }
        try server.send(down)   // the batch form: one TLS write
        let received = try pump([client, server], within: .seconds(60)) { $0[0].count >= down.count && $0[1].count >= up.count }
        #expect(received[1].count == up.count && received[1] == up)
        #expect(received[0].count == down.count && received[0] == down)
        client.close()
        server.close()
    }

    @Test("a malformed frame is recorded as a typed error and the messages around it still arrive")
    func framingErrorKeepsConnection() throws {
        let clientID = try DTLSIdentity(), serverID = try DTLSIdentity()
        let (client, server) = try connectionPair(clientID: clientID, serverID: serverID)
        _ = try pump([client, server]) { _ in client.isEstablished && server.isEstablished }
        let good = try everyMessageType(seed: 5)
        try client.send(good[0])
        // msg_type 9 is unassigned (§8): the framer drops its 3 + 2 bytes and goes on.
        try client.send(plaintext: [9, 0x00, 0x02, 0xAA, 0xBB])
        try client.send(good[3])
        let received = try pump([client, server]) { $0[1].count >= 2 }
        #expect(received[1] == [good[0], good[3]])
        #expect(server.takeFramingErrors() == [.unknownMessageType(9)])
        #expect(server.framingErrors.isEmpty)
        #expect(!server.isClosed)
    }

    @Test("blocking connect and accept complete the handshake, then messages flow both ways")
    func blockingHelpers() throws {
        let clientID = try DTLSIdentity(), serverID = try DTLSIdentity()
        let listener = try TCPListener(bindingTo: .loopback(port: 0))
        let address = listener.localAddress
        let fromClient = try everyMessageType(seed: 6), fromServer = try everyMessageType(seed: 7)
        let run = Background { () -> ClientRun in
            var run = ClientRun()
            do throws(TunnelConnectionError) {
                let c = try TunnelConnection.connect(to: address, identity: clientID, pinnedPeers: [serverID.fingerprint],
                                                     timeout: .seconds(10))
                run.peerFingerprint = c.peerFingerprint
                try c.send(fromClient)
                try c.flush(timeout: .seconds(10))
                while run.received.count < fromServer.count {
                    let got = try c.receive(timeout: .seconds(10))
                    if got.isEmpty { break }
                    run.received += got
                }
                c.close()
            } catch {
                run.connectError = error
            }
            return run
        }
        let server = try TunnelConnection.accept(from: listener, identity: serverID, pinnedPeers: [clientID.fingerprint],
                                                 timeout: .seconds(10))
        #expect(server.peerFingerprint == clientID.fingerprint)
        var got: [TunnelMessage] = []
        while got.count < fromClient.count {
            let more = try server.receive(timeout: .seconds(10))
            if more.isEmpty { break }
            got += more
        }
        #expect(got == fromClient)
        try server.send(fromServer)
        try server.flush(timeout: .seconds(10))
        let result = try #require(run.wait())
        #expect(result.connectError == nil)
        #expect(result.peerFingerprint == serverID.fingerprint)
        #expect(result.received == fromServer)
        server.close()
    }

    @Test("the client refuses a server whose fingerprint is not pinned; the server hears bad_certificate")
    func clientRefusesUnpinnedServer() throws {
        let clientID = try DTLSIdentity(), serverID = try DTLSIdentity(), stranger = try DTLSIdentity()
        let listener = try TCPListener(bindingTo: .loopback(port: 0))
        let address = listener.localAddress
        let run = Background { () -> ClientRun in
            var run = ClientRun()
            do throws(TunnelConnectionError) {
                _ = try TunnelConnection.connect(to: address, identity: clientID, pinnedPeers: [stranger.fingerprint],
                                                 timeout: .seconds(10))
            } catch {
                run.connectError = error
            }
            return run
        }
        #expect(throws: TunnelConnectionError.tls(.peerAlert(code: 42, description: "bad certificate"))) {
            _ = try TunnelConnection.accept(from: listener, identity: serverID, pinnedPeers: [clientID.fingerprint],
                                            timeout: .seconds(10))
        }
        let result = try #require(run.wait())
        #expect(result.connectError == .tls(.peerNotPinned(serverID.fingerprint)))
    }

    @Test("the server refuses an unknown client; the client learns it from the alert")
    func serverRefusesUnknownClient() throws {
        let clientID = try DTLSIdentity(), serverID = try DTLSIdentity(), stranger = try DTLSIdentity()
        let listener = try TCPListener(bindingTo: .loopback(port: 0))
        let address = listener.localAddress
        let run = Background { () -> ClientRun in
            var run = ClientRun()
            do throws(TunnelConnectionError) {
                // TLS 1.3: the client has finished before the server looks at its certificate.
                let c = try TunnelConnection.connect(to: address, identity: clientID, pinnedPeers: [serverID.fingerprint],
                                                     timeout: .seconds(10))
                do throws(TunnelConnectionError) {
                    run.received = try c.receive(timeout: .seconds(10))
                } catch {
                    run.readError = error
                }
            } catch {
                run.connectError = error
            }
            return run
        }
        #expect(throws: TunnelConnectionError.tls(.peerNotPinned(clientID.fingerprint))) {
            _ = try TunnelConnection.accept(from: listener, identity: serverID, pinnedPeers: [stranger.fingerprint],
                                            timeout: .seconds(10))
        }
        let result = try #require(run.wait())
        let clientError = result.connectError ?? result.readError
        #expect(clientError == .tls(.peerAlert(code: 42, description: "bad certificate")))
        #expect(result.received.isEmpty)
    }

    @Test("blocking helpers give typed errors: refused port, silent server, nobody connecting")
    func blockingFailures() throws {
        let id = try DTLSIdentity()
        let closedPort = try TCPListener(bindingTo: .loopback(port: 0)).localAddress   // closed at once
        do {
            _ = try TunnelConnection.connect(to: closedPort, identity: id, pinnedPeers: [id.fingerprint], timeout: .seconds(2))
            Issue.record("connected to a closed port")
        } catch {
            guard case let .network(netError) = error else { Issue.record("unexpected \(error)"); return }
            #expect(netError.code == .connectionRefused)
        }
        // The kernel completes the TCP handshake from the listen queue; nobody answers the ClientHello.
        let silent = try TCPListener(bindingTo: .loopback(port: 0))
        #expect(throws: TunnelConnectionError.timedOut("the TLS handshake with \(silent.localAddress)")) {
            _ = try TunnelConnection.connect(to: silent.localAddress, identity: id, pinnedPeers: [id.fingerprint],
                                             timeout: .milliseconds(300))
        }
        let lonely = try TCPListener(bindingTo: .loopback(port: 0))
        #expect(throws: TunnelConnectionError.timedOut("a tunnel connection on \(lonely.localAddress)")) {
            _ = try TunnelConnection.accept(from: lonely, identity: id, pinnedPeers: [id.fingerprint], timeout: .milliseconds(100))
        }
    }

    @Test("sans-IO: TLS streams talk through byte arrays; a pin mismatch names the received fingerprint")
    func inMemory() throws {
        let a = try DTLSIdentity(), b = try DTLSIdentity()
        let client = try TLSStream(role: .client, identity: a, pinnedPeers: [b.fingerprint])
        let server = try TLSStream(role: .server, identity: b, pinnedPeers: [a.fingerprint])
        var toServer = try client.start(), toClient: [UInt8] = []
        var events: [TLSEvent] = []
        for _ in 0 ..< 5 where client.state != .connected || server.state != .connected {
            let s = try server.receive(toServer); toClient += s.toSend; events += s.events
            toServer = []
            let c = try client.receive(toClient); toServer += c.toSend; events += c.events
            toClient = []
        }
        _ = try server.receive(toServer)
        #expect(client.state == .connected && server.state == .connected)
        #expect(events.count == 2)
        let secret = Array("one record".utf8)
        // Fed one byte at a time: a partial record waits for the rest.
        var plaintext: [UInt8] = []
        for byte in try client.send(secret) { plaintext += try server.receive([byte]).plaintext }
        #expect(plaintext == secret)
        let closing = try server.receive(client.close())
        #expect(closing.events == [.peerClosed] && server.state == .closed)

        let wrong = try TLSStream(role: .client, identity: a, pinnedPeers: [a.fingerprint])
        let other = try TLSStream(role: .server, identity: b, pinnedPeers: [a.fingerprint])
        let hello = try other.receive(wrong.start())
        #expect(throws: TLSError.peerNotPinned(b.fingerprint)) { _ = try wrong.receive(hello.toSend) }
        #expect(wrong.state == .failed)
        #expect(!wrong.drainOutgoing().isEmpty)   // the bad_certificate alert
        #expect(throws: TLSError.invalidState(operation: "send", state: .failed)) { _ = try wrong.send([1]) }
    }

    @Test("interop: openssl s_client (TLS 1.3 and 1.2) with a client certificate completes the handshake and exchanges data; without one it is refused",
          .enabled(if: OpenSSLTool.available), arguments: [true, false], ["TLSv1.3", "TLSv1.2"])
    func opensslClient(withCertificate: Bool, version: String) throws {
        let clientID = try DTLSIdentity(commonName: "s_client"), serverID = try DTLSIdentity(commonName: "key-distributor")
        let files = try writePEMFiles(clientID)
        defer { try? FileManager.default.removeItem(at: files.dir) }
        let listener = try TCPListener(bindingTo: .loopback(port: 0))
        let certArgs = withCertificate ? ["-cert", files.cert, "-key", files.key] : []
        let versionArg = version == "TLSv1.2" ? "-tls1_2" : "-tls1_3"
        let tool = try OpenSSLTool(["s_client", "-connect", "127.0.0.1:\(listener.localAddress.port)", versionArg] + certArgs, stderrToStdout: true)
        defer { tool.finish() }

        let stream = try #require(try listener.accept(timeout: .seconds(10)))
        let tls = try TLSStream(role: .server, identity: serverID, pinnedPeers: [clientID.fingerprint])
        var plaintext: [UInt8] = []
        var failure: TLSError?
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var sentGreeting = false
        let deadline = ContinuousClock.now + .seconds(10)
        func sendAll(_ bytes: [UInt8]) throws {
            var offset = 0
            while offset < bytes.count {
                if case let .wrote(n) = try stream.write(bytes[offset...]) { offset += n } else {
                    _ = try Poller.wait(for: stream.fileDescriptor, interest: .write, timeout: .seconds(1))
                }
            }
        }
        loop: while failure == nil, ContinuousClock.now < deadline, !String(decoding: plaintext, as: UTF8.self).contains("ping") {
            _ = try Poller.wait(for: stream.fileDescriptor, interest: .read, timeout: .milliseconds(100))
            let result = try buffer.withUnsafeMutableBytes { try stream.read(into: $0) }
            guard case let .read(n) = result else {
                if result == .endOfStream { break loop }
                continue
            }
            do {
                let out = try tls.receive(Array(buffer[..<n]))
                try sendAll(out.toSend)
                plaintext += out.plaintext
                if tls.state == .connected, !sentGreeting {
                    sentGreeting = true
                    try tool.write("ping\n")
                    try sendAll(tls.send(Array("pong from percrec\n".utf8)))
                }
            } catch let error as TLSError {
                failure = error
                try? sendAll(tls.drainOutgoing())
            }
        }
        guard withCertificate else {
            #expect(failure == .missingPeerCertificate)
            #expect(tls.state == .failed)
            return
        }
        #expect(failure == nil)
        #expect(tls.negotiation?.peerFingerprint == clientID.fingerprint)
        #expect(tls.negotiation?.protocolVersion == version)
        #expect(String(decoding: plaintext, as: UTF8.self) == "ping\n")
        #expect(tool.readUntil("pong from percrec", within: .seconds(5)), "s_client printed: \(tool.output)")
        try sendAll(tls.close())
    }
}
