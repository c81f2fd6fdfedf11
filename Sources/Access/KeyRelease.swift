import Archive
import Authority
import EKT
import Foundation

/// The key-release exchange between an exporter and the archive authority (docs/access.md).
///
/// The requester sends its token and a fresh X25519 public key; the authority applies
/// `ConferencePolicy`, opens each allowed epoch key with its private key and seals it again with
/// HPKE to the requester's key. Nothing in a response is usable without the requester's private
/// key, which never leaves the requester's memory.
public struct KeyReleaseRequest: Sendable, Codable, Equatable {
    /// The requester's X25519 public key, 32 bytes, base64.
    public var requesterPublicKey: String
    /// Only these SPIs (nil: every epoch the policy allows).
    public var spis: [UInt16]?

    public init(requesterPublicKey: String, spis: [UInt16]? = nil) {
        self.requesterPublicKey = requesterPublicKey
        self.spis = spis
    }

    enum CodingKeys: String, CodingKey {
        case requesterPublicKey = "requester_public_key"
        case spis
    }
}

/// One released epoch key: the EKTKey sealed to the requester (same format and AAD as the
/// archive's own sealed keys, `SealedEpochKey`).
public struct ReleasedEpochKey: Sendable, Codable, Equatable {
    public var spi: UInt16
    public var keyID: String
    public var cipher: String
    /// HPKE `enc`, base64.
    public var encapsulatedKey: String
    /// HPKE ciphertext and tag, base64.
    public var sealedKey: String

    enum CodingKeys: String, CodingKey {
        case spi, cipher
        case keyID = "key_id"
        case encapsulatedKey = "hpke_enc"
        case sealedKey = "sealed_key"
    }
}

/// One refused epoch and why.
public struct RefusedEpoch: Sendable, Codable, Equatable {
    public var spi: UInt16
    public var keyID: String
    public var reason: String

    public init(spi: UInt16, keyID: String, reason: String) {
        self.spi = spi
        self.keyID = keyID
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case spi, reason
        case keyID = "key_id"
    }
}

/// The authority's answer (HTTP 200 when anything was granted, 403 when nothing was).
public struct KeyReleaseResponse: Sendable, Codable, Equatable {
    public var conference: String
    public var principal: String
    public var role: String
    public var decision: String
    public var reason: String
    public var granted: [ReleasedEpochKey]
    public var refused: [RefusedEpoch]
    /// The audit entry that records this decision.
    public var auditSequence: Int64
    public var auditHash: String

    enum CodingKeys: String, CodingKey {
        case conference, principal, role, decision, reason, granted, refused
        case auditSequence = "audit_sequence"
        case auditHash = "audit_hash"
    }
}

/// A request the authority did not answer with keys: the HTTP status and the reason, which is
/// also what the audit log records. `refused` lists the epochs when the policy refused them all.
public struct KeyReleaseFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var reason: String
    public var refused: [RefusedEpoch]
    public var auditSequence: Int64?

    public var description: String { reason }
}

/// The error body the service sends with a `KeyReleaseFailure`.
public struct KeyReleaseErrorBody: Sendable, Codable, Equatable {
    public var error: String
    public var refused: [RefusedEpoch]
    public var auditSequence: Int64?

    public init(error: String, refused: [RefusedEpoch], auditSequence: Int64?) {
        self.error = error
        self.refused = refused
        self.auditSequence = auditSequence
    }

    enum CodingKeys: String, CodingKey {
        case error, refused
        case auditSequence = "audit_sequence"
    }
}

/// The archive authority's decision procedure, shared by `percrec authority serve` and tests.
/// Every outcome, granted or not, is appended to the audit log before the answer is returned.
public final class KeyReleaseAuthority: Sendable {
    public let archive: Archive
    let authorityKey: AuthorityPrivateKey
    let tokenKey: TokenVerificationKey
    let audit: AuditLog

    public init(archive: Archive, authorityKey: AuthorityPrivateKey, tokenKey: TokenVerificationKey) {
        self.archive = archive
        self.authorityKey = authorityKey
        self.tokenKey = tokenKey
        self.audit = AuditLog(archive: archive)
    }

    /// Decides one request. `token` is the bearer token (nil when the request had none).
    public func release(token: String?, conference: String, request: KeyReleaseRequest?,
                        now: Date = Date()) async -> Result<KeyReleaseResponse, KeyReleaseFailure> {
        let unverified = token.flatMap(AccessToken.unverifiedClaims)
        var record = AuditRecord(at: now, principal: unverified.map { "\($0.principal) (unverified)" } ?? "unknown",
                                 role: unverified?.role.rawValue ?? "none", conference: conference, requester: "none",
                                 tokenID: unverified?.tokenID ?? "none", granted: [], refused: [], decision: .refused, reason: "")

        func fail(_ status: Int, _ reason: String, refused: [RefusedEpoch] = []) -> Result<KeyReleaseResponse, KeyReleaseFailure> {
            record.reason = reason
            record.refused = refused.map { "\($0.spi)/\($0.keyID)" }
            let sequence: Int64?
            do { sequence = try audit.append(record).sequence } catch {
                return .failure(KeyReleaseFailure(status: 500, reason: "refused (\(reason)), and the audit log could not record it: \(error)",
                                                  refused: refused, auditSequence: nil))
            }
            return .failure(KeyReleaseFailure(status: status, reason: reason, refused: refused, auditSequence: sequence))
        }

        // 1. Who is asking: the token must verify for this conference.
        guard let token else { return fail(401, "no access token (send Authorization: Bearer <token>)") }
        let claims: AccessClaims
        do { claims = try await AccessToken.verify(token, conference: conference, key: tokenKey, now: now) } catch {
            let status: Int
            switch error {
            case .wrongConference: status = 403
            default: status = 401
            }
            return fail(status, "token refused: \(error)")
        }
        record.principal = claims.principal
        record.role = claims.role.rawValue
        record.tokenID = claims.tokenID

        // 2. The requester's fresh key, which the released keys are sealed to.
        guard let request else { return fail(400, "the request body is not a key-release request (JSON with requester_public_key)") }
        guard let raw = Data(base64Encoded: request.requesterPublicKey).map({ [UInt8]($0) }), raw.count == 32,
              let requester = try? AuthorityPublicKey(rawRepresentation: raw) else {
            return fail(400, "requester_public_key must be a base64 X25519 public key of 32 bytes")
        }
        record.requester = requester.keyID

        // 3. The policy over what the archive holds.
        let facts: ConferenceAccessFacts
        let epochs: [ArchivedEpoch]
        do {
            facts = try archive.accessFacts(conference: conference)
            epochs = try archive.epochs(conference: conference)
        } catch {
            if case .unknownConference = error { return fail(404, "the archive holds no conference \(conference)") }
            return fail(500, "cannot read the archive: \(error)")
        }
        let decision = ConferencePolicy.decide(principal: claims.principal, role: claims.role, facts: facts)
        let wanted = request.spis.map(Set.init)
        var granted: [ReleasedEpochKey] = []
        var refused: [RefusedEpoch] = []
        for verdict in decision.verdicts where wanted?.contains(verdict.spi) ?? true {
            guard verdict.granted else {
                refused.append(RefusedEpoch(spi: verdict.spi, keyID: verdict.keyID, reason: verdict.reason))
                continue
            }
            guard let stored = epochs.first(where: { $0.spi == verdict.spi && $0.keyID == verdict.keyID }) else {
                refused.append(RefusedEpoch(spi: verdict.spi, keyID: verdict.keyID, reason: "the archive lost this epoch's sealed key"))
                continue
            }
            switch reseal(stored, conference: conference, to: requester) {
            case let .success(key): granted.append(key)
            case let .failure(failure): refused.append(RefusedEpoch(spi: verdict.spi, keyID: verdict.keyID, reason: failure.reason))
            }
        }
        if let wanted {
            for spi in wanted.sorted() where !decision.verdicts.contains(where: { $0.spi == spi }) {
                refused.append(RefusedEpoch(spi: spi, keyID: "-", reason: "the archive holds no epoch with SPI \(spi) for \(conference)"))
            }
        }
        guard !granted.isEmpty else {
            return fail(403, refused.isEmpty ? "\(conference) has no epoch keys to release" : decision.summary, refused: refused)
        }

        // 4. Record, then answer.
        record.granted = granted.map { "\($0.spi)/\($0.keyID)" }
        record.refused = refused.map { "\($0.spi)/\($0.keyID)" }
        record.decision = refused.isEmpty ? .granted : .partial
        record.reason = decision.summary
        let entry: AuditEntry
        do { entry = try audit.append(record) } catch {
            // No audit entry, no keys.
            return .failure(KeyReleaseFailure(status: 500, reason: "the audit log could not record the release: \(error)",
                                              refused: [], auditSequence: nil))
        }
        return .success(KeyReleaseResponse(conference: conference, principal: claims.principal, role: claims.role.rawValue,
                                           decision: record.decision.rawValue, reason: decision.summary, granted: granted,
                                           refused: refused, auditSequence: entry.sequence,
                                           auditHash: hexText(entry.hash)))
    }

    /// Opens an archived epoch key with the authority's key and seals it to the requester. The
    /// plaintext EKTKey exists only inside this function and is wiped before it returns.
    private func reseal(_ stored: ArchivedEpoch, conference: String, to requester: AuthorityPublicKey) -> Result<ReleasedEpochKey, ResealFailure> {
        guard let cipher = EKTCipher.allCases.first(where: { "\($0)" == stored.cipher }) else {
            return .failure(ResealFailure(reason: "unknown EKT cipher \(stored.cipher)"))
        }
        guard stored.authorityKeyID == authorityKey.publicKey.keyID else {
            return .failure(ResealFailure(reason: "sealed to authority key \(stored.authorityKeyID), not to this authority's \(authorityKey.publicKey.keyID)"))
        }
        let sealed = SealedEpochKey(conference: conference, spi: stored.spi, cipher: cipher, authorityKeyID: stored.authorityKeyID,
                                    encapsulatedKey: stored.encapsulatedKey, ciphertext: stored.sealedKey)
        do {
            let message = try sealed.open(with: authorityKey)
            defer {
                message.ektKeyValue.wipe()
                message.srtpMasterSalt.wipe()
            }
            let resealed = try SealedEpochKey.seal(message, cipher: cipher, conference: conference, to: requester)
            return .success(ReleasedEpochKey(spi: stored.spi, keyID: stored.keyID, cipher: stored.cipher,
                                             encapsulatedKey: Data(resealed.encapsulatedKey).base64EncodedString(),
                                             sealedKey: Data(resealed.ciphertext).base64EncodedString()))
        } catch {
            return .failure(ResealFailure(reason: "cannot open the sealed key: \(error)"))
        }
    }
}

struct ResealFailure: Error { var reason: String }

extension ReleasedEpochKey {
    /// The released key as an archived epoch sealed to `requesterKeyID`, so `EpochKeyRing` opens
    /// it with the requester's private key exactly as it opens the archive's own records.
    public func asArchivedEpoch(requesterKeyID: String, ttl: UInt32 = 0) -> ArchivedEpoch? {
        guard let enc = Data(base64Encoded: encapsulatedKey), let ct = Data(base64Encoded: sealedKey) else { return nil }
        return ArchivedEpoch(spi: spi, keyID: keyID, cipher: cipher, ttl: ttl, hpkeSuite: SealedEpochKey.suiteName,
                             authorityKeyID: requesterKeyID, encapsulatedKey: [UInt8](enc), sealedKey: [UInt8](ct), seenAt: 0)
    }
}
