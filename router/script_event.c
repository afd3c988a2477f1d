/* The event proxy: a userdata standing for the event (or a nested object in it) whose
 * metamethods read from and write to the worker's event view. The root proxy is created once
 * and reused for every event; nested proxies are created on access and remember the call they
 * belong to, so one kept past its call fails loudly instead of reading another event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsontok.h"
#include "core/jsonw.h"
#include "core/utf8.h"
#include "router/script_int.h"

#define EVENT_MT "spillway.event"

struct proxy {
    unsigned gen; /* 0: the root, valid in every call */
    size_t plen;
    char path[];
};

static struct proxy *to_proxy(lua_State *L, int idx)
{
    /* Metamethods only: Lua calls them with the proxy itself as argument 1, and __metatable
     * keeps scripts from reaching them to call them any other way. */
    return lua_touserdata(L, idx);
}

static struct script_host *live_host(lua_State *L, const struct proxy *p)
{
    struct script_host *h = script__host(L);
    if (!h->ev)
        luaL_error(L, "the event is only valid during process()");
    if (p->gen && p->gen != h->gen)
        luaL_error(L, "this part of an event was kept past its process() call");
    return h;
}

/* h->path = p->path + key as one more segment. */
static void child_path(struct script_host *h, const struct proxy *p, const char *key, size_t klen)
{
    buf_reset(&h->path);
    buf_append(&h->path, p->path, p->plen);
    if (p->plen)
        buf_putc(&h->path, '\0');
    buf_append(&h->path, key, klen);
}

static void push_proxy(lua_State *L, struct script_host *h, const char *path, size_t plen)
{
    struct proxy *np = lua_newuserdatauv(L, sizeof(*np) + plen, 0);
    np->gen = h->gen;
    np->plen = plen;
    memcpy(np->path, path, plen);
    luaL_setmetatable(L, EVENT_MT);
}

void script__push_root(lua_State *L, struct script_host *h)
{
    if (h->root_ref == LUA_NOREF) {
        struct proxy *p = lua_newuserdatauv(L, sizeof(*p), 0);
        p->gen = 0;
        p->plen = 0;
        luaL_setmetatable(L, EVENT_MT);
        h->root_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->root_ref);
}

/* Pushes a number of the simple kind (jsontok_simple_number); -1 for any other text. */
static int push_simple_number(lua_State *L, const char *s, size_t n)
{
    int64_t i;
    double d;
    int k = jsontok_simple_number(s, n, &i, &d);
    if (k == 1)
        lua_pushinteger(L, i);
    else if (k == 2)
        lua_pushnumber(L, d);
    return k > 0 ? 0 : -1;
}

void script__push_value(lua_State *L, struct script_host *h, const struct ev_val *v,
                        const char *path, size_t plen)
{
    switch (v->kind) {
    case EVK_MISSING:
    case EVK_NULL:
        lua_pushnil(L);
        break;
    case EVK_BOOL:
        lua_pushboolean(L, v->text[0] == 't');
        break;
    case EVK_NUMBER: {
        if (v->len && push_simple_number(L, v->text, v->len) == 0)
            break;
        /* lua_stringtonumber wants a C string: a short number is copied on the stack, a longer
         * one (JSON puts no bound on digits) into the host's scratch buffer, never cut. */
        char num[64];
        const char *text = num;
        if (v->len < sizeof(num)) {
            memcpy(num, v->text, v->len);
            num[v->len] = '\0';
        } else {
            buf_reset(&h->tmp);
            text = buf_append(&h->tmp, v->text, v->len) || buf_putc(&h->tmp, '\0') ? NULL
                                                                                   : h->tmp.data;
        }
        if (!text || lua_stringtonumber(L, text) == 0)
            lua_pushnil(L);
        break;
    }
    case EVK_STRING:
        if (!v->escaped) {
            lua_pushlstring(L, v->text, v->len);
        } else {
            buf_reset(&h->tmp);
            jsontok_unescape(v->text, v->len, &h->tmp);
            lua_pushlstring(L, h->tmp.data ? h->tmp.data : "", h->tmp.len);
        }
        break;
    case EVK_OBJECT:
    case EVK_ARRAY:
        push_proxy(L, h, path, plen);
        break;
    }
}

/* Appends the JSON of the proxied value: its text when untouched, else taken from the
 * serialized event (rare: copying a subtree that was edited). */
static void encode_proxy(lua_State *L, struct script_host *h, const struct proxy *p,
                         struct buf *out)
{
    struct ev_val v;
    if (eview_get(h->ev, p->path, p->plen, &v))
        luaL_error(L, "the event is not a JSON object");
    if (v.text && (v.kind == EVK_OBJECT || v.kind == EVK_ARRAY)) {
        jsonw_raw_compact(out, v.text, v.len);
        return;
    }
    struct buf whole = {0};
    struct jsontok t = {0};
    int ok = eview_serialize(h->ev, &whole) == 0 && jsontok_parse(&t, whole.data, whole.len) == 0;
    int at = 0;
    for (size_t off = 0; ok && at >= 0 && off < p->plen;) {
        size_t n = strnlen(p->path + off, p->plen - off);
        at = jsontok_find(&t, at, p->path + off, n);
        off += n + 1;
    }
    if (ok && at >= 0) {
        size_t s = jsontok_text_start(&t, at);
        buf_append(out, whole.data + s, jsontok_text_end(&t, at) - s);
    } else {
        buf_append(out, "null", 4);
    }
    jsontok_free(&t);
    buf_free(&whole);
}

/* The element count of an array edited below its top, from the serialized event (rare). */
static lua_Integer edited_array_len(lua_State *L, struct script_host *h, const struct proxy *p)
{
    struct buf json = {0};
    encode_proxy(L, h, p, &json);
    struct jsontok t = {0};
    lua_Integer n = 0;
    if (jsontok_parse_trusted(&t, json.data ? json.data : "", json.len) == 0 &&
        t.tok[0].type == JSMN_ARRAY)
        n = t.tok[0].size;
    jsontok_free(&t);
    buf_free(&json);
    return n;
}

/* Element idx of an array edited below its top (an element deleted, one appended), read from
 * the array as it will be serialized, so reads agree with what the sinks get. Rare. */
static int edited_array_index(lua_State *L, struct script_host *h, const struct proxy *p,
                              lua_Integer idx)
{
    struct buf json = {0};
    encode_proxy(L, h, p, &json);
    struct jsontok t = {0};
    struct ev_val v = {.kind = EVK_MISSING};
    if (jsontok_parse_trusted(&t, json.data ? json.data : "", json.len) == 0 &&
        t.tok[0].type == JSMN_ARRAY && idx >= 1 && idx <= t.tok[0].size) {
        int at = 1;
        for (lua_Integer i = 1; i < idx; i++)
            at = t.next[at];
        const jsmntok_t *k = &t.tok[at];
        v.text = json.data + k->start;
        v.len = (size_t)(k->end - k->start);
        v.kind = k->type == JSMN_STRING                 ? EVK_STRING
                 : k->type == JSMN_OBJECT               ? EVK_OBJECT
                 : k->type == JSMN_ARRAY                ? EVK_ARRAY
                 : v.text[0] == 'n'                     ? EVK_NULL
                 : v.text[0] == 't' || v.text[0] == 'f' ? EVK_BOOL
                                                        : EVK_NUMBER;
        v.escaped = k->type == JSMN_STRING && memchr(v.text, '\\', v.len) != NULL;
    }
    char num[32];
    snprintf(num, sizeof(num), "%lld", (long long)idx);
    child_path(h, p, num, strlen(num));
    script__push_value(L, h, &v, h->path.data, h->path.len);
    jsontok_free(&t);
    buf_free(&json);
    return 1;
}

/* Paths hold their segments NUL-separated, the root being the empty path: a key with a NUL
 * byte, or an empty key at the root, cannot name a field. */
static int bad_key(const struct proxy *p, const char *key, size_t klen)
{
    /* Not UTF-8: JSON would carry it as U+FFFD, so two different names could meet as one. */
    return (klen == 0 && p->plen == 0) || memchr(key, '\0', klen) != NULL ||
           utf8_check(key, klen) != klen;
}

/* Reads key (at stack index 2) below proxy p and pushes it. A string key naming no field but
 * holding dots is read as a path: ev["http.status"] is ev.http.status. */
static int ev_index(lua_State *L)
{
    struct proxy *p = to_proxy(L, 1);
    struct script_host *h = live_host(L, p);
    size_t klen;
    const char *key;
    char num[32];
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Integer idx = luaL_checkinteger(L, 2);
        struct ev_val arr;
        if (eview_get(h->ev, p->path, p->plen, &arr))
            return luaL_error(L, "the event is not a JSON object");
        if (arr.kind == EVK_ARRAY && arr.size < 0)
            return edited_array_index(L, h, p, idx);
        snprintf(num, sizeof(num), "%lld", (long long)idx);
        key = num;
        klen = strlen(num);
    } else {
        key = luaL_checklstring(L, 2, &klen);
        if (bad_key(p, key, klen)) {
            lua_pushnil(L);
            return 1;
        }
    }
    child_path(h, p, key, klen);
    struct ev_val v;
    if (eview_get(h->ev, h->path.data, h->path.len, &v))
        return luaL_error(L, "the event is not a JSON object");
    if (v.kind == EVK_MISSING && memchr(key, '.', klen)) {
        for (size_t i = h->path.len - klen; i < h->path.len; i++) {
            if (h->path.data[i] == '.')
                h->path.data[i] = '\0';
        }
        if (eview_get(h->ev, h->path.data, h->path.len, &v))
            return luaL_error(L, "the event is not a JSON object");
    }
    script__push_value(L, h, &v, h->path.data, h->path.len);
    return 1;
}

static int is_sequence(lua_State *L, int idx, lua_Integer *n)
{
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    *n = len;
    return count == len;
}

void script__encode(lua_State *L, int idx, struct buf *out, int depth)
{
    idx = lua_absindex(L, idx);
    if (depth > SCRIPT_MAX_DEPTH)
        luaL_error(L, "value nested more than %d levels (a cycle?)", SCRIPT_MAX_DEPTH);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        buf_append(out, "null", 4);
        return;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            buf_append(out, "true", 4);
        else
            buf_append(out, "false", 5);
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            jsonw_int(out, (int64_t)lua_tointeger(L, idx));
        else
            jsonw_double(out, (double)lua_tonumber(L, idx));
        return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        jsonw_string(out, s, n);
        return;
    }
    case LUA_TTABLE: {
        lua_Integer n;
        luaL_checkstack(L, 4, "encoding a table");
        if (is_sequence(L, idx, &n)) {
            buf_putc(out, '[');
            for (lua_Integer i = 1; i <= n; i++) {
                if (i > 1)
                    buf_putc(out, ',');
                lua_rawgeti(L, idx, i);
                script__encode(L, -1, out, depth + 1);
                lua_pop(L, 1);
            }
            buf_putc(out, ']');
            return;
        }
        buf_putc(out, '{');
        int first = 1;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (!first)
                buf_putc(out, ',');
            first = 0;
            lua_pushvalue(L, -2);
            size_t kl;
            const char *k = lua_tolstring(L, -1, &kl); /* numbers become their text */
            if (!k)
                luaL_error(L, "table keys must be strings or numbers");
            jsonw_string(out, k, kl);
            lua_pop(L, 1);
            buf_putc(out, ':');
            script__encode(L, -1, out, depth + 1);
            lua_pop(L, 1);
        }
        buf_putc(out, '}');
        return;
    }
    case LUA_TUSERDATA:
        if (luaL_testudata(L, idx, EVENT_MT)) {
            struct proxy *p = lua_touserdata(L, idx);
            encode_proxy(L, live_host(L, p), p, out);
            return;
        }
        /* fall through */
    default:
        luaL_error(L, "cannot store a %s in an event", luaL_typename(L, idx));
    }
}

/* Records path h->path = value at idx (nil deletes). */
static void set_path(lua_State *L, struct script_host *h, int idx)
{
    int rc;
    if (lua_isnil(L, idx)) {
        rc = eview_del(h->ev, h->path.data, h->path.len);
    } else {
        buf_reset(&h->tmp);
        script__encode(L, idx, &h->tmp, 0);
        rc = eview_set(h->ev, h->path.data, h->path.len, h->tmp.data, h->tmp.len);
    }
    if (rc)
        luaL_error(L, "out of memory editing the event");
}

void script__set_field(lua_State *L, const char *key, size_t klen, int idx)
{
    struct script_host *h = script__host(L);
    buf_reset(&h->path);
    buf_append(&h->path, key, klen);
    set_path(L, h, idx);
}

static int ev_newindex(lua_State *L)
{
    struct proxy *p = to_proxy(L, 1);
    struct script_host *h = live_host(L, p);
    size_t klen;
    const char *key;
    char num[32];
    if (lua_type(L, 2) == LUA_TNUMBER) {
        snprintf(num, sizeof(num), "%lld", (long long)luaL_checkinteger(L, 2));
        key = num;
        klen = strlen(num);
    } else {
        key = luaL_checklstring(L, 2, &klen);
        if (bad_key(p, key, klen))
            return luaL_error(L, "a field name cannot be empty (at the top), hold a NUL byte or "
                                 "be invalid UTF-8");
    }
    if (eview_parse(h->ev))
        return luaL_error(L, "the event is not a JSON object");
    child_path(h, p, key, klen);
    set_path(L, h, 3);
    return 0;
}

static void collect_key(void *ud, const char *key, size_t klen)
{
    lua_State *L = ud;
    lua_pushlstring(L, key, klen);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

/* Iterator closure: upvalue 1 the key list, upvalue 2 the position. */
static int ev_pairs_next(lua_State *L)
{
    luaL_checkudata(L, 1, EVENT_MT); /* a script may call the iterator itself */
    lua_Integer i = lua_tointeger(L, lua_upvalueindex(2)) + 1;
    lua_pushinteger(L, i);
    lua_replace(L, lua_upvalueindex(2));
    if (lua_rawgeti(L, lua_upvalueindex(1), i) == LUA_TNIL)
        return 1;
    lua_pushcfunction(L, ev_index);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -3);
    lua_call(L, 2, 1);
    return 2;
}

static int ev_pairs(lua_State *L)
{
    struct proxy *p = to_proxy(L, 1);
    struct script_host *h = live_host(L, p);
    struct ev_val v;
    if (eview_get(h->ev, p->path, p->plen, &v))
        return luaL_error(L, "the event is not a JSON object");
    lua_newtable(L);
    if (v.kind == EVK_ARRAY) { /* an array iterates as ipairs would: 1..#a */
        lua_Integer n = v.size >= 0 ? v.size : edited_array_len(L, h, p);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_pushinteger(L, i);
            lua_rawseti(L, -2, i);
        }
    } else if (eview_keys(h->ev, p->path, p->plen, collect_key, L)) {
        return luaL_error(L, "the event is not a JSON object");
    }
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, ev_pairs_next, 2);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int ev_len(lua_State *L)
{
    struct proxy *p = to_proxy(L, 1);
    struct script_host *h = live_host(L, p);
    struct ev_val v;
    if (eview_get(h->ev, p->path, p->plen, &v))
        return luaL_error(L, "the event is not a JSON object");
    lua_Integer n = 0;
    if (v.kind == EVK_ARRAY)
        n = v.size >= 0 ? v.size : edited_array_len(L, h, p);
    lua_pushinteger(L, n);
    return 1;
}

static int ev_tostring(lua_State *L)
{
    struct proxy *p = to_proxy(L, 1);
    struct script_host *h = live_host(L, p);
    struct buf *out = &h->str; /* host-owned: an error raised below cannot leak it */
    buf_reset(out);
    if (p->plen == 0)
        eview_serialize(h->ev, out);
    else
        encode_proxy(L, h, p, out);
    lua_pushlstring(L, out->data ? out->data : "", out->len);
    return 1;
}

void script__event_register(lua_State *L)
{
    static const luaL_Reg meta[] = {
        {"__index", ev_index}, {"__newindex", ev_newindex}, {"__pairs", ev_pairs},
        {"__len", ev_len},     {"__tostring", ev_tostring}, {NULL, NULL},
    };
    luaL_newmetatable(L, EVENT_MT);
    luaL_setfuncs(L, meta, 0);
    lua_pushliteral(L, EVENT_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}
