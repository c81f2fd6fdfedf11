import EKT
import KeyExchange
import RTPWire
import SRTP

/// What a participant's receive path reports.
public enum ParticipantEvent: Sendable {
    /// The key plane is up: DTLS done and the first EKTKey installed.
    case ready(spi: UInt16)
    /// A new EKTKey: senders made new master keys (RFC 8871 §4.5.2).
    case rekeyed(spi: UInt16)
    /// An end-to-end decrypted RTP packet (original header restored from the OHB).
    case media(RTPPacket, arrival: ContinuousClock.Instant)
    /// The MD (or a receiver through it) asked for a key frame on this SSRC (RTCP PLI/FIR).
    case keyFrameRequested(ssrc: UInt32)
    /// RTCP from other participants, opened hop by hop.
    case rtcp([UInt8])
    /// New roster events from the KD.
    case roster([RosterEvent])
    case closed
}

/// One conference participant, sans I/O: the key plane (DTLS to the KD through the MD, EKTKey,
/// roster), a `PERCSender` per sending SSRC and one `PERCReceiver` for everything the MD
/// forwards. Media generation lives outside (synthetic sources feed `protect`), so the same
/// session serves the lab, the tests and, with no SSRCs, a receive-only endpoint.
///
/// Receivers detect a misbehaving MD (RFC 8871 §8): a replayed or spliced packet fails E2E
/// replay or authentication checks and is counted in `receiver.drops`; a delayed stream is
/// flagged when its transit time (arrival against RTP timestamp) grows beyond
/// `delayThreshold` over the smallest seen, counted in `delayedPackets`.
public final class ParticipantSession {
    public let name: String
    public let keyPlane: KeyPlaneClient
    public let sendingSSRCs: [UInt32]
    /// RTP clock rate by payload type, for delay detection.
    public var clockRates: [UInt8: Int] = [111: 48_000, 96: 90_000]
    public var delayThreshold: Duration = .milliseconds(150)
    /// After a new EKTKey, senders keep the old master key this long before switching (RFC 8870
    /// §4.6 SHOULD: 250 ms), so receivers that get the new EKTKey a little later lose nothing.
    public var rekeyDelay: Duration = .milliseconds(250)
    private var pendingRekey: (set: EKTParameterSet, at: ContinuousClock.Instant)?
    /// A new member waits `rekeyDelay` before its first packet, for the same reason: the others
    /// are getting the EKTKey its join caused at the same moment.
    private var sendingFrom: ContinuousClock.Instant?

    public private(set) var receiver: PERCReceiver?
    private var senders: [UInt32: PERCSender] = [:]
    private var parameters: EKTParameterSet?
    private var transit: [UInt32: (minimum: Double, seen: Int)] = [:]
    public private(set) var delayedPackets = 0
    public private(set) var delayedSources: Set<UInt32> = []
    public private(set) var decrypted: [UInt32: Int] = [:]
    public private(set) var rekeys = 0
    private let start = ContinuousClock.now

    public init(name: String, identity: DTLSIdentity, kdFingerprint: DTLSFingerprint, conference: String,
                sendingSSRCs: [UInt32], initialRetransmitTimeout: Duration = .milliseconds(250)) throws(DTLSError) {
        self.name = name
        self.sendingSSRCs = sendingSSRCs
        keyPlane = try KeyPlaneClient(identity: identity, kdFingerprint: kdFingerprint, conference: conference,
                                      ssrcs: sendingSSRCs, initialRetransmitTimeout: initialRetransmitTimeout)
    }

    /// Keyed: DTLS done and an EKTKey installed, so `protect` works (and the first-key wait over).
    public var isReady: Bool {
        parameters != nil && receiver != nil && sendingFrom.map { ContinuousClock.now >= $0 } ?? false
    }
    public var currentSPI: UInt16? { parameters?.spi }
    /// Every EKT SPI the KD gave this participant, in order: the epochs it could read.
    public private(set) var receivedSPIs: [UInt16] = []
    public var nextTimeout: ContinuousClock.Instant? { keyPlane.nextTimeout }

    public func start(now: ContinuousClock.Instant = .now) throws(DTLSError) -> [[UInt8]] { try keyPlane.start(now: now) }

    public func handleTimeout(now: ContinuousClock.Instant = .now) throws(DTLSError) -> [[UInt8]] {
        try keyPlane.handleTimeout(now: now)
    }

    public func leave() -> [[UInt8]] {
        for s in senders.values { s.wipe() }
        receiver?.wipe()
        return keyPlane.leave()
    }

    /// One datagram from the MD. Returns datagrams to send back and what happened.
    public func receive(datagram: [UInt8], now: ContinuousClock.Instant = .now) -> (datagrams: [[UInt8]], events: [ParticipantEvent]) {
        switch DatagramKind.classify(datagram) {
        case .dtls:
            return receiveKeyPlane(datagram, now: now)
        case .rtp:
            guard let receiver else { return ([], []) }
            var packet = datagram
            guard (try? receiver.receive(&packet, now: now)) != nil, let rtp = try? RTPPacket(parsing: packet) else { return ([], []) }
            decrypted[rtp.ssrc, default: 0] += 1
            checkDelay(rtp, arrival: now)
            return ([], [.media(rtp, arrival: now)])
        case .rtcp:
            guard let receiver else { return ([], []) }
            var packet = datagram
            guard (try? receiver.receiveRTCP(&packet)) != nil else { return ([], []) }
            // PSFB PLI (206/1) or FIR (206/4) for one of our SSRCs.
            if packet.count >= 12, packet[1] == 206, packet[0] & 0x1F == 1 || packet[0] & 0x1F == 4 {
                let media = UInt32(packet[8]) << 24 | UInt32(packet[9]) << 16 | UInt32(packet[10]) << 8 | UInt32(packet[11])
                if sendingSSRCs.contains(media) { return ([], [.keyFrameRequested(ssrc: media)]) }
            }
            return ([], [.rtcp(packet)])
        default:
            return ([], [])
        }
    }

    /// Double-encrypts an RTP packet from one of `sendingSSRCs` and appends its EKT field.
    public func protect(_ packet: RTPPacket, now: ContinuousClock.Instant = .now) throws(PERCError) -> [UInt8] {
        if let pending = pendingRekey, now >= pending.at {
            pendingRekey = nil
            for s in senders.values { try s.rekey(pending.set) }
        }
        guard let sender = senders[packet.ssrc] else { throw .noKeyForSource(packet.ssrc) }
        var bytes = packet.serialized()
        try sender.protect(&bytes)
        return bytes
    }

    /// Protects an RTCP compound packet for the hop (SR, SDES, BYE, feedback).
    public func protectRTCP(_ compound: [UInt8]) throws(PERCError) -> [UInt8] {
        guard let sender = senders.values.first ?? nil else { throw .noKeyForSource(0) }
        var bytes = compound
        try sender.protectRTCP(&bytes)
        return bytes
    }

    // MARK: - Key plane

    private func receiveKeyPlane(_ datagram: [UInt8], now: ContinuousClock.Instant) -> (datagrams: [[UInt8]], events: [ParticipantEvent]) {
        guard let (datagrams, events) = try? keyPlane.receive(datagram: datagram, now: now) else { return ([], []) }
        var out: [ParticipantEvent] = []
        for event in events {
            switch event {
            case .connected:
                guard let keys = keyPlane.srtpKeys, let fromMD = keys.serverWriteDouble else { continue }
                receiver = try? PERCReceiver(outerKey: fromMD.outerKey, outerSalt: fromMD.outerSalt)
                if let parameters { install(parameters, into: receiver) }
                if parameters != nil { out += makeSenders() }
            case let .ektKey(message):
                guard let cipher = keyPlane.endpoint.negotiation?.ektCipher,
                      let set = try? EKTParameterSet(message: message, cipher: cipher, receivedAt: now) else { continue }
                let first = parameters == nil
                parameters = set
                if !receivedSPIs.contains(set.spi) { receivedSPIs.append(set.spi) }
                install(set, into: receiver)
                if first {
                    sendingFrom = now + rekeyDelay
                    out += makeSenders()
                } else {
                    // Receive with the new key at once; send with it after `rekeyDelay`.
                    pendingRekey = (set, now + rekeyDelay)
                    rekeys += 1
                    out.append(.rekeyed(spi: set.spi))
                }
            case let .roster(events):
                out.append(.roster(events))
            case .policy:
                break   // for the archive authority; a participant has nothing to do with it
            case .closed:
                out.append(.closed)
            }
        }
        return (datagrams, out)
    }

    private func install(_ set: EKTParameterSet, into receiver: PERCReceiver?) {
        receiver?.ekt.add(set)
    }

    private func makeSenders() -> [ParticipantEvent] {
        guard senders.isEmpty, let parameters, receiver != nil, let keys = keyPlane.srtpKeys,
              let toMD = keys.clientWriteDouble else { return [] }
        for ssrc in sendingSSRCs {
            senders[ssrc] = try? PERCSender(ssrc: ssrc, outerKey: toMD.outerKey, outerSalt: toMD.outerSalt, ektKey: parameters)
        }
        return [.ready(spi: parameters.spi)]
    }

    // MARK: - Delay detection (RFC 8871 §8)

    private func checkDelay(_ rtp: RTPPacket, arrival: ContinuousClock.Instant) {
        guard let rate = clockRates[rtp.payloadType] else { return }
        let (s, atto) = (arrival - start).components
        let arrivalSeconds = Double(s) + Double(atto) / 1e18
        let value = arrivalSeconds - Double(rtp.timestamp) / Double(rate)
        let (ts, tatto) = delayThreshold.components
        let threshold = Double(ts) + Double(tatto) / 1e18
        guard var t = transit[rtp.ssrc] else { transit[rtp.ssrc] = (value, 1); return }
        t.seen += 1
        if value < t.minimum { t.minimum = value }
        transit[rtp.ssrc] = t
        if value - t.minimum > threshold {
            delayedPackets += 1
            delayedSources.insert(rtp.ssrc)
        }
    }
}
