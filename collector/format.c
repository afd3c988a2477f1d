#include "collector/format.h"

#include "collector/collector.h"

#define FORMAT_ROW(f) &f,
const struct format *const formats[] = {FORMATS(FORMAT_ROW) NULL};

const struct cfg_choice *format_choice(int i)
{
    return formats[i] ? &formats[i]->id : NULL;
}

const struct format *format_at(int i)
{
    return formats[i];
}

const struct format *format_for(const struct format *f, char first)
{
    return f->detect ? f->detect(first) : f;
}

struct format_state *format_state_of(struct input *in, const struct format *f)
{
    if (!in->fstate && f->state_new) {
        in->fstate = f->state_new(in);
        in->fstate_fmt = in->fstate ? f : NULL;
    }
    return in->fstate_fmt == f ? in->fstate : NULL;
}

void format_state_close(struct input *in)
{
    if (in->fstate)
        in->fstate_fmt->state_free(in->fstate);
    in->fstate = NULL;
    in->fstate_fmt = NULL;
}

size_t format_records(const struct format *f, const char *msg, size_t len)
{
    return f->records ? f->records(msg, len) : 1;
}

void format_stream_init(struct format_stream *s, struct input *in, const struct format *f,
                        size_t max)
{
    *s = (struct format_stream){.in = in, .fmt = f, .max = max};
}

static void on_message(void *ud, const char *msg, size_t len, int flags)
{
    struct format_stream *s = ud;
    if (flags & FRAME_TRUNCATED)
        collector_dead(s->in, "too large", msg, len);
    else
        s->fmt->decode(s->in, msg, len);
}

void format_stream_feed(struct format_stream *s, const char *data, size_t len)
{
    if (!len)
        return;
    if (!s->started) {
        s->fmt = format_for(s->fmt, data[0]);
        framer_init(&s->fr, s->fmt->framing, s->max);
        s->started = 1;
    }
    framer_feed(&s->fr, data, len, on_message, s);
}

void format_stream_finish(struct format_stream *s)
{
    if (s->started)
        framer_finish(&s->fr, on_message, s);
}

void format_stream_free(struct format_stream *s)
{
    framer_free(&s->fr);
}

/* `auto`: '<' (a PRI) or a digit (RFC 6587 octet counting) starts syslog; anything else is
 * taken for NDJSON. Decided once per connection, file or stdin, and per datagram. */
static const struct format *detect(char first)
{
    return first == '<' || (first >= '1' && first <= '9') ? &format_syslog : &format_ndjson;
}

const struct format format_auto = {
    .id = {"auto", NULL,
           "syslog when the stream (or datagram) starts with '<' or a digit, else ndjson; "
           "decided per connection, file, stdin or datagram."},
    .framing = FRAMING_LINE,
    .detect = detect,
};
