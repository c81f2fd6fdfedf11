import SRTP

/// Why a PERC endpoint refused a packet or could not send one.
///
/// SRTP failures (outer or inner layer) keep their own cases; EKT-specific refusals are named
/// here so that receivers can count each reason (`DropCounters`).
public enum PERCError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An SRTP layer refused the packet (authentication, replay, malformed header…).
    case srtp(SRTPError)
    /// The EKT field or an EKT structure was malformed, or the key wrap failed.
    case ekt(EKTError)
    /// A Full EKT field names an SPI no EKTKey was received for (RFC 8870 §4.3.2 step 2).
    case unknownSPI(UInt16)
    /// The EKTKey for this SPI is past its `ekt_ttl`.
    case ektKeyExpired(spi: UInt16)
    /// The EKTPlaintext's SSRC differs from the packet's (RFC 8870 §4.3.2 step 5).
    case ektSSRCMismatch(fieldSSRC: UInt32, packetSSRC: UInt32)
    /// A Full EKT field whose epoch is not above the highest already accepted for its SPI and SSRC.
    case staleEpoch(ssrc: UInt32, spi: UInt16, epoch: UInt16, highest: UInt16)
    /// The wrapped master key is not the inner transform's key length.
    case ektKeyLength(expected: Int, got: Int)
    /// No E2E key is known for this SSRC yet (only Short EKT fields seen).
    case noKeyForSource(UInt32)
    /// Per-source state is bounded; this SSRC would exceed the bound.
    case tooManySources(limit: Int)

    /// A stable short name for counting and logs.
    public var reason: String {
        switch self {
        case let .srtp(e):
            switch e {
            case .authenticationFailed: return "srtp_auth_failed"
            case .replayed: return "srtp_replayed"
            case .tooOld: return "srtp_too_old"
            case .malformed, .packetTooShort: return "srtp_malformed"
            case .invalidOHB: return "ohb_invalid"
            case .unknownSSRC: return "srtp_unknown_ssrc"
            case .tooManyStreams: return "srtp_too_many_streams"
            case .invalidKeyLength, .keyLifetimeExhausted, .cryptoLibrary: return "srtp_internal"
            }
        case let .ekt(e): return e == .unwrapFailed ? "ekt_unwrap_failed" : "ekt_malformed"
        case .unknownSPI: return "ekt_unknown_spi"
        case .ektKeyExpired: return "ekt_key_expired"
        case .ektSSRCMismatch: return "ekt_ssrc_mismatch"
        case .staleEpoch: return "ekt_stale_epoch"
        case .ektKeyLength: return "ekt_key_length"
        case .noKeyForSource: return "no_key_for_source"
        case .tooManySources: return "too_many_sources"
        }
    }

    public var description: String {
        switch self {
        case let .srtp(e): return e.description
        case let .ekt(e): return "EKT: \(e)"
        case let .unknownSPI(spi): return "EKT field names unknown SPI \(spi)"
        case let .ektKeyExpired(spi): return "EKTKey for SPI \(spi) has expired"
        case let .ektSSRCMismatch(f, p): return "EKT field is for SSRC \(String(f, radix: 16)) but came on SSRC \(String(p, radix: 16))"
        case let .staleEpoch(ssrc, spi, epoch, highest):
            return "EKT epoch \(epoch) for SSRC \(String(ssrc, radix: 16)) under SPI \(spi) is not above \(highest)"
        case let .ektKeyLength(expected, got): return "EKT master key must be \(expected) bytes, got \(got)"
        case let .noKeyForSource(ssrc): return "no E2E key yet for SSRC \(String(ssrc, radix: 16))"
        case let .tooManySources(limit): return "too many sources (limit \(limit))"
        }
    }
}

/// Counts refused packets by reason (`PERCError.reason`).
public struct DropCounters: Sendable, Equatable, CustomStringConvertible {
    public private(set) var byReason: [String: Int] = [:]
    public init() {}
    public mutating func count(_ error: PERCError) { byReason[error.reason, default: 0] += 1 }
    public mutating func count(reason: String) { byReason[reason, default: 0] += 1 }
    public subscript(reason: String) -> Int { byReason[reason] ?? 0 }
    public var total: Int { byReason.values.reduce(0, +) }
    public var description: String {
        byReason.isEmpty ? "none" : byReason.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}
