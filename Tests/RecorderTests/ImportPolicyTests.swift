import Archive
import Authority
import Capture
import Foundation
import KeyExchange
import Recorder
import Testing
import TestSupport

@Suite("percrec import: the keys file's policy")
struct ImportPolicyTests {
    /// A keys file for `fixture` with `extra` members appended to the top-level object.
    static func keysJSON(_ fixture: HopFixture, _ extra: String = "") -> String {
        func hexText(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        return """
        {"conference": "c1",
         "hbh": {"outer_key": "\(hexText(fixture.recorderHopKey.unsafeCopiedBytes))", "outer_salt": "\(hexText(fixture.recorderHopSalt.unsafeCopiedBytes))"},
         "ekt": [{"spi": \(fixture.ektKey.spi), "key": "\(hexText(fixture.ektKey.ektKeyValue.unsafeCopiedBytes))",
                  "srtp_master_salt": "\(hexText(fixture.ektKey.srtpMasterSalt.unsafeCopiedBytes))"}]\(extra)}
        """
    }

    /// A pcap of `count` datagrams the MD sent the recorder, the first at `start`.
    static func capture(_ fixture: inout HopFixture, count: Int, start: Int64, in directory: String) throws -> String {
        let path = directory + "/in.pcap"
        let writer = try PcapWriter(path: path)
        for i in 0 ..< count {
            let (datagram, _) = try fixture.next()
            try writer.write(CapturedDatagram(timestamp: CaptureTimestamp(seconds: start + Int64(i / 50), nanoseconds: UInt32(i % 50) * 20_000_000),
                                              sourceAddress: "127.0.0.1", sourcePort: 7200, destinationAddress: "127.0.0.1",
                                              destinationPort: 40000, payload: datagram))
        }
        try writer.close()
        return path
    }

    @Test("a keys file with a policy puts it in conference_policy once, dated at the capture's first datagram")
    func importsPolicy() async throws {
        let directory = makeTemporaryDirectory("import-policy")
        var fixture = try HopFixture()
        let pcap = try Self.capture(&fixture, count: 120, start: 1_700_000_100, in: directory)
        let keys = try ImportKeys(json: Data(Self.keysJSON(fixture, #", "policy": {"allow_catch_up": true, "administrators": ["carol", "dave"]}"#).utf8))
        #expect(keys.policy == ConferencePolicyConfig(allowCatchUp: true, administrators: ["carol", "dave"]))
        let authority = AuthorityPrivateKey()
        let archive = try Archive(path: directory + "/a.sqlite")
        let summary = try CaptureImporter.run(capture: pcap, keys: keys, authority: authority.publicKey, archive: archive)
        #expect(summary.storedPackets == 120 && summary.drops.total == 0)
        let policy = try #require(try archive.conferencePolicy(conference: "c1"))
        #expect(policy == ArchivedPolicy(allowCatchUp: true, administrators: ["carol", "dave"], receivedAt: 1_700_000_100))
        let rows = try await runTool("sqlite3", [directory + "/a.sqlite", "SELECT recording_segment_id, allow_catch_up, administrators FROM conference_policy"])
        #expect(rows.stdout == "\(summary.segmentID)|1|[\"carol\",\"dave\"]\n")
        #expect(try archive.inspect(conference: "c1").policy == ConferenceReport.Policy(policy))

        // Without a policy the import records none, and inspect says the defaults apply.
        let plain = try ImportKeys(json: Data(Self.keysJSON(fixture).utf8))
        #expect(plain.policy == nil)
        let other = try Archive(path: directory + "/b.sqlite")
        _ = try CaptureImporter.run(capture: pcap, keys: plain, authority: authority.publicKey, archive: other)
        #expect(try other.conferencePolicy(conference: "c1") == nil)
        #expect(try other.inspect(conference: "c1").policy.announced == false)
    }

    @Test("a malformed policy in the keys file is refused with its JSON path")
    func refusesBadPolicy() throws {
        let fixture = try HopFixture()
        let admins33 = "[" + (0 ..< 33).map { "\"a\($0)\"" }.joined(separator: ",") + "]"
        let cases: [(String, String)] = [
            (#", "policy": true"#, "$.policy: an object is required"),
            (#", "policy": {"allow_catch_up": 1}"#, "$.policy.allow_catch_up: true or false is required"),
            (#", "policy": {"allow_catch_up": "yes"}"#, "$.policy.allow_catch_up"),
            (#", "policy": {"administrators": "carol"}"#, "$.policy.administrators: an array"),
            (#", "policy": {"administrators": ["carol", 7]}"#, "$.policy.administrators[1]: a string is required"),
            (#", "policy": {"administrators": ["carol", ""]}"#, "$.policy.administrators[1]: a name must be 1…64 UTF-8 bytes"),
            (#", "policy": {"administrators": \#(admins33)}"#, "$.policy.administrators: 33 names, at most 32"),
        ]
        for (extra, needle) in cases {
            do {
                _ = try ImportKeys(json: Data(Self.keysJSON(fixture, extra).utf8))
                Issue.record("accepted: \(extra)")
            } catch {
                #expect(error.description.contains(needle), "\(error.description) should contain \(needle)")
            }
        }
        // Both keys are optional.
        #expect(try ImportKeys(json: Data(Self.keysJSON(fixture, #", "policy": {}"#).utf8)).policy == ConferencePolicyConfig())
        #expect(try ImportKeys(json: Data(Self.keysJSON(fixture, #", "policy": {"allow_catch_up": false}"#).utf8)).policy
            == ConferencePolicyConfig(allowCatchUp: false, administrators: []))
    }
}
