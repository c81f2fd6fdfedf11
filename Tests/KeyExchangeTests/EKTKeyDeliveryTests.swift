import EKT
import Foundation
@testable import KeyExchange
import SRTP
import Testing
import TestSupport

// The ekt_key handshake message (RFC 8870 §5.2.2) on epoch-1 records outside OpenSSL, its
// RFC 9147 §7 ACK, retransmission until acknowledged, and the record layer it rests on.

// MARK: - Helpers

/// Two endpoints joined by an in-memory link that drops datagrams at a seeded rate and runs
/// both retransmission timers. Every event either side reports is kept, in order.
private final class Link {
    let client: DTLSEndpoint
    let server: DTLSEndpoint
    var toServer: [[UInt8]] = []
    var toClient: [[UInt8]] = []
    var clientEvents: [DTLSEvent] = []
    var serverEvents: [DTLSEvent] = []
    var clientError: DTLSError?
    var serverError: DTLSError?
    var dropped = 0
    var delivered = 0
    private let dropRate: Double
    private var rng: SplitMix64
    /// Rewrites (or, returning nil, swallows) datagrams for the client: tampering tests.
    var intercept: ([UInt8]) -> [UInt8]? = { $0 }

    init(client: DTLSEndpoint, server: DTLSEndpoint, dropRate: Double = 0, seed: UInt64 = 1) {
        self.client = client
        self.server = server
        self.dropRate = dropRate
        rng = SplitMix64(seed: seed)
    }

    /// Moves datagrams until `done()` holds, a side fails, or `limit` passes.
    func run(limit: Duration = .seconds(30), until done: () -> Bool) async throws {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit, !done(), clientError == nil, serverError == nil {
            if toServer.isEmpty && toClient.isEmpty {
                guard let next = [client.nextTimeout, server.nextTimeout].compactMap({ $0 }).min() else { return }
                let wait = next - .now
                if wait > .zero { try await Task.sleep(for: wait) }
                do { toServer += try client.handleTimeout() } catch { clientError = error }
                do { toClient += try server.handleTimeout() } catch { serverError = error }
                continue
            }
            let forServer = toServer; toServer = []
            for d in forServer where !drop() {
                do {
                    let out = try server.receive(datagram: d)
                    toClient += out.datagrams; serverEvents += out.events
                } catch { serverError = error }
            }
            let forClient = toClient; toClient = []
            for d in forClient where !drop() {
                guard let d = intercept(d) else { continue }
                do {
                    let out = try client.receive(datagram: d)
                    toServer += out.datagrams; clientEvents += out.events
                } catch { clientError = error }
            }
        }
    }

    func handshake() async throws {
        toServer = try client.handshakeStart()
        try await run { client.state == .connected && server.state == .connected }
    }

    private func drop() -> Bool {
        if dropRate > 0 && Double.random(in: 0 ..< 1, using: &rng) < dropRate { dropped += 1; return true }
        delivered += 1
        return false
    }

    var received: [EKTKeyMessage] { clientEvents.compactMap { if case let .ektKeyReceived(k) = $0 { k } else { nil } } }
    var acknowledged: [UInt16] { serverEvents.compactMap { if case let .ektKeyAcknowledged(spi) = $0 { spi } else { nil } } }
}

private func makeEndpoints(initialTimeout: Duration = .milliseconds(40), mtu: Int = 1200,
                           serverEKT: [EKTCipher] = [.aeskw128, .aeskw256],
                           suites: String = DTLSContext.cipherList) throws -> (DTLSEndpoint, DTLSEndpoint) {
    let clientID = try DTLSIdentity(commonName: "endpoint"), serverID = try DTLSIdentity(commonName: "kd")
    let client = try DTLSEndpoint(context: DTLSContext(role: .client, identity: clientID, cipherSuites: suites),
                                  expectedPeerFingerprint: serverID.fingerprint, mtu: mtu,
                                  initialRetransmitTimeout: initialTimeout, maximumRetransmitTimeout: initialTimeout * 8)
    let server = try DTLSEndpoint(context: DTLSContext(role: .server, identity: serverID, ektCiphers: serverEKT, cipherSuites: suites),
                                  expectedPeerFingerprint: clientID.fingerprint, mtu: mtu,
                                  initialRetransmitTimeout: initialTimeout, maximumRetransmitTimeout: initialTimeout * 8)
    return (client, server)
}

private func ektKey(spi: UInt16, seed: UInt64 = 7) throws -> EKTKeyMessage {
    var rng = SplitMix64(seed: seed &+ UInt64(spi))
    return try EKTKeyMessage(ektKeyValue: SecretBytes(rng.bytes(16)), srtpMasterSalt: SecretBytes(rng.bytes(12)),
                             spi: spi, ttl: 3600)
}

// MARK: - Byte layouts

@Suite("ekt_key on the wire: handshake framing, ACK, record header")
struct EKTKeyWireTests {
    @Test("An EKTKey handshake message is msg_type 26, uint24 length, message_seq, offset 0, fragment = length, body")
    func handshakeLayout() throws {
        let key = try EKTKeyMessage(ektKeyValue: SecretBytes(Array(0x00 ... 0x0F)), srtpMasterSalt: SecretBytes(Array(0xA0 ... 0xAB)),
                                    spi: 0x1234, ttl: 86_400)
        let message = DTLSHandshakeMessage(messageType: EKTKeyMessage.handshakeType, messageSequence: 6, body: key.serialized())
        // Written out by hand: RFC 6347 §4.2.2 handshake header, then RFC 8870 §5.2.2 EKTKey.
        let expected: [UInt8] = [
            0x1A,                   // msg_type ekt_key (26)
            0x00, 0x00, 0x25,       // length 37
            0x00, 0x06,             // message_seq 6
            0x00, 0x00, 0x00,       // fragment_offset 0
            0x00, 0x00, 0x25,       // fragment_length 37
            0x00, 0x10, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
            0x00, 0x0C, 0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB,
            0x12, 0x34,             // ekt_spi
            0x01, 0x51, 0x80,       // ekt_ttl 86400
        ]
        #expect(message.serialized() == expected)
        let parsed = try DTLSHandshakeMessage(parsing: expected)
        #expect(parsed == message)
        #expect(try EKTKeyMessage(parsing: parsed.body) == key)
    }

    @Test("A 32-byte AESKW_256 key takes a 0x0020 length and the message grows to 53 bytes of body")
    func handshakeLayout256() throws {
        let key = try EKTKeyMessage(ektKeyValue: SecretBytes([UInt8](repeating: 0x5A, count: 32)),
                                    srtpMasterSalt: SecretBytes([UInt8](repeating: 0xC3, count: 12)), spi: 1, ttl: 0xFF_FFFF)
        let bytes = DTLSHandshakeMessage(messageType: 26, messageSequence: 0x0102, body: key.serialized()).serialized()
        #expect(Array(bytes[0 ..< 12]) == [0x1A, 0x00, 0x00, 0x35, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x35])
        #expect(Array(bytes[12 ..< 14]) == [0x00, 0x20])
        #expect(Array(bytes.suffix(5)) == [0x00, 0x01, 0xFF, 0xFF, 0xFF])
    }

    @Test("Fragments, short headers and length mismatches are typed errors", arguments: [
        [UInt8](repeating: 0, count: 11),
        [0x1A, 0x00, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0xAA],        // offset 1
        [0x1A, 0x00, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xAA],        // body short
        [0x1A, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xAA, 0xBB],  // body long
    ])
    func malformedHandshake(bytes: [UInt8]) {
        #expect(throws: DTLSError.self) { try DTLSHandshakeMessage(parsing: bytes) }
    }

    @Test("An ACK is a 2-byte length and 16-byte (epoch, sequence) record numbers (RFC 9147 §7)")
    func ackLayout() throws {
        let ack = DTLSAck(records: [.init(epoch: 1, sequence: 0x8000_0000_0000), .init(epoch: 1, sequence: 0x8000_0000_0001)])
        let expected: [UInt8] = [0x00, 0x20,
                                 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x00, 0x80, 0, 0, 0, 0, 0,
                                 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x00, 0x80, 0, 0, 0, 0, 1]
        #expect(ack.serialized() == expected)
        #expect(try DTLSAck(parsing: expected) == ack)
        #expect(try DTLSAck(parsing: [0x00, 0x00]).records.isEmpty)
        #expect(throws: DTLSError.self) { try DTLSAck(parsing: [0x00]) }
        #expect(throws: DTLSError.self) { try DTLSAck(parsing: [0x00, 0x10] + [UInt8](repeating: 0, count: 15)) }
        #expect(throws: DTLSError.self) { try DTLSAck(parsing: [0x00, 0x08] + [UInt8](repeating: 0, count: 8)) }
    }

    @Test("Record header: epoch ‖ 48-bit sequence, and AAD = seq_num ‖ type ‖ version ‖ plaintext length")
    func recordHeader() throws {
        let h = DTLSRecordHeader(contentType: 22, epoch: 1, sequence: 0x8000_0000_0005, fragmentLength: 0x0041)
        var bytes: [UInt8] = []
        h.write(to: &bytes)
        #expect(bytes == [0x16, 0xFE, 0xFD, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x41])
        #expect(DTLSRecordHeader(bytes, at: 0) == h)
        #expect(h.additionalData(plaintextLength: 0x19) == [0x00, 0x01, 0x80, 0, 0, 0, 0, 0x05, 0x16, 0xFE, 0xFD, 0x00, 0x19])
        #expect(DTLSRecordHeader(Array(bytes.prefix(12)), at: 0) == nil)
        // Two whole records and a trailing partial one.
        let datagram = bytes + [UInt8](repeating: 0xEE, count: 0x41) + [0x17, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 9, 0, 2, 0xAB, 0xCD] + [0x15, 0xFE]
        #expect(DTLSRecordHeader.records(in: datagram) == [0 ..< 78, 78 ..< 93])
    }
}

// MARK: - Delivery

@Suite("ekt_key delivery over a DTLS 1.2 association")
struct EKTKeyDeliveryTests {
    @Test("The key block matches OpenSSL's: a record we seal is read by OpenSSL, and one OpenSSL seals opens with ours",
          arguments: ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"])
    func keyBlockAgreesWithOpenSSL(suite: String) async throws {
        let (client, server) = try makeEndpoints(suites: suite)
        let link = Link(client: client, server: server)
        try await link.handshake()
        #expect(client.negotiation?.cipherSuite == suite)

        // Our server-side sealer → the client's OpenSSL as application data (content type 23).
        let serverRecords = try server.epochOneRecords()
        let sealed = try #require(serverRecords.seal(contentType: 23, plaintext: Array("sealed by percrec".utf8)))
        let out = try client.receive(datagram: sealed.record)
        #expect(out.events == [.applicationData(Array("sealed by percrec".utf8))])

        // OpenSSL's client-side application data → our server-side opener.
        let fromOpenSSL = try client.send(applicationData: Array("sealed by OpenSSL".utf8))
        let record = try #require(fromOpenSSL.first)
        let opened = try #require(serverRecords.open(record, record: 0 ..< record.count))
        #expect(opened.plaintext == Array("sealed by OpenSSL".utf8))
        #expect(opened.header.contentType == 23 && opened.header.epoch == 1 && opened.header.sequence < 16)
    }

    @Test("The server sends EKTKey, the client reports it once and ACKs, the server stops retransmitting")
    func delivery() async throws {
        let (client, server) = try makeEndpoints()
        let link = Link(client: client, server: server)
        try await link.handshake()
        let key = try ektKey(spi: 0x0101)
        var sawEKTRecord = false
        link.intercept = { d in
            if d.first == 22 && d[3] == 0 && d[4] == 1 && d[5] == 0x80 { sawEKTRecord = true }   // epoch 1, our range
            return d
        }
        link.toClient = try server.sendEKTKey(key)
        #expect(server.ektKeyPending)
        try await link.run { !server.ektKeyPending }
        #expect(link.clientError == nil && link.serverError == nil)
        #expect(sawEKTRecord)
        #expect(link.received == [key])
        #expect(link.acknowledged == [0x0101])
        #expect(client.state == .connected && server.state == .connected)
        #expect(server.nextTimeout == nil || server.nextTimeout.map { $0 > .now + .milliseconds(20) } == true)
        // Application data still flows both ways: OpenSSL never saw the ekt_key or the ACK.
        link.toServer = try client.send(applicationData: [1, 2, 3])
        link.toClient = try server.send(applicationData: [4, 5])
        try await link.run { link.serverEvents.contains(.applicationData([1, 2, 3])) && link.clientEvents.contains(.applicationData([4, 5])) }
        #expect(link.serverEvents.contains(.applicationData([1, 2, 3])))
        #expect(link.clientEvents.contains(.applicationData([4, 5])))
    }

    @Test("A lost ACK means a retransmission with a new record number; the client ACKs again but reports the key once")
    func retransmissionDeduplicated() async throws {
        let (client, server) = try makeEndpoints(initialTimeout: .milliseconds(100))
        let link = Link(client: client, server: server)
        try await link.handshake()
        let key = try ektKey(spi: 7)
        link.toClient = try server.sendEKTKey(key)
        // Deliver to the client but lose its ACK.
        try await link.run { !link.toServer.isEmpty }
        #expect(link.received == [key])
        link.toServer = []
        try await link.run(limit: .seconds(30)) { !server.ektKeyPending }
        #expect(link.clientError == nil && link.serverError == nil, "client \(String(describing: link.clientError)), server \(String(describing: link.serverError))")
        #expect(server.ektKeyRetransmissions >= 1)
        #expect(link.received == [key])          // reported once
        #expect(link.acknowledged == [7])
    }

    @Test("A rekey: a second EKTKey with a new SPI arrives after the first, in order")
    func rekey() async throws {
        let (client, server) = try makeEndpoints()
        let link = Link(client: client, server: server)
        try await link.handshake()
        let first = try ektKey(spi: 1), second = try ektKey(spi: 2)
        link.toClient = try server.sendEKTKey(first)
        try await link.run { !server.ektKeyPending }
        link.toClient = try server.sendEKTKey(second)
        try await link.run { !server.ektKeyPending }
        #expect(link.received.map(\.spi) == [1, 2])
        #expect(link.received == [first, second])
        #expect(link.acknowledged == [1, 2])
    }

    @Test("Handshake and EKTKey delivery both complete with 20 % of datagrams dropped (seeded)",
          arguments: [UInt64(1), 2, 3, 5, 8, 13])
    func lossy(seed: UInt64) async throws {
        let (client, server) = try makeEndpoints(initialTimeout: .milliseconds(30), mtu: 400)
        let link = Link(client: client, server: server, dropRate: 0.2, seed: seed)
        try await link.handshake()
        #expect(client.state == .connected && server.state == .connected)
        let keys = try (1 ... 3).map { try ektKey(spi: UInt16($0), seed: seed) }
        for key in keys {
            link.toClient += try server.sendEKTKey(key)
            try await link.run { !server.ektKeyPending }
            #expect(!server.ektKeyPending)
        }
        #expect(link.clientError == nil && link.serverError == nil)
        #expect(link.received == keys)
        #expect(link.acknowledged == [1, 2, 3])
        #expect(link.dropped > 0)
        print("seed \(seed): delivered \(link.delivered), dropped \(link.dropped), EKTKey retransmissions \(server.ektKeyRetransmissions)")
    }

    @Test("A tampered ekt_key record is not reported or acknowledged; the retransmission gets through")
    func tampered() async throws {
        let (client, server) = try makeEndpoints()
        let link = Link(client: client, server: server)
        try await link.handshake()
        var tamperedOnce = false
        link.intercept = { d in
            guard !tamperedOnce, d.first == 22, d[5] == 0x80 else { return d }
            tamperedOnce = true
            var t = d
            t[t.count - 1] ^= 0x01   // the GCM tag
            return t
        }
        let key = try ektKey(spi: 9)
        link.toClient = try server.sendEKTKey(key)
        try await link.run { !server.ektKeyPending }
        #expect(tamperedOnce)
        #expect(client.state == .connected)
        #expect(server.ektKeyRetransmissions >= 1)
        #expect(link.received == [key])
    }

    @Test("No ACK ever: the server gives up after ektKeyMaxTransmissions with .ektKeyNotAcknowledged")
    func neverAcknowledged() async throws {
        let (client, server) = try makeEndpoints(initialTimeout: .milliseconds(2))
        let link = Link(client: client, server: server)
        try await link.handshake()
        link.intercept = { _ in nil }
        link.toClient = try server.sendEKTKey(try ektKey(spi: 3))
        try await link.run(limit: .seconds(30)) { false }
        #expect(link.serverError == .ektKeyNotAcknowledged(spi: 3))
        #expect(server.state == .failed)
        #expect(server.ektKeyRetransmissions == DTLSEndpoint.ektKeyMaxTransmissions - 1)
    }

    @Test("Without supported_ekt_ciphers no EKTKey may be sent; a client may not send one at all")
    func notNegotiated() async throws {
        let (client, server) = try makeEndpoints(serverEKT: [])
        let link = Link(client: client, server: server)
        try await link.handshake()
        #expect(server.negotiation?.ektCipher == nil)
        #expect(throws: DTLSError.ektNotNegotiated) { try server.sendEKTKey(try ektKey(spi: 1)) }
        #expect(throws: DTLSError.self) { try client.sendEKTKey(try ektKey(spi: 1)) }
    }
}
