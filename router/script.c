/* The Lua state: allocation limit, sandbox, script loading and the per-event call. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/script_int.h"

/* Every allocation goes through here so a script cannot take more than mem_limit. When ptr is
 * NULL, osize is a type tag rather than a size. */
static void *host_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct script_host *h = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        h->mem_used -= old;
        free(ptr);
        return NULL;
    }
    if (nsize > old && h->mem_used - old + nsize > h->mem_limit) {
        /* Refused once, Lua collects everything and asks again (garbage from earlier calls is
         * not held against this one). Refused twice in a row, the memory limit fails the whole
         * call like the instruction limit: a script's pcall must not catch it and go on (see
         * rethrow_if_aborting). */
        if (h->mem_refused) {
            h->aborting = 1;
            h->abort_why = "memory limit exceeded";
        }
        h->mem_refused = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p) {
        h->mem_used = h->mem_used - old + nsize;
        h->mem_refused = 0;
    }
    return p;
}

static int abort_error(lua_State *L, const struct script_host *h)
{
    if (h->abort_why[0] == 'm')
        return luaL_error(L, "%s (%d KiB)", h->abort_why, (int)(h->mem_limit / 1024));
    return luaL_error(L, "%s (%d)", h->abort_why, (int)h->instr_limit);
}

/* Once over the limit the call is aborting: the hook then fires on every instruction and the
 * pcall/xpcall/coroutine wrappers re-raise, so a script cannot catch its way past the limit. */
static void count_hook(lua_State *L, lua_Debug *ar)
{
    struct script_host *h = script__host(L);
    h->instr += SCRIPT_HOOK_STEP;
    if (h->instr > h->instr_limit || h->aborting) {
        if (!h->aborting) {
            h->aborting = 1;
            h->abort_why = "instruction limit exceeded";
        }
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        abort_error(L, h);
    }
}

static int rethrow_if_aborting(lua_State *L, int nres)
{
    struct script_host *h = script__host(L);
    if (h->aborting)
        return abort_error(L, h);
    return nres;
}

static int safe_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    lua_pushboolean(L, status == LUA_OK);
    lua_insert(L, 1);
    return rethrow_if_aborting(L, lua_gettop(L));
}

static int safe_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 1); /* f, handler, args..., f */
    lua_rotate(L, 3, 1); /* f, handler, f, args... */
    int status = lua_pcall(L, n - 2, LUA_MULTRET, 2);
    lua_pushboolean(L, status == LUA_OK);
    lua_replace(L, 1);
    lua_remove(L, 2);
    return rethrow_if_aborting(L, lua_gettop(L));
}

static int safe_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    lua_getfield(L, LUA_REGISTRYINDEX, "spillway.resume");
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return rethrow_if_aborting(L, lua_gettop(L));
}

/* table.move and string patterns run in C, where the count hook cannot stop them: bound them. */
static int safe_move(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
    struct script_host *h = script__host(L);
    if (e >= f && (e - f) / 2 > h->instr_limit)
        return luaL_error(L, "table.move range too large");
    lua_getfield(L, LUA_REGISTRYINDEX, "spillway.move");
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Lua runs a finalizer outside any call, with hooks off: a __gc metamethod would escape the
 * instruction limit (an endless loop there hangs the worker at the next collection, or at stop).
 * Lua marks an object for finalization only if its metatable has __gc when it is set, so
 * refusing such a metatable here is enough. */
static int safe_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        int t = lua_rawget(L, 2);
        lua_pop(L, 1);
        if (t != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed in scripts");
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "spillway.setmetatable");
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

#define MAX_PATTERN_QUANTIFIERS 16 /* backtracking is exponential in optional items */

static int pattern_guard(lua_State *L, const char *name)
{
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);
    int q = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 1 < n)
            i++;
        else if (p[i] == '?' || p[i] == '*' || p[i] == '-' || p[i] == '+')
            q++;
    }
    if (q > MAX_PATTERN_QUANTIFIERS && !(lua_toboolean(L, 4) && !strcmp(name, "find")))
        return luaL_error(L, "pattern too complex (more than %d quantifiers)",
                          MAX_PATTERN_QUANTIFIERS);
    char key[64];
    snprintf(key, sizeof(key), "spillway.%s", name);
    lua_getfield(L, LUA_REGISTRYINDEX, key);
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int safe_find(lua_State *L)
{
    return pattern_guard(L, "find");
}
static int safe_match(lua_State *L)
{
    return pattern_guard(L, "match");
}
static int safe_gmatch(lua_State *L)
{
    return pattern_guard(L, "gmatch");
}
static int safe_gsub(lua_State *L)
{
    return pattern_guard(L, "gsub");
}

/* Replaces lib[name] by fn, keeping the original in the registry as spillway.<name>. */
static void wrap(lua_State *L, const char *name, lua_CFunction fn)
{
    char key[64];
    lua_getfield(L, -1, name);
    snprintf(key, sizeof(key), "spillway.%s", name);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, name);
}

/* Pushes the _ENV of the Lua function that called us (the calling script's environment). */
static int caller_env(lua_State *L)
{
    lua_Debug ar;
    if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "f", &ar))
        return 0;
    for (int i = 1;; i++) {
        const char *up = lua_getupvalue(L, -1, i);
        if (!up)
            break;
        if (!strcmp(up, "_ENV")) {
            lua_remove(L, -2);
            return 1;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

/* load() for text chunks only (binary chunks can break the VM's invariants), running in the
 * calling script's environment unless one is given: never in the shared globals. */
static int safe_load(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *name = luaL_optstring(L, 2, "=(load)");
    int rc = luaL_loadbufferx(L, s, n, name, "t");
    if (rc != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (!lua_isnoneornil(L, 4))
        lua_pushvalue(L, 4);
    else if (!caller_env(L))
        lua_newtable(L); /* no Lua caller: an empty environment */
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
    return 1;
}

static int lua_print_to_log(lua_State *L)
{
    struct script_host *h = script__host(L);
    int n = lua_gettop(L); /* before luaL_buffinit, which may push */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
        if (i < n)
            luaL_addchar(&b, '\t');
    }
    luaL_pushresult(&b);
    if (log_limit_take(&h->log_lim) >= 0)
        log_info("script print", "{s:s, s:s}", "route", h->route ? h->route->name : "", "message",
                 lua_tostring(L, -1));
    return 0;
}

/* Removes t[name] for each name from the table at the top of the stack. */
static void strip(lua_State *L, const char *const *names)
{
    for (; *names; names++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *names);
    }
}

/* Keeps only the listed fields of the table at the top of the stack. */
static void keep_only(lua_State *L, const char *const *names)
{
    lua_newtable(L);
    for (; *names; names++) {
        lua_getfield(L, -2, *names);
        lua_setfield(L, -2, *names);
    }
    lua_remove(L, -2);
}

/* The sandbox: an allow-list of libraries. Each script later gets its own copies of these
 * tables (see new_env), so one script cannot change what another sees. */
static void open_sandbox(lua_State *L)
{
    static const char *const base_banned[] = {"dofile",   "loadfile", "load",   "collectgarbage",
                                              "require",  "module",   "rawset", "rawget",
                                              "rawequal", "rawlen",   NULL};
    /* os.time and os.clock only: os.date's text depends on the process's time zone and
     * locale (a script would format the same event differently on two hosts), and
     * os.difftime is a subtraction. */
    static const char *const os_kept[] = {"time", "clock", NULL};
    luaL_requiref(L, "_G", luaopen_base, 1);
    strip(L, base_banned);
    lua_pushcfunction(L, safe_load);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, lua_print_to_log);
    lua_setfield(L, -2, "print");
    lua_pushcfunction(L, safe_pcall);
    lua_setfield(L, -2, "pcall");
    lua_pushcfunction(L, safe_xpcall);
    lua_setfield(L, -2, "xpcall");
    wrap(L, "setmetatable", safe_setmetatable);
    lua_pop(L, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    wrap(L, "find", safe_find);
    wrap(L, "match", safe_match);
    wrap(L, "gmatch", safe_gmatch);
    wrap(L, "gsub", safe_gsub);
    lua_pop(L, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    wrap(L, "move", safe_move);
    lua_pop(L, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    lua_pop(L, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    lua_pop(L, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    wrap(L, "resume", safe_resume);
    lua_pop(L, 1);
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    keep_only(L, os_kept);
    lua_setglobal(L, "os");
    /* Lock the string metatable: getmetatable("") no longer hands out the shared string
     * library for a script to change under every other script. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}

struct script_host *script_host_new(const struct script_limits *lim, const struct script_env *env,
                                    uint64_t seed)
{
    struct script_host *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->mem_limit = (size_t)lim->memory;
    h->instr_limit = lim->max_instructions;
    h->rng = seed | 1;
    if (env)
        h->env = *env;
    h->L = lua_newstate(host_alloc, h);
    if (!h->L) {
        free(h);
        return NULL;
    }
    *(struct script_host **)lua_getextraspace(h->L) = h;
    open_sandbox(h->L);
    script__event_register(h->L);
    script__api_register(h->L);
    lua_sethook(h->L, count_hook, LUA_MASKCOUNT, SCRIPT_HOOK_STEP);
    h->root_ref = LUA_NOREF;
    return h;
}

void script_host_free(struct script_host *h)
{
    if (!h)
        return;
    lua_close(h->L);
    script__api_free(h);
    buf_free(&h->path);
    buf_free(&h->tmp);
    buf_free(&h->emit);
    buf_free(&h->str);
    free(h->fn_refs);
    free(h);
}

size_t script_memory(const struct script_host *h)
{
    return h->mem_used;
}

/* Pushes a shallow copy of the table at idx. */
static void copy_table(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -4);
    }
}

/* A fresh _ENV for one script: copies of the allowed libraries and of spillway (and
 * spillway.state and spillway.metric), so changes a script makes to them stay its own; other
 * globals resolve to the shared base functions. */
static void new_env(lua_State *L)
{
    static const char *const libs[] = {"string",    "table", "math",     "utf8",
                                       "coroutine", "os",    "spillway", NULL};
    lua_newtable(L);
    for (int i = 0; libs[i]; i++) {
        lua_getglobal(L, libs[i]);
        copy_table(L, -1);
        lua_remove(L, -2);
        lua_setfield(L, -2, libs[i]);
    }
    lua_getfield(L, -1, "spillway");
    for (int i = 0; i < 2; i++) {
        const char *sub = i ? "metric" : "state";
        lua_getfield(L, -1, sub);
        copy_table(L, -1);
        lua_setfield(L, -3, sub);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_newtable(L); /* metatable: read-through to the shared base library */
    lua_pushglobaltable(L);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "locked"); /* getmetatable(_ENV) must not reach the shared globals */
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
}

static int new_handle(struct script_host *h)
{
    for (int i = 0; i < h->nfn; i++) {
        if (h->fn_refs[i] == LUA_NOREF)
            return i;
    }
    int *r = realloc(h->fn_refs, (size_t)(h->nfn + 1) * sizeof(int));
    if (!r)
        return -ENOMEM;
    h->fn_refs = r;
    h->fn_refs[h->nfn] = LUA_NOREF;
    return h->nfn++;
}

int script_load(struct script_host *h, const char *name, const char *src, size_t len, char *err,
                size_t errlen)
{
    lua_State *L = h->L;
    char chunk[512];
    snprintf(chunk, sizeof(chunk), "@%s", name);
    h->instr = 0;
    if (h->aborting) {
        h->aborting = 0;
        lua_sethook(L, count_hook, LUA_MASKCOUNT, SCRIPT_HOOK_STEP);
    }
    int rc = luaL_loadbufferx(L, src, len, chunk, "t");
    if (rc == LUA_OK) {
        new_env(L);
        lua_pushvalue(L, -1);
        lua_insert(L, -3); /* env, chunk, env */
        lua_setupvalue(L, -2, 1);
        rc = lua_pcall(L, 0, 0, 0);
    }
    if (rc != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "load failed");
        lua_settop(L, 0);
        return -EINVAL;
    }
    lua_getfield(L, -1, "process");
    if (!lua_isfunction(L, -1)) {
        snprintf(err, errlen, "%s:1: the script does not define function process(ev)", name);
        lua_settop(L, 0);
        return -EINVAL;
    }
    int hd = new_handle(h);
    if (hd < 0) {
        snprintf(err, errlen, "out of memory");
        lua_settop(L, 0);
        return hd;
    }
    h->fn_refs[hd] = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    return hd;
}

int script_sampled_out(const struct script_host *h)
{
    return h->sampled_no;
}

void script_unload(struct script_host *h, int handle)
{
    if (handle < 0 || handle >= h->nfn || h->fn_refs[handle] == LUA_NOREF)
        return;
    luaL_unref(h->L, LUA_REGISTRYINDEX, h->fn_refs[handle]);
    h->fn_refs[handle] = LUA_NOREF;
}

void script_replace(struct script_host *h, int handle, int with)
{
    if (handle == with || with < 0 || with >= h->nfn)
        return;
    script_unload(h, handle);
    h->fn_refs[handle] = h->fn_refs[with];
    h->fn_refs[with] = LUA_NOREF;
}

int script_run(struct script_host *h, int handle, struct eview *ev, const struct script_route *rt,
               const char **err)
{
    lua_State *L = h->L;
    h->ev = ev;
    h->route = rt;
    h->gen++;
    h->instr = 0;
    h->sampled_no = 0;
    h->mem_refused = 0;
    if (h->aborting) { /* the previous call hit a limit: back to the normal hook */
        h->aborting = 0;
        lua_sethook(L, count_hook, LUA_MASKCOUNT, SCRIPT_HOOK_STEP);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->fn_refs[handle]);
    script__push_root(L, h);
    int rc = lua_pcall(L, 1, 1, 0);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (rc == LUA_ERRMEM && h->aborting)
            snprintf(h->err, sizeof(h->err), "memory limit exceeded (%d KiB)",
                     (int)(h->mem_limit / 1024));
        else
            snprintf(h->err, sizeof(h->err), "%s", msg ? msg : "error object is not a string");
        lua_settop(L, 0);
        if (rc == LUA_ERRMEM || (h->aborting && h->abort_why[0] == 'm'))
            lua_gc(L, LUA_GCCOLLECT); /* what the failed call allocated, before the next one */
        *err = h->err;
        h->ev = NULL;
        return -1;
    }
    int keep = lua_toboolean(L, -1);
    lua_settop(L, 0);
    h->ev = NULL;
    return keep;
}
