#include "collector/forward_reply.h"

#include <errno.h>
#include <msgpack.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

static int write_buf(void *data, const char *p, size_t len)
{
    return buf_append(data, p, len) ? -1 : 0;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

int forward_reply_helo(struct buf *out, unsigned char nonce[FORWARD_NONCE])
{
    if (RAND_bytes(nonce, FORWARD_NONCE) != 1)
        return -EIO;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, write_buf);
    size_t at = out->len;
    int rc = msgpack_pack_array(&pk, 2);
    pack_str(&pk, "HELO", 4);
    rc |= msgpack_pack_map(&pk, 3);
    pack_str(&pk, "nonce", 5);
    rc |= msgpack_pack_bin(&pk, FORWARD_NONCE);
    rc |= msgpack_pack_bin_body(&pk, nonce, FORWARD_NONCE);
    pack_str(&pk, "auth", 4);
    pack_str(&pk, "", 0);
    pack_str(&pk, "keepalive", 9);
    rc |= msgpack_pack_true(&pk);
    if (rc) {
        out->len = at;
        return -ENOMEM;
    }
    return 0;
}

/* hex(SHA-512(a b c d)) into hex (129 bytes). */
static int digest4(const char *a, size_t an, const char *b, size_t bn, const unsigned char *c,
                   size_t cn, const char *d, size_t dn, char hex[129])
{
    unsigned char md[64];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) && EVP_DigestUpdate(ctx, a, an) &&
             EVP_DigestUpdate(ctx, b, bn) && EVP_DigestUpdate(ctx, c, cn) &&
             EVP_DigestUpdate(ctx, d, dn) && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 64;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -EIO;
    static const char x[] = "0123456789abcdef";
    for (int i = 0; i < 64; i++) {
        hex[2 * i] = x[md[i] >> 4];
        hex[2 * i + 1] = x[md[i] & 15];
    }
    hex[128] = '\0';
    return 0;
}

int forward_reply_pong(struct buf *out, const struct forward_ping *p,
                       const unsigned char nonce[FORWARD_NONCE], const char *shared_key,
                       const char *self_hostname)
{
    char want[129], mine[129];
    size_t kn = strlen(shared_key), hn = strlen(self_hostname);
    int ok = digest4(p->salt, p->salt_len, p->hostname, p->hostname_len, nonce, FORWARD_NONCE,
                     shared_key, kn, want) == 0 &&
             p->digest_len == 128 && CRYPTO_memcmp(want, p->digest, 128) == 0;
    if (digest4(p->salt, p->salt_len, self_hostname, hn, nonce, FORWARD_NONCE, shared_key, kn,
                mine))
        memset(mine, '0', 128);
    const char *reason = ok ? "" : "shared_key mismatch";
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, write_buf);
    msgpack_pack_array(&pk, 5);
    pack_str(&pk, "PONG", 4);
    if (ok)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    pack_str(&pk, reason, strlen(reason));
    pack_str(&pk, self_hostname, hn);
    pack_str(&pk, ok ? mine : "", ok ? 128 : 0);
    return ok ? 0 : -EACCES;
}

int forward_reply_ack(struct buf *out, const char *chunk, size_t len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, write_buf);
    int rc = msgpack_pack_map(&pk, 1);
    pack_str(&pk, "ack", 3);
    pack_str(&pk, chunk, len);
    return rc ? -ENOMEM : 0;
}
