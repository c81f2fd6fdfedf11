import EKT
import SRTP

/// What an endpoint learns from the key plane.
public enum KeyPlaneEvent: Sendable, Equatable {
    /// DTLS completed: the HBH and E2E keying material of this association (PERC mode).
    case connected(DTLSNegotiation)
    /// The KD's current EKTKey (RFC 8870 §5.2.2): the first one, or a rekey.
    case ektKey(EKTKeyMessage)
    /// New roster events, contiguous and in order (the log so far is `KeyPlaneClient.roster`).
    case roster([RosterEvent])
    /// The conference's policy as the KD announced it: the first one, or a change (the KD
    /// repeats it with every keepalive answer; repeats are not reported).
    case policy(ConferencePolicyConfig)
    /// The KD closed the association.
    case closed
}

/// The endpoint side of the key plane, sans I/O: a DTLS 1.2 client of the Key Distributor (the
/// datagrams travel through the Media Distributor), which after the handshake sends percrec's
/// `Join` (conference and SSRCs, resent until the roster shows it), receives the EKTKey and any
/// rekeys, keeps the roster log, acknowledging it so the KD stops resending, and keeps the
/// conference's policy.
///
/// Participants and the recorder use the same type; a recorder joins with no SSRCs.
/// Not thread-safe: one owner drives it.
public final class KeyPlaneClient {
    public let conference: String
    public let ssrcs: [UInt32]
    public let endpoint: DTLSEndpoint
    public let ownFingerprint: DTLSFingerprint

    /// The association's keys, once connected.
    public private(set) var srtpKeys: DTLSSRTPKeys?
    /// Every EKTKey received, oldest first (a rekey appends).
    public private(set) var ektKeys: [EKTKeyMessage] = []
    /// The roster log, events 1…n without gaps.
    public private(set) var roster: [RosterEvent] = []
    /// The conference's policy, once the KD announced it (it repeats it with every keepalive
    /// answer, so a lost announcement is repaired within one `keepaliveInterval`).
    public private(set) var policy: ConferencePolicyConfig?
    /// Roster events that arrived ahead of a gap, kept until the gap fills.
    private var early: [UInt32: RosterEvent] = [:]
    private var joinConfirmed = false
    private var joinDeadline: ContinuousClock.Instant?
    private var joinWait: Duration
    private let joinInitialWait: Duration
    /// When the KD was last heard from after the handshake (any EKTKey or key-plane message).
    public private(set) var lastHeardFromKD: ContinuousClock.Instant?
    /// Once the Join is confirmed, resend it this often as a keepalive (the reference KD answers
    /// with the roster's last event), so a silent KD (restarted, gone) shows in
    /// `lastHeardFromKD`. nil: no keepalives.
    public var keepaliveInterval: Duration?
    private var keepaliveDue: ContinuousClock.Instant?

    public var state: DTLSState { endpoint.state }
    public var currentEKTKey: EKTKeyMessage? { ektKeys.last }

    /// `kdFingerprint` pins the Key Distributor's certificate.
    public init(identity: DTLSIdentity, kdFingerprint: DTLSFingerprint, conference: String, ssrcs: [UInt32],
                ektCiphers: [EKTCipher] = [.aeskw128, .aeskw256], mtu: Int = 1200,
                initialRetransmitTimeout: Duration = .milliseconds(250),
                maximumRetransmitTimeout: Duration = .seconds(4)) throws(DTLSError) {
        self.conference = conference
        self.ssrcs = ssrcs
        ownFingerprint = identity.fingerprint
        joinInitialWait = initialRetransmitTimeout
        joinWait = initialRetransmitTimeout
        endpoint = try DTLSEndpoint(role: .client, identity: identity, expectedPeerFingerprint: kdFingerprint,
                                    ektCiphers: ektCiphers, mtu: mtu, initialRetransmitTimeout: initialRetransmitTimeout,
                                    maximumRetransmitTimeout: maximumRetransmitTimeout)
    }

    /// When to call `handleTimeout(now:)` next.
    public var nextTimeout: ContinuousClock.Instant? {
        [endpoint.nextTimeout, joinConfirmed ? nil : joinDeadline, joinConfirmed ? keepaliveDue : nil].compactMap { $0 }.min()
    }

    /// The ClientHello flight.
    public func start(now: ContinuousClock.Instant = .now) throws(DTLSError) -> [[UInt8]] {
        try endpoint.handshakeStart(now: now)
    }

    /// Feeds one DTLS datagram from the Media Distributor.
    public func receive(datagram: [UInt8], now: ContinuousClock.Instant = .now) throws(DTLSError) -> (datagrams: [[UInt8]], events: [KeyPlaneEvent]) {
        let out = try endpoint.receive(datagram: datagram, now: now)
        var datagrams = out.datagrams
        var events: [KeyPlaneEvent] = []
        for event in out.events {
            switch event {
            case let .handshakeCompleted(negotiation):
                srtpKeys = try endpoint.exportSRTPKeys()
                lastHeardFromKD = now
                events.append(.connected(negotiation))
                datagrams += try sendJoin(now: now)
            case let .ektKeyReceived(key):
                lastHeardFromKD = now
                ektKeys.append(key)
                events.append(.ektKey(key))
            case .ektKeyRejected, .ektKeyAcknowledged:
                break
            case let .applicationData(bytes):
                lastHeardFromKD = now
                guard let message = try? KeyPlaneMessage(parsing: bytes) else { continue }
                switch message {
                case let .roster(conference, incoming) where conference == self.conference:
                    let fresh = absorb(incoming)
                    if !fresh.isEmpty { events.append(.roster(fresh)) }
                    let ack = KeyPlaneMessage.rosterAck(conference: conference, through: UInt32(roster.count))
                    datagrams += try endpoint.send(applicationData: ack.serialized())
                case let .policy(conference, announced) where conference == self.conference:
                    guard announced != policy else { continue }
                    policy = announced
                    events.append(.policy(announced))
                default:
                    continue
                }
            case .peerClosed:
                events.append(.closed)
            }
        }
        return (datagrams, events)
    }

    /// Retransmits DTLS flights and the Join when due, and sends keepalives (call it at least
    /// every `keepaliveInterval` when keepalives are on).
    public func handleTimeout(now: ContinuousClock.Instant = .now) throws(DTLSError) -> [[UInt8]] {
        var out = try endpoint.handleTimeout(now: now)
        if !joinConfirmed, endpoint.state == .connected, let d = joinDeadline, now >= d {
            joinWait = min(joinWait * 2, .seconds(4))
            out += try sendJoin(now: now)
        }
        if joinConfirmed, let interval = keepaliveInterval, endpoint.state == .connected {
            if let due = keepaliveDue, now >= due {
                out += try endpoint.send(applicationData: KeyPlaneMessage.join(conference: conference, ssrcs: ssrcs).serialized())
                keepaliveDue = now + interval
            } else if keepaliveDue == nil {
                keepaliveDue = now + interval
            }
        }
        return out
    }

    /// Zeroes every EKTKey held (conference end); `ektKeys` keeps the SPIs with wiped values.
    public func wipeKeys() {
        for k in ektKeys { k.ektKeyValue.wipe(); k.srtpMasterSalt.wipe() }
    }

    /// Leaves: close_notify to the KD.
    public func leave() -> [[UInt8]] { endpoint.close() }

    /// The E2E master salt for this epoch (RFC 8870: the EKTKey's srtp_master_salt).
    public var masterSalt: SecretBytes? { currentEKTKey?.srtpMasterSalt }

    private func sendJoin(now: ContinuousClock.Instant) throws(DTLSError) -> [[UInt8]] {
        joinDeadline = now + joinWait
        return try endpoint.send(applicationData: KeyPlaneMessage.join(conference: conference, ssrcs: ssrcs).serialized())
    }

    /// Appends the events that extend the log without a gap; returns them.
    private func absorb(_ incoming: [RosterEvent]) -> [RosterEvent] {
        for e in incoming where e.sequence > UInt32(roster.count) && early.count < 65_536 { early[e.sequence] = e }
        var fresh: [RosterEvent] = []
        while let next = early.removeValue(forKey: UInt32(roster.count + 1)) {
            roster.append(next)
            fresh.append(next)
            if next.fingerprint == ownFingerprint, next.kind == .join || next.kind == .sources, next.ssrcs == ssrcs {
                joinConfirmed = true
            }
        }
        if joinConfirmed == false, roster.contains(where: { $0.fingerprint == ownFingerprint && $0.kind != .leave }),
           currentSSRCs(of: ownFingerprint) == ssrcs {
            joinConfirmed = true
        }
        return fresh
    }

    /// The SSRCs the roster currently binds to `fingerprint`.
    public func currentSSRCs(of fingerprint: DTLSFingerprint) -> [UInt32] {
        var current: [UInt32] = []
        for e in roster where e.fingerprint == fingerprint {
            switch e.kind {
            case .join, .sources: current = e.ssrcs
            case .leave: current = []
            }
        }
        return current
    }
}
