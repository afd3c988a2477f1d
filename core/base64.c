#include "core/base64.h"

#include <errno.h>
#include <stdint.h>

void base64_encode(char *o, const void *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = data;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = tbl[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        *o = '=';
    }
}

int base64_append(struct buf *out, const void *data, size_t len)
{
    size_t n = base64_encoded_len(len);
    if (buf_reserve(out, n))
        return -ENOMEM;
    base64_encode(out->data + out->len, data, len);
    out->len += n;
    return 0;
}

static int sextet(char x)
{
    return x >= 'A' && x <= 'Z'   ? x - 'A'
           : x >= 'a' && x <= 'z' ? x - 'a' + 26
           : x >= '0' && x <= '9' ? x - '0' + 52
           : x == '+' || x == '-' ? 62
           : x == '/' || x == '_' ? 63
                                  : -1;
}

ssize_t base64_decode(const char *s, size_t n, void *dst)
{
    unsigned char *o = dst;
    while (n && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int v = sextet(s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            *o++ = (unsigned char)(acc >> 16);
            *o++ = (unsigned char)(acc >> 8);
            *o++ = (unsigned char)acc;
        }
    }
    if (n % 4 == 2) {
        *o++ = (unsigned char)(acc >> 4);
    } else if (n % 4 == 3) {
        *o++ = (unsigned char)(acc >> 10);
        *o++ = (unsigned char)(acc >> 2);
    }
    return o - (unsigned char *)dst;
}
