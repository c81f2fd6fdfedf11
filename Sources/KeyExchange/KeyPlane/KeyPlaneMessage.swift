
// percrec's own messages between an endpoint and the Key Distributor, carried as DTLS
// application data on the endpoint's association (so they are authenticated by the same
// pinned certificates as the EKTKey). RFC 8871 has no roster; percrec adds one (DESIGN §4).
// The format is documented in docs/key-plane.md; every integer is big-endian.
//
//   message   = type(1) version(1) body
//   Join      (type 1, endpoint → KD)  conference<1..255> ssrc_count(1) ssrc(4)*
//   Roster    (type 2, KD → endpoint)  conference<1..255> event_count(2) RosterEvent*
//   RosterAck (type 3, endpoint → KD)  conference<1..255> highest_contiguous_sequence(4)
//   Policy    (type 4, KD → endpoint)  conference<1..255> flags(1) admin_count(1) admin_name<1..255>*
//             flags bit 0: catch-up allowed; the other bits are reserved and must be 0.
//   <a..b> is a vector with a 1-byte length prefix.
//
//   RosterEvent = sequence(4) time_ms(8) kind(1) fingerprint(32) role(1) name<0..255>
//                 ssrc_count(1) ssrc(4)* spi(2)

/// What happened to a conference's membership.
public enum RosterEventKind: UInt8, Sendable, Codable, CustomStringConvertible {
    /// An invited identity completed DTLS and was admitted.
    case join = 1
    /// It left: close_notify, the Media Distributor reported a disconnect, or the KD gave up.
    case leave = 2
    /// It declared (or changed) the SSRCs it sends with.
    case sources = 3

    public var description: String {
        switch self {
        case .join: "join"
        case .leave: "leave"
        case .sources: "sources"
        }
    }
}

/// The part an invited identity plays (from the Key Distributor's configuration).
public enum ParticipantRole: UInt8, Sendable, Codable, CustomStringConvertible, CaseIterable {
    case participant = 0
    /// A receive-only recorder: admitted and keyed, sends no media.
    case recorder = 1

    public var description: String { self == .participant ? "participant" : "recorder" }
}

/// One entry of a conference's roster log. The KD numbers events from 1 per conference; the
/// log is append-only, so an endpoint that holds events 1…n holds the whole history to n.
public struct RosterEvent: Equatable, Sendable, CustomStringConvertible {
    public var sequence: UInt32
    /// Milliseconds since the Unix epoch, by the KD's clock.
    public var timeMillis: UInt64
    public var kind: RosterEventKind
    public var fingerprint: DTLSFingerprint
    public var role: ParticipantRole
    /// The display name from the KD's configuration (at most 255 UTF-8 bytes on the wire).
    public var displayName: String
    /// The SSRCs the identity sends with (empty for a recorder or before it declared them).
    public var ssrcs: [UInt32]
    /// The EKT SPI in force once this event took effect (the rekey it caused, if any).
    public var spi: UInt16

    public init(sequence: UInt32, timeMillis: UInt64, kind: RosterEventKind, fingerprint: DTLSFingerprint,
                role: ParticipantRole, displayName: String, ssrcs: [UInt32], spi: UInt16) {
        self.sequence = sequence
        self.timeMillis = timeMillis
        self.kind = kind
        self.fingerprint = fingerprint
        self.role = role
        self.displayName = displayName
        self.ssrcs = ssrcs
        self.spi = spi
    }

    /// Encoded size: fixed 49 bytes + name + 4 per SSRC.
    var serializedSize: Int { 4 + 8 + 1 + 32 + 1 + 1 + Array(displayName.utf8.prefix(255)).count + 1 + 4 * min(ssrcs.count, 255) + 2 }

    public var description: String {
        "#\(sequence) \(kind) \(displayName) [\(role)] ssrcs \(ssrcs.map { String($0) }.joined(separator: ",")) spi \(spi)"
    }
}

/// Why a key-plane message could not be read.
public enum KeyPlaneError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(field: String, needed: Int, available: Int)
    case unknownType(UInt8)
    case unsupportedVersion(UInt8)
    case invalidField(field: String, reason: String)
    case trailingBytes(Int)

    public var description: String {
        switch self {
        case let .truncated(field, needed, available): "key-plane message truncated in \(field): needs \(needed) bytes, \(available) left"
        case let .unknownType(t): "unknown key-plane message type \(t)"
        case let .unsupportedVersion(v): "unsupported key-plane message version \(v)"
        case let .invalidField(field, reason): "invalid key-plane \(field): \(reason)"
        case let .trailingBytes(n): "\(n) unexpected bytes after the key-plane message"
        }
    }
}

/// A percrec key-plane message (see the file header for the layout).
public enum KeyPlaneMessage: Equatable, Sendable {
    /// Endpoint → KD: join `conference`, sending with these SSRCs (none for a recorder).
    case join(conference: String, ssrcs: [UInt32])
    /// KD → endpoint: roster events of `conference`, in sequence order.
    case roster(conference: String, events: [RosterEvent])
    /// Endpoint → KD: every event up to and including this sequence number arrived.
    case rosterAck(conference: String, through: UInt32)
    /// KD → endpoint: the conference's access policy, which the recorder archives for the
    /// archive authority. Sent on admission and with every keepalive answer (there is no ack).
    case policy(conference: String, policy: ConferencePolicyConfig)

    public static let version: UInt8 = 1
    /// Keep each message inside one DTLS record of one datagram at a 1200-byte link MTU.
    public static let maximumSize = 1000
    /// Policy flags: bit 0 allows catch-up; no other bit is defined.
    static let allowCatchUpFlag: UInt8 = 0x01

    public var typeCode: UInt8 {
        switch self {
        case .join: 1
        case .roster: 2
        case .rosterAck: 3
        case .policy: 4
        }
    }

    public func serialized() -> [UInt8] {
        var out: [UInt8] = [typeCode, Self.version]
        switch self {
        case let .join(conference, ssrcs):
            Self.writeString(conference, to: &out)
            Self.writeSSRCs(ssrcs, to: &out)
        case let .roster(conference, events):
            Self.writeString(conference, to: &out)
            let n = min(events.count, 0xFFFF)
            out.append(UInt8(n >> 8)); out.append(UInt8(truncatingIfNeeded: n))
            for e in events.prefix(n) {
                Self.write(e.sequence, to: &out)
                Self.write(e.timeMillis, to: &out)
                out.append(e.kind.rawValue)
                out += e.fingerprint.digest
                out.append(e.role.rawValue)
                Self.writeString(e.displayName, to: &out)
                Self.writeSSRCs(e.ssrcs, to: &out)
                out.append(UInt8(e.spi >> 8)); out.append(UInt8(truncatingIfNeeded: e.spi))
            }
        case let .rosterAck(conference, through):
            Self.writeString(conference, to: &out)
            Self.write(through, to: &out)
        case let .policy(conference, policy):
            Self.writeString(conference, to: &out)
            out.append(policy.allowCatchUp ? Self.allowCatchUpFlag : 0)
            // The configuration is validated (at most 32 names of 1…64 bytes), so nothing is cut here.
            let n = min(policy.administrators.count, 255)
            out.append(UInt8(n))
            for name in policy.administrators.prefix(n) { Self.writeString(name, to: &out) }
        }
        return out
    }

    public init(parsing bytes: [UInt8]) throws(KeyPlaneError) {
        var r = Reader(bytes: bytes)
        let type = try r.u8("type")
        let version = try r.u8("version")
        guard version == Self.version else { throw .unsupportedVersion(version) }
        switch type {
        case 1:
            self = .join(conference: try r.string("conference", minimum: 1), ssrcs: try r.ssrcs())
        case 2:
            let conference = try r.string("conference", minimum: 1)
            let count = Int(try r.u16("event count"))
            var events: [RosterEvent] = []
            events.reserveCapacity(min(count, 64))
            for _ in 0 ..< count {
                let sequence = try r.u32("event sequence")
                let time = try r.u64("event time")
                let kindByte = try r.u8("event kind")
                guard let kind = RosterEventKind(rawValue: kindByte) else {
                    throw .invalidField(field: "event kind", reason: "unknown value \(kindByte)")
                }
                guard let fingerprint = DTLSFingerprint(sha256Digest: try r.bytes("fingerprint", 32)) else {
                    throw .invalidField(field: "fingerprint", reason: "not 32 bytes")
                }
                let roleByte = try r.u8("role")
                guard let role = ParticipantRole(rawValue: roleByte) else {
                    throw .invalidField(field: "role", reason: "unknown value \(roleByte)")
                }
                let name = try r.string("display name", minimum: 0)
                let ssrcs = try r.ssrcs()
                let spi = try r.u16("spi")
                events.append(RosterEvent(sequence: sequence, timeMillis: time, kind: kind, fingerprint: fingerprint,
                                          role: role, displayName: name, ssrcs: ssrcs, spi: spi))
            }
            self = .roster(conference: conference, events: events)
        case 3:
            self = .rosterAck(conference: try r.string("conference", minimum: 1), through: try r.u32("sequence"))
        case 4:
            let conference = try r.string("conference", minimum: 1)
            let flags = try r.u8("policy flags")
            // Reserved bits set mean a policy this version cannot express: refuse it rather than
            // archive a weaker one.
            guard flags & ~Self.allowCatchUpFlag == 0 else {
                throw .invalidField(field: "policy flags", reason: "reserved bits set in \(flags)")
            }
            let count = Int(try r.u8("administrator count"))
            var administrators: [String] = []
            for _ in 0 ..< count { administrators.append(try r.string("administrator name", minimum: 1)) }
            self = .policy(conference: conference,
                           policy: ConferencePolicyConfig(allowCatchUp: flags & Self.allowCatchUpFlag != 0, administrators: administrators))
        default:
            throw .unknownType(type)
        }
        guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
    }

    /// Splits roster events into messages that each stay under `maximumSize`.
    public static func rosterMessages(conference: String, events: [RosterEvent]) -> [KeyPlaneMessage] {
        let base = 2 + 1 + min(conference.utf8.count, 255) + 2
        var out: [KeyPlaneMessage] = []
        var chunk: [RosterEvent] = []
        var size = base
        for e in events {
            if !chunk.isEmpty && size + e.serializedSize > maximumSize {
                out.append(.roster(conference: conference, events: chunk))
                chunk = []
                size = base
            }
            chunk.append(e)
            size += e.serializedSize
        }
        if !chunk.isEmpty { out.append(.roster(conference: conference, events: chunk)) }
        return out
    }

    // MARK: - Encoding helpers

    private static func write(_ v: UInt32, to out: inout [UInt8]) {
        for s in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
    }
    private static func write(_ v: UInt64, to out: inout [UInt8]) {
        for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) }
    }
    /// UTF-8, cut to 255 bytes at a character boundary.
    private static func writeString(_ s: String, to out: inout [UInt8]) {
        var bytes = Array(s.utf8)
        while bytes.count > 255 { bytes = Array(String(decoding: bytes.prefix(255), as: UTF8.self).dropLast().utf8) }
        out.append(UInt8(bytes.count))
        out += bytes
    }
    private static func writeSSRCs(_ ssrcs: [UInt32], to out: inout [UInt8]) {
        let n = min(ssrcs.count, 255)
        out.append(UInt8(n))
        for ssrc in ssrcs.prefix(n) { write(ssrc, to: &out) }
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0
        var remaining: Int { bytes.count - index }

        mutating func bytes(_ field: String, _ n: Int) throws(KeyPlaneError) -> [UInt8] {
            guard remaining >= n else { throw .truncated(field: field, needed: n, available: remaining) }
            defer { index += n }
            return Array(bytes[index ..< index + n])
        }
        mutating func u8(_ field: String) throws(KeyPlaneError) -> UInt8 { try bytes(field, 1)[0] }
        mutating func u16(_ field: String) throws(KeyPlaneError) -> UInt16 {
            let b = try bytes(field, 2); return UInt16(b[0]) << 8 | UInt16(b[1])
        }
        mutating func u32(_ field: String) throws(KeyPlaneError) -> UInt32 {
            try bytes(field, 4).reduce(0) { $0 << 8 | UInt32($1) }
        }
        mutating func u64(_ field: String) throws(KeyPlaneError) -> UInt64 {
            try bytes(field, 8).reduce(0) { $0 << 8 | UInt64($1) }
        }
        mutating func string(_ field: String, minimum: Int) throws(KeyPlaneError) -> String {
            let n = Int(try u8(field + " length"))
            guard n >= minimum else { throw .invalidField(field: field, reason: "empty") }
            let raw = try bytes(field, n)
            guard let s = String(validating: raw, as: UTF8.self) else {
                throw .invalidField(field: field, reason: "not UTF-8")
            }
            return s
        }
        mutating func ssrcs() throws(KeyPlaneError) -> [UInt32] {
            let n = Int(try u8("ssrc count"))
            var out: [UInt32] = []
            for _ in 0 ..< n { out.append(try u32("ssrc")) }
            return out
        }
    }
}
