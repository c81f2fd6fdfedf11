import Access
import Authority
import Foundation
import Testing
import TestSupport

@Suite("Access tokens: ES256 JWTs, their keys, and what verify refuses")
struct AccessTokenTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000.4)

    static func issue(_ key: TokenSigningKey, principal: String = "alice", conference: String = "c1", role: AccessRole = .participant,
                      lifetime: TimeInterval = 3600, now: Date = now) async throws -> String {
        try await AccessToken.issue(principal: principal, conference: conference, role: role, lifetime: lifetime, signingKey: key, now: now)
    }

    static func parts(_ token: String) -> [String] { token.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }

    static func b64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func unb64url(_ text: String) -> [UInt8] {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        s += String(repeating: "=", count: (4 - s.count % 4) % 4)
        return [UInt8](Data(base64Encoded: s) ?? Data())
    }

    static func refusal(_ token: String, conference: String = "c1", key: TokenVerificationKey, now: Date = now) async -> TokenError? {
        do { _ = try await AccessToken.verify(token, conference: conference, key: key, now: now); return nil } catch { return error }
    }

    @Test("issue then verify: the claims come back (times in whole seconds), jti is 128 random bits, unverifiedClaims agrees")
    func roundTrip() async throws {
        let key = TokenSigningKey.generate()
        let token = try await Self.issue(key, role: .admin)
        let claims = try await AccessToken.verify(token, conference: "c1", key: key.publicKey, now: Self.now.addingTimeInterval(10))
        #expect(claims.principal == "alice")
        #expect(claims.conference == "c1")
        #expect(claims.role == .admin)
        #expect(claims.issuedAt == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(claims.expiresAt == Date(timeIntervalSince1970: 1_800_003_600))
        #expect(claims.issuer == "percrec")
        #expect(claims.tokenID.count == 32 && claims.tokenID.allSatisfy(\.isHexDigit))
        #expect(AccessToken.unverifiedClaims(token) == claims)
        let again = try await Self.issue(key)
        #expect(AccessToken.unverifiedClaims(again)?.tokenID != claims.tokenID)
        #expect(AccessToken.unverifiedClaims("not.a.token") == nil)
        #expect(AccessToken.unverifiedClaims("") == nil)

        // The header: ES256, JWT, and the signing key's id.
        let header = try JSONSerialization.jsonObject(with: Data(Self.unb64url(Self.parts(token)[0]))) as? [String: String]
        #expect(header?["alg"] == "ES256")
        #expect(header?["typ"] == "JWT")
        #expect(header?["kid"] == key.publicKey.keyID)
        #expect(Self.unb64url(Self.parts(token)[2]).count == 64)
    }

    @Test("issue refuses an empty principal or conference and a lifetime ≤ 0 or over 30 days")
    func issueRefusals() async throws {
        let key = TokenSigningKey.generate()
        for (principal, conference, lifetime) in [("", "c1", 60.0), ("alice", "", 60), ("alice", "c1", 0), ("alice", "c1", -5),
                                                  ("alice", "c1", AccessToken.maximumLifetime + 1), ("alice", "c1", .infinity)] {
            await #expect(throws: TokenError.self) {
                try await AccessToken.issue(principal: principal, conference: conference, role: .participant, lifetime: lifetime, signingKey: key)
            }
            do {
                _ = try await AccessToken.issue(principal: principal, conference: conference, role: .participant, lifetime: lifetime, signingKey: key)
            } catch {
                guard case .malformed = error else { Issue.record("expected .malformed, got \(error)"); continue }
            }
        }
        #expect(AccessToken.maximumLifetime == 30 * 86_400)
        let longest = try await Self.issue(key, lifetime: AccessToken.maximumLifetime)
        let claims = try #require(AccessToken.unverifiedClaims(longest))
        #expect(claims.expiresAt.timeIntervalSince(claims.issuedAt) == AccessToken.maximumLifetime)
    }

    @Test("expiry: now = exp and exp + 1 are expired, exp − 1 is not; iat more than 60 s ahead is not yet valid")
    func expiry() async throws {
        let key = TokenSigningKey.generate()
        let token = try await Self.issue(key, lifetime: 90)
        let exp = Date(timeIntervalSince1970: 1_800_000_090)
        #expect(await Self.refusal(token, key: key.publicKey, now: exp) == .expired(expiredAt: exp, now: exp))
        #expect(await Self.refusal(token, key: key.publicKey, now: exp + 1) == .expired(expiredAt: exp, now: exp + 1))
        #expect(await Self.refusal(token, key: key.publicKey, now: exp - 1) == nil)

        let iat = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(await Self.refusal(token, key: key.publicKey, now: iat - 60) == nil)
        #expect(await Self.refusal(token, key: key.publicKey, now: iat - 61) == .notYetValid(issuedAt: iat, now: iat - 61))
        #expect(TokenError.expired(expiredAt: exp, now: exp + 1).description.contains("2027-01-15T08:01:30Z"))
    }

    @Test("a token signed by another key, or with a flipped payload or signature byte, is refused")
    func tampering() async throws {
        let key = TokenSigningKey.generate(), other = TokenSigningKey.generate()
        let token = try await Self.issue(key)
        let forged = try await Self.issue(other)
        #expect(await Self.refusal(forged, key: key.publicKey) == .badSignature)

        let p = Self.parts(token)
        // A changed claim that is still valid JSON: well-formed, so the signature decides.
        let original = String(decoding: Self.unb64url(p[1]), as: UTF8.self)
        #expect(original.contains("\"alice\""))
        let payload = Array(original.replacingOccurrences(of: "\"alice\"", with: "\"alicf\"").utf8)
        #expect(await Self.refusal([p[0], Self.b64url(payload), p[2]].joined(separator: "."), key: key.publicKey) == .badSignature)

        // A flipped byte that breaks the JSON (the first byte, "{"): malformed before any signature check.
        var broken = Self.unb64url(p[1])
        broken[0] ^= 0x01
        let brokenRefusal = await Self.refusal([p[0], Self.b64url(broken), p[2]].joined(separator: "."), key: key.publicKey)
        guard case .malformed? = brokenRefusal else { Issue.record("expected .malformed, got \(String(describing: brokenRefusal))"); return }

        // A flipped signature byte: still 64 bytes, so it reaches the ECDSA check and fails it.
        for index in [0, 10, 31, 32, 63] {
            var signature = Self.unb64url(p[2])
            signature[index] ^= 0x40
            #expect(await Self.refusal([p[0], p[1], Self.b64url(signature)].joined(separator: "."), key: key.publicKey) == .badSignature)
        }
        // A signature that is not 64 bytes, or not base64url, or a token that is not three parts: malformed.
        for bad in [[p[0], p[1], Self.b64url(Array(Self.unb64url(p[2]).prefix(63)))].joined(separator: "."),
                    [p[0], p[1], p[2] + "="].joined(separator: "."), [p[0], p[1]].joined(separator: "."),
                    token + ".x", [p[0], p[1] + "*", p[2]].joined(separator: "."), ""] {
            let refusal = await Self.refusal(bad, key: key.publicKey)
            guard case .malformed? = refusal else { Issue.record("\(bad): expected .malformed, got \(String(describing: refusal))"); continue }
        }
    }

    @Test("alg none and HS256 (keyed with the public key PEM) are refused as malformed before any signature check")
    func algorithmConfusion() async throws {
        let key = TokenSigningKey.generate()
        let token = try await Self.issue(key)
        let payload = Self.parts(token)[1]
        let noneHeader = Self.b64url(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        for unsigned in ["\(noneHeader).\(payload).", "\(noneHeader).\(payload).\(Self.parts(token)[2])"] {
            let refusal = await Self.refusal(unsigned, key: key.publicKey)
            guard case let .malformed(reason)? = refusal else { Issue.record("alg none: got \(String(describing: refusal))"); continue }
            #expect(reason.contains("none"))
        }
        // HS256 over header.payload with the PEM public key as the HMAC secret (the classic key confusion).
        let hsHeader = Self.b64url(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let input = "\(hsHeader).\(payload)"
        let script = """
            import base64, hashlib, hmac, sys
            mac = hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).digest()
            print(base64.urlsafe_b64encode(mac).decode().rstrip("="))
            """
        let result = try await runTool("python3", ["-c", script, key.publicKey.pemRepresentation, input])
        #expect(result.status == 0, "python3 failed: \(result.stderr)")
        let hs256 = input + "." + result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let refusal = await Self.refusal(hs256, key: key.publicKey)
        guard case let .malformed(reason)? = refusal else { Issue.record("HS256: got \(String(describing: refusal))"); return }
        #expect(reason.contains("HS256"))
        // A header that is not JSON, or has no alg.
        for header in ["bm90IGpzb24", Self.b64url(Array(#"{"typ":"JWT"}"#.utf8))] {
            let refusal = await Self.refusal("\(header).\(payload).\(Self.parts(token)[2])", key: key.publicKey)
            guard case .malformed? = refusal else { Issue.record("header \(header): got \(String(describing: refusal))"); continue }
        }
    }

    @Test("a token for another conference is refused with both names")
    func wrongConference() async throws {
        let key = TokenSigningKey.generate()
        let token = try await Self.issue(key, conference: "c1")
        #expect(await Self.refusal(token, conference: "c2", key: key.publicKey) == .wrongConference(token: "c1", requested: "c2"))
        #expect(TokenError.wrongConference(token: "c1", requested: "c2").description.contains("\"c1\", not \"c2\""))
    }

    @Test("Python cryptography verifies the JWS by hand (raw r‖s over header.payload) and signs one that verify accepts")
    func pythonOracle() async throws {
        let key = TokenSigningKey.generate()
        let token = try await Self.issue(key, principal: "bob", conference: "conf-9", role: .admin)
        let script = """
            import base64, hashlib, json, sys
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature, decode_dss_signature
            def unb64(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
            def b64(b): return base64.urlsafe_b64encode(b).decode().rstrip("=")
            token, public_pem, private_pem = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
            h, p, s = token.split(".")
            header, claims, sig = json.loads(unb64(h)), json.loads(unb64(p)), unb64(s)
            assert header["alg"] == "ES256", header
            assert len(sig) == 64, len(sig)
            public = serialization.load_pem_public_key(public_pem)
            assert isinstance(public.curve, ec.SECP256R1), public.curve.name
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            public.verify(der, (h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))
            point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
            # A token of Python's own with the same private key.
            private = serialization.load_pem_private_key(private_pem, password=None)
            own = dict(claims, sub="carol", jti="00" * 16)
            signing_input = b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(own).encode())
            r, s2 = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
            print(json.dumps({"claims": claims, "kid": hashlib.sha256(point).digest()[:8].hex(),
                              "token": signing_input + "." + b64(r.to_bytes(32, "big") + s2.to_bytes(32, "big"))}))
            """
        let result = try await runTool("python3", ["-c", script, token, key.publicKey.pemRepresentation, key.pemRepresentation])
        #expect(result.status == 0, "python3 (with the cryptography package; run Scripts/bootstrap.sh) failed: \(result.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let claims = try #require(out["claims"] as? [String: Any])
        #expect(claims["sub"] as? String == "bob")
        #expect(claims["conference"] as? String == "conf-9")
        #expect(claims["role"] as? String == "admin")
        #expect(claims["iat"] as? Int == 1_800_000_000)
        #expect(claims["exp"] as? Int == 1_800_003_600)
        #expect(claims["iss"] as? String == "percrec")
        #expect(out["kid"] as? String == key.publicKey.keyID)
        let theirs = try #require(out["token"] as? String)
        let verified = try await AccessToken.verify(theirs, conference: "conf-9", key: key.publicKey, now: Self.now)
        #expect(verified.principal == "carol" && verified.role == .admin)
    }

    @Test("key files: token-signing.key is 0600 PKCS#8, the .pub is a P-256 SPKI openssl reads; no overwrite; bad files are refused")
    func keyFiles() async throws {
        let dir = makeTemporaryDirectory("token-keys") + "/keys"
        let key = TokenSigningKey.generate()
        let (priv, pub) = try key.write(to: dir)
        #expect(priv == dir + "/token-signing.key" && pub == dir + "/token-signing.pub")
        let mode = try FileManager.default.attributesOfItem(atPath: priv)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try String(contentsOfFile: priv, encoding: .utf8).hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(try String(contentsOfFile: pub, encoding: .utf8).hasPrefix("-----BEGIN PUBLIC KEY-----"))

        #expect(throws: TokenError.keyFile(path: priv, reason: TokenSigningKey.existsReason)) { try TokenSigningKey.generate().write(to: dir) }
        try FileManager.default.removeItem(atPath: priv)
        #expect(throws: TokenError.keyFile(path: pub, reason: TokenSigningKey.existsReason)) { try TokenSigningKey.generate().write(to: dir) }
        #expect(!FileManager.default.fileExists(atPath: priv), "a refused write must not leave a new private key behind")
        try FileManager.default.removeItem(atPath: pub)
        try key.write(to: dir)

        let loaded = try TokenSigningKey(contentsOf: priv)
        #expect(loaded.publicKey.keyID == key.publicKey.keyID)
        #expect(try TokenVerificationKey(contentsOf: pub).keyID == key.publicKey.keyID)
        #expect(key.publicKey.keyID.count == 16)
        let token = try await Self.issue(loaded)
        _ = try await AccessToken.verify(token, conference: "c1", key: try TokenVerificationKey(contentsOf: pub), now: Self.now)

        let text = try await runTool("openssl", ["pkey", "-pubin", "-in", pub, "-text", "-noout"])
        #expect(text.status == 0, "openssl: \(text.stderr)")
        #expect(text.stdout.contains("prime256v1"), "openssl does not see a P-256 key:\n\(text.stdout)")
        #expect(text.stdout.contains("Public-Key: (256 bit)"))
        let derived = try await runTool("openssl", ["pkey", "-in", priv, "-pubout"])
        #expect(derived.status == 0, "openssl: \(derived.stderr)")
        #expect(derived.stdout == (try String(contentsOfFile: pub, encoding: .utf8)))

        // Refusals: no file, an X25519 authority key, a private key where a public one belongs.
        #expect(throws: TokenError.keyFile(path: dir + "/nope.pub", reason: "no such file")) { try TokenVerificationKey(contentsOf: dir + "/nope.pub") }
        #expect(throws: TokenError.self) { try TokenVerificationKey(pemRepresentation: AuthorityPrivateKey().publicKey.pemRepresentation) }
        #expect(throws: TokenError.self) { try TokenSigningKey(pemRepresentation: AuthorityPrivateKey().pemRepresentation) }
        #expect(throws: TokenError.self) { try TokenVerificationKey(pemRepresentation: key.pemRepresentation) }
        #expect(throws: TokenError.self) { try TokenSigningKey(pemRepresentation: "garbage") }
        // openssl's own P-256 key (SEC1 "EC PRIVATE KEY") is accepted too.
        let sec1 = try await runTool("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout"])
        #expect(sec1.status == 0)
        #expect(throws: Never.self) { try TokenSigningKey(pemRepresentation: sec1.stdout) }
    }
}
