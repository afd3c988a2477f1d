/* The store: <data_dir>/spillway.db (SQLite, WAL, schema versioned with migrations).
 * It holds the route table reconciled from the config, runtime overrides (sampling dial,
 * enable/disable) with optional expiry, the spillway.state key-values, file-tail positions,
 * journald cursors, spill offsets and the admin audit log. Only this module includes sqlite3.h.
 * Calls are thread-safe (one serialized connection per struct store) but they do disk I/O: never
 * call them from a router worker's hot path; the control thread does the writes. The caller owns
 * the struct store. (spillway.state, the key-values scripts share, is served from memory by
 * router/script_state.h; the store only persists it.) */
#ifndef SPILLWAY_STORE_H
#define SPILLWAY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct store;

/* Opens (creating) the database, migrates the schema and checks that it is readable and
 * writable. NULL with a clear message in err for a corrupt, locked or read-only database. */
struct store *store_open(const char *path, char *err, size_t errlen);
/* Another connection to s's (already opened and migrated) database, for a thread that must
 * never wait on SQLite: the collector's event loop. Its statements fail at once when another
 * connection or process holds the write lock, instead of waiting the busy timeout; the caller
 * tries again later. The caller owns the result and closes it before s. */
struct store *store_open_nowait(const struct store *s, char *err, size_t errlen);
void store_close(struct store *s);
const char *store_path(const struct store *s);

/* One configured route, as reconciled into the routes table. */
struct store_route {
    const char *name;
    const char *script;
    double sample_rate;
    const char *sample_key;
    const char *sinks;  /* JSON array text */
    const char *shadow; /* JSON array text */
    int enabled;
    int stop;
};

/* Makes the routes table equal to the config's routes (in order); overrides of routes that no
 * longer exist are removed. Returns 0 or a negative errno. */
int store_routes_reconcile(struct store *s, const struct store_route *routes, int n);

/* A runtime override of a route value ("sample_rate" or "enabled"). */
struct store_override {
    char route[256];
    char key[32];
    char value[64];
    int64_t expires_ns; /* unix ns; 0: never */
    int64_t set_ns;
    int64_t uid;
};

int store_override_set(struct store *s, const struct store_override *o);
int store_override_clear(struct store *s, const char *route, const char *key);
/* Calls fn for every override, expired or not. */
int store_overrides_each(struct store *s, void (*fn)(void *ud, const struct store_override *o),
                         void *ud);

/* spillway.state key-values. get returns 1 (found, value appended to out), 0, or <0. */
int store_kv_get(struct store *s, const char *key, size_t klen, struct buf *out);
/* val NULL deletes. */
int store_kv_set(struct store *s, const char *key, size_t klen, const char *val, size_t vlen);
int store_kv_each(struct store *s,
                  void (*fn)(void *ud, const char *k, size_t kl, const char *v, size_t vl),
                  void *ud);

/* File-tail positions. get returns 1 found, 0 not, <0 error. */
int store_position_get(struct store *s, const char *input, const char *path, uint64_t *inode,
                       uint64_t *offset);
int store_position_set(struct store *s, const char *input, const char *path, uint64_t inode,
                       uint64_t offset);
/* The newest position of an input's file with this inode, whatever its path then (a file renamed
 * while spillway was stopped): 1 found (its path appended to path), 0 not, <0 error. */
int store_position_by_inode(struct store *s, const char *input, uint64_t inode, struct buf *path,
                            uint64_t *offset);
int store_position_delete(struct store *s, const char *input, const char *path);

/* A journald input's cursor (sd-journal's text for its last entry handed on). get returns 1
 * (found, appended to cursor), 0 or <0; set returns 0 or <0. */
int store_cursor_get(struct store *s, const char *input, struct buf *cursor);
int store_cursor_set(struct store *s, const char *input, const char *cursor);

/* Spill replay offsets: get returns 1 found, 0 not, <0 error. mark (three numbers kept with the
 * offset: the replay's mark from before it, a run and a sequence number, pipeline/spill_key.h,
 * then how many records of the Kafka message at the offset were replayed already; 0 when never
 * set) may be NULL. */
#define STORE_MARK 3
int store_offset_get(struct store *s, const char *topic, int partition, int64_t *offset,
                     uint64_t mark[STORE_MARK]);
int store_offset_set(struct store *s, const char *topic, int partition, int64_t offset,
                     const uint64_t mark[STORE_MARK]);

/* Appends one audit entry. */
struct store_audit {
    int64_t id;
    int64_t at_ns;
    int64_t uid;
    int64_t pid;
    const char *command;
    const char *target;
    const char *old_value;
    const char *new_value;
};
int store_audit_add(struct store *s, const struct store_audit *a);
/* The last n entries, oldest first. */
int store_audit_each(struct store *s, int n, void (*fn)(void *ud, const struct store_audit *a),
                     void *ud);

#endif
