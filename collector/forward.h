/* The Fluent forward protocol v1 decoder: a byte stream (one connection) of msgpack messages,
 * decoded by msgpack-c's streaming unpacker (a message split across reads waits for the rest,
 * up to a bound on buffered bytes), in every mode: Message [tag, time, record, option?],
 * Forward [tag, [[time, record], ...], option?], PackedForward [tag, entries (msgpack
 * concatenated), option?] and CompressedPackedForward (the entries gzip-compressed, option
 * {"compressed": "gzip"}). Each record becomes one canonical event, handed to the caller with
 * the message's `chunk` to acknowledge once it is all handed over; the handshake's PING is
 * handed over too (forward_auth.h checks it). Only the forward modules include msgpack.h. The
 * decoder is pure over its caller's callbacks (no socket, no collector), fuzzed on its own. */
#ifndef SPILLWAY_FORWARD_H
#define SPILLWAY_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "collector/normalize.h"
#include "core/cfg.h"

struct forward_decoder;

/* A PING of the shared-key handshake: its strings, valid during the call. */
struct forward_ping {
    const char *hostname, *salt, *digest, *username, *password;
    size_t hostname_len, salt_len, digest_len, username_len, password_len;
};

/* What the decoder hands over, in the order of the stream; ud is the caller's. */
struct forward_handler {
    /* A canonical event (valid JSON, valid during the call) and its partition key's value:
     * key[0..klen) is its JSON text in json (a string with its quotes), NULL when it has none. */
    void (*event)(void *ud, const char *json, size_t len, const char *key, size_t klen);
    /* What cannot be read (a message of no mode, an entry that is not [time, record], entries
     * that do not inflate or inflate past the bound), with its raw bytes. The stream goes on. */
    void (*dead)(void *ud, const char *reason, const char *raw, size_t len);
    /* A message with the option `chunk` was handed over whole: acknowledge it. */
    void (*ack)(void *ud, const char *chunk, size_t len);
    /* A PING; 0 authenticates the stream, below 0 refuses it (the feed then ends it). NULL: a
     * PING is a message of no mode. */
    int (*ping)(void *ud, const struct forward_ping *p);
};

struct forward_config {
    const char *source;               /* the input's name (borrowed) */
    const struct cfg_strmap *aliases; /* record field names mapped to canonical ones */
    const char *partition_key;        /* the field whose value picks the partition ("": none) */
    size_t max_message;               /* bytes of one message (and of inflated entries) */
    int need_ping;                    /* shared-key auth: nothing but a PING before one passed */
};

/* NULL when out of memory. cfg and h are borrowed for the decoder's life. */
struct forward_decoder *forward_decoder_new(const struct forward_config *cfg,
                                            const struct forward_handler *h, void *ud);
void forward_decoder_free(struct forward_decoder *d);

/* Decodes what data[0..len) completes, at receive time rt (borrowed during the call). Returns
 * 0 (a message cut short waits for the next feed), or -EPROTO with *err (a static reason) when
 * the stream cannot go on: msgpack that cannot be read, a message over max_message, a length
 * no memory can hold (a 2 GB map), a message before the PING that auth wants, a PING refused.
 * *raw, *rawlen then hold the first bytes of what could not be read. */
int forward_feed(struct forward_decoder *d, const char *data, size_t len,
                 const struct recv_time *rt, const char **err, const char **raw, size_t *rawlen);

/* Bytes buffered of a message not yet whole (what a connection closed in its middle leaves),
 * and where they are (valid until the next feed). */
size_t forward_partial(const struct forward_decoder *d, const char **raw);

#endif
