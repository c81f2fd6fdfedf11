import EKT
import Foundation
import KeyExchange
import SRTP

/// The reference Key Distributor (RFC 8871 §4.5), sans I/O.
///
/// Media Distributors connect over the DTLS tunnel (draft-ietf-perc-dtls-tunnel-12); each
/// endpoint's DTLS datagrams arrive as `TunneledDtls` for an association id. For every
/// association the KD runs a DTLS server (`DTLSEndpoint`) that accepts only certificates
/// invited to some conference, and when the handshake completes it:
/// - sends the MD the association's HBH keys (`MediaKeys`, the outer halves of the double
///   profile);
/// - admits the endpoint to its conference on its `Join` (percrec endpoints send one at once,
///   naming the conference and their SSRCs), or, for an endpoint that sends none, after
///   `joinGrace` when its fingerprint is invited to exactly one conference; rekeys the conference when configured (a new EKTKey with a
///   new SPI), and pushes the current EKTKey to every member;
/// - appends a roster event and pushes the log to every member until each acknowledges it;
/// - sends the new member the conference's policy (`KeyPlaneMessage.policy`), and again with
///   every answer to a keepalive Join: there is no ack, the keepalive repairs a lost one.
/// A leave (close_notify, `EndpointDisconnect`, a dead association) removes the member and
/// rekeys the rest. The KD never sends an E2E key to the MD.
///
/// Drive it from one thread: `receive(_:on:now:)` for every tunnel message, `handleTimeouts`
/// when `nextTimeout` passes. It returns the tunnel messages to send.
public final class KeyDistributor {
    public typealias TunnelID = Int

    /// A tunnel message to send on a tunnel.
    public struct Outgoing: Sendable {
        public let tunnel: TunnelID
        public let message: TunnelMessage
    }

    /// Counters for logs and tests.
    public struct Counters: Sendable, Equatable {
        public var associations = 0
        public var handshakes = 0
        public var refusedUnknownFingerprint = 0
        public var refusedOther = 0
        public var admissions = 0
        public var leaves = 0
        public var rekeys = 0
        /// Keepalive Joins from members, each answered with the roster's last event and the policy.
        public var keepalives = 0
        /// Policy messages sent (on admission and with keepalive answers).
        public var policiesSent = 0
        public var ektKeysSent = 0
        public var ektKeysAcknowledged = 0
        public var droppedTunnelMessages = 0
    }

    public let config: KeyDistributorConfig
    public let identity: DTLSIdentity
    public private(set) var counters = Counters()
    /// Upper bound on live associations (half-open handshakes included).
    public let maximumAssociations: Int

    private let context: DTLSContext
    private let log: (LogLine) -> Void
    private let wallClock: () -> Date
    private let invited: [DTLSFingerprint: [String]]   // fingerprint → conference ids
    private var conferences: [String: ConferenceState] = [:]
    private var associations: [AssociationID: Association] = [:]
    private let initialRetransmit: Duration
    /// How long a handshake-complete association invited to one conference may take to send
    /// its Join before it is admitted without one (and without SSRCs).
    public let joinGrace: Duration

    public init(config: KeyDistributorConfig, identity: DTLSIdentity, maximumAssociations: Int = 4096,
                initialRetransmitTimeout: Duration = .milliseconds(250), joinGrace: Duration = .seconds(1),
                wallClock: @escaping () -> Date = Date.init, log: @escaping (LogLine) -> Void) throws {
        try config.validate()
        self.config = config
        self.identity = identity
        self.maximumAssociations = maximumAssociations
        self.wallClock = wallClock
        self.log = log
        initialRetransmit = initialRetransmitTimeout
        self.joinGrace = joinGrace
        let ciphers = EKTCipher.allCases.filter { c in config.conferences.contains { $0.cipher == c } }
        context = try DTLSContext(role: .server, identity: identity, ektCiphers: ciphers.isEmpty ? [.aeskw128] : ciphers)
        var invited: [DTLSFingerprint: [String]] = [:]
        for c in config.conferences {
            conferences[c.id] = ConferenceState(config: c)
            for p in c.participants {
                if let fp = try? DTLSFingerprint(parsing: p.fingerprint) { invited[fp, default: []].append(c.id) }
            }
        }
        self.invited = invited
    }

    // MARK: - Inspection

    /// Current members of a conference (display names), sorted.
    public func members(of conference: String) -> [String] {
        conferences[conference]?.members.values.map(\.name).sorted() ?? []
    }

    /// The SPI of a conference's current EKTKey; nil before anyone joined.
    public func currentSPI(of conference: String) -> UInt16? { conferences[conference]?.epoch?.key.spi }

    /// The conference's roster log.
    public func roster(of conference: String) -> [RosterEvent] { conferences[conference]?.roster ?? [] }

    /// Every EKTKey the conference has had, oldest first (tests compare them with what endpoints got).
    public func ektKeyHistory(of conference: String) -> [EKTKeyMessage] { conferences[conference]?.history ?? [] }

    public var associationCount: Int { associations.count }

    /// When `handleTimeouts(now:)` should run next.
    public var nextTimeout: ContinuousClock.Instant? {
        associations.values.compactMap(\.deadline).min()
    }

    // MARK: - Tunnel input

    /// A tunnel closed: every association it carried leaves.
    public func tunnelClosed(_ tunnel: TunnelID, now: ContinuousClock.Instant = .now) -> [Outgoing] {
        var out: [Outgoing] = []
        for (id, a) in associations where a.tunnel == tunnel {
            out += remove(id, reason: "tunnel closed", now: now)
        }
        return out
    }

    /// Handles one message from a Media Distributor.
    public func receive(_ message: TunnelMessage, on tunnel: TunnelID, now: ContinuousClock.Instant = .now) -> [Outgoing] {
        switch message {
        case let .supportedProfiles(p):
            guard p.version == 0 else {
                return [Outgoing(tunnel: tunnel, message: .unsupportedVersion(.init(highestVersion: 0)))]
            }
            log(LogLine("tunnel.profiles", ["tunnel": "\(tunnel)", "profiles": p.protectionProfiles.map { hex4($0) }.joined(separator: ",")]))
            return []
        case let .tunneledDtls(t):
            return receiveDTLS(t.dtlsMessage, association: t.associationID, tunnel: tunnel, now: now)
        case let .endpointDisconnect(d):
            return remove(d.associationID, reason: "the Media Distributor reported a disconnect", now: now)
        case .mediaKeys, .unsupportedVersion:
            counters.droppedTunnelMessages += 1
            log(LogLine("tunnel.unexpected", ["tunnel": "\(tunnel)", "type": "\(message.messageType)"]))
            return []
        }
    }

    /// Runs DTLS retransmissions, EKTKey retransmissions and roster resends that are due.
    public func handleTimeouts(now: ContinuousClock.Instant = .now) -> [Outgoing] {
        var out: [Outgoing] = []
        for (id, a) in associations {
            guard associations[id] != nil, let d = a.deadline, now >= d else { continue }
            do {
                out += wrap(try a.endpoint.handleTimeout(now: now), a)
            } catch {
                out += wrap(a.endpoint.drainOutgoing(), a)
                out += remove(id, reason: "\(error)", now: now)
                continue
            }
            if let due = a.rosterDeadline, now >= due { out += sendRoster(to: a, now: now) }
            if let due = a.admitDeadline, now >= due, a.conference == nil {
                a.admitDeadline = nil
                let candidates = a.fingerprint.flatMap { invited[$0] } ?? []
                if candidates.count == 1, let only = candidates.first { out += admit(a, to: only, ssrcs: nil, now: now) }
            }
        }
        return out
    }

    // MARK: - Associations

    private func receiveDTLS(_ datagram: [UInt8], association id: AssociationID, tunnel: TunnelID,
                             now: ContinuousClock.Instant) -> [Outgoing] {
        let association: Association
        if let existing = associations[id] {
            guard existing.tunnel == tunnel else {
                counters.droppedTunnelMessages += 1
                return []
            }
            association = existing
        } else {
            guard associations.count < maximumAssociations else {
                counters.refusedOther += 1
                log(LogLine("association.refused", ["association": "\(id)", "reason": "association limit \(maximumAssociations) reached"]))
                return []
            }
            do {
                let endpoint = try DTLSEndpoint(context: context, expectedPeerFingerprint: nil,
                                                acceptedPeerFingerprints: Set(invited.keys),
                                                initialRetransmitTimeout: initialRetransmit,
                                                maximumRetransmitTimeout: initialRetransmit * 16)
                association = Association(id: id, tunnel: tunnel, endpoint: endpoint)
            } catch {
                counters.refusedOther += 1
                log(LogLine("association.error", ["association": "\(id)", "error": "\(error)"]))
                return []
            }
            associations[id] = association
            counters.associations += 1
        }
        let output: DTLSOutput
        do {
            output = try association.endpoint.receive(datagram: datagram, now: now)
        } catch let error {
            var out = wrap(association.endpoint.drainOutgoing(), association)
            if case let .unknownPeer(fp) = error {
                counters.refusedUnknownFingerprint += 1
                log(LogLine("association.refused", ["association": "\(id)", "tunnel": "\(tunnel)", "fingerprint": fp.description,
                                                    "reason": "unknown certificate fingerprint: not invited to any conference"]))
                associations[id] = nil
            } else if case .notDTLS = error {
                counters.droppedTunnelMessages += 1
            } else if association.endpoint.state == .failed {
                out += remove(id, reason: "\(error)", now: now)
            }
            return out
        }
        var out = wrap(output.datagrams, association)
        for event in output.events {
            switch event {
            case let .handshakeCompleted(negotiation):
                out += handshakeCompleted(association, negotiation, now: now)
            case let .applicationData(bytes):
                out += applicationData(bytes, from: association, now: now)
            case .peerClosed:
                out += remove(id, reason: "close_notify", now: now)
            case let .ektKeyAcknowledged(spi):
                counters.ektKeysAcknowledged += 1
                log(LogLine("ektkey.acknowledged", ["association": "\(id)", "participant": association.name ?? "?", "spi": "\(spi)"]))
            case .ektKeyReceived, .ektKeyRejected:
                break
            }
        }
        return out
    }

    private func handshakeCompleted(_ a: Association, _ negotiation: DTLSNegotiation, now: ContinuousClock.Instant) -> [Outgoing] {
        counters.handshakes += 1
        a.fingerprint = negotiation.peerFingerprint
        var out: [Outgoing] = []
        do {
            let keys = try a.endpoint.exportSRTPKeys()
            guard let client = keys.clientWriteDouble, let server = keys.serverWriteDouble else {
                throw DTLSError.ektNotNegotiated
            }
            // Only the outer (HBH) halves go to the MD (tunnel draft §5.4, RFC 8871 §4.5.1).
            let media = try TunnelMessage.MediaKeys(
                associationID: a.id, protectionProfile: DoubleSRTPProfile.doubleAeadAes128Gcm.rawValue,
                clientWriteMasterKey: client.outerKey, serverWriteMasterKey: server.outerKey,
                clientWriteMasterSalt: client.outerSalt, serverWriteMasterSalt: server.outerSalt)
            out.append(Outgoing(tunnel: a.tunnel, message: .mediaKeys(media)))
        } catch {
            log(LogLine("association.refused", ["association": "\(a.id)", "fingerprint": negotiation.peerFingerprint.description,
                                                "reason": "not in PERC mode (supported_ekt_ciphers missing): \(error)"]))
            counters.refusedOther += 1
            out += wrap(a.endpoint.close(), a)
            associations[a.id] = nil
            return out
        }
        let candidates = invited[negotiation.peerFingerprint] ?? []
        log(LogLine("association.authenticated", ["association": "\(a.id)", "fingerprint": negotiation.peerFingerprint.description,
                                                  "suite": negotiation.cipherSuite, "conferences": candidates.joined(separator: ",")]))
        if candidates.count == 1 { a.admitDeadline = now + joinGrace }
        return out
    }

    private func applicationData(_ bytes: [UInt8], from a: Association, now: ContinuousClock.Instant) -> [Outgoing] {
        let message: KeyPlaneMessage
        do { message = try KeyPlaneMessage(parsing: bytes) } catch {
            log(LogLine("keyplane.malformed", ["association": "\(a.id)", "error": "\(error)"]))
            return []
        }
        switch message {
        case let .join(conference, ssrcs):
            guard let fp = a.fingerprint, invited[fp]?.contains(conference) == true else {
                log(LogLine("join.refused", ["association": "\(a.id)", "conference": conference,
                                             "reason": "this identity is not invited to the conference"]))
                return []
            }
            if let current = a.conference, current != conference {
                log(LogLine("join.refused", ["association": "\(a.id)", "conference": conference, "reason": "already in \(current)"]))
                return []
            }
            a.admitDeadline = nil
            return admit(a, to: conference, ssrcs: ssrcs, now: now)
        case let .rosterAck(conference, through):
            guard conference == a.conference, through > a.rosterAcked else { return [] }
            a.rosterAcked = min(through, UInt32(conferences[conference]?.roster.count ?? 0))
            if a.rosterAcked >= UInt32(conferences[conference]?.roster.count ?? 0) { a.rosterDeadline = nil }
            return []
        case .roster, .policy:
            return []   // KD → endpoint messages; an endpoint has no business sending them
        }
    }

    // MARK: - Membership

    private func admit(_ a: Association, to conferenceID: String, ssrcs: [UInt32]?, now: ContinuousClock.Instant) -> [Outgoing] {
        guard let conference = conferences[conferenceID], let fp = a.fingerprint,
              let invitation = conference.config.participants.first(where: { (try? DTLSFingerprint(parsing: $0.fingerprint)) == fp })
        else { return [] }
        if a.conference == conferenceID {
            // Already a member: a Join only matters if it changes the SSRCs. A repeated Join is
            // a keepalive: answer with the roster's last event so the endpoint knows we live,
            // and with the policy in case the one sent on admission was lost.
            guard let ssrcs, ssrcs != a.ssrcs else { return answerKeepalive(conference, to: a) }
            if let clash = conference.ssrcOwner(ssrcs, except: a.id) {
                log(LogLine("sources.refused", ["association": "\(a.id)", "reason": "SSRC already used by \(clash)"]))
                return []
            }
            a.ssrcs = ssrcs
            conference.append(kind: .sources, fingerprint: fp, role: invitation.role, name: invitation.name, ssrcs: ssrcs,
                              time: wallClock())
            return pushRoster(conference, now: now)
        }
        if let negotiated = a.endpoint.negotiation?.ektCipher, negotiated != conference.config.cipher {
            log(LogLine("join.refused", ["association": "\(a.id)", "conference": conferenceID,
                                         "reason": "negotiated \(negotiated), the conference uses \(conference.config.ektCipher)"]))
            return []
        }
        if let ssrcs, let clash = conference.ssrcOwner(ssrcs, except: a.id) {
            log(LogLine("join.refused", ["association": "\(a.id)", "reason": "SSRC already used by \(clash)"]))
            return []
        }
        // Someone with the same identity already in: the new association replaces it (rejoin).
        var out: [Outgoing] = []
        if let previous = conference.members.first(where: { $0.value.fingerprint == fp })?.key {
            out += remove(previous, reason: "replaced by a new association of the same identity", now: now, rekey: false)
        }
        a.conference = conferenceID
        a.name = invitation.name
        a.ssrcs = ssrcs ?? []
        conference.members[a.id] = Member(name: invitation.name, fingerprint: fp)
        counters.admissions += 1
        let rekeyed = conference.epoch == nil || conference.config.rekeyOnJoin
        if rekeyed { conference.rekey(now: wallClock()); counters.rekeys += conference.history.count > 1 ? 1 : 0 }
        conference.append(kind: .join, fingerprint: fp, role: invitation.role, name: invitation.name, ssrcs: a.ssrcs, time: wallClock())
        log(LogLine("member.joined", ["conference": conferenceID, "participant": invitation.name, "role": "\(invitation.role)",
                                      "association": "\(a.id)", "spi": "\(conference.epoch?.key.spi ?? 0)",
                                      "members": "\(conference.members.count)"]))
        out += pushEKTKey(conference, only: rekeyed ? nil : a.id, now: now)
        // The policy before the roster: an endpoint that sees its own join knows the rules already
        // (unless the datagram was lost; its keepalives repair that).
        out += sendPolicy(conference, to: a)
        out += pushRoster(conference, now: now)
        return out
    }

    /// Removes an association; if it was a member, logs the leave, rekeys the rest if configured,
    /// and pushes the new EKTKey and the roster to them.
    private func remove(_ id: AssociationID, reason: String, now: ContinuousClock.Instant, rekey: Bool = true) -> [Outgoing] {
        guard let a = associations.removeValue(forKey: id) else { return [] }
        var out: [Outgoing] = []
        if a.endpoint.state == .connected { out += wrap(a.endpoint.close(), a) }
        guard let conferenceID = a.conference, let conference = conferences[conferenceID],
              conference.members.removeValue(forKey: id) != nil, let fp = a.fingerprint else {
            log(LogLine("association.closed", ["association": "\(id)", "reason": reason]))
            return out
        }
        counters.leaves += 1
        let role = conference.config.participants.first { (try? DTLSFingerprint(parsing: $0.fingerprint)) == fp }?.role ?? .participant
        let rekeyed = rekey && conference.config.rekeyOnLeave && !conference.members.isEmpty
        if rekeyed { conference.rekey(now: wallClock()); counters.rekeys += 1 }
        conference.append(kind: .leave, fingerprint: fp, role: role, name: a.name ?? "?", ssrcs: a.ssrcs, time: wallClock())
        log(LogLine("member.left", ["conference": conferenceID, "participant": a.name ?? "?", "association": "\(id)",
                                    "reason": reason, "spi": "\(conference.epoch?.key.spi ?? 0)", "members": "\(conference.members.count)"]))
        if rekeyed { out += pushEKTKey(conference, only: nil, now: now) }
        out += pushRoster(conference, now: now)
        return out
    }

    private func pushEKTKey(_ conference: ConferenceState, only: AssociationID?, now: ContinuousClock.Instant) -> [Outgoing] {
        guard let key = conference.epoch?.key else { return [] }
        var out: [Outgoing] = []
        for id in conference.members.keys where only == nil || only == id {
            guard let a = associations[id] else { continue }
            do {
                out += wrap(try a.endpoint.sendEKTKey(key, now: now), a)
                counters.ektKeysSent += 1
            } catch {
                log(LogLine("ektkey.error", ["association": "\(id)", "error": "\(error)"]))
            }
        }
        return out
    }

    private func pushRoster(_ conference: ConferenceState, now: ContinuousClock.Instant) -> [Outgoing] {
        var out: [Outgoing] = []
        for id in conference.members.keys {
            guard let a = associations[id] else { continue }
            a.rosterWait = initialRetransmit
            out += sendRoster(to: a, now: now)
        }
        return out
    }

    /// Answers a keepalive Join: the roster's last event and the policy, once each (no resend
    /// timer: the endpoint's next keepalive asks again).
    private func answerKeepalive(_ conference: ConferenceState, to a: Association) -> [Outgoing] {
        guard let cid = a.conference, let last = conference.roster.last, a.endpoint.state == .connected else { return [] }
        counters.keepalives += 1
        var out: [Outgoing] = []
        do {
            out += wrap(try a.endpoint.send(applicationData: KeyPlaneMessage.roster(conference: cid, events: [last]).serialized()), a)
        } catch {
            log(LogLine("roster.error", ["association": "\(a.id)", "error": "\(error)"]))
            return out
        }
        out += sendPolicy(conference, to: a)
        return out
    }

    /// Sends the conference's policy to one member (validated with the configuration, so it
    /// fits one message).
    private func sendPolicy(_ conference: ConferenceState, to a: Association) -> [Outgoing] {
        guard a.endpoint.state == .connected else { return [] }
        let message = KeyPlaneMessage.policy(conference: conference.config.id, policy: conference.config.policy)
        do {
            let out = wrap(try a.endpoint.send(applicationData: message.serialized()), a)
            counters.policiesSent += 1
            return out
        } catch {
            log(LogLine("policy.error", ["association": "\(a.id)", "error": "\(error)"]))
            return []
        }
    }

    /// Sends the roster events the association has not acknowledged, and arms the resend timer.
    private func sendRoster(to a: Association, now: ContinuousClock.Instant) -> [Outgoing] {
        guard let cid = a.conference, let conference = conferences[cid], a.endpoint.state == .connected else {
            a.rosterDeadline = nil
            return []
        }
        let pending = conference.roster.dropFirst(Int(a.rosterAcked))
        guard !pending.isEmpty else { a.rosterDeadline = nil; return [] }
        var out: [Outgoing] = []
        for message in KeyPlaneMessage.rosterMessages(conference: cid, events: Array(pending)) {
            do { out += wrap(try a.endpoint.send(applicationData: message.serialized()), a) } catch {
                log(LogLine("roster.error", ["association": "\(a.id)", "error": "\(error)"]))
            }
        }
        a.rosterDeadline = now + a.rosterWait
        a.rosterWait = min(a.rosterWait * 2, .seconds(4))
        return out
    }

    private func wrap(_ datagrams: [[UInt8]], _ a: Association) -> [Outgoing] {
        datagrams.compactMap { d in
            guard let t = try? TunnelMessage.TunneledDtls(associationID: a.id, dtlsMessage: d) else { return nil }
            return Outgoing(tunnel: a.tunnel, message: .tunneledDtls(t))
        }
    }
}

// MARK: - State

private final class Association {
    let id: AssociationID
    let tunnel: KeyDistributor.TunnelID
    let endpoint: DTLSEndpoint
    var fingerprint: DTLSFingerprint?
    var conference: String?
    var name: String?
    var ssrcs: [UInt32] = []
    var rosterAcked: UInt32 = 0
    var rosterDeadline: ContinuousClock.Instant?
    var rosterWait: Duration = .milliseconds(250)
    /// Admit without a Join at this time (invited to exactly one conference).
    var admitDeadline: ContinuousClock.Instant?

    init(id: AssociationID, tunnel: KeyDistributor.TunnelID, endpoint: DTLSEndpoint) {
        self.id = id
        self.tunnel = tunnel
        self.endpoint = endpoint
    }

    var deadline: ContinuousClock.Instant? {
        [endpoint.nextTimeout, rosterDeadline, admitDeadline].compactMap { $0 }.min()
    }
}

private struct Member {
    let name: String
    let fingerprint: DTLSFingerprint
}

private final class ConferenceState {
    let config: ConferenceConfig
    var members: [AssociationID: Member] = [:]
    var epoch: (key: EKTKeyMessage, since: Date)?
    var history: [EKTKeyMessage] = []
    var roster: [RosterEvent] = []
    private var nextSPI: UInt16 = 1
    static let historyLimit = 64

    init(config: ConferenceConfig) { self.config = config }

    /// A new EKTKey: fresh random key and salt, the next SPI (RFC 8870 §5.2.2).
    func rekey(now: Date) {
        let cipher = config.cipher ?? .aeskw128
        let spi = nextSPI
        nextSPI = nextSPI == 0x7FFF ? 1 : nextSPI + 1
        // Random lengths are in range and the TTL was validated, so this cannot throw.
        guard let key = try? EKTKeyMessage(ektKeyValue: SecretBytes(randomCount: cipher.keyLength),
                                           srtpMasterSalt: SecretBytes(randomCount: 12), spi: spi,
                                           ttl: config.ektTtlSeconds) else { return }
        epoch = (key, now)
        history.append(key)
        // Keep a bounded tail for inspection; older keys are wiped (members got them already).
        if history.count > ConferenceState.historyLimit {
            let old = history.removeFirst()
            old.ektKeyValue.wipe()
            old.srtpMasterSalt.wipe()
        }
    }

    func append(kind: RosterEventKind, fingerprint: DTLSFingerprint, role: ParticipantRole, name: String, ssrcs: [UInt32], time: Date) {
        let millis = UInt64(max(0, time.timeIntervalSince1970 * 1000))
        roster.append(RosterEvent(sequence: UInt32(roster.count + 1), timeMillis: millis, kind: kind, fingerprint: fingerprint,
                                  role: role, displayName: name, ssrcs: ssrcs, spi: epoch?.key.spi ?? 0))
    }

    /// The member (name) already sending with one of `ssrcs`, if any.
    func ssrcOwner(_ ssrcs: [UInt32], except: AssociationID) -> String? {
        guard !ssrcs.isEmpty else { return nil }
        var current: [DTLSFingerprint: (name: String, ssrcs: [UInt32])] = [:]
        for e in roster {
            current[e.fingerprint] = e.kind == .leave ? nil : (e.displayName, e.ssrcs)
        }
        let selfFP = members[except]?.fingerprint
        return current.first { $0.key != selfFP && !Set($0.value.ssrcs).isDisjoint(with: ssrcs) }?.value.name
    }
}

private func hex4(_ v: UInt16) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 4 - s.count)) + s
}
