import Crypto
import Authority
import Foundation
import JWTKit

// Access tokens: ES256 JWTs (RFC 7519, RFC 7515 compact serialization, RFC 7518 §3.4) that the
// service provider issues to the people who may ask the archive authority for epoch keys.
// jwt-kit signs and checks the signature; the claims are checked here against a caller-given
// `now` (docs/access.md, "Tokens").

/// What the bearer of a token may do: a participant obtains the epochs they were present for, an
/// administrator every epoch of the conference (the conference policy decides).
public enum AccessRole: String, Sendable, Codable, CaseIterable {
    case participant, admin
}

/// The claims of a verified (or, from `AccessToken.unverifiedClaims`, merely decoded) token.
public struct AccessClaims: Sendable, Equatable {
    /// JWT "sub".
    public var principal: String
    /// Custom claim "conference".
    public var conference: String
    /// Custom claim "role".
    public var role: AccessRole
    /// "iat" (whole seconds).
    public var issuedAt: Date
    /// "exp" (whole seconds).
    public var expiresAt: Date
    /// "jti": 128 random bits in hex.
    public var tokenID: String
    /// "iss".
    public var issuer: String

    public init(principal: String, conference: String, role: AccessRole, issuedAt: Date, expiresAt: Date, tokenID: String, issuer: String) {
        self.principal = principal
        self.conference = conference
        self.role = role
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.tokenID = tokenID
        self.issuer = issuer
    }
}

/// Why a token, or a token key, was refused.
public enum TokenError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not a compact JWS, bad base64url or JSON, an algorithm other than ES256, a missing or invalid claim.
    case malformed(String)
    /// The signature does not verify with the service provider's public key.
    case badSignature
    /// `now` is at or past "exp".
    case expired(expiredAt: Date, now: Date)
    /// "iat" is more than `AccessToken.clockSkew` (60 s) after `now`.
    case notYetValid(issuedAt: Date, now: Date)
    case wrongConference(token: String, requested: String)
    case keyFile(path: String, reason: String)

    public var description: String {
        switch self {
        case let .malformed(reason): "malformed access token: \(reason)"
        case .badSignature: "the access token's signature does not verify with the service provider's public key (forged, altered, or signed with another key)"
        case let .expired(expiredAt, now): "the access token expired at \(isoText(expiredAt)) (now \(isoText(now)))"
        case let .notYetValid(issuedAt, now):
            "the access token was issued at \(isoText(issuedAt)), more than \(Int(AccessToken.clockSkew)) s in the future (now \(isoText(now))): check the clocks"
        case let .wrongConference(token, requested): "the access token is for conference \"\(token)\", not \"\(requested)\""
        case let .keyFile(path, reason): "token key \(path): \(reason)"
        }
    }
}

func isoText(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false))
}

// MARK: - Keys

/// The service provider's ES256 (P-256) public key: the archive authority verifies tokens with it.
/// On disk a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), which `openssl pkey -pubin` reads.
public struct TokenVerificationKey: Sendable {
    let key: P256.Signing.PublicKey

    init(_ key: P256.Signing.PublicKey) { self.key = key }

    public init(pemRepresentation: String) throws(TokenError) {
        try self.init(pemRepresentation: pemRepresentation, path: "<text>")
    }

    init(pemRepresentation pem: String, path: String) throws(TokenError) {
        guard pem.contains("-----BEGIN PUBLIC KEY-----") else { throw .keyFile(path: path, reason: "not a PEM \"PUBLIC KEY\" block") }
        do { key = try P256.Signing.PublicKey(pemRepresentation: pem) } catch {
            throw .keyFile(path: path, reason: "not a P-256 (ES256) public key: \(error)")
        }
    }

    public init(contentsOf path: String) throws(TokenError) {
        try self.init(pemRepresentation: try readKeyText(path), path: path)
    }

    /// SPKI `PUBLIC KEY` PEM.
    public var pemRepresentation: String { key.pemRepresentation }

    /// The first 8 bytes of SHA-256 over the uncompressed (x9.63: 04 ‖ x ‖ y) public key, in hex.
    /// Tokens carry it as their "kid".
    public var keyID: String { hexText(SHA256.hash(data: key.x963Representation).prefix(8)) }
}

/// The service provider's ES256 private key: whoever holds it can issue tokens.
/// On disk a PEM `PRIVATE KEY` (PKCS#8) with mode 0600.
public struct TokenSigningKey: Sendable {
    let key: P256.Signing.PrivateKey

    init(_ key: P256.Signing.PrivateKey) { self.key = key }

    public static func generate() -> TokenSigningKey { TokenSigningKey(P256.Signing.PrivateKey()) }

    public init(pemRepresentation: String) throws(TokenError) {
        try self.init(pemRepresentation: pemRepresentation, path: "<text>")
    }

    init(pemRepresentation pem: String, path: String) throws(TokenError) {
        guard pem.contains("PRIVATE KEY-----") else { throw .keyFile(path: path, reason: "not a PEM \"PRIVATE KEY\" block") }
        do { key = try P256.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw .keyFile(path: path, reason: "not a P-256 (ES256) private key: \(error)")
        }
    }

    public init(contentsOf path: String) throws(TokenError) {
        try self.init(pemRepresentation: try readKeyText(path), path: path)
    }

    public var publicKey: TokenVerificationKey { TokenVerificationKey(key.publicKey) }

    /// PKCS#8 `PRIVATE KEY` PEM. It holds the secret: write it only with `write(to:)` (mode 0600).
    public var pemRepresentation: String { key.pemRepresentation }

    /// Writes DIR/token-signing.key (mode 0600, created with O_EXCL) and DIR/token-signing.pub;
    /// refuses to overwrite either. Returns the two paths.
    @discardableResult
    public func write(to directory: String) throws(TokenError) -> (privateKey: String, publicKey: String) {
        let privatePath = (directory as NSString).appendingPathComponent("token-signing.key")
        let publicPath = (directory as NSString).appendingPathComponent("token-signing.pub")
        for p in [privatePath, publicPath] where FileManager.default.fileExists(atPath: p) {
            throw .keyFile(path: p, reason: Self.existsReason)
        }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .keyFile(path: directory, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        func line(_ pem: String) -> String { pem.hasSuffix("\n") ? pem : pem + "\n" }
        try writeExclusive(privatePath, line(pemRepresentation), mode: 0o600)
        try writeExclusive(publicPath, line(publicKey.pemRepresentation), mode: 0o644)
        return (privatePath, publicPath)
    }

    /// The `keyFile` reason when `write(to:)` finds a file in the way.
    public static let existsReason = "already exists; refusing to overwrite a token key"
}

private func readKeyText(_ path: String) throws(TokenError) -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw .keyFile(path: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot read it (permission denied?)" : "no such file")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw .keyFile(path: path, reason: "not UTF-8 text") }
    return text
}

private func writeExclusive(_ path: String, _ text: String, mode: mode_t) throws(TokenError) {
    do { try writeKeyFileExclusively(path, text, mode: mode) } catch {
        switch error {
        case .exists: throw .keyFile(path: path, reason: TokenSigningKey.existsReason)
        case let .failed(reason): throw .keyFile(path: path, reason: reason)
        }
    }
}

/// Lower-case hex of `bytes` (key ids, hashes).
public func hexText(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0x0F)]) }
    return String(decoding: out, as: UTF8.self)
}

// MARK: - Tokens

/// Issues and verifies access tokens.
public enum AccessToken {
    /// The longest lifetime `issue` accepts: 30 days.
    public static let maximumLifetime: TimeInterval = 30 * 86_400
    /// How far in the future "iat" may lie (clock skew between the service provider and the authority).
    public static let clockSkew: TimeInterval = 60

    /// A signed ES256 JWT for `principal` in `conference`. "iat" is `now` and "exp" is `now +
    /// lifetime`, both in whole seconds (RFC 7519 NumericDate; "exp" rounded up so the token
    /// lives at least one second).
    public static func issue(principal: String, conference: String, role: AccessRole, lifetime: TimeInterval,
                             signingKey: TokenSigningKey, issuer: String = "percrec", now: Date = Date()) async throws(TokenError) -> String {
        guard !principal.isEmpty else { throw .malformed("the principal (sub) is empty") }
        guard !conference.isEmpty else { throw .malformed("the conference is empty") }
        guard lifetime.isFinite, lifetime > 0 else { throw .malformed("the lifetime must be positive (got \(lifetime) s)") }
        guard lifetime <= maximumLifetime else {
            throw .malformed("the lifetime \(Int(lifetime)) s is longer than the maximum \(Int(maximumLifetime)) s (30 days)")
        }
        let nowSeconds = now.timeIntervalSince1970
        guard nowSeconds.isFinite, abs(nowSeconds) < 1e15 else { throw .malformed("`now` is out of range") }
        let issuedAt = Int64(nowSeconds.rounded(.down))
        var random = SystemRandomNumberGenerator()
        let tokenID = hexText((0 ..< 16).map { _ in UInt8.random(in: .min ... .max, using: &random) })
        let payload = TokenPayload(sub: principal, conference: conference, role: role.rawValue, iat: Double(issuedAt),
                                   exp: Double(issuedAt + Int64(lifetime.rounded(.up))), jti: tokenID, iss: issuer)
        let keys = JWTKeyCollection()
        let kid = signingKey.publicKey.keyID
        do {
            await keys.add(ecdsa: try ES256PrivateKey(backing: signingKey.key), kid: JWKIdentifier(string: kid))
            return try await keys.sign(payload, kid: JWKIdentifier(string: kid))
        } catch {
            throw .malformed("jwt-kit could not sign the token: \(error)")
        }
    }

    /// Checks in this order: well-formed ES256 JWS → signature → expiry (`now` ≥ exp is
    /// expired) → iat not in the future (`clockSkew` allowed) → conference claim == `conference`.
    /// Each failure has its own case.
    public static func verify(_ token: String, conference: String, key: TokenVerificationKey, now: Date = Date()) async throws(TokenError) -> AccessClaims {
        let parsed = try ParsedToken(token)
        guard parsed.algorithm == "ES256" else {
            throw .malformed("the algorithm is \"\(parsed.algorithm)\"; only ES256 tokens are accepted")
        }
        guard parsed.signature.count == 64 else {
            throw .malformed("an ES256 signature is 64 bytes (r ‖ s), this one is \(parsed.signature.count)")
        }
        let claims = try parsed.claims()

        let keys = JWTKeyCollection()
        do {
            await keys.add(ecdsa: try ES256PublicKey(backing: key.key), kid: JWKIdentifier(string: key.keyID))
            _ = try await keys.verify(token, as: TokenPayload.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw .badSignature
        } catch {
            throw .malformed("jwt-kit refused the token: \(error)")
        }

        if now >= claims.expiresAt { throw .expired(expiredAt: claims.expiresAt, now: now) }
        if claims.issuedAt.timeIntervalSince(now) > clockSkew { throw .notYetValid(issuedAt: claims.issuedAt, now: now) }
        guard claims.conference == conference else { throw .wrongConference(token: claims.conference, requested: conference) }
        return claims
    }

    /// Decodes claims WITHOUT verifying anything (for audit logging of refused tokens and for
    /// `--json` printing); nil if undecodable. Never trust what it returns.
    public static func unverifiedClaims(_ token: String) -> AccessClaims? {
        try? ParsedToken(token).claims()
    }
}

/// The JSON payload as jwt-kit signs and decodes it. "iat" and "exp" are written as integers.
struct TokenPayload: JWTPayload, Equatable {
    var sub: String
    var conference: String
    var role: String
    var iat: Double
    var exp: Double
    var jti: String
    var iss: String

    init(sub: String, conference: String, role: String, iat: Double, exp: Double, jti: String, iss: String) {
        self.sub = sub
        self.conference = conference
        self.role = role
        self.iat = iat
        self.exp = exp
        self.jti = jti
        self.iss = iss
    }

    enum CodingKeys: String, CodingKey { case sub, conference, role, iat, exp, jti, iss }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sub = try c.decode(String.self, forKey: .sub)
        conference = try c.decode(String.self, forKey: .conference)
        role = try c.decode(String.self, forKey: .role)
        iat = try c.decode(Double.self, forKey: .iat)
        exp = try c.decode(Double.self, forKey: .exp)
        jti = try c.decode(String.self, forKey: .jti)
        iss = try c.decode(String.self, forKey: .iss)
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sub, forKey: .sub)
        try c.encode(conference, forKey: .conference)
        try c.encode(role, forKey: .role)
        // NumericDate as an integer when it is one (always, for tokens `issue` makes).
        if let i = Int64(exactly: iat) { try c.encode(i, forKey: .iat) } else { try c.encode(iat, forKey: .iat) }
        if let e = Int64(exactly: exp) { try c.encode(e, forKey: .exp) } else { try c.encode(exp, forKey: .exp) }
        try c.encode(jti, forKey: .jti)
        try c.encode(iss, forKey: .iss)
    }

    /// The claims are checked by `AccessToken.verify` against its `now`, not here.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// A compact JWS taken apart without trusting it: three base64url parts (canonical encoding, no
/// padding), a JSON header, a JSON payload.
struct ParsedToken {
    var algorithm: String
    var payload: [UInt8]
    var signature: [UInt8]

    init(_ token: String) throws(TokenError) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("a compact JWS has 3 dot-separated parts, this has \(parts.count)") }
        guard let header = base64URLDecode(parts[0]) else { throw .malformed("the header is not base64url") }
        guard let payload = base64URLDecode(parts[1]) else { throw .malformed("the payload is not base64url") }
        guard let signature = base64URLDecode(parts[2]) else { throw .malformed("the signature is not base64url") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any] else {
            throw .malformed("the header is not a JSON object")
        }
        guard let alg = object["alg"] as? String else { throw .malformed("the header has no \"alg\"") }
        if object["crit"] != nil { throw .malformed("the header has \"crit\" extensions, which are not understood") }
        algorithm = alg
        self.payload = payload
        self.signature = signature
    }

    func claims() throws(TokenError) -> AccessClaims {
        let p: TokenPayload
        do { p = try JSONDecoder().decode(TokenPayload.self, from: Data(payload)) } catch {
            throw .malformed("the payload is not the expected claims: \(Self.describe(error))")
        }
        guard !p.sub.isEmpty else { throw .malformed("\"sub\" is empty") }
        guard !p.conference.isEmpty else { throw .malformed("\"conference\" is empty") }
        guard let role = AccessRole(rawValue: p.role) else {
            throw .malformed("\"role\" is \"\(p.role)\", not one of \(AccessRole.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard p.iat.isFinite, p.exp.isFinite, abs(p.iat) < 1e15, abs(p.exp) < 1e15 else { throw .malformed("\"iat\" or \"exp\" is out of range") }
        guard !p.jti.isEmpty else { throw .malformed("\"jti\" is empty") }
        return AccessClaims(principal: p.sub, conference: p.conference, role: role, issuedAt: Date(timeIntervalSince1970: p.iat),
                            expiresAt: Date(timeIntervalSince1970: p.exp), tokenID: p.jti, issuer: p.iss)
    }

    static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case let .keyNotFound(key, _)?: "missing claim \"\(key.stringValue)\""
        case let .typeMismatch(_, c)?, let .valueNotFound(_, c)?:
            "claim \"\(c.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type"
        case .dataCorrupted?: "not JSON"
        default: "\(error)"
        }
    }
}

/// RFC 4648 §5 without padding; nil for anything else (padding, other characters, a
/// non-canonical last character), so one token has exactly one spelling.
func base64URLDecode(_ text: Substring) -> [UInt8]? {
    guard text.utf8.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }),
          text.utf8.count % 4 != 1 else { return nil }
    var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
    guard let data = Data(base64Encoded: standard) else { return nil }
    let bytes = [UInt8](data)
    guard base64URLEncode(bytes) == text else { return nil }
    return bytes
}

func base64URLEncode(_ bytes: [UInt8]) -> String {
    Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}
