// COpenSSL: the OpenSSL 3 headers percrec uses, plus static inline wrappers for the
// function-like macros and variadic calls that Swift cannot import directly.
// Only Swift files that own one C concept (a cipher context, a MAC, an SSL object) import this.
#ifndef PERCREC_COPENSSL_SHIM_H
#define PERCREC_COPENSSL_SHIM_H

#include <string.h>
#include <openssl/opensslv.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/srtp.h>

/// EVP_CIPHER_CTX_ctrl with the GCM tag controls (the EVP_CTRL_* names are plain ints but
/// grouping them keeps the Swift side free of magic numbers).
static inline int percrec_gcm_set_tag(EVP_CIPHER_CTX *ctx, const void *tag, int len) {
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, len, (void *)tag);
}
static inline int percrec_gcm_get_tag(EVP_CIPHER_CTX *ctx, void *tag, int len) {
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, len, tag);
}
static inline int percrec_gcm_set_ivlen(EVP_CIPHER_CTX *ctx, int len) {
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, len, NULL);
}
/// The wrap-mode ciphers refuse to run unless this flag is set on the context.
static inline void percrec_allow_wrap(EVP_CIPHER_CTX *ctx) {
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
}
/// OSSL_PARAM for the HMAC digest name ("SHA1"): OSSL_PARAM_construct_utf8_string is fine
/// from Swift, but building the terminated array is easier here.
static inline EVP_MAC_CTX *percrec_hmac_new(const char *digest, const unsigned char *key, size_t keylen) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (ctx == NULL) return NULL;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, key, keylen, params) != 1) { EVP_MAC_CTX_free(ctx); return NULL; }
    return ctx;
}

// DTLS / SSL macros (used by the key plane).
static inline int percrec_ssl_ctx_set_min_proto(SSL_CTX *ctx, int v) { return (int)SSL_CTX_set_min_proto_version(ctx, v); }
static inline int percrec_ssl_ctx_set_max_proto(SSL_CTX *ctx, int v) { return (int)SSL_CTX_set_max_proto_version(ctx, v); }
static inline long percrec_dtls_set_link_mtu(SSL *ssl, long mtu) { return DTLS_set_link_mtu(ssl, mtu); }
static inline long percrec_bio_set_mem_eof_return(BIO *b, long v) { return BIO_set_mem_eof_return(b, v); }
static inline long percrec_dtls_get_timeout(SSL *ssl, struct timeval *tv) { return DTLSv1_get_timeout(ssl, tv); }
static inline long percrec_dtls_handle_timeout(SSL *ssl) { return DTLSv1_handle_timeout(ssl); }
static inline int percrec_ssl_set_app_data(SSL *ssl, void *p) { return SSL_set_app_data(ssl, p); }
static inline void *percrec_ssl_get_app_data(const SSL *ssl) { return SSL_get_app_data(ssl); }
static inline EVP_PKEY *percrec_ec_gen_p256(void) { return EVP_EC_gen("P-256"); }
static const uint64_t percrec_SSL_OP_NO_QUERY_MTU = SSL_OP_NO_QUERY_MTU;
static const uint64_t percrec_SSL_OP_COOKIE_EXCHANGE = SSL_OP_COOKIE_EXCHANGE;
static const unsigned int percrec_SSL_EXT_CLIENT_HELLO = SSL_EXT_CLIENT_HELLO;
static const unsigned int percrec_SSL_EXT_TLS1_2_SERVER_HELLO = SSL_EXT_TLS1_2_SERVER_HELLO;

// DTLS key plane (Sources/KeyExchange/DTLS): the build-time OpenSSL version decides whether
// the native double SRTP profiles (OpenSSL >= 3.5) are offered.
static const unsigned long percrec_OPENSSL_VERSION_NUMBER = OPENSSL_VERSION_NUMBER;
static const unsigned long percrec_MBSTRING_ASC = MBSTRING_ASC;
static const int percrec_SSL_VERIFY_PEER = SSL_VERIFY_PEER;
static const int percrec_SSL_VERIFY_FAIL_IF_NO_PEER_CERT = SSL_VERIFY_FAIL_IF_NO_PEER_CERT;

// ekt_key outside OpenSSL (Sources/KeyExchange/DTLS/DTLSEpochOneRecords.swift): the DTLS 1.2
// key block is TLS1-PRF(master secret, "key expansion", server_random ‖ client_random).
static inline int percrec_tls1_prf(const char *digest, const unsigned char *secret, size_t secretlen,
                                   const char *label, const unsigned char *seed, size_t seedlen,
                                   unsigned char *out, size_t outlen) {
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    if (kdf == NULL) return 0;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (kctx == NULL) return 0;
    unsigned char labelled[512];
    size_t labellen = strlen(label);
    if (labellen + seedlen > sizeof(labelled)) { EVP_KDF_CTX_free(kctx); return 0; }
    memcpy(labelled, label, labellen);
    memcpy(labelled + labellen, seed, seedlen);
    OSSL_PARAM params[4];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret, secretlen);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, labelled, labellen + seedlen);
    params[3] = OSSL_PARAM_construct_end();
    int ok = EVP_KDF_derive(kctx, out, outlen, params) == 1;
    OPENSSL_cleanse(labelled, sizeof(labelled));
    EVP_KDF_CTX_free(kctx);
    return ok;
}

// TLS tunnel (Sources/KeyExchange/TLS): option bits built with SSL_OP_BIT(), which Swift
// cannot import. No tickets and no renegotiation: every tunnel connection runs a full
// handshake with the certificate pin check.
static const uint64_t percrec_SSL_OP_NO_TICKET = SSL_OP_NO_TICKET;
static const uint64_t percrec_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;

#endif
