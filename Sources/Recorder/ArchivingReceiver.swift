import Archive
import Authority
import EKT
import Foundation
import RTPWire
import SRTP

/// Why the recorder refused a datagram. The raw values are the names stored in the archive's
/// `drop_counter` table and printed by `percrec inspect`.
public enum RecorderDropReason: String, Sendable, CaseIterable, Codable {
    /// Neither DTLS, RTP nor RTCP by RFC 7983's first-byte rules.
    case notRTPOrRTCP = "not_rtp_or_rtcp"
    /// Media before the hop keys existed, beyond what the recorder buffers meanwhile.
    case noHopKey = "no_hop_key"
    /// The trailing EKT field could not be read (RFC 8870 §4.1).
    case malformedEKTField = "malformed_ekt_field"
    /// The outer (HBH) AES-GCM tag did not verify.
    case hopAuthenticationFailed = "hop_authentication_failed"
    /// The outer sequence number was seen before or is too old (RFC 3711 §3.3.2).
    case replay = "replay"
    /// Too short, a bad OHB, or a bad RTP header after the outer layer.
    case malformedRTP = "malformed_rtp"
    case rtcpAuthenticationFailed = "rtcp_authentication_failed"
    case rtcpReplay = "rtcp_replay"
    case malformedRTCP = "malformed_rtcp"
    /// A Full EKT field that fails the AES key wrap check or names another SSRC under a known
    /// EKTKey: the field is not stored (the hop-authenticated packet itself is kept).
    case invalidEKTField = "invalid_ekt_field"
    /// A DTLS datagram the key plane refused.
    case dtls = "dtls"
    /// The archive could not take more rows (commits failing, backlog full).
    case archiveBacklog = "archive_backlog"
    /// More SSRCs than the recorder tracks.
    case tooManySources = "too_many_sources"
}

/// Counts of refused datagrams by reason.
public struct RecorderDrops: Sendable, Equatable {
    public private(set) var counts: [RecorderDropReason: Int] = [:]
    public init() {}
    public subscript(_ reason: RecorderDropReason) -> Int { counts[reason] ?? 0 }
    public mutating func count(_ reason: RecorderDropReason) { counts[reason, default: 0] += 1 }
    public mutating func add(_ other: RecorderDrops) { counts.merge(other.counts, uniquingKeysWith: +) }
    public var total: Int { counts.values.reduce(0, +) }
    /// By stored name, for the archive.
    public var byName: [String: Int] { Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }) }
}

/// The recorder's media path, shared by live recording and capture import (so both produce the
/// same rows): RFC 7983 demultiplexing, outer (HBH) open with replay check, OHB restore, and
/// archiving of the inner packet (original header ‖ E2E ciphertext ‖ tag), each new Full EKT
/// field, and hop-opened RTCP. It never holds or uses an end-to-end key.
public final class ArchivingReceiver {
    public let writer: SegmentWriter
    private let outer: DoubleSRTPReceiver
    private let rtcpSession: SRTPSession
    public private(set) var drops = RecorderDrops()
    public private(set) var storedPackets = 0
    public private(set) var storedRTCP = 0
    public private(set) var fullFieldsSeen = 0
    private var unwrappers: [UInt32: SequenceUnwrapper] = [:]
    /// EKTKeys by SPI, only to check Full EKT fields before storing them (never written).
    private var ektKeys: [UInt16: EKTParameterSet] = [:]
    /// Bound on per-SSRC state.
    public var maximumSources = 4096

    /// `outerKey`/`outerSalt`: the hop key the Media Distributor seals with towards us (the
    /// DTLS server-write outer half).
    public init(writer: SegmentWriter, profile: DoubleSRTPProfile = .doubleAeadAes128Gcm, outerKey: SecretBytes,
                outerSalt: SecretBytes, maximumStreams: Int = 4096) throws(SRTPError) {
        self.writer = writer
        let session = try SRTPSession(profile: profile.layerProfile, masterKey: outerKey, masterSalt: outerSalt,
                                      direction: .inbound, maxStreams: maximumStreams)
        outer = DoubleSRTPReceiver(outer: session)
        rtcpSession = session
    }

    public func count(_ reason: RecorderDropReason) { drops.count(reason) }

    /// An EKTKey to check Full EKT fields with. Fields under an SPI not given here are stored
    /// unchecked (the exporter checks them anyway).
    public func addEKTKey(_ message: EKTKeyMessage, cipher: EKTCipher) {
        if let set = try? EKTParameterSet(message: message, cipher: cipher) { ektKeys[message.spi] = set }
    }

    /// Forgets the EKTKeys (conference end). The caller zeroes the `EKTKeyMessage`s it holds.
    public func forgetEKTKeys() { ektKeys.removeAll() }

    /// Archives one SRTP or SRTCP datagram (DTLS is the caller's). `buffer` is overwritten.
    /// `arrival` is Unix time in seconds. Returns whether it was stored.
    @discardableResult
    public func receive(_ buffer: UnsafeMutableRawBufferPointer, arrival: Double) -> Bool {
        switch DatagramKind.classify(UnsafeRawBufferPointer(buffer)) {
        case .rtp: return receiveRTP(buffer, arrival: arrival)
        case .rtcp: return receiveRTCP(buffer, arrival: arrival)
        default:
            drops.count(.notRTPOrRTCP)
            return false
        }
    }

    private func receiveRTP(_ buffer: UnsafeMutableRawBufferPointer, arrival: Double) -> Bool {
        let field: EKTField, fieldLength: Int
        do { (field, fieldLength) = try EKTField.parse(trailerOf: UnsafeRawBufferPointer(buffer)) } catch {
            drops.count(.malformedEKTField)
            return false
        }
        // The field sits after the outer tag, outside its authentication: keep a copy of a Full
        // one before the buffer is rewritten.
        var fullField: (FullEKTField, [UInt8])?
        if case let .full(f) = field { fullField = (f, Array(buffer[(buffer.count - fieldLength)...])) }
        let srtp = UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< (buffer.count - fieldLength)])
        let innerLength: Int
        do { innerLength = try outer.openOuter(srtp).innerLength } catch {
            switch error {
            case .authenticationFailed: drops.count(.hopAuthenticationFailed)
            case .replayed, .tooOld: drops.count(.replay)
            case .tooManyStreams: drops.count(.tooManySources)
            default: drops.count(.malformedRTP)
            }
            return false
        }
        guard innerLength >= 12 else { drops.count(.malformedRTP); return false }
        let b = UnsafeRawBufferPointer(srtp)
        let ssrc = UInt32(b[8]) << 24 | UInt32(b[9]) << 16 | UInt32(b[10]) << 8 | UInt32(b[11])
        let seq = UInt16(b[2]) << 8 | UInt16(b[3])
        let ts = UInt32(b[4]) << 24 | UInt32(b[5]) << 16 | UInt32(b[6]) << 8 | UInt32(b[7])
        if unwrappers[ssrc] == nil, unwrappers.count >= maximumSources { drops.count(.tooManySources); return false }
        let extended = unwrappers[ssrc, default: SequenceUnwrapper()].unwrap(seq)
        if let (f, bytes) = fullField {
            fullFieldsSeen += 1
            if let set = ektKeys[f.spi], !set.verifies(f, ssrc: ssrc) {
                drops.count(.invalidEKTField)
            } else {
                bytes.withUnsafeBytes { writer.noteFullEKTField(ssrc: ssrc, spi: f.spi, epoch: f.epoch, field: $0, sequence: seq, arrival: arrival) }
            }
        }
        let record = PacketRecord(ssrc: ssrc, sequence: seq, extendedSequence: extended, rtpTimestamp: ts,
                                  payloadType: b[1] & 0x7F, marker: b[1] & 0x80 != 0, arrival: arrival)
        guard writer.append(record, data: UnsafeRawBufferPointer(rebasing: b[0 ..< innerLength])) else {
            drops.count(.archiveBacklog)
            return false
        }
        storedPackets += 1
        return true
    }

    private func receiveRTCP(_ buffer: UnsafeMutableRawBufferPointer, arrival: Double) -> Bool {
        let n: Int
        do { n = try rtcpSession.unprotectRTCP(buffer) } catch {
            switch error {
            case .authenticationFailed: drops.count(.rtcpAuthenticationFailed)
            case .replayed, .tooOld: drops.count(.rtcpReplay)
            default: drops.count(.malformedRTCP)
            }
            return false
        }
        guard writer.appendRTCP(UnsafeRawBufferPointer(rebasing: buffer[0 ..< n]), arrival: arrival) else {
            drops.count(.archiveBacklog)
            return false
        }
        storedRTCP += 1
        return true
    }

    /// Seals `message` to `authority` and adds it to the epoch ledger. The plaintext never
    /// reaches the archive.
    public static func ledgerEntry(for message: EKTKeyMessage, cipher: EKTCipher, conference: String,
                                   authority: AuthorityPublicKey, seenAt: Double) throws(AuthorityError) -> ArchivedEpoch {
        let sealed = try SealedEpochKey.seal(message, cipher: cipher, conference: conference, to: authority)
        return ArchivedEpoch(spi: message.spi, keyID: SealedEpochKey.keyID(of: message), cipher: "\(cipher)", ttl: message.ttl,
                             hpkeSuite: SealedEpochKey.suiteName, authorityKeyID: sealed.authorityKeyID,
                             encapsulatedKey: sealed.encapsulatedKey, sealedKey: sealed.ciphertext, seenAt: seenAt)
    }
}
