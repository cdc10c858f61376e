/* common/hash.c — SHA-256 and HMAC-SHA256 through OpenSSL's EVP interface.
 * No hand-rolled cryptography lives in sluice. */
#include "common/common.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

struct sha256_ctx {
    EVP_MD_CTX *md;
};

sha256_ctx *sha256_new(void)
{
    sha256_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->md = EVP_MD_CTX_new();
    if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
        sha256_free(c);
        return NULL;
    }
    return c;
}

int sha256_update(sha256_ctx *c, const void *buf, size_t len)
{
    return EVP_DigestUpdate(c->md, buf, len) == 1 ? 0 : -EIO;
}

int sha256_final(sha256_ctx *c, uint8_t out[SHA256_LEN])
{
    unsigned int n = 0;
    int rc = EVP_DigestFinal_ex(c->md, out, &n) == 1 && n == SHA256_LEN ? 0 : -EIO;
    sha256_free(c);
    return rc;
}

void sha256_free(sha256_ctx *c)
{
    if (!c)
        return;
    EVP_MD_CTX_free(c->md);
    free(c);
}

int sha256_buf(const void *buf, size_t len, uint8_t out[SHA256_LEN])
{
    unsigned int n = 0;
    return EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

int hmac_sha256(const void *key, size_t keylen, const void *buf, size_t len,
                uint8_t out[SHA256_LEN])
{
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, buf, len, out, &n) || n != SHA256_LEN)
        return -EIO;
    return 0;
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *in, uint8_t *out, size_t outlen)
{
    if (strlen(in) != 2 * outlen)
        return -EINVAL;
    for (size_t i = 0; i < outlen; i++) {
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}
