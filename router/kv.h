/* The spillway.state key-value store as the router sees it: a master copy in memory (under a
 * mutex, touched only by state.set and by workers catching up), a version number workers poll
 * without locking, and the set of keys not yet written to SQLite, which the control thread
 * flushes. Workers serve state.get from their own Lua-side copy, so a read never locks. */
#ifndef SPILLWAY_KV_H
#define SPILLWAY_KV_H

#include <stddef.h>
#include <stdint.h>

struct kv;
struct state;

/* Loads every key from the state store (st may be NULL: memory only). */
struct kv *kv_new(struct state *st);
void kv_free(struct kv *kv);

/* val NULL deletes. Returns 0 or -ENOMEM. Never touches disk. */
int kv_set(struct kv *kv, const char *key, size_t klen, const char *val, size_t vlen);
uint64_t kv_version(const struct kv *kv);
/* Calls fn for every key under the lock; returns the version the copy corresponds to. */
uint64_t kv_each(struct kv *kv,
                 void (*fn)(void *ud, const char *k, size_t kl, const char *v, size_t vl),
                 void *ud);
/* Writes the changed keys to the state store; returns how many, or <0 on error (they stay
 * pending and are retried). */
int kv_flush(struct kv *kv);

#endif
