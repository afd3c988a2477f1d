#include "core/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/timeutil.h"

enum log_level log_threshold = LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int log_level_parse(const char *name, enum log_level *out)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

void log_set_fd(int fd)
{
    log_fd = fd;
}

/* Builds the whole line first so that concurrent threads never interleave within a line. */
void log_write(enum log_level level, const char *msg, const char *fmt, ...)
{
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(time_now_ns(), ts);

    json_t *obj = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        json_error_t err;
        obj = json_vpack_ex(&err, 0, fmt, ap);
        va_end(ap);
    }
    if (!obj || !json_is_object(obj)) {
        json_decref(obj);
        obj = json_object();
    }
    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "msg", json_string(msg));
    json_object_update_missing(line, obj);
    json_decref(obj);

    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (!text)
        return;
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps leaves room only for the NUL; we replace it */
    ssize_t w = write(log_fd, text, n + 1);
    (void)w;
    free(text);
}

int64_t log_limit_take(struct log_limit *lim)
{
    int64_t now = time_mono_ns();
    int64_t next = atomic_load_explicit(&lim->next_ns, memory_order_relaxed);
    if (now >= next && atomic_compare_exchange_strong(&lim->next_ns, &next, now + 1000000000)) {
        return (int64_t)atomic_exchange(&lim->suppressed, 0);
    }
    atomic_fetch_add_explicit(&lim->suppressed, 1, memory_order_relaxed);
    return -1;
}
