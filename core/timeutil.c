#include "core/timeutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil), so no timegm()/TZ dependence and no locking. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

void time_format_rfc3339(int64_t unix_ns, char *out)
{
    int64_t secs = unix_ns / 1000000000;
    int64_t frac = unix_ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        secs--;
    }
    int64_t days = secs / 86400;
    int64_t rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999;
    unsigned us = (unsigned)(frac / 1000);
    put2(out, (unsigned)y / 100);
    put2(out + 2, (unsigned)y % 100);
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, d);
    out[10] = 'T';
    put2(out + 11, (unsigned)(rem / 3600));
    out[13] = ':';
    put2(out + 14, (unsigned)(rem / 60 % 60));
    out[16] = ':';
    put2(out + 17, (unsigned)(rem % 60));
    out[19] = '.';
    put2(out + 20, us / 10000);
    put2(out + 22, us / 100 % 100);
    put2(out + 24, us % 100);
    out[26] = 'Z';
    out[27] = '\0';
}

static int digits(const char *s, size_t len, size_t at, int n, unsigned *out)
{
    unsigned v = 0;
    if (at + (size_t)n > len)
        return -1;
    for (int i = 0; i < n; i++) {
        char c = s[at + (size_t)i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (unsigned)(c - '0');
    }
    *out = v;
    return 0;
}

int time_parse_rfc3339(const char *s, size_t len, int64_t *unix_ns)
{
    unsigned y, mo, d, h, mi, se;
    if (digits(s, len, 0, 4, &y) || len < 19 || s[4] != '-' || digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || digits(s, len, 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s, len, 11, 2, &h) || s[13] != ':' || digits(s, len, 14, 2, &mi) || s[16] != ':' ||
        digits(s, len, 17, 2, &se))
        return -EINVAL;
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || se > 60)
        return -EINVAL;
    size_t i = 19;
    int64_t frac_ns = 0;
    if (i < len && (s[i] == '.' || s[i] == ',')) {
        i++;
        int64_t scale = 100000000;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            frac_ns += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start)
            return -EINVAL;
    }
    int64_t offset = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        unsigned oh, om;
        i++;
        if (digits(s, len, i, 2, &oh))
            return -EINVAL;
        i += 2;
        if (i < len && s[i] == ':')
            i++;
        if (digits(s, len, i, 2, &om))
            return -EINVAL;
        i += 2;
        if (oh > 23 || om > 59)
            return -EINVAL;
        offset = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return -EINVAL; /* a time without a zone is ambiguous: the caller falls back */
    }
    if (i != len)
        return -EINVAL;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    /* Nanoseconds in 64 bits reach from 1677-09-21T00:12:43.145224192Z to
     * 2262-04-11T23:47:16.854775807Z. */
    if (secs < -9223372036LL || secs > 9223372036LL ||
        (secs == 9223372036LL && frac_ns > 854775807))
        return -EINVAL;
    *unix_ns = secs * 1000000000 + frac_ns;
    return 0;
}

int time_from_epoch(double v, int64_t *unix_ns)
{
    if (!isfinite(v) || v < 0)
        return -EINVAL;
    double ns;
    if (v < 1e11)
        ns = v * 1e9; /* seconds until year 5138 */
    else if (v < 1e14)
        ns = v * 1e6; /* milliseconds */
    else if (v < 1e17)
        ns = v * 1e3; /* microseconds */
    else
        ns = v;
    if (ns > 9.2e18)
        return -EINVAL;
    *unix_ns = (int64_t)ns;
    return 0;
}

/* Checked on every event that carries a timestamp, so without the general parser: the shape,
 * then the calendar. Years 1678 to 2261 are always within the nanosecond range; the two at its
 * edges go through time_parse_rfc3339(). */
int time_is_canonical(const char *s, size_t len)
{
    static const unsigned char at[20] = {0,  1,  2,  3,  5,  6,  8,  9,  11, 12,
                                         14, 15, 17, 18, 20, 21, 22, 23, 24, 25};
    if (len != TIME_RFC3339_LEN || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != '.' || s[26] != 'Z')
        return 0;
    unsigned d[20];
    for (int i = 0; i < 20; i++) {
        d[i] = (unsigned)(unsigned char)s[at[i]] - '0';
        if (d[i] > 9)
            return 0;
    }
    unsigned y = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3], mo = d[4] * 10 + d[5],
             day = d[6] * 10 + d[7];
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || day < 1 || day > mdays[mo - 1] || d[8] * 10 + d[9] > 23 || d[10] > 5 ||
        d[12] * 10 + d[13] > 60)
        return 0;
    if (mo == 2 && day == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 0;
    if (y > 1677 && y < 2262)
        return 1;
    int64_t ns;
    return time_parse_rfc3339(s, len, &ns) == 0;
}

int time_from_epoch_text(const char *s, size_t len, int64_t *unix_ns)
{
    size_t i = 0;
    uint64_t ip = 0;
    int idigits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (++idigits > 19)
            return -EINVAL;
        ip = ip * 10 + (uint64_t)(s[i++] - '0');
    }
    if (idigits == 0)
        return -EINVAL;
    /* Up to nine fraction digits, kept as an exact integer of nanounits. */
    uint64_t frac = 0;
    int fdigits = 0;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (fdigits < 9) {
                frac = frac * 10 + (uint64_t)(s[i] - '0');
                fdigits++;
            }
            i++;
        }
    }
    if (i != len) { /* an exponent or anything else: the approximate path */
        char tmp[64];
        if (len >= sizeof(tmp))
            return -EINVAL;
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        char *end;
        double v = strtod(tmp, &end);
        if (*end)
            return -EINVAL;
        return time_from_epoch(v, unix_ns);
    }
    for (; fdigits < 9; fdigits++)
        frac *= 10; /* now in 1e-9 units of the integer part */
    uint64_t ns;
    if (ip < 100000000000ULL) { /* seconds */
        if (ip > 9223372035ULL)
            return -EINVAL;
        ns = ip * 1000000000ULL + frac;
    } else if (ip < 100000000000000ULL) { /* milliseconds */
        ns = ip * 1000000ULL + frac / 1000;
    } else if (ip < 100000000000000000ULL) { /* microseconds */
        ns = ip * 1000ULL + frac / 1000000;
    } else {
        if (ip > 9223372036854775807ULL)
            return -EINVAL;
        ns = ip;
    }
    *unix_ns = (int64_t)ns;
    return 0;
}

int time_parse_duration(const char *s, int64_t *ns)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0 || !isfinite(v))
        return -EINVAL;
    double mult;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1e9;
    else if (strcmp(end, "ms") == 0)
        mult = 1e6;
    else if (strcmp(end, "us") == 0)
        mult = 1e3;
    else if (strcmp(end, "m") == 0)
        mult = 60e9;
    else if (strcmp(end, "h") == 0)
        mult = 3600e9;
    else if (strcmp(end, "d") == 0)
        mult = 86400e9;
    else
        return -EINVAL;
    if (v * mult > 9.2e18)
        return -EINVAL;
    *ns = (int64_t)(v * mult);
    return 0;
}
