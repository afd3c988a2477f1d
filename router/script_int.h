/* Internals shared by script.c (state, sandbox, calls), script_event.c (the event proxy and
 * the Lua-to-JSON encoder) and script_api.c (spillway.* helpers). Not for other modules. */
#ifndef SPILLWAY_SCRIPT_INT_H
#define SPILLWAY_SCRIPT_INT_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "core/buf.h"
#include "core/eview.h"
#include "core/log.h"
#include "router/script.h"

#define SCRIPT_HOOK_STEP 1000 /* instructions between two count-hook calls */
#define SCRIPT_MAX_DEPTH 32   /* nesting when encoding Lua tables */

struct dedup_slot {
    uint64_t hash;
    int64_t seen_ns;
};

struct dyn_slot {
    uint64_t hash;
    uint32_t count;
};

struct script_host {
    lua_State *L;
    size_t mem_used;
    size_t mem_limit;
    int64_t instr;
    int64_t instr_limit;
    int mem_refused; /* the last allocation was refused: the next refusal aborts the call */
    int aborting;    /* a limit was hit: the call must fail, pcall cannot catch it */
    const char *abort_why;
    int sampled_no;   /* a sampling helper said no during the call in progress */
    struct eview *ev; /* the event of the call in progress */
    const struct script_route *route;
    unsigned gen; /* bumped per call: stale nested proxies fail */
    int root_ref; /* registry ref of the reusable root proxy */
    int *fn_refs; /* per handle: registry ref of process, LUA_NOREF when free */
    int nfn;
    struct buf path; /* path under construction */
    struct buf tmp;  /* unescaping, encoding */
    struct buf emit; /* spillway.emit encoding (host-owned: errors longjmp) */
    struct buf str;  /* tostring(ev) */
    char err[1024];
    uint64_t rng;
    struct script_env env;
    struct log_limit log_lim;
    struct dedup_slot *dedup; /* direct-mapped, DEDUP_SLOTS */
    struct dyn_slot *dyn_cur, *dyn_prev;
    int64_t dyn_window; /* start of the current second */
};

static inline struct script_host *script__host(lua_State *L)
{
    return *(struct script_host **)lua_getextraspace(L);
}

/* script_event.c */
void script__event_register(lua_State *L);
/* Pushes the proxy for the path in h->path (a nested value). */
void script__push_value(lua_State *L, struct script_host *h, const struct ev_val *v,
                        const char *path, size_t plen);
void script__push_root(lua_State *L, struct script_host *h);
/* Appends the JSON of the Lua value at idx to out; raises a Lua error on what JSON cannot hold. */
void script__encode(lua_State *L, int idx, struct buf *out, int depth);
/* Sets (or deletes, for nil) a top-level field of the current event from the value at idx. */
void script__set_field(lua_State *L, const char *key, size_t klen, int idx);

/* script_api.c */
void script__api_register(lua_State *L);
void script__api_free(struct script_host *h);

#endif
