/* `stdin` input: `some_app | spillway run -c conf.yaml`. NDJSON, plain lines or syslog. At the
 * end of input spillway stops (draining as on SIGTERM) unless exit_on_eof is false. A regular
 * file as stdin (`< file`), which epoll cannot watch, is read from a zero timer instead. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/collector.h"
#include "collector/framer.h"
#include "collector/input.h"
#include "core/log.h"

#define CHUNK (256 * 1024)

enum { SFMT_NDJSON, SFMT_LINES, SFMT_SYSLOG };
static const char *const stdin_formats[] = {"ndjson", "lines", "syslog", NULL};

struct stdin_opts {
    struct input_common common;
    int format;
    int exit_on_eof;
};

struct sin {
    struct input *in;
    const struct stdin_opts *o;
    struct event *ev;
    int is_file; /* read from a timer rather than readiness */
    struct framer fr;
    char *buf;
    int paused;
    int done;
};

static void on_line(void *ud, const char *line, size_t len, int flags)
{
    struct sin *s = ud;
    if (flags & FRAME_TRUNCATED)
        collector_dead(s->in, "too large", line, len);
    else if (s->o->format == SFMT_SYSLOG)
        collector_syslog(s->in, line, len);
    else if (s->o->format == SFMT_LINES)
        collector_line(s->in, line, len);
    else
        collector_json(s->in, line, len);
}

static void arm(struct sin *s)
{
    if (s->done || s->paused)
        return;
    if (s->is_file)
        event_active(s->ev, EV_TIMEOUT, 0);
    else
        event_add(s->ev, NULL);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct sin *s = arg;
    collector_begin(s->in->col);
    ssize_t n = read(0, s->buf, CHUNK);
    if (n > 0) {
        counter_add(&s->in->stats.bytes, (uint64_t)n);
        framer_feed(&s->fr, s->buf, (size_t)n, on_line, s);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        framer_finish(&s->fr, on_line, s);
        s->done = 1;
        event_del(s->ev);
    }
    collector_commit(s->in->col);
    if (s->done) {
        log_info("end of standard input", "{s:s, s:b}", "input", s->in->name, "stopping",
                 s->o->exit_on_eof);
        if (s->o->exit_on_eof)
            event_base_loopbreak(s->in->base); /* the same drain as SIGTERM */
        return;
    }
    if (s->is_file)
        arm(s);
}

static int stdin_start(struct input *in, char *err, size_t errlen)
{
    struct sin *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    in->priv = s;
    s->in = in;
    s->o = in->opts;
    s->buf = malloc(CHUNK);
    if (!s->buf)
        return -ENOMEM;
    if (s->o->format == SFMT_SYSLOG)
        framer_init_syslog(&s->fr, (size_t)s->o->common.max_event_size);
    else
        framer_init(&s->fr, (size_t)s->o->common.max_event_size);
    struct stat st;
    s->is_file = fstat(0, &st) == 0 && S_ISREG(st.st_mode);
    if (!s->is_file)
        fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    s->ev =
        event_new(in->base, s->is_file ? -1 : 0, s->is_file ? 0 : EV_READ | EV_PERSIST, on_read, s);
    if (!s->ev)
        return -ENOMEM;
    arm(s);
    (void)err;
    (void)errlen;
    return 0;
}

static void stdin_pause(struct input *in)
{
    struct sin *s = in->priv;
    if (!s || s->paused)
        return;
    s->paused = 1;
    event_del(s->ev);
}

static void stdin_resume(struct input *in)
{
    struct sin *s = in->priv;
    if (!s || !s->paused)
        return;
    s->paused = 0;
    arm(s);
}

static void stdin_stop(struct input *in)
{
    struct sin *s = in->priv;
    if (!s || s->done)
        return;
    s->done = 1;
    event_del(s->ev);
}

static void stdin_destroy(struct input *in)
{
    struct sin *s = in->priv;
    if (!s)
        return;
    if (s->ev)
        event_free(s->ev);
    framer_free(&s->fr);
    free(s->buf);
    free(s);
    in->priv = NULL;
}

static const struct input_ops stdin_ops = {
    .start = stdin_start,
    .pause = stdin_pause,
    .resume = stdin_resume,
    .stop = stdin_stop,
    .destroy = stdin_destroy,
};

static const struct cfg_key stdin_keys[] = {
    INPUT_COMMON_KEYS(struct stdin_opts),
    {"format", CFG_ENUM, offsetof(struct stdin_opts, format), "ndjson",
     "ndjson: a JSON object per line; lines: each line is a message; syslog: syslog lines.", 0, 0,
     0, stdin_formats},
    {"exit_on_eof", CFG_BOOL, offsetof(struct stdin_opts, exit_on_eof), "true",
     "At the end of input, stop (draining everything to the sinks first)."},
    {0},
};

const struct cfg_section input_stdin_section = {
    .name = "stdin",
    .desc = "Standard input: NDJSON or plain lines, for some_app | spillway run -c FILE.",
    .size = sizeof(struct stdin_opts),
    .keys = stdin_keys,
    .impl = &stdin_ops,
};
