import Archive

/// Who may obtain which epoch keys of a conference (DESIGN §2): the one place the rule lives.
///
/// The facts come from the archive as the recorder stored them: the Key Distributor's roster log
/// (joins and leaves, each with the EKT SPI in force once it took effect) and the policy the KD
/// announced (`allow_catch_up`, `administrators`).
///
/// - An **administrator** (a token with role `admin` whose principal the policy lists) gets
///   every epoch.
/// - A **participant** (a token with role `participant` whose principal is a roster identity:
///   its display name, or its certificate fingerprint) gets the epochs whose key the KD gave
///   them: the SPI in force after their join and after every later event while they stayed,
///   up to (not including) the rekey their leave caused.
/// - A participant who joined late also gets the epochs in force before they joined (and
///   between two stays), but only if the conference allows catch-up. Never those after their
///   last leave.
/// - Anyone else gets nothing.
public enum ConferencePolicy {
    /// One epoch's verdict.
    public struct Verdict: Sendable, Equatable {
        public var spi: UInt16
        public var keyID: String
        public var granted: Bool
        public var reason: String
    }

    /// The decision for one principal over every epoch of a conference.
    public struct Decision: Sendable, Equatable {
        public var principal: String
        public var role: AccessRole
        public var conference: String
        /// One per archived epoch, in archive order.
        public var verdicts: [Verdict]
        /// A one-line summary ("alice was present for 3 of 5 epochs", "carol is not an administrator …").
        public var summary: String

        public var granted: [Verdict] { verdicts.filter(\.granted) }
        public var refused: [Verdict] { verdicts.filter { !$0.granted } }
    }

    /// The policy when the archive holds no announcement: no catch-up, no administrators.
    public static let defaults = ArchivedPolicy(allowCatchUp: false, administrators: [], receivedAt: 0)

    public static func decide(principal: String, role: AccessRole, facts: ConferenceAccessFacts) -> Decision {
        let policy = facts.policy ?? defaults
        let conference = facts.conference
        func all(_ granted: Bool, _ reason: String) -> [Verdict] {
            facts.epochs.map { Verdict(spi: $0.spi, keyID: $0.keyID, granted: granted, reason: reason) }
        }
        func decision(_ verdicts: [Verdict], _ summary: String) -> Decision {
            Decision(principal: principal, role: role, conference: conference, verdicts: verdicts, summary: summary)
        }

        switch role {
        case .admin:
            guard policy.administrators.contains(principal) else {
                let listed = policy.administrators.isEmpty ? "none" : policy.administrators.joined(separator: ", ")
                let reason = "\(principal) is not an administrator of \(conference) (administrators: \(listed))"
                return decision(all(false, reason), reason)
            }
            return decision(all(true, "\(principal) is an administrator of \(conference)"),
                            "\(principal) is an administrator of \(conference): all \(facts.epochs.count) epochs")
        case .participant:
            break
        }

        // Which roster identity is the principal? A display name, or a certificate fingerprint.
        let wanted = normalizedFingerprint(principal)
        let identities = Set(facts.roster.filter { $0.role == "participant" && ($0.name == principal || normalizedFingerprint($0.fingerprint) == wanted) }
            .map(\.fingerprint))
        guard let identity = identities.first else {
            let reason = "\(principal) is not on the roster of \(conference)"
            return decision(all(false, reason), reason)
        }
        guard identities.count == 1 else {
            let reason = "the name \(principal) matches \(identities.count) identities on the roster of \(conference); "
                + "issue the token for a certificate fingerprint"
            return decision(all(false, reason), reason)
        }
        guard facts.roster.allSatisfy({ $0.spi != nil }) else {
            let reason = "the archived roster of \(conference) does not say which key was in force after each event "
                + "(an import), so presence cannot be matched to epochs; only administrators may export it"
            return decision(all(false, reason), reason)
        }

        // Walk the log: the SPI in force after each event is held while the identity is a member.
        var member = false
        var held = Set<UInt16>()          // keys the KD gave them
        var before = Set<UInt16>()        // keys in force before their last leave (catch-up candidates)
        var after = Set<UInt16>()         // keys in force after their last leave
        var firstJoin: Int?
        var lastMember = -1
        for (i, e) in facts.roster.enumerated() {
            if e.fingerprint == identity {
                if e.kind == "leave" { member = false } else {
                    member = true
                    if firstJoin == nil { firstJoin = i }
                }
            }
            if member, let spi = e.spi { held.insert(spi); lastMember = i }
        }
        for (i, e) in facts.roster.enumerated() {
            guard let spi = e.spi else { continue }
            if i <= lastMember { before.insert(spi) } else { after.insert(spi) }
        }
        let name = facts.roster.first { $0.fingerprint == identity }?.name ?? principal
        let verdicts = facts.epochs.map { epoch -> Verdict in
            func verdict(_ granted: Bool, _ reason: String) -> Verdict {
                Verdict(spi: epoch.spi, keyID: epoch.keyID, granted: granted, reason: reason)
            }
            if held.contains(epoch.spi) { return verdict(true, "\(name) was present while this key was in force") }
            if before.contains(epoch.spi) {
                if policy.allowCatchUp { return verdict(true, "catch-up: before \(name) joined or while away; the conference allows catch-up") }
                return verdict(false, "\(name) was not present while this key was in force, and \(conference) does not allow catch-up")
            }
            if after.contains(epoch.spi) { return verdict(false, "this key came into force after \(name) left") }
            return verdict(false, "no roster event names SPI \(epoch.spi), so no presence covers this epoch")
        }
        let grantedCount = verdicts.filter(\.granted).count
        return decision(verdicts, "\(name) may obtain \(grantedCount) of \(verdicts.count) epochs of \(conference)")
    }

    /// When each SPI was in force by the Key Distributor's clock: from the roster event that put it
    /// in force to the next event that changed it (the last one stays open: `end` nil). An SPI
    /// in force twice (a KD that reused it) gets its first stretch only.
    public static func inForce(_ facts: ConferenceAccessFacts) -> [UInt16: (start: Double, end: Double?)] {
        var spans: [UInt16: (start: Double, end: Double?)] = [:]
        var current: UInt16?
        for e in facts.roster {
            guard let spi = e.spi, spi != current else { continue }
            if let c = current, spans[c]?.end == nil { spans[c]?.end = e.time }
            if spans[spi] == nil { spans[spi] = (e.time, nil) }
            current = spi
        }
        return spans
    }

    /// "sha-256 AB:CD:…" and "ab:cd…" compare equal; other strings are compared as they are.
    static func normalizedFingerprint(_ text: String) -> String {
        var t = text.lowercased()
        if t.hasPrefix("sha-256 ") { t.removeFirst(8) }
        return t.replacingOccurrences(of: ":", with: "")
    }
}
