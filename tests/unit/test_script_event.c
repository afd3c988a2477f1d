/* Unit tests of the event proxy (router/script_event.c): reads of every JSON type, nested
 * objects, dotted paths and arrays; writes of scalars and tables (lists, maps, nesting, nil
 * deleting, copies of parts of the event) checked on the serialized event; what cannot be
 * stored; pairs, #, tostring; nested proxies kept past their call; and every route seeing the
 * event as it arrived. */
#include "script_test.h"

/* ---- the event proxy: reads ---- */

static const char doc[] =
    "{\"s\":\"x\",\"i\":42,\"neg\":-7,\"zero\":0,\"f\":1.5,\"e\":1e3,\"big\":12345678901234567890,"
    "\"t\":true,\"fa\":false,\"n\":null,"
    "\"http\":{\"status\":200,\"method\":\"GET\",\"h\":{\"d\":\"deep\"}},"
    "\"tags\":[\"a\",\"b\",{\"k\":\"v\"}],\"empty\":[],\"eo\":{},"
    "\"esc\":\"q\\\"b\\\\s\\u00e9\\n\\t\\u0000z\",\"a.b\":\"dotted\",\"k\\u0065y\":\"kv\"}";

static const struct {
    const char *what, *body;
} read_cases[] = {
    {"string", "eq(ev.s, 'x') eq(type(ev.s), 'string')"},
    {"integers", "eq(ev.i, 42) eq(math.type(ev.i), 'integer') eq(ev.neg, -7) eq(math.type(ev.neg), "
                 "'integer') eq(math.type(ev.zero), 'integer')"},
    {"floats",
     "eq(ev.f, 1.5) eq(math.type(ev.f), 'float') eq(ev.e, 1000.0) eq(math.type(ev.e), 'float')"
     " eq(math.type(ev.big), 'float') eq(ev.big, 1.2345678901234567e19)"},
    {"booleans", "eq(ev.t, true) eq(ev.fa, false)"},
    {"null", "eq(ev.n, nil) eq(type(ev.n), 'nil')"},
    {"nested", "eq(ev.http.status, 200) eq(ev.http.method, 'GET') eq(ev.http.h.d, 'deep')"
               " eq(type(ev.http), 'userdata')"},
    {"dotted path", "eq(ev['http.status'], 200) eq(ev['http.h.d'], 'deep')"},
    {"dotted key", "eq(ev['a.b'], 'dotted')"},
    {"escaped key", "eq(ev.key, 'kv')"},
    {"arrays", "eq(ev.tags[1], 'a') eq(ev.tags[2], 'b') eq(ev.tags[3].k, 'v') eq(#ev.tags, 3)"
               " eq(ev.tags[0], nil) eq(ev.tags[4], nil) eq(ev.tags[-1], nil) eq(#ev.empty, 0)"},
    {"ipairs", "local got = {} for i, x in ipairs(ev.tags) do got[i] = type(x) end"
               " eq(table.concat(got, ','), 'string,string,userdata')"},
    {"missing", "eq(ev.missing, nil) eq(ev.http.missing, nil) eq(ev['no.such.path'], nil)"
                " eq(ev.tags.x, nil) eq(ev.eo.x, nil) eq(ev.http.h.d.x, nil)"},
    {"escaped string", "eq(ev.esc, 'q\"b\\\\s\\u{e9}\\n\\t\\0z') eq(#ev.esc, 11)"},
    {"read twice", "local a, b = ev.http, ev.http eq(a.status, b.status) eq(ev.s, ev.s)"},
    {"in a coroutine",
     "coroutine.wrap(function() eq(ev.s, 'x') eq(ev.http.status, 200) end)()"
     " local co = coroutine.create(function(e) coroutine.yield(e.i) return e.tags[2] end)"
     " local _, a = coroutine.resume(co, ev) local _, b = coroutine.resume(co)"
     " eq(a, 42) eq(b, 'b')"},
};

static void test_reads(void **state)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(read_cases); i++) {
        char src[1024];
        snprintf(src, sizeof(src), "function process(ev) %s return true end", read_cases[i].body);
        int hd = load(h, src);
        const char *err = NULL;
        int rc = run(h, hd, &v, doc, NULL, &err);
        if (rc != 1) {
            print_error("%s: rc %d: %s\n", read_cases[i].what, rc, err ? err : "");
            bad++;
            continue;
        }
        /* Reading edits nothing: the event goes out byte for byte. */
        char *s = serialized(&v);
        if (strcmp(s, doc) != 0) {
            print_error("%s: reads changed the event: %s\n", read_cases[i].what, s);
            bad++;
        }
        free(s);
        script_unload(h, hd);
    }
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(bad, 0);
}

/* ---- the event proxy: writes ---- */

static const char wdoc[] = "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"]}";

struct write_case {
    const char *body; /* statements before `return true` */
    const char *want; /* the serialized event (jansson-equal) */
};

static const struct write_case write_cases[] = {
    {"ev.s = 'new'", "{\"a\":1,\"s\":\"new\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"]}"},
    {"ev.a = 5 ev.neg = -3",
     "{\"a\":5,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"],\"neg\":-3}"},
    {"ev.f = 2.5", "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"],"
                   "\"f\":2.5}"},
    {"ev.big = math.maxinteger",
     "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"],"
     "\"big\":9223372036854775807}"},
    {"ev.t = true ev.fa = false", "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},"
                                  "\"tags\":[\"a\",\"b\"],\"t\":true,\"fa\":false}"},
    {"ev.arr = {1, 'two', true, 2.5}",
     "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"],"
     "\"arr\":[1,\"two\",true,2.5]}"},
    {"ev.obj = {k = 'v', n = 1}", "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},"
                                  "\"tags\":[\"a\",\"b\"],\"obj\":{\"k\":\"v\",\"n\":1}}"},
    {"ev.nest = {a = {b = {1, {c = false}}}}",
     "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"],"
     "\"nest\":{\"a\":{\"b\":[1,{\"c\":false}]}}}"},
    {"ev.mixed = {1, 2, x = 3}", "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},"
                                 "\"tags\":[\"a\",\"b\"],\"mixed\":{\"1\":1,\"2\":2,\"x\":3}}"},
    {"ev.sparse = {[1] = 'a', [3] = 'c'}",
     "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"],"
     "\"sparse\":{\"1\":\"a\",\"3\":\"c\"}}"},
    {"ev.s = nil", "{\"a\":1,\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"]}"},
    {"ev.missing = nil", "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"]}"},
    {"ev.a = nil ev.s = nil ev.http = nil ev.tags = nil", "{}"},
    {"ev.s = nil ev.s = 'back'",
     "{\"a\":1,\"s\":\"back\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"]}"},
    {"ev.http.code = 500",
     "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200,\"code\":500},\"tags\":[\"a\",\"b\"]}"},
    {"local h = ev.http h.code = 500 h.status = 404",
     "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":404,\"code\":500},\"tags\":[\"a\",\"b\"]}"},
    {"ev.http.status = nil", "{\"a\":1,\"s\":\"x\",\"http\":{},\"tags\":[\"a\",\"b\"]}"},
    {"ev.tags[2] = 'z'", "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"z\"]}"},
    {"ev.tags[3] = 'c'",
     "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\",\"c\"]}"},
    {"ev.q = 'a\"b\\\\c\\n\\0d'", "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},"
                                  "\"tags\":[\"a\",\"b\"],\"q\":\"a\\\"b\\\\c\\n\\u0000d\"}"},
    {"ev.u = '\\xff\\u{e9}'", "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},"
                              "\"tags\":[\"a\",\"b\"],\"u\":\"\\ufffd\\u00e9\"}"},
    {"ev.nan = 0/0 ev.inf = math.huge",
     "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"],\"nan\":null,"
     "\"inf\":null}"},
    {"ev.copy = ev.http", "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"],"
                          "\"copy\":{\"status\":200}}"},
    {"ev.copy = ev.tags", "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"],"
                          "\"copy\":[\"a\",\"b\"]}"},
    {"ev.http.code = 1 ev.copy = ev.http",
     "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200,\"code\":1},\"tags\":[\"a\",\"b\"],"
     "\"copy\":{\"status\":200,\"code\":1}}"},
    {"ev.x = 1 ev.all = ev",
     "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"],\"x\":1,"
     "\"all\":{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},\"tags\":[\"a\",\"b\"],\"x\":1}}"},
    {"ev.t = {h = ev.http}", "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},"
                             "\"tags\":[\"a\",\"b\"],\"t\":{\"h\":{\"status\":200}}}"},
    /* Writes read back in the same call. */
    {"ev.a = 'b' eq(ev.a, 'b') ev.n = 7 eq(ev.n, 7) eq(math.type(ev.n), 'integer')"
     " ev.http.code = 9 eq(ev.http.code, 9) eq(ev['http.code'], 9) ev.o = {p = {q = 'r'}}"
     " eq(ev.o.p.q, 'r') ev.s = nil eq(ev.s, nil) ev.tags[1] = 'y' eq(ev.tags[1], 'y')",
     "{\"a\":\"b\",\"http\":{\"status\":200,\"code\":9},\"tags\":[\"y\",\"b\"],\"n\":7,"
     "\"o\":{\"p\":{\"q\":\"r\"}}}"},
};

static void test_writes(void **state)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(write_cases); i++) {
        char src[1024];
        snprintf(src, sizeof(src), "function process(ev) %s return true end", write_cases[i].body);
        int hd = load(h, src);
        const char *err = NULL;
        int rc = run(h, hd, &v, wdoc, NULL, &err);
        if (rc != 1) {
            print_error("`%s`: rc %d: %s\n", write_cases[i].body, rc, err ? err : "");
            bad++;
        } else if (!event_is(&v, write_cases[i].want)) {
            print_error("(after `%s`)\n", write_cases[i].body);
            bad++;
        }
        script_unload(h, hd);
    }
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(bad, 0);
}

/* A JSON number may have any number of digits: one longer than any fixed buffer is read whole
 * (it was cut at 63 characters, so this one read as 1) and written back as what it is. */
static void test_long_number(void **state)
{
    static const char long_doc[] =
        "{\"x\":1.0000000000000000000000000000000000000000000000000000000000000e5}";
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int hd = load(h, "function process(ev) eq(ev.x, 100000.0) eq(math.type(ev.x), 'float')"
                     " ev.y = ev.x return true end");
    const char *err = NULL;
    int rc = run(h, hd, &v, long_doc, NULL, &err);
    if (rc != 1)
        print_error("rc %d: %s\n", rc, err ? err : "");
    assert_int_equal(rc, 1);
    assert_true(event_is(&v, "{\"x\":1e5,\"y\":100000}"));
    script_unload(h, hd);
    eview_free(&v);
    script_host_free(h);
}

/* A number read through the proxy is what Lua's own reading of its text gives, value and type
 * (integer or float), on the fast path (up to 15 digits, 18 without a fraction) and off it. */
static void test_numbers_read_as_lua_reads_them(void **state)
{
    static const char *const nums[] = {"0",
                                       "-0",
                                       "7",
                                       "-42",
                                       "123456789012345678",
                                       "1234567890123456789",
                                       "9223372036854775807",
                                       "-9223372036854775808",
                                       "9223372036854775808",
                                       "0.5",
                                       "-0.25",
                                       "1.0",
                                       "-0.0",
                                       "0.1",
                                       "123.456",
                                       "0.000000000000001",
                                       "99999999999999.9",
                                       "999999999999999.9",
                                       "1.7976931348623157",
                                       "3.14159265358979",
                                       "2.718281828459045",
                                       "1e3",
                                       "1E-7",
                                       "-2.5e+10",
                                       "0.30000000000000004",
                                       "1.00000000000000000001",
                                       "12345678.87654321"};
    struct buf text = {0}, src = {0};
    buf_puts(&text, "{\"n\":[");
    buf_puts(&src, "function process(ev) local want = {");
    for (size_t i = 0; i < N_ELEMS(nums); i++) {
        buf_printf(&text, "%s%s", i ? "," : "", nums[i]);
        buf_printf(&src, "%s'%s'", i ? "," : "", nums[i]);
    }
    buf_puts(&text, "]}");
    buf_puts(&src, "} for i, t in ipairs(want) do local w = math.tointeger(tonumber(t)) and "
                   "not t:find('[.eE]') and math.tointeger(tonumber(t)) or tonumber(t) "
                   "eq(ev.n[i], w, t) eq(math.type(ev.n[i]), math.type(w), t .. ' type') "
                   "if w == 0 then eq(1 / ev.n[i], 1 / w, t .. ' sign') end end return true end");
    buf_putc(&text, '\0');
    buf_putc(&src, '\0');
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int hd = load(h, src.data);
    const char *err = NULL;
    int rc = run(h, hd, &v, text.data, NULL, &err);
    if (rc != 1)
        print_error("rc %d: %s\n", rc, err ? err : "");
    assert_int_equal(rc, 1);
    script_unload(h, hd);
    eview_free(&v);
    script_host_free(h);
    buf_free(&text);
    buf_free(&src);
}

/* An empty Lua table cannot say whether it was a list or a map: either empty container is
 * fine, but it must be one, valid, and read back as empty. */
static void test_write_empty_table(void **state)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int hd =
        load(h, "function process(ev) ev.e = {} eq(#ev.e, 0) eq(ev.e[1], nil) return true end");
    const char *err = NULL;
    assert_int_equal(run(h, hd, &v, "{\"a\":1}", NULL, &err), 1);
    json_t *j = serialized_json(&v);
    assert_non_null(j);
    json_t *e = json_object_get(j, "e");
    assert_true((json_is_array(e) && json_array_size(e) == 0) ||
                (json_is_object(e) && json_object_size(e) == 0));
    json_decref(j);
    eview_free(&v);
    script_host_free(h);
}

static void test_write_failures(void **state)
{
    static const struct {
        const char *body, *err_has;
    } cases[] = {
        {"ev.f = function() end", "cannot store a function"},
        {"ev.f = print", "cannot store a function"},
        {"ev.c = coroutine.create(function() end)", "cannot store a thread"},
        {"ev.t = {1, {f = print}}", "cannot store a function"},
        {"ev.http.x = coroutine.running()", "cannot store a thread"},
        {"local t = {} t.t = t ev.c = t", "nested"},
        {"ev.t = {[true] = 1}", "keys"},
        {"ev[true] = 1", ""},
        {"ev.k = {[{}] = 1}", "keys"},
        /* Invalid UTF-8 names would all become U+FFFD in JSON (two fields, one name): refused,
         * and read as absent. */
        {"assert(ev['\\xff'] == nil) ev['\\xff'] = 1", "invalid UTF-8"},
        {"ev.http['a\\xfa\\xf5'] = 1", "invalid UTF-8"},
        {"ev['a\\0b'] = 1", "NUL"},
    };
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int ok_hd = load(h, "function process(ev) ev.fine = true return true end");
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char src[512];
        snprintf(src, sizeof(src), "function process(ev) %s return true end", cases[i].body);
        int hd = load(h, src);
        const char *err = NULL;
        int rc = run(h, hd, &v, wdoc, NULL, &err);
        if (rc != -1 || !err || !strstr(err, cases[i].err_has)) {
            print_error("`%s`: rc %d err `%s`, want -1 and `%s`\n", cases[i].body, rc,
                        err ? err : "", cases[i].err_has);
            bad++;
        }
        if (run(h, ok_hd, &v, wdoc, NULL, &err) != 1 || !has_field(&v, "fine")) {
            print_error("`%s`: the next call failed: %s\n", cases[i].body, err ? err : "");
            bad++;
        }
        script_unload(h, hd);
    }
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(bad, 0);
}

static void test_pairs_and_tostring(void **state)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int hd = load(
        h, "local function keys(t) local ks = {} for k, x in pairs(t) do"
           " if type(x) ~= 'userdata' then eq(x, t[k], k) end ks[#ks + 1] = k end table.sort(ks)"
           " return table.concat(ks, ',') end "
           "function process(ev)"
           " eq(keys(ev), 'a,http,s,tags', 'keys before')"
           " eq(keys(ev.http), 'status', 'http keys')"
           " eq(tostring(ev), '"
           "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},"
           "\"tags\":[\"a\",\"b\"]}"
           "', 'tostring before')"
           " ev.new = 1 ev.s = nil ev.http.code = 2"
           " eq(keys(ev), 'a,http,new,tags', 'keys after')"
           " eq(keys(ev.http), 'code,status', 'http keys after')"
           " local n = 0 for k, x in pairs(ev) do if k == 'a' then eq(x, 1) end"
           " if k == 'new' then eq(x, 1) end n = n + 1 end eq(n, 4)"
           " eq(tostring(ev.http), '{\"status\":200,\"code\":2}', 'nested tostring')"
           " eq(tostring(ev), '{\"a\":1,\"http\":{\"status\":200,\"code\":2},"
           "\"tags\":[\"a\",\"b\"],\"new\":1}', 'tostring after')"
           " return true end");
    const char *err = NULL;
    int rc = run(h, hd, &v, wdoc, NULL, &err);
    if (rc != 1)
        print_error("%s\n", err ? err : "");
    assert_int_equal(rc, 1);
    /* tostring(ev) is exactly what goes out. */
    char *s = serialized(&v);
    assert_string_equal(s, "{\"a\":1,\"http\":{\"status\":200,\"code\":2},\"tags\":[\"a\",\"b\"],"
                           "\"new\":1}");
    free(s);
    eview_free(&v);
    script_host_free(h);
}

/* Regression (was a bug, fixed): router/script_event.c ev_len() counts an array edited below its
 * top level with eview_keys(), which lists only the edited elements of an array (none of the
 * original ones), so #ev.tags after any element write is the number of edited elements: on
 * {"tags":["a","b"]}, `ev.tags[1] = "y"` makes #ev.tags 1 (want 2), and the append idiom
 * `ev.tags[#ev.tags + 1] = "x" ev.tags[#ev.tags + 1] = "y"` overwrites "b" and serializes
 * ["a","y","x"] instead of ["a","b","x","y"]. After `ev.tags[2] = nil` on ["a","b","c"] the
 * event goes out as ["a","c"] while the script reads #ev.tags == 0 and ev.tags[2] == nil. */
static void test_array_length_after_edits(void **state)
{
    static const struct {
        const char *in, *body, *want;
    } cases[] = {
        {"{\"tags\":[\"a\",\"b\"]}", "ev.tags[1] = 'y' ev.n = #ev.tags",
         "{\"tags\":[\"y\",\"b\"],\"n\":2}"},
        {"{\"tags\":[\"a\",\"b\"]}", "ev.tags[#ev.tags + 1] = 'x' ev.tags[#ev.tags + 1] = 'y'",
         "{\"tags\":[\"a\",\"b\",\"x\",\"y\"]}"},
        {"{\"tags\":[\"a\",\"b\"]}",
         "ev.tags = {'a'} ev.tags[#ev.tags + 1] = 'x' ev.tags[#ev.tags + 1] = 'y'",
         "{\"tags\":[\"a\",\"x\",\"y\"]}"},
        {"{\"o\":{\"l\":[1,2,3]}}", "ev.o.l[2] = 20 ev.n = #ev.o.l",
         "{\"o\":{\"l\":[1,20,3]},\"n\":3}"},
    };
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int bad = 0;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char src[512];
        snprintf(src, sizeof(src), "function process(ev) %s return true end", cases[i].body);
        int hd = load(h, src);
        const char *err = NULL;
        int rc = run(h, hd, &v, cases[i].in, NULL, &err);
        if (rc != 1 || !event_is(&v, cases[i].want)) {
            print_error("(`%s` on %s: rc %d %s)\n", cases[i].body, cases[i].in, rc, err ? err : "");
            bad++;
        }
        script_unload(h, hd);
    }
    /* Deleting an element: what the script reads back is what goes out. */
    int hd = load(h, "function process(ev) ev.tags[2] = nil ev.n = #ev.tags"
                     " ev.second = ev.tags[2] return true end");
    const char *err = NULL;
    assert_int_equal(run(h, hd, &v, "{\"tags\":[\"a\",\"b\",\"c\"]}", NULL, &err), 1);
    json_t *j = serialized_json(&v);
    assert_non_null(j);
    json_t *tags = json_object_get(j, "tags");
    json_t *n = json_object_get(j, "n");
    json_t *second = json_object_get(j, "second");
    json_t *out2 = json_array_get(tags, 1);
    int consistent = json_is_array(tags) && json_is_integer(n) &&
                     (size_t)json_integer_value(n) == json_array_size(tags) &&
                     (second ? json_equal(second, out2) : (!out2 || json_is_null(out2)));
    if (!consistent) {
        char *s = serialized(&v);
        print_error("after ev.tags[2] = nil: %s\n", s);
        free(s);
        bad++;
    }
    json_decref(j);
    eview_free(&v);
    script_host_free(h);
    assert_int_equal(bad, 0);
}

/* Regression (was a bug, fixed): router/script_event.c ev_pairs() lists keys with eview_keys(),
 * which gives none for an array, so `for i, x in pairs(ev.tags)` on {"tags":["a","b"]} runs zero
 * times (a real table, and ipairs on the same proxy, give 1 -> "a", 2 -> "b"). */
static void test_pairs_on_array(void **state)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int hd = load(h, "function process(ev) local got = {} for i, x in pairs(ev.tags) do"
                     " got[#got + 1] = tostring(i) .. '=' .. tostring(x) end table.sort(got)"
                     " ev.got = table.concat(got, ',') return true end");
    const char *err = NULL;
    assert_int_equal(run(h, hd, &v, "{\"tags\":[\"a\",\"b\"]}", NULL, &err), 1);
    char *got = field_string(&v, "got");
    int ok = got && strcmp(got, "1=a,2=b") == 0;
    if (!ok)
        print_error("pairs(ev.tags) gave `%s`, want `1=a,2=b`\n", got ? got : "(nil)");
    free(got);
    eview_free(&v);
    script_host_free(h);
    assert_true(ok);
}

static void test_stale_nested_proxy(void **state)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int hd = load(h, "function process(ev)"
                     " if saved then local x = saved.status end"
                     " saved = ev.http return true end");
    int hd2 = load(h, "function process(ev)"
                      " if kept then kept.x = 1 end kept = ev.http return true end");
    int hd3 = load(h, "function process(ev)"
                      " if root then eq(root.a, ev.a) end root = ev return true end");
    const char *err = NULL;
    assert_int_equal(run(h, hd, &v, "{\"http\":{\"status\":1}}", NULL, &err), 1);
    assert_int_equal(run(h, hd, &v, "{\"http\":{\"status\":2}}", NULL, &err), -1);
    assert_non_null(strstr(err, "kept past its process() call"));
    /* Writing through a stale proxy fails the same way. */
    assert_int_equal(run(h, hd2, &v, "{\"http\":{\"status\":1}}", NULL, &err), 1);
    assert_int_equal(run(h, hd2, &v, "{\"http\":{\"status\":2}}", NULL, &err), -1);
    assert_non_null(strstr(err, "kept past its process() call"));
    assert_true(event_is(&v, "{\"http\":{\"status\":2}}"));
    /* The root stands for whichever event is being processed. */
    assert_int_equal(run(h, hd3, &v, "{\"a\":1}", NULL, &err), 1);
    assert_int_equal(run(h, hd3, &v, "{\"a\":2}", NULL, &err), 1);
    eview_free(&v);
    script_host_free(h);
}

/* Each route sees the event as it arrived: route 2 runs after eview_clear_edits. */
static void test_each_route_sees_original(void **state)
{
    struct script_host *h = new_host(NULL, NULL, 1);
    struct eview v;
    eview_init(&v);
    int r1 = load(h, "function process(ev) ev.a = 2 ev.s = nil ev.http.code = 5 ev.new = 1"
                     " return true end");
    int r2 = load(h, "function process(ev) eq(ev.a, 1) eq(ev.s, 'x') eq(ev.http.code, nil)"
                     " eq(ev.new, nil) ev.route = 2 return true end");
    const char *err = NULL;
    eview_reset(&v, wdoc, strlen(wdoc));
    assert_int_equal(script_run(h, r1, &v, &route_full, &err), 1);
    assert_true(event_is(&v, "{\"a\":2,\"http\":{\"status\":200,\"code\":5},"
                             "\"tags\":[\"a\",\"b\"],\"new\":1}"));
    eview_clear_edits(&v);
    int rc = script_run(h, r2, &v, &route_full, &err);
    if (rc != 1)
        print_error("%s\n", err);
    assert_int_equal(rc, 1);
    assert_true(event_is(&v, "{\"a\":1,\"s\":\"x\",\"http\":{\"status\":200},"
                             "\"tags\":[\"a\",\"b\"],\"route\":2}"));
    eview_free(&v);
    script_host_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads),
        cmocka_unit_test(test_writes),
        cmocka_unit_test(test_long_number),
        cmocka_unit_test(test_numbers_read_as_lua_reads_them),
        cmocka_unit_test(test_write_empty_table),
        cmocka_unit_test(test_write_failures),
        cmocka_unit_test(test_pairs_and_tostring),
        cmocka_unit_test(test_array_length_after_edits),
        cmocka_unit_test(test_pairs_on_array),
        cmocka_unit_test(test_stale_nested_proxy),
        cmocka_unit_test(test_each_route_sees_original),
    };
    return cmocka_run_group_tests_name("script_event", tests, NULL, NULL);
}
