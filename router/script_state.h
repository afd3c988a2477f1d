/* The spillway.state key-value store as the router sees it: a master copy in memory (under a
 * mutex, touched only by state.set and by workers catching up), a version number workers poll
 * without locking, and the set of keys not yet written to SQLite, which the control thread
 * flushes. Workers serve state.get from their own Lua-side copy, so a read never locks. */
#ifndef SPILLWAY_SCRIPT_STATE_H
#define SPILLWAY_SCRIPT_STATE_H

#include <stddef.h>
#include <stdint.h>

struct script_state;
struct store;

/* Loads every key from the store (st may be NULL: memory only). */
struct script_state *script_state_new(struct store *st);
void script_state_free(struct script_state *ss);

/* val NULL deletes. Returns 0 or -ENOMEM. Never touches disk. */
int script_state_set(struct script_state *ss, const char *key, size_t klen, const char *val,
                     size_t vlen);
uint64_t script_state_version(const struct script_state *ss);
/* Calls fn for every key under the lock; returns the version the copy corresponds to. */
uint64_t script_state_each(struct script_state *ss,
                           void (*fn)(void *ud, const char *k, size_t kl, const char *v, size_t vl),
                           void *ud);
/* Writes the changed keys to the store; returns how many, or <0 on error (they stay
 * pending and are retried). */
int script_state_flush(struct script_state *ss);

#endif
