import Archive
import Testing
@testable import Access

/// The policy matrix: principals × conferences × epochs, over one roster log.
///
/// The log (SPI in force after each event):
///   #1 alice joins → 10 (before the recorder: epoch 10 is not archived)
///   #2 archive (the recorder) joins → 11
///   #3 bob joins → 12
///   #4 alice leaves → 13
///   #5 dave joins → 14
///   #6 bob leaves → 15
///   #7 alice joins again → 16
/// Archived epochs: 11…16.
@Suite struct ConferencePolicyTests {
    static let fingerprints = ["alice": "sha-256 AA:01", "archive": "sha-256 EE:01", "bob": "sha-256 BB:01", "dave": "sha-256 DD:01"]

    static func facts(_ name: String, policy: ArchivedPolicy?) -> ConferenceAccessFacts {
        let log: [(String, String, UInt16)] = [("join", "alice", 10), ("join", "archive", 11), ("join", "bob", 12), ("leave", "alice", 13),
                                               ("join", "dave", 14), ("leave", "bob", 15), ("join", "alice", 16)]
        let roster = log.enumerated().map { i, e in
            ConferenceAccessFacts.RosterEntry(sequence: UInt32(i + 1), kind: e.0, name: e.1, fingerprint: fingerprints[e.1] ?? "",
                                              role: e.1 == "archive" ? "recorder" : "participant", time: 1000 + Double(i) * 10, spi: e.2)
        }
        let epochs = (11...16).map { ConferenceAccessFacts.Epoch(spi: UInt16($0), keyID: "k\($0)", firstSeen: 1000 + Double($0 - 10) * 10) }
        return ConferenceAccessFacts(conference: name, epochs: epochs, roster: roster, policy: policy)
    }

    static let catchUp = facts("catch-up", policy: ArchivedPolicy(allowCatchUp: true, administrators: ["carol"], receivedAt: 1))
    static let strict = facts("strict", policy: ArchivedPolicy(allowCatchUp: false, administrators: ["carol"], receivedAt: 1))
    static let unannounced = facts("unannounced", policy: nil)

    struct Row: Sendable, CustomTestStringConvertible {
        var principal: String
        var role: AccessRole
        var conference: ConferenceAccessFacts
        var granted: Set<UInt16>
        var testDescription: String { "\(principal) as \(role) in \(conference.conference)" }
    }

    static let matrix: [Row] = [
        // Administrators: all, if the policy lists them.
        Row(principal: "carol", role: .admin, conference: catchUp, granted: [11, 12, 13, 14, 15, 16]),
        Row(principal: "carol", role: .admin, conference: strict, granted: [11, 12, 13, 14, 15, 16]),
        Row(principal: "carol", role: .admin, conference: unannounced, granted: []),
        Row(principal: "alice", role: .admin, conference: strict, granted: []),
        Row(principal: "carol", role: .participant, conference: catchUp, granted: []),
        // alice: present #1–#3 and from #7; away for 13, 14, 15 (catch-up covers the time away).
        Row(principal: "alice", role: .participant, conference: strict, granted: [11, 12, 16]),
        Row(principal: "alice", role: .participant, conference: catchUp, granted: [11, 12, 13, 14, 15, 16]),
        Row(principal: "alice", role: .participant, conference: unannounced, granted: [11, 12, 16]),
        // bob: present #3–#5; never what came after his leave, even with catch-up.
        Row(principal: "bob", role: .participant, conference: strict, granted: [12, 13, 14]),
        Row(principal: "bob", role: .participant, conference: catchUp, granted: [11, 12, 13, 14]),
        Row(principal: "sha-256 bb:01", role: .participant, conference: strict, granted: [12, 13, 14]),
        Row(principal: "BB01", role: .participant, conference: strict, granted: [12, 13, 14]),
        // dave: a late joiner still present at the end.
        Row(principal: "dave", role: .participant, conference: strict, granted: [14, 15, 16]),
        Row(principal: "dave", role: .participant, conference: catchUp, granted: [11, 12, 13, 14, 15, 16]),
        // Strangers, and the recorder's identity, get nothing.
        Row(principal: "mallory", role: .participant, conference: catchUp, granted: []),
        Row(principal: "mallory", role: .admin, conference: catchUp, granted: []),
        Row(principal: "archive", role: .participant, conference: catchUp, granted: []),
        Row(principal: "", role: .participant, conference: catchUp, granted: []),
    ]

    @Test(arguments: matrix)
    func decision(_ row: Row) {
        let d = ConferencePolicy.decide(principal: row.principal, role: row.role, facts: row.conference)
        #expect(d.verdicts.map(\.spi) == [11, 12, 13, 14, 15, 16], "one verdict per archived epoch, in order")
        #expect(Set(d.granted.map(\.spi)) == row.granted)
        for v in d.verdicts { #expect(!v.reason.isEmpty) }
    }

    @Test func reasonsSayWhy() {
        func reason(_ p: String, _ role: AccessRole, _ f: ConferenceAccessFacts, _ spi: UInt16) -> String {
            ConferencePolicy.decide(principal: p, role: role, facts: f).verdicts.first { $0.spi == spi }?.reason ?? ""
        }
        #expect(reason("bob", .participant, Self.strict, 11).contains("does not allow catch-up"))
        #expect(reason("bob", .participant, Self.catchUp, 11).contains("catch-up"))
        #expect(reason("bob", .participant, Self.catchUp, 16).contains("after bob left"))
        #expect(reason("mallory", .participant, Self.strict, 12) == "mallory is not on the roster of strict")
        #expect(reason("alice", .admin, Self.strict, 12).contains("not an administrator of strict (administrators: carol)"))
        #expect(reason("carol", .admin, Self.unannounced, 12).contains("administrators: none"))
    }

    @Test func ambiguousNameIsRefused() {
        var f = Self.strict
        f.roster.append(.init(sequence: 8, kind: "join", name: "bob", fingerprint: "sha-256 BB:02", role: "participant", time: 2000, spi: 17))
        let d = ConferencePolicy.decide(principal: "bob", role: .participant, facts: f)
        #expect(d.granted.isEmpty)
        #expect(d.summary.contains("matches 2 identities"))
        // The fingerprint still identifies the first bob.
        #expect(Set(ConferencePolicy.decide(principal: "sha-256 BB:01", role: .participant, facts: f).granted.map(\.spi)) == [12, 13, 14])
    }

    @Test func rosterWithoutSPIsGrantsOnlyAdministrators() {
        var f = Self.catchUp
        for i in f.roster.indices { f.roster[i].spi = nil }
        #expect(ConferencePolicy.decide(principal: "alice", role: .participant, facts: f).granted.isEmpty)
        #expect(ConferencePolicy.decide(principal: "carol", role: .admin, facts: f).granted.count == 6)
    }

    @Test func epochsNotNamedByTheRosterAreRefusedToParticipants() {
        var f = Self.catchUp
        f.epochs.append(.init(spi: 99, keyID: "k99", firstSeen: 5000))
        let v = ConferencePolicy.decide(principal: "dave", role: .participant, facts: f).verdicts.last
        #expect(v?.spi == 99 && v?.granted == false)
        #expect(v?.reason.contains("no roster event names SPI 99") == true)
    }

    @Test func timeInForce() {
        let spans = ConferencePolicy.inForce(Self.strict)
        #expect(spans[10]?.start == 1000 && spans[10]?.end == 1010)
        #expect(spans[13]?.start == 1030 && spans[13]?.end == 1040)
        #expect(spans[16]?.start == 1060 && spans[16]?.end == nil)
    }
}
