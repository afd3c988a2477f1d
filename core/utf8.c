#include "core/utf8.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

size_t utf8_seq_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return len >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (len < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && s[1] > 0x9F)
            return 0; /* UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (len < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0;
        if (c == 0xF4 && s[1] > 0x8F)
            return 0;
        return 4;
    }
    return 0;
}

/* The offset of the first byte that does not start a valid sequence (or, unless nul_ok, is NUL),
 * or len. Inlined into each caller, so that nul_ok costs nothing where it is 1. */
static inline __attribute__((always_inline)) size_t check(const char *str, size_t len, int nul_ok)
{
    const unsigned char *s = (const unsigned char *)str;
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, sixteen or eight bytes at a time: almost all log text is ASCII. */
#ifdef __SSE2__
        const __m128i zero = _mm_setzero_si128();
        while (i + 16 <= len) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            if (!nul_ok)
                v = _mm_or_si128(v, _mm_cmpeq_epi8(v, zero)); /* a NUL as a high bit */
            if (_mm_movemask_epi8(v))
                break;
            i += 16;
        }
#endif
        while (i + 8 <= len) {
            uint64_t w;
            __builtin_memcpy(&w, s + i, 8);
            if ((w & highs) || (!nul_ok && ((w - ones) & ~w & highs)))
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (s[i] < 0x80) {
            if (!nul_ok && !s[i])
                return i;
            i++;
            continue;
        }
        size_t n = utf8_seq_len(s + i, len - i);
        if (!n)
            return i;
        i += n;
    }
    return len;
}

size_t utf8_check(const char *str, size_t len)
{
    return check(str, len, 1);
}

size_t utf8_check_text(const char *str, size_t len)
{
    return check(str, len, 0);
}

size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
