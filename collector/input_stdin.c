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
#include "collector/format.h"
#include "collector/input.h"
#include "core/log.h"

#define CHUNK (256 * 1024)

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
    struct format_stream fs;
    char *buf;
    int paused;
    int done;
};

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
    collector_begin_stream(s->in->col, 1); /* one stream: its events keep their order */
    ssize_t n = read(0, s->buf, CHUNK);
    if (n > 0) {
        counter_add(&s->in->stats.bytes, (uint64_t)n);
        format_stream_feed(&s->fs, s->buf, (size_t)n);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        format_stream_finish(&s->fs);
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
    format_stream_init(&s->fs, in, format_at(s->o->format), (size_t)s->o->common.max_event_size);
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
    format_stream_free(&s->fs);
    free(s->buf);
    free(s);
    in->priv = NULL;
}

static const struct cfg_key stdin_keys[] = {
    INPUT_COMMON_KEYS(struct stdin_opts),
    FORMAT_KEY(struct stdin_opts, "ndjson"),
    {"exit_on_eof", CFG_BOOL, offsetof(struct stdin_opts, exit_on_eof), "true",
     "At the end of input, stop (draining everything to the sinks first)."},
    {0},
};

const struct input_type input_stdin = {
    .cfg = {.name = "stdin",
            .desc = "Standard input, in any format (NDJSON, plain lines, syslog, ...), for "
                    "some_app | spillway run -c FILE.",
            .size = sizeof(struct stdin_opts),
            .keys = stdin_keys},
    .start = stdin_start,
    .pause = stdin_pause,
    .resume = stdin_resume,
    .stop = stdin_stop,
    .destroy = stdin_destroy,
};
