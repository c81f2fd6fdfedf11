// libsrtp2 as the benchmark's reference peer: one srtp_t session with an "any SSRC" policy.
import CLibSRTP
import SRTP

/// A libsrtp2 session for one key and one direction. Only the benchmark uses it; percrec never links libsrtp.
final class LibSRTPPeer {
    /// Whether `srtp_init` succeeded (run once, on first use).
    static let initialized: Bool = srtp_init() == srtp_err_status_ok

    struct Failure: Error, CustomStringConvertible {
        let what: String
        let status: srtp_err_status_t
        var description: String { "libsrtp \(what) failed: \(LibSRTPPeer.statusName(status))" }
    }

    private var session: srtp_t?

    /// `key` and `salt` are the master key and salt; libsrtp takes them concatenated.
    init(profile: SRTPProfile, key: SecretBytes, salt: SecretBytes, inbound: Bool, windowSize: Int = 1024) throws(Failure) {
        guard Self.initialized else { throw Failure(what: "srtp_init", status: srtp_err_status_init_fail) }
        var policy = srtp_policy_t()
        switch profile {
        case .aeadAes128Gcm:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        case .aeadAes256Gcm:
            srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtcp)
        case .aes128CmHmacSha1_80:
            srtp_crypto_policy_set_rtp_default(&policy.rtp)
            srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        case .aes128CmHmacSha1_32:
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp)
            srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        }
        policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound
        policy.ssrc.value = 0
        policy.window_size = UInt(windowSize)
        policy.allow_repeat_tx = 0
        policy.next = nil
        // Master key ‖ master salt, wiped after srtp_create (libsrtp keeps its own expanded copy).
        let materialLength = key.count + salt.count
        let material = UnsafeMutableRawPointer.allocate(byteCount: materialLength, alignment: 16)
        defer {
            material.initializeMemory(as: UInt8.self, repeating: 0, count: materialLength)
            material.deallocate()
        }
        key.withUnsafeBytes { material.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        salt.withUnsafeBytes { (material + key.count).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        policy.key = material.assumingMemoryBound(to: UInt8.self)
        let status = srtp_create(&session, &policy)
        guard status == srtp_err_status_ok else { throw Failure(what: "srtp_create", status: status) }
    }

    deinit { if let s = session { srtp_dealloc(s) } }

    /// Protects the RTP packet of `length` bytes at `packet` in place (room for `SRTP_MAX_TRAILER_LEN`
    /// more is the caller's job). Updates `length`.
    @inline(__always)
    func protect(_ packet: UnsafeMutableRawPointer, length: inout Int32) -> srtp_err_status_t {
        srtp_protect(session, packet, &length)
    }

    /// Unprotects the SRTP packet of `length` bytes at `packet` in place. Updates `length`.
    @inline(__always)
    func unprotect(_ packet: UnsafeMutableRawPointer, length: inout Int32) -> srtp_err_status_t {
        srtp_unprotect(session, packet, &length)
    }

    static func statusName(_ s: srtp_err_status_t) -> String {
        switch s {
        case srtp_err_status_ok: return "ok"
        case srtp_err_status_fail: return "fail"
        case srtp_err_status_bad_param: return "bad_param"
        case srtp_err_status_alloc_fail: return "alloc_fail"
        case srtp_err_status_init_fail: return "init_fail"
        case srtp_err_status_auth_fail: return "auth_fail"
        case srtp_err_status_cipher_fail: return "cipher_fail"
        case srtp_err_status_replay_fail: return "replay_fail"
        case srtp_err_status_replay_old: return "replay_old"
        case srtp_err_status_no_ctx: return "no_ctx"
        case srtp_err_status_cant_check: return "cant_check"
        default: return "status \(s.rawValue)"
        }
    }
}
