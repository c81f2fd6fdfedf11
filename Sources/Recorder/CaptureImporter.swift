import Archive
import Authority
import Capture
import EKT
import Foundation
import KeyExchange
import RTPWire
import SRTP

/// The keys file of `percrec import` (hex strings; `roster` and `policy` optional):
///
/// ```json
/// {"conference": "c1",
///  "hbh": {"profile": "DOUBLE_AEAD_AES_128_GCM_AEAD_AES_128_GCM", "outer_key": "…16 bytes…", "outer_salt": "…12 bytes…"},
///  "ekt": [{"spi": 1, "cipher": "AESKW_128", "key": "…16 bytes…", "srtp_master_salt": "…12 bytes…"}],
///  "roster": [{"participant": "alice", "ssrcs": [305419896]}],
///  "policy": {"allow_catch_up": false, "administrators": ["carol"]}}
/// ```
///
/// `hbh` is the hop the Media Distributor sealed towards the recorder with. An `ekt` entry may
/// also carry `"ttl"` (seconds; 0 when absent). `policy` is the conference policy as the KD
/// would have announced it (a capture cannot show it: it travels inside DTLS); both of its
/// keys are optional (false, none) and it obeys the KD configuration's limits.
public struct ImportKeys: Sendable {
    public struct Hop: Sendable {
        public var profile: DoubleSRTPProfile, outerKey: SecretBytes, outerSalt: SecretBytes
        public init(profile: DoubleSRTPProfile, outerKey: SecretBytes, outerSalt: SecretBytes) {
            self.profile = profile
            self.outerKey = outerKey
            self.outerSalt = outerSalt
        }
    }
    public struct Epoch: Sendable {
        public var cipher: EKTCipher, message: EKTKeyMessage
        public init(cipher: EKTCipher, message: EKTKeyMessage) {
            self.cipher = cipher
            self.message = message
        }
    }
    public struct RosterEntry: Sendable, Equatable { public var participant: String, ssrcs: [UInt32] }

    public var conference: String
    public var hop: Hop
    public var epochs: [Epoch]
    public var roster: [RosterEntry]
    /// Recorded once, as the segment's policy announcement; nil: none.
    public var policy: ConferencePolicyConfig?

    public init(conference: String, hop: Hop, epochs: [Epoch], roster: [RosterEntry], policy: ConferencePolicyConfig? = nil) {
        self.conference = conference
        self.hop = hop
        self.epochs = epochs
        self.roster = roster
        self.policy = policy
    }

    /// Parses the JSON, saying which field is wrong.
    public init(json: Data) throws(ImportError) {
        let root: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: json) as? [String: Any] else {
                throw ImportError.keys(path: "$", reason: "the top level must be an object")
            }
            root = object
        } catch let e as ImportError { throw e } catch {
            throw .keys(path: "$", reason: "not JSON: \(error.localizedDescription)")
        }
        guard let conference = root["conference"] as? String, !conference.isEmpty else {
            throw .keys(path: "$.conference", reason: "a non-empty string is required")
        }
        guard let hbh = root["hbh"] as? [String: Any] else { throw .keys(path: "$.hbh", reason: "an object is required") }
        let profileName = hbh["profile"] as? String ?? DoubleSRTPProfile.doubleAeadAes128Gcm.name
        guard let profile = DoubleSRTPProfile.allCases.first(where: { $0.name == profileName }) else {
            throw .keys(path: "$.hbh.profile", reason: "unknown profile \"\(profileName)\" (\(DoubleSRTPProfile.allCases.map(\.name).joined(separator: " or ")))")
        }
        let layer = profile.layerProfile
        let outerKey = try Self.hexField(hbh, "outer_key", "$.hbh", length: layer.masterKeyLength)
        let outerSalt = try Self.hexField(hbh, "outer_salt", "$.hbh", length: layer.masterSaltLength)
        guard let ekt = root["ekt"] as? [[String: Any]], !ekt.isEmpty else {
            throw .keys(path: "$.ekt", reason: "a non-empty array of EKT keys is required")
        }
        var epochs: [Epoch] = []
        for (i, entry) in ekt.enumerated() {
            let path = "$.ekt[\(i)]"
            guard let spiValue = entry["spi"] as? Int, (0 ... 0x7FFF).contains(spiValue) else {
                throw .keys(path: path + ".spi", reason: "an integer 0…32767 is required")
            }
            let cipherName = (entry["cipher"] as? String ?? "AESKW_128").uppercased().replacingOccurrences(of: "_", with: "")
            guard let cipher = EKTCipher.allCases.first(where: { $0.description == cipherName }) else {
                throw .keys(path: path + ".cipher", reason: "AESKW_128 or AESKW_256 expected")
            }
            let key = try Self.hexField(entry, "key", path, length: cipher.keyLength)
            let salt = try Self.hexField(entry, "srtp_master_salt", path, length: layer.masterSaltLength)
            let ttl = entry["ttl"] as? Int ?? 0
            do {
                epochs.append(Epoch(cipher: cipher, message: try EKTKeyMessage(ektKeyValue: key, srtpMasterSalt: salt,
                                                                               spi: UInt16(spiValue), ttl: UInt32(clamping: ttl))))
            } catch {
                throw .keys(path: path, reason: "\(error)")
            }
        }
        var roster: [RosterEntry] = []
        if let r = root["roster"] {
            guard let list = r as? [[String: Any]] else { throw .keys(path: "$.roster", reason: "an array is required") }
            for (i, entry) in list.enumerated() {
                guard let name = entry["participant"] as? String, !name.isEmpty else {
                    throw .keys(path: "$.roster[\(i)].participant", reason: "a non-empty string is required")
                }
                guard let ssrcs = entry["ssrcs"] as? [Int], ssrcs.allSatisfy({ (0 ... Int(UInt32.max)).contains($0) }) else {
                    throw .keys(path: "$.roster[\(i)].ssrcs", reason: "an array of 32-bit SSRCs is required")
                }
                roster.append(RosterEntry(participant: name, ssrcs: ssrcs.map { UInt32($0) }))
            }
        }
        var policy: ConferencePolicyConfig?
        if let p = root["policy"] {
            guard let object = p as? [String: Any] else { throw .keys(path: "$.policy", reason: "an object is required") }
            policy = try Self.policy(object, conference: conference)
        }
        self.init(conference: conference, hop: Hop(profile: profile, outerKey: outerKey, outerSalt: outerSalt),
                  epochs: epochs, roster: roster, policy: policy)
    }

    private static func policy(_ object: [String: Any], conference: String) throws(ImportError) -> ConferencePolicyConfig {
        var policy = ConferencePolicyConfig()
        if let value = object["allow_catch_up"] {
            // `as? Bool` also takes 0 and 1: only a JSON boolean counts.
            guard let flag = value as? Bool, Self.isBoolean(value) else {
                throw .keys(path: "$.policy.allow_catch_up", reason: "true or false is required")
            }
            policy.allowCatchUp = flag
        }
        if let value = object["administrators"] {
            guard let names = value as? [Any] else { throw .keys(path: "$.policy.administrators", reason: "an array of names is required") }
            for (i, item) in names.enumerated() {
                guard let name = item as? String else {
                    throw .keys(path: "$.policy.administrators[\(i)]", reason: "a string is required")
                }
                policy.administrators.append(name)
            }
        }
        if let problem = policy.problem(conference: conference) {
            throw .keys(path: "$.policy.\(problem.key)", reason: problem.reason)
        }
        return policy
    }

    /// JSON `true`/`false` come back as boolean NSNumbers (type code "c"); 1 and 0 as integer ones.
    private static func isBoolean(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return value is Bool }
        return String(cString: number.objCType) == "c"
    }

    private static func hexField(_ object: [String: Any], _ name: String, _ path: String, length: Int) throws(ImportError) -> SecretBytes {
        guard let text = object[name] as? String, let bytes = SecretBytes(hex: text) else {
            throw .keys(path: "\(path).\(name)", reason: "a hex string is required")
        }
        guard bytes.count == length else { throw .keys(path: "\(path).\(name)", reason: "\(bytes.count) bytes, \(length) expected") }
        return bytes
    }

    /// Zeroes every key.
    public func wipe() {
        hop.outerKey.wipe()
        hop.outerSalt.wipe()
        for e in epochs { e.message.ektKeyValue.wipe(); e.message.srtpMasterSalt.wipe() }
    }
}

public enum ImportError: Error, CustomStringConvertible {
    case keys(path: String, reason: String)
    case capture(CaptureError)
    case archive(ArchiveError)
    case sealing(AuthorityError)

    public var description: String {
        switch self {
        case let .keys(path, reason): "keys file, \(path): \(reason)"
        case let .capture(e): "capture: \(e)"
        case let .archive(e): "\(e)"
        case let .sealing(e): "\(e)"
        }
    }
}

/// `percrec import`: ingests a capture of what the Media Distributor sent to a recorder and
/// writes the same rows a live recording would, as a new segment (origin "import").
///
/// Each EKT key from the keys file is sealed to the authority first, exactly as live. Every
/// UDP datagram (or those to `port`) goes through `ArchivingReceiver`: DTLS is skipped
/// (counted), and a datagram that is not valid SRTP/SRTCP under the hop key is counted by
/// reason, never fatal.
public enum CaptureImporter {
    public struct Summary: Sendable {
        public var segmentID: Int64
        public var udpDatagrams = 0
        public var selected = 0
        public var dtlsSkipped = 0
        public var storedPackets = 0
        public var storedRTCP = 0
        public var drops = RecorderDrops()
        public var captureSkipped: [SkipReason: Int] = [:]
        public var framesRead = 0
        public var firstTimestamp: Double?
        public var lastTimestamp: Double?
    }

    public static func run(capture path: String, keys: ImportKeys, authority: AuthorityPublicKey, archive: Archive,
                           port: UInt16? = nil, progress: ((Summary) -> Void)? = nil) throws(ImportError) -> Summary {
        let reader: CaptureReader
        do { reader = try CaptureReader(path: path) } catch { throw .capture(error) }
        defer { reader.close() }
        var options = SegmentWriter.Options()
        options.commitInterval = .seconds(1)
        let writer: SegmentWriter
        do {
            writer = try SegmentWriter(archive: archive, conference: keys.conference, origin: .imported(capture: path),
                                       authorityKeyID: authority.keyID, startedAt: Date().timeIntervalSince1970, options: options)
        } catch { throw .archive(error) }
        let receiver: ArchivingReceiver
        do {
            receiver = try ArchivingReceiver(writer: writer, profile: keys.hop.profile, outerKey: keys.hop.outerKey,
                                             outerSalt: keys.hop.outerSalt)
        } catch { throw .keys(path: "$.hbh", reason: "\(error)") }
        for e in keys.epochs { receiver.addEKTKey(e.message, cipher: e.cipher) }
        defer { receiver.forgetEKTKeys() }
        var summary = Summary(segmentID: writer.segmentID)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var sealedEpochs = false
        do {
            while let d = try reader.next() {
                summary.udpDatagrams += 1
                if let port, d.destinationPort != port { continue }
                summary.selected += 1
                let t = d.timestamp.timeInterval
                if summary.firstTimestamp == nil { summary.firstTimestamp = t }
                summary.lastTimestamp = t
                if !sealedEpochs {
                    // The ledger and roster are dated at the capture's first datagram.
                    sealedEpochs = true
                    for e in keys.epochs {
                        do {
                            writer.record(epoch: try ArchivingReceiver.ledgerEntry(for: e.message, cipher: e.cipher, conference: keys.conference,
                                                                                    authority: authority, seenAt: t))
                        } catch { throw ImportError.sealing(error) }
                    }
                    writer.record(roster: keys.roster.enumerated().map { i, r in
                        ArchivedRosterEvent(sequence: UInt32(i + 1), kind: "join", fingerprint: "import:\(r.participant)",
                                            name: r.participant, role: "participant", ssrcs: r.ssrcs, receivedAt: t)
                    })
                    if let p = keys.policy {
                        writer.record(policy: ArchivedPolicy(allowCatchUp: p.allowCatchUp, administrators: p.administrators, receivedAt: t))
                    }
                }
                if DatagramKind.classify(d.payload) == .dtls { summary.dtlsSkipped += 1; continue }
                guard d.payload.count <= buffer.count else { receiver.count(.malformedRTP); continue }
                buffer.withUnsafeMutableBytes { raw in
                    let view = UnsafeMutableRawBufferPointer(rebasing: raw[0 ..< d.payload.count])
                    d.payload.withUnsafeBytes { view.copyMemory(from: $0) }
                    receiver.receive(view, arrival: t)
                }
                if summary.selected % 50_000 == 0 {
                    writer.setDropCounters(receiver.drops.byName)
                    try writer.commit()
                    summary.storedPackets = receiver.storedPackets
                    progress?(summary)
                }
            }
            writer.setDropCounters(receiver.drops.byName)
            try writer.finish(reason: "import complete", at: summary.lastTimestamp ?? Date().timeIntervalSince1970)
        } catch let e as ImportError {
            throw e
        } catch let e as CaptureError {
            try? writer.finish(reason: "import failed: \(e)")
            throw .capture(e)
        } catch let e as ArchiveError {
            throw .archive(e)
        } catch {
            throw .archive(.database(operation: "import", reason: "\(error)"))
        }
        summary.storedPackets = receiver.storedPackets
        summary.storedRTCP = receiver.storedRTCP
        summary.drops = receiver.drops
        summary.captureSkipped = reader.skipped
        summary.framesRead = reader.framesRead
        return summary
    }
}
