/* Structured logging: one JSON object per line on stderr ({"ts","level","msg",fields...}).
 * Fields use jansson's json_pack format ("{s:s, s:i}"), evaluated only when the level is on.
 * Anything an input can trigger at line rate goes through a log_limit (at most once per second,
 * with the count of what was suppressed). Thread-safe: one write(2) per line. */
#ifndef SPILLWAY_LOG_H
#define SPILLWAY_LOG_H

#include <jansson.h> /* json_int_t for "I" fields */
#include <stdatomic.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

extern enum log_level log_threshold;

/* Returns 0, or -EINVAL for an unknown name ("debug", "info", "warn", "error", "off"). */
int log_level_parse(const char *name, enum log_level *out);
void log_set_level(enum log_level level);
/* Redirects output (tests); fd is not closed by the logger. */
void log_set_fd(int fd);

/* fmt may be NULL (no fields); otherwise a json_pack format producing an object. */
void log_write(enum log_level level, const char *msg, const char *fmt, ...);

#define LOG_AT(level, msg, ...)                                                                    \
    do {                                                                                           \
        if ((level) >= log_threshold)                                                              \
            log_write((level), (msg), __VA_ARGS__);                                                \
    } while (0)
#define log_debug(msg, ...) LOG_AT(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  LOG_AT(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  LOG_AT(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) LOG_AT(LOG_ERROR, msg, __VA_ARGS__)

/* A once-per-second gate for logs an input can trigger. Zero-initialize. */
struct log_limit {
    _Atomic int64_t next_ns;
    _Atomic uint64_t suppressed;
};

/* Returns the number of suppressed messages since the last one (>= 0) when this message may be
 * logged now, or -1 when it must be suppressed (and is counted). */
int64_t log_limit_take(struct log_limit *lim);

#endif
