import Testing
import COpenSSL
import COpus
import Foundation
import CVPX

/// The C shims compile, link, and their inline wrappers work against the installed libraries.
@Suite("C shims")
struct ShimTests {
    @Test("COpenSSL links OpenSSL 3 and its wrap-cipher and HMAC helpers work")
    func openSSL() {
        #expect(OPENSSL_VERSION_MAJOR >= 3)
        let ctx = EVP_CIPHER_CTX_new()
        defer { EVP_CIPHER_CTX_free(ctx) }
        percrec_allow_wrap(ctx)
        #expect(EVP_CipherInit_ex(ctx, EVP_aes_128_wrap_pad(), nil, [UInt8](repeating: 1, count: 16), nil, 1) == 1)
        let mac = "SHA1".withCString { percrec_hmac_new($0, [UInt8](repeating: 2, count: 20), 20) }
        #expect(mac != nil)
        EVP_MAC_CTX_free(mac)
    }

    @Test("COpus encodes a frame through the ctl wrappers")
    func opus() {
        var err: Int32 = 0
        guard let enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err) else {
            Issue.record("opus_encoder_create failed: \(err)"); return
        }
        #expect(err == OPUS_OK)
        defer { opus_encoder_destroy(enc) }
        #expect(percrec_opus_set_bitrate(enc, 32000) == OPUS_OK)
        #expect(percrec_opus_set_dtx(enc, 1) == OPUS_OK)
        var lookahead: Int32 = 0
        #expect(percrec_opus_get_lookahead(enc, &lookahead) == OPUS_OK && lookahead > 0)
        let pcm = (0..<960).map { Int16(10000 * sin(Double($0) * 2 * .pi * 440 / 48000)) }
        var out = [UInt8](repeating: 0, count: 1500)
        let n = opus_encode(enc, pcm, 960, &out, 1500)
        #expect(n > 0)
        #expect(String(cString: opus_get_version_string()).hasPrefix("libopus"))
    }

    @Test("CVPX initialises a VP8 encoder and decoder")
    func vpx() {
        var cfg = vpx_codec_enc_cfg_t()
        #expect(vpx_codec_enc_config_default(vpx_codec_vp8_cx(), &cfg, 0) == VPX_CODEC_OK)
        cfg.g_w = 320; cfg.g_h = 180
        var enc = vpx_codec_ctx_t()
        #expect(percrec_vpx_enc_init(&enc, &cfg, 0) == VPX_CODEC_OK)
        #expect(percrec_vpx_set_cpuused(&enc, 8) == VPX_CODEC_OK)
        vpx_codec_destroy(&enc)
        var dec = vpx_codec_ctx_t()
        #expect(percrec_vpx_dec_init(&dec, 0) == VPX_CODEC_OK)
        vpx_codec_destroy(&dec)
    }
}
