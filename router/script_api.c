/* The spillway.* helpers scripts call. State they keep (dedup and dynsample windows) is per
 * worker, bounded, and allocated once; keys are salted with the route, so two routes calling
 * dedup("x") do not see each other's keys. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/jsonw.h"
#include "core/timeutil.h"
#include "router/metric_agg.h"
#include "router/sample.h"
#include "router/script_int.h"

#define DEDUP_SLOTS 65536 /* direct-mapped: a collision forgets a key, never drops wrongly */
#define DYN_SLOTS   8192

static void set_sample_rate(lua_State *L, struct script_host *h, double rate)
{
    struct buf *t = &h->tmp;
    buf_reset(t);
    jsonw_double(t, rate);
    if (eview_set(h->ev, "sample_rate", 11, t->data, t->len))
        luaL_error(L, "out of memory editing the event");
}

/* A sampling helper's answer: kept events carry the rate they were kept with; a no is noted
 * so that dropping the event counts as sampled out. */
static int sample_result(lua_State *L, struct script_host *h, int keep, double rate)
{
    if (keep && rate < 1.0)
        set_sample_rate(L, h, rate);
    if (!keep)
        h->sampled_no = 1;
    lua_pushboolean(L, keep);
    return 1;
}

static struct script_host *call_host(lua_State *L)
{
    struct script_host *h = script__host(L);
    if (!h->ev || !h->route)
        luaL_error(L, "this helper works only inside process()");
    return h;
}

/* The key argument as bytes: strings as they are, numbers as their text. */
static const char *key_arg(lua_State *L, int idx, size_t *len)
{
    int t = lua_type(L, idx);
    if (t == LUA_TSTRING || t == LUA_TNUMBER)
        return lua_tolstring(L, idx, len);
    if (t == LUA_TNONE || t == LUA_TNIL)
        return NULL;
    if (t == LUA_TBOOLEAN) {
        *len = lua_toboolean(L, idx) ? 4 : 5;
        return lua_toboolean(L, idx) ? "true" : "false";
    }
    luaL_argerror(L, idx, "a sampling key must be a string or a number");
    return NULL;
}

/* spillway.sample(key): keep at the route's rate, the same answer for the same key. */
static int l_sample(lua_State *L)
{
    struct script_host *h = call_host(L);
    double rate = h->route->rate;
    size_t n = 0;
    const char *key = key_arg(L, 1, &n);
    int keep = key ? sample_keep(rate, key, n) : sample_random(rate, &h->rng);
    return sample_result(L, h, keep, rate);
}

static void dyn_roll(struct script_host *h, int64_t now)
{
    int64_t sec = now / 1000000000;
    if (sec == h->dyn_window)
        return;
    struct dyn_slot *t = h->dyn_prev;
    h->dyn_prev = h->dyn_cur;
    h->dyn_cur = t;
    if (sec != h->dyn_window + 1) /* more than a second idle: the old counts mean nothing */
        memset(h->dyn_prev, 0, DYN_SLOTS * sizeof(*h->dyn_prev));
    memset(h->dyn_cur, 0, DYN_SLOTS * sizeof(*h->dyn_cur));
    h->dyn_window = sec;
}

static struct dyn_slot *dyn_find(struct dyn_slot *t, uint64_t hash, int create)
{
    for (unsigned i = 0; i < 16; i++) {
        struct dyn_slot *s = &t[(hash + i) & (DYN_SLOTS - 1)];
        if (s->hash == hash)
            return s;
        if (s->hash == 0) {
            if (!create)
                return NULL;
            s->hash = hash;
            return s;
        }
    }
    return NULL; /* table crowded this second: treated as a rare key */
}

/* spillway.dynsample(key, target_per_s): keys seen at most target times in the last second
 * are all kept; a key seen more often is kept with probability target/seen, times the route's
 * rate, so a dial still scales everything. */
static int l_dynsample(lua_State *L)
{
    struct script_host *h = call_host(L);
    size_t n = 0;
    const char *key = key_arg(L, 1, &n);
    double target = luaL_checknumber(L, 2);
    if (!h->dyn_cur) {
        h->dyn_cur = calloc(DYN_SLOTS, sizeof(struct dyn_slot));
        h->dyn_prev = calloc(DYN_SLOTS, sizeof(struct dyn_slot));
        if (!h->dyn_cur || !h->dyn_prev)
            return luaL_error(L, "out of memory");
    }
    dyn_roll(h, time_mono_ns());
    uint64_t hk = ((key ? hash64(key, n) : 0) ^ h->route->salt) | 1;
    struct dyn_slot *cur = dyn_find(h->dyn_cur, hk, 1);
    if (cur)
        cur->count++;
    struct dyn_slot *prev = dyn_find(h->dyn_prev, hk, 0);
    double seen = prev ? prev->count : 0;
    if (cur && cur->count > seen)
        seen = cur->count;
    double rate = h->route->rate;
    if (seen > target && target > 0)
        rate *= target / seen;
    else if (target <= 0)
        rate = 0;
    return sample_result(L, h, sample_random(rate, &h->rng), rate);
}

/* spillway.dedup(key, window_s): true the first time key is seen within the window. */
static int l_dedup(lua_State *L)
{
    struct script_host *h = call_host(L);
    size_t n = 0;
    const char *key = key_arg(L, 1, &n);
    double window = luaL_optnumber(L, 2, 60);
    if (!(window >= 0)) /* also NaN */
        window = 0;
    if (window > 1e9) /* about 31 years: "forever" without overflowing nanoseconds */
        window = 1e9;
    if (!key) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (!h->dedup) {
        h->dedup = calloc(DEDUP_SLOTS, sizeof(struct dedup_slot));
        if (!h->dedup)
            return luaL_error(L, "out of memory");
    }
    uint64_t hk = (hash64(key, n) ^ h->route->salt) | 1;
    struct dedup_slot *s = &h->dedup[hk & (DEDUP_SLOTS - 1)];
    int64_t now = time_mono_ns();
    int fresh = !(s->hash == hk && now - s->seen_ns < (int64_t)(window * 1e9));
    if (fresh) {
        s->hash = hk;
        s->seen_ns = now;
    }
    lua_pushboolean(L, fresh);
    return 1;
}

/* Masks an e-mail address as "j***@example.com" and anything else as stars except its last
 * four characters, keeping the length. */
static void mask_whole(luaL_Buffer *b, const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (at && at > s && memchr(at, '.', n - (size_t)(at - s))) {
        luaL_addchar(b, s[0]);
        luaL_addstring(b, "***");
        luaL_addlstring(b, at, n - (size_t)(at - s));
        return;
    }
    size_t keep = n > 8 ? 4 : 0;
    for (size_t i = 0; i < n - keep; i++)
        luaL_addchar(b, '*');
    luaL_addlstring(b, s + n - keep, keep);
}

/* spillway.mask(s [, pattern]): with a Lua pattern, every match becomes stars of its length. */
static int l_mask(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_pushnil(L);
        return 1;
    }
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (lua_isnoneornil(L, 2)) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        mask_whole(&b, s, n);
        luaL_pushresult(&b);
        return 1;
    }
    luaL_checkstring(L, 2);
    /* Each whole match (captures or not) becomes stars of its length: string.find gives the
     * match's bounds, whatever the pattern captures. */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_Integer at = 1;
    while ((size_t)at <= n + 1) {
        lua_getglobal(L, "string");
        lua_getfield(L, -1, "find");
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 2);
        lua_pushinteger(L, at);
        lua_call(L, 3, 2);
        if (lua_isnil(L, -2)) {
            lua_pop(L, 3);
            break;
        }
        lua_Integer ms = lua_tointeger(L, -2), me = lua_tointeger(L, -1);
        lua_pop(L, 3);
        luaL_addlstring(&b, s + at - 1, (size_t)(ms - at));
        for (lua_Integer i = ms; i <= me; i++)
            luaL_addchar(&b, '*');
        at = me >= ms ? me + 1 : ms + 1; /* an empty match moves on by one */
        if (me < ms && (size_t)ms <= n)
            luaL_addchar(&b, s[ms - 1]);
    }
    if ((size_t)at <= n)
        luaL_addlstring(&b, s + at - 1, n - (size_t)at + 1);
    luaL_pushresult(&b);
    return 1;
}

/* spillway.hash(s): a stable 16-hex-digit hash (pseudonymize ids). */
static int l_hash(lua_State *L)
{
    size_t n;
    const char *s = luaL_tolstring(L, 1, &n);
    char out[17];
    snprintf(out, sizeof(out), "%016llx", (unsigned long long)hash64(s, n));
    lua_pushlstring(L, out, 16);
    return 1;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)time_now_ns() / 1e9);
    return 1;
}

/* spillway.log(level, msg): into spillway's own log, at most once a second per worker. */
static int l_log(lua_State *L)
{
    struct script_host *h = script__host(L);
    const char *lvl = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    enum log_level level;
    if (log_level_parse(lvl, &level) || level == LOG_OFF)
        return luaL_argerror(L, 1, "level must be debug, info, warn or error");
    if (level < log_threshold)
        return 0;
    int64_t sup = log_limit_take(&h->log_lim);
    if (sup >= 0)
        log_write(level, msg, "{s:s, s:I}", "route", h->route ? h->route->name : "", "suppressed",
                  (json_int_t)sup);
    return 0;
}

#define KV_REG "spillway.shared"

void script_shared_begin(struct script_host *h)
{
    lua_newtable(h->L);
    lua_setfield(h->L, LUA_REGISTRYINDEX, KV_REG);
}

void script_shared_put(struct script_host *h, const char *k, size_t kl, const char *v, size_t vl)
{
    lua_State *L = h->L;
    lua_getfield(L, LUA_REGISTRYINDEX, KV_REG);
    lua_pushlstring(L, k, kl);
    lua_pushlstring(L, v, vl);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* spillway.state.get(key): from this worker's copy, no lock, no disk. */
static int l_state_get(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, KV_REG);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    return 1;
}

/* spillway.state.set(key, value): visible at once to this worker, to the others within a
 * chunk, persisted by the control thread. value nil deletes; values are strings. */
static int l_state_set(lua_State *L)
{
    struct script_host *h = script__host(L);
    size_t n, vn = 0;
    const char *k = luaL_checklstring(L, 1, &n);
    const char *v = lua_isnil(L, 2) ? NULL : luaL_checklstring(L, 2, &vn);
    if (n == 0)
        return luaL_argerror(L, 1, "the key must not be empty");
    if (n > 1024 || vn > 65536)
        return luaL_error(L, "spillway.state keys are at most 1 KiB and values 64 KiB");
    lua_getfield(L, LUA_REGISTRYINDEX, KV_REG);
    lua_pushvalue(L, 1);
    if (v)
        lua_pushvalue(L, 2);
    else
        lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    if (h->env.state_set && h->env.state_set(h->env.ud, k, n, v, vn) < 0)
        return luaL_error(L, "spillway.state.set failed (out of memory)");
    return 0;
}

/* spillway.emit(sink, ev): sends a copy of ev (an event or a table) to a sink by name. */
static int l_emit(lua_State *L)
{
    struct script_host *h = call_host(L);
    const char *name = luaL_checkstring(L, 1);
    luaL_checkany(L, 2);
    if (!h->env.sink_find || !h->env.emit)
        return luaL_error(L, "spillway.emit is not available");
    int sink = h->env.sink_find(h->env.ud, name);
    if (sink < 0)
        return luaL_error(L, "spillway.emit: no sink named %s", name);
    /* The host's buffer, not a local one: an encoding error longjmps out of here. */
    struct buf *out = &h->emit;
    buf_reset(out);
    if (luaL_testudata(L, 2, "spillway.event")) {
        lua_getglobal(L, "tostring");
        lua_pushvalue(L, 2);
        lua_call(L, 1, 1);
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        buf_append(out, s, n);
        lua_pop(L, 1);
    } else if (lua_type(L, 2) == LUA_TTABLE) {
        script__encode(L, 2, out, 0);
    } else {
        return luaL_argerror(L, 2, "an event or a table");
    }
    int rc = h->env.emit(h->env.ud, sink, out->data, out->len);
    buf_trim(out, 1 << 20);
    lua_pushboolean(L, rc == 0);
    return 1;
}

/* ---- logs to metrics ---- */

#define METRIC_LABELS 64

/* The labels table at idx (nil: none) into l[]: names are strings, values strings, numbers or
 * booleans. Strings are pointed at where the table holds them (nothing here allocates in Lua, so
 * nothing is collected meanwhile); numbers are written into num[] as Lua writes them. Returns how
 * many. */
static size_t metric_labels(lua_State *L, int idx, struct metric_label *l, char (*num)[32])
{
    size_t n = 0;
    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "spillway.metric: label names are strings");
        if (n == METRIC_LABELS)
            luaL_error(L, "spillway.metric: more than %d labels", METRIC_LABELS);
        struct metric_label *x = &l[n];
        x->key = lua_tolstring(L, -2, &x->klen);
        switch (lua_type(L, -1)) {
        case LUA_TSTRING:
            x->value = lua_tolstring(L, -1, &x->vlen);
            break;
        case LUA_TNUMBER:
            x->vlen = lua_isinteger(L, -1)
                          ? (size_t)snprintf(num[n], 32, LUA_INTEGER_FMT, lua_tointeger(L, -1))
                          : (size_t)snprintf(num[n], 32, LUA_NUMBER_FMT, lua_tonumber(L, -1));
            x->value = num[n];
            break;
        case LUA_TBOOLEAN:
            x->value = lua_toboolean(L, -1) ? "true" : "false";
            x->vlen = strlen(x->value);
            break;
        default:
            luaL_error(L, "spillway.metric: label %s: a string, a number or a boolean", x->key);
        }
        n++;
        lua_pop(L, 1);
    }
    return n;
}

/* Adds to the worker's aggregate of the route: true, or false when the route holds
 * metrics.max_series series already (counted as metric_overflow). */
static int metric_add(lua_State *L, enum metric_kind k)
{
    struct script_host *h = call_host(L);
    size_t nlen;
    const char *name = luaL_checklstring(L, 1, &nlen);
    if (nlen == 0 || nlen > 255)
        return luaL_argerror(L, 1, "a metric name of 1 to 255 bytes");
    double v = k == METRIC_COUNT ? luaL_optnumber(L, 3, 1) : luaL_checknumber(L, 3);
    if (!isfinite(v))
        return luaL_argerror(L, 3, "a finite number");
    if (k == METRIC_COUNT && v < 0)
        return luaL_argerror(L, 3, "a count cannot go down");
    if (!h->route->agg)
        return luaL_error(L, "spillway.metric: this route aggregates nothing here");
    struct metric_label l[METRIC_LABELS];
    char num[METRIC_LABELS][32];
    size_t n = metric_labels(L, 2, l, num);
    int rc = metric_agg_add(h->route->agg, k, name, nlen, l, n, v);
    if (rc == -E2BIG)
        return luaL_error(L, "spillway.metric: a series' name and labels take more than 4 KiB");
    if (rc == -ENOMEM)
        return luaL_error(L, "out of memory");
    lua_pushboolean(L, rc == 0);
    return 1;
}

/* spillway.metric.count(name, labels [, n]): n (1) more of the series. */
static int l_metric_count(lua_State *L)
{
    return metric_add(L, METRIC_COUNT);
}

/* spillway.metric.observe(name, labels, value): one value into the series' histogram. */
static int l_metric_observe(lua_State *L)
{
    return metric_add(L, METRIC_OBSERVE);
}

/* spillway.metric.gauge(name, labels, value): the series' value is now value. */
static int l_metric_gauge(lua_State *L)
{
    return metric_add(L, METRIC_GAUGE);
}

void script__api_register(lua_State *L)
{
    static const luaL_Reg api[] = {
        {"sample", l_sample}, {"dynsample", l_dynsample}, {"dedup", l_dedup},
        {"mask", l_mask},     {"hash", l_hash},           {"now", l_now},
        {"log", l_log},       {"emit", l_emit},           {NULL, NULL},
    };
    static const luaL_Reg state[] = {
        {"get", l_state_get},
        {"set", l_state_set},
        {NULL, NULL},
    };
    static const luaL_Reg metric[] = {
        {"count", l_metric_count},
        {"observe", l_metric_observe},
        {"gauge", l_metric_gauge},
        {NULL, NULL},
    };
    luaL_newlib(L, api);
    luaL_newlib(L, state);
    lua_setfield(L, -2, "state");
    luaL_newlib(L, metric);
    lua_setfield(L, -2, "metric");
    lua_setglobal(L, "spillway");
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, KV_REG);
}

void script__api_free(struct script_host *h)
{
    free(h->dedup);
    free(h->dyn_cur);
    free(h->dyn_prev);
}
