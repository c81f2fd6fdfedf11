import EKT
import Foundation

/// The Key Distributor's configuration file (JSON, snake_case keys). Documented with an
/// example in docs/key-plane.md. Paths are relative to the file's directory.
///
/// ```json
/// {
///   "listen": "127.0.0.1:7100",
///   "certificate": "kd-cert.pem", "private_key": "kd-key.pem",
///   "media_distributors": ["sha-256 AB:CD:…"],
///   "conferences": [{
///     "id": "c1",
///     "ekt_cipher": "AESKW128", "ekt_ttl_seconds": 86400,
///     "rekey_on_join": true, "rekey_on_leave": true,
///     "policy": {"allow_catch_up": false, "administrators": ["carol"]},
///     "participants": [
///       {"name": "alice", "fingerprint": "sha-256 …", "role": "participant"},
///       {"name": "archive", "fingerprint": "sha-256 …", "role": "recorder"}]
///   }]
/// }
/// ```
public struct KeyDistributorConfig: Sendable, Equatable, Codable {
    /// Where the KD accepts the Media Distributors' TLS tunnel connections (host:port).
    public var listen: String
    /// PEM files of the KD's certificate and key; both absent means a fresh identity per run.
    public var certificate: String?
    public var privateKey: String?
    /// Fingerprints of the Media Distributors allowed to open a tunnel (TLS pinning).
    public var mediaDistributors: [String]
    public var conferences: [ConferenceConfig]

    public init(listen: String, certificate: String? = nil, privateKey: String? = nil,
                mediaDistributors: [String], conferences: [ConferenceConfig]) {
        self.listen = listen
        self.certificate = certificate
        self.privateKey = privateKey
        self.mediaDistributors = mediaDistributors
        self.conferences = conferences
    }

    /// Reads and validates a configuration file.
    public static func load(path: String) throws(KeyDistributorConfigError) -> KeyDistributorConfig {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        return try decode(data, origin: path)
    }

    /// Decodes and validates JSON; `origin` names the source in errors.
    public static func decode(_ data: Data, origin: String = "configuration") throws(KeyDistributorConfigError) -> KeyDistributorConfig {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let config: KeyDistributorConfig
        do { config = try decoder.decode(KeyDistributorConfig.self, from: data) } catch let error as DecodingError {
            throw .invalid(origin: origin, reason: Self.explain(error))
        } catch {
            throw .invalid(origin: origin, reason: "\(error)")
        }
        try config.validate(origin: origin)
        return config
    }

    /// JSON text of this configuration (snake_case, sorted keys), for `percrec kd --example`.
    public func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Checks what the JSON schema cannot: unique ids, parseable fingerprints, no identity invited
    /// twice to one conference, known ciphers, a TTL that fits 24 bits, and a policy that fits
    /// one key-plane message.
    public func validate(origin: String = "configuration") throws(KeyDistributorConfigError) {
        for (i, md) in mediaDistributors.enumerated() {
            do { _ = try DTLSFingerprint(parsing: md) } catch {
                throw .invalid(origin: origin, reason: "media_distributors[\(i)]: \(error)")
            }
        }
        var ids = Set<String>()
        for (ci, c) in conferences.enumerated() {
            let here = "conferences[\(ci)] (\(c.id))"
            guard !c.id.isEmpty, c.id.utf8.count <= 255 else { throw .invalid(origin: origin, reason: "\(here): id must be 1…255 bytes") }
            guard ids.insert(c.id).inserted else { throw .invalid(origin: origin, reason: "\(here): duplicate conference id") }
            guard c.cipher != nil else {
                throw .invalid(origin: origin, reason: "\(here): unknown ekt_cipher \"\(c.ektCipher)\" (AESKW128 or AESKW256)")
            }
            guard c.ektTtlSeconds >= 1, c.ektTtlSeconds <= EKTKeyMessage.maxTTL else {
                throw .invalid(origin: origin, reason: "\(here): ekt_ttl_seconds must be 1…\(EKTKeyMessage.maxTTL)")
            }
            if let problem = c.policy.problem(conference: c.id) {
                throw .invalid(origin: origin, reason: "\(here).policy.\(problem.key): \(problem.reason)")
            }
            var seen = Set<DTLSFingerprint>()
            for (pi, p) in c.participants.enumerated() {
                let fp: DTLSFingerprint
                do { fp = try DTLSFingerprint(parsing: p.fingerprint) } catch {
                    throw .invalid(origin: origin, reason: "\(here).participants[\(pi)] (\(p.name)): \(error)")
                }
                guard seen.insert(fp).inserted else {
                    throw .invalid(origin: origin, reason: "\(here).participants[\(pi)] (\(p.name)): fingerprint invited twice")
                }
            }
        }
    }

    private static func explain(_ error: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String {
            c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case let .keyNotFound(key, c): return "missing key \(path(c)).\(key.stringValue)"
        case let .typeMismatch(_, c), let .valueNotFound(_, c): return "\(path(c)): \(c.debugDescription)"
        case let .dataCorrupted(c): return "\(path(c)): \(c.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// One conference the KD keys.
public struct ConferenceConfig: Sendable, Equatable, Codable {
    public var id: String
    /// "AESKW128" (default) or "AESKW256".
    public var ektCipher: String
    /// The TTL sent in each EKTKey (RFC 8870 §5.2.2), seconds.
    public var ektTtlSeconds: UInt32
    /// Rekey (a new EKTKey with a new SPI to everyone) when someone joins / leaves.
    public var rekeyOnJoin: Bool
    public var rekeyOnLeave: Bool
    public var policy: ConferencePolicyConfig
    public var participants: [InvitedParticipant]

    public var cipher: EKTCipher? { EKTCipher.allCases.first { $0.description == ektCipher.uppercased().replacingOccurrences(of: "_", with: "") } }

    public init(id: String, ektCipher: String = "AESKW128", ektTtlSeconds: UInt32 = 86_400, rekeyOnJoin: Bool = true,
                rekeyOnLeave: Bool = true, policy: ConferencePolicyConfig = .init(), participants: [InvitedParticipant]) {
        self.id = id
        self.ektCipher = ektCipher
        self.ektTtlSeconds = ektTtlSeconds
        self.rekeyOnJoin = rekeyOnJoin
        self.rekeyOnLeave = rekeyOnLeave
        self.policy = policy
        self.participants = participants
    }

    private enum CodingKeys: String, CodingKey {
        case id, ektCipher, ektTtlSeconds, rekeyOnJoin, rekeyOnLeave, policy, participants
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        ektCipher = try c.decodeIfPresent(String.self, forKey: .ektCipher) ?? "AESKW128"
        ektTtlSeconds = try c.decodeIfPresent(UInt32.self, forKey: .ektTtlSeconds) ?? 86_400
        rekeyOnJoin = try c.decodeIfPresent(Bool.self, forKey: .rekeyOnJoin) ?? true
        rekeyOnLeave = try c.decodeIfPresent(Bool.self, forKey: .rekeyOnLeave) ?? true
        policy = try c.decodeIfPresent(ConferencePolicyConfig.self, forKey: .policy) ?? .init()
        participants = try c.decode([InvitedParticipant].self, forKey: .participants)
    }
}

/// Policy fields the archive authority applies later (issue 7). The KD sends them to every
/// member in a key-plane `policy` message; the recorder archives them.
public struct ConferencePolicyConfig: Sendable, Equatable, Codable {
    /// Limits that keep the `policy` message one datagram (`KeyPlaneMessage.maximumSize`)
    /// for the usual case; `problem(conference:)` also checks the encoded size itself.
    public static let maximumAdministrators = 32
    public static let maximumAdministratorNameBytes = 64

    /// Late joiners may obtain the epochs before they joined.
    public var allowCatchUp: Bool
    /// Principals (names) who may obtain every epoch.
    public var administrators: [String]

    public init(allowCatchUp: Bool = false, administrators: [String] = []) {
        self.allowCatchUp = allowCatchUp
        self.administrators = administrators
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        allowCatchUp = try c.decodeIfPresent(Bool.self, forKey: .allowCatchUp) ?? false
        administrators = try c.decodeIfPresent([String].self, forKey: .administrators) ?? []
    }
    private enum CodingKeys: String, CodingKey { case allowCatchUp, administrators }

    /// Why this policy cannot be sent for `conference`: the offending key below `policy`
    /// (`administrators`, `administrators[2]`) and the reason; nil when it can. The KD's
    /// configuration and `percrec import`'s keys file both check it, so an archive only ever
    /// holds policies the key plane could have carried.
    public func problem(conference: String) -> (key: String, reason: String)? {
        guard administrators.count <= Self.maximumAdministrators else {
            return ("administrators", "\(administrators.count) names, at most \(Self.maximumAdministrators)")
        }
        for (i, name) in administrators.enumerated() {
            let bytes = name.utf8.count
            guard bytes >= 1, bytes <= Self.maximumAdministratorNameBytes else {
                return ("administrators[\(i)]", "a name must be 1…\(Self.maximumAdministratorNameBytes) UTF-8 bytes, \"\(name)\" has \(bytes)")
            }
        }
        let size = KeyPlaneMessage.policy(conference: conference, policy: self).serialized().count
        guard size <= KeyPlaneMessage.maximumSize else {
            return ("administrators", "the policy message would take \(size) bytes, over the key plane's \(KeyPlaneMessage.maximumSize) "
                        + "(fewer or shorter names)")
        }
        return nil
    }
}

/// An identity invited to a conference: its certificate fingerprint and display name.
public struct InvitedParticipant: Sendable, Equatable, Codable {
    public var name: String
    /// `sha-256 AB:CD:…`
    public var fingerprint: String
    public var role: ParticipantRole

    public init(name: String, fingerprint: String, role: ParticipantRole = .participant) {
        self.name = name
        self.fingerprint = fingerprint
        self.role = role
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        fingerprint = try c.decode(String.self, forKey: .fingerprint)
        let roleName = try c.decodeIfPresent(String.self, forKey: .role) ?? "participant"
        guard let role = ParticipantRole.allCases.first(where: { $0.description == roleName }) else {
            throw DecodingError.dataCorruptedError(forKey: .role, in: c,
                                                   debugDescription: "unknown role \"\(roleName)\" (participant or recorder)")
        }
        self.role = role
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(fingerprint, forKey: .fingerprint)
        try c.encode(role.description, forKey: .role)
    }
    private enum CodingKeys: String, CodingKey { case name, fingerprint, role }
}

/// Why a configuration file was refused.
public enum KeyDistributorConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalid(origin: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "cannot read configuration \(path): \(reason)"
        case let .invalid(origin, reason): "invalid configuration \(origin): \(reason)"
        }
    }
}
