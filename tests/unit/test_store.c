/* Unit tests of the SQLite store (core/store.h), each in its own temporary directory:
 * the schema and its version, data kept across a reopen, routes reconciled (with overrides of
 * removed routes deleted, and a failed reconcile changing nothing), overrides, binary-safe
 * key-values, file positions, spill offsets, the audit log, and store_open's refusals: a file
 * that is not a database, a newer schema, a read-only database, a locked one. Checks that
 * need to see the tables read them with sqlite3 directly. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/buf.h"
#include "core/store.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

struct fixture {
    char dir[64];
    char db[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/spw_test_state_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof(f->db), "%s/spillway.db", f->dir);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    chmod(f->dir, 0700);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static struct store *open_ok(const char *path)
{
    char err[512] = "";
    struct store *s = store_open(path, err, sizeof(err));
    if (!s) {
        print_error("store_open(%s): %s\n", path, err);
        fail();
    }
    return s;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* The first column of the first row as an integer (-1 when there is no row). */
static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

/* All rows of a query, columns joined by '|' and rows by ';'. */
static void raw_rows(sqlite3 *db, const char *sql, char *out, size_t len)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    size_t at = 0;
    out[0] = '\0';
    int row = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const unsigned char *t = sqlite3_column_text(st, c);
            at += (size_t)snprintf(out + at, len - at, "%s%s",
                                   row && !c ? ";"
                                   : c       ? "|"
                                             : "",
                                   t ? (const char *)t : "NULL");
            assert_true(at < len);
        }
        row++;
    }
    sqlite3_finalize(st);
}

static void expect_rows(sqlite3 *db, const char *sql, const char *want)
{
    char got[2048];
    raw_rows(db, sql, got, sizeof(got));
    if (strcmp(got, want) != 0) {
        print_error("%s\ngot  %s\nwant %s\n", sql, got, want);
        fail();
    }
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---- schema ---- */

static void test_open_creates_schema(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->db);
    assert_string_equal(store_path(s), f->db);
    store_close(s);
    store_close(NULL);

    sqlite3 *db = raw_open(f->db);
    assert_true(raw_int(db, "PRAGMA user_version") >= 1);
    static const char *const tables[] = {"routes",         "overrides", "kv",
                                         "file_positions", "offsets",   "audit"};
    for (size_t i = 0; i < N_ELEMS(tables); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'",
                 tables[i]);
        if (raw_int(db, sql) != 1) {
            print_error("table %s missing\n", tables[i]);
            fail();
        }
    }
    int64_t version = raw_int(db, "PRAGMA user_version");
    char mode[32];
    raw_rows(db, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "wal");
    sqlite3_close(db);

    /* Reopening an up-to-date database migrates nothing and keeps the version. */
    s = open_ok(f->db);
    store_close(s);
    db = raw_open(f->db);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), version);
    sqlite3_close(db);
}

static void test_open_in_missing_dir(void **state)
{
    struct fixture *f = *state;
    char path[256], err[512] = "";
    snprintf(path, sizeof(path), "%s/no/such/dir/spillway.db", f->dir);
    assert_null(store_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, path));
}

struct collected {
    char text[4096];
    size_t len;
    int n;
};

static void collect_override(void *ud, const struct store_override *o)
{
    struct collected *c = ud;
    c->len +=
        (size_t)snprintf(c->text + c->len, sizeof(c->text) - c->len, "%s%s.%s=%s@%lld/%lld/%lld",
                         c->n++ ? ";" : "", o->route, o->key, o->value, (long long)o->expires_ns,
                         (long long)o->set_ns, (long long)o->uid);
    assert_true(c->len < sizeof(c->text));
}

/* Overrides in a stable order, for comparison. */
static void overrides_text(struct store *s, char *out, size_t len)
{
    struct collected c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_overrides_each(s, collect_override, &c), 0);
    /* Sort the ';'-separated items. */
    char *items[64];
    int n = 0;
    for (char *save = NULL, *t = strtok_r(c.text, ";", &save); t && n < 64;
         t = strtok_r(NULL, ";", &save))
        items[n++] = t;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(items[j - 1], items[j]) > 0; j--) {
            char *x = items[j];
            items[j] = items[j - 1];
            items[j - 1] = x;
        }
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(out + at, len - at, "%s%s", i ? ";" : "", items[i]);
}

static void expect_overrides(struct store *s, const char *want)
{
    char got[4096];
    overrides_text(s, got, sizeof(got));
    if (strcmp(got, want) != 0) {
        print_error("overrides\ngot  %s\nwant %s\n", got, want);
        fail();
    }
}

static struct store_override ovr(const char *route, const char *key, const char *value,
                                 int64_t expires, int64_t set, int64_t uid)
{
    struct store_override o;
    memset(&o, 0, sizeof(o));
    snprintf(o.route, sizeof(o.route), "%s", route);
    snprintf(o.key, sizeof(o.key), "%s", key);
    snprintf(o.value, sizeof(o.value), "%s", value);
    o.expires_ns = expires;
    o.set_ns = set;
    o.uid = uid;
    return o;
}

/* ---- routes and overrides ---- */

static void test_routes_reconcile(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->db);
    const struct store_route three[] = {
        {"errors", "errors.lua", 1.0, "trace_id", "[\"es\"]", "[]", 1, 1},
        {"all", NULL, 0.25, "trace_id", "[\"file\",\"kafka\"]", "[\"candidate\"]", 1, 0},
        {"debug", "debug.lua", 0.0, NULL, "[\"null\"]", NULL, 0, 0},
    };
    assert_int_equal(store_routes_reconcile(s, three, 3), 0);
    struct store_override a = ovr("all", "sample_rate", "0.5", 0, 100, 1000);
    struct store_override b = ovr("debug", "enabled", "true", 5000, 200, 0);
    struct store_override c = ovr("errors", "sample_rate", "0.1", 0, 300, 7);
    assert_int_equal(store_override_set(s, &a), 0);
    assert_int_equal(store_override_set(s, &b), 0);
    assert_int_equal(store_override_set(s, &c), 0);
    /* An override of a route not (yet) in the table is kept until the next reconcile. */
    struct store_override d = ovr("future", "enabled", "false", 0, 400, 0);
    assert_int_equal(store_override_set(s, &d), 0);

    sqlite3 *db = raw_open(f->db);
    expect_rows(db,
                "SELECT position, name, script, sample_rate, sample_key, sinks, shadow, enabled,"
                " stop FROM routes ORDER BY position",
                "0|errors|errors.lua|1.0|trace_id|[\"es\"]|[]|1|1;"
                "1|all|NULL|0.25|trace_id|[\"file\",\"kafka\"]|[\"candidate\"]|1|0;"
                "2|debug|debug.lua|0.0|NULL|[\"null\"]|NULL|0|0");

    /* Reconcile again: "debug" goes, "new" comes, the order changes; the overrides of routes
     * that no longer exist are deleted, the others kept. */
    const struct store_route two[] = {
        {"all", NULL, 0.5, "trace_id", "[\"file\"]", "[]", 1, 0},
        {"new", "new.lua", 1.0, "service", "[\"stdout\"]", "[]", 1, 0},
        {"errors", "errors.lua", 1.0, "trace_id", "[\"es\"]", "[]", 1, 1},
    };
    assert_int_equal(store_routes_reconcile(s, two, 3), 0);
    expect_rows(db, "SELECT position, name, sample_rate FROM routes ORDER BY position",
                "0|all|0.5;1|new|1.0;2|errors|1.0");
    expect_overrides(s, "all.sample_rate=0.5@0/100/1000;errors.sample_rate=0.1@0/300/7");

    /* A failed reconcile (duplicate names) changes nothing. */
    const struct store_route dup[] = {
        {"x", NULL, 1.0, NULL, "[]", "[]", 1, 0},
        {"x", NULL, 1.0, NULL, "[]", "[]", 1, 0},
    };
    assert_true(store_routes_reconcile(s, dup, 2) < 0);
    expect_rows(db, "SELECT position, name FROM routes ORDER BY position", "0|all;1|new;2|errors");
    expect_overrides(s, "all.sample_rate=0.5@0/100/1000;errors.sample_rate=0.1@0/300/7");

    /* No routes at all: every override goes. */
    assert_int_equal(store_routes_reconcile(s, NULL, 0), 0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM routes"), 0);
    expect_overrides(s, "");
    sqlite3_close(db);
    store_close(s);
}

static void test_overrides(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->db);
    const struct store_route routes[] = {
        {"r1", NULL, 1.0, "trace_id", "[]", "[]", 1, 0},
        {"r2", NULL, 1.0, "trace_id", "[]", "[]", 1, 0},
    };
    assert_int_equal(store_routes_reconcile(s, routes, 2), 0);
    expect_overrides(s, "");
    struct store_override o = ovr("r1", "sample_rate", "0.01", 123456789012345678LL, 42, 1000);
    assert_int_equal(store_override_set(s, &o), 0);
    expect_overrides(s, "r1.sample_rate=0.01@123456789012345678/42/1000");
    /* Setting again replaces (one row per route and key). */
    o = ovr("r1", "sample_rate", "0.5", 0, 43, 0);
    assert_int_equal(store_override_set(s, &o), 0);
    o = ovr("r1", "enabled", "false", 0, 44, 0);
    assert_int_equal(store_override_set(s, &o), 0);
    o = ovr("r2", "sample_rate", "1", 1, 45, 0); /* long expired: still listed */
    assert_int_equal(store_override_set(s, &o), 0);
    expect_overrides(s, "r1.enabled=false@0/44/0;r1.sample_rate=0.5@0/43/0;"
                        "r2.sample_rate=1@1/45/0");
    /* Clearing one leaves the others; clearing what is not there is fine. */
    assert_int_equal(store_override_clear(s, "r1", "sample_rate"), 0);
    assert_int_equal(store_override_clear(s, "r1", "sample_rate"), 0);
    assert_int_equal(store_override_clear(s, "nope", "enabled"), 0);
    expect_overrides(s, "r1.enabled=false@0/44/0;r2.sample_rate=1@1/45/0");
    /* Kept across a reopen. */
    store_close(s);
    s = open_ok(f->db);
    expect_overrides(s, "r1.enabled=false@0/44/0;r2.sample_rate=1@1/45/0");
    store_close(s);
}

/* ---- key-values ---- */

struct kv_seen {
    int n;
    char keys[16][32];
    size_t klens[16];
    char vals[16][32];
    size_t vlens[16];
};

static void collect_kv(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    struct kv_seen *c = ud;
    assert_true(c->n < 16 && kl <= 32 && vl <= 32);
    if (kl)
        memcpy(c->keys[c->n], k, kl);
    if (vl)
        memcpy(c->vals[c->n], v, vl);
    c->klens[c->n] = kl;
    c->vlens[c->n] = vl;
    c->n++;
}

/* The value seen for key by store_kv_each, or -1 when the key is not listed. */
static int seen_value(const struct kv_seen *c, const char *k, size_t kl, const char *v, size_t vl)
{
    for (int i = 0; i < c->n; i++) {
        if (c->klens[i] == kl && memcmp(c->keys[i], k, kl) == 0)
            return c->vlens[i] == vl && memcmp(c->vals[i], v, vl) == 0;
    }
    return -1;
}

static void expect_kv(struct store *s, const char *k, size_t kl, const char *v, size_t vl)
{
    struct buf out = {0};
    buf_puts(&out, "#"); /* get appends */
    int rc = store_kv_get(s, k, kl, &out);
    if (!v) {
        assert_int_equal(rc, 0);
        assert_int_equal(out.len, 1);
    } else {
        assert_int_equal(rc, 1);
        assert_int_equal(out.len, vl + 1);
        assert_memory_equal(out.data + 1, v, vl);
    }
    buf_free(&out);
}

static void test_kv(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->db);
    static const char k1[] = "plain", v1[] = "value";
    static const char k2[] = "bin\0key\xff", v2[] = "\0\x01\x02zero\0";
    static const char k3[] = "bin\0kez\xff"; /* differs from k2 after the NUL */
    expect_kv(s, k1, 5, NULL, 0);
    assert_int_equal(store_kv_set(s, k1, 5, v1, 5), 0);
    assert_int_equal(store_kv_set(s, k2, sizeof(k2) - 1, v2, sizeof(v2) - 1), 0);
    assert_int_equal(store_kv_set(s, k3, sizeof(k3) - 1, "3", 1), 0);
    assert_int_equal(store_kv_set(s, "empty", 5, "", 0), 0);
    expect_kv(s, k1, 5, v1, 5);
    expect_kv(s, k2, sizeof(k2) - 1, v2, sizeof(v2) - 1);
    expect_kv(s, k3, sizeof(k3) - 1, "3", 1);
    expect_kv(s, "empty", 5, "", 0);
    expect_kv(s, "bin", 3, NULL, 0); /* the key is not cut at its NUL */
    /* Overwrite, delete, delete what is not there. */
    assert_int_equal(store_kv_set(s, k1, 5, "other", 5), 0);
    expect_kv(s, k1, 5, "other", 5);
    assert_int_equal(store_kv_set(s, k3, sizeof(k3) - 1, NULL, 0), 0);
    expect_kv(s, k3, sizeof(k3) - 1, NULL, 0);
    assert_int_equal(store_kv_set(s, "never", 5, NULL, 0), 0);

    struct kv_seen seen;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_kv_each(s, collect_kv, &seen), 0);
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen_value(&seen, k1, 5, "other", 5), 1);
    assert_int_equal(seen_value(&seen, k2, sizeof(k2) - 1, v2, sizeof(v2) - 1), 1);
    assert_int_equal(seen_value(&seen, "empty", 5, "", 0), 1);
    assert_int_equal(seen_value(&seen, k3, sizeof(k3) - 1, "3", 1), -1);

    /* Kept across a reopen. */
    store_close(s);
    s = open_ok(f->db);
    expect_kv(s, k1, 5, "other", 5);
    expect_kv(s, k2, sizeof(k2) - 1, v2, sizeof(v2) - 1);
    expect_kv(s, k3, sizeof(k3) - 1, NULL, 0);
    store_close(s);
}

/* ---- positions, offsets ---- */

static void test_positions_and_offsets(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->db);
    uint64_t inode = 1, off = 1;
    assert_int_equal(store_position_get(s, "tail", "/var/log/a.log", &inode, &off), 0);
    assert_int_equal(store_position_set(s, "tail", "/var/log/a.log", 1234, 5678), 0);
    assert_int_equal(store_position_set(s, "tail", "/var/log/b.log", UINT64_MAX, UINT64_MAX - 1),
                     0);
    assert_int_equal(store_position_set(s, "tail2", "/var/log/a.log", 9, 10), 0);
    assert_int_equal(store_position_get(s, "tail", "/var/log/a.log", &inode, &off), 1);
    assert_int_equal(inode, 1234);
    assert_int_equal(off, 5678);
    assert_int_equal(store_position_get(s, "tail", "/var/log/b.log", &inode, &off), 1);
    assert_true(inode == UINT64_MAX && off == UINT64_MAX - 1);
    assert_int_equal(store_position_get(s, "tail2", "/var/log/a.log", &inode, &off), 1);
    assert_true(inode == 9 && off == 10);
    assert_int_equal(store_position_set(s, "tail", "/var/log/a.log", 1234, 9999), 0);

    /* By inode: the newest row of that input, whatever its path; delete removes one path. */
    struct buf path = {0};
    assert_int_equal(store_position_by_inode(s, "tail", 9, &path, &off), 0);
    assert_int_equal(store_position_by_inode(s, "tail", 1234, &path, &off), 1);
    assert_int_equal(off, 9999);
    assert_memory_equal(path.data, "/var/log/a.log", path.len);
    assert_int_equal(path.len, strlen("/var/log/a.log"));
    assert_int_equal(store_position_delete(s, "tail", "/var/log/a.log"), 0);
    buf_reset(&path);
    assert_int_equal(store_position_by_inode(s, "tail", 1234, &path, &off), 0);
    assert_int_equal(store_position_get(s, "tail", "/var/log/a.log", &inode, &off), 0);
    assert_int_equal(store_position_set(s, "tail", "/var/log/a.log", 1234, 9999), 0);
    buf_free(&path);

    int64_t o = 7;
    assert_int_equal(store_offset_get(s, "spill", 0, &o, NULL), 0);
    assert_int_equal(o, 7); /* untouched when not found */
    assert_int_equal(store_offset_set(s, "spill", 0, 100, NULL), 0);
    assert_int_equal(store_offset_set(s, "spill", 1, -1, NULL), 0);
    assert_int_equal(store_offset_set(s, "other", 0, INT64_MAX, NULL), 0);
    assert_int_equal(store_offset_set(s, "spill", 0, 101, NULL), 0);
    /* a spill key: run (any 64 bits), sequence; records of the message replayed already */
    const uint64_t mark[STORE_MARK] = {UINT64_MAX, 42, 17};
    assert_int_equal(store_offset_set(s, "spill", 2, 7, mark), 0);

    store_close(s);
    s = open_ok(f->db);
    assert_int_equal(store_position_get(s, "tail", "/var/log/a.log", &inode, &off), 1);
    assert_true(inode == 1234 && off == 9999);
    assert_int_equal(store_offset_get(s, "spill", 0, &o, NULL), 1);
    assert_int_equal(o, 101);
    assert_int_equal(store_offset_get(s, "spill", 1, &o, NULL), 1);
    assert_int_equal(o, -1);
    assert_int_equal(store_offset_get(s, "other", 0, &o, NULL), 1);
    assert_true(o == INT64_MAX);
    assert_int_equal(store_offset_get(s, "other", 1, &o, NULL), 0);
    uint64_t got[STORE_MARK] = {1, 1, 1};
    assert_int_equal(store_offset_get(s, "spill", 2, &o, got), 1);
    assert_true(o == 7 && got[0] == UINT64_MAX && got[1] == 42 && got[2] == 17);
    assert_int_equal(store_offset_get(s, "spill", 0, &o, got), 1);
    assert_true(o == 101 && got[0] == 0 && got[1] == 0 && got[2] == 0); /* without a mark */
    store_close(s);
}

/* A database from before the spill's marks (schema version 1) is migrated: its offsets are
 * kept, with no mark. */
static void test_offsets_migrated_from_version_1(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = raw_open(f->db);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE offsets(topic TEXT NOT NULL, partition INTEGER "
                                  "NOT NULL, offset INTEGER NOT NULL, updated_ns INTEGER NOT "
                                  "NULL, PRIMARY KEY(topic, partition));"
                                  "INSERT INTO offsets VALUES('spill', 0, 12345, 1);"
                                  "PRAGMA user_version = 1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    struct store *s = open_ok(f->db);
    int64_t o = 0;
    uint64_t mark[STORE_MARK] = {9, 9, 9};
    assert_int_equal(store_offset_get(s, "spill", 0, &o, mark), 1);
    assert_true(o == 12345 && mark[0] == 0 && mark[1] == 0 && mark[2] == 0);
    store_close(s);
    db = raw_open(f->db);
    assert_true(raw_int(db, "PRAGMA user_version") >= 2);
    sqlite3_close(db);
}

/* Journald cursors: absent, set, replaced, kept across a reopen; a database of schema version 2
 * (before the cursors) is migrated to have their table. */
static void test_cursors(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->db);
    struct buf c = {0};
    assert_int_equal(store_cursor_get(s, "j", &c), 0);
    assert_int_equal(store_cursor_set(s, "j", "s=1;i=1"), 0);
    assert_int_equal(store_cursor_set(s, "j", "s=1;i=2"), 0);
    assert_int_equal(store_cursor_set(s, "other", "s=9"), 0);
    store_close(s);
    s = open_ok(f->db);
    assert_int_equal(store_cursor_get(s, "j", &c), 1);
    assert_true(c.len == 7 && memcmp(c.data, "s=1;i=2", 7) == 0);
    store_close(s);
    buf_free(&c);
    sqlite3 *db = raw_open(f->db);
    assert_true(raw_int(db, "PRAGMA user_version") >= 3);
    sqlite3_close(db);
}

static void test_cursors_migrated_from_version_2(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = raw_open(f->db);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE offsets(topic TEXT NOT NULL, partition INTEGER "
                                  "NOT NULL, offset INTEGER NOT NULL, updated_ns INTEGER NOT "
                                  "NULL, mark_run INTEGER NOT NULL DEFAULT 0, mark_seq INTEGER "
                                  "NOT NULL DEFAULT 0, PRIMARY KEY(topic, partition));"
                                  "PRAGMA user_version = 2;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    struct store *s = open_ok(f->db);
    struct buf c = {0};
    assert_int_equal(store_cursor_set(s, "j", "s=2"), 0);
    assert_int_equal(store_cursor_get(s, "j", &c), 1);
    buf_free(&c);
    store_close(s);
}

/* ---- audit ---- */

struct audit_seen {
    int n;
    int64_t ids[32], at[32], uid[32], pid[32];
    char cmd[32][32], target[32][32], oldv[32][32], newv[32][32];
};

static void collect_audit(void *ud, const struct store_audit *a)
{
    struct audit_seen *c = ud;
    assert_true(c->n < 32);
    c->ids[c->n] = a->id;
    c->at[c->n] = a->at_ns;
    c->uid[c->n] = a->uid;
    c->pid[c->n] = a->pid;
    snprintf(c->cmd[c->n], 32, "%s", a->command ? a->command : "NULL");
    snprintf(c->target[c->n], 32, "%s", a->target ? a->target : "NULL");
    snprintf(c->oldv[c->n], 32, "%s", a->old_value ? a->old_value : "NULL");
    snprintf(c->newv[c->n], 32, "%s", a->new_value ? a->new_value : "NULL");
    c->n++;
}

static void test_audit(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->db);
    struct audit_seen seen;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_audit_each(s, 10, collect_audit, &seen), 0);
    assert_int_equal(seen.n, 0);
    int64_t before = (int64_t)time(NULL) * 1000000000LL;
    for (int i = 1; i <= 10; i++) {
        char cmd[16], newv[16];
        snprintf(cmd, sizeof(cmd), "cmd%d", i);
        snprintf(newv, sizeof(newv), "%d", i * 10);
        struct store_audit a = {
            .at_ns = i == 10 ? 0 : 1000 + i, /* 0: now */
            .uid = 1000 + i,
            .pid = 40000 + i,
            .command = cmd,
            .target = i % 2 ? "route/all" : NULL,
            .old_value = NULL,
            .new_value = newv,
        };
        assert_int_equal(store_audit_add(s, &a), 0);
    }
    /* The last three, oldest first. */
    assert_int_equal(store_audit_each(s, 3, collect_audit, &seen), 0);
    assert_int_equal(seen.n, 3);
    for (int i = 0; i < 3; i++) {
        char want[16];
        snprintf(want, sizeof(want), "cmd%d", 8 + i);
        assert_string_equal(seen.cmd[i], want);
        assert_int_equal(seen.uid[i], 1008 + i);
        assert_int_equal(seen.pid[i], 40008 + i);
        assert_string_equal(seen.oldv[i], "NULL");
        if (i)
            assert_true(seen.ids[i] > seen.ids[i - 1]);
    }
    assert_string_equal(seen.target[0], "NULL");
    assert_string_equal(seen.target[1], "route/all");
    assert_string_equal(seen.newv[2], "100");
    assert_int_equal(seen.at[0], 1008);
    assert_true(seen.at[2] >= before); /* at_ns 0 means now */
    /* Asking for more than there are gives them all, oldest first. */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_audit_each(s, 25, collect_audit, &seen), 0);
    assert_int_equal(seen.n, 10);
    assert_string_equal(seen.cmd[0], "cmd1");
    assert_string_equal(seen.cmd[9], "cmd10");
    /* A command is required. */
    struct store_audit bad = {.command = NULL};
    assert_true(store_audit_add(s, &bad) < 0);
    /* Kept across a reopen. */
    store_close(s);
    s = open_ok(f->db);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_audit_each(s, 1, collect_audit, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.cmd[0], "cmd10");
    store_close(s);
}

/* ---- refusals ---- */

static void write_file(const char *path, const char *text, size_t len, int times)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    for (int i = 0; i < times; i++)
        assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static void test_not_a_database(void **state)
{
    struct fixture *f = *state;
    static const char garbage[] = "this is not an SQLite database, just some text\n";
    static const char *const kinds[] = {"text", "header"};
    for (size_t i = 0; i < N_ELEMS(kinds); i++) {
        if (i == 0) {
            write_file(f->db, garbage, sizeof(garbage) - 1, 200);
        } else {
            /* A real header followed by damaged pages. */
            struct store *s = open_ok(f->db);
            for (int k = 0; k < 3000; k++) {
                char key[32];
                snprintf(key, sizeof(key), "key-%d", k);
                assert_int_equal(store_kv_set(s, key, strlen(key), "some value", 10), 0);
            }
            store_close(s);
            int fd = open(f->db, O_WRONLY);
            assert_true(fd >= 0);
            char junk[4096];
            memset(junk, 0x5a, sizeof(junk));
            for (int p = 2; p < 8; p++)
                assert_int_equal(pwrite(fd, junk, sizeof(junk), (off_t)p * 4096),
                                 (ssize_t)sizeof(junk));
            close(fd);
        }
        char err[1024] = "";
        struct store *s = store_open(f->db, err, sizeof(err));
        if (s || (!strstr(err, "corrupt") && !strstr(err, "not a"))) {
            print_error("%s: store_open gave %p, `%s`\n", kinds[i], (void *)s, err);
            store_close(s);
            fail();
        }
        assert_non_null(strstr(err, f->db)); /* the message names the file */
        unlink(f->db);
    }
}

static void test_newer_schema(void **state)
{
    struct fixture *f = *state;
    store_close(open_ok(f->db));
    sqlite3 *db = raw_open(f->db);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[512] = "";
    struct store *s = store_open(f->db, err, sizeof(err));
    assert_null(s);
    assert_non_null(strstr(err, "newer"));
}

/* The read-only check, run where write permission really is missing: as root (which ignores
 * file modes) in a child that drops to nobody first. */
static void read_only_child(const char *dir, const char *db, int drop)
{
    if (drop && (setgid(65534) || setuid(65534)))
        _exit(77);
    char err[512] = "";
    struct store *s = store_open(db, err, sizeof(err));
    int ok = !s && (strstr(err, "readonly") || strstr(err, "read-only") ||
                    strstr(err, "read only") || strstr(err, "permission"));
    if (!ok)
        fprintf(stderr, "read-only %s: store_open gave %p, `%s`\n", dir, (void *)s, err);
    _exit(ok ? 0 : 3);
}

static void test_read_only(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->db);
    assert_int_equal(store_kv_set(s, "k", 1, "v", 1), 0);
    store_close(s);
    int root = geteuid() == 0;
    assert_int_equal(chmod(f->db, 0444), 0);
    assert_int_equal(chmod(f->dir, 0555), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        read_only_child(f->dir, f->db, root);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    chmod(f->dir, 0700);
    chmod(f->db, 0644);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        skip(); /* root without the right to become nobody */
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The data is intact and writable again once the modes are back. */
    s = open_ok(f->db);
    struct buf out = {0};
    assert_int_equal(store_kv_get(s, "k", 1, &out), 1);
    buf_free(&out);
    store_close(s);
}

/* Another connection holding an exclusive transaction: store_open gives up within a few
 * seconds, saying the database is locked, and works once the lock is gone. Both journal modes:
 * a database spillway created (WAL) and one created by another tool (rollback journal). */
static void test_locked(void **state)
{
    struct fixture *f = *state;
    for (int wal = 1; wal >= 0; wal--) {
        unlink(f->db);
        if (wal)
            store_close(open_ok(f->db));
        sqlite3 *db = raw_open(f->db);
        assert_int_equal(
            sqlite3_exec(db,
                         wal ? "BEGIN EXCLUSIVE; INSERT INTO kv VALUES(x'01', x'02', 0)"
                             : "CREATE TABLE t(x); BEGIN EXCLUSIVE;"
                               " INSERT INTO t VALUES(1)",
                         NULL, NULL, NULL),
            SQLITE_OK);
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        char err[512] = "";
        struct store *s = store_open(f->db, err, sizeof(err));
        double took = seconds_since(&t0);
        if (s || !strstr(err, "locked") || took > 10) {
            print_error("%s: store_open gave %p after %.1f s: `%s`\n", wal ? "wal" : "rollback",
                        (void *)s, took, err);
            store_close(s);
            sqlite3_close(db);
            fail();
        }
        assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        store_close(open_ok(f->db));
    }
}

struct opener {
    const char *path;
    char err[512];
    int ok;
};

static void *open_thread(void *arg)
{
    struct opener *o = arg;
    struct store *s = store_open(o->path, o->err, sizeof(o->err));
    o->ok = s != NULL;
    store_close(s);
    return NULL;
}

/* Regression (was a bug, fixed): core/state.c migrate() reads PRAGMA user_version before taking the
 * write lock (BEGIN IMMEDIATE), so two processes opening a new database at the same time (two
 * spillway roles on one data_dir, started together) both read version 0, and the one that gets the
 * lock second runs migration 0 again over the schema the first committed: store_open fails with
 * "spillway.db: table routes already exists". Reproduced deterministically: hold a write lock
 * on a fresh WAL database, start two store_open calls (both read version 0, then wait for the
 * lock), release it. Expected: both open the database. */
static void test_concurrent_first_open(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = raw_open(f->db);
    assert_int_equal(
        sqlite3_exec(db, "PRAGMA journal_mode = WAL; BEGIN IMMEDIATE", NULL, NULL, NULL),
        SQLITE_OK);
    struct opener o[2] = {{.path = f->db}, {.path = f->db}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, open_thread, &o[i]), 0);
    usleep(500 * 1000); /* both are now waiting for the write lock */
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    sqlite3_close(db);
    for (int i = 0; i < 2; i++) {
        if (!o[i].ok)
            print_error("opener %d: %s\n", i, o[i].err);
    }
    assert_true(o[0].ok && o[1].ok);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_creates_schema),
        T(test_open_in_missing_dir),
        T(test_routes_reconcile),
        T(test_overrides),
        T(test_kv),
        T(test_positions_and_offsets),
        T(test_offsets_migrated_from_version_1),
        T(test_cursors),
        T(test_cursors_migrated_from_version_2),
        T(test_audit),
        T(test_not_a_database),
        T(test_newer_schema),
        T(test_read_only),
        T(test_locked),
        T(test_concurrent_first_open),
    };
#undef T
    return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
