import Testing
import TestSupport
import CLibSRTP
@testable import SRTP

/// libsrtp2 as an independent implementation: one session per direction, "any SSRC" policy.
final class LibSRTPSession {
    private var session: srtp_t?
    static let initialized: Bool = srtp_init() == srtp_err_status_ok

    init(profile: SRTPProfile, key: SecretBytes, salt: SecretBytes, outbound: Bool, rtcpAuthOnly: Bool = false) throws {
        precondition(Self.initialized, "srtp_init failed")
        var policy = srtp_policy_t()
        switch profile {
        case .aes128CmHmacSha1_80:
            srtp_crypto_policy_set_rtp_default(&policy.rtp); srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        case .aes128CmHmacSha1_32:
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp); srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        case .aeadAes128Gcm:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp); srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        case .aeadAes256Gcm:
            srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtp); srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtcp)
        }
        // libsrtp insists that the SRTCP E flag matches the policy (srtp_err_status_cant_check),
        // so E=0 packets need a session whose RTCP service is authentication only.
        if rtcpAuthOnly { policy.rtcp.sec_serv = sec_serv_auth }
        policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound
        var material = key.unsafeCopiedBytes + salt.unsafeCopiedBytes
        policy.window_size = 1024
        policy.allow_repeat_tx = 0
        policy.next = nil
        let status = material.withUnsafeMutableBufferPointer { buf -> srtp_err_status_t in
            policy.key = buf.baseAddress
            return srtp_create(&session, &policy)
        }
        for i in material.indices { material[i] = 0 }
        guard status == srtp_err_status_ok else { throw LibSRTPError(status: status.rawValue) }
    }

    deinit { if let s = session { srtp_dealloc(s) } }

    struct LibSRTPError: Error, Equatable { let status: UInt32 }

    private func run(_ p: inout [UInt8], _ op: (srtp_t?, UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> srtp_err_status_t) throws {
        var len = Int32(p.count)
        p.append(contentsOf: [UInt8](repeating: 0, count: Int(SRTP_MAX_TRAILER_LEN) + 16))
        let status = p.withUnsafeMutableBytes { op(session, $0.baseAddress!, &len) }
        p.removeLast(p.count - Int(len))
        guard status == srtp_err_status_ok else { throw LibSRTPError(status: status.rawValue) }
    }

    func protect(_ p: inout [UInt8]) throws { try run(&p) { srtp_protect($0, $1, $2) } }
    func unprotect(_ p: inout [UInt8]) throws { try run(&p) { srtp_unprotect($0, $1, $2) } }
    func protectRTCP(_ p: inout [UInt8]) throws { try run(&p) { srtp_protect_rtcp($0, $1, $2) } }
    func unprotectRTCP(_ p: inout [UInt8]) throws { try run(&p) { srtp_unprotect_rtcp($0, $1, $2) } }
}

@Suite("Interoperability with libsrtp2")
struct LibSRTPInteropTests {
    static let profiles: [SRTPProfile] = [.aes128CmHmacSha1_80, .aeadAes128Gcm, .aes128CmHmacSha1_32, .aeadAes256Gcm]
    static let packetCount = 1000

    @Test("libsrtp2 unprotects 1000 random packets percrec protected (SRTP)", arguments: profiles)
    func percrecToLibsrtp(profile: SRTPProfile) throws {
        let key = SecretBytes(randomCount: profile.masterKeyLength), salt = SecretBytes(randomCount: profile.masterSaltLength)
        let ours = try SRTPSession(profile: profile, masterKey: key, masterSalt: salt, direction: .outbound)
        let theirs = try LibSRTPSession(profile: profile, key: key, salt: salt, outbound: false)
        var rng = SplitMix64(seed: UInt64(profile.rawValue) * 1000 + 1)
        var seq: UInt16 = 65000   // crosses a sequence-number wrap (ROC 0 → 1)
        for n in 0..<Self.packetCount {
            let plain = randomRTPPacket(ssrc: 0x1234_5678 &+ UInt32(n % 3), seq: seq, rng: &rng)
            if n % 3 == 2 { seq &+= 1 }
            var p = plain
            try ours.protect(&p)
            #expect(p.count == plain.count + profile.srtpTagLength)
            try theirs.unprotect(&p)
            #expect(p == plain, "packet \(n)")
        }
    }

    @Test("percrec unprotects 1000 random packets libsrtp2 protected (SRTP)", arguments: profiles)
    func libsrtpToPercrec(profile: SRTPProfile) throws {
        let key = SecretBytes(randomCount: profile.masterKeyLength), salt = SecretBytes(randomCount: profile.masterSaltLength)
        let theirs = try LibSRTPSession(profile: profile, key: key, salt: salt, outbound: true)
        let ours = try SRTPSession(profile: profile, masterKey: key, masterSalt: salt, direction: .inbound)
        var rng = SplitMix64(seed: UInt64(profile.rawValue) * 1000 + 2)
        var seq: UInt16 = 65200   // 500 increments: crosses the wrap
        for n in 0..<Self.packetCount {
            let plain = randomRTPPacket(ssrc: 0xCAFE_0000 &+ UInt32(n % 2), seq: seq, rng: &rng)
            if n % 2 == 1 { seq &+= 1 }
            var p = plain
            try theirs.protect(&p)
            try ours.unprotect(&p)
            #expect(p == plain, "packet \(n)")
        }
        #expect(ours.stream(for: 0xCAFE_0000)?.rolloverCounter == 1)
    }

    @Test("SRTCP interoperates in both directions (1000 packets each, E=1 and E=0)", arguments: profiles)
    func srtcp(profile: SRTPProfile) throws {
        let key = SecretBytes(randomCount: profile.masterKeyLength), salt = SecretBytes(randomCount: profile.masterSaltLength)
        let oursTx = try SRTPSession(profile: profile, masterKey: key, masterSalt: salt, direction: .outbound)
        let theirsRx = try LibSRTPSession(profile: profile, key: key, salt: salt, outbound: false)
        let theirsRxAuthOnly = try LibSRTPSession(profile: profile, key: key, salt: salt, outbound: false, rtcpAuthOnly: true)
        let theirsTx = try LibSRTPSession(profile: profile, key: key, salt: salt, outbound: true)
        let oursRx = try SRTPSession(profile: profile, masterKey: key, masterSalt: salt, direction: .inbound)
        var rng = SplitMix64(seed: UInt64(profile.rawValue) * 1000 + 3)
        for n in 0..<Self.packetCount {
            let plain = randomRTCPPacket(ssrc: 0x5EED_0000 &+ UInt32(n % 4), rng: &rng)
            var a = plain
            let encrypt = n % 5 != 0
            try oursTx.protectRTCP(&a, encrypt: encrypt)
            #expect(encrypt == (a[a.count - (profile.isAEAD ? 4 : 14)] & 0x80 != 0))
            try (encrypt ? theirsRx : theirsRxAuthOnly).unprotectRTCP(&a)
            #expect(a == plain, "percrec→libsrtp \(n)")
            var b = plain
            try theirsTx.protectRTCP(&b)
            try oursRx.unprotectRTCP(&b)
            #expect(b == plain, "libsrtp→percrec \(n)")
        }
    }

    @Test("both implementations reject each other's tampered packets")
    func tamperRejected() throws {
        let profile = SRTPProfile.aeadAes128Gcm
        let key = SecretBytes(randomCount: 16), salt = SecretBytes(randomCount: 12)
        let ours = try SRTPSession(profile: profile, masterKey: key, masterSalt: salt, direction: .outbound)
        let theirs = try LibSRTPSession(profile: profile, key: key, salt: salt, outbound: false)
        var rng = SplitMix64(seed: 99)
        var p = randomRTPPacket(ssrc: 1, seq: 1, rng: &rng)
        try ours.protect(&p)
        p[p.count / 2] ^= 0x40
        #expect(throws: LibSRTPSession.LibSRTPError.self) { try theirs.unprotect(&p) }
    }
}
