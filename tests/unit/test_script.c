/* Unit tests of the Lua host (router/script.h, router/script.c): loading (errors as
 * "path:LINE: message"), the process() contract, handles and hot reload, and the sandbox:
 * missing libraries, binary chunks, locked metatables, per-script environments, and the
 * instruction and memory limits failing one call only. The event proxy is tested in
 * test_script_event.c, the spillway.* helpers in test_script_api.c. Scripts check what they
 * read with eq() from a one-line prelude (script_test.h). Cases that can hang run in a child. */
#include "script_test.h"

#include "router/script_int.h"

/* ---- loading and the process() contract ---- */

struct load_case {
    const char *name, *src;
    const char *err_prefix; /* NULL: loads */
    const char *err_has;
};

static const struct load_case load_cases[] = {
    {"ok.lua", "function process(ev) return true end", NULL, NULL},
    {"noproc.lua", "x = 1", "noproc.lua:1:", "process"},
    {"notfn.lua", "process = 5", "notfn.lua:1:", "process"},
    {"local.lua", "local function process(ev) return true end", "local.lua:1:", "process"},
    {"syntax.lua", "\n\nfunction process(ev) return ev. end", "syntax.lua:3:", NULL},
    {"syntax2.lua", "\nfunction process(ev)\n  if x then\nend", "syntax2.lua:4:", NULL},
    {"toplevel.lua", "\nerror('boom at load')\nfunction process(ev) return true end",
     "toplevel.lua:2:", "boom at load"},
    {"loop.lua", "while true do end function process(ev) return true end", NULL,
     "instruction limit exceeded"},
    {"mem.lua", "big = string.rep('x', 1e9) function process(ev) return true end", NULL, "memory"},
    {"helper.lua", "spillway.sample('k') function process(ev) return true end", NULL,
     "only inside process()"},
    {"dir/sub/name.lua", "\nfunction process(ev) return true", "dir/sub/name.lua:2:", NULL},
};

static void test_load(void **state)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(load_cases); i++) {
        const struct load_case *c = &load_cases[i];
        char err[1024];
        /* Without the prelude: line numbers are the case's own. */
        int hd = script_load(h, c->name, c->src, strlen(c->src), err, sizeof(err));
        int want_ok = !c->err_prefix && !c->err_has;
        if (want_ok ? hd < 0 : hd != -EINVAL) {
            print_error("%s: load returned %d (%s)\n", c->name, hd, hd < 0 ? err : "");
            bad++;
            continue;
        }
        if (want_ok)
            continue;
        if (c->err_prefix && strncmp(err, c->err_prefix, strlen(c->err_prefix)) != 0) {
            print_error("%s: error `%s` does not start with `%s`\n", c->name, err, c->err_prefix);
            bad++;
        }
        if (c->err_has && !strstr(err, c->err_has)) {
            print_error("%s: error `%s` does not mention `%s`\n", c->name, err, c->err_has);
            bad++;
        }
    }
    /* A binary chunk is refused as a script. */
    static const char bin[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n";
    char err[256];
    assert_int_equal(script_load(h, "bin.lua", bin, sizeof(bin) - 1, err, sizeof(err)), -EINVAL);
    /* The host still works after every failure above. */
    struct eview v;
    eview_init(&v);
    int hd = load(h, "function process(ev) return ev.a == 1 end");
    assert_int_equal(run(h, hd, &v, "{\"a\":1}", NULL, NULL), 1);
    assert_true(script_memory(h) > 0);
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(bad, 0);
}

struct ret_case {
    const char *ret;
    int rc;
};

static void test_return_values(void **state)
{
    static const struct ret_case cases[] = {
        {"return true", 1},
        {"return false", 0},
        {"return nil", 0},
        {"return", 0},
        {"", 0},
        {"return 0", 1},
        {"return 'no'", 1},
        {"return {}", 1},
        {"return false, true", 0},
        {"return true, false", 1},
        {"return ev", 1},
        {"return ev.missing", 0},
    };
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char src[128];
        snprintf(src, sizeof(src), "function process(ev) %s end", cases[i].ret);
        int hd = load(h, src);
        const char *err = NULL;
        int rc = run(h, hd, &v, "{\"a\":1}", NULL, &err);
        if (rc != cases[i].rc) {
            print_error("`%s`: rc %d, want %d (%s)\n", cases[i].ret, rc, cases[i].rc,
                        err ? err : "");
            bad++;
        }
        script_unload(h, hd);
    }
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(bad, 0);
}

static void test_runtime_errors(void **state)
{
    static const struct {
        const char *src, *err_has;
    } cases[] = {
        {"function process(ev) error('boom') end", "case.lua:1: boom"},
        {"function process(ev)\n  local x = nil\n  return x.y\nend", "case.lua:3:"},
        {"function process(ev) error({}) end", "error object is not a string"},
        {"function process(ev) return ev.nope.deeper end", "attempt to index a nil value"},
        {"function process(ev) return ev.tags[1.5] end", "integer representation"},
        {"function process(ev) local function f() return 1 + f() end return f() end", ""},
    };
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int ok_hd = load(h, "function process(ev) return ev.a == 1 end");
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        int hd = load(h, cases[i].src);
        const char *err = NULL;
        int rc = run(h, hd, &v, "{\"a\":1,\"tags\":[1]}", NULL, &err);
        if (rc != -1 || !err || !strstr(err, cases[i].err_has)) {
            print_error("case %zu: rc %d err `%s`, want -1 and `%s`\n", i, rc, err ? err : "",
                        cases[i].err_has);
            bad++;
        }
        /* A failed call fails that call only. */
        if (run(h, ok_hd, &v, "{\"a\":1}", NULL, &err) != 1) {
            print_error("case %zu: the next call failed: %s\n", i, err ? err : "");
            bad++;
        }
    }
    /* An event that is not a JSON object fails the call that reads it. */
    int rd = load(h, "function process(ev) return ev.a ~= nil end");
    const char *err = NULL;
    static const char *const not_objects[] = {"[1,2]", "\"text\"", "{\"a\":", ""};
    for (size_t i = 0; i < N_ELEMS(not_objects); i++) {
        int rc = run(h, rd, &v, not_objects[i], NULL, &err);
        if (rc != -1 || !strstr(err, "not a JSON object")) {
            print_error("event `%s`: rc %d err %s\n", not_objects[i], rc, rc < 0 ? err : "");
            bad++;
        }
    }
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(bad, 0);
}

static void test_handles(void **state)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int a = load(h, "function process(ev) ev.by = 'a' return true end");
    int b = load(h, "function process(ev) ev.by = 'b' return true end");
    assert_int_not_equal(a, b);
    assert_int_equal(run(h, a, &v, "{}", NULL, NULL), 1);
    assert_true(event_is(&v, "{\"by\":\"a\"}"));
    /* Hot reload: handle a now runs b's function; b's slot is free again. */
    script_replace(h, a, b);
    assert_int_equal(run(h, a, &v, "{}", NULL, NULL), 1);
    assert_true(event_is(&v, "{\"by\":\"b\"}"));
    const char *err = NULL;
    assert_int_equal(run(h, b, &v, "{}", NULL, &err), -1);
    script_unload(h, a);
    assert_int_equal(run(h, a, &v, "{}", NULL, &err), -1);
    script_unload(h, a); /* twice: a no-op */
    int c = load(h, "function process(ev) return true end");
    assert_true(c == a || c == b); /* free slots are reused */
    assert_int_equal(run(h, c, &v, "{}", NULL, NULL), 1);
    eview_free(&v);
    script_host_free(h);
    script_host_free(NULL);
}

/* ---- the sandbox ---- */

static void test_sandbox_globals(void **state)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int hd = load(
        h, "local function get(path) local x = _ENV for part in path:gmatch('[^.]+') do"
           " if x == nil then return nil end x = x[part] end return x end "
           "local banned = {'io', 'os.execute', 'os.getenv', 'os.exit', 'os.remove', 'os.rename',"
           " 'os.tmpname', 'os.setlocale', 'require', 'dofile', 'loadfile', 'debug', 'package',"
           " 'string.dump', 'collectgarbage', 'rawset', 'rawget', 'rawequal', 'rawlen', 'module',"
           " 'loadstring', 'setfenv', 'getfenv', 'newproxy', 'os.date', 'os.difftime',"
           " 'os.getenv'} "
           "local kept = {'os.time', 'os.clock', 'pcall', 'pairs', 'string.format',"
           " 'table.concat', 'math.floor', 'utf8.char', 'coroutine.wrap', 'tostring', 'load',"
           " 'spillway.sample', 'spillway.state.get'} "
           "function process(ev) local bad = {}"
           " for _, p in ipairs(banned) do if get(p) ~= nil then bad[#bad + 1] = p end end"
           " for _, p in ipairs(kept) do if get(p) == nil then bad[#bad + 1] = 'no ' .. p end end"
           " if ('').dump ~= nil then bad[#bad + 1] = '(\"\").dump' end"
           " if #bad > 0 then error('sandbox: ' .. table.concat(bad, ', ')) end"
           " eq(math.type(os.time()), 'integer') eq(type(os.clock()), 'number')"
           " local n = 0 for _ in pairs(os) do n = n + 1 end eq(n, 2, 'os: time, clock')"
           " return true end");
    const char *err = NULL;
    int rc = run(h, hd, &v, "{}", NULL, &err);
    if (rc != 1)
        print_error("%s\n", err ? err : "");
    assert_int_equal(rc, 1);
    eview_free(&v);
    script_host_free(h);
}

static void test_sandbox_load(void **state)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int hd = load(h, "function process(ev)"
                     " local f, e = load('\\27Lua\\84\\0\\25\\147\\r\\n\\26\\n')"
                     " eq(f, nil, 'binary chunk') assert(e, 'an error message')"
                     " f, e = load('\\27Lua', 'x', 'b') eq(f, nil, 'binary chunk, mode b')"
                     " f = load('return 1 + 1') eq(f(), 2, 'text chunk')"
                     " f = load('return x', 'chunk', 't', {x = 5}) eq(f(), 5, 'env')"
                     " f, e = load('return +') eq(f, nil) assert(e:find('chunk') or e:find('load'))"
                     " return true end");
    const char *err = NULL;
    int rc = run(h, hd, &v, "{}", NULL, &err);
    if (rc != 1)
        print_error("%s\n", err ? err : "");
    assert_int_equal(rc, 1);
    eview_free(&v);
    script_host_free(h);
}

/* Script a tries to change what script b sees; b checks it sees the originals. */
static int isolation_case(const char *attack, char *msg, size_t msglen)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    char src[1024];
    snprintf(src, sizeof(src), "function process(ev) pcall(function() %s end) return true end",
             attack);
    int a = load(h, src);
    int b = load(h, "function process(ev) eq(string.upper('a'), 'A', 'string.upper')"
                    " eq(('a'):upper(), 'A', 'method upper') eq(_ENV.tostring(1), '1', 'tostring')"
                    " eq(leaked, nil, 'a global from another script') eq(type(pairs), 'function')"
                    " eq(type(string.format), 'function') eq(math.floor(1.5), 1)"
                    " eq(type(spillway.sample), 'function') return true end");
    const char *err = NULL;
    int rc = run(h, a, &v, "{}", NULL, &err);
    if (rc == 1)
        rc = run(h, b, &v, "{}", NULL, &err);
    snprintf(msg, msglen, "%s", rc == 1 ? "" : err ? err : "?");
    /* A script loaded after the attack sees the originals too. */
    if (rc == 1) {
        char lerr[512];
        int c = try_load(h, "later.lua",
                         "function process(ev) eq(string.upper('a'), 'A') eq(leaked, nil)"
                         " eq(_ENV.tostring(1), '1') return true end",
                         lerr, sizeof(lerr));
        rc = c < 0 ? -1 : run(h, c, &v, "{}", NULL, &err);
        if (rc != 1)
            snprintf(msg, msglen, "later script: %s", c < 0 ? lerr : err);
    }
    eview_free(&v);
    script_host_free(h);
    return rc;
}

static void test_sandbox_isolation(void **state)
{
    static const char *const attacks[] = {
        "string.upper = function() return 'hacked' end",
        "string = nil",
        "getmetatable('').__index.upper = nil",
        "leaked = 1",
        "_G.leaked = 1",
        "tostring = function() return 'hacked' end",
        "spillway.sample = nil",
        "math.floor = nil",
        "setmetatable(_ENV, {})",
        "getmetatable(_ENV).__index.leaked = 1",
        "table.insert = nil pairs = nil",
    };
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(attacks); i++) {
        char msg[512];
        if (isolation_case(attacks[i], msg, sizeof(msg)) != 1) {
            print_error("after `%s`: %s\n", attacks[i], msg);
            bad++;
        }
    }
    /* getmetatable("") does not hand out the string library. */
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int hd = load(h, "function process(ev) local mt = getmetatable('')"
                     " assert(type(mt) ~= 'table', 'the string metatable is reachable')"
                     " assert(getmetatable(ev) ~= nil and type(getmetatable(ev)) ~= 'table',"
                     " 'the event metatable is reachable')"
                     " eq(pcall(setmetatable, ev, {}), false) return true end");
    const char *err = NULL;
    int rc = run(h, hd, &v, "{}", NULL, &err);
    if (rc != 1)
        print_error("%s\n", err ? err : "");
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(rc, 1);
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): router/script.c safe_load() gives a chunk loaded without an env
 * argument the shared global table as _ENV (luaL_loadbufferx's default), not the calling script's
 * environment. A script can therefore reach and change what every other script in the same host
 * sees, which the per-script environments exist to prevent: after script A runs load("tostring =
 * function() return 'hacked' end")(), script B's tostring(1) returns "hacked"; load("leaked = 1")()
 * makes `leaked` visible to B; and load("string.upper = function() return 'hacked' end")() changes
 * ("a"):upper() in every script (the string metatable's __index is that shared table). Expected:
 * each of these stays inside script A. */
static void test_sandbox_isolation_through_load(void **state)
{
    static const char *const attacks[] = {
        "load('tostring = function() return \"hacked\" end')()",
        "load('leaked = 1')()",
        "load('string.upper = function() return \"hacked\" end')()",
        "load('return _G')().leaked = 1",
    };
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(attacks); i++) {
        char msg[512];
        if (isolation_case(attacks[i], msg, sizeof(msg)) != 1) {
            print_error("after `%s`: %s\n", attacks[i], msg);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* Escapes tried through the corners of the language: a binary chunk handed to load() by a reader
 * function or with mode "b", string.dump reached through the string metatable, the string
 * metatable replaced or its __index reached, and coroutines nested until the C stack would
 * overflow. Each must fail as an ordinary error inside the call, and the host stays usable. */
static void test_sandbox_escapes(void **state)
{
    static const char *const attempts[] = {
        "local f = load(function() return nil end) error('a reader function was accepted')",
        "local f = load(string.char(27) .. 'LuaT', 'x', 'b') assert(f == nil) error('refused')",
        "local f = assert(load(('').dump)) error('dump reachable')",
        "setmetatable('', {}) error('string metatable replaced')",
        "local mt = getmetatable('') local ix = mt.__index error('got __index')",
        "local function f() return coroutine.wrap(f)() end f()",
        ("local function f() local co = coroutine.create(f) local ok, e = coroutine.resume(co)"
         " error(e, 0) end f()"),
        "local s = string.format('%099999d', 1)",
        "local s = string.rep('x', 1e6, ',') .. string.rep('y', 1e9)",
        "debug.sethook() error('debug reachable')",
        "local t = require('os') error('require reachable')",
    };
    static const struct script_limits lim = {10000000, 16 << 20};
    struct script_host *h = new_host(&lim, NULL, 1);
    struct eview v;
    eview_init(&v);
    int ok_hd = load(h, "function process(ev) ev.ok = ('a'):upper() return true end");
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(attempts); i++) {
        char src[512];
        snprintf(src, sizeof(src), "function process(ev) %s return true end", attempts[i]);
        int hd = load(h, src);
        const char *err = NULL;
        int rc = run(h, hd, &v, "{}", NULL, &err);
        if (rc != -1 || strstr(err, "reachable") || strstr(err, "accepted") ||
            strstr(err, "replaced")) {
            print_error("`%s`: rc %d err %s\n", attempts[i], rc, err ? err : "");
            bad++;
        }
        if (run(h, ok_hd, &v, "{}", NULL, &err) != 1 || !event_is(&v, "{\"ok\":\"A\"}")) {
            print_error("after `%s`: %s\n", attempts[i], err ? err : "");
            bad++;
        }
        script_unload(h, hd);
    }
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(bad, 0);
}

static void gc_loop_child(void)
{
    int hd;
    struct script_host *h = child_host(
        100000, 64 << 20, NULL, &hd,
        "function process(ev) setmetatable({}, {__gc = function() while true do end end})"
        " local t = {} for i = 1, 2e4 do t[i] = {i} end return true end");
    struct eview v;
    eview_init(&v);
    for (int i = 0; i < 20; i++)
        run(h, hd, &v, "{}", NULL, NULL);
    eview_free(&v);
    script_host_free(h); /* lua_close runs every pending finalizer */
    _exit(0);
}

/* A finalizer runs outside any call, with Lua's hooks off: a __gc metamethod that loops would
 * escape the instruction limit and hang the worker at the next collection (or at stop). Runs in
 * a child killed after 5 s. */
static void test_finalizers_bounded(void **state)
{
    in_child(gc_loop_child, 5, "a __gc metamethod with an endless loop");
}

static void test_instruction_limit(void **state)
{
    static const struct script_limits lim = {100000, 64 << 20};
    static const char *const loops[] = {
        "while true do end",
        "local i = 0 repeat i = i + 1 until false",
        "local function f() return f() end f()",
        "coroutine.wrap(function() while true do end end)()",
        "local co = coroutine.create(function() while true do end end)"
        " local ok, e = coroutine.resume(co) eq(ok, false) error(e, 0)",
        "local co = coroutine.wrap(function() while true do coroutine.yield() end end)"
        " while true do co() end",
        "table.sort({3, 2, 1, 5, 4, 7, 6}, function(a, b) while true do end end)",
        "local s = setmetatable({}, {__index = function(t, k) while true do end end}) local x = "
        "s.x",
        "string.gsub('aaaa', 'a', function() while true do end end)",
    };
    struct script_host *h = new_host(&lim, NULL, 1);
    struct eview v;
    eview_init(&v);
    int ok_hd = load(h, "function process(ev) local n = 0 for i = 1, 1000 do n = n + i end"
                        " return n == 500500 end");
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(loops); i++) {
        char src[512];
        snprintf(src, sizeof(src), "function process(ev) %s return true end", loops[i]);
        int hd = load(h, src);
        for (int rep = 0; rep < 2; rep++) {
            const char *err = NULL;
            int rc = run(h, hd, &v, "{}", NULL, &err);
            if (rc != -1 || !strstr(err, "instruction limit exceeded")) {
                print_error("`%s`: rc %d err %s\n", loops[i], rc, err ? err : "");
                bad++;
            }
            /* The next call on the same host gets a fresh budget. */
            if (run(h, ok_hd, &v, "{}", NULL, &err) != 1) {
                print_error("after `%s`: %s\n", loops[i], err ? err : "");
                bad++;
            }
        }
        script_unload(h, hd);
    }
    /* The budget is per call: many calls each under it all succeed. */
    for (int i = 0; i < 200; i++)
        bad += run(h, ok_hd, &v, "{}", NULL, NULL) != 1;
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(bad, 0);
}

static void pcall_loop_child(void)
{
    int hd;
    struct script_host *h =
        child_host(100000, 64 << 20, NULL, &hd,
                   "function process(ev)"
                   " while true do pcall(function() while true do end end) end end");
    struct eview v;
    eview_init(&v);
    const char *err = NULL;
    int rc = run(h, hd, &v, "{}", NULL, &err);
    int ok = rc == -1 && strstr(err, "instruction limit");
    eview_free(&v);
    script_host_free(h);
    _exit(ok ? 0 : 3);
}

/* Regression (was a bug, fixed): router/script.c count_hook() raises "instruction limit exceeded"
 * as an ordinary Lua error, which pcall/xpcall catch. Once over the limit it raises again 1,000
 * instructions later, and since Lua resets the hook count before calling the hook, that is again
 * inside the inner loop; so `while true do pcall(function() while true do end end) end` in
 * process() never returns (the worker's partition stalls for good) instead of failing with
 * "instruction limit exceeded". Runs in a child killed after 5 s. */
static void test_instruction_limit_not_catchable(void **state)
{
    in_child(pcall_loop_child, 5, "pcall around an endless loop");
}

static void c_loop_child(void)
{
    int hd;
    struct script_host *h =
        child_host(100000, 8 << 20, NULL, &hd,
                   "function process(ev) table.move({}, 1, 1e15, 2) return true end");
    struct eview v;
    eview_init(&v);
    int rc = run(h, hd, &v, "{}", NULL, NULL);
    eview_free(&v);
    script_host_free(h);
    _exit(rc == -1 ? 0 : 3);
}

/* Regression (was a bug, fixed): router/script.c bounds a call only by a count hook on Lua
 * instructions (and memory), so a library function that loops in C without allocating runs
 * unbounded: table.move({}, 1, 1e15, 2) in process() loops 10^15 times inside one instruction and
 * the call never returns (Lua patterns such as ('a'):rep(40):find(('a?'):rep(40) .. ('a'):rep(40))
 * do the same). Expected: the call fails like any runaway script. Runs in a child killed
 * after 5 s. */
static void test_c_loops_bounded(void **state)
{
    in_child(c_loop_child, 5, "table.move over 10^15 slots");
}

static void test_memory_limit(void **state)
{
    static const struct script_limits lim = {1000000000, 8 << 20};
    static const char *const hogs[] = {
        "local s = string.rep('x', 1e9)",
        "local t = {} for i = 1, 1e9 do t[i] = i end",
        "local t = {} for i = 1, 1e9 do t[#t + 1] = 'item' .. i end",
        "local s = 'x' while true do s = s .. s end",
        "local t = {} for i = 1, 1e9 do t[i] = {i} end",
        "local s = string.rep('x', 1e6) local t = {} for i = 1, 1e9 do t[i] = s .. i end",
        "local f = function() end local t = {} while true do t[#t + 1] = coroutine.create(f) end",
    };
    struct script_host *h = new_host(&lim, NULL, 1);
    struct eview v;
    eview_init(&v);
    int ok_hd = load(h, "function process(ev) local t = {} for i = 1, 1000 do t[i] = i end"
                        " ev.n = #t return true end");
    size_t base = script_memory(h);
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(hogs); i++) {
        char src[512];
        snprintf(src, sizeof(src), "function process(ev) %s return true end", hogs[i]);
        int hd = load(h, src);
        const char *err = NULL;
        int rc = run(h, hd, &v, "{}", NULL, &err);
        if (rc != -1 || !strstr(err, "memory")) {
            print_error("`%s`: rc %d err %s\n", hogs[i], rc, err ? err : "");
            bad++;
        }
        if (run(h, ok_hd, &v, "{}", NULL, &err) != 1 || !event_is(&v, "{\"n\":1000}")) {
            print_error("after `%s`: %s\n", hogs[i], err ? err : "");
            bad++;
        }
        script_unload(h, hd);
        if (script_memory(h) > (size_t)(8 << 20)) {
            print_error("after `%s`: %zu bytes in use, over the limit\n", hogs[i],
                        script_memory(h));
            bad++;
        }
    }
    /* What a failed call allocated is given back: well under the limit again. */
    int gc = load(h, "function process(ev) local t = {} for i = 1, 5e4 do t[i] = 'x' .. i end"
                     " return true end");
    if (run(h, gc, &v, "{}", NULL, NULL) != 1) {
        print_error("a 3 MiB allocation failed after the hogs: %zu bytes in use (base %zu)\n",
                    script_memory(h), base);
        bad++;
    }
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(bad, 0);
}

/* Garbage left by earlier calls is not held against a call: when an allocation would pass the
 * limit, Lua collects and retries, and only a retry that still does not fit fails the call. Each
 * call leaves 3 MiB of garbage behind under a 8 MiB limit; without the retry every other call
 * fails. */
static void test_memory_limit_collects_first(void **state)
{
    static const struct script_limits lim = {1000000000, 8 << 20};
    struct script_host *h = new_host(&lim, NULL, 1);
    struct eview v;
    eview_init(&v);
    lua_gc(h->L, LUA_GCSTOP); /* the worst case: the collector never ran on its own */
    int hd = load(h, "function process(ev) local t = {} for i = 1, 3000 do"
                     " t[i] = ('y'):rep(1000) .. i end ev.n = #t return true end");
    int bad = 0;
    for (int i = 0; i < 10; i++) {
        const char *err = NULL;
        if (run(h, hd, &v, "{}", NULL, &err) != 1) {
            print_error("call %d: %s (%zu bytes in use)\n", i, err ? err : "", script_memory(h));
            bad++;
        }
    }
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_return_values),
        cmocka_unit_test(test_runtime_errors),
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_sandbox_globals),
        cmocka_unit_test(test_sandbox_load),
        cmocka_unit_test(test_sandbox_isolation),
        cmocka_unit_test(test_sandbox_isolation_through_load),
        cmocka_unit_test(test_sandbox_escapes),
        cmocka_unit_test(test_finalizers_bounded),
        cmocka_unit_test(test_instruction_limit),
        cmocka_unit_test(test_instruction_limit_not_catchable),
        cmocka_unit_test(test_c_loops_bounded),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_memory_limit_collects_first),
    };
    return cmocka_run_group_tests_name("script", tests, NULL, NULL);
}
