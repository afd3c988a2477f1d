/* Formats: how the bytes a byte-stream input reads (tcp, unix, udp, unix_dgram, tail, stdin)
 * become canonical events. One registry (format.c) of typed descriptors, one file each
 * (format_<name>.c): the name an input's `format` key takes, how a stream is cut into messages
 * (the framing; a datagram is always one message), and the decoder of one message, which hands
 * what it makes to the collector. Every byte-stream input takes every format. */
#ifndef SPILLWAY_FORMAT_H
#define SPILLWAY_FORMAT_H

#include <stddef.h>

#include "collector/framer.h"
#include "core/cfg.h"

struct input;
/* A format's state per input, across messages (GELF: chunks waiting for the rest of their
 * message). Each format that keeps one defines the struct in its own file. */
struct format_state;

struct format {
    struct cfg_choice id; /* name, the older spelling still accepted, one-line description */
    enum framing framing; /* how a byte stream is cut into messages */
    /* Decodes one message (a line, a frame, a datagram; len > 0, without its delimiter) into
     * events and hands each to the collector, which counts it as received: collector_event()
     * for an event built, collector_json() for a JSON object to normalize, collector_dead()
     * for what cannot be read. The message is the caller's, valid during the call. NULL for
     * `auto`, which picks another format instead. */
    void (*decode)(struct input *in, const char *msg, size_t len);
    /* How many records a message holds (statsd: one per line), to count a datagram dropped
     * unread while the pipeline is full; NULL: one. */
    size_t (*records)(const char *msg, size_t len);
    /* `auto` only: the format of a stream (or a datagram) whose first byte is first. */
    const struct format *(*detect)(char first);
    /* Optional, both or neither: the format's state per input, made on the first message that
     * asks for it (format_state_of) and freed with the input (format_state_close). NULL on
     * failure (out of memory: the decoder dead-letters the message). */
    struct format_state *(*state_new)(struct input *in);
    void (*state_free)(struct format_state *st);
    /* A datagram is binary (compressed, chunked): taken as it came, with no trailing newline or
     * NUL trimmed; the decoder does what trimming it needs. */
    int binary;
};

/* The registry: a format is its own file, which defines its descriptor, and one line here. The
 * order is the config reference's. */
#define FORMATS(X)                                                                                 \
    X(format_ndjson)                                                                               \
    X(format_syslog)                                                                               \
    X(format_statsd)                                                                               \
    X(format_line)                                                                                 \
    X(format_gelf)                                                                                 \
    X(format_auto)

#define FORMAT_DECLARE(f) extern const struct format f;
FORMATS(FORMAT_DECLARE)

/* Every format, NULL-terminated (format.c, from FORMATS). */
extern const struct format *const formats[];

/* For an input's `format` key (struct cfg_key.choice): format i's name, or NULL. */
const struct cfg_choice *format_choice(int i);
/* The format a `format` key's value (an index into the registry) names. */
const struct format *format_at(int i);
/* The format to read a stream or datagram with, once its first byte is known: f itself, or
 * for `auto` the one that byte points at. */
const struct format *format_for(const struct format *f, char first);
/* Input in's state for format f (which has state_new), made on the first call; the input owns
 * it (in->fstate) until format_state_close. NULL when it cannot be made. */
struct format_state *format_state_of(struct input *in, const struct format *f);
/* Frees in's format state, if any (the collector, as it frees the input). */
void format_state_close(struct input *in);
/* Records in a message of format f (see records above). */
size_t format_records(const struct format *f, const char *msg, size_t len);

/* A byte stream read in one format (a connection, a file, stdin): its framer is set up once the
 * first byte has told `auto` which format it is. Each message goes to the format's decoder; one
 * cut at the input's max_event_size is dead-lettered as "too large". */
struct format_stream {
    struct input *in;
    const struct format *fmt; /* as configured until the first byte, then the one read */
    int started;
    size_t max;
    struct framer fr;
};

void format_stream_init(struct format_stream *s, struct input *in, const struct format *f,
                        size_t max);
void format_stream_feed(struct format_stream *s, const char *data, size_t len);
/* End of stream: a last message without its delimiter is still a message. */
void format_stream_finish(struct format_stream *s);
void format_stream_free(struct format_stream *s);
/* Bytes read and not yet part of a whole message (carried to the next read). */
static inline size_t format_stream_carried(const struct format_stream *s)
{
    return s->fr.partial.len;
}

/* clang-format off */
/* The `format` key of a byte-stream input whose options struct `type` has `int format`. */
#define FORMAT_KEY(type, def)                                                                      \
    {"format", CFG_ENUM, offsetof(type, format), def,                                              \
     "How the bytes read become events.", 0, 0, 0, NULL, NULL, format_choice}
/* clang-format on */

#endif
