import EKT
import Foundation
import Glibc
@testable import KeyExchange
import Net
import SRTP
import Testing
import TestSupport

// DTLS 1.2 + DTLS-SRTP endpoint (RFC 6347, RFC 5764, RFC 8870 §5.2.1, RFC 8723 §10.1):
// in memory, over loopback UDP, with pinning, with loss, and against `openssl s_server`.

// MARK: - Helpers

/// Both sides of one association plus what happened while pumping datagrams between them.
private struct PumpResult {
    var clientError: DTLSError?
    var serverError: DTLSError?
    var delivered = 0
    var dropped = 0
    var retransmissionRounds = 0
    var clientCompleted: DTLSNegotiation?
    var serverCompleted: DTLSNegotiation?
}

/// Moves datagrams between two endpoints in memory, dropping each with probability `dropRate`
/// (seeded), and calls `handleTimeout` when `nextTimeout` passes. Returns once both sides are
/// connected, one side failed and its alert was delivered, or `limit` elapsed. Limits are
/// generous on purpose: suites run in parallel and some block Swift concurrency's few threads
/// for a while (sockets, child processes), which delays every `Task.sleep` here; the loops end
/// as soon as their condition holds, so a healthy run takes well under a second.
private func pump(client: DTLSEndpoint, server: DTLSEndpoint, dropRate: Double = 0, seed: UInt64 = 1,
                  limit: Duration = .seconds(30), inspect: (_ toServer: Bool, _ datagram: [UInt8]) -> Void = { _, _ in })
async throws -> PumpResult {
    var rng = SplitMix64(seed: seed)
    var result = PumpResult()
    var toServer = try client.handshakeStart()
    var toClient: [[UInt8]] = []
    let start = ContinuousClock.now

    func deliver(_ datagrams: [[UInt8]], to endpoint: DTLSEndpoint, toServer: Bool, result: inout PumpResult) -> [[UInt8]] {
        var replies: [[UInt8]] = []
        for d in datagrams {
            inspect(toServer, d)
            if dropRate > 0 && Double.random(in: 0 ..< 1, using: &rng) < dropRate { result.dropped += 1; continue }
            result.delivered += 1
            do {
                let out = try endpoint.receive(datagram: d)
                replies += out.datagrams
                for case let .handshakeCompleted(n) in out.events {
                    if toServer { result.serverCompleted = n } else { result.clientCompleted = n }
                }
            } catch {
                if toServer { result.serverError = error } else { result.clientError = error }
                replies += endpoint.drainOutgoing()   // the fatal alert
            }
        }
        return replies
    }

    while ContinuousClock.now - start < limit {
        let bothUp = client.state == .connected && server.state == .connected
        let someoneFailed = client.state == .failed || server.state == .failed
        if bothUp || (someoneFailed && toServer.isEmpty && toClient.isEmpty) { break }
        if toServer.isEmpty && toClient.isEmpty {
            guard let next = [client.nextTimeout, server.nextTimeout].compactMap({ $0 }).min() else { break }
            let wait = next - .now
            if wait > .zero { try await Task.sleep(for: wait) }
            result.retransmissionRounds += 1
            do { toServer += try client.handleTimeout() } catch { result.clientError = error }
            do { toClient += try server.handleTimeout() } catch { result.serverError = error }
            continue
        }
        let forServer = toServer; toServer = []
        toClient += deliver(forServer, to: server, toServer: true, result: &result)
        let forClient = toClient; toClient = []
        toServer += deliver(forClient, to: client, toServer: false, result: &result)
    }
    return result
}

/// A client and a server endpoint with fresh identities, each pinning the other.
private func makePair(clientEKT: [EKTCipher] = [.aeskw128, .aeskw256], serverEKT: [EKTCipher] = [.aeskw128, .aeskw256],
                      clientPin: DTLSFingerprint? = nil, serverPin: DTLSFingerprint? = nil,
                      initialTimeout: Duration = .seconds(1), mtu: Int = 1200) throws -> (DTLSEndpoint, DTLSEndpoint, DTLSIdentity, DTLSIdentity) {
    let clientID = try DTLSIdentity(commonName: "recorder")
    let serverID = try DTLSIdentity(commonName: "key-distributor")
    let client = try DTLSEndpoint(role: .client, identity: clientID,
                                  expectedPeerFingerprint: clientPin ?? serverID.fingerprint, ektCiphers: clientEKT, mtu: mtu,
                                  initialRetransmitTimeout: initialTimeout, maximumRetransmitTimeout: initialTimeout * 8)
    let server = try DTLSEndpoint(role: .server, identity: serverID,
                                  expectedPeerFingerprint: serverPin ?? clientID.fingerprint, ektCiphers: serverEKT, mtu: mtu,
                                  initialRetransmitTimeout: initialTimeout, maximumRetransmitTimeout: initialTimeout * 8)
    return (client, server, clientID, serverID)
}

/// Checks that `keys` slices `keys.keyingMaterial` by the RFC 5764 §4.2 / RFC 8723 §10.1 layout.
private func expectLayout(_ keys: DTLSSRTPKeys, key k: Int, salt s: Int) {
    let m = keys.keyingMaterial.unsafeCopiedBytes
    #expect(m.count == 2 * (k + s))
    #expect(keys.clientWriteKey.unsafeCopiedBytes == Array(m[0 ..< k]))
    #expect(keys.serverWriteKey.unsafeCopiedBytes == Array(m[k ..< 2 * k]))
    #expect(keys.clientWriteSalt.unsafeCopiedBytes == Array(m[2 * k ..< 2 * k + s]))
    #expect(keys.serverWriteSalt.unsafeCopiedBytes == Array(m[2 * k + s ..< 2 * (k + s)]))
}

/// `true` when `needle` occurs in `haystack`.
private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count else { return false }
    return (0 ... haystack.count - needle.count).contains { Array(haystack[$0 ..< $0 + needle.count]) == needle }
}

/// A `Net.UDPSocket` on 127.0.0.1 with an ephemeral port, addressed by port number (tests only).
private final class LoopbackUDP {
    private let socket: UDPSocket
    var port: UInt16 { socket.localAddress.port }

    init() throws { socket = try UDPSocket(bindingTo: .loopback(port: 0)) }

    /// A port that was free a moment ago (bind port 0, read it back, close).
    static func freePort() throws -> UInt16 { try LoopbackUDP().port }

    func send(_ datagram: [UInt8], to port: UInt16) { try? socket.send(datagram, to: .loopback(port: port)) }

    /// One datagram and its source port, or nil if none arrived within `timeoutMs`.
    func receiveFrom(timeoutMs: Int32) -> ([UInt8], UInt16)? {
        guard let d = (try? socket.receive(timeout: .milliseconds(Int64(timeoutMs)))) ?? nil else { return nil }
        return (d.bytes, d.source.port)
    }

    /// One datagram, or nil if none arrived within `timeoutMs`.
    func receive(timeoutMs: Int32) -> [UInt8]? { receiveFrom(timeoutMs: timeoutMs)?.0 }
}

/// Milliseconds until `deadline` (at least 1, at most `cap`); `cap` when there is none.
private func millis(until deadline: ContinuousClock.Instant?, cap: Int32) -> Int32 {
    guard let deadline else { return cap }
    let (s, atto) = (deadline - .now).components
    let ms = s * 1000 + atto / 1_000_000_000_000_000
    return Int32(max(1, min(Int64(cap), ms)))
}

// MARK: - Tests

@Suite("DTLS endpoint")
struct DTLSEndpointTests {
    @Test("In memory: PERC mode via ext 39, both sides export the same 112 bytes, sliced as DOUBLE 0x0009")
    func inMemoryPERCHandshake() async throws {
        let (client, server, clientID, serverID) = try makePair()
        var clientHelloHasExt39 = false, serverHelloHasExt39 = false, largest = 0
        let r = try await pump(client: client, server: server) { toServer, d in
            largest = max(largest, d.count)
            // supported_ekt_ciphers: type 0x0027, length 3, list <02: 01 02> / length 1, selected 01.
            if toServer && contains(d, [0x00, 0x27, 0x00, 0x03, 0x02, 0x01, 0x02]) { clientHelloHasExt39 = true }
            if !toServer && contains(d, [0x00, 0x27, 0x00, 0x01, 0x01]) { serverHelloHasExt39 = true }
        }
        #expect(r.clientError == nil && r.serverError == nil)
        #expect(client.state == .connected && server.state == .connected)
        #expect(clientHelloHasExt39 && serverHelloHasExt39)
        #expect(largest <= 1200)

        let cn = try #require(client.negotiation), sn = try #require(server.negotiation)
        #expect(r.clientCompleted == cn && r.serverCompleted == sn)
        for n in [cn, sn] {
            #expect(n.srtpProfileID == SRTPProfile.aeadAes128Gcm.rawValue)
            #expect(n.isPERCMode)
            #expect(n.ektCipher == .aeskw128)
            #expect(n.cipherSuite.hasPrefix("ECDHE-ECDSA-AES"))
        }
        #expect(cn.peerFingerprint == serverID.fingerprint)
        #expect(sn.peerFingerprint == clientID.fingerprint)

        let ck = try client.exportSRTPKeys(), sk = try server.exportSRTPKeys()
        #expect(ck.keying == .double(.doubleAeadAes128Gcm))
        #expect(ck.keyingMaterial.count == 112)
        #expect(ck.keyingMaterial == sk.keyingMaterial)
        #expect(ck.clientWriteKey == sk.clientWriteKey && ck.serverWriteSalt == sk.serverWriteSalt)
        expectLayout(ck, key: 32, salt: 24)
        let m = ck.keyingMaterial.unsafeCopiedBytes
        let c = try #require(ck.clientWriteDouble), s = try #require(ck.serverWriteDouble)
        #expect(c.innerKey.unsafeCopiedBytes == Array(m[0 ..< 16]) && c.outerKey.unsafeCopiedBytes == Array(m[16 ..< 32]))
        #expect(s.innerKey.unsafeCopiedBytes == Array(m[32 ..< 48]) && s.outerKey.unsafeCopiedBytes == Array(m[48 ..< 64]))
        #expect(c.innerSalt.unsafeCopiedBytes == Array(m[64 ..< 76]) && c.outerSalt.unsafeCopiedBytes == Array(m[76 ..< 88]))
        #expect(s.innerSalt.unsafeCopiedBytes == Array(m[88 ..< 100]) && s.outerSalt.unsafeCopiedBytes == Array(m[100 ..< 112]))
        #expect(ck.clientWriteKey.description.contains("redacted"))
    }

    @Test("Without ext 39 (client offers none) the association keys AEAD_AES_128_GCM: 56 bytes, 16|16|12|12")
    func inMemoryPlainHandshake() async throws {
        let (client, server, _, _) = try makePair(clientEKT: [])
        let r = try await pump(client: client, server: server)
        #expect(r.clientError == nil && r.serverError == nil)
        let ck = try client.exportSRTPKeys(), sk = try server.exportSRTPKeys()
        #expect(client.negotiation?.isPERCMode == false && server.negotiation?.isPERCMode == false)
        #expect(ck.keying == .single(.aeadAes128Gcm))
        #expect(ck.keyingMaterial.count == 56 && ck.keyingMaterial == sk.keyingMaterial)
        #expect(ck.clientWriteDouble == nil)
        expectLayout(ck, key: 16, salt: 12)
    }

    @Test("The server selects the client's first EKT cipher it accepts; none acceptable means no answer")
    func ektCipherSelection() async throws {
        let (c1, s1, _, _) = try makePair(serverEKT: [.aeskw256])
        _ = try await pump(client: c1, server: s1)
        #expect(c1.negotiation?.ektCipher == .aeskw256 && s1.negotiation?.ektCipher == .aeskw256)
        #expect(try c1.exportSRTPKeys().keying == .double(.doubleAeadAes128Gcm))

        let (c2, s2, _, _) = try makePair(clientEKT: [.aeskw128], serverEKT: [.aeskw256])
        _ = try await pump(client: c2, server: s2)
        #expect(c2.state == .connected && s2.state == .connected)
        #expect(c2.negotiation?.isPERCMode == false && s2.negotiation?.isPERCMode == false)
        #expect(try c2.exportSRTPKeys().keyingMaterial.count == 56)
    }

    @Test("Over loopback UDP sockets on ephemeral ports", arguments: [false, true])
    func loopbackUDPHandshake(clientOnSecondSocket: Bool) throws {
        let (client, server, _, _) = try makePair()
        let first = try LoopbackUDP(), second = try LoopbackUDP()
        let (clientSocket, serverSocket) = clientOnSecondSocket ? (second, first) : (first, second)
        for d in try client.handshakeStart() { clientSocket.send(d, to: serverSocket.port) }
        let start = ContinuousClock.now
        while !(client.state == .connected && server.state == .connected), ContinuousClock.now - start < .seconds(30) {
            if let d = serverSocket.receive(timeoutMs: millis(until: server.nextTimeout, cap: 20)) {
                for out in try server.receive(datagram: d).datagrams { serverSocket.send(out, to: clientSocket.port) }
            }
            if let d = clientSocket.receive(timeoutMs: millis(until: client.nextTimeout, cap: 20)) {
                for out in try client.receive(datagram: d).datagrams { clientSocket.send(out, to: serverSocket.port) }
            }
            for out in try client.handleTimeout() { clientSocket.send(out, to: serverSocket.port) }
            for out in try server.handleTimeout() { serverSocket.send(out, to: clientSocket.port) }
        }
        #expect(client.state == .connected && server.state == .connected)
        let ck = try client.exportSRTPKeys(), sk = try server.exportSRTPKeys()
        #expect(ck.keyingMaterial.count == 112 && ck.keyingMaterial == sk.keyingMaterial)

        // Application data and close_notify travel the same way.
        for d in try client.send(applicationData: Array("hello".utf8)) { clientSocket.send(d, to: serverSocket.port) }
        let data = try #require(serverSocket.receive(timeoutMs: 1000))
        #expect(try server.receive(datagram: data).events == [.applicationData(Array("hello".utf8))])
        for d in server.close() { serverSocket.send(d, to: clientSocket.port) }
        let bye = try #require(clientSocket.receive(timeoutMs: 1000))
        #expect(try client.receive(datagram: bye).events == [.peerClosed])
        #expect(client.state == .closed)
    }

    @Test("A wrong pinned fingerprint fails the handshake on the pinning side with .fingerprintMismatch",
          arguments: [DTLSRole.client, .server])
    func fingerprintPinning(pinningSide: DTLSRole) async throws {
        let wrong = try DTLSIdentity(commonName: "someone else").fingerprint
        let (client, server, clientID, serverID) = try makePair(clientPin: pinningSide == .client ? wrong : nil,
                                                                serverPin: pinningSide == .server ? wrong : nil)
        let r = try await pump(client: client, server: server)
        let actual = pinningSide == .client ? serverID.fingerprint : clientID.fingerprint
        let pinError = pinningSide == .client ? r.clientError : r.serverError
        let peerError = pinningSide == .client ? r.serverError : r.clientError
        #expect(pinError == .fingerprintMismatch(expected: wrong, got: actual))
        // The peer hears the alert (bad_certificate) and fails with OpenSSL's text.
        guard case let .handshakeFailed(text)? = peerError else {
            Issue.record("peer error: \(String(describing: peerError))"); return
        }
        #expect(text.contains("bad certificate"))
        #expect(client.state == .failed && server.state == .failed)
        #expect(throws: DTLSError.self) { try client.exportSRTPKeys() }
    }

    @Test("With 20 % of datagrams dropped (seeded), retransmission on nextTimeout still completes",
          arguments: [UInt64(1), 2, 4, 6, 8])
    func lossyHandshake(seed: UInt64) async throws {
        // A 400-byte MTU fragments the certificate flights, so there is more to lose. Each of these
        // seeds drops at least one datagram of the exchange.
        let (client, server, _, _) = try makePair(initialTimeout: .milliseconds(40), mtu: 400)
        let start = ContinuousClock.now
        var largest = 0
        let r = try await pump(client: client, server: server, dropRate: 0.2, seed: seed, limit: .seconds(30)) { _, d in
            largest = max(largest, d.count)
        }
        #expect(r.clientError == nil && r.serverError == nil)
        #expect(client.state == .connected && server.state == .connected)
        #expect(try client.exportSRTPKeys().keyingMaterial == server.exportSRTPKeys().keyingMaterial)
        #expect(largest <= 400)
        #expect(r.dropped > 0 && r.retransmissionRounds > 0)
        #expect(ContinuousClock.now - start < .seconds(30))
        print("seed \(seed): delivered \(r.delivered), dropped \(r.dropped), timeout rounds \(r.retransmissionRounds)")
    }

    @Test("Everything lost: the client gives up with .timeout after OpenSSL's retransmission limit")
    func handshakeTimeout() async throws {
        let (client, server, _, _) = try makePair(initialTimeout: .milliseconds(5))
        _ = server
        _ = try client.handshakeStart()
        var failure: DTLSError?
        let start = ContinuousClock.now
        while failure == nil, ContinuousClock.now - start < .seconds(30) {
            guard let next = client.nextTimeout else { break }
            let wait = next - .now
            if wait > .zero { try await Task.sleep(for: wait) }
            do { _ = try client.handleTimeout() } catch { failure = error }
        }
        #expect(failure == .timeout)
        #expect(client.state == .failed)
    }

    @Test("Interop: our client against openssl s_server -dtls1_2 -use_srtp SRTP_AEAD_AES_128_GCM; exports match",
          .enabled(if: OpenSSLTool.available))
    func opensslServerInterop() throws {
        let serverID = try DTLSIdentity(commonName: "s_server")
        let files = try writePEMFiles(serverID)
        defer { try? FileManager.default.removeItem(at: files.dir) }
        let port = try LoopbackUDP.freePort()
        let server = try OpenSSLTool(["s_server", "-dtls1_2", "-accept", "127.0.0.1:\(port)", "-cert", files.cert,
                                      "-key", files.key, "-use_srtp", "SRTP_AEAD_AES_128_GCM",
                                      "-keymatexport", "EXTRACTOR-dtls_srtp", "-keymatexportlen", "56", "-naccept", "1"])
        defer { server.finish() }
        try #require(server.readUntil("ACCEPT", within: .seconds(15)), "s_server did not start: \(server.output)")

        let client = try DTLSEndpoint(role: .client, identity: DTLSIdentity(commonName: "recorder"),
                                      expectedPeerFingerprint: serverID.fingerprint,
                                      initialRetransmitTimeout: .milliseconds(200))
        let socket = try LoopbackUDP()
        for d in try client.handshakeStart() { socket.send(d, to: port) }
        let start = ContinuousClock.now
        while client.state == .handshaking, ContinuousClock.now - start < .seconds(30) {
            if let d = socket.receive(timeoutMs: millis(until: client.nextTimeout, cap: 50)) {
                for out in try client.receive(datagram: d).datagrams { socket.send(out, to: port) }
            }
            for out in try client.handleTimeout() { socket.send(out, to: port) }
        }
        #expect(client.state == .connected)
        let negotiation = try #require(client.negotiation)
        #expect(negotiation.srtpProfileID == SRTPProfile.aeadAes128Gcm.rawValue)
        #expect(!negotiation.isPERCMode)   // s_server ignores supported_ekt_ciphers
        let keys = try client.exportSRTPKeys()
        #expect(keys.keying == .single(.aeadAes128Gcm))

        try #require(server.readUntil("Keying material: ", within: .seconds(15)), "no keying material in: \(server.output)")
        let printed = try #require(server.keyingMaterial)
        #expect(printed.count == 56)
        #expect(keys.keyingMaterial.unsafeCopiedBytes == printed)
        for d in client.close() { socket.send(d, to: port) }
    }

    @Test("Interop: openssl s_client against our server; with a certificate exports match, without one we refuse",
          .enabled(if: OpenSSLTool.available), arguments: [true, false])
    func opensslClientInterop(clientSendsCertificate: Bool) throws {
        let clientID = try DTLSIdentity(commonName: "s_client")
        let files = try writePEMFiles(clientID)
        defer { try? FileManager.default.removeItem(at: files.dir) }
        let server = try DTLSEndpoint(role: .server, identity: DTLSIdentity(commonName: "key-distributor"),
                                      expectedPeerFingerprint: clientID.fingerprint,
                                      initialRetransmitTimeout: .milliseconds(200))
        let socket = try LoopbackUDP()
        let certArgs = clientSendsCertificate ? ["-cert", files.cert, "-key", files.key] : []
        let client = try OpenSSLTool(["s_client", "-dtls1_2", "-connect", "127.0.0.1:\(socket.port)",
                                      "-use_srtp", "SRTP_AEAD_AES_128_GCM",
                                      "-keymatexport", "EXTRACTOR-dtls_srtp", "-keymatexportlen", "56"] + certArgs)
        defer { client.finish() }

        var peerPort: UInt16?
        var failure: DTLSError?
        let start = ContinuousClock.now
        while server.state != .connected, failure == nil, ContinuousClock.now - start < .seconds(30) {
            if let (d, from) = socket.receiveFrom(timeoutMs: millis(until: server.nextTimeout, cap: 50)) {
                peerPort = from
                do {
                    for out in try server.receive(datagram: d).datagrams { socket.send(out, to: from) }
                } catch {
                    failure = error
                    for out in server.drainOutgoing() { socket.send(out, to: from) }
                }
            }
            if let peerPort { for out in try server.handleTimeout() { socket.send(out, to: peerPort) } }
        }
        guard clientSendsCertificate else {
            guard case let .handshakeFailed(text)? = failure else { Issue.record("expected a failure, got \(String(describing: failure))"); return }
            #expect(text.contains("peer did not return a certificate"))
            return
        }
        #expect(failure == nil && server.state == .connected)
        #expect(server.negotiation?.peerFingerprint == clientID.fingerprint)
        let keys = try server.exportSRTPKeys()
        try #require(client.readUntil("Keying material: ", within: .seconds(15)), "no keying material in: \(client.output)")
        #expect(keys.keyingMaterial.unsafeCopiedBytes == client.keyingMaterial)
    }
}

@Suite("DTLS identity and fingerprint")
struct DTLSIdentityTests {
    @Test("Fingerprints print like SDP and parse back; malformed text is rejected")
    func fingerprintFormat() throws {
        let id = try DTLSIdentity()
        let text = id.fingerprint.description
        #expect(text.hasPrefix("sha-256 "))
        #expect(text.count == "sha-256 ".count + 32 * 3 - 1)
        #expect(text.dropFirst(8).allSatisfy { $0 == ":" || $0.isNumber || ("A" ... "F").contains($0) })
        #expect(try DTLSFingerprint(parsing: text) == id.fingerprint)
        #expect(try DTLSFingerprint(parsing: "SHA-256  " + id.fingerprint.hexDigest.lowercased()) == id.fingerprint)
        #expect(try DTLSFingerprint(parsing: id.fingerprint.hexDigest) == id.fingerprint)
        for bad in ["", "sha-1 AB:CD", "sha-256 AB:CD", "sha-256 " + id.fingerprint.hexDigest + ":00",
                    "sha-256 " + id.fingerprint.hexDigest.replacingOccurrences(of: ":", with: ""),
                    "sha-256 " + String(id.fingerprint.hexDigest.dropLast()) + "G"] {
            #expect(throws: DTLSError.invalidFingerprint(bad)) { try DTLSFingerprint(parsing: bad) }
        }
        #expect(try DTLSIdentity().fingerprint != id.fingerprint)
    }

    @Test("PEM export and import keep the certificate and key; a foreign key is rejected")
    func pemRoundTrip() throws {
        let id = try DTLSIdentity(commonName: "recorder")
        #expect(id.certificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----"))
        #expect(String(decoding: id.privateKeyPEM.unsafeCopiedBytes, as: UTF8.self).hasPrefix("-----BEGIN PRIVATE KEY-----"))
        let loaded = try DTLSIdentity(certificatePEM: Array(id.certificatePEM.utf8), privateKeyPEM: id.privateKeyPEM)
        #expect(loaded.fingerprint == id.fingerprint)
        #expect(loaded.certificateDER == id.certificateDER && !id.certificateDER.isEmpty)

        let other = try DTLSIdentity()
        #expect(throws: DTLSError.keyDoesNotMatchCertificate) {
            try DTLSIdentity(certificatePEM: Array(id.certificatePEM.utf8), privateKeyPEM: other.privateKeyPEM)
        }
        #expect(throws: DTLSError.self) { try DTLSIdentity(certificatePEM: "garbage", privateKeyPEM: "garbage") }
    }

    @Test("A loaded identity works in a handshake")
    func loadedIdentityHandshake() async throws {
        let original = try DTLSIdentity()
        let loaded = try DTLSIdentity(certificatePEM: Array(original.certificatePEM.utf8), privateKeyPEM: original.privateKeyPEM)
        let serverID = try DTLSIdentity()
        let client = try DTLSEndpoint(role: .client, identity: loaded, expectedPeerFingerprint: serverID.fingerprint)
        let server = try DTLSEndpoint(role: .server, identity: serverID, expectedPeerFingerprint: original.fingerprint)
        let r = try await pump(client: client, server: server)
        #expect(r.clientError == nil && r.serverError == nil && server.state == .connected)
    }

    @Test("Non-DTLS datagrams are refused by their first byte (RFC 7983)")
    func demux() throws {
        let (_, server, _, _) = try makePair()
        #expect(throws: DTLSError.notDTLS(.rtp)) { try server.receive(datagram: [0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]) }
        #expect(throws: DTLSError.notDTLS(.stun)) { try server.receive(datagram: [0x00, 0x01, 0, 0]) }
        #expect(throws: DTLSError.invalidState(operation: "exportSRTPKeys", state: .idle)) { try server.exportSRTPKeys() }
    }

    @Test("Record framing packs whole records up to the MTU and never splits one")
    func recordFraming() {
        func record(_ n: Int) -> [UInt8] { [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, UInt8(n >> 8), UInt8(n & 0xFF)] + [UInt8](repeating: 7, count: n) }
        let a = record(500), b = record(600), c = record(1100)
        let out = DTLSRecordFraming.datagrams(from: a + b + c, mtu: 1200)
        #expect(out == [a + b, c])
        #expect(DTLSRecordFraming.datagrams(from: [], mtu: 1200).isEmpty)
        #expect(DTLSRecordFraming.datagrams(from: [1, 2, 3], mtu: 1200) == [[1, 2, 3]])
    }
}
