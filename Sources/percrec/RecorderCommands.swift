import Archive
import ArgumentParser
import Authority
import AuthorityService
import Capture
import Foundation
import KeyExchange
import Net
import Recorder

// `percrec authority init`, `percrec record`, `percrec import`, `percrec list`, `percrec inspect`.

struct AuthorityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authority",
        abstract: "The archive authority: the key pair every recorded epoch key is sealed to.",
        subcommands: [AuthorityInit.self, AuthorityServe.self, AuthorityAudit.self])
}

struct AuthorityInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the archive authority's X25519 key pair.",
        discussion: """
        Writes DIR/authority.key (PKCS#8 PEM, mode 0600: keep it with the authority only) and \
        DIR/authority.pub (the public key handed to recorders), and the TLS identity of \
        `percrec authority serve`: DIR/tls-key.pem (0600) and DIR/tls-cert.pem, self-signed for the \
        --tls-host names (give tls-cert.pem to exporters: --authority-ca). Refuses to overwrite any.
        """)

    @Option(help: "Directory for authority.key and authority.pub.")
    var out: String
    @Option(name: .customLong("tls-host"), help: "A host name or IP address the service's TLS certificate is valid for; repeatable (default: localhost, 127.0.0.1, ::1).")
    var tlsHosts: [String] = []

    func run() throws {
        do {
            let key = AuthorityPrivateKey()
            let (priv, pub) = try key.write(to: out)
            print("authority key id: \(key.publicKey.keyID)")
            print("private key: \(priv) (0600; never give this to a recorder)")
            print("public key:  \(pub) (give this to recorders: --authority-public-key)")
            do {
                let tls = try AuthorityTLS.generate(in: out, hosts: tlsHosts.isEmpty ? ["localhost", "127.0.0.1", "::1"] : tlsHosts)
                print("TLS certificate: \(tls.certificate) (give this to exporters: --authority-ca)")
                print("TLS key: \(tls.privateKey) (0600)")
            } catch { throw operationalError("\(error)") }
        } catch let e as AuthorityError {
            if case .fileExists = e { throw usageError("\(e)") }
            throw operationalError("\(e)")
        }
    }
}

func loadAuthorityPublicKey(_ path: String) throws -> AuthorityPublicKey {
    do { return try AuthorityPublicKey(contentsOf: path) } catch { throw usageError("--authority-public-key: \(error)") }
}

func openArchive(_ path: String, create: Bool) throws -> Archive {
    do { return try Archive(path: path, create: create) } catch {
        if case .notFound = error { throw usageError("\(error)") }
        throw operationalError("\(error)")
    }
}

/// Writes what a recorder receives to a pcap file (`percrec record --capture`).
final class CaptureSink: @unchecked Sendable {
    private let writer: PcapWriter
    private let source: SocketAddress
    private let lock = NSLock()
    private var failures = 0
    private var firstError: String?

    init(path: String, source: SocketAddress) throws {
        do { writer = try PcapWriter(path: path) } catch { throw operationalError("--capture: \(error)") }
        self.source = source
    }

    func write(_ bytes: UnsafeRawBufferPointer, arrival: Double, destination: SocketAddress) {
        let seconds = arrival.rounded(.down)
        let d = CapturedDatagram(timestamp: CaptureTimestamp(seconds: Int64(seconds), nanoseconds: UInt32((arrival - seconds) * 1e9)),
                                 sourceAddress: source.hostText, sourcePort: source.port,
                                 destinationAddress: destination.hostText, destinationPort: destination.port, payload: Array(bytes))
        lock.withLock {
            do { try writer.write(d) } catch {
                failures += 1
                if firstError == nil { firstError = "\(error)" }
            }
        }
    }

    /// Closes the file; reports datagrams that could not be written (the recording itself is unaffected).
    func close() {
        lock.withLock {
            do { try writer.close() } catch { failures += 1; if firstError == nil { firstError = "\(error)" } }
            if failures > 0 {
                FileHandle.standardError.write(Data("warning: --capture lost \(failures) datagrams: \(firstError ?? "?")\n".utf8))
            }
        }
    }
}

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record a conference as a receive-only participant into the archive.",
        discussion: """
        Joins through the Media Distributor (DTLS to the Key Distributor through it), sends only \
        RTCP receiver reports, and archives the still end-to-end encrypted media, the EKT fields, \
        RTCP and the roster. Every EKT key is sealed to the archive authority before it is \
        written; no plaintext key reaches the disk. Stops on SIGINT/SIGTERM or when the \
        conference ends; after a Media Distributor or Key Distributor restart it rejoins with \
        backoff (each rejoin is a new segment of the same conference).

        Daemon mode: --config FILE records every conference the file lists, e.g.
          {"media_distributor": "127.0.0.1:7200", "kd_fingerprint": "sha-256 AB:…",
           "certificate": "rec-cert.pem", "private_key": "rec-key.pem",
           "authority_public_key": "authority.pub", "archive": "storage/archive.sqlite",
           "conferences": ["c1", "c2"]}
        and, when one ends, waits for it to start again.
        """)

    @Option(help: "The Media Distributor's UDP address (host:port).")
    var md: String?
    @Option(help: "The conference to record.")
    var conference: String?
    @Option(help: "The Key Distributor's certificate fingerprint (sha-256 AB:CD:…).")
    var kdFingerprint: String?
    @Option(help: "The recorder's certificate (PEM); the KD must invite it with role \"recorder\".")
    var certificate: String?
    @Option(help: "The recorder's private key (PEM).")
    var privateKey: String?
    @Option(help: "The archive authority's public key (authority.pub).")
    var authorityPublicKey: String?
    @Option(help: "The archive (SQLite).")
    var archive: String?
    @Option(help: "Also write every datagram received from the MD to this pcap file (still encrypted).")
    var capture: String?
    @Option(help: "Daemon mode: a JSON file listing the conferences to record (see above).")
    var config: String?

    struct DaemonConfig: Decodable {
        var mediaDistributor: String
        var kdFingerprint: String
        var certificate: String
        var privateKey: String
        var authorityPublicKey: String
        var archive: String?
        var conferences: [String]
    }

    func run() throws {
        if let config {
            guard md == nil, conference == nil else { throw usageError("--config replaces --md and --conference; give one or the other") }
            try runDaemon(configPath: config)
            return
        }
        guard let md, let conference, let kdFingerprint, let certificate, let privateKey, let authorityPublicKey else {
            throw usageError("record needs --md, --conference, --kd-fingerprint, --certificate, --private-key and --authority-public-key (or --config FILE)")
        }
        let settings = try makeConfiguration(md: md, kdFingerprint: kdFingerprint, certificate: certificate, privateKey: privateKey,
                                             authorityPublicKey: authorityPublicKey, conference: conference)
        let store = try openArchive(archive ?? Archive.defaultPath, create: true)
        let runner = RecorderRunner(configuration: settings, archive: store, log: logLine("record"))
        var sink: CaptureSink?
        if let capture {
            let s = try CaptureSink(path: capture, source: settings.mediaDistributor)
            runner.onDatagram = { bytes, arrival, local in s.write(bytes, arrival: arrival, destination: local) }
            sink = s
        }
        let signals = onTerminationSignals { runner.stop() }
        logLine("record")(LogLine("record.start", ["conference": conference, "md": md, "archive": store.path,
                                                   "authority_key_id": settings.authority.keyID]))
        let outcome = runner.run()
        sink?.close()
        _ = signals
        let summary: String
        switch outcome {
        case let .conferenceEnded(reason): summary = "conference ended (\(reason))"
        case .stopped: summary = "stopped"
        }
        logLine("record")(LogLine("record.end", ["conference": conference, "outcome": summary, "sessions": "\(runner.sessions)",
                                                 "packets": "\(runner.totalStored)", "drops": "\(runner.totalDrops.total)"]))
    }

    private func makeConfiguration(md: String, kdFingerprint: String, certificate: String, privateKey: String,
                                   authorityPublicKey: String, conference: String) throws -> RecorderRunner.Configuration {
        let identity = try loadIdentity(certificate: certificate, privateKey: privateKey)
        let fingerprint: DTLSFingerprint
        do { fingerprint = try DTLSFingerprint(parsing: kdFingerprint) } catch { throw usageError("kd fingerprint: \(error)") }
        let address = try parseAddress(md, option: "--md")
        return RecorderRunner.Configuration(mediaDistributor: address, kdFingerprint: fingerprint, identity: identity,
                                            conference: conference, authority: try loadAuthorityPublicKey(authorityPublicKey))
    }

    private func runDaemon(configPath: String) throws {
        guard let data = FileManager.default.contents(atPath: configPath) else { throw usageError("cannot read --config \(configPath)") }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let daemon: DaemonConfig
        do { daemon = try decoder.decode(DaemonConfig.self, from: data) } catch {
            throw usageError("--config \(configPath): \(describeDecodingError(error))")
        }
        guard !daemon.conferences.isEmpty else { throw usageError("--config \(configPath): \"conferences\" is empty") }
        let store = try openArchive(archive ?? daemon.archive ?? Archive.defaultPath, create: true)
        let stopping = StopFlag()
        let running = RunningRecorders()
        let group = DispatchGroup()
        for conference in daemon.conferences {
            let settings = try makeConfiguration(md: daemon.mediaDistributor, kdFingerprint: daemon.kdFingerprint,
                                                 certificate: daemon.certificate, privateKey: daemon.privateKey,
                                                 authorityPublicKey: daemon.authorityPublicKey, conference: conference)
            group.enter()
            let log = logLine("record")
            Thread.detachNewThread {
                // One conference: record it, and when it ends wait for it to start again.
                while !stopping.isSet {
                    let runner = RecorderRunner(configuration: settings, archive: store, log: log)
                    running.add(runner)
                    if stopping.isSet { runner.stop() }
                    let outcome = runner.run()
                    running.remove(runner)
                    if case let .conferenceEnded(reason) = outcome {
                        log(LogLine("record.conference_ended", ["conference": conference, "reason": reason, "next_attempt": "5 s"]))
                        let until = ContinuousClock.now + .seconds(5)
                        while !stopping.isSet, ContinuousClock.now < until { Thread.sleep(forTimeInterval: 0.1) }
                    }
                }
                group.leave()
            }
        }
        let signals = onTerminationSignals { stopping.set(); running.stopAll() }
        logLine("record")(LogLine("record.daemon", ["conferences": daemon.conferences.joined(separator: ","), "archive": store.path]))
        group.wait()
        _ = signals
    }
}

/// The daemon's live runners, so a signal stops them all.
final class RunningRecorders: @unchecked Sendable {
    private let lock = NSLock()
    private var runners: [ObjectIdentifier: RecorderRunner] = [:]
    func add(_ r: RecorderRunner) { lock.withLock { runners[ObjectIdentifier(r)] = r } }
    func remove(_ r: RecorderRunner) { _ = lock.withLock { runners.removeValue(forKey: ObjectIdentifier(r)) } }
    func stopAll() { lock.withLock { for r in runners.values { r.stop() } } }
}

/// "at $.conferences[1]: expected String" from a DecodingError.
func describeDecodingError(_ error: any Error) -> String {
    func snake(_ name: String) -> String {
        name.reduce(into: "") { out, c in if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) } }
    }
    func path(_ keys: [any CodingKey]) -> String {
        "$" + keys.map { $0.intValue.map { "[\($0)]" } ?? ".\(snake($0.stringValue))" }.joined()
    }
    switch error as? DecodingError {
    case let .keyNotFound(key, c)?: return "missing \(path(c.codingPath + [key]))"
    case let .typeMismatch(_, c)?, let .valueNotFound(_, c)?: return "at \(path(c.codingPath)): \(c.debugDescription)"
    case let .dataCorrupted(c)?: return "at \(path(c.codingPath)): \(c.debugDescription)"
    default: return "\(error)"
    }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Archive a packet capture of what a Media Distributor sent to a recorder.",
        discussion: """
        Reads pcap or pcapng (Ethernet, Linux cooked or raw IP; IPv4 and IPv6; UDP) and \
        produces the same archive content a live recording would, as a new segment. KEYS.json \
        gives the hop key and the EKT keys (see docs/recorder.md); the EKT keys are sealed to \
        the authority like live ones. A datagram that is not valid SRTP/SRTCP under these keys \
        is skipped and counted, never fatal.
        """)

    @Option(help: "The capture file (pcap or pcapng).")
    var pcap: String
    @Option(help: "The keys file (JSON).")
    var keys: String
    @Option(help: "The archive authority's public key (authority.pub).")
    var authorityPublicKey: String
    @Option(help: "The archive (SQLite).")
    var archive: String = Archive.defaultPath
    @Option(help: "Only datagrams to this UDP destination port.")
    var port: UInt16?
    @Flag(help: "Print the summary as JSON.")
    var json = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: keys) else { throw usageError("cannot read --keys \(keys)") }
        let importKeys: ImportKeys
        do { importKeys = try ImportKeys(json: data) } catch { throw usageError("--keys \(keys): \(error)") }
        defer { importKeys.wipe() }
        let authority = try loadAuthorityPublicKey(authorityPublicKey)
        guard FileManager.default.fileExists(atPath: pcap) else { throw usageError("--pcap \(pcap): no such file") }
        let store = try openArchive(archive, create: true)
        let interactive = isatty(STDERR_FILENO) == 1
        let summary: CaptureImporter.Summary
        do {
            summary = try CaptureImporter.run(capture: pcap, keys: importKeys, authority: authority, archive: store, port: port) { s in
                let line = "import: \(s.selected) datagrams read, \(s.storedPackets) packets stored"
                FileHandle.standardError.write(Data((interactive ? "\r" + line : line + "\n").utf8))
            }
        } catch {
            throw operationalError("\(error)")
        }
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
        if json {
            let object: [String: Any] = [
                "conference": importKeys.conference, "segment": summary.segmentID, "frames": summary.framesRead,
                "udp_datagrams": summary.udpDatagrams, "selected": summary.selected, "dtls_skipped": summary.dtlsSkipped,
                "stored_packets": summary.storedPackets, "stored_rtcp": summary.storedRTCP,
                "drops": summary.drops.byName, "capture_skipped": Dictionary(uniqueKeysWithValues: summary.captureSkipped.map { ($0.key.rawValue, $0.value) }),
            ]
            let out = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: out, as: UTF8.self))
        } else {
            print("imported \(pcap) into \(store.path), conference \(importKeys.conference), segment \(summary.segmentID)")
            print("  UDP datagrams \(summary.udpDatagrams) (selected \(summary.selected)), DTLS skipped \(summary.dtlsSkipped)")
            print("  stored: \(summary.storedPackets) RTP packets, \(summary.storedRTCP) RTCP packets, \(importKeys.epochs.count) sealed epoch keys")
            let drops = summary.drops.byName.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            print("  refused: \(summary.drops.total)" + (drops.isEmpty ? "" : " (\(drops))"))
            let skipped = summary.captureSkipped.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: " ")
            if !skipped.isEmpty { print("  capture frames skipped: \(skipped)") }
        }
    }
}

func timeText(_ t: Double?) -> String {
    guard let t else { return "-" }
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
    return f.string(from: Date(timeIntervalSince1970: t))
}

func durationText(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%dh%02dm%02ds", s / 3600, s / 60 % 60, s % 60) : String(format: "%dm%02ds", s / 60, s % 60)
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the archive's conferences (no keys needed).")

    @Option(help: "The archive (SQLite).")
    var archive: String = Archive.defaultPath
    @Flag(help: "Machine-readable output.")
    var json = false

    func run() throws {
        let store = try openArchive(archive, create: false)
        let conferences: [ConferenceSummary]
        do { conferences = try store.conferences() } catch { throw operationalError("\(error)") }
        if json { try printJSON(conferences); return }
        if conferences.isEmpty { print("no conferences in \(store.path)"); return }
        print("conference            started               duration  segments  participants  sources  epochs   packets")
        for c in conferences {
            let name = c.name.count > 20 ? String(c.name.prefix(19)) + "…" : c.name
            print(name.padding(toLength: 22, withPad: " ", startingAt: 0) + timeText(c.firstArrival ?? c.createdAt).padding(toLength: 22, withPad: " ", startingAt: 0)
                  + durationText(c.durationSeconds).leftPad(8) + "\(c.segments)".leftPad(10) + "\(c.participants)".leftPad(14)
                  + "\(c.sources)".leftPad(9) + "\(c.epochs)".leftPad(8) + "\(c.packets)".leftPad(10))
        }
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show what the archive holds for one conference (no keys needed).")

    @Argument(help: "The conference.")
    var conference: String
    @Option(help: "The archive (SQLite).")
    var archive: String = Archive.defaultPath
    @Flag(help: "Machine-readable output.")
    var json = false

    func run() throws {
        let store = try openArchive(archive, create: false)
        let report: ConferenceReport
        do { report = try store.inspect(conference: conference) } catch {
            if case .unknownConference = error { throw usageError("\(error)") }
            throw operationalError("\(error)")
        }
        if json { try printJSON(report); return }
        print("conference \(report.conference)")
        print(Self.policyLine(report.policy))
        print("\nsegments")
        for s in report.segments {
            let dur = (s.endedAt ?? s.lastCommitAt ?? s.startedAt) - s.startedAt
            print("  #\(s.id) \(s.origin) \(timeText(s.startedAt)) \(durationText(dur)) packets=\(s.packets) rtcp=\(s.rtcpPackets) "
                  + "untied=\(s.untiedPackets) end=\"\(s.endReason ?? (s.endedAt == nil ? "open (recording, or the recorder died)" : "-"))\"")
            let drops = s.drops.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            print("      drops: " + (drops.isEmpty ? "none" : drops))
        }
        print("\nparticipants")
        for p in report.participants {
            print("  \(p.name) [\(p.role)] joins=\(p.joins) leaves=\(p.leaves) ssrcs=\(p.ssrcs.map { String(format: "0x%08x", $0) }.joined(separator: ","))")
            print("      \(p.fingerprint)")
        }
        print("\nsources")
        for s in report.sources {
            print("  " + String(format: "0x%08x", s.ssrc) + " \(s.media) pt=\(s.payloadType) \(s.participant ?? "?") packets=\(s.packets) "
                  + "duration=\(durationText(s.durationSeconds)) missing=\(s.missingPackets) gaps=\(s.gaps) duplicates=\(s.duplicates)")
        }
        print("\nepochs (keys sealed to the authority; none stored in the clear)")
        for e in report.epochs {
            print("  spi=\(e.spi) \(e.cipher) key_id=\(e.keyID) first=\(timeText(e.firstSeen)) ekt_fields=\(e.ektFields) packets=\(e.packets) authority=\(e.authorityKeyID)")
        }
    }

    /// "policy: catch-up allowed; administrators: a, b", or what applies when none was announced.
    static func policyLine(_ policy: ConferenceReport.Policy) -> String {
        guard policy.announced else { return "policy: none announced (defaults: no catch-up, no administrators)" }
        let admins = policy.administrators.isEmpty ? "none" : policy.administrators.joined(separator: ", ")
        return "policy: catch-up \(policy.allowCatchUp ? "allowed" : "not allowed"); administrators: \(admins)"
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
