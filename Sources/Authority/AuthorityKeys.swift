@preconcurrency import Crypto
import Foundation
import SRTP

/// What can go wrong with the archive authority's keys and sealed epoch keys.
public enum AuthorityError: Error, Equatable, CustomStringConvertible {
    case unreadableFile(path: String, reason: String)
    case notPEM(path: String, expected: String)
    case badKeyEncoding(path: String, reason: String)
    case fileExists(path: String)
    case writeFailed(path: String, reason: String)
    /// HPKE refused: wrong authority key, or the sealed record or its context was altered.
    case unsealFailed(reason: String)
    case malformedSealedKey(reason: String)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason): "cannot read \(path): \(reason)"
        case let .notPEM(path, expected): "\(path) is not a PEM file with a \"\(expected)\" block"
        case let .badKeyEncoding(path, reason): "\(path) does not hold an X25519 key: \(reason)"
        case let .fileExists(path): "\(path) already exists; refusing to overwrite an authority key"
        case let .writeFailed(path, reason): "cannot write \(path): \(reason)"
        case let .unsealFailed(reason): "cannot open the sealed epoch key: \(reason)"
        case let .malformedSealedKey(reason): "malformed sealed epoch key: \(reason)"
        }
    }
}

/// The archive authority's public key (X25519): recorders seal every epoch key to it.
///
/// On disk it is a PEM `PUBLIC KEY` (SubjectPublicKeyInfo, RFC 8410), which `openssl pkey
/// -pubin` reads.
public struct AuthorityPublicKey: Sendable, Equatable {
    public let key: Curve25519.KeyAgreement.PublicKey

    public init(_ key: Curve25519.KeyAgreement.PublicKey) { self.key = key }

    public init(rawRepresentation: [UInt8]) throws(AuthorityError) {
        do { key = try .init(rawRepresentation: rawRepresentation) } catch {
            throw .badKeyEncoding(path: "<bytes>", reason: "\(rawRepresentation.count) bytes, 32 expected")
        }
    }

    public var rawRepresentation: [UInt8] { [UInt8](key.rawRepresentation) }

    /// A short identifier printed in logs and stored with each sealed key: the first 8 bytes of
    /// SHA-256 over the raw public key, in hex.
    public var keyID: String { SHA256.hash(data: key.rawRepresentation).prefix(8).map { String(format: "%02x", $0) }.joined() }

    public static func == (a: Self, b: Self) -> Bool { a.key.rawRepresentation == b.key.rawRepresentation }

    // SubjectPublicKeyInfo for id-X25519 (1.3.101.110): SEQUENCE { SEQUENCE { OID }, BIT STRING }.
    static let spkiPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x6E, 0x03, 0x21, 0x00]

    public var pemRepresentation: String { PEM.encode(label: "PUBLIC KEY", der: Self.spkiPrefix + rawRepresentation) }

    public init(pemRepresentation pem: String, path: String = "<text>") throws(AuthorityError) {
        guard let der = PEM.decode(label: "PUBLIC KEY", from: pem) else { throw .notPEM(path: path, expected: "PUBLIC KEY") }
        guard der.count == Self.spkiPrefix.count + 32, Array(der.prefix(Self.spkiPrefix.count)) == Self.spkiPrefix else {
            throw .badKeyEncoding(path: path, reason: "not an id-X25519 SubjectPublicKeyInfo")
        }
        try self.init(rawRepresentation: Array(der.suffix(32)))
    }

    public init(contentsOf path: String) throws(AuthorityError) {
        try self.init(pemRepresentation: try readText(path), path: path)
    }
}

/// The archive authority's private key. Only the authority (and, in issue 6's administrator
/// path, whoever holds this file) can open sealed epoch keys.
///
/// On disk it is a PEM `PRIVATE KEY` (PKCS#8, RFC 8410) with mode 0600.
public struct AuthorityPrivateKey: Sendable {
    public let key: Curve25519.KeyAgreement.PrivateKey

    public init(_ key: Curve25519.KeyAgreement.PrivateKey = .init()) { self.key = key }

    public var publicKey: AuthorityPublicKey { AuthorityPublicKey(key.publicKey) }

    // PKCS#8 OneAsymmetricKey v0 for id-X25519 wrapping an OCTET STRING of the 32-byte key.
    static let pkcs8Prefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x6E,
                                       0x04, 0x22, 0x04, 0x20]

    /// The PEM text. It holds the secret: write it only with `write(to:)` (mode 0600).
    public var pemRepresentation: String {
        var der = Self.pkcs8Prefix + [UInt8](key.rawRepresentation)
        defer { _ = der.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        return PEM.encode(label: "PRIVATE KEY", der: der)
    }

    public init(pemRepresentation pem: String, path: String = "<text>") throws(AuthorityError) {
        guard var der = PEM.decode(label: "PRIVATE KEY", from: pem) else { throw .notPEM(path: path, expected: "PRIVATE KEY") }
        defer { _ = der.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        guard der.count == Self.pkcs8Prefix.count + 32, Array(der.prefix(Self.pkcs8Prefix.count)) == Self.pkcs8Prefix else {
            throw .badKeyEncoding(path: path, reason: "not an id-X25519 PKCS#8 private key")
        }
        do { key = try .init(rawRepresentation: der.suffix(32)) } catch {
            throw .badKeyEncoding(path: path, reason: "\(error)")
        }
    }

    public init(contentsOf path: String) throws(AuthorityError) {
        try self.init(pemRepresentation: try readText(path), path: path)
    }

    /// Creates `directory/authority.key` (0600) and `directory/authority.pub`, refusing to
    /// overwrite either. Returns the two paths.
    @discardableResult
    public func write(to directory: String) throws(AuthorityError) -> (privateKey: String, publicKey: String) {
        let privatePath = (directory as NSString).appendingPathComponent("authority.key")
        let publicPath = (directory as NSString).appendingPathComponent("authority.pub")
        for p in [privatePath, publicPath] where FileManager.default.fileExists(atPath: p) { throw .fileExists(path: p) }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .writeFailed(path: directory, reason: "\(error)")
        }
        try writeExclusive(privatePath, pemRepresentation, mode: 0o600)
        try writeExclusive(publicPath, publicKey.pemRepresentation, mode: 0o644)
        return (privatePath, publicPath)
    }
}

// MARK: - Files and PEM

private func readText(_ path: String) throws(AuthorityError) -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw .unreadableFile(path: path, reason: FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw .unreadableFile(path: path, reason: "not UTF-8 text") }
    return text
}

/// Why `writeKeyFileExclusively` failed.
public enum KeyFileWriteError: Error, Equatable, Sendable {
    /// Something is already at the path (never replaced or followed).
    case exists
    /// open, write or fsync failed: strerror's text.
    case failed(String)
}

/// Creates `path` with `mode` (O_EXCL: never follows or replaces an existing file), writes
/// `text`, fsyncs, and zeroes its copy of the text. Every key file percrec writes goes through
/// here: the authority's, the token issuer's and the authority service's TLS key.
public func writeKeyFileExclusively(_ path: String, _ text: String, mode: mode_t) throws(KeyFileWriteError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else {
        if errno == EEXIST { throw .exists }
        throw .failed(String(cString: strerror(errno)))
    }
    defer { close(fd) }
    _ = fchmod(fd, mode)   // the umask may have narrowed it; never widen beyond `mode`
    var bytes = Array(text.utf8)
    defer { _ = bytes.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 {
            if errno == EINTR { continue }
            throw .failed(String(cString: strerror(errno)))
        }
        offset += n
    }
    guard fsync(fd) == 0 else { throw .failed(String(cString: strerror(errno))) }
}

private func writeExclusive(_ path: String, _ text: String, mode: mode_t) throws(AuthorityError) {
    do { try writeKeyFileExclusively(path, text, mode: mode) } catch {
        switch error {
        case .exists: throw .fileExists(path: path)
        case let .failed(reason): throw .writeFailed(path: path, reason: reason)
        }
    }
}

enum PEM {
    static func encode(label: String, der: [UInt8]) -> String {
        let b64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(b64)\n-----END \(label)-----\n"
    }

    static func decode(label: String, from text: String) -> [UInt8]? {
        let begin = "-----BEGIN \(label)-----", end = "-----END \(label)-----"
        guard let b = text.range(of: begin), let e = text.range(of: end, range: b.upperBound..<text.endIndex) else { return nil }
        let body = text[b.upperBound..<e.lowerBound].filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(body)) else { return nil }
        return [UInt8](data)
    }
}
