@testable import Export
import RTPWire
import Testing

@Suite("Export: sender clocks from RTCP SR (rtp-payloads.md §4.5, §5)")
struct SenderClocksTests {
    /// 0xE9A1B2C3.80000000 is 3919688387.5 s after 1900 (rtp-payloads.md §5).
    static let audioNTP: UInt64 = 0xE9A1_B2C3_8000_0000
    static let videoNTP: UInt64 = 0xE9A1_B2C4_0000_0000
    static let audioWall = 3_919_688_387.5 - 2_208_988_800

    @Test("NTP to Unix time, and NTP era 1 (after 2036-02-07, the seconds field wrapped)")
    func ntpToUnix() {
        #expect(SenderClocks.unixTime(ntp: Self.audioNTP) == Self.audioWall)
        #expect(SenderClocks.unixTime(ntp: Self.videoNTP) == 3_919_688_388.0 - 2_208_988_800)
        // Era 1: seconds 1 means 2^32 + 1 s after 1900.
        #expect(SenderClocks.unixTime(ntp: 0x0000_0001_4000_0000) == 4_294_967_297.25 - 2_208_988_800)
    }

    @Test("the worked lip-sync example: first audio sample at …387.7, first video frame at …387.9")
    func workedExample() throws {
        let audioSR = RTCPSenderReport(ssrc: 0xA, ntpTimestamp: Self.audioNTP, rtpTimestamp: 1_000_000, packetCount: 1, octetCount: 1)
        let videoSR = RTCPSenderReport(ssrc: 0xB, ntpTimestamp: Self.videoNTP, rtpTimestamp: 5_000_000, packetCount: 1, octetCount: 1)
        let sdes = RTCPSourceDescription(chunks: [.init(ssrc: 0xA, items: [.init(type: RTCPSourceDescription.Item.cname, text: "p@x")])])
        let rtcp: [(segment: Int64, arrival: Double, data: [UInt8])] = [
            (1, Self.audioWall + 0.05, RTCPCompoundPacket(packets: [.senderReport(audioSR), .sourceDescription(sdes)]).serialized()),
            (1, Self.audioWall + 0.55, RTCPCompoundPacket(packets: [.senderReport(videoSR)]).serialized()),
            (1, Self.audioWall + 0.60, [0x80, 0xC8, 0x00]),   // truncated: not readable
        ]
        let clocks = SenderClocks(rtcp: rtcp)
        #expect(clocks.unreadable == 1)
        #expect(clocks.cnames == [0xA: "p@x"])
        let audio = try #require(clocks.clock(for: 0xA, rate: 48_000))
        let video = try #require(clocks.clock(for: 0xB, rate: 90_000))
        #expect(clocks.clock(for: 0xC, rate: 48_000) == nil)
        let firstAudio = audio.wallTime(timestamp: 1_009_600, arrival: Self.audioWall + 0.2)
        let firstVideo = video.wallTime(timestamp: 4_991_000, arrival: Self.audioWall + 0.4)
        #expect(abs(firstAudio - (3_919_688_387.7 - 2_208_988_800)) < 1e-6)
        #expect(abs(firstVideo - (3_919_688_387.9 - 2_208_988_800)) < 1e-6)
        #expect(abs((firstVideo - firstAudio) - 0.2) < 1e-6)
    }

    @Test("an RTP timestamp that wrapped since the SR: 0xFFFFFF00 → 0x00000100 is +512 ticks; before the SR is negative")
    func timestampWrap() {
        let report = SenderClocks.Report(arrival: 100, wall: 1_000, rtpTimestamp: 0xFFFF_FF00)
        let clock = MediaClock(reports: [report], rate: 48_000)
        #expect(clock.wallTime(timestamp: 0x0000_0100, arrival: 100) == 1_000 + 512.0 / 48_000)
        #expect(clock.wallTime(timestamp: 0xFFFF_FE00, arrival: 100) == 1_000 - 256.0 / 48_000)
        let video = MediaClock(reports: [report], rate: 90_000)
        #expect(video.wallTime(timestamp: 0x0000_0100, arrival: 100) == 1_000 + 512.0 / 90_000)
    }

    @Test("the SR nearest in arrival time is used (a sender clock that drifted between reports)")
    func nearestReport() {
        // Second report: the sender's RTP clock ran 48 ticks (1 ms) fast over 10 s.
        let reports = [SenderClocks.Report(arrival: 10, wall: 1_000, rtpTimestamp: 0),
                       SenderClocks.Report(arrival: 20, wall: 1_010, rtpTimestamp: 480_048)]
        let clock = MediaClock(reports: reports, rate: 48_000)
        #expect(clock.wallTime(timestamp: 48_000, arrival: 11) == 1_001)
        #expect(abs(clock.wallTime(timestamp: 480_048 + 48_000, arrival: 21) - 1_011) < 1e-9)
        #expect(abs(clock.wallTime(timestamp: 480_048, arrival: 16) - 1_010) < 1e-9)
    }

    @Test("the arrival fallback anchors on the first packet and follows the RTP clock across a wrap")
    func arrivalFallback() {
        var timeline = SourceTimeline(clock: nil, rate: 48_000)
        #expect(timeline.basis == .arrival)
        #expect(timeline.wallTime(timestamp: 0xFFFF_FC40, arrival: 500) == 500)                  // 960 before the wrap
        #expect(timeline.wallTime(timestamp: 0x0000_0000, arrival: 500.9) == 500 + 960.0 / 48_000) // arrival ignored
        #expect(timeline.wallTime(timestamp: 0x0000_03C0, arrival: 499) == 500 + 1_920.0 / 48_000)
        timeline.resetAnchor()
        #expect(timeline.wallTime(timestamp: 0x0000_03C0, arrival: 700) == 700)
    }
}
