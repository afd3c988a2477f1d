#include "router/script_state.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/store.h"

/* Open addressing with tombstones left as "deleted, dirty" entries until flushed. The store is
 * meant to be small (routing state, not data); it grows by doubling. */
struct entry {
    char *key;
    size_t klen;
    char *val; /* NULL: deleted */
    size_t vlen;
    uint64_t hash;
    uint64_t seq; /* bumped by every put: a flush clears dirty only if nothing changed since */
    int dirty;
};

struct script_state {
    pthread_mutex_t mu;
    struct entry *v;
    size_t cap, n;
    _Atomic uint64_t version;
    struct store *st;
};

static struct entry *find(struct script_state *ss, const char *key, size_t klen, uint64_t h)
{
    for (size_t i = h & (ss->cap - 1);; i = (i + 1) & (ss->cap - 1)) {
        struct entry *e = &ss->v[i];
        if (!e->key || (e->hash == h && e->klen == klen && !memcmp(e->key, key, klen)))
            return e;
    }
}

static int grow(struct script_state *ss)
{
    size_t cap = ss->cap ? ss->cap * 2 : 64;
    struct entry *v = calloc(cap, sizeof(*v));
    if (!v)
        return -ENOMEM;
    struct entry *old = ss->v;
    size_t oldcap = ss->cap;
    ss->v = v;
    ss->cap = cap;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].key)
            *find(ss, old[i].key, old[i].klen, old[i].hash) = old[i];
    }
    free(old);
    return 0;
}

static int put(struct script_state *ss, const char *key, size_t klen, const char *val, size_t vlen,
               int dirty)
{
    if (!key)
        key = "";
    if ((ss->n + 1) * 2 > ss->cap && grow(ss))
        return -ENOMEM;
    uint64_t h = hash64(key, klen);
    struct entry *e = find(ss, key, klen, h);
    char *nv = NULL;
    if (val) {
        nv = malloc(vlen + 1);
        if (!nv)
            return -ENOMEM;
        if (vlen)
            memcpy(nv, val, vlen);
        nv[vlen] = '\0';
    }
    if (!e->key) {
        e->key = malloc(klen + 1);
        if (!e->key) {
            free(nv);
            return -ENOMEM;
        }
        if (klen)
            memcpy(e->key, key, klen);
        e->key[klen] = '\0';
        e->klen = klen;
        e->hash = h;
        ss->n++;
    }
    free(e->val);
    e->val = nv;
    e->vlen = vlen;
    e->dirty = dirty;
    e->seq++;
    return 0;
}

static void load_one(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    put(ud, k, kl, v, vl, 0);
}

struct script_state *script_state_new(struct store *st)
{
    struct script_state *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return NULL;
    pthread_mutex_init(&ss->mu, NULL);
    ss->st = st;
    if (grow(ss)) {
        script_state_free(ss);
        return NULL;
    }
    if (st)
        store_kv_each(st, load_one, ss);
    atomic_store(&ss->version, 1); /* workers start at 0: their first sync copies the store */
    return ss;
}

void script_state_free(struct script_state *ss)
{
    if (!ss)
        return;
    for (size_t i = 0; i < ss->cap; i++) {
        free(ss->v[i].key);
        free(ss->v[i].val);
    }
    free(ss->v);
    pthread_mutex_destroy(&ss->mu);
    free(ss);
}

int script_state_set(struct script_state *ss, const char *key, size_t klen, const char *val,
                     size_t vlen)
{
    pthread_mutex_lock(&ss->mu);
    int rc = put(ss, key, klen, val, vlen, 1);
    if (rc == 0)
        atomic_fetch_add(&ss->version, 1);
    pthread_mutex_unlock(&ss->mu);
    return rc;
}

uint64_t script_state_version(const struct script_state *ss)
{
    return atomic_load_explicit(&((struct script_state *)ss)->version, memory_order_acquire);
}

uint64_t script_state_each(struct script_state *ss,
                           void (*fn)(void *ud, const char *k, size_t kl, const char *v, size_t vl),
                           void *ud)
{
    pthread_mutex_lock(&ss->mu);
    uint64_t v = atomic_load(&ss->version);
    for (size_t i = 0; i < ss->cap; i++) {
        const struct entry *e = &ss->v[i];
        if (e->key && e->val)
            fn(ud, e->key, e->klen, e->val, e->vlen);
    }
    pthread_mutex_unlock(&ss->mu);
    return v;
}

/* Deleted keys stay as entries until their deletion is written; then they go, so a churn of
 * short-lived keys does not grow the table forever. Rebuilding keeps probing correct. */
static void compact(struct script_state *ss)
{
    pthread_mutex_lock(&ss->mu);
    size_t dead = 0;
    for (size_t i = 0; i < ss->cap; i++)
        dead += ss->v[i].key && !ss->v[i].val && !ss->v[i].dirty;
    if (dead && dead * 4 >= ss->n) {
        struct entry *old = ss->v;
        size_t cap = ss->cap;
        struct entry *v = calloc(cap, sizeof(*v));
        if (v) {
            ss->v = v;
            ss->n = 0;
            for (size_t i = 0; i < cap; i++) {
                if (!old[i].key)
                    continue;
                if (!old[i].val && !old[i].dirty) {
                    free(old[i].key);
                    continue;
                }
                *find(ss, old[i].key, old[i].klen, old[i].hash) = old[i];
                ss->n++;
            }
            free(old);
        }
    }
    pthread_mutex_unlock(&ss->mu);
}

struct pending {
    char *key, *val;
    size_t klen, vlen;
    uint64_t seq;
    int deleted;
};

/* Copies the dirty entries under the lock, writes them without it (state.set never waits for
 * the disk), then clears the flags of the entries that did not change meanwhile. */
int script_state_flush(struct script_state *ss)
{
    if (!ss->st)
        return 0;
    struct pending *p = NULL;
    size_t np = 0, cap = 0;
    pthread_mutex_lock(&ss->mu);
    for (size_t i = 0; i < ss->cap; i++) {
        struct entry *e = &ss->v[i];
        if (!e->key || !e->dirty)
            continue;
        if (np == cap) {
            cap = cap ? cap * 2 : 16;
            struct pending *q = realloc(p, cap * sizeof(*p));
            if (!q)
                break;
            p = q;
        }
        p[np].key = malloc(e->klen + 1);
        p[np].val = e->val ? malloc(e->vlen + 1) : NULL;
        if (!p[np].key || (e->val && !p[np].val)) {
            free(p[np].key);
            free(p[np].val);
            break;
        }
        memcpy(p[np].key, e->key, e->klen);
        if (e->val)
            memcpy(p[np].val, e->val, e->vlen);
        p[np].klen = e->klen;
        p[np].vlen = e->vlen;
        p[np].seq = e->seq;
        p[np].deleted = !e->val;
        np++;
    }
    pthread_mutex_unlock(&ss->mu);
    int rc = 0, written = 0;
    for (size_t i = 0; i < np; i++) {
        if (rc == 0)
            rc = store_kv_set(ss->st, p[i].key, p[i].klen, p[i].deleted ? NULL : p[i].val,
                              p[i].vlen);
        if (rc == 0) {
            pthread_mutex_lock(&ss->mu);
            struct entry *e = find(ss, p[i].key, p[i].klen, hash64(p[i].key, p[i].klen));
            if (e->key && e->seq == p[i].seq)
                e->dirty = 0;
            pthread_mutex_unlock(&ss->mu);
            written++;
        }
        free(p[i].key);
        free(p[i].val);
    }
    free(p);
    compact(ss);
    return rc ? rc : written;
}
