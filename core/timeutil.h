/* Time helpers: clocks, the canonical RFC 3339 form (2026-11-27T10:00:00.123456Z) and the
 * parsing of source timestamps (RFC 3339 with any offset, epoch seconds/ms/us/ns). */
#ifndef SPILLWAY_TIMEUTIL_H
#define SPILLWAY_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#define TIME_RFC3339_LEN 27 /* "YYYY-MM-DDTHH:MM:SS.ffffffZ" without the NUL */

int64_t time_now_ns(void);  /* CLOCK_REALTIME */
int64_t time_mono_ns(void); /* CLOCK_MONOTONIC */

/* A duration in nanoseconds as a struct timeval (libevent, select). */
static inline struct timeval time_timeval(int64_t ns)
{
    return (struct timeval){(time_t)(ns / 1000000000), (suseconds_t)(ns % 1000000000 / 1000)};
}

/* Writes TIME_RFC3339_LEN chars plus a NUL into out. */
void time_format_rfc3339(int64_t unix_ns, char *out);

/* Parses an RFC 3339 / ISO 8601 date-time ("T" or space separator, optional fraction, "Z" or
 * +hh:mm / +hhmm offset) into Unix nanoseconds. Returns 0 or -EINVAL. */
int time_parse_rfc3339(const char *s, size_t len, int64_t *unix_ns);

/* Interprets an epoch number by magnitude: seconds (fraction allowed), ms, us or ns. */
int time_from_epoch(double v, int64_t *unix_ns);

/* As time_from_epoch for a JSON number's text, exactly (no binary rounding of the fraction):
 * "1712345678.901" and 1712345678901 (ms) are the same instant to the nanosecond. */
int time_from_epoch_text(const char *s, size_t len, int64_t *unix_ns);

/* True when s is already in the canonical form (and a real date and time). */
int time_is_canonical(const char *s, size_t len);

/* Parses "500ms", "10s", "15m", "1h", "2d" or a bare number of seconds. Returns 0 or -EINVAL. */
int time_parse_duration(const char *s, int64_t *ns);

#endif
