/* The Lua event proxy (router/script_event.c through router/script.h) and the event view under
 * it (core/eview.h): random reads and writes of an event's fields by a script, then
 * eview_serialize.
 *
 * Input: up to the first newline, an event (NDJSON); after it, operations, three bytes each
 * (operation, a, b; the first 200 run, so one input stays a few milliseconds). The event is used
 * when normalize_json takes it and jansson loads the result without duplicate keys (what a route
 * sees); else a fixed event with every JSON type, nesting, arrays, escapes and dotted keys stands
 * in. One script, loaded once, reads the operations from spillway.state.get("ops") and runs them,
 * each under pcall: reads, writes of scalars, strings of any bytes, tables (lists, maps, mixed,
 * nested, cyclic), functions, proxies; deletes; writes below the top level and into arrays; dotted
 * paths; pairs, ipairs, #, tostring; moving to a nested proxy and back. It runs twice on the
 * event, as two routes do (the edits forgotten in between); the second run also touches a proxy
 * kept from the first, which must fail cleanly.
 *
 * What must hold: a field of the event written with a string key and a scalar (or deleted)
 * reads back as written and is listed by pairs (or no longer); eview_serialize succeeds and
 * gives one line holding a JSON object that jansson loads with no duplicate key; a run that
 * wrote nothing gives the event back byte for byte; no crash, no leak, no hang (the host's
 * instruction limit ends a runaway call). */
#include <jansson.h>

#include "core/eview.h"
#include "fuzz.h"
#include "router/script.h"

static const char fallback_event[] =
    "{\"timestamp\":\"2026-01-01T00:00:00.123456Z\",\"kind\":\"log\",\"source\":\"app\","
    "\"s\":\"x\",\"i\":42,\"neg\":-7,\"f\":1.5,\"e\":1e3,\"big\":9223372036854775807,\"huge\":"
    "1e300,\"t\":true,"
    "\"fa\":false,\"n\":null,\"http\":{\"status\":200,\"method\":\"GET\",\"h\":{\"d\":\"deep\"}},"
    "\"tags\":[\"a\",\"b\",{\"k\":\"v\"},[1,2]],\"empty\":[],\"eo\":{},"
    "\"esc\":\"q\\\"b\\\\s\\u00e9\\n\\u0000z\",\"a.b\":\"dotted\",\"k\\u0065y\":\"kv\","
    "\"received_at\":\"2026-01-01T00:00:00.123456Z\"}";

/* The operations interpreter. stash is an upvalue, so a proxy kept by the first run is still
 * there for the second. */
static const char script[] =
    "local stash\n"
    "local K = {'a', 'b', 's', 'i', 'f', 'n', 't', 'http', 'status', 'tags', 'h', 'd', 'k',\n"
    "  'x', 'e', 'big', 'esc', 'empty', 'eo', 'http.status', 'http.h.d', 'tags.1', 'a.b', '',\n"
    "  'timestamp', 'kind', 'source', 'received_at', 'message', 'key', '\\u{e9}', 'k\\0z',\n"
    "  '1', '2', '.', 'a..b', '\\xff'}\n"
    "local I = {1, 2, 3, 4, 0, -1, math.maxinteger, math.mininteger, 1.5}\n"
    "local function key(ops, at, a)\n"
    "  if a < 200 then return K[a % #K + 1] end\n"
    "  if a < 240 then return I[a % #I + 1] end\n"
    "  return ops:sub(at, at + a % 8)\n"
    "end\n"
    "local function val(ops, at, b, ev, cur)\n"
    "  local c = b % 40\n"
    "  if c == 0 then return nil elseif c == 1 then return true elseif c == 2 then return false\n"
    "  elseif c == 3 then return 0 elseif c == 4 then return -1 elseif c == 5 then return 42\n"
    "  elseif c == 6 then return 1.5 elseif c == 7 then return -0.0\n"
    "  elseif c == 8 then return 1e308 elseif c == 9 then return math.huge\n"
    "  elseif c == 10 then return 0/0 elseif c == 11 then return math.maxinteger\n"
    "  elseif c == 12 then return math.mininteger elseif c == 13 then return ''\n"
    "  elseif c == 14 then return 'str' elseif c == 15 then return 'q\"b\\\\s\\n\\t'\n"
    "  elseif c == 16 then return '\\0' elseif c == 17 then return '\\xff\\xfe'\n"
    "  elseif c == 18 then return '\\u{e9}\\u{10FFFF}' elseif c == 19 then return "
    "'\\xed\\xa0\\x80'\n"
    "  elseif c == 20 then return {} elseif c == 21 then return {1, 2, 3}\n"
    "  elseif c == 22 then return {k = 'v'} elseif c == 23 then return {a = {b = {1, {c = "
    "false}}}}\n"
    "  elseif c == 24 then return {1, 2, x = 3} elseif c == 25 then return {[1] = 'a', [3] = 'c'}\n"
    "  elseif c == 26 then return {[1.5] = 1} elseif c == 27 then return {[true] = 1}\n"
    "  elseif c == 28 then local t = {} t.self = t return t\n"
    "  elseif c == 29 then return print or tostring\n"
    "  elseif c == 30 then return cur elseif c == 31 then return ev\n"
    "  elseif c == 32 then return ev.http elseif c == 33 then return ev.tags\n"
    "  elseif c == 34 then return {ev.http, cur} elseif c == 35 then return ('x'):rep(300)\n"
    "  elseif c == 36 then return {['k\\0z'] = 1, [''] = 2}\n"
    "  elseif c == 37 then return {0/0, math.huge}\n"
    "  end\n"
    "  return ops:sub(at, at + b % 8)\n"
    "end\n"
    "local function check(ev, k, v)\n"
    "  local tv = type(v)\n"
    "  if type(k) ~= 'string' then return end\n"
    "  if tv == 'number' and (v ~= v or v == math.huge or v == -math.huge) then return end\n"
    "  if tv == 'string' and not utf8.len(v) then return end\n"
    "  if tv ~= 'number' and tv ~= 'string' and tv ~= 'boolean' and tv ~= 'nil' then return end\n"
    "  local got, listed = ev[k], false\n"
    "  for kk in pairs(ev) do if kk == k then listed = true break end end\n"
    "  if (got ~= v and (v ~= nil or not k:find('.', 1, true))) or listed ~= (v ~= nil) then\n"
    "    spillway.state.set('mismatch', string.format('ev[%q] = %s (%s) reads back %s (%s), '\n"
    "      .. '%s by pairs', k, tostring(v), tv, tostring(got), type(got),\n"
    "      listed and 'listed' or 'not listed'))\n"
    "  end\n"
    "end\n"
    "function process(ev)\n"
    "  local ops = spillway.state.get('ops') or ''\n"
    "  local phase = spillway.state.get('phase')\n"
    "  if phase == '1' then stash = nil end\n"
    "  local cur, wrote = ev, false\n"
    "  for at = 1, math.min(#ops - 2, 3 * 200), 3 do\n"
    "    local op, a, b = ops:byte(at, at + 2)\n"
    "    local k = key(ops, at, a)\n"
    "    op = op % 16\n"
    "    if op == 1 or op == 2 or op == 3 or op == 9 or op == 10 or op == 13 or op == 14 then\n"
    "      wrote = true\n"
    "    end\n"
    "    local ok, e = pcall(function()\n"
    "      if op == 0 then local x = cur[k] if type(x) == 'string' then local _ = #x end\n"
    "      elseif op == 1 then local v = val(ops, at, b, ev, cur) cur[k] = v\n"
    "        if cur == ev then check(ev, k, v) end\n"
    "      elseif op == 2 then cur[k] = nil if cur == ev then check(ev, k, nil) end\n"
    "      elseif op == 3 then local t = cur[k]\n"
    "        if type(t) ~= 'userdata' then cur[k] = {} t = cur[k] end\n"
    "        if type(t) == 'userdata' then t[key(ops, at, b)] = val(ops, at, a, ev, cur) end\n"
    "      elseif op == 4 then local n = 0\n"
    "        for kk, vv in pairs(cur) do n = n + 1 if n > 64 then break end\n"
    "          if type(vv) == 'userdata' then local _ = #vv end end\n"
    "      elseif op == 5 then local _ = #cur\n"
    "      elseif op == 6 then local _ = tostring(cur)\n"
    "      elseif op == 7 then local x = cur[k] if type(x) == 'userdata' then cur = x end\n"
    "      elseif op == 8 then cur = ev\n"
    "      elseif op == 9 then cur[k] = cur[key(ops, at, b)]\n"
    "      elseif op == 10 then cur[k] = ev[key(ops, at, b)]\n"
    "      elseif op == 11 then local n = 0\n"
    "        for i, v in ipairs(cur) do n = n + 1 if n > 64 then break end end\n"
    "      elseif op == 12 then\n"
    "        if phase == '1' then stash = cur elseif stash then local _ = stash[k] end\n"
    "      elseif op == 13 then ev[tostring(key(ops, at, a)) .. '.' .. tostring(key(ops, at, b))]"
    " = val(ops, at, b, ev, cur)\n"
    "      elseif op == 14 then cur[#cur + 1] = val(ops, at, b, ev, cur)\n"
    "      elseif op == 15 then local _ = cur == ev, cur ~= ev, type(cur)\n"
    "      end\n"
    "    end)\n"
    "    if not ok and tostring(e):find('a nil value (global', 1, true) then\n"
    "      spillway.state.set('harness', tostring(e))\n"
    "    end\n"
    "  end\n"
    "  return wrote\n"
    "end\n";

/* spillway.state.set("mismatch", what): the script saw a write it could not read back;
 * ("harness", what): the script called something the sandbox does not have. */
static int on_state_set(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    if (klen == 8 && !memcmp(key, "mismatch", 8))
        fuzz_fail("event proxy: %.*s", (int)vlen, val ? val : "");
    if (klen == 7 && !memcmp(key, "harness", 7))
        fuzz_fail("the fuzz_event script itself is wrong: %.*s", (int)vlen, val ? val : "");
    return 0;
}

static struct script_host *host;
static int handle;
static struct eview view;

static void cleanup(void)
{
    eview_free(&view);
    script_host_free(host);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const struct script_limits lim = {2000000, 64 << 20};
    static const struct script_env env = {.state_set = on_state_set};
    host = script_host_new(&lim, &env, 1);
    char err[1024];
    handle =
        host ? script_load(host, "fuzz_event.lua", script, strlen(script), err, sizeof(err)) : -1;
    if (handle < 0) {
        fprintf(stderr, "fuzz_event: cannot load the script: %s\n", host ? err : "no host");
        abort();
    }
    eview_init(&view);
    atexit(cleanup);
    return 0;
}

/* One route's run over the view (the event already set), then the checks. */
static void run_once(const char *phase, const char *ev, size_t evlen, const char *ops,
                     size_t opslen)
{
    static const struct script_route route = {"fuzz", 1.0};
    script_shared_begin(host);
    script_shared_put(host, "ops", 3, ops, opslen);
    script_shared_put(host, "phase", 5, phase, 1);
    const char *err = NULL;
    int rc = script_run(host, handle, &view, &route, &err);
    FUZZ_CHECK(rc == 0 || rc == 1 || (rc == -1 && err), "script_run returned %d", rc);
    struct buf out = {0};
    int src = eview_serialize(&view, &out);
    FUZZ_CHECK(src == 0, "eview_serialize returned %d after run %s (script: %s)", src, phase,
               rc < 0 ? err : "ok");
    fuzz_check_object("eview_serialize", out.data, out.len,
                      JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES);
    if (rc == 0)
        FUZZ_CHECK(out.len == evlen && !memcmp(out.data, ev, evlen),
                   "a run that wrote nothing changed the event:\n  in  %.*s\n  out %.*s",
                   (int)evlen, ev, (int)out.len, out.data);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t evlen = nl ? (size_t)(nl - s) : size;
    const char *ops = nl ? nl + 1 : s + size;
    size_t opslen = nl ? size - evlen - 1 : 0;

    struct recv_time rt = fuzz_recv_time();
    struct normalizer norm;
    normalizer_init(&norm, "app", NULL, "");
    struct buf ev = {0};
    uint64_t hash;
    int has_hash;
    const char *err;
    if (normalize_json(&norm, s, evlen, &rt, &ev, &hash, &has_hash, &err) != 0 ||
        !fuzz_jansson_ok(ev.data, ev.len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)) {
        buf_reset(&ev);
        buf_append(&ev, fallback_event, sizeof(fallback_event) - 1);
    }
    normalizer_free(&norm);

    eview_reset(&view, ev.data, ev.len);
    run_once("1", ev.data, ev.len, ops, opslen);
    eview_clear_edits(&view); /* the next route sees the event as it arrived */
    run_once("2", ev.data, ev.len, ops, opslen);
    eview_reset(&view, "{}", 2); /* the view must not point into ev once it is freed */
    buf_free(&ev);
    return 0;
}
