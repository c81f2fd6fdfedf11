import EKT
import Foundation
import KeyExchange
@testable import Lab
import SRTP
import Testing
import TestSupport

// The reference Key Distributor driven in memory: a stand-in Media Distributor moves each
// endpoint's DTLS datagrams in and out of TunneledDtls messages, as the real one does over UDP.

/// A stand-in MD: one tunnel, one association per endpoint, optional seeded loss on the UDP legs.
private final class MiniConference {
    let kd: KeyDistributor
    var clients: [AssociationID: KeyPlaneClient] = [:]
    var names: [AssociationID: String] = [:]
    var mediaKeys: [AssociationID: TunnelMessage.MediaKeys] = [:]
    var tunnelBytesToMD: [UInt8] = []
    var events: [AssociationID: [KeyPlaneEvent]] = [:]
    var clientErrors: [AssociationID: DTLSError] = [:]
    var logs: [LogLine] = []
    private var toKD: [(AssociationID, [UInt8])] = []
    private let dropRate: Double
    private var rng: SplitMix64
    private(set) var dropped = 0
    /// Drops the KD's datagrams to an endpoint that this says to (association, DTLS datagram).
    var dropToClient: ((AssociationID, [UInt8]) -> Bool)?
    private(set) var filtered = 0

    init(config: KeyDistributorConfig, kdIdentity: DTLSIdentity, dropRate: Double = 0, seed: UInt64 = 1) throws {
        let box = LogBox()
        kd = try KeyDistributor(config: config, identity: kdIdentity, initialRetransmitTimeout: .milliseconds(30),
                                joinGrace: .milliseconds(200),
                                log: { box.lines.append($0) })
        self.logBox = box
        self.dropRate = dropRate
        rng = SplitMix64(seed: seed)
        _ = kd.receive(.supportedProfiles(try .init(protectionProfiles: [0x0009])), on: 1)
    }
    private let logBox: LogBox
    var logLines: [LogLine] { logBox.lines }

    @discardableResult
    func join(_ name: String, identity: DTLSIdentity, kd kdFP: DTLSFingerprint, conference: String = "c1",
              ssrcs: [UInt32]) throws -> AssociationID {
        let id = AssociationID.random()
        let client = try KeyPlaneClient(identity: identity, kdFingerprint: kdFP, conference: conference, ssrcs: ssrcs,
                                        initialRetransmitTimeout: .milliseconds(30), maximumRetransmitTimeout: .milliseconds(240))
        clients[id] = client
        names[id] = name
        for d in try client.start() { toKD.append((id, d)) }
        return id
    }

    /// Turns on an endpoint's keepalive Joins (the recorder's are on from the start).
    func enableKeepalives(_ id: AssociationID, every interval: Duration) throws {
        guard let client = clients[id] else { return }
        client.keepaliveInterval = interval
        for d in try client.handleTimeout() { toKD.append((id, d)) }   // arms the first one
    }

    func leave(_ id: AssociationID) {
        guard let client = clients[id] else { return }
        for d in client.leave() { toKD.append((id, d)) }
    }

    /// Runs until `done()` or `limit`. The limit counts the loop's own time (its work and the
    /// naps it asks for), not time spent waiting for a thread after a nap: in a full parallel
    /// test run, CPU-bound suites can hold the cooperative pool for many seconds.
    func run(limit: Duration = .seconds(10), until done: () -> Bool) async throws {
        var spent: Duration = .zero
        while spent < limit, !done() {
            let iterationStart = ContinuousClock.now
            var overslept: Duration = .zero
            defer { spent += ContinuousClock.now - iterationStart - overslept }
            if toKD.isEmpty {
                let next = ([kd.nextTimeout] + clients.values.map(\.nextTimeout)).compactMap { $0 }.min()
                guard let next else { return }
                let wait = next - .now
                if wait > .zero {
                    let nap = min(wait, .milliseconds(50))
                    let before = ContinuousClock.now
                    try await Task.sleep(for: nap)
                    overslept = max(.zero, ContinuousClock.now - before - nap)
                }
                deliverToMD(kd.handleTimeouts())
                for (id, c) in clients where c.state == .handshaking || c.state == .connected {
                    do { for d in try c.handleTimeout() { toKD.append((id, d)) } } catch { clientErrors[id] = error }
                }
                continue
            }
            let batch = toKD; toKD = []
            for (id, d) in batch where !lose() {
                let t = try TunnelMessage.TunneledDtls(associationID: id, dtlsMessage: d)
                deliverToMD(kd.receive(.tunneledDtls(t), on: 1))
            }
        }
    }

    private func deliverToMD(_ out: [KeyDistributor.Outgoing]) {
        for o in out {
            tunnelBytesToMD += o.message.serialized()
            switch o.message {
            case let .mediaKeys(m): mediaKeys[m.associationID] = m
            case let .tunneledDtls(t):
                guard let client = clients[t.associationID], !lose() else { continue }
                if let drop = dropToClient, drop(t.associationID, t.dtlsMessage) { filtered += 1; continue }
                do {
                    let (datagrams, evs) = try client.receive(datagram: t.dtlsMessage)
                    for d in datagrams { toKD.append((t.associationID, d)) }
                    events[t.associationID, default: []] += evs
                } catch { clientErrors[t.associationID] = error }
            default: break
            }
        }
    }

    private func lose() -> Bool {
        if dropRate > 0 && Double.random(in: 0 ..< 1, using: &rng) < dropRate { dropped += 1; return true }
        return false
    }

    /// Every member's client holds the KD's current key and the full roster.
    func converged(_ conference: String = "c1") -> Bool {
        guard let spi = kd.currentSPI(of: conference) else { return false }
        let log = kd.roster(of: conference)
        let members = clients.filter { $0.value.state == .connected }
        return !members.isEmpty && members.values.allSatisfy { $0.currentEKTKey?.spi == spi && $0.roster == log }
    }
}

private final class LogBox: @unchecked Sendable { var lines: [LogLine] = [] }

private struct Cast {
    let kd: DTLSIdentity
    let alice: DTLSIdentity, bob: DTLSIdentity, carol: DTLSIdentity, recorder: DTLSIdentity, stranger: DTLSIdentity

    init() throws {
        kd = try DTLSIdentity(commonName: "kd")
        alice = try DTLSIdentity(commonName: "alice")
        bob = try DTLSIdentity(commonName: "bob")
        carol = try DTLSIdentity(commonName: "carol")
        recorder = try DTLSIdentity(commonName: "recorder")
        stranger = try DTLSIdentity(commonName: "stranger")
    }

    func config(rekeyOnJoin: Bool = true, policy: ConferencePolicyConfig = .init()) -> KeyDistributorConfig {
        KeyDistributorConfig(listen: "127.0.0.1:0", mediaDistributors: [], conferences: [
            ConferenceConfig(id: "c1", rekeyOnJoin: rekeyOnJoin, policy: policy, participants: [
                InvitedParticipant(name: "alice", fingerprint: alice.fingerprint.description),
                InvitedParticipant(name: "bob", fingerprint: bob.fingerprint.description),
                InvitedParticipant(name: "carol", fingerprint: carol.fingerprint.description),
                InvitedParticipant(name: "archive", fingerprint: recorder.fingerprint.description, role: .recorder),
            ]),
            ConferenceConfig(id: "c2", participants: [
                InvitedParticipant(name: "alice", fingerprint: alice.fingerprint.description),
            ]),
        ])
    }
}

@Suite("Key Distributor (in memory)")
struct KeyDistributorTests {
    @Test("Three participants and a recorder join: MediaKeys carry only outer keys, all hold one EKTKey and the roster")
    func joinAll() async throws {
        let cast = try Cast()
        let conf = try MiniConference(config: cast.config(), kdIdentity: cast.kd)
        let a = try conf.join("alice", identity: cast.alice, kd: cast.kd.fingerprint, ssrcs: [0x1111, 0x1112])
        try await conf.run { conf.converged() }
        let b = try conf.join("bob", identity: cast.bob, kd: cast.kd.fingerprint, ssrcs: [0x2221])
        let c = try conf.join("carol", identity: cast.carol, kd: cast.kd.fingerprint, ssrcs: [0x3331])
        let r = try conf.join("archive", identity: cast.recorder, kd: cast.kd.fingerprint, ssrcs: [])
        try await conf.run { conf.converged() && conf.kd.roster(of: "c1").count == 4 && conf.kd.members(of: "c1").count == 4 }

        #expect(conf.clientErrors.isEmpty)
        #expect(conf.kd.members(of: "c1") == ["alice", "archive", "bob", "carol"])
        #expect(conf.converged())
        let log = conf.kd.roster(of: "c1")
        #expect(log.map(\.kind) == [.join, .join, .join, .join])
        #expect(log.map(\.sequence) == [1, 2, 3, 4])
        #expect(log.first { $0.displayName == "alice" }?.ssrcs == [0x1111, 0x1112])
        #expect(log.first { $0.displayName == "archive" }?.role == .recorder)
        #expect(log.first { $0.displayName == "bob" }?.fingerprint == cast.bob.fingerprint)
        // One rekey per join after the first: SPIs 1…4; every client ends on SPI 4.
        #expect(conf.kd.ektKeyHistory(of: "c1").map(\.spi) == [1, 2, 3, 4])
        for id in [a, b, c, r] { #expect(conf.clients[id]?.currentEKTKey == conf.kd.ektKeyHistory(of: "c1").last) }

        // MediaKeys: the outer (HBH) halves of each association's double keys, never the inner ones.
        for id in [a, b, c, r] {
            let mk = try #require(conf.mediaKeys[id])
            let keys = try #require(conf.clients[id]?.srtpKeys)
            let cw = try #require(keys.clientWriteDouble), sw = try #require(keys.serverWriteDouble)
            #expect(mk.protectionProfile == 0x0009)
            #expect(mk.clientWriteMasterKey == cw.outerKey && mk.serverWriteMasterKey == sw.outerKey)
            #expect(mk.clientWriteMasterSalt == cw.outerSalt && mk.serverWriteMasterSalt == sw.outerSalt)
            // The MD's tunnel never carries an E2E key, an EKTKey or a master salt in the clear.
            for secret in [cw.innerKey, sw.innerKey] {
                #expect(!conf.tunnelBytesToMD.contains(subsequence: secret.unsafeCopiedBytes))
            }
        }
        for key in conf.kd.ektKeyHistory(of: "c1") {
            #expect(!conf.tunnelBytesToMD.contains(subsequence: key.ektKeyValue.unsafeCopiedBytes))
            #expect(!conf.tunnelBytesToMD.contains(subsequence: key.srtpMasterSalt.unsafeCopiedBytes))
        }
    }

    @Test("A leave and a join each rekey with a new SPI, and the new EKTKey reaches every remaining endpoint")
    func rekeyReachesEveryone() async throws {
        let cast = try Cast()
        let conf = try MiniConference(config: cast.config(), kdIdentity: cast.kd)
        let a = try conf.join("alice", identity: cast.alice, kd: cast.kd.fingerprint, ssrcs: [1])
        let b = try conf.join("bob", identity: cast.bob, kd: cast.kd.fingerprint, ssrcs: [2])
        let r = try conf.join("archive", identity: cast.recorder, kd: cast.kd.fingerprint, ssrcs: [])
        try await conf.run { conf.converged() && conf.kd.members(of: "c1").count == 3 }
        let before = try #require(conf.kd.currentSPI(of: "c1"))

        conf.leave(b)
        try await conf.run { conf.kd.members(of: "c1").count == 2 && conf.converged() }
        let afterLeave = try #require(conf.kd.currentSPI(of: "c1"))
        #expect(afterLeave != before)
        for id in [a, r] { #expect(conf.clients[id]?.currentEKTKey?.spi == afterLeave) }
        #expect(conf.clients[b]?.currentEKTKey?.spi == before)   // the leaver never sees the new key
        #expect(conf.kd.roster(of: "c1").last?.kind == .leave)
        #expect(conf.kd.roster(of: "c1").last?.displayName == "bob")

        let c = try conf.join("carol", identity: cast.carol, kd: cast.kd.fingerprint, ssrcs: [3])
        try await conf.run { conf.kd.members(of: "c1").count == 3 && conf.converged() }
        let afterJoin = try #require(conf.kd.currentSPI(of: "c1"))
        #expect(afterJoin != afterLeave)
        for id in [a, r, c] { #expect(conf.clients[id]?.currentEKTKey == conf.kd.ektKeyHistory(of: "c1").last) }
        // The recorder saw every epoch since it joined, in order.
        let recorderSPIs = conf.clients[r]?.ektKeys.map(\.spi) ?? []
        #expect(Array(recorderSPIs.suffix(2)) == [afterLeave, afterJoin])
        #expect(conf.kd.counters.rekeys >= 2)
        #expect(conf.clients[r]?.roster.map(\.kind) == [.join, .join, .join, .leave, .join])
        #expect(conf.clients[r]?.roster.map(\.ssrcs) == [[1], [2], [], [2], [3]])
    }

    @Test("An unknown fingerprint is refused during the handshake with a clear log line; nothing is keyed for it")
    func strangerRefused() async throws {
        let cast = try Cast()
        let conf = try MiniConference(config: cast.config(), kdIdentity: cast.kd)
        let s = try conf.join("stranger", identity: cast.stranger, kd: cast.kd.fingerprint, ssrcs: [9])
        try await conf.run(limit: .seconds(3)) { conf.clients[s]?.state == .failed || conf.clientErrors[s] != nil }
        #expect(conf.kd.counters.refusedUnknownFingerprint == 1)
        #expect(conf.mediaKeys[s] == nil)
        #expect(conf.clients[s]?.currentEKTKey == nil)
        #expect(conf.kd.associationCount == 0)
        let line = try #require(conf.logLines.first { $0.event == "association.refused" })
        #expect(line.value("fingerprint") == cast.stranger.fingerprint.description)
        #expect(line.description.contains("unknown certificate fingerprint"))
        // The stranger's handshake failed on its side too (the KD sent a fatal alert).
        #expect(conf.clients[s]?.state == .failed)
    }

    @Test("An endpoint that sends no Join is admitted after the grace period, with no SSRCs")
    func admittedWithoutJoin() async throws {
        let cast = try Cast()
        let conf = try MiniConference(config: cast.config(), kdIdentity: cast.kd)
        // A bare DTLS client (like a non-percrec endpoint): handshake only, no Join.
        let id = AssociationID.random()
        let bare = try DTLSEndpoint(role: .client, identity: cast.bob, expectedPeerFingerprint: cast.kd.fingerprint)
        var toKD = try bare.handshakeStart()
        var got: [DTLSEvent] = []
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(5), conf.kd.members(of: "c1").isEmpty || !got.contains(where: { if case .ektKeyReceived = $0 { true } else { false } }) {
            var out: [KeyDistributor.Outgoing] = []
            for d in toKD { out += conf.kd.receive(.tunneledDtls(try .init(associationID: id, dtlsMessage: d)), on: 1) }
            toKD = []
            if out.isEmpty { try await Task.sleep(for: .milliseconds(20)); out = conf.kd.handleTimeouts() }
            for case let .tunneledDtls(t) in out.map(\.message) {
                let r = try bare.receive(datagram: t.dtlsMessage)
                toKD += r.datagrams; got += r.events
            }
        }
        #expect(conf.kd.members(of: "c1") == ["bob"])
        #expect(conf.kd.roster(of: "c1").map(\.ssrcs) == [[]])
        #expect(got.contains(.ektKeyReceived(try #require(conf.kd.ektKeyHistory(of: "c1").last))))
    }

    @Test("Identity invited to two conferences is admitted on its Join to the named one")
    func joinChoosesConference() async throws {
        let cast = try Cast()
        let conf = try MiniConference(config: cast.config(), kdIdentity: cast.kd)
        try conf.join("alice", identity: cast.alice, kd: cast.kd.fingerprint, conference: "c2", ssrcs: [5])
        try await conf.run { conf.converged("c2") }
        #expect(conf.kd.members(of: "c2") == ["alice"])
        #expect(conf.kd.members(of: "c1").isEmpty)
    }

    @Test("Every member is sent the conference's policy on admission and reports it once, though keepalives repeat it")
    func policyOnAdmission() async throws {
        let cast = try Cast()
        let policy = ConferencePolicyConfig(allowCatchUp: true, administrators: ["carol", "ops@example.com"])
        let conf = try MiniConference(config: cast.config(policy: policy), kdIdentity: cast.kd)
        let a = try conf.join("alice", identity: cast.alice, kd: cast.kd.fingerprint, ssrcs: [1])
        let r = try conf.join("archive", identity: cast.recorder, kd: cast.kd.fingerprint, ssrcs: [])
        let c2 = try conf.join("alice", identity: cast.alice, kd: cast.kd.fingerprint, conference: "c2", ssrcs: [7])
        // Generous limits (each run ends as soon as its condition holds): in a full parallel test
        // run, CPU-bound suites can keep this task from resuming for seconds.
        try await conf.run(limit: .seconds(20)) {
            conf.converged() && conf.converged("c2") && conf.kd.members(of: "c1").count == 2 && [a, r, c2].allSatisfy { conf.clients[$0]?.policy != nil }
        }
        #expect(conf.clientErrors.isEmpty)
        for id in [a, r] { #expect(conf.clients[id]?.policy == policy) }
        // c2 announces its own policy: the defaults.
        #expect(conf.clients[c2]?.policy == ConferencePolicyConfig())
        #expect(conf.kd.counters.policiesSent >= 3)
        // Keepalives repeat the policy; the client reports it once.
        try conf.enableKeepalives(r, every: .milliseconds(50))
        let keepalives = conf.kd.counters.keepalives
        try await conf.run(limit: .seconds(20)) { conf.kd.counters.keepalives >= keepalives + 3 }
        #expect(conf.kd.counters.keepalives >= keepalives + 3)
        for id in [a, r] {
            let reported = conf.events[id, default: []].filter { if case .policy = $0 { true } else { false } }
            #expect(reported == [.policy(policy)], "\(conf.names[id] ?? "?"): \(reported)")
        }
    }

    @Test("A policy message lost on admission is repaired by the answer to the endpoint's next keepalive Join")
    func lostPolicyRepairedByKeepalive() async throws {
        let cast = try Cast()
        let policy = ConferencePolicyConfig(allowCatchUp: false, administrators: ["carol"])
        let conf = try MiniConference(config: cast.config(policy: policy), kdIdentity: cast.kd)
        let a = try conf.join("alice", identity: cast.alice, kd: cast.kd.fingerprint, ssrcs: [1])
        // The policy travels as one DTLS application-data record (content type 23; AES-GCM:
        // 8-byte explicit nonce and 16-byte tag) of a length no roster message has. Drop every
        // one to alice until the repair phase (a Join resent before the roster arrived would
        // otherwise bring it back early).
        let policyRecord = 13 + 8 + KeyPlaneMessage.policy(conference: "c1", policy: policy).serialized().count + 16
        conf.dropToClient = { id, datagram in id == a && datagram.first == 23 && datagram.count == policyRecord }
        try await conf.run(limit: .seconds(20)) { conf.converged() && conf.kd.counters.policiesSent >= 1 }
        #expect(conf.converged())
        #expect(conf.filtered >= 1, "the policy record was never seen: the length guess is wrong")
        #expect(conf.clients[a]?.policy == nil)
        #expect(conf.kd.counters.keepalives == 0)

        // Repair phase: the network delivers again and alice sends keepalive Joins.
        conf.dropToClient = nil
        try conf.enableKeepalives(a, every: .milliseconds(100))
        try await conf.run(limit: .seconds(20)) { conf.clients[a]?.policy != nil }
        #expect(conf.clients[a]?.policy == policy)
        #expect(conf.kd.counters.keepalives >= 1)
        #expect(conf.events[a, default: []].filter { if case .policy = $0 { true } else { false } } == [.policy(policy)])
        #expect(conf.clientErrors.isEmpty)
    }

    @Test("With 20 % of datagrams lost, every endpoint still converges on the key and the roster", arguments: [UInt64(3), 11])
    func lossy(seed: UInt64) async throws {
        let cast = try Cast()
        let conf = try MiniConference(config: cast.config(), kdIdentity: cast.kd, dropRate: 0.2, seed: seed)
        try conf.join("alice", identity: cast.alice, kd: cast.kd.fingerprint, ssrcs: [1])
        try conf.join("bob", identity: cast.bob, kd: cast.kd.fingerprint, ssrcs: [2])
        try conf.join("carol", identity: cast.carol, kd: cast.kd.fingerprint, ssrcs: [3])
        try await conf.run(limit: .seconds(20)) { conf.kd.members(of: "c1").count == 3 && conf.converged() }
        #expect(conf.kd.members(of: "c1").count == 3)
        #expect(conf.converged())
        #expect(conf.dropped > 0)
    }
}

@Suite("Key-plane messages and KD configuration")
struct KeyPlaneMessageTests {
    @Test("Join serializes to the documented bytes")
    func joinLayout() throws {
        let m = KeyPlaneMessage.join(conference: "c1", ssrcs: [0x1234_5678])
        #expect(m.serialized() == [0x01, 0x01, 0x02, 0x63, 0x31, 0x01, 0x12, 0x34, 0x56, 0x78])
        #expect(try KeyPlaneMessage(parsing: m.serialized()) == m)
        let ack = KeyPlaneMessage.rosterAck(conference: "c1", through: 7)
        #expect(ack.serialized() == [0x03, 0x01, 0x02, 0x63, 0x31, 0, 0, 0, 7])
    }

    @Test("Roster events round-trip, and long logs split into messages under 1000 bytes")
    func rosterRoundTrip() throws {
        let fp = try #require(DTLSFingerprint(sha256Digest: Array(0 ..< 32)))
        let events = (1 ... 40).map {
            RosterEvent(sequence: UInt32($0), timeMillis: 1_700_000_000_000 + UInt64($0), kind: $0 % 3 == 0 ? .leave : .join,
                        fingerprint: fp, role: $0 == 1 ? .recorder : .participant, displayName: "participant \($0) é",
                        ssrcs: Array(repeating: UInt32($0), count: $0 % 4), spi: UInt16($0))
        }
        let messages = KeyPlaneMessage.rosterMessages(conference: "conference-1", events: events)
        #expect(messages.count > 1)
        var back: [RosterEvent] = []
        for m in messages {
            let bytes = m.serialized()
            #expect(bytes.count <= KeyPlaneMessage.maximumSize)
            guard case let .roster(conference, evs) = try KeyPlaneMessage(parsing: bytes) else { Issue.record("not a roster"); continue }
            #expect(conference == "conference-1")
            back += evs
        }
        #expect(back == events)
    }

    @Test("Every truncation and 2000 seeded mutations give a typed error or an exact re-parse")
    func mutations() throws {
        let fp = try #require(DTLSFingerprint(sha256Digest: Array(repeating: 7, count: 32)))
        let samples: [KeyPlaneMessage] = [
            .join(conference: "c1", ssrcs: [1, 2, 3]), .rosterAck(conference: "c1", through: 9),
            .roster(conference: "c1", events: [RosterEvent(sequence: 1, timeMillis: 5, kind: .sources, fingerprint: fp,
                                                           role: .participant, displayName: "bob", ssrcs: [4], spi: 2)]),
        ]
        var rng = SplitMix64(seed: 42)
        for sample in samples {
            let bytes = sample.serialized()
            for n in 0 ..< bytes.count {
                #expect(throws: KeyPlaneError.self) { try KeyPlaneMessage(parsing: Array(bytes.prefix(n))) }
            }
            for _ in 0 ..< 700 {
                var m = bytes
                let i = Int(rng.next() % UInt64(m.count))
                m[i] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                // Typed throws: anything thrown is a KeyPlaneError; what parses must re-serialize exactly.
                if let parsed = try? KeyPlaneMessage(parsing: m) { #expect(parsed.serialized() == m) }
            }
        }
    }

    @Test("The configuration parses with defaults, and bad files give errors that name the place")
    func config() throws {
        let fp = try DTLSIdentity(commonName: "x").fingerprint.description
        let fp2 = try DTLSIdentity(commonName: "y").fingerprint.description
        let good = """
        {"listen": "127.0.0.1:7100", "media_distributors": [],
         "conferences": [{"id": "c1", "participants": [{"name": "alice", "fingerprint": "\(fp)"},
                                                      {"name": "rec", "fingerprint": "\(fp2)", "role": "recorder"}],
                          "policy": {"allow_catch_up": true}}]}
        """
        let c = try KeyDistributorConfig.decode(Data(good.utf8))
        #expect(c.conferences[0].cipher == .aeskw128)
        #expect(c.conferences[0].ektTtlSeconds == 86_400)
        #expect(c.conferences[0].policy.allowCatchUp)
        #expect(c.conferences[0].participants[1].role == .recorder)
        #expect(try KeyDistributorConfig.decode(Data(c.encoded().utf8)) == c)

        let bad: [(String, String)] = [
            (#"{"listen": "x", "media_distributors": [], "conferences": [{"id": "c1", "participants": [{"name": "a", "fingerprint": "nope"}]}]}"#, "participants[0]"),
            (#"{"listen": "x", "media_distributors": [], "conferences": [{"id": "c1", "participants": []}, {"id": "c1", "participants": []}]}"#, "duplicate"),
            (#"{"listen": "x", "media_distributors": [], "conferences": [{"id": "c1", "ekt_cipher": "AES", "participants": []}]}"#, "ekt_cipher"),
            (#"{"listen": "x", "media_distributors": [], "conferences": [{"id": "c1", "participants": [{"name": "a", "fingerprint": "\#(fp)", "role": "boss"}]}]}"#, "role"),
            (#"{"media_distributors": [], "conferences": []}"#, "listen"),
        ]
        for (text, needle) in bad {
            do {
                _ = try KeyDistributorConfig.decode(Data(text.utf8))
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.description.contains(needle), "\(error.description) should mention \(needle)")
            }
        }
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return false }
        return (0 ... count - needle.count).contains { self[$0 ..< $0 + needle.count].elementsEqual(needle) }
    }
}
