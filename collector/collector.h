/* The collector: the event loop thread that runs every input, turns what they read into
 * canonical records and stages them per partition, flushing once per read. When a partition
 * is full under `block`, it pauses every input (sockets are no longer read, so the kernel
 * pushes back on senders) and retries until the staged records fit. Owns its inputs and the
 * producer side of the pipeline. */
#ifndef SPILLWAY_COLLECTOR_H
#define SPILLWAY_COLLECTOR_H

#include <stddef.h>

#include "collector/input.h"
#include "core/cfg.h"

struct collector;
struct pipeline;
struct event_base;

/* inputs: the config's `inputs:` list (borrowed for the collector's life). */
struct store;

/* st (may be NULL) keeps file-tail positions. */
struct collector *collector_new(struct event_base *base, struct pipeline *pl, struct store *st,
                                const struct cfg_list *inputs, const char *partition_key);
void collector_free(struct collector *c);

/* Starts every input. Returns 0, or a negative errno with a message in err. */
int collector_start(struct collector *c, char *err, size_t errlen);
/* Stops the inputs, then pushes what is staged into the rings, waiting until deadline_ns
 * (monotonic). Returns the number of records that could not be delivered to a ring. */
uint64_t collector_stop(struct collector *c, int64_t deadline_ns);

/* Records the inputs accepted that wait in the collector for room in the pipeline (block):
 * counted after each flush, read by `stats` from any thread. */
uint64_t collector_staged(const struct collector *c);
int collector_input_count(const struct collector *c);
struct input *collector_input(struct collector *c, int i);

/* For inputs, during a read: */
/* Marks the start of a read of one message (an HTTP request): takes the receive time once for
 * all its records. Its events without a partition key go to the next partition (round robin by
 * message), together. */
void collector_begin(struct collector *c);
/* The same for a read of several messages (datagrams): collector_next_message before each. */
void collector_begin_messages(struct collector *c);
/* The records that follow come from the next message of the read. */
void collector_next_message(struct collector *c);
/* The same for a read from one stream (a connection, a file): its events without a partition
 * key go to one partition, so they keep their order. */
void collector_begin_stream(struct collector *c, uint64_t stream);
/* Adds "name": value to the events of the current stream until the next begin (a file tail's
 * path); an event that has the field already keeps its own. NULL or "" name: none. */
void collector_field(struct collector *c, const char *name, const char *value);
/* A JSON object text (NDJSON line, datagram): normalized or dead-lettered. */
void collector_json(struct input *in, const char *json, size_t len);
/* As collector_json, for a sender that is told about what it cannot read (the http input):
 * returns 0 once the object is taken (staged, or dead-lettered as too large), or -EINVAL with
 * *err (a static reason) for text that is not a JSON object, neither counted nor staged. */
int collector_json_try(struct input *in, const char *json, size_t len, const char **err);
/* A record that cannot be parsed: dead-lettered with its raw text and reason. */
void collector_dead(struct input *in, const char *reason, const char *raw, size_t len);
/* Element tok of in->norm.tok (already parsed by the input, e.g. a JSON array's item). */
void collector_json_token(struct input *in, int tok);
/* For formats and parsers: a buffer to build one event in, appended from *at on (the buffer
 * may hold other bytes before it; never reset or trim it), the event passed on as
 * (buffer->data + *at, buffer->len - *at); valid until the next collector_* call that takes an
 * input, or collector_commit. It is the staging batch the previous event went to, room for the
 * record's header kept before *at, so that an event staged into the batch it was built in is not
 * copied again. */
struct buf *collector_buffer(struct collector *c, size_t *at);
/* A canonical event a format or parser built (valid JSON by construction), counted as received:
 * staged as it is, or dead-lettered as too large for the pipeline. */
void collector_event(struct input *in, const char *json, size_t len);
/* As collector_event, from a parser that knows where the partition key's value is: key[0..klen)
 * is its JSON text in json (a string with its quotes), or NULL when the event has no such member
 * (OTLP: the mapping writes every member, so the event is not searched again). */
void collector_event_keyed(struct input *in, const char *json, size_t len, const char *key,
                           size_t klen);
/* As collector_event, from a parser whose events' top-level members are all among names (a
 * static NULL-ended table): the event is searched for the partition key only when the key is
 * one of those names (syslog: a key such as trace_id cannot be in a syslog event at the top). */
void collector_event_among(struct input *in, const char *json, size_t len,
                           const char *const *names);
/* The partition key's field name ("" for round robin), borrowed for the collector's life. */
const char *collector_partition_key(const struct collector *c);
/* True while the pipeline is full under `block` (HTTP answers 503, UDP counts drops). */
int collector_paused(const struct collector *c);
/* Ends a read: moves the staged records into the rings (see above). */
void collector_commit(struct collector *c);
/* The same while stopping (the loop no longer runs): waits for room in the rings, so what an
 * input drains at the stop stays within memory_limit. Returns -1 once the time for reading is
 * over (half of what shutdown_timeout leaves): the input stops reading then. */
int collector_stop_commit(struct collector *c);
/* The receive time of the current read. */
const struct recv_time *collector_now(const struct collector *c);

#endif
