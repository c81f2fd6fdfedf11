import Access
import Archive
import Authority
@testable import AuthorityService
import EKT
import Export
import Foundation
import Lab
import SRTP
import Testing
import TestSupport

/// The archive authority over real HTTPS on loopback, against the lab conference `ExportFixture`
/// recorded (alice, bob, carol from the start; dave joins at ~4 s; alice leaves at ~8 s; the
/// KD's policy: no catch-up, administrator "oscar").
///
/// What a participant may obtain is checked against what the lab participant itself was given:
/// the SPIs of the EKTKeys its session installed (`ParticipantStats.receivedSPIs`), not against
/// the policy code's own reading of the roster.
final class AuthorityUnderTest: @unchecked Sendable {
    let fixture: ExportFixture
    let directory: String
    /// A copy of the fixture's archive: audit entries, policy changes and tampering stay here.
    let archivePath: String
    let archive: Archive
    let signing = TokenSigningKey.generate()
    let certificate: String
    let tlsKey: String
    var port = 0
    var url: String { "https://127.0.0.1:\(port)" }
    /// Every response body received by `post`, for the plaintext search.
    let bodies = Collected<Data>()

    init(_ fixture: ExportFixture) throws {
        self.fixture = fixture
        directory = makeTemporaryDirectory("authority")
        archivePath = directory + "/archive.sqlite"
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: fixture.archivePath + suffix) {
            try FileManager.default.copyItem(atPath: fixture.archivePath + suffix, toPath: archivePath + suffix)
        }
        archive = try Archive(path: archivePath, create: false)
        (certificate, tlsKey) = try AuthorityTLS.generate(in: directory, hosts: ["127.0.0.1"])
    }

    /// Runs `body` with the service listening on a free loopback port.
    func serving(_ body: () async throws -> Void) async throws {
        let authority = KeyReleaseAuthority(archive: archive, authorityKey: fixture.authority, tokenKey: signing.publicKey)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = try AuthorityServer.application(
            authority: authority, host: "127.0.0.1", port: 0,
            tls: try AuthorityTLS.serverConfiguration(certificate: certificate, privateKey: tlsKey),
            identity: (fixture.authority.publicKey.keyID, signing.publicKey.keyID), log: { _ in },
            onListening: { continuation.yield($0) })
        let service = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        port = try #require(await iterator.next())
        do { try await body() } catch {
            service.cancel()
            _ = try? await service.value
            throw error
        }
        service.cancel()
        _ = try? await service.value
    }

    func token(_ principal: String, _ role: AccessRole, conference: String? = nil, lifetime: TimeInterval = 600,
               now: Date = Date(), key: TokenSigningKey? = nil) async throws -> String {
        try await AccessToken.issue(principal: principal, conference: conference ?? fixture.conference, role: role, lifetime: lifetime,
                                    signingKey: key ?? signing, now: now)
    }

    /// One key-release request; the body is kept for the plaintext search.
    func post(_ token: String?, requester: AuthorityPrivateKey = AuthorityPrivateKey(), conference: String? = nil,
              raw: String? = nil) async throws -> (status: Int, body: Data) {
        let client = try AuthorityClient(baseURL: url, trustedCertificates: certificate)
        let request = KeyReleaseRequest(requesterPublicKey: raw ?? Data(requester.publicKey.rawRepresentation).base64EncodedString())
        let (status, body) = try await client.post(path: "/v1/conferences/\(conference ?? fixture.conference)/key-release",
                                                   token: token, json: request)
        bodies.append(body)
        return (status, body)
    }

    func granted(_ token: String) async throws -> (granted: Set<UInt16>, refused: [RefusedEpoch]) {
        let (status, body) = try await post(token)
        if status == 403 {
            let error = try JSONDecoder().decode(KeyReleaseErrorBody.self, from: body)
            return ([], error.refused)
        }
        #expect(status == 200, "\(String(decoding: body, as: UTF8.self))")
        let response = try JSONDecoder().decode(KeyReleaseResponse.self, from: body)
        return (Set(response.granted.map(\.spi)), response.refused)
    }

    /// `percrec export` with a token, as a process.
    func export(_ token: String, to name: String, _ extra: [String] = []) async throws -> (ToolResult, String) {
        let out = directory + "/" + name
        let result = try await runTool(RecorderLabSuites.RecorderProcessTests.executable,
                                       ["export", "--archive", archivePath, "--conference", fixture.conference, "--token", token,
                                        "--authority", url, "--authority-ca", certificate, "--out", out] + extra)
        return (result, out)
    }

    /// The SPIs the lab participant at `index` was given, among those the archive holds.
    func receivedSPIs(_ index: Int) throws -> Set<UInt16> {
        let stats = try #require(fixture.participantStats.first { $0.name == LabConference.name(of: index) })
        return Set(stats.receivedSPIs).intersection(fixture.archivedSPIs)
    }
}

extension RecorderLabSuites {
    @Suite("Authority service over HTTPS: policy, tokens, audit", .serialized)
    struct AuthorityLabTests {
        @Test func administratorGetsEveryEpochThroughTheServeCommand() async throws {
            let fixture = try await ExportFixture.shared.value
            let setup = try AuthorityUnderTest(fixture)
            let keyPath = setup.directory + "/authority.key"
            try fixture.authority.pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
            let tokenKeyPath = setup.directory + "/token-signing.pub"
            try setup.signing.publicKey.pemRepresentation.write(toFile: tokenKeyPath, atomically: true, encoding: .utf8)
            // The real command, as a process: port 0, the bound address read from its first line.
            let server = try ServeProcess(arguments: ["authority", "serve", "--archive", setup.archivePath, "--authority-key", keyPath,
                                                      "--token-public-key", tokenKeyPath, "--listen", "127.0.0.1:0",
                                                      "--tls-certificate", setup.certificate, "--tls-key", setup.tlsKey])
            defer { server.stop() }
            #expect(try await eventually(.seconds(20)) { server.port != nil }, "serve never said where it listens: \(server.output)")
            setup.port = try #require(server.port)

            let admin = try await setup.token("oscar", .admin)
            let (granted, refused) = try await setup.granted(admin)
            #expect(granted == fixture.archivedSPIs)
            #expect(refused.isEmpty)

            let (result, out) = try await setup.export(admin, to: "admin", ["--format", "ogg"])
            #expect(result.status == 0, "\(result.stderr)")
            // The same audio as the administrator's own export with the authority's private key.
            let reference = try fixture.export("admin-reference") { $0.formats = [.ogg] }
            for file in reference.files {
                let twin = out + "/" + (file.path as NSString).lastPathComponent
                #expect(try oggPackets(twin).packets == oggPackets(file.path).packets, "\(twin)")
            }
            #expect(server.output.contains("authority.release"), "serve logs each decision: \(server.output)")
        }

        @Test func participantGetsOnlyTheEpochsTheyWerePresentIn() async throws {
            let fixture = try await ExportFixture.shared.value
            let setup = try AuthorityUnderTest(fixture)
            try await setup.serving {
                for index in 0..<4 {
                    let name = LabConference.name(of: index)
                    let expected = try setup.receivedSPIs(index)
                    #expect(!expected.isEmpty, "\(name) was given keys")
                    // alice left and dave joined late: each missed some epochs (the test would prove nothing otherwise).
                    if index == 0 || index == 3 { #expect(expected != fixture.archivedSPIs, "\(name): \(expected)") }
                    let (granted, refused) = try await setup.granted(try await setup.token(name, .participant))
                    #expect(granted == expected, "\(name)")
                    #expect(Set(refused.map(\.spi)) == fixture.archivedSPIs.subtracting(expected), "\(name)")
                }

                // dave (joined at ~4 s) asks for bob's whole recording: what he was given is written,
                // the epochs before his join are refused, listed, and exit 3.
                let dave = try await setup.token("dave", .participant)
                let (whole, out) = try await setup.export(dave, to: "dave-whole", ["--participant", "bob", "--format", "ogg"])
                #expect(whole.status == 3, "\(whole.stderr)")
                // The epoch the recorder's own join put in force ran until dave joined: bob spoke
                // under it, so it is asked for and listed. (An earlier archived one, in force only
                // before the first recorded media sample, may or may not exist: not asked for.)
                let before = fixture.spisPutInForce(beforeJoinOf: "dave")
                let recorderEpoch = try #require(fixture.kdRoster.first { $0.displayName == "archive" && $0.kind == .join }?.spi)
                #expect(before.contains(recorderEpoch))
                #expect(whole.stderr.contains("refused: SPI \(recorderEpoch) ("), "SPI \(recorderEpoch): \(whole.stderr)")
                // The rekey after dave's own leave is refused too, but bob sent nothing under it: not asked for.
                for spi in fixture.spisPutInForce(afterLeaveOf: "dave") {
                    #expect(!whole.stderr.contains("refused: SPI \(spi) ("), "SPI \(spi): \(whole.stderr)")
                }
                let file = out + "/\(fixture.conference)_bob_audio.ogg"
                let written = try oggPackets(file).packets.dropFirst(2).filter { !isConcealment($0) }   // after OpusHead, OpusTags
                let davesSPIs = try setup.receivedSPIs(3)
                let readable = fixture.bobOpusPayloads(underSPIs: davesSPIs)
                #expect(!written.isEmpty)
                #expect(written.allSatisfy { readable.contains($0) }, "only packets under dave's epochs are written")
                #expect(written.count == readable.count)
                // From his join on, the token covers everything asked: exit 0.
                let joined = try #require(fixture.joinTime(of: "dave"))
                let (fromJoin, _) = try await setup.export(dave, to: "dave-from-join",
                                                           ["--participant", "bob", "--format", "ogg", "--from", isoTime(joined)])
                #expect(fromJoin.status == 0, "\(fromJoin.stderr)")
            }
        }

        @Test func lateJoinerCatchesUpOnlyWhereTheConferenceAllowsIt() async throws {
            let fixture = try await ExportFixture.shared.value
            let setup = try AuthorityUnderTest(fixture)
            #expect(try setup.archive.conferencePolicy(conference: fixture.conference)?.allowCatchUp == false)
            try await setup.serving {
                let dave = try await setup.token("dave", .participant)
                #expect(try await setup.granted(dave).granted == (try setup.receivedSPIs(3)))
                // The same conference under a policy that allows catch-up (as the KD would announce it).
                try setup.archive.recordPolicy(conference: fixture.conference, segment: nil,
                                               ArchivedPolicy(allowCatchUp: true, administrators: ["oscar"], receivedAt: Date().timeIntervalSince1970))
                // Every epoch before his leave (the rekeys of the last leaves came after it).
                let afterDaveLeft = fixture.spisPutInForce(afterLeaveOf: "dave")
                #expect(!afterDaveLeft.isEmpty)
                #expect(try await setup.granted(dave).granted == fixture.archivedSPIs.subtracting(afterDaveLeft))
                let (result, _) = try await setup.export(dave, to: "dave-catch-up", ["--participant", "bob", "--format", "ogg"])
                #expect(result.status == 0, "\(result.stderr)")
                // alice left at ~8 s: catch-up never reaches what came after her leave.
                let alice = try await setup.granted(try await setup.token("alice", .participant))
                let afterLeave = fixture.spisPutInForce(afterLeaveOf: "alice")
                #expect(afterLeave == fixture.archivedSPIs.subtracting(try setup.receivedSPIs(0)), "what alice missed came after she left")
                #expect(alice.granted == fixture.archivedSPIs.subtracting(afterLeave))
                #expect(!afterLeave.isEmpty)
                for r in alice.refused { #expect(r.reason.contains("after alice left"), "\(r)") }
            }
        }

        @Test func strangerGetsNothing() async throws {
            let fixture = try await ExportFixture.shared.value
            let setup = try AuthorityUnderTest(fixture)
            try await setup.serving {
                let mallory = try await setup.token("mallory", .participant)
                let (status, body) = try await setup.post(mallory)
                #expect(status == 403)
                #expect(String(decoding: body, as: UTF8.self).contains("mallory is not on the roster"))
                let (result, out) = try await setup.export(mallory, to: "mallory")
                #expect(result.status == 3, "\(result.stderr)")
                #expect(result.stderr.contains("not on the roster"))
                #expect(!FileManager.default.fileExists(atPath: out), "nothing is written, not even the directory")
                // An admin role the policy does not list is nobody.
                let (adminStatus, _) = try await setup.post(try await setup.token("mallory", .admin))
                #expect(adminStatus == 403)
            }
        }

        @Test func expiredForgedAndMisdirectedTokensAreRefused() async throws {
            let fixture = try await ExportFixture.shared.value
            let setup = try AuthorityUnderTest(fixture)
            try await setup.serving {
                func refusal(_ token: String?) async throws -> (Int, String) {
                    let (status, body) = try await setup.post(token)
                    return (status, (try? JSONDecoder().decode(KeyReleaseErrorBody.self, from: body).error) ?? "")
                }
                let expired = try await setup.token("oscar", .admin, lifetime: 60, now: Date().addingTimeInterval(-3600))
                let (s1, r1) = try await refusal(expired)
                #expect(s1 == 401 && r1.contains("expired"), "\(r1)")

                let forged = try await setup.token("oscar", .admin, key: .generate())
                let (s2, r2) = try await refusal(forged)
                #expect(s2 == 401 && r2.contains("signature"), "\(r2)")

                // A valid token whose payload was edited (participant → admin) no longer verifies.
                let genuine = try await setup.token("dave", .participant)
                let parts = genuine.split(separator: ".").map(String.init)
                var payload = try #require(base64URLDecode(parts[1]))
                payload = Data(String(decoding: payload, as: UTF8.self).replacingOccurrences(of: "\"participant\"", with: "\"admin\"").utf8)
                let edited = [parts[0], base64URLEncode(payload), parts[2]].joined(separator: ".")
                let (s3, r3) = try await refusal(edited)
                #expect(s3 == 401 && r3.contains("signature"), "\(r3)")

                let elsewhere = try await setup.token("oscar", .admin, conference: "another-conference")
                let (s4, r4) = try await refusal(elsewhere)
                #expect(s4 == 403 && r4.contains("another-conference"), "\(r4)")

                let (s5, r5) = try await refusal(nil)
                #expect(s5 == 401 && r5.contains("no access token"), "\(r5)")

                let (s6, _) = try await setup.post(try await setup.token("oscar", .admin), raw: "not-a-key")
                #expect(s6 == 400)

                // Each refusal, by the CLI too: exit 3 and the reason.
                let (cli, out) = try await setup.export(expired, to: "expired")
                #expect(cli.status == 3 && cli.stderr.contains("expired"), "\(cli.stderr)")
                #expect(!FileManager.default.fileExists(atPath: out))

                // Every one of them is in the audit log as a refusal.
                let entries = try AuditLog(archive: setup.archive).verify()
                #expect(entries.isIntact)
                #expect(entries.entries.count >= 7)
                #expect(entries.entries.allSatisfy { $0.record.decision == .refused })
            }
        }

        @Test func auditLogRecordsEveryDecisionAndShowsTampering() async throws {
            let fixture = try await ExportFixture.shared.value
            let setup = try AuthorityUnderTest(fixture)
            try await setup.serving {
                _ = try await setup.post(try await setup.token("oscar", .admin))
                _ = try await setup.post(try await setup.token("dave", .participant))
                _ = try await setup.post(try await setup.token("mallory", .participant))
            }
            let report = try AuditLog(archive: setup.archive).verify()
            #expect(report.isIntact)
            #expect(report.entries.map(\.record.principal) == ["oscar", "dave", "mallory"])
            #expect(report.entries.map(\.record.decision) == [.granted, .partial, .refused])
            #expect(report.entries[1].record.granted.count == (try setup.receivedSPIs(3)).count)

            let percrec = RecorderLabSuites.RecorderProcessTests.executable
            let intact = try await runTool(percrec, ["authority", "audit", "--archive", setup.archivePath])
            #expect(intact.status == 0, "\(intact.stderr)")
            #expect(intact.stdout.contains("intact"), "\(intact.stdout)")

            setup.archive.close()
            let tamper = try await runTool("sqlite3", [setup.archivePath, "UPDATE key_release SET decision = 'granted' WHERE sequence = 3"])
            #expect(tamper.status == 0, "\(tamper.stderr)")
            let broken = try await runTool(percrec, ["authority", "audit", "--archive", setup.archivePath])
            #expect(broken.status == 1)
            #expect((broken.stdout + broken.stderr).contains("entry 3"), "\(broken.stdout)\(broken.stderr)")
        }

        @Test func responsesCarryNoPlaintextKey() async throws {
            let fixture = try await ExportFixture.shared.value
            let setup = try AuthorityUnderTest(fixture)
            let requester = AuthorityPrivateKey()
            var released: [ReleasedEpochKey] = []
            try await setup.serving {
                for (principal, role) in [("oscar", AccessRole.admin), ("dave", .participant), ("alice", .participant),
                                          ("mallory", .participant)] {
                    let (status, body) = try await setup.post(try await setup.token(principal, role), requester: requester)
                    if status == 200 { released += try JSONDecoder().decode(KeyReleaseResponse.self, from: body).granted }
                }
            }
            // The secrets: every epoch's EKTKey and salt, and the authority's private key.
            var secrets: [(String, [UInt8])] = [("authority private key", [UInt8](fixture.authority.key.rawRepresentation))]
            for epoch in try setup.archive.epochs(conference: fixture.conference) {
                let message = try fixture.open(epoch)
                secrets.append(("EKTKey of SPI \(epoch.spi)", message.ektKeyValue.unsafeCopiedBytes))
                secrets.append(("salt of SPI \(epoch.spi)", message.srtpMasterSalt.unsafeCopiedBytes))
            }
            let bodies = setup.bodies.all
            #expect(bodies.count == 4)
            for body in bodies {
                let bytes = [UInt8](body)
                let text = String(decoding: body, as: UTF8.self).lowercased()
                for (what, secret) in secrets {
                    #expect(!contains(bytes, secret), "\(what) in a response")
                    #expect(!text.contains(secret.map { String(format: "%02x", $0) }.joined()), "\(what) in hex")
                    #expect(!String(decoding: body, as: UTF8.self).contains(Data(secret).base64EncodedString()), "\(what) in base64")
                }
            }
            // What was released is real: it opens with the requester's key to the archive's exact keys.
            #expect(!released.isEmpty)
            for key in released {
                let archived = try #require(try setup.archive.epochs(conference: fixture.conference).first { $0.spi == key.spi })
                let epoch = try #require(key.asArchivedEpoch(requesterKeyID: requester.publicKey.keyID))
                let sealed = SealedEpochKey(conference: fixture.conference, spi: epoch.spi, cipher: try #require(EKTCipher.allCases.first { "\($0)" == epoch.cipher }),
                                            authorityKeyID: epoch.authorityKeyID, encapsulatedKey: epoch.encapsulatedKey, ciphertext: epoch.sealedKey)
                let opened = try sealed.open(with: requester)
                let original = try fixture.open(archived)
                #expect(opened.ektKeyValue == original.ektKeyValue && opened.srtpMasterSalt == original.srtpMasterSalt)
                #expect(throws: (any Error).self) { try sealed.open(with: fixture.authority) }
            }
        }
    }
}

/// `percrec authority serve` as a process; its stdout and stderr are collected.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    private let pipe = Pipe()
    private let lock = NSLock()
    private var text = ""

    init(arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: RecorderLabSuites.RecorderProcessTests.executable)
        process.arguments = arguments
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.text += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    var output: String { lock.withLock { text } }

    /// The port from "authority: serving https://127.0.0.1:PORT …".
    var port: Int? {
        guard let range = output.range(of: "serving https://127.0.0.1:") else { return nil }
        return Int(output[range.upperBound...].prefix { $0.isNumber })
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        pipe.fileHandleForReading.readabilityHandler = nil
    }
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, haystack.count >= needle.count else { return false }
    for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
        if Array(haystack[start..<start + needle.count]) == needle { return true }
    }
    return false
}

func isoTime(_ t: Double) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: Date(timeIntervalSince1970: t))
}

func base64URLDecode(_ text: String) -> Data? {
    var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while s.count % 4 != 0 { s += "=" }
    return Data(base64Encoded: s)
}

func base64URLEncode(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}
