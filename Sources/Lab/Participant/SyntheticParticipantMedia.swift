import Foundation
import Media
import RTPWire

/// A lab participant's media: synthetic voice through libopus (48 kHz, 20 ms frames, DTX, RFC
/// 6464 level in every packet) and synthetic video through libvpx VP8 (a key frame every
/// `keyFrameSeconds` and on request), packetized per RFC 7587 and RFC 7741, paced by the wall
/// clock, plus an RTCP SR + SDES (CNAME, NAME) per source every second.
///
/// Every 5 s of stream time both sources carry the sync marker: a beep starting on an audio
/// frame and a white video frame at the same instant (`SyntheticVoice`, `SyntheticVideo`).
public final class SyntheticParticipantMedia: MediaGenerator {
    public static let opusPayloadType: UInt8 = 111
    public static let vp8PayloadType: UInt8 = 96
    public static let audioLevelExtensionID: UInt8 = 1

    public let audioSSRC: UInt32
    public let videoSSRC: UInt32?
    public let name: String
    /// Every packet handed out, for tests that compare what receivers decrypt.
    public var onSent: ((RTPPacket) -> Void)?

    private var voice: SyntheticVoice
    private let opus: OpusEncoder
    private var opusRTP: OpusPacketizer
    private let audioTimestampBase: UInt32
    private var audioSequence: UInt16
    private var audioFrames = 0
    private var video: SyntheticVideo?
    private let vp8: VP8Encoder?
    private var vp8RTP: VP8Packetizer?
    private var videoSequence: UInt16
    private var videoFrames = 0
    private let videoTimestampBase: UInt32
    private let fps: Int
    private var start: ContinuousClock.Instant?
    private var startWall = Date()
    private var nextRTCP: ContinuousClock.Instant?
    private var sent: [UInt32: (packets: UInt32, octets: UInt32, lastTimestamp: UInt32)] = [:]
    public private(set) var keyFramesForced = 0
    public private(set) var encodeErrors = 0

    /// `seed` makes the talk spurts and the video pattern differ between participants.
    public init(name: String, audioSSRC: UInt32, videoSSRC: UInt32?, seed: UInt64, width: Int = 640, height: Int = 360,
                framesPerSecond: Int = 15, keyFrameSeconds: Int = 3, videoKbps: Int = 400) throws(MediaError) {
        self.name = name
        self.audioSSRC = audioSSRC
        self.videoSSRC = videoSSRC
        voice = try SyntheticVoice(seed: seed)
        opus = try OpusEncoder(.init(channels: 1, bitrate: 32_000, dtx: true))
        var rng = SystemRandomNumberGenerator()
        audioTimestampBase = UInt32.random(in: 0 ... UInt32.max, using: &rng)
        opusRTP = OpusPacketizer(initialTimestamp: audioTimestampBase)
        audioSequence = UInt16.random(in: 0 ... 0x7FFF, using: &rng)
        videoSequence = UInt16.random(in: 0 ... 0x7FFF, using: &rng)
        videoTimestampBase = UInt32.random(in: 0 ... UInt32.max, using: &rng)
        fps = framesPerSecond
        if videoSSRC != nil {
            video = try SyntheticVideo(width: width, height: height, framesPerSecond: framesPerSecond, seed: seed)
            vp8 = try VP8Encoder(.init(width: width, height: height, framesPerSecond: framesPerSecond,
                                       targetBitrateKbps: videoKbps, keyFrameIntervalMax: framesPerSecond * keyFrameSeconds))
            vp8RTP = try VP8Packetizer(maxPayloadSize: 1100, firstPictureID: UInt16.random(in: 0 ... 0x7FFF, using: &rng))
        } else {
            vp8 = nil
        }
    }

    public var nextDue: ContinuousClock.Instant? {
        guard let start else { return .now }
        var due = start + .milliseconds(20 * audioFrames)
        if video != nil { due = min(due, start + .milliseconds(1000 * videoFrames / fps)) }
        if let nextRTCP { due = min(due, nextRTCP) }
        return due
    }

    public func packets(now: ContinuousClock.Instant) -> [RTPPacket] {
        if start == nil { start = now; startWall = Date(); nextRTCP = now + .seconds(1) }
        guard let start else { return [] }
        var out: [RTPPacket] = []
        // Audio: every 20 ms frame that is due (catching up after a stall keeps time aligned).
        while start + .milliseconds(20 * audioFrames) <= now {
            let frame = voice.next()
            audioFrames += 1
            let level = AudioLevel.measure(frame.samples)
            guard let encoded = try? opus.encode(frame.samples) else { encodeErrors += 1; continue }
            guard let packet = try? opusRTP.packetize(encoded) else { continue }   // DTX: nothing to send
            guard let ext = try? RTPHeaderExtension.oneByte([level.element(id: Self.audioLevelExtensionID)]),
                  let rtp = try? RTPPacket(marker: packet.marker, payloadType: Self.opusPayloadType, sequenceNumber: audioSequence,
                                           timestamp: packet.timestamp, ssrc: audioSSRC, headerExtension: ext,
                                           payload: packet.payload) else { continue }
            audioSequence &+= 1
            record(rtp)
            out.append(rtp)
        }
        // Video: every frame that is due.
        if let videoSSRC, let vp8 {
            while start + .milliseconds(1000 * videoFrames / fps) <= now, video != nil {
                guard let image = video?.nextFrame() else { break }
                let index = videoFrames
                videoFrames += 1
                guard let frames = try? vp8.encode(image, pts: Int64(index)) else { encodeErrors += 1; continue }
                let timestamp = videoTimestampBase &+ UInt32(truncatingIfNeeded: Int64(index) * 90_000 / Int64(fps))
                for encoded in frames {
                    guard let packets = try? vp8RTP?.packetize(encoded) else { continue }
                    for p in packets {
                        guard let rtp = try? RTPPacket(marker: p.marker, payloadType: Self.vp8PayloadType, sequenceNumber: videoSequence,
                                                       timestamp: timestamp, ssrc: videoSSRC, payload: p.payload) else { continue }
                        videoSequence &+= 1
                        record(rtp)
                        out.append(rtp)
                    }
                }
            }
        }
        return out
    }

    public func rtcp(now: ContinuousClock.Instant) -> [[UInt8]] {
        guard let due = nextRTCP, now >= due, let start else { return [] }
        nextRTCP = due + .seconds(1)
        // NTP time of `now` and the RTP timestamp of the same instant, per source (RFC 3550 §6.4.1).
        let elapsed = now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let wall = startWall.timeIntervalSince1970 + seconds + 2_208_988_800
        let ntp = UInt64(wall) << 32 | UInt64((wall - floor(wall)) * 4_294_967_296)
        var compounds: [[UInt8]] = []
        var sources: [(UInt32, Int, UInt32)] = [(audioSSRC, 48_000, audioTimestampBase)]
        if let videoSSRC { sources.append((videoSSRC, 90_000, videoTimestampBase)) }
        for (ssrc, rate, base) in sources {
            let stats = sent[ssrc] ?? (0, 0, base)
            // Both streams start at `start` with their base timestamp, so this is the same instant.
            let rtpNow = base &+ UInt32(truncatingIfNeeded: Int64(seconds * Double(rate)))
            let sr = RTCPSenderReport(ssrc: ssrc, ntpTimestamp: ntp, rtpTimestamp: rtpNow, packetCount: stats.packets,
                                      octetCount: stats.octets)
            let sdes = RTCPSourceDescription(chunks: [.init(ssrc: ssrc, items: [.init(type: 1, text: "\(name)@percrec-lab"),
                                                                                 .init(type: 2, text: name)])])
            compounds.append(RTCPCompoundPacket(packets: [.senderReport(sr), .sourceDescription(sdes)]).serialized())
        }
        return compounds
    }

    public func keyFrameRequested(ssrc: UInt32) {
        guard ssrc == videoSSRC, let vp8 else { return }
        vp8.forceKeyFrame()
        keyFramesForced += 1
    }

    public func rekeyed() {}

    private func record(_ rtp: RTPPacket) {
        var s = sent[rtp.ssrc] ?? (0, 0, rtp.timestamp)
        s.packets &+= 1
        s.octets &+= UInt32(truncatingIfNeeded: rtp.payload.count)
        s.lastTimestamp = rtp.timestamp
        sent[rtp.ssrc] = s
        onSent?(rtp)
    }
}
