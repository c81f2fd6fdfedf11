import Testing
import TestSupport
@testable import SRTP

@Suite("SRTP receiver state changes only after authentication")
struct SessionStateTests {
    static let key = "000102030405060708090a0b0c0d0e0f", salt = "a0a1a2a3a4a5a6a7a8a9aaab"

    static func pair(_ profile: SRTPProfile) throws -> (SRTPSession, SRTPSession) {
        let k = SecretBytes(randomCount: profile.masterKeyLength), s = SecretBytes(randomCount: profile.masterSaltLength)
        return (try SRTPSession(profile: profile, masterKey: k, masterSalt: s, direction: .outbound),
                try SRTPSession(profile: profile, masterKey: k, masterSalt: s, direction: .inbound))
    }

    @Test("a forged packet creates no SSRC context and leaves the packet bytes unchanged", arguments: SRTPProfile.allCases)
    func forgedCreatesNoState(profile: SRTPProfile) throws {
        let (tx, rx) = try Self.pair(profile)
        var rng = SplitMix64(seed: 7)
        var p = randomRTPPacket(ssrc: 0x11111111, seq: 10, rng: &rng)
        try tx.protect(&p)
        p[p.count - 1] ^= 0x01            // corrupt the tag
        let before = p
        #expect(throws: SRTPError.authenticationFailed(ssrc: 0x11111111)) { try rx.unprotect(&p) }
        #expect(p == before)
        #expect(rx.streamCount == 0)

        var c = randomRTCPPacket(ssrc: 0x22222222, rng: &rng)
        try tx.protectRTCP(&c)
        c[10] ^= 0x80
        #expect(throws: SRTPError.authenticationFailed(ssrc: 0x22222222)) { try rx.unprotectRTCP(&c) }
        #expect(rx.streamCount == 0)
    }

    @Test("a replayed packet is refused as already seen and leaves the window unchanged", arguments: SRTPProfile.allCases)
    func replayLeavesWindow(profile: SRTPProfile) throws {
        let (tx, rx) = try Self.pair(profile)
        var rng = SplitMix64(seed: 8)
        var packets: [[UInt8]] = []
        for seq in UInt16(100)..<UInt16(110) {
            var p = randomRTPPacket(ssrc: 0xABCDEF01, seq: seq, rng: &rng)
            try tx.protect(&p)
            packets.append(p)
        }
        for p in packets { var q = p; try rx.unprotect(&q) }
        let stream = try #require(rx.stream(for: 0xABCDEF01))
        let windowBefore = stream.replay, rocBefore = stream.rolloverCounter, highestBefore = stream.highestSequence
        var again = packets[4]
        #expect(throws: SRTPError.replayed(ssrc: 0xABCDEF01, index: 104)) { try rx.unprotect(&again) }
        #expect(again == packets[4])
        #expect(stream.replay == windowBefore)
        #expect(stream.rolloverCounter == rocBefore && stream.highestSequence == highestBefore)
    }

    @Test("a forged packet far ahead does not move the ROC or the window")
    func forgedAheadDoesNotAdvance() throws {
        let (tx, rx) = try Self.pair(.aeadAes128Gcm)
        var rng = SplitMix64(seed: 9)
        var p = randomRTPPacket(ssrc: 5, seq: 60000, rng: &rng)
        try tx.protect(&p); try rx.unprotect(&p)
        let stream = try #require(rx.stream(for: 5))
        let before = stream.replay
        // A packet claiming SEQ 10 (i.e. after a wrap) with a garbage tag.
        var forged = randomRTPPacket(ssrc: 5, seq: 10, rng: &rng) + rng.bytes(16)
        #expect(throws: SRTPError.authenticationFailed(ssrc: 5)) { try rx.unprotect(&forged) }
        #expect(stream.rolloverCounter == 0)
        #expect(stream.highestSequence == 60000)
        #expect(stream.replay == before)
    }

    @Test("packets older than the window are refused as too old, distinct from replays")
    func tooOld() throws {
        let k = SecretBytes(randomCount: 16), s = SecretBytes(randomCount: 12)
        let tx = try SRTPSession(profile: .aeadAes128Gcm, masterKey: k, masterSalt: s, direction: .outbound)
        let rx = try SRTPSession(profile: .aeadAes128Gcm, masterKey: k, masterSalt: s, direction: .inbound, replayWindowSize: 64)
        var rng = SplitMix64(seed: 10)
        var old = randomRTPPacket(ssrc: 9, seq: 1, rng: &rng)
        try tx.protect(&old)
        for seq in UInt16(2)...UInt16(100) {
            var p = randomRTPPacket(ssrc: 9, seq: seq, rng: &rng)
            try tx.protect(&p); try rx.unprotect(&p)
        }
        #expect(throws: SRTPError.tooOld(ssrc: 9, index: 1)) { try rx.unprotect(&old) }
    }

    @Test("bounds the number of SSRCs it keeps state for")
    func boundedStreams() throws {
        let k = SecretBytes(randomCount: 16), s = SecretBytes(randomCount: 12)
        let tx = try SRTPSession(profile: .aeadAes128Gcm, masterKey: k, masterSalt: s, direction: .outbound)
        let rx = try SRTPSession(profile: .aeadAes128Gcm, masterKey: k, masterSalt: s, direction: .inbound, maxStreams: 3)
        var rng = SplitMix64(seed: 11)
        for ssrc in UInt32(1)...3 { var p = randomRTPPacket(ssrc: ssrc, seq: 1, rng: &rng); try tx.protect(&p); try rx.unprotect(&p) }
        var p = randomRTPPacket(ssrc: 4, seq: 1, rng: &rng); try tx.protect(&p)
        #expect(throws: SRTPError.tooManyStreams(limit: 3)) { try rx.unprotect(&p) }
        #expect(rx.streamCount == 3)
    }

    @Test("short and malformed input gives typed errors", arguments: SRTPProfile.allCases)
    func malformed(profile: SRTPProfile) throws {
        let (_, rx) = try Self.pair(profile)
        var tiny: [UInt8] = [0x80, 0x00, 0x00]
        #expect(throws: SRTPError.malformed(.truncated(field: .fixedHeader, needed: 12, available: 3))) { try rx.unprotect(&tiny) }
        var v1 = hex("400f1234decafbadcafebabe") + [UInt8](repeating: 0, count: 20)
        #expect(throws: SRTPError.malformed(.unsupportedVersion(1))) { try rx.unprotect(&v1) }
        var noTag = hex("800f1234decafbadcafebabe")
        #expect(throws: SRTPError.packetTooShort(field: .srtpTag, needed: 12 + profile.srtpTagLength, available: 12)) { try rx.unprotect(&noTag) }
        var shortRTCP = hex("81c8000bcafebabe")
        #expect(throws: SRTPError.packetTooShort(field: .srtcpIndex, needed: 8 + profile.srtcpTagLength + 4, available: 8)) {
            try rx.unprotectRTCP(&shortRTCP)
        }
    }

    @Test("rejects keys and salts of the wrong length")
    func keyLengths() {
        #expect(throws: SRTPError.invalidKeyLength(what: "SRTP_AEAD_AES_128_GCM master salt", expected: 12, got: 14)) {
            try SRTPSession(profile: .aeadAes128Gcm, masterKey: SecretBytes(randomCount: 16), masterSalt: SecretBytes(randomCount: 14), direction: .inbound)
        }
        #expect(throws: SRTPError.invalidKeyLength(what: "SRTP_AES128_CM_HMAC_SHA1_80 master key", expected: 16, got: 32)) {
            try SRTPSession(profile: .aes128CmHmacSha1_80, masterKey: SecretBytes(randomCount: 32), masterSalt: SecretBytes(randomCount: 14), direction: .inbound)
        }
    }

    @Test("secret bytes print redacted and compare by value")
    func secretBytes() {
        let a = secret("00112233"), b = secret("00112233"), c = secret("00112234")
        #expect(a == b && a != c)
        #expect("\(a)" == "<redacted 4 bytes>")
        a.wipe()
        #expect(a.unsafeCopiedBytes == [0, 0, 0, 0])
    }
}
