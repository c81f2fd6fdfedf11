import Archive
import Authority
import Capture
import EKT
import Foundation
import KeyExchange
import Lab
import Net
import Recorder
import RTPWire
import SRTP
import Synchronization
import Testing
import TestSupport

/// Thread-safe append-only list.
final class Collected<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    func append(_ item: T) { lock.withLock { items.append(item) } }
    var all: [T] { lock.withLock { items } }
}

final class Box<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func set(_ v: T) { lock.withLock { value = v } }
    var get: T? { lock.withLock { value } }
}

/// A lab conference (KD, MD, participants on loopback) with `percrec record`'s runner in-process.
final class RecordedLab: @unchecked Sendable {
    let lab: LabConference
    let recorderIdentity: DTLSIdentity
    let authority = AuthorityPrivateKey()
    let archive: Archive
    let directory: String
    let runner: RecorderRunner
    /// What the MD sent, to whom, when (wall clock).
    let mdSent = Collected<(to: SocketAddress, bytes: [UInt8], at: Double)>()
    /// What the recorder's socket delivered, with the arrival time it archived.
    let recorderReceived = Collected<(bytes: [UInt8], arrival: Double)>()
    let outcome = Box<RecorderOutcome>()
    let logs = Collected<LogLine>()

    init(participants: Int = 3, spare: Int = 1, policy: ConferencePolicyConfig = .init()) throws {
        directory = makeTemporaryDirectory("recorded-lab")
        recorderIdentity = try DTLSIdentity(commonName: "recorder")
        var options = LabConference.Options()
        options.participants = participants
        options.spareIdentities = spare
        options.width = 160
        options.height = 120
        options.framesPerSecond = 10
        options.extraInvitations = [InvitedParticipant(name: "archive", fingerprint: recorderIdentity.fingerprint.description, role: .recorder)]
        options.policy = policy
        lab = try LabConference(options: options, recordPayloads: true, log: { _ in })
        archive = try Archive(path: directory + "/archive.sqlite")
        let config = RecorderRunner.Configuration(mediaDistributor: lab.md.localAddress, kdFingerprint: lab.kdIdentity.fingerprint,
                                                  identity: recorderIdentity, conference: options.conference, authority: authority.publicKey)
        let logs = self.logs
        runner = RecorderRunner(configuration: config, archive: archive, log: { logs.append($0) })
        let sent = mdSent, received = recorderReceived
        lab.md.onSend = { to, bytes in sent.append((to, bytes, Date().timeIntervalSince1970)) }
        runner.onDatagram = { bytes, arrival, _ in received.append((Array(bytes), arrival)) }
    }

    func startRecorder() {
        let runner = self.runner, outcome = self.outcome
        Thread.detachNewThread { outcome.set(runner.run()) }
    }

    var isRecording: Bool { runner.withSession { $0?.status == .recording && ($0?.receiver?.storedPackets ?? 0) > 0 } }

    /// Datagrams the MD sent to the recorder's address.
    func sentToRecorder(_ address: SocketAddress) -> [(bytes: [UInt8], at: Double)] {
        mdSent.all.filter { $0.to == address }.map { ($0.bytes, $0.at) }
    }
}

extension RecorderLabSuites {
    @Suite("Recorder: a 3-participant lab conference recorded over loopback", .serialized)
    struct LabRecordingTests {
        @Test("every packet the MD sent the recorder is archived exactly; keys are sealed, never stored; the KD's policy and the roster's SPIs are archived; a pcap import gives the same rows")
        func recordsLabConference() async throws {
            let setup = try RecordedLab(policy: ConferencePolicyConfig(allowCatchUp: true, administrators: ["carol"]))
            let lab = setup.lab
            try await withCleanup({ setup.runner.stop(); lab.stop() }) {
                await offPool { try? lab.start() }
                setup.startRecorder()
                #expect(try await eventually(.seconds(20)) { setup.isRecording }, "the recorder never got media")
                // When the MD has taken the recorder's subscription (observed within 20 ms).
                #expect(try await eventually(.seconds(10)) { lab.md.withCore { $0.counters.recorderSubscriptions } == 1 })
                let subscribedBy = Date().timeIntervalSince1970
                let recorderAddress = try #require(setup.runner.localAddress)
                let hop = try #require(setup.runner.withSession { $0?.hopKeys?.serverWriteDouble })
                try await Task.sleep(for: .seconds(2))
                // A join and a leave in the middle: two rekeys.
                await offPool { try? lab.join(3) }
                try await Task.sleep(for: .seconds(2))
                await offPool { lab.leave(0) }
                try await Task.sleep(for: .seconds(2))
                let secrets = lab.endToEndSecrets()
                // Everyone leaves: the recorder notices the conference ended and stops by itself.
                await offPool { for i in lab.activeIndices { lab.leave(i) } }
                #expect(try await eventually(.seconds(15)) { setup.outcome.get != nil }, "the recorder did not see the conference end")
                #expect(setup.outcome.get == .conferenceEnded(reason: "every participant left"))
                let history = lab.kd.withCore { $0.ektKeyHistory(of: lab.options.conference) }
                let sent = lab.sentPackets()

                // 1. Count and content: every RTP/RTCP datagram the MD sent the recorder, opened on
                //    the hop independently, equals a stored row; nothing else is stored.
                let toRecorder = setup.sentToRecorder(recorderAddress)
                let outer = try DoubleSRTPReceiver(profile: hop.profile, outerKey: hop.outerKey, outerSalt: hop.outerSalt)
                let rtcpHop = try SRTPSession(profile: hop.profile.layerProfile, masterKey: hop.outerKey, masterSalt: hop.outerSalt, direction: .inbound)
                var expectedInner: [[UInt8]] = [], expectedRTCP: [[UInt8]] = []
                for (bytes, _) in toRecorder {
                    switch DatagramKind.classify(bytes) {
                    case .rtp:
                        let fieldLength = try EKTField.parse(trailerOf: bytes).length
                        var srtp = Array(bytes.dropLast(fieldLength))
                        _ = try outer.openOuter(&srtp)
                        expectedInner.append(srtp)
                    case .rtcp:
                        var r = bytes
                        try rtcpHop.unprotectRTCP(&r)
                        expectedRTCP.append(r)
                    default: break
                    }
                }
                let stored = try setup.archive.packets(conference: lab.options.conference)
                let storedRTCP = try setup.archive.rtcpPackets(conference: lab.options.conference)
                #expect(expectedInner.count > 300, "too little media to mean anything: \(expectedInner.count)")
                #expect(stored.count == expectedInner.count)
                #expect(stored.map(\.data).sorted { $0.lexicographicallyPrecedes($1) } == expectedInner.sorted { $0.lexicographicallyPrecedes($1) })
                #expect(storedRTCP.map(\.data).sorted { $0.lexicographicallyPrecedes($1) } == expectedRTCP.sorted { $0.lexicographicallyPrecedes($1) })
                let report = try setup.archive.inspect(conference: lab.options.conference)
                #expect(report.totalDrops == 0, "\(report.segments.map(\.drops))")
                #expect(report.segments.count == 1 && report.segments[0].endReason?.contains("every participant left") == true)
                #expect(report.segments[0].untiedPackets == 0)
                // Every participant's audio and video were recorded, without gaps.
                #expect(report.sources.count == 8, "\(report.sources.map(\.ssrc))")
                for source in report.sources {
                    #expect(source.duplicates == 0 && source.participant != nil, "\(source)")
                }
                // No gaps once the MD has the recorder's subscription (its first RTCP); before it,
                // the recorder gets the usual selection (the speaker's video only). A gap may end
                // with the next frame after the subscription: up to 0.5 s of slack.
                for (ssrc, rows) in Dictionary(grouping: stored, by: \.record.ssrc) {
                    let ordered = rows.sorted { $0.record.extendedSequence < $1.record.extendedSequence }
                    for (a, b) in zip(ordered, ordered.dropFirst()) where b.record.extendedSequence != a.record.extendedSequence + 1 {
                        #expect(b.record.arrival < subscribedBy + 0.5,
                                "SSRC \(ssrc): gap after \(a.record.sequence), \(b.record.arrival - subscribedBy) s after the subscription")
                    }
                }
                #expect(Set(report.participants.map(\.name)) == Set((0 ..< 4).map(LabConference.name(of:)) + ["archive"]))

                // 2. The ledger: one sealed key per epoch the recorder saw, including both rekeys;
                //    each opens with the authority key to exactly the KD's EKTKey.
                let epochs = try setup.archive.epochs(conference: lab.options.conference)
                #expect(epochs.count >= 3, "epochs: \(epochs.map(\.spi))")
                for e in epochs {
                    let sealed = SealedEpochKey(conference: lab.options.conference, spi: e.spi, cipher: .aeskw128,
                                                authorityKeyID: e.authorityKeyID, encapsulatedKey: e.encapsulatedKey, ciphertext: e.sealedKey)
                    let opened = try sealed.open(with: setup.authority)
                    #expect(history.contains(opened), "SPI \(e.spi) is not a key the KD issued")
                }

                // 2b. What the archive authority will decide access by: the policy the KD announced,
                //     and a roster that says which epoch each event left in force.
                let policy = try #require(try setup.archive.conferencePolicy(conference: lab.options.conference), "no policy archived")
                #expect(ConferencePolicyConfig(allowCatchUp: policy.allowCatchUp, administrators: policy.administrators) == lab.options.policy)
                #expect(report.policy == ConferenceReport.Policy(policy) && report.policy.announced)
                let facts = try setup.archive.accessFacts(conference: lab.options.conference)
                #expect(facts.policy == policy)
                #expect(facts.roster.map(\.sequence) == (0 ..< facts.roster.count).map { UInt32($0 + 1) })
                #expect(facts.roster.allSatisfy { $0.spi != nil }, "\(facts.roster)")
                // The same SPIs as the KD's log (which goes on with the recorder's own leave).
                let kdLog = lab.kd.withCore { $0.roster(of: lab.options.conference) }
                #expect(facts.roster.count <= kdLog.count)
                #expect(facts.roster.map(\.spi) == kdLog.prefix(facts.roster.count).map { Optional($0.spi) })
                let ownJoin = try #require(facts.roster.first {
                    $0.kind == "join" && $0.role == "recorder" && $0.fingerprint == setup.recorderIdentity.fingerprint.description
                })
                #expect(facts.epochs.contains { $0.spi == ownJoin.spi }, "the recorder's join left SPI \(ownJoin.spi.map(String.init) ?? "nil"), epochs \(facts.epochs.map(\.spi))")

                // 3. Every stored packet opens end to end with the epoch keys and equals what was sent.
                let e2e = EKTReceiver()
                for k in history { try e2e.add(k, cipher: .aeskw128) }
                let fields = try setup.archive.ektFields(conference: lab.options.conference)
                var opened = 0
                var seenTie: [UInt32: (UInt16, UInt16)] = [:]
                for p in stored.sorted(by: { ($0.record.arrival, $0.record.extendedSequence) < ($1.record.arrival, $1.record.extendedSequence) }) {
                    let tie = try #require(p.tie)
                    var field: EKTField = .short
                    if seenTie[p.record.ssrc].map({ $0 != (tie.spi, tie.epoch) }) ?? true {
                        let f = try #require(fields.first { $0.ssrc == p.record.ssrc && $0.spi == tie.spi && $0.epoch == tie.epoch })
                        field = try EKTField.parse(trailerOf: f.field).field
                        seenTie[p.record.ssrc] = (tie.spi, tie.epoch)
                    }
                    var bytes = p.data
                    let n = try bytes.withUnsafeMutableBytes { raw throws(PERCError) in try e2e.open(raw, field: field).length }
                    let plain = try RTPPacket(parsing: Array(bytes.prefix(n)))
                    let original = try #require(sent[p.record.ssrc]?[p.record.sequence])
                    #expect(plain.payload == original.payload)
                    opened += 1
                }
                #expect(opened == stored.count)

                // 4. No plaintext key in the database files: every E2E secret, every EKTKey and salt,
                //    and the recorder's hop keys.
                setup.archive.close()
                var files = Data()
                for suffix in ["", "-wal", "-shm"] {
                    if let d = FileManager.default.contents(atPath: setup.archive.path + suffix) { files.append(d) }
                }
                var keys = secrets
                for k in history { keys += [k.ektKeyValue.unsafeCopiedBytes, k.srtpMasterSalt.unsafeCopiedBytes] }
                keys += [hop.outerKey.unsafeCopiedBytes, hop.outerSalt.unsafeCopiedBytes, hop.innerKey.unsafeCopiedBytes]
                keys.removeAll { k in k.allSatisfy { $0 == 0 } }   // keys already wiped (participants that left) are zeros
                #expect(keys.count > 20)
                for k in keys { #expect(files.range(of: Data(k)) == nil, "a plaintext key is in the archive") }
                let check = try Archive(path: setup.archive.path, create: false)
                #expect(try check.integrityCheck() == ["ok"])

                // 5. A pcap of what the recorder received, imported with the keys, gives the same rows.
                let pcapPath = setup.directory + "/recorder.pcap"
                let writer = try PcapWriter(path: pcapPath)
                for (bytes, arrival) in setup.recorderReceived.all {
                    let s = arrival.rounded(.down)
                    try writer.write(CapturedDatagram(timestamp: CaptureTimestamp(seconds: Int64(s), nanoseconds: UInt32(((arrival - s) * 1e6).rounded()) * 1000),
                                                      sourceAddress: "127.0.0.1", sourcePort: lab.md.localAddress.port,
                                                      destinationAddress: "127.0.0.1", destinationPort: recorderAddress.port, payload: bytes))
                }
                try writer.close()
                let keysFile = ImportKeys(conference: lab.options.conference,
                                          hop: .init(profile: hop.profile, outerKey: hop.outerKey, outerSalt: hop.outerSalt),
                                          epochs: history.map { .init(cipher: .aeskw128, message: $0) }, roster: [],
                                          policy: lab.options.policy)
                let imported = try Archive(path: setup.directory + "/imported.sqlite")
                let summary = try CaptureImporter.run(capture: pcapPath, keys: keysFile, authority: setup.authority.publicKey, archive: imported)
                #expect(summary.drops.total == 0 && summary.dtlsSkipped > 0)
                let importedPackets = try imported.packets(conference: lab.options.conference)
                let live = try check.packets(conference: lab.options.conference)
                #expect(importedPackets.count == live.count)
                for (a, b) in zip(importedPackets, live) {
                    var ra = a.record, rb = b.record
                    #expect(abs(ra.arrival - rb.arrival) < 2e-6)
                    ra.arrival = 0; rb.arrival = 0
                    #expect(ra == rb && a.data == b.data && a.tie?.spi == b.tie?.spi && a.tie?.epoch == b.tie?.epoch)
                }
                #expect(try imported.ektFields(conference: lab.options.conference) == check.ektFields(conference: lab.options.conference))
                #expect(try imported.rtcpPackets(conference: lab.options.conference).map(\.data) == check.rtcpPackets(conference: lab.options.conference).map(\.data))
                // The import seals every key it was given; the live ledger's epochs are among them, same key ids.
                let importedEpochs = Set(try imported.epochs(conference: lab.options.conference).map { "\($0.spi)/\($0.keyID)" })
                #expect(Set(epochs.map { "\($0.spi)/\($0.keyID)" }).isSubset(of: importedEpochs))
                let importedPolicy = try #require(try imported.conferencePolicy(conference: lab.options.conference))
                #expect(importedPolicy.allowCatchUp == policy.allowCatchUp && importedPolicy.administrators == policy.administrators)
            }
        }
    }
}

extension RecorderLabSuites {
    @Suite("Recorder: rejoin after a Media Distributor restart", .serialized)
    struct RecorderRejoinTests {
        @Test("the MD goes away and comes back on the same port: the recorder closes its segment, backs off, and is keyed again in a new one")
        func rejoinsAfterMDRestart() async throws {
            let recorderIdentity = try DTLSIdentity(commonName: "recorder")
            var options = LabConference.Options()
            options.participants = 2
            options.width = 160
            options.height = 120
            options.framesPerSecond = 10
            options.extraInvitations = [InvitedParticipant(name: "archive", fingerprint: recorderIdentity.fingerprint.description, role: .recorder)]
            let lab = try LabConference(options: options, log: { _ in })
            let archive = try Archive(path: makeTemporaryDirectory("rejoin") + "/archive.sqlite")
            var config = RecorderRunner.Configuration(mediaDistributor: lab.md.localAddress, kdFingerprint: lab.kdIdentity.fingerprint,
                                                      identity: recorderIdentity, conference: options.conference,
                                                      authority: AuthorityPrivateKey().publicKey)
            config.session.mediaDistributorSilence = .seconds(2)
            config.initialBackoff = .milliseconds(200)
            let logs = Collected<LogLine>()
            let runner = RecorderRunner(configuration: config, archive: archive, log: { logs.append($0) })
            let secondMD = Box<MediaDistributorServer>()
            try await withCleanup({ runner.stop(); secondMD.get?.stop(); lab.stop() }) {
                await offPool { try? lab.start() }
                Thread.detachNewThread { _ = runner.run() }
                #expect(try await eventually(.seconds(20)) { runner.withSession { ($0?.receiver?.storedPackets ?? 0) > 50 } })
                let firstSegment = try #require(runner.withSession { $0?.writer.segmentID })
                // The MD stops (its socket closes), and a new one starts on the same address.
                lab.md.stop()
                try await Task.sleep(for: .milliseconds(300))
                let md = try MediaDistributorServer(core: MediaDistributor(), listen: lab.md.localAddress, kd: lab.kd.localAddress,
                                                    kdFingerprint: lab.kdIdentity.fingerprint, identity: lab.mdIdentity, log: { _ in })
                secondMD.set(md)
                Thread.detachNewThread { md.run() }
                #expect(try await eventually(.seconds(20)) {
                    runner.withSession { s in s.map { $0.writer.segmentID != firstSegment && $0.status == .recording && $0.epochsSealed > 0 } ?? false }
                }, "\(logs.all.map(\.description))")
                let rejoin = logs.all.first { $0.event == "recorder.rejoin" }
                #expect(rejoin?.value("reason")?.contains("nothing from the Media Distributor") == true, "\(logs.all.map(\.description))")
                runner.stop()
                #expect(try await eventually(.seconds(10)) { runner.withSession { $0 == nil } })
                let report = try archive.inspect(conference: options.conference)
                #expect(report.segments.count == 2)
                #expect(report.segments[0].endReason?.hasPrefix("rejoining: nothing from the Media Distributor") == true)
                #expect(report.segments[0].packets > 50)
                #expect(report.segments[1].endReason == "stopped by signal")
                #expect(report.epochs.count >= 2)   // the KD rekeyed when the recorder's new association replaced the old one
            }
        }
    }
}
