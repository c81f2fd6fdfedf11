import ArgumentParser
import Dispatch
import Foundation
import KeyExchange
import Lab
import Net
import SRTP

#if canImport(Glibc)
import Glibc
#endif

// `percrec identity`, `percrec kd`, `percrec md`: the key plane and the Media Distributor as
// separate processes. Logs are structured lines on stderr (`event key=value …`).

/// Prints `error: message` to stderr and returns the exit code for a usage error (2): a bad
/// option, a missing or invalid file. DESIGN §7: 0 ok, 1 operational failure, 2 usage, 3 unauthorized.
func usageError(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode(2)
}

/// Prints `error: message` to stderr and returns exit code 1 (operational failure).
func operationalError(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode(1)
}

/// Prints a structured log line to stderr.
func logLine(_ component: String) -> @Sendable (LogLine) -> Void {
    { line in FileHandle.standardError.write(Data("\(component) \(line)\n".utf8)) }
}

/// Runs `stop` on SIGINT or SIGTERM (the sources are kept alive by the returned array).
func onTerminationSignals(_ stop: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { sig in
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { stop() }
        source.resume()
        return source
    }
}

/// Loads a certificate and private key (PEM files), or fails with a message naming the file.
func loadIdentity(certificate: String, privateKey: String) throws -> DTLSIdentity {
    guard let cert = FileManager.default.contents(atPath: certificate) else {
        throw usageError("cannot read certificate file \(certificate)")
    }
    guard let key = FileManager.default.contents(atPath: privateKey) else {
        throw usageError("cannot read private key file \(privateKey)")
    }
    do {
        return try DTLSIdentity(certificatePEM: [UInt8](cert), privateKeyPEM: SecretBytes([UInt8](key)))
    } catch {
        throw usageError("\(certificate) / \(privateKey): \(error)")
    }
}

func parseAddress(_ text: String, option: String) throws -> SocketAddress {
    do { return try SocketAddress(parsing: text) } catch { throw usageError("\(option): \(error)") }
}

struct IdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identity",
        abstract: "Create a certificate and key (ECDSA P-256, self-signed) and print its fingerprint.",
        discussion: "Writes NAME-cert.pem and NAME-key.pem (mode 0600) into --out. Participants, the recorder, the Media Distributor and the Key Distributor are identified by these fingerprints.")

    @Option(help: "Directory to write the files into (created if missing).")
    var out: String
    @Option(help: "Common name and file name prefix.")
    var name: String

    func run() throws {
        let identity = try DTLSIdentity(commonName: name)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let cert = (out as NSString).appendingPathComponent("\(name)-cert.pem")
        let key = (out as NSString).appendingPathComponent("\(name)-key.pem")
        try identity.certificatePEM.write(toFile: cert, atomically: true, encoding: .utf8)
        guard FileManager.default.createFile(atPath: key, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: key) else { throw usageError("cannot create \(key)") }
        identity.privateKeyPEM.withUnsafeBytes { handle.write(Data($0)) }
        try handle.close()
        print("certificate: \(cert)")
        print("private key: \(key)")
        print("fingerprint: \(identity.fingerprint)")
    }
}

struct KDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kd",
        abstract: "Run the reference Key Distributor (RFC 8871) from a configuration file.",
        discussion: """
        Media Distributors connect over TLS (the DTLS tunnel, draft-ietf-perc-dtls-tunnel-12); \
        both sides are pinned by certificate fingerprint. Each endpoint is admitted by its DTLS \
        certificate fingerprint, keyed with the conference's EKTKey, rekeyed on every join and \
        leave, and sent the roster. See docs/key-plane.md for the file format; \
        `percrec kd --example-config` prints one.
        """)

    @Option(help: "Configuration file (JSON).")
    var config: String?
    @Flag(help: "Print an example configuration and exit.")
    var exampleConfig = false

    func run() throws {
        if exampleConfig {
            print(KeyDistributorConfig(listen: "127.0.0.1:7100", certificate: "kd-cert.pem", privateKey: "kd-key.pem",
                                       mediaDistributors: ["sha-256 <fingerprint of the MD certificate>"],
                                       conferences: [ConferenceConfig(id: "weekly", participants: [
                                           InvitedParticipant(name: "alice", fingerprint: "sha-256 <alice's fingerprint>"),
                                           InvitedParticipant(name: "archive", fingerprint: "sha-256 <recorder's fingerprint>", role: .recorder),
                                       ])]).encoded())
            return
        }
        guard let config else { throw usageError("--config FILE is required (or --example-config)") }
        let parsed: KeyDistributorConfig
        do { parsed = try KeyDistributorConfig.load(path: config) } catch { throw usageError("\(error)") }
        let base = (config as NSString).deletingLastPathComponent
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p) }
        let identity: DTLSIdentity
        switch (parsed.certificate, parsed.privateKey) {
        case let (cert?, key?): identity = try loadIdentity(certificate: resolve(cert), privateKey: resolve(key))
        case (nil, nil): identity = try DTLSIdentity(commonName: "percrec-kd")
        default: throw usageError("\(config): give both certificate and private_key, or neither")
        }
        let log = logLine("kd")
        let core = try KeyDistributor(config: parsed, identity: identity, log: log)
        let mds = Set(try parsed.mediaDistributors.map { try DTLSFingerprint(parsing: $0) })
        let server: KeyDistributorServer
        do {
            server = try KeyDistributorServer(core: core, listen: try parseAddress(parsed.listen, option: "listen"),
                                              mediaDistributors: mds, log: log)
        } catch let error as NetError { throw operationalError("cannot listen on \(parsed.listen): \(error)") }
        let signals = onTerminationSignals { server.stop() }
        server.run()
        _ = signals
    }
}

struct MDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "md",
        abstract: "Run the reference selective-forwarding Media Distributor on UDP.",
        discussion: """
        Relays each endpoint's DTLS to the Key Distributor through the TLS tunnel, gets the \
        hop-by-hop keys from it, and forwards the loudest audio sources and the current speaker's \
        video under its own hop-by-hop encryption. It never holds an end-to-end key.
        """)

    @Option(help: "UDP address for endpoints (host:port).")
    var listen = "127.0.0.1:7200"
    @Option(help: "The Key Distributor's tunnel address (host:port).")
    var kd: String
    @Option(help: "The Key Distributor's certificate fingerprint (sha-256 AB:CD:…).")
    var kdFingerprint: String
    @Option(help: "This MD's certificate (PEM); the KD must list its fingerprint.")
    var certificate: String
    @Option(help: "This MD's private key (PEM).")
    var privateKey: String
    @Option(help: "Audio sources forwarded to each endpoint (the loudest).")
    var loudest = 3
    @Option(help: "Seconds of live summary interval (0: none).")
    var summaryEvery = 5

    func run() throws {
        let identity = try loadIdentity(certificate: certificate, privateKey: privateKey)
        let fingerprint: DTLSFingerprint
        do { fingerprint = try DTLSFingerprint(parsing: kdFingerprint) } catch { throw usageError("--kd-fingerprint: \(error)") }
        var config = MediaDistributorConfig()
        config.loudestAudioSources = max(1, loudest)
        let server: MediaDistributorServer
        do {
            server = try MediaDistributorServer(core: MediaDistributor(config: config), listen: try parseAddress(listen, option: "--listen"),
                                                kd: try parseAddress(kd, option: "--kd"), kdFingerprint: fingerprint,
                                                identity: identity, log: logLine("md"))
        } catch let error as NetError { throw operationalError("cannot listen on \(listen): \(error)") }
        let signals = onTerminationSignals { server.stop() }
        if summaryEvery > 0 {
            let every = summaryEvery
            Thread.detachNewThread {
                while true {
                    Thread.sleep(forTimeInterval: Double(every))
                    let c = server.withCore { $0.counters }
                    logLine("md")(LogLine("md.summary", ["rtp_in": "\(c.rtpReceived)", "rtp_out": "\(c.rtpForwarded)",
                                                         "rtcp_out": "\(c.rtcpForwarded)", "hbh_auth_failures": "\(c.hbhAuthenticationFailures)",
                                                         "replays": "\(c.replays)", "speaker_changes": "\(c.speakerChanges)"]))
                }
            }
        }
        server.run()
        _ = signals
    }
}
