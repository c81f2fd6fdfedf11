import Archive
import EKT
import RTPWire
import SRTP

/// One stored packet after its end-to-end layer came off: the original RTP header fields and
/// the plaintext payload.
struct DecryptedPacket {
    var segment: Int64
    /// Extended sequence number within the segment (the archive's unwrapping).
    var extendedSequence: Int64
    var timestamp: UInt32
    var marker: Bool
    /// Arrival at the recorder, Unix seconds.
    var arrival: Double
    var payload: [UInt8]
}

/// What happened to a source's stored packets on the way through decryption.
public struct DecryptionCounters: Sendable, Codable, Equatable {
    public var opened = 0
    /// Failed end-to-end authentication (tampered, or under a key the archive does not hold).
    public var authenticationFailed = 0
    /// The same extended sequence number stored twice.
    public var duplicates = 0
    /// No key: untied to any Full EKT field, or its epoch could not be opened.
    public var noKey = 0
    /// Anything else, by PERCError reason.
    public var other: [String: Int] = [:]
    /// Sequence numbers of the first few packets that failed authentication (for the report).
    public var failedSequences: [UInt16] = []

    public var refused: Int { authenticationFailed + noKey + other.values.reduce(0, +) }

    mutating func add(_ o: DecryptionCounters) {
        opened += o.opened
        authenticationFailed += o.authenticationFailed
        duplicates += o.duplicates
        noKey += o.noKey
        other.merge(o.other, uniquingKeysWith: +)
        failedSequences += o.failedSequences.prefix(max(0, 8 - failedSequences.count))
    }
}

/// Opens the inner (end-to-end) layer of one source's packets in one recording segment, in
/// extended sequence order (RFC 8723 §5.2 with RFC 8870 key delivery).
///
/// Each packet is tied by the archive to the Full EKT field that announced its sender's key;
/// that field goes with the first packet of each tie and the rest open under the source's kept
/// keys. A source that has not authenticated anything yet gets the field with every packet, and
/// packets that fail then wait (at most a replay window's worth) until one opens: the field's
/// ROC belongs to the packet that carried it, so packets stored before it across a sequence
/// wrap open only once the stream is anchored. Nothing is emitted that did not authenticate.
struct SourceDecryptor {
    static let maximumPending = 1000

    let receiver: EKTReceiver
    let fields: [FieldKey: EKTField]
    let ssrc: UInt32
    private(set) var counters = DecryptionCounters()
    private var lastExtended: Int64?
    private var currentTie: FieldKey?
    private var pending: [StoredPacket] = []

    struct FieldKey: Hashable { var spi: UInt16; var epoch: UInt16 }

    init(ssrc: UInt32, receiver: EKTReceiver, fields: [StoredEKTField]) {
        self.ssrc = ssrc
        self.receiver = receiver
        var parsed: [FieldKey: EKTField] = [:]
        for f in fields where f.ssrc == ssrc {
            if let field = try? EKTField.parse(trailerOf: f.field).field { parsed[FieldKey(spi: f.spi, epoch: f.epoch)] = field }
        }
        self.fields = parsed
    }

    /// Opens `packet` (and any packets waiting for the stream's anchor); returns what opened, in order.
    mutating func push(_ packet: StoredPacket) -> [DecryptedPacket] {
        if let last = lastExtended, packet.record.extendedSequence <= last {
            counters.duplicates += 1
            return []
        }
        lastExtended = packet.record.extendedSequence
        let anchored = receiver.stream(for: ssrc) != nil
        let tie = packet.tie.map { FieldKey(spi: $0.spi, epoch: $0.epoch) }
        var field: EKTField = .short
        if let tie, !anchored || tie != currentTie {
            guard let full = fields[tie] else {
                count(.noKey, packet)
                return []
            }
            field = full
        }
        if tie == nil && !anchored {
            count(.noKey, packet)
            return []
        }
        switch open(packet, field: field) {
        case let .opened(p):
            if let tie { currentTie = tie }
            guard !anchored, !pending.isEmpty else { return [p] }
            // Anchored at last: the waiting packets come first, under the source's key.
            var out: [DecryptedPacket] = []
            let waiting = pending
            pending.removeAll()
            for w in waiting {
                if case let .opened(q) = open(w, field: .short) { out.append(q) } else { count(.authentication, w) }
            }
            return out + [p]
        case .authenticationFailed:
            if !anchored && pending.count < Self.maximumPending {
                pending.append(packet)
            } else {
                count(.authentication, packet)
            }
            return []
        case let .refused(reason):
            if reason == "srtp_replayed" || reason == "srtp_too_old" {
                counters.duplicates += 1
            } else if reason == "ekt_unknown_spi" || reason == "no_key_for_source" {
                count(.noKey, packet)
            } else {
                counters.other[reason, default: 0] += 1
            }
            return []
        }
    }

    /// Ends the source: packets still waiting never authenticated.
    mutating func finish() {
        for p in pending { count(.authentication, p) }
        pending.removeAll()
    }

    private enum Outcome { case opened(DecryptedPacket), authenticationFailed, refused(String) }
    private enum Failure { case authentication, noKey }

    private mutating func count(_ failure: Failure, _ packet: StoredPacket) {
        switch failure {
        case .authentication:
            counters.authenticationFailed += 1
            if counters.failedSequences.count < 8 { counters.failedSequences.append(packet.record.sequence) }
        case .noKey:
            counters.noKey += 1
        }
    }

    private mutating func open(_ packet: StoredPacket, field: EKTField) -> Outcome {
        var bytes = packet.data
        let result: Result<Int, PERCError> = bytes.withUnsafeMutableBytes { raw in
            do throws(PERCError) { return .success(try receiver.open(raw, field: field).length) } catch { return .failure(error) }
        }
        switch result {
        case let .success(length):
            guard let rtp = try? RTPPacket(parsing: bytes[..<length]) else { return .refused("rtp_malformed_after_open") }
            counters.opened += 1
            return .opened(DecryptedPacket(segment: packet.segment, extendedSequence: packet.record.extendedSequence,
                                           timestamp: rtp.timestamp, marker: rtp.marker, arrival: packet.record.arrival,
                                           payload: rtp.payload))
        case let .failure(error):
            switch error {
            case .srtp(.authenticationFailed): return .authenticationFailed
            default: return .refused(error.reason)
            }
        }
    }
}
