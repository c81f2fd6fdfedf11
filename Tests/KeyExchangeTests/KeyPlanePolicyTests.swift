import Foundation
import KeyExchange
import Testing
import TestSupport

// The key-plane `policy` message (type 4, KD → endpoint) and the configuration limits that keep
// it one datagram. The example bytes are the ones in docs/key-plane.md, written out by hand
// from the layout there.

@Suite("Key-plane policy message and its configuration limits")
struct KeyPlanePolicyTests {
    static let carol = KeyPlaneMessage.policy(conference: "c1", policy: .init(allowCatchUp: true, administrators: ["carol"]))

    @Test("Policy serializes to the documented bytes")
    func layout() throws {
        //                      type  ver   len   'c'   '1'   flags n     len   'c'   'a'   'r'   'o'   'l'
        let documented: [UInt8] = [0x04, 0x01, 0x02, 0x63, 0x31, 0x01, 0x01, 0x05, 0x63, 0x61, 0x72, 0x6F, 0x6C]
        #expect(Self.carol.serialized() == documented)
        #expect(try KeyPlaneMessage(parsing: documented) == Self.carol)
        #expect(Self.carol.typeCode == 4)
        // The defaults: no catch-up, no administrators.
        let none = KeyPlaneMessage.policy(conference: "c1", policy: .init())
        #expect(none.serialized() == [0x04, 0x01, 0x02, 0x63, 0x31, 0x00, 0x00])
    }

    @Test("Policies round-trip, including the largest the configuration accepts")
    func roundTrip() throws {
        let longID = String(repeating: "k", count: 255)
        let samples: [KeyPlaneMessage] = [
            Self.carol,
            .policy(conference: "c1", policy: .init()),
            .policy(conference: "weekly é", policy: .init(allowCatchUp: false, administrators: ["ops@example.com", "zoë", "carol"])),
            .policy(conference: longID, policy: .init(allowCatchUp: true,
                                                      administrators: (0 ..< 32).map { "admin-\($0)-" + String(repeating: "x", count: 10) })),
        ]
        for m in samples {
            let bytes = m.serialized()
            #expect(bytes.count <= KeyPlaneMessage.maximumSize)
            #expect(try KeyPlaneMessage(parsing: bytes) == m)
        }
        let biggest = try #require(samples.last)
        guard case let .policy(conference, policy) = biggest else { Issue.record("not a policy"); return }
        #expect(policy.problem(conference: conference) == nil)
    }

    @Test("Every truncation is refused with a typed error naming the field")
    func truncations() throws {
        let bytes = Self.carol.serialized()
        for n in 0 ..< bytes.count {
            do {
                _ = try KeyPlaneMessage(parsing: Array(bytes.prefix(n)))
                Issue.record("a \(n)-byte prefix parsed")
            } catch {
                guard case .truncated = error else { Issue.record("prefix \(n): \(error)"); continue }
            }
        }
        // Named fields: cut inside the flags, the count and the name.
        #expect(throws: KeyPlaneError.truncated(field: "policy flags", needed: 1, available: 0)) {
            try KeyPlaneMessage(parsing: Array(bytes.prefix(5)))
        }
        #expect(throws: KeyPlaneError.truncated(field: "administrator count", needed: 1, available: 0)) {
            try KeyPlaneMessage(parsing: Array(bytes.prefix(6)))
        }
        #expect(throws: KeyPlaneError.truncated(field: "administrator name", needed: 5, available: 2)) {
            try KeyPlaneMessage(parsing: Array(bytes.prefix(10)))
        }
    }

    @Test("Reserved flags, empty names, bad UTF-8 and trailing bytes are refused")
    func invalid() throws {
        var reserved = Self.carol.serialized()
        reserved[5] = 0x03
        #expect(throws: KeyPlaneError.invalidField(field: "policy flags", reason: "reserved bits set in 3")) {
            try KeyPlaneMessage(parsing: reserved)
        }
        #expect(throws: KeyPlaneError.invalidField(field: "administrator name", reason: "empty")) {
            try KeyPlaneMessage(parsing: [0x04, 0x01, 0x02, 0x63, 0x31, 0x00, 0x01, 0x00])
        }
        #expect(throws: KeyPlaneError.invalidField(field: "administrator name", reason: "not UTF-8")) {
            try KeyPlaneMessage(parsing: [0x04, 0x01, 0x02, 0x63, 0x31, 0x00, 0x01, 0x01, 0xFF])
        }
        #expect(throws: KeyPlaneError.trailingBytes(1)) { try KeyPlaneMessage(parsing: Self.carol.serialized() + [0]) }
        #expect(throws: KeyPlaneError.unsupportedVersion(2)) { try KeyPlaneMessage(parsing: [0x04, 0x02, 0x02, 0x63, 0x31, 0x00, 0x00]) }
    }

    @Test("Seeded mutations (flips, cuts, insertions) give a typed error or an exact re-parse, never a crash")
    func mutations() throws {
        let samples = [Self.carol.serialized(),
                       KeyPlaneMessage.policy(conference: "conf", policy: .init(allowCatchUp: false, administrators: ["a", "bé", "c"])).serialized()]
        var rng = SplitMix64(seed: 0x9011C7)
        var parsed = 0
        for sample in samples {
            for _ in 0 ..< 2000 {
                var m = sample
                switch rng.next() % 4 {
                case 0:
                    let i = Int(rng.next() % UInt64(m.count))
                    m[i] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                case 1:
                    m[Int(rng.next() % UInt64(m.count))] = UInt8(truncatingIfNeeded: rng.next())
                case 2:
                    m.insert(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(m.count + 1)))
                default:
                    m.remove(at: Int(rng.next() % UInt64(m.count)))
                }
                // Typed throws: anything thrown is a KeyPlaneError; what parses must re-serialize exactly.
                if let message = try? KeyPlaneMessage(parsing: m) {
                    parsed += 1
                    #expect(message.serialized() == m)
                }
            }
        }
        #expect(parsed > 0)   // some mutations (a flipped catch-up bit, a changed letter) are valid policies
    }

    @Test("The KD configuration refuses policies that would not fit one message, naming the JSON path")
    func configurationLimits() throws {
        let fp = try DTLSIdentity(commonName: "x").fingerprint.description
        func config(id: String = "c1", _ policy: String) -> String {
            """
            {"listen": "127.0.0.1:7100", "media_distributors": [],
             "conferences": [{"id": "\(id)", "participants": [{"name": "alice", "fingerprint": "\(fp)"}], "policy": \(policy)}]}
            """
        }
        let names = { (n: Int, length: Int) in "[" + (0 ..< n).map { "\"" + String(format: "%02d", $0) + String(repeating: "a", count: length - 2) + "\"" }.joined(separator: ",") + "]" }
        let good = try KeyDistributorConfig.decode(Data(config(#"{"allow_catch_up": true, "administrators": ["carol", "dave"]}"#).utf8))
        #expect(good.conferences[0].policy == ConferencePolicyConfig(allowCatchUp: true, administrators: ["carol", "dave"]))
        // 32 names of 20 bytes fit even beside a 255-byte conference id.
        #expect(throws: Never.self) {
            try KeyDistributorConfig.decode(Data(config(id: String(repeating: "c", count: 255), #"{"administrators": \#(names(32, 20))}"#).utf8))
        }
        let bad: [(String, String, String)] = [
            (config(#"{"administrators": \#(names(33, 4))}"#), "conferences[0] (c1).policy.administrators:", "at most 32"),
            (config(#"{"administrators": ["carol", ""]}"#), "conferences[0] (c1).policy.administrators[1]:", "1…64 UTF-8 bytes"),
            (config(#"{"administrators": ["\#(String(repeating: "n", count: 65))"]}"#), "policy.administrators[0]:", "has 65"),
            (config(id: String(repeating: "c", count: 255), #"{"administrators": \#(names(32, 64))}"#),
             "policy.administrators:", "over the key plane's 1000"),
            (config(#"{"allow_catch_up": "yes"}"#), "conferences[0].policy.allowCatchUp", "Bool"),
        ]
        for (text, path, reason) in bad {
            do {
                _ = try KeyDistributorConfig.decode(Data(text.utf8))
                Issue.record("accepted: \(path)")
            } catch {
                #expect(error.description.contains(path) && error.description.contains(reason), "\(error.description)")
            }
        }
    }
}
