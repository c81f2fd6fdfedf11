import Archive
import Authority
import EKT
import Foundation
import KeyExchange
import RTPWire
import SRTP

/// Where a recording session stands.
public enum RecorderStatus: Sendable, Equatable {
    /// DTLS to the Key Distributor (through the Media Distributor) under way.
    case connecting
    /// Keyed and archiving.
    case recording
    /// The conference is over (everyone left, or the KD closed the association).
    case ended(reason: String)
    /// This session cannot continue (MD or KD silent, DTLS failed): the runner rejoins.
    case failed(reason: String)
}

/// A receive-only PERC participant that archives a conference, sans I/O: one recording segment.
///
/// - Key plane: `KeyPlaneClient` with no SSRCs (a DTLS 1.2 client of the KD through the MD),
///   with keepalive Joins so a silent KD is noticed.
/// - Each EKTKey is sealed with HPKE to the archive authority before it is written
///   (`ArchivingReceiver.ledgerEntry`); the plaintext copies are zeroed at the end. Roster
///   events and the KD's policy announcements are archived with the segment.
/// - Media: `ArchivingReceiver` (outer open, replay check, OHB restore, inner packet stored).
///   Datagrams that arrive before the hop keys are buffered (bounded) and archived once keyed.
/// - It sends only RTCP: a receiver report with percrec's recorder subscription (RTCP APP
///   "PRCR"), once a second, so the MD forwards every source to it.
public final class RecorderSession {
    public struct Options: Sendable {
        public var keepaliveInterval: Duration = .seconds(2)
        /// Fail (and let the runner rejoin) when the KD has not answered for this long.
        public var keyDistributorSilence: Duration = .seconds(8)
        /// Fail when nothing came from the MD for this long.
        public var mediaDistributorSilence: Duration = .seconds(6)
        /// Fail when DTLS has not completed in this long.
        public var connectTimeout: Duration = .seconds(15)
        public var reportInterval: Duration = .seconds(1)
        /// Media held while the hop keys are not there yet.
        public var preKeyBuffer = 4096
        /// The conference counts as ended this long after its last participant left.
        public var endGrace: Duration = .seconds(2)
        public init() {}
    }

    public let conference: String
    public let keyPlane: KeyPlaneClient
    public let writer: SegmentWriter
    public let authority: AuthorityPublicKey
    public let options: Options
    public private(set) var status: RecorderStatus = .connecting
    public private(set) var receiver: ArchivingReceiver?
    public private(set) var epochsSealed = 0
    /// Datagrams refused before an `ArchivingReceiver` existed.
    public private(set) var earlyDrops = RecorderDrops()
    /// The SSRC of this recorder's own RTCP (it sends no media).
    public let ssrc = UInt32.random(in: 1 ... UInt32.max)

    private var rtcpOut: SRTPSession?
    private var pending: [(bytes: [UInt8], arrival: Double)] = []
    private var lastFromMD: ContinuousClock.Instant
    private let startedAt: ContinuousClock.Instant
    private var nextReport: ContinuousClock.Instant?
    private var present: Set<DTLSFingerprint> = []
    private var emptySince: ContinuousClock.Instant?

    public init(identity: DTLSIdentity, kdFingerprint: DTLSFingerprint, conference: String, authority: AuthorityPublicKey,
                writer: SegmentWriter, options: Options = .init(), now: ContinuousClock.Instant = .now) throws(DTLSError) {
        self.conference = conference
        self.writer = writer
        self.authority = authority
        self.options = options
        keyPlane = try KeyPlaneClient(identity: identity, kdFingerprint: kdFingerprint, conference: conference, ssrcs: [])
        keyPlane.keepaliveInterval = options.keepaliveInterval
        lastFromMD = now
        startedAt = now
    }

    /// The hop keys of this association (tests use them to check what the MD sent).
    public var hopKeys: DTLSSRTPKeys? { keyPlane.srtpKeys }

    /// Every drop so far, before and after keying.
    public var drops: RecorderDrops {
        var d = earlyDrops
        if let receiver { d.add(receiver.drops) }
        return d
    }

    public var nextTimeout: ContinuousClock.Instant? {
        [keyPlane.nextTimeout, nextReport, writer.commitDeadline].compactMap { $0 }.min()
    }

    /// The ClientHello flight.
    public func start(now: ContinuousClock.Instant = .now) -> [[UInt8]] {
        do { return try keyPlane.start(now: now) } catch {
            status = .failed(reason: "DTLS could not start: \(error)")
            return []
        }
    }

    /// One datagram from the Media Distributor (overwritten). Returns datagrams to send back.
    public func receive(_ datagram: UnsafeMutableRawBufferPointer, now: ContinuousClock.Instant = .now,
                        arrival: Double = Date().timeIntervalSince1970) -> [[UInt8]] {
        lastFromMD = now
        switch DatagramKind.classify(UnsafeRawBufferPointer(datagram)) {
        case .dtls:
            return receiveKeyPlane(Array(datagram), now: now, arrival: arrival)
        case .rtp, .rtcp:
            if let receiver {
                receiver.receive(datagram, arrival: arrival)
            } else if pending.count < options.preKeyBuffer {
                pending.append((Array(datagram), arrival))
            } else {
                earlyDrops.count(.noHopKey)
            }
            return []
        default:
            if let receiver { receiver.count(.notRTPOrRTCP) } else { earlyDrops.count(.notRTPOrRTCP) }
            return []
        }
    }

    public func receive(_ datagram: inout [UInt8], now: ContinuousClock.Instant = .now,
                        arrival: Double = Date().timeIntervalSince1970) -> [[UInt8]] {
        datagram.withUnsafeMutableBytes { receive($0, now: now, arrival: arrival) }
    }

    /// DTLS timers, keepalives, receiver reports, due commits and liveness checks.
    public func handleTimeout(now: ContinuousClock.Instant = .now) -> [[UInt8]] {
        var out: [[UInt8]] = []
        do { out += try keyPlane.handleTimeout(now: now) } catch {
            status = .failed(reason: "DTLS: \(error)")
        }
        if let due = nextReport, now >= due {
            out += receiverReport()
            nextReport = now + options.reportInterval
        }
        commitIfDue(now: now)
        guard case .recording = status else {
            if case .connecting = status, now - startedAt > options.connectTimeout {
                status = .failed(reason: "no DTLS association with the Key Distributor after \(options.connectTimeout)")
            }
            return out
        }
        if now - lastFromMD > options.mediaDistributorSilence {
            status = .failed(reason: "nothing from the Media Distributor for \(options.mediaDistributorSilence)")
        } else if let heard = keyPlane.lastHeardFromKD, now - heard > options.keyDistributorSilence {
            status = .failed(reason: "the Key Distributor has not answered for \(options.keyDistributorSilence)")
        } else if let since = emptySince, now - since >= options.endGrace {
            status = .ended(reason: "every participant left")
        }
        return out
    }

    /// Commits the batch if due. A failing commit keeps the rows and is retried.
    public private(set) var commitFailures = 0
    public private(set) var lastCommitError: ArchiveError?
    private func commitIfDue(now: ContinuousClock.Instant) {
        writer.setDropCounters(drops.byName)
        do { try writer.commitIfDue(now: now) } catch {
            commitFailures += 1
            lastCommitError = error
        }
    }

    /// Ends the session: close_notify to the KD, everything committed, the segment closed with
    /// `reason`, and every EKTKey zeroed in memory. Returns the close_notify datagrams.
    public func finish(reason: String) -> [[UInt8]] {
        let out = keyPlane.leave()
        receiver?.forgetEKTKeys()
        keyPlane.wipeKeys()
        writer.setDropCounters(drops.byName)
        do {
            // A session that never got keyed and stored nothing leaves no segment behind (a
            // recorder retrying against a Media Distributor that is down).
            if receiver == nil, drops.total == 0 { try writer.discardIfEmpty(reason: reason) } else { try writer.finish(reason: reason) }
        } catch {
            commitFailures += 1
            lastCommitError = error
        }
        pending.removeAll()
        return out
    }

    // MARK: - Key plane

    private func receiveKeyPlane(_ datagram: [UInt8], now: ContinuousClock.Instant, arrival: Double) -> [[UInt8]] {
        let result: (datagrams: [[UInt8]], events: [KeyPlaneEvent])
        do { result = try keyPlane.receive(datagram: datagram, now: now) } catch {
            if let receiver { receiver.count(.dtls) } else { earlyDrops.count(.dtls) }
            return []
        }
        var out = result.datagrams
        for event in result.events {
            switch event {
            case .connected:
                guard let keys = keyPlane.srtpKeys, let fromMD = keys.serverWriteDouble, let toMD = keys.clientWriteDouble else {
                    status = .failed(reason: "the association is not in PERC mode (no double SRTP keys)")
                    continue
                }
                do {
                    receiver = try ArchivingReceiver(writer: writer, profile: fromMD.profile, outerKey: fromMD.outerKey,
                                                     outerSalt: fromMD.outerSalt)
                    rtcpOut = try SRTPSession(profile: toMD.profile.layerProfile, masterKey: toMD.outerKey,
                                              masterSalt: toMD.outerSalt, direction: .outbound)
                } catch {
                    status = .failed(reason: "hop keys: \(error)")
                    continue
                }
                status = .recording
                if let cipher = keyPlane.endpoint.negotiation?.ektCipher {
                    for k in keyPlane.ektKeys { receiver?.addEKTKey(k, cipher: cipher) }
                }
                for var p in pending { _ = p.bytes.withUnsafeMutableBytes { receiver?.receive($0, arrival: p.arrival) } }
                pending.removeAll()
                out += receiverReport()
                nextReport = now + options.reportInterval
            case let .ektKey(message):
                guard let cipher = keyPlane.endpoint.negotiation?.ektCipher else { continue }
                do {
                    writer.record(epoch: try ArchivingReceiver.ledgerEntry(for: message, cipher: cipher, conference: conference,
                                                                            authority: authority, seenAt: arrival))
                    epochsSealed += 1
                    receiver?.addEKTKey(message, cipher: cipher)
                } catch {
                    status = .failed(reason: "cannot seal the EKTKey: \(error)")
                }
            case let .roster(events):
                writer.record(roster: events.map { e in
                    ArchivedRosterEvent(sequence: e.sequence, kind: "\(e.kind)", fingerprint: "\(e.fingerprint)",
                                        name: e.displayName, role: "\(e.role)", ssrcs: e.ssrcs,
                                        receivedAt: Double(e.timeMillis) / 1000, spi: e.spi)
                })
                for e in events where e.role == .participant {
                    if e.kind == .leave { present.remove(e.fingerprint) } else { present.insert(e.fingerprint) }
                }
                emptySince = present.isEmpty && keyPlane.roster.contains { $0.role == .participant } ? (emptySince ?? now) : nil
            case let .policy(policy):
                // The archive authority decides access by it later; each segment keeps its copy.
                writer.record(policy: ArchivedPolicy(allowCatchUp: policy.allowCatchUp, administrators: policy.administrators,
                                                     receivedAt: arrival))
            case .closed:
                status = .ended(reason: "the Key Distributor closed the association")
            }
        }
        return out
    }

    /// RR (no report blocks) + the recorder subscription, sealed on the hop.
    private func receiverReport() -> [[UInt8]] {
        guard let rtcpOut else { return [] }
        var compound: [UInt8] = [0x80, RTCPPacketType.receiverReport, 0x00, 0x01]
        compound += [UInt8(ssrc >> 24), UInt8(truncatingIfNeeded: ssrc >> 16), UInt8(truncatingIfNeeded: ssrc >> 8), UInt8(truncatingIfNeeded: ssrc)]
        RTCPApplication.recorderSubscription(ssrc: ssrc).write(to: &compound)
        do { try rtcpOut.protectRTCP(&compound) } catch { return [] }
        return [compound]
    }
}
