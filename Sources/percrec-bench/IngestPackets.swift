// The ingest benchmark's load: PERC datagrams as a Media Distributor sends them to a recorder.
//
// Six senders (four Opus-sized audio streams at PT 111, two VP8-sized video streams at PT 96)
// each double-protect their RTP packets with `PERCSender` (inner E2E GCM under its own master
// key, outer HBH GCM towards the MD, EKT field: Full on the first 3 packets then every 50th,
// Short otherwise). A per-sender `DoubleSRTPRelay` then does what the MD does for the recorder:
// opens the sender's hop layer, rewrites SEQ (the original goes into the OHB) and re-seals under
// the recorder's hop key, the EKT field passing through. Per-SSRC relays keyed alike produce
// the same bytes as one shared outbound session (the GCM IV depends on the SSRC).
//
// Everything is generated before the run (two threads, one per core), packed back to back in
// one arena per sender, and indexed in send order by pointer + length.
import EKT
import SRTP
#if canImport(Glibc)
import Glibc
#endif

final class IngestPackets: @unchecked Sendable {
    struct Source: Sendable {
        let ssrc: UInt32
        let video: Bool
    }

    static let sources: [Source] = [
        Source(ssrc: 0xA0D1_0001, video: false), Source(ssrc: 0xA0D1_0002, video: false),
        Source(ssrc: 0xA0D1_0003, video: false), Source(ssrc: 0xA0D1_0004, video: false),
        Source(ssrc: 0x51DE_0005, video: true), Source(ssrc: 0x51DE_0006, video: true),
    ]
    /// Send order, repeated: each audio source twice and each video source once per 10 packets.
    static let schedule = [0, 1, 4, 2, 3, 0, 5, 1, 2, 3]
    /// Largest datagram: 12 + 1100 payload + 16 inner tag + 3 OHB + 16 outer tag + 47 Full EKT.
    static let maximumDatagram = 1280
    static let audioPayloadRange = 80 ... 130
    static let videoPayloadRange = 1000 ... 1100
    static let videoPacketsPerFrame = 5

    let count: Int
    /// Datagram `i` in send order.
    let pointers: UnsafeMutablePointer<UnsafeMutableRawPointer>
    let lengths: UnsafeMutablePointer<Int>
    private var arenas: [UnsafeMutableRawPointer] = []
    private(set) var totalBytes = 0
    private(set) var videoPackets = 0
    private(set) var fullFieldPackets = 0

    /// The recorder's hop key (what the MD seals with towards the recorder).
    let recorderHopKey = SecretBytes(randomCount: 16)
    let recorderHopSalt = SecretBytes(randomCount: 12)

    struct GenerationError: Error, CustomStringConvertible { let description: String }

    init(count: Int, seed: UInt64 = 0x1D6E_57A7) throws {
        precondition(count > 0)
        self.count = count
        pointers = .allocate(capacity: count)
        lengths = .allocate(capacity: count)
        let ekt = try EKTParameterSet(message: try EKTKeyMessage(ektKeyValue: SecretBytes(randomCount: 16),
                                                                 srtpMasterSalt: SecretBytes(randomCount: 12), spi: 7, ttl: 86_400),
                                      cipher: .aeskw128)
        let sources = Self.sources
        var perSource = [Int](repeating: 0, count: sources.count)
        for (slot, s) in Self.schedule.enumerated() {
            perSource[s] += count / Self.schedule.count + (slot < count % Self.schedule.count ? 1 : 0)
        }
        // One arena per source (virtual size for the worst case; only the pages written are used).
        let results = (0 ..< sources.count).map { i in
            SourceStream(capacity: perSource[i], slot: sources[i].video ? Self.maximumDatagram : 320)
        }
        let hopKeys = (0 ..< sources.count).map { _ in (SecretBytes(randomCount: 16), SecretBytes(randomCount: 12)) }
        let recorderKey = recorderHopKey, recorderSalt = recorderHopSalt
        // Two generator threads, each taking every other source (balanced: 2 audio + 1 video each).
        let groups = [[0, 1, 4], [2, 3, 5]]
        let threads = groups.map { group in
            BenchThread {
                for i in group {
                    let r = results[i]
                    do {
                        try r.generate(source: sources[i], index: i, seed: seed, ekt: ekt, hop: hopKeys[i],
                                       recorderKey: recorderKey, recorderSalt: recorderSalt)
                    } catch {
                        r.failure = "source \(i): \(error)"
                    }
                }
            }
        }
        for t in threads { t.join() }
        if let f = results.compactMap(\.failure).first { throw GenerationError(description: f) }
        // Interleave in send order.
        var next = [Int](repeating: 0, count: sources.count)
        for i in 0 ..< count {
            let s = Self.schedule[i % Self.schedule.count]
            let r = results[s], k = next[s]
            next[s] += 1
            pointers[i] = r.base + r.offsets[k]
            lengths[i] = r.lengths[k]
            totalBytes += r.lengths[k]
            if sources[s].video { videoPackets += 1 }
        }
        fullFieldPackets = results.reduce(0) { $0 + $1.fullFields }
        arenas = results.map(\.base)
        for r in results { r.releaseIndex() }
    }

    deinit {
        pointers.deallocate()
        lengths.deallocate()
        for a in arenas { a.deallocate() }
    }

    var averageBytes: Double { Double(totalBytes) / Double(count) }

    /// One source's packets, back to back in its arena.
    final class SourceStream: @unchecked Sendable {
        let capacity: Int
        let base: UnsafeMutableRawPointer
        let offsets: UnsafeMutablePointer<Int>
        let lengths: UnsafeMutablePointer<Int>
        var fullFields = 0
        var failure: String?

        init(capacity: Int, slot: Int) {
            self.capacity = capacity
            base = .allocate(byteCount: max(1, capacity * slot), alignment: 64)
            offsets = .allocate(capacity: max(1, capacity))
            lengths = .allocate(capacity: max(1, capacity))
        }

        func releaseIndex() {
            offsets.deallocate()
            lengths.deallocate()
        }

        func generate(source: Source, index: Int, seed: UInt64, ekt: EKTParameterSet, hop: (SecretBytes, SecretBytes),
                      recorderKey: SecretBytes, recorderSalt: SecretBytes) throws {
            let sender = try PERCSender(ssrc: source.ssrc, outerKey: hop.0, outerSalt: hop.1, ektKey: ekt)
            let relay = DoubleSRTPRelay(
                inbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: hop.0, masterSalt: hop.1, direction: .inbound),
                outbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: recorderKey, masterSalt: recorderSalt, direction: .outbound))
            var rng = SplitMix64(seed: seed ^ UInt64(index) &* 0x9E37_79B9)
            var seq = UInt16(truncatingIfNeeded: rng.next())
            var mdSeq = UInt16(truncatingIfNeeded: rng.next() & 0x7FFF)
            var timestamp = UInt32(truncatingIfNeeded: rng.next())
            let pt: UInt8 = source.video ? 96 : 111
            var offset = 0
            var packet: [UInt8] = []
            packet.reserveCapacity(IngestPackets.maximumDatagram)
            for k in 0 ..< capacity {
                let marker: Bool, payloadLength: Int
                if source.video {
                    let last = k % IngestPackets.videoPacketsPerFrame == IngestPackets.videoPacketsPerFrame - 1
                    marker = last
                    let r = IngestPackets.videoPayloadRange
                    payloadLength = last ? 300 + Int(rng.next() % 700) : r.lowerBound + Int(rng.next() % UInt64(r.count))
                } else {
                    marker = k == 0
                    let r = IngestPackets.audioPayloadRange
                    payloadLength = r.lowerBound + Int(rng.next() % UInt64(r.count))
                }
                packet.removeAll(keepingCapacity: true)
                packet.append(0x80)
                packet.append((marker ? 0x80 : 0) | pt)
                packet.append(UInt8(seq >> 8)); packet.append(UInt8(seq & 0xFF))
                for shift in stride(from: 24, through: 0, by: -8) { packet.append(UInt8(truncatingIfNeeded: timestamp >> UInt32(shift))) }
                for shift in stride(from: 24, through: 0, by: -8) { packet.append(UInt8(truncatingIfNeeded: source.ssrc >> UInt32(shift))) }
                var left = payloadLength
                while left > 0 {
                    var word = rng.next()
                    let n = min(8, left)
                    withUnsafeBytes(of: &word) { packet.append(contentsOf: $0.prefix(n)) }
                    left -= n
                }
                try sender.protect(&packet)
                try relay.forwardPERC(&packet, rewrite: HeaderRewrite(sequenceNumber: mdSeq))
                if packet.last == 0x02 { fullFields += 1 }
                packet.withUnsafeBytes { (base + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                offsets[k] = offset
                lengths[k] = packet.count
                offset += packet.count
                seq &+= 1
                mdSeq &+= 1
                if source.video {
                    if marker { timestamp &+= 3000 }   // 30 frames/s at 90 kHz
                } else {
                    timestamp &+= 960                   // 20 ms at 48 kHz
                }
            }
        }
    }
}
