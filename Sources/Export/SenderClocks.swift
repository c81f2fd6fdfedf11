import Foundation
import RTPWire

/// Maps each source's RTP timestamps to wall-clock time (Unix seconds) using the RTCP sender
/// reports stored in the archive (RFC 3550 §6.4.1): every SR pairs an NTP time with the RTP
/// timestamp of the same instant on the sender's clock, so all streams of one sender share a
/// timeline. Sources without any SR fall back to their arrival times.
struct SenderClocks {
    struct Report { var arrival: Double; var wall: Double; var rtpTimestamp: UInt32 }

    /// SRs per SSRC, by arrival.
    private(set) var reports: [UInt32: [Report]] = [:]
    /// CNAME per SSRC from SDES.
    private(set) var cnames: [UInt32: String] = [:]
    /// RTCP compound packets that did not parse.
    private(set) var unreadable = 0

    /// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
    static let ntpToUnix = 2_208_988_800.0

    init(rtcp: [(segment: Int64, arrival: Double, data: [UInt8])]) {
        for entry in rtcp {
            guard let compound = try? RTCPCompoundPacket(parsing: entry.data) else { unreadable += 1; continue }
            for packet in compound.packets {
                switch packet {
                case let .senderReport(sr):
                    reports[sr.ssrc, default: []].append(Report(arrival: entry.arrival, wall: Self.unixTime(ntp: sr.ntpTimestamp),
                                                                rtpTimestamp: sr.rtpTimestamp))
                case let .sourceDescription(sdes):
                    for chunk in sdes.chunks {
                        if let cname = chunk.items.first(where: { $0.type == RTCPSourceDescription.Item.cname }) {
                            cnames[chunk.ssrc] = String(decoding: cname.value, as: UTF8.self)
                        }
                    }
                default: break
                }
            }
        }
        for key in reports.keys { reports[key]?.sort { $0.arrival < $1.arrival } }
    }

    /// NTP timestamp (RFC 3550 §4) to Unix seconds; NTP era 1 (from 2036) when the seconds wrapped.
    static func unixTime(ntp: UInt64) -> Double {
        var seconds = Double(ntp >> 32)
        if seconds < 2_147_483_648 { seconds += 4_294_967_296 }   // era 1: after 2036-02-07
        return seconds + Double(ntp & 0xFFFF_FFFF) / 4_294_967_296 - ntpToUnix
    }

    /// A clock for `ssrc` at `rate` Hz, or nil if it sent no SR.
    func clock(for ssrc: UInt32, rate: Int) -> MediaClock? {
        guard let list = reports[ssrc], !list.isEmpty else { return nil }
        return MediaClock(reports: list, rate: Double(rate))
    }
}

/// Wall time of one source's RTP timestamps, from the SR nearest in arrival time (so drift
/// between SRs stays small and the 32-bit difference never wraps: RFC 3550 §5.1 arithmetic).
struct MediaClock {
    let reports: [SenderClocks.Report]
    let rate: Double
    /// Seconds added to the sender's clock (when the sender's NTP field is not wall-clock time).
    var correction: Double = 0

    func wallTime(timestamp: UInt32, arrival: Double) -> Double {
        var lo = 0, hi = reports.count - 1
        while lo < hi {   // first report arriving at or after `arrival`
            let mid = (lo + hi) / 2
            if reports[mid].arrival < arrival { lo = mid + 1 } else { hi = mid }
        }
        var nearest = reports[lo]
        if lo > 0, abs(reports[lo - 1].arrival - arrival) < abs(nearest.arrival - arrival) { nearest = reports[lo - 1] }
        return nearest.wall + Double(Int32(bitPattern: timestamp &- nearest.rtpTimestamp)) / rate + correction
    }
}

/// A source's clock as the exporter uses it: SR-based, or anchored on arrival when there is no SR.
struct SourceTimeline {
    enum Basis: String, Codable, Sendable { case senderReports = "rtcp-sr", arrival }

    private var clock: MediaClock?
    private let rate: Double
    private var unwrapper = TimestampUnwrapper()
    private var arrivalAnchor: (arrival: Double, extended: Int64)?

    init(clock: MediaClock?, rate: Int) {
        self.clock = clock
        self.rate = Double(rate)
    }

    var basis: Basis { clock == nil ? .arrival : .senderReports }

    /// Applies a correction to an SR clock that is not wall-clock time (see `Exporter`).
    mutating func correct(by seconds: Double) { clock?.correction = seconds }

    /// Wall time of a packet. The arrival fallback anchors on the first packet and follows the
    /// RTP clock from there (timestamps extended across wraps).
    mutating func wallTime(timestamp: UInt32, arrival: Double) -> Double {
        if let clock { return clock.wallTime(timestamp: timestamp, arrival: arrival) }
        let extended = unwrapper.unwrap(timestamp)
        if arrivalAnchor == nil { arrivalAnchor = (arrival, extended) }
        guard let anchor = arrivalAnchor else { return arrival }
        return anchor.arrival + Double(extended - anchor.extended) / rate
    }

    /// Starts a new stretch (a new recording segment) for the arrival fallback.
    mutating func resetAnchor() {
        arrivalAnchor = nil
        unwrapper = TimestampUnwrapper()
    }
}
