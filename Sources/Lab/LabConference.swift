import Foundation
import KeyExchange
import Media
import Net
import RTPWire

/// A whole conference on loopback: the Key Distributor and the Media Distributor as servers on
/// their own threads, and synthetic participants (Opus + VP8) on theirs, each with a fresh
/// identity invited in the KD's configuration. Used by `percrec lab`, the demo and tests.
public final class LabConference: @unchecked Sendable {
    public struct Options: Sendable {
        public var conference = "lab"
        public var participants = 3
        /// Identities invited beyond the first `participants`, for joins during the run.
        public var spareIdentities = 0
        /// Extra invitations (a recorder, say): name, fingerprint, role.
        public var extraInvitations: [InvitedParticipant] = []
        public var width = 640
        public var height = 360
        public var framesPerSecond = 15
        public var loudestAudioSources = 3
        public var forwardAllVideo = false
        public var malicious: MaliciousBehavior?
        /// The conference policy the KD announces (and a recorder archives).
        public var policy: ConferencePolicyConfig = .init()
        public init() {}
    }

    /// What one participant sent and received so far.
    public struct ParticipantStats: Sendable {
        public var name: String
        public var audioSSRC: UInt32
        public var videoSSRC: UInt32
        public var active: Bool
        public var sent: Int
        public var received: Int
        public var rtcpReceived: Int
        public var sendErrors: Int
        public var decryptedBySource: [UInt32: Int]
        public var drops: String
        public var spi: UInt16?
        /// Every SPI the participant was given (`ParticipantSession.receivedSPIs`).
        public var receivedSPIs: [UInt16]
    }

    public let options: Options
    public let kdIdentity: DTLSIdentity
    public let mdIdentity: DTLSIdentity
    public let identities: [DTLSIdentity]
    public let kd: KeyDistributorServer
    public let md: MediaDistributorServer
    private var threads: [Thread] = []
    private let lock = NSLock()
    private var members: [Int: Member] = [:]
    private let log: (LogLine) -> Void
    private let recordSent: Bool
    private let payloads = PayloadLog()

    private struct Member {
        let runner: ParticipantRunner
        let media: SyntheticParticipantMedia
        let done: DispatchSemaphore
        var active: Bool
    }

    /// Creates identities, the KD configuration and both servers (bound to loopback ports).
    /// `recordPayloads` keeps every sent and decrypted payload by (SSRC, sequence number), so
    /// tests can compare them; leave it off for long runs.
    public init(options: Options, recordPayloads: Bool = false, log: @escaping (LogLine) -> Void) throws {
        self.options = options
        self.log = log
        recordSent = recordPayloads
        kdIdentity = try DTLSIdentity(commonName: "lab-kd")
        mdIdentity = try DTLSIdentity(commonName: "lab-md")
        identities = try (0 ..< options.participants + options.spareIdentities).map { try DTLSIdentity(commonName: "participant-\($0)") }
        var invited = identities.enumerated().map {
            InvitedParticipant(name: LabConference.name(of: $0.offset), fingerprint: $0.element.fingerprint.description)
        }
        invited += options.extraInvitations
        let config = KeyDistributorConfig(listen: "127.0.0.1:0", mediaDistributors: [mdIdentity.fingerprint.description],
                                          conferences: [ConferenceConfig(id: options.conference, policy: options.policy,
                                                                         participants: invited)])
        let core = try KeyDistributor(config: config, identity: kdIdentity, log: { log($0.prefixed("kd")) })
        kd = try KeyDistributorServer(core: core, listen: .loopback(port: 0), mediaDistributors: [mdIdentity.fingerprint],
                                      log: { log($0.prefixed("kd")) })
        var mdConfig = MediaDistributorConfig()
        mdConfig.loudestAudioSources = options.loudestAudioSources
        mdConfig.forwardAllVideo = options.forwardAllVideo
        mdConfig.malicious = options.malicious
        md = try MediaDistributorServer(core: MediaDistributor(config: mdConfig), listen: .loopback(port: 0), kd: kd.localAddress,
                                        kdFingerprint: kdIdentity.fingerprint, identity: mdIdentity,
                                        log: { log($0.prefixed("md")) })
    }

    public static func name(of index: Int) -> String { ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"][safe: index] ?? "participant-\(index)" }
    public static func audioSSRC(of index: Int) -> UInt32 { 0x1000_0000 + UInt32(index) * 0x10 }
    public static func videoSSRC(of index: Int) -> UInt32 { 0x1000_0000 + UInt32(index) * 0x10 + 1 }

    /// Starts the KD and the MD, then the first `participants` participants.
    public func start() throws {
        spawn("kd") { [kd] in kd.run() }
        spawn("md") { [md] in md.run() }
        for i in 0 ..< options.participants { try join(i) }
    }

    /// Starts participant `index` (an invited identity).
    public func join(_ index: Int) throws {
        guard index < identities.count else { return }
        let name = LabConference.name(of: index)
        let session = try ParticipantSession(name: name, identity: identities[index], kdFingerprint: kdIdentity.fingerprint,
                                             conference: options.conference,
                                             sendingSSRCs: [LabConference.audioSSRC(of: index), LabConference.videoSSRC(of: index)])
        let media = try SyntheticParticipantMedia(name: name, audioSSRC: LabConference.audioSSRC(of: index),
                                                  videoSSRC: LabConference.videoSSRC(of: index), seed: UInt64(index + 1) * 7919,
                                                  width: options.width, height: options.height,
                                                  framesPerSecond: options.framesPerSecond)
        if recordSent {
            let payloads = self.payloads
            media.onSent = { p in payloads.sent(p) }
        }
        let runner = try ParticipantRunner(session: session, mediaDistributor: md.localAddress, generator: media)
        if recordSent {
            let payloads = self.payloads
            runner.onMedia = { p, _ in payloads.received(p, by: name) }
        }
        let done = DispatchSemaphore(value: 0)
        lock.withLock { members[index] = Member(runner: runner, media: media, done: done, active: true) }
        spawn(name) { runner.run(); done.signal() }
        log(LogLine("lab.join", ["participant": name]))
    }

    /// Participant `index` leaves (close_notify to the KD) and its thread ends.
    public func leave(_ index: Int) {
        guard let member = lock.withLock({ () -> Member? in
            guard var m = members[index], m.active else { return nil }
            m.active = false
            members[index] = m
            return m
        }) else { return }
        member.runner.leave()
        _ = member.done.wait(timeout: .now() + 5)
        log(LogLine("lab.leave", ["participant": LabConference.name(of: index)]))
    }

    public var activeIndices: [Int] { lock.withLock { members.filter(\.value.active).map(\.key).sorted() } }

    public func stats() -> [ParticipantStats] {
        lock.withLock {
            members.sorted { $0.key < $1.key }.map { index, m in
                m.runner.withSession { s in
                    ParticipantStats(name: s.name, audioSSRC: LabConference.audioSSRC(of: index), videoSSRC: LabConference.videoSSRC(of: index),
                                     active: m.active, sent: m.runner.sentPackets, received: m.runner.receivedPackets, rtcpReceived: m.runner.rtcpReceived, sendErrors: m.runner.sendErrors,
                                     decryptedBySource: s.decrypted, drops: s.receiver?.drops.description ?? "none", spi: s.currentSPI,
                                     receivedSPIs: s.receivedSPIs)
                }
            }
        }
    }

    /// Packets recorded with `recordPayloads`: what was sent per (SSRC, seq) (as packetized,
    /// with the level extension), and what `name` decrypted (the inner packet).
    public func sentPackets() -> [UInt32: [UInt16: RTPPacket]] { payloads.allSent() }
    public func receivedPackets(of name: String) -> [UInt32: [UInt16: RTPPacket]] { payloads.allReceived(by: name) }

    /// Every E2E secret the participants hold now (inner keys, EKT keys, salts), for key-store audits.
    public func endToEndSecrets() -> [[UInt8]] {
        lock.withLock {
            members.values.flatMap { m in
                m.runner.withSession { s -> [[UInt8]] in
                    var out: [[UInt8]] = []
                    if let keys = s.keyPlane.srtpKeys {
                        for d in [keys.clientWriteDouble, keys.serverWriteDouble].compactMap({ $0 }) {
                            out += [d.innerKey.unsafeCopiedBytes, d.innerSalt.unsafeCopiedBytes]
                        }
                    }
                    for k in s.keyPlane.ektKeys { out += [k.ektKeyValue.unsafeCopiedBytes, k.srtpMasterSalt.unsafeCopiedBytes] }
                    return out
                }
            }
        }
    }

    /// Stops everyone: participants first (they leave), then the MD and the KD.
    public func stop() {
        for i in activeIndices { leave(i) }
        md.stop()
        kd.stop()
        for t in threads { while t.isExecuting { Thread.sleep(forTimeInterval: 0.01) } }
    }

    private func spawn(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let t = Thread(block: body)
        t.name = name
        threads.append(t)
        t.start()
    }
}

/// Payloads by (SSRC, sequence number): what participants sent and what each decrypted.
private final class PayloadLog: @unchecked Sendable {
    private let lock = NSLock()
    private var sentBySource: [UInt32: [UInt16: RTPPacket]] = [:]
    private var receivedByName: [String: [UInt32: [UInt16: RTPPacket]]] = [:]

    func sent(_ p: RTPPacket) { lock.withLock { sentBySource[p.ssrc, default: [:]][p.sequenceNumber] = p } }
    func received(_ p: RTPPacket, by name: String) {
        lock.withLock { receivedByName[name, default: [:]][p.ssrc, default: [:]][p.sequenceNumber] = p }
    }
    func allSent() -> [UInt32: [UInt16: RTPPacket]] { lock.withLock { sentBySource } }
    func allReceived(by name: String) -> [UInt32: [UInt16: RTPPacket]] { lock.withLock { receivedByName[name] ?? [:] } }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
