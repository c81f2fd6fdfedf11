// `percrec-bench srtp`: SRTP unprotect throughput of percrec against libsrtp2, on one set of
// 200-byte RTP packets (12-byte header + 188-byte payload, one SSRC, consecutive sequence
// numbers that wrap).
//
// For each measurement the protected packets are generated before timing into fixed-size slots.
// A timed pass creates a fresh receiving session (the replay window accepts each packet once),
// then, per packet, copies it into a scratch buffer and unprotects it there in place; only that
// loop is timed. One verifying warm-up pass (every output compared with the plaintext) precedes
// the timed passes, which are interleaved across measurements so that load from other processes
// spreads over all of them; the best pass is reported.
import SRTP
import CLibSRTP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum SRTPBenchmark {
    static let summary = "SRTP unprotect packets/s: percrec GCM, AES-CM and double vs libsrtp2 (200-byte RTP)"
    static let defaultPacketCount = 200_000
    static let defaultPasses = 3

    static let packetBytes = 200
    static let headerBytes = 12
    static let ssrc: UInt32 = 0x5EC0_4D11
    static let firstSequence: UInt16 = 65_000   // wraps after 536 packets (ROC 0 → 1 → …)
    static let payloadType: UInt8 = 96
    /// SEQ offset the Media Distributor applies, so every forwarded packet carries a non-empty OHB.
    static let relaySequenceOffset: UInt16 = 1000

    static func run(_ arguments: [String]) -> Int32 {
        guard let options = parseIntegerOptions(arguments, allowed: ["--packets": defaultPacketCount, "--passes": defaultPasses]) else {
            writeStderr(usage())
            return 2
        }
        do {
            return try benchmark(packetCount: options["--packets"] ?? defaultPacketCount, passes: options["--passes"] ?? defaultPasses)
        } catch {
            writeStderr("percrec-bench srtp: setup failed: \(error)\n")
            return 1
        }
    }

    // MARK: - Packet generation

    /// The plain RTP packets every measurement starts from.
    static func makePlaintext(count: Int) -> PacketSet {
        let set = PacketSet(count: count, maxPacketLength: packetBytes)
        var rng = SplitMix64(seed: 0x70E7_C5EC)
        for i in 0..<count {
            let p = set.slot(i)
            let seq = firstSequence &+ UInt16(truncatingIfNeeded: i)
            let timestamp = UInt32(0x1000_0000) &+ UInt32(truncatingIfNeeded: i) &* 960
            p.storeBytes(of: 0x80, toByteOffset: 0, as: UInt8.self)          // V=2, P=0, X=0, CC=0
            p.storeBytes(of: payloadType, toByteOffset: 1, as: UInt8.self)   // M=0
            p.storeBytes(of: seq.bigEndian, toByteOffset: 2, as: UInt16.self)
            p.storeBytes(of: timestamp.bigEndian, toByteOffset: 4, as: UInt32.self)
            p.storeBytes(of: ssrc.bigEndian, toByteOffset: 8, as: UInt32.self)
            var o = headerBytes
            while o < packetBytes {
                var word = rng.next()
                let n = min(8, packetBytes - o)
                withUnsafeBytes(of: &word) { (p + o).copyMemory(from: $0.baseAddress!, byteCount: n) }
                o += n
            }
            set.lengths[i] = packetBytes
        }
        return set
    }

    /// Plaintext protected by a percrec outbound session.
    static func protectAll(_ plain: PacketSet, profile: SRTPProfile, key: SecretBytes, salt: SecretBytes) throws -> PacketSet {
        let sender = try SRTPSession(profile: profile, masterKey: key, masterSalt: salt, direction: .outbound)
        let set = PacketSet(count: plain.count, maxPacketLength: packetBytes + profile.srtpTagLength)
        for i in 0..<plain.count {
            var p = plain.bytes(at: i)
            try sender.protect(&p)
            set.store(p, at: i)
        }
        return set
    }

    /// Double-SRTP packets as a receiver gets them: sealed by `DoubleSRTPSender`, then forwarded
    /// once by a `DoubleSRTPRelay` that rewrites SEQ (so the OHB holds the original SEQ).
    static func doubleProtectAll(_ plain: PacketSet, keys: DoubleKeys) throws -> PacketSet {
        let sender = try DoubleSRTPSender(profile: .doubleAeadAes128Gcm, innerKey: keys.innerKey, innerSalt: keys.innerSalt,
                                          outerKey: keys.senderHopKey, outerSalt: keys.senderHopSalt)
        let relay = DoubleSRTPRelay(
            inbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: keys.senderHopKey, masterSalt: keys.senderHopSalt, direction: .inbound),
            outbound: try SRTPSession(profile: .aeadAes128Gcm, masterKey: keys.receiverHopKey, masterSalt: keys.receiverHopSalt, direction: .outbound))
        // inner tag 16 + OHB (SEQ + config) 3 + outer tag 16
        let set = PacketSet(count: plain.count, maxPacketLength: packetBytes + 16 + 3 + 16)
        for i in 0..<plain.count {
            var p = plain.bytes(at: i)
            let seq = UInt16(p[2]) << 8 | UInt16(p[3])
            try sender.protect(&p)
            try relay.forward(&p, trailerLength: 0, rewrite: HeaderRewrite(sequenceNumber: seq &+ relaySequenceOffset))
            set.store(p, at: i)
        }
        return set
    }

    struct DoubleKeys {
        let innerKey = SecretBytes(randomCount: 16), innerSalt = SecretBytes(randomCount: 12)
        let senderHopKey = SecretBytes(randomCount: 16), senderHopSalt = SecretBytes(randomCount: 12)
        let receiverHopKey = SecretBytes(randomCount: 16), receiverHopSalt = SecretBytes(randomCount: 12)
    }

    // MARK: - Timed loops (raw pointers only; no allocation, closures or existentials per packet)

    /// percrec `SRTPSession.unprotect` (pointer API) over every packet of `packets`.
    /// With `verify`, also compares each output with the plaintext (warm-up only).
    @inline(never)
    static func percrecPass(_ session: SRTPSession, _ packets: PacketSet, scratch: UnsafeMutableRawPointer,
                            verify: PacketSet?) -> PassResult {
        let count = packets.count, base = packets.base, stride = packets.stride, lengths = packets.lengths
        var failed = FailureLog()
        let start = monotonicNanoseconds()
        for i in 0..<count {
            let length = lengths[i]
            scratch.copyMemory(from: base + i &* stride, byteCount: length)
            do {
                let n = try session.unprotect(UnsafeMutableRawBufferPointer(start: scratch, count: length))
                if n != packetBytes {
                    failed.record(i, "plaintext length \(n), expected \(packetBytes)")
                } else if let plain = verify, memcmp(scratch, plain.slot(i), packetBytes) != 0 {
                    failed.record(i, "decrypted bytes differ from the plaintext")
                }
            } catch {
                failed.record(i, "\(error)")
            }
        }
        let elapsed = monotonicNanoseconds() &- start
        return PassResult(packets: count, nanoseconds: elapsed, failures: failed.count, firstFailure: failed.first)
    }

    /// libsrtp2 `srtp_unprotect` over the same packets, the same way.
    @inline(never)
    static func libsrtpPass(_ peer: LibSRTPPeer, _ packets: PacketSet, scratch: UnsafeMutableRawPointer,
                            verify: PacketSet?) -> PassResult {
        let count = packets.count, base = packets.base, stride = packets.stride, lengths = packets.lengths
        var failed = FailureLog()
        let start = monotonicNanoseconds()
        for i in 0..<count {
            let length = lengths[i]
            scratch.copyMemory(from: base + i &* stride, byteCount: length)
            var n = Int32(truncatingIfNeeded: length)
            let status = peer.unprotect(scratch, length: &n)
            if status != srtp_err_status_ok {
                failed.record(i, "srtp_unprotect: \(LibSRTPPeer.statusName(status))")
            } else if n != Int32(packetBytes) {
                failed.record(i, "plaintext length \(n), expected \(packetBytes)")
            } else if let plain = verify, memcmp(scratch, plain.slot(i), packetBytes) != 0 {
                failed.record(i, "decrypted bytes differ from the plaintext")
            }
        }
        let elapsed = monotonicNanoseconds() &- start
        return PassResult(packets: count, nanoseconds: elapsed, failures: failed.count, firstFailure: failed.first)
    }

    /// Receiver side of double SRTP: `DoubleSRTPReceiver.openOuter` (outer open + OHB + header
    /// restore) then the inner `SRTPSession.unprotect` on the inner packet left in the buffer.
    @inline(never)
    static func doublePass(_ receiver: DoubleSRTPReceiver, _ inner: SRTPSession, _ packets: PacketSet,
                           scratch: UnsafeMutableRawPointer, verify: PacketSet?) -> PassResult {
        let count = packets.count, base = packets.base, stride = packets.stride, lengths = packets.lengths
        var failed = FailureLog()
        let start = monotonicNanoseconds()
        for i in 0..<count {
            let length = lengths[i]
            scratch.copyMemory(from: base + i &* stride, byteCount: length)
            do {
                let (innerLength, info) = try receiver.openOuter(UnsafeMutableRawBufferPointer(start: scratch, count: length))
                let n = try inner.unprotect(UnsafeMutableRawBufferPointer(start: scratch, count: innerLength))
                if n != packetBytes {
                    failed.record(i, "plaintext length \(n), expected \(packetBytes)")
                } else if info.ohb.sequenceNumber == nil {
                    failed.record(i, "OHB carries no original SEQ: \(info.ohb)")
                } else if let plain = verify, memcmp(scratch, plain.slot(i), packetBytes) != 0 {
                    failed.record(i, "decrypted bytes differ from the plaintext")
                }
            } catch {
                failed.record(i, "\(error)")
            }
        }
        let elapsed = monotonicNanoseconds() &- start
        return PassResult(packets: count, nanoseconds: elapsed, failures: failed.count, firstFailure: failed.first)
    }

    // MARK: - Checks outside the timed loops

    /// libsrtp2 protecting the first plaintext packet with the same key must produce exactly the
    /// bytes percrec produced (both transforms are deterministic), so both sides time identical input.
    static func libsrtpProtectMatches(_ plain: PacketSet, _ protected: PacketSet, profile: SRTPProfile,
                                      key: SecretBytes, salt: SecretBytes) throws -> Bool {
        let peer = try LibSRTPPeer(profile: profile, key: key, salt: salt, inbound: false)
        let buffer = ScratchBuffer()
        buffer.pointer.copyMemory(from: plain.slot(0), byteCount: plain.lengths[0])
        var n = Int32(plain.lengths[0])
        guard peer.protect(buffer.pointer, length: &n) == srtp_err_status_ok, Int(n) == protected.lengths[0] else { return false }
        return memcmp(buffer.pointer, protected.slot(0), Int(n)) == 0
    }

    /// The first packet, unprotected once on its own by a fresh session, equals the plaintext.
    static func firstPacketRoundTrips(_ plain: PacketSet, _ protected: PacketSet, profile: SRTPProfile,
                                      key: SecretBytes, salt: SecretBytes) throws -> Bool {
        let session = try SRTPSession(profile: profile, masterKey: key, masterSalt: salt, direction: .inbound)
        var p = protected.bytes(at: 0)
        try session.unprotect(&p)
        return p == plain.bytes(at: 0)
    }

    // MARK: - The benchmark

    static func benchmark(packetCount: Int, passes: Int) throws -> Int32 {
        let plain = makePlaintext(count: packetCount)
        let scratch = ScratchBuffer()

        let gcmKey = SecretBytes(randomCount: 16), gcmSalt = SecretBytes(randomCount: 12)
        let cmKey = SecretBytes(randomCount: 16), cmSalt = SecretBytes(randomCount: 14)
        let doubleKeys = DoubleKeys()
        let gcmPackets = try protectAll(plain, profile: .aeadAes128Gcm, key: gcmKey, salt: gcmSalt)
        let cmPackets = try protectAll(plain, profile: .aes128CmHmacSha1_80, key: cmKey, salt: cmSalt)
        let doublePackets = try doubleProtectAll(plain, keys: doubleKeys)

        var checkFailures: [String] = []
        if try !firstPacketRoundTrips(plain, gcmPackets, profile: .aeadAes128Gcm, key: gcmKey, salt: gcmSalt) {
            checkFailures.append("GCM: the first packet does not decrypt to the plaintext")
        }
        if try !firstPacketRoundTrips(plain, cmPackets, profile: .aes128CmHmacSha1_80, key: cmKey, salt: cmSalt) {
            checkFailures.append("AES-CM: the first packet does not decrypt to the plaintext")
        }
        let gcmMatches = try libsrtpProtectMatches(plain, gcmPackets, profile: .aeadAes128Gcm, key: gcmKey, salt: gcmSalt)
        let cmMatches = try libsrtpProtectMatches(plain, cmPackets, profile: .aes128CmHmacSha1_80, key: cmKey, salt: cmSalt)
        if !gcmMatches { checkFailures.append("GCM: libsrtp2 protects the first packet to different bytes than percrec") }
        if !cmMatches { checkFailures.append("AES-CM: libsrtp2 protects the first packet to different bytes than percrec") }

        // Each measurement: a name and one pass with fresh receiving state (set up before timing).
        typealias Pass = (_ verify: PacketSet?) throws -> PassResult
        let s = scratch.pointer
        let runs: [(name: String, pass: Pass)] = [
            ("gcm_unprotect", { v in
                percrecPass(try SRTPSession(profile: .aeadAes128Gcm, masterKey: gcmKey, masterSalt: gcmSalt, direction: .inbound),
                            gcmPackets, scratch: s, verify: v) }),
            ("libsrtp_gcm_unprotect", { v in
                libsrtpPass(try LibSRTPPeer(profile: .aeadAes128Gcm, key: gcmKey, salt: gcmSalt, inbound: true),
                            gcmPackets, scratch: s, verify: v) }),
            ("double_receive", { v in
                let receiver = try DoubleSRTPReceiver(profile: .doubleAeadAes128Gcm, outerKey: doubleKeys.receiverHopKey,
                                                      outerSalt: doubleKeys.receiverHopSalt)
                let inner = try SRTPSession(profile: .aeadAes128Gcm, masterKey: doubleKeys.innerKey,
                                            masterSalt: doubleKeys.innerSalt, direction: .inbound)
                return doublePass(receiver, inner, doublePackets, scratch: s, verify: v) }),
            ("aescm_unprotect", { v in
                percrecPass(try SRTPSession(profile: .aes128CmHmacSha1_80, masterKey: cmKey, masterSalt: cmSalt, direction: .inbound),
                            cmPackets, scratch: s, verify: v) }),
            ("libsrtp_aescm_unprotect", { v in
                libsrtpPass(try LibSRTPPeer(profile: .aes128CmHmacSha1_80, key: cmKey, salt: cmSalt, inbound: true),
                            cmPackets, scratch: s, verify: v) }),
        ]

        // Warm-up: one verifying pass each (every decrypted packet compared with the plaintext).
        var warmupFailures: [String] = []
        for r in runs {
            let w = try r.pass(plain)
            if w.failures > 0, let first = w.firstFailure {
                warmupFailures.append("\(r.name) (warm-up): \(w.failures) of \(w.packets) packets failed; first at packet \(first.index): \(first.reason)")
            }
        }
        // Timed passes, interleaved.
        var measurements = runs.map { Measurement(name: $0.name) }
        for _ in 0..<passes {
            for (k, r) in runs.enumerated() { measurements[k].passes.append(try r.pass(nil)) }
        }
        let m = Dictionary(uniqueKeysWithValues: measurements.map { ($0.name, $0.bestPPS) })
        func best(_ name: String) -> Double { m[name] ?? 0 }

        var report = Report()
        report.line("packets", packetCount)
        report.line("packet_bytes", packetBytes)
        report.line("passes", passes)
        report.line("statistic", "best")
        let gcm = best("gcm_unprotect"), libGCM = best("libsrtp_gcm_unprotect")
        let cm = best("aescm_unprotect"), libCM = best("libsrtp_aescm_unprotect")
        report.line("gcm_unprotect_pps", pps(gcm))
        report.line("libsrtp_gcm_unprotect_pps", pps(libGCM))
        report.line("gcm_ratio_vs_libsrtp", fixed(libGCM > 0 ? gcm / libGCM : 0, decimals: 2))
        report.line("double_receive_pps", pps(best("double_receive")))
        report.line("aescm_unprotect_pps", pps(cm))
        report.line("libsrtp_aescm_unprotect_pps", pps(libCM))
        report.line("aescm_ratio_vs_libsrtp", fixed(libCM > 0 ? cm / libCM : 0, decimals: 2))
        for x in measurements {
            report.line("\(x.name)_ns_per_packet", fixed(x.best!.nanosecondsPerPacket, decimals: 1))
            report.line("\(x.name)_median_pps", pps(x.median!.packetsPerSecond))
        }
        report.line("gcm_srtp_bytes", gcmPackets.uniformLength ?? -1)
        report.line("aescm_srtp_bytes", cmPackets.uniformLength ?? -1)
        report.line("double_srtp_bytes", doublePackets.uniformLength ?? -1)
        report.line("plaintext_verified", checkFailures.isEmpty && warmupFailures.isEmpty ? "all" : "FAILED")
        report.line("libsrtp_same_ciphertext", gcmMatches && cmMatches ? "yes" : "no")
        let timedFailures = measurements.reduce(0) { $0 + $1.failures }
        report.line("failures", timedFailures + warmupFailures.count + checkFailures.count)

        var problems = checkFailures + warmupFailures
        for x in measurements where x.failures > 0 {
            guard let first = x.passes.lazy.compactMap(\.firstFailure).first else { continue }
            problems.append("\(x.name): \(x.failures) packets failed over \(x.passes.count) passes; first at packet \(first.index): \(first.reason)")
        }
        guard problems.isEmpty else {
            for p in problems { writeStderr("percrec-bench srtp: \(p)\n") }
            return 1
        }
        return 0
    }
}
