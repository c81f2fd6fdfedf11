import Access
import Authority
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// The authority service's TLS identity: a P-256 key and a self-signed certificate for the
/// host names clients use. Clients pin the certificate (`--authority-ca`), so no public CA is
/// involved; an organization can instead pass a certificate from its own CA to `serve`.
public enum AuthorityTLS {
    public static let certificateFile = "tls-cert.pem"
    public static let keyFile = "tls-key.pem"

    /// Creates DIR/tls-cert.pem and DIR/tls-key.pem (0600, never overwritten) valid for
    /// `hosts` (DNS names or IP literals) for `days`.
    public static func generate(in directory: String, hosts: [String] = ["localhost", "127.0.0.1", "::1"],
                                days: Int = 825) throws(AuthorityServiceError) -> (certificate: String, privateKey: String) {
        let certPath = (directory as NSString).appendingPathComponent(certificateFile)
        let keyPath = (directory as NSString).appendingPathComponent(keyFile)
        for p in [certPath, keyPath] where FileManager.default.fileExists(atPath: p) {
            throw .configuration("\(p) already exists (not overwritten)")
        }
        let key = P256.Signing.PrivateKey()
        let pem: String
        do {
            let name = try DistinguishedName { CommonName("percrec archive authority") }
            var names: [GeneralName] = []
            for h in hosts {
                if let ip = ipBytes(h) { names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(ip)))) } else { names.append(.dnsName(h)) }
            }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            }
            let now = Date()
            let certificate = try Certificate(version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
                                              notValidBefore: now.addingTimeInterval(-3600),
                                              notValidAfter: now.addingTimeInterval(Double(days) * 86_400),
                                              issuer: name, subject: name, extensions: extensions, issuerPrivateKey: .init(key))
            pem = try certificate.serializeAsPEM().pemString
        } catch {
            throw .configuration("cannot create the TLS certificate: \(error)")
        }
        try writeExclusive(keyPath, key.pemRepresentation + "\n", mode: 0o600)
        try writeExclusive(certPath, pem + "\n", mode: 0o644)
        return (certPath, keyPath)
    }

    /// The server side: certificate chain and key from PEM files.
    public static func serverConfiguration(certificate: String, privateKey: String) throws(AuthorityServiceError) -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else { throw AuthorityServiceError.configuration("\(certificate) holds no certificate") }
            let key = try NIOSSLPrivateKey(file: privateKey, format: .pem)
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            tls.minimumTLSVersion = .tlsv12
            return tls
        } catch let e as AuthorityServiceError {
            throw e
        } catch {
            throw .configuration("cannot load the TLS certificate \(certificate) / key \(privateKey): \(error)")
        }
    }

    /// The client side: the system's roots, or only the certificates in `trustedCertificates` (a pinned authority).
    public static func clientConfiguration(trustedCertificates: String?) throws(AuthorityServiceError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let trustedCertificates {
            do {
                let certs = try NIOSSLCertificate.fromPEMFile(trustedCertificates)
                guard !certs.isEmpty else { throw AuthorityServiceError.configuration("\(trustedCertificates) holds no certificate") }
                tls.trustRoots = .certificates(certs)
            } catch let e as AuthorityServiceError {
                throw e
            } catch {
                throw .configuration("cannot read the authority's certificate \(trustedCertificates): \(error)")
            }
        }
        return tls
    }

    static func ipBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func writeExclusive(_ path: String, _ text: String, mode: mode_t) throws(AuthorityServiceError) {
        do { try writeKeyFileExclusively(path, text, mode: mode) } catch {
            switch error {
            case .exists: throw .configuration("\(path) already exists (not overwritten)")
            case let .failed(reason): throw .configuration("cannot write \(path): \(reason)")
            }
        }
    }
}

/// Why the authority service or its client could not do its job.
public enum AuthorityServiceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Files, flags or addresses that cannot be used.
    case configuration(String)
    /// The authority could not be reached or did not speak the protocol.
    case unreachable(url: String, reason: String)
    /// The authority answered with an error (HTTP status, its reason, the epochs it refused).
    case refused(status: Int, reason: String, refused: [RefusedEpoch])
    /// The answer was not a key-release response.
    case badResponse(String)

    public var description: String {
        switch self {
        case let .configuration(text): text
        case let .unreachable(url, reason): "cannot reach the authority at \(url): \(reason)"
        case let .refused(status, reason, _): "the authority refused (HTTP \(status)): \(reason)"
        case let .badResponse(text): "unexpected answer from the authority: \(text)"
        }
    }
}
