/* Normalization of a JSON object into the canonical event, by splicing rather than building a
 * tree: the members are copied as they are, with canonical fields first (timestamp, kind,
 * source), aliases renamed, trace ids lowercased, received_at last. Also builds dead-letter
 * records. Each input owns one struct normalizer (it holds reusable token space). */
#ifndef SPILLWAY_NORMALIZE_H
#define SPILLWAY_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/cfg.h"
#include "core/jsontok.h"
#include "core/timeutil.h"

struct normalizer {
    const char *source;               /* the input's name (borrowed) */
    const struct cfg_strmap *aliases; /* source key -> canonical key (borrowed) */
    uint64_t alias_first[4];          /* the first bytes of alias keys, as a bit set */
    uint64_t alias_lens;              /* their lengths (63 for any longer), as a bit set */
    const char *key;                  /* partition key field name (borrowed; "" = none) */
    struct jsontok tok;
    int *canon;             /* per member: index into the alias table, or -1 */
    unsigned char *escaped; /* per member: its key has a backslash escape */
    signed char *field;     /* per member: the canonical field its name is, or -1 */
    struct buf scratch;     /* unescaped names and key values */
    int canon_cap;
};

/* Receive time of the current read, formatted once per read rather than per event. */
struct recv_time {
    int64_t ns;
    char text[TIME_RFC3339_LEN + 1];
};

void recv_time_now(struct recv_time *rt);

void normalizer_init(struct normalizer *n, const char *source, const struct cfg_strmap *aliases,
                     const char *partition_key);
void normalizer_free(struct normalizer *n);

/* Appends the canonical form of the JSON object json[0..len) to out. On success returns 0 and
 * sets *has_hash / *hash from the partition key's value. On bad input returns -EINVAL with
 * *err set to a static reason, leaving out unchanged. */
int normalize_json(struct normalizer *n, const char *json, size_t len, const struct recv_time *rt,
                   struct buf *out, uint64_t *hash, int *has_hash, const char **err);

/* As normalize_json for an object already tokenized in n->tok at token obj (used by parsers
 * that take several events out of one document). */
int normalize_tokens(struct normalizer *n, int obj, const struct recv_time *rt, struct buf *out,
                     uint64_t *hash, int *has_hash);

/* Appends a dead-letter record: {"timestamp","source","received_at","error","raw"} (plus
 * "raw_base64" when raw is not valid UTF-8, so no byte is lost). */
int normalize_dead_letter(struct buf *out, const char *source, const struct recv_time *rt,
                          const char *error, const char *raw, size_t rawlen);

/* Appends a canonical timestamp for a JSON value text (string or number); returns -EINVAL when
 * it cannot be read as a time. */
/* The partition hash of a member's value as written: a string (quotes included) by its content
 * unescaped (in scratch when it has escapes), anything else by its text. Every way an event is
 * built hashes its key with this, so one key goes to one partition whatever the input. */
uint64_t normalize_value_hash(const char *text, size_t len, struct buf *scratch);

int normalize_timestamp(const char *val, size_t len, int is_string, struct buf *out);

#endif
