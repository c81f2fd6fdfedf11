import Access
import Archive
import ArgumentParser
import Authority
import AuthorityService
import Foundation
import Hummingbird
import NIOSSL

/// `percrec authority serve`: the HTTPS service that applies the conference policy and releases
/// epoch keys sealed to the requester (docs/access.md).
struct AuthorityServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve key releases over HTTPS: verify access tokens, apply the conference policy, audit every decision.",
        discussion: """
            Exporters call it with `percrec export --token T --authority https://HOST:PORT --authority-ca tls-cert.pem`. \
            It answers only with epoch keys HPKE-sealed to the requester's one-time public key; the authority's \
            private key and plaintext epoch keys never leave this process. Every decision, granted or refused, \
            is appended to the archive's hash-chained audit log (`percrec authority audit`). Stops on SIGINT/SIGTERM.
            """)

    @Option(help: "The archive (SQLite) whose sealed epoch keys, roster and policy are served.")
    var archive: String = Archive.defaultPath
    @Option(name: .customLong("authority-key"), help: "The archive authority's private key (authority.key).")
    var authorityKey: String
    @Option(name: .customLong("token-public-key"), help: "The token issuer's ES256 public key (token-signing.pub).")
    var tokenPublicKey: String
    @Option(help: "Address to listen on (host:port; port 0 picks a free one).")
    var listen: String = "127.0.0.1:8443"
    @Option(name: .customLong("tls-certificate"), help: "TLS certificate chain (PEM); default: tls-cert.pem next to the authority key.")
    var tlsCertificate: String?
    @Option(name: .customLong("tls-key"), help: "TLS private key (PEM); default: tls-key.pem next to the authority key.")
    var tlsKey: String?

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65_535).contains(port) else {
            throw usageError("--listen \(listen): expected host:port")
        }
        let host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let key: AuthorityPrivateKey
        do { key = try AuthorityPrivateKey(contentsOf: authorityKey) } catch { throw usageError("--authority-key: \(error)") }
        let tokenKey: TokenVerificationKey
        do { tokenKey = try TokenVerificationKey(contentsOf: tokenPublicKey) } catch { throw usageError("--token-public-key: \(error)") }
        let directory = (authorityKey as NSString).deletingLastPathComponent
        let certificate = tlsCertificate ?? (directory as NSString).appendingPathComponent(AuthorityTLS.certificateFile)
        let privateKey = tlsKey ?? (directory as NSString).appendingPathComponent(AuthorityTLS.keyFile)
        let tls: TLSConfiguration
        do { tls = try AuthorityTLS.serverConfiguration(certificate: certificate, privateKey: privateKey) } catch {
            throw usageError("\(error) (percrec authority init writes tls-cert.pem and tls-key.pem; or pass --tls-certificate/--tls-key)")
        }
        let store = try openArchive(archive, create: false)
        let authority = KeyReleaseAuthority(archive: store, authorityKey: key, tokenKey: tokenKey)
        let log: @Sendable (String) -> Void = { line in
            FileHandle.standardError.write(Data("\(ISO8601DateFormatter().string(from: Date())) \(line)\n".utf8))
        }
        let app = try AuthorityServer.application(
            authority: authority, host: host, port: port, tls: tls,
            identity: (key.publicKey.keyID, tokenKey.keyID), log: log,
            onListening: { bound in
                let line = "authority: serving https://\(host.contains(":") ? "[\(host)]" : host):\(bound) "
                    + "(authority key \(key.publicKey.keyID), token key \(tokenKey.keyID), archive \(archive))\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            })
        do { try await app.runService() } catch { throw operationalError("the authority service stopped: \(error)") }
    }
}
