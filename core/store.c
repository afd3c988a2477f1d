#include "core/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/timeutil.h"

/* How long a statement waits for another process's lock before failing. */
#define BUSY_TIMEOUT_MS 2000

struct store {
    sqlite3 *db;
    char *path;
};

/* Each entry migrates the schema from version i to i + 1. Never edit a shipped entry: add one. */
static const char *const migrations[] = {
    "CREATE TABLE routes(name TEXT PRIMARY KEY, position INTEGER NOT NULL, script TEXT,"
    " sample_rate REAL NOT NULL, sample_key TEXT, sinks TEXT, shadow TEXT,"
    " enabled INTEGER NOT NULL, stop INTEGER NOT NULL, updated_ns INTEGER NOT NULL);"
    "CREATE TABLE overrides(route TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " expires_ns INTEGER NOT NULL, set_ns INTEGER NOT NULL, uid INTEGER NOT NULL,"
    " PRIMARY KEY(route, key));"
    "CREATE TABLE kv(key BLOB PRIMARY KEY, value BLOB NOT NULL, updated_ns INTEGER NOT NULL);"
    "CREATE TABLE file_positions(input TEXT NOT NULL, path TEXT NOT NULL, inode INTEGER NOT NULL,"
    " offset INTEGER NOT NULL, updated_ns INTEGER NOT NULL, PRIMARY KEY(input, path));"
    "CREATE TABLE offsets(topic TEXT NOT NULL, partition INTEGER NOT NULL,"
    " offset INTEGER NOT NULL, updated_ns INTEGER NOT NULL, PRIMARY KEY(topic, partition));"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, at_ns INTEGER NOT NULL,"
    " uid INTEGER NOT NULL, pid INTEGER NOT NULL, command TEXT NOT NULL, target TEXT,"
    " old_value TEXT, new_value TEXT);",
    /* 2: the spill replay's mark (pipeline/spill_key.h), kept with its offset. */
    "ALTER TABLE offsets ADD COLUMN mark_run INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE offsets ADD COLUMN mark_seq INTEGER NOT NULL DEFAULT 0;",
    /* 3: where a journald input stands: the sd-journal cursor of its last entry handed on. */
    "CREATE TABLE cursors(input TEXT PRIMARY KEY, cursor TEXT NOT NULL,"
    " updated_ns INTEGER NOT NULL);",
    /* 4: spilled records travel several to a Kafka message: how many of the message at the
     * offset were in the ring already (a restart skips them). */
    "ALTER TABLE offsets ADD COLUMN mark_skip INTEGER NOT NULL DEFAULT 0;",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

static int exec(struct store *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", s->path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static int user_version(struct store *s)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

/* quick_check reads every page: a corrupt file is refused here, at start, not mid-run. */
static int check_integrity(struct store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: not a usable SQLite database: %s", s->path,
                 sqlite3_errmsg(s->db));
        return -EIO;
    }
    rc = sqlite3_step(st);
    int ok = rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    if (!ok)
        snprintf(err, errlen,
                 "%s: database is corrupt or unreadable (%s); move it aside to "
                 "start with empty state",
                 s->path,
                 rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0)
                                  : sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return ok ? 0 : -EIO;
}

static int migrate(struct store *s, char *err, size_t errlen)
{
    /* BEGIN IMMEDIATE first: the version is read under the write lock (two processes opening a
     * new database together must not both migrate it), and a read-only or locked database is
     * reported now, even when there is nothing to migrate. */
    if (exec(s, "BEGIN IMMEDIATE", err, errlen))
        return -EIO;
    int v = user_version(s);
    if (v < 0 || v > SCHEMA_VERSION) {
        if (v < 0)
            snprintf(err, errlen, "%s: cannot read the schema version: %s", s->path,
                     sqlite3_errmsg(s->db));
        else
            snprintf(err, errlen, "%s: schema version %d is newer than this spillway (%d)", s->path,
                     v, SCHEMA_VERSION);
        exec(s, "ROLLBACK", (char[64]){0}, 64);
        return v < 0 ? -EIO : -EINVAL;
    }
    for (; v < SCHEMA_VERSION; v++) {
        char sql[64];
        if (exec(s, migrations[v], err, errlen))
            goto fail;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if (exec(s, sql, err, errlen))
            goto fail;
    }
    return exec(s, "COMMIT", err, errlen);
fail:
    exec(s, "ROLLBACK", (char[64]){0}, 64);
    return -EIO;
}

/* WAL lets the admin side write while readers go on. SQLite answers the pragma with the mode
 * it actually chose: a file system without the shared memory WAL needs keeps the rollback
 * journal, which still works (only slower under contention), so that is a warning, not an
 * error. A database that cannot answer at all (locked, read-only) is an error. */
static int set_wal(struct store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        snprintf(err, errlen, "%s: cannot set WAL mode: %s", s->path, sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        return -EIO;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal"))
        log_warn("state database is not in WAL mode: writes will block readers", "{s:s, s:s}",
                 "path", s->path, "journal_mode", mode ? mode : "");
    sqlite3_finalize(st);
    return exec(s, "PRAGMA synchronous = NORMAL", err, errlen);
}

struct store *store_open(const char *path, char *err, size_t errlen)
{
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->path = strdup(path);
    int rc = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (check_integrity(s, err, errlen))
        goto fail;
    if (set_wal(s, err, errlen))
        goto fail;
    if (migrate(s, err, errlen))
        goto fail;
    return s;
fail:
    store_close(s);
    return NULL;
}

struct store *store_open_nowait(const struct store *s, char *err, size_t errlen)
{
    struct store *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->path = strdup(s->path);
    /* No busy timeout: SQLite's default is to fail with SQLITE_BUSY at once. */
    int rc = sqlite3_open_v2(s->path, &n->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK || !n->path) {
        snprintf(err, errlen, "%s: cannot open: %s", s->path,
                 n->db ? sqlite3_errmsg(n->db) : sqlite3_errstr(rc));
        store_close(n);
        return NULL;
    }
    return n;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

const char *store_path(const struct store *s)
{
    return s->path;
}

/* Logs and maps a failed statement. */
static int failed(struct store *s, const char *what)
{
    log_error("store write failed", "{s:s, s:s, s:s}", "path", s->path, "op", what, "error",
              sqlite3_errmsg(s->db));
    return -EIO;
}

static int step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : failed(s, what);
}

int store_routes_reconcile(struct store *s, const struct store_route *routes, int n)
{
    char err[512];
    if (exec(s, "BEGIN IMMEDIATE", err, sizeof(err)))
        return failed(s, "reconcile routes");
    if (exec(s, "DELETE FROM routes", err, sizeof(err)))
        goto fail;
    for (int i = 0; i < n; i++) {
        const struct store_route *r = &routes[i];
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO routes(name, position, script, sample_rate, "
                               "sample_key, sinks, shadow, enabled, stop, updated_ns) "
                               "VALUES(?,?,?,?,?,?,?,?,?,?)",
                               -1, &st, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, i);
        sqlite3_bind_text(st, 3, r->script, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 4, r->sample_rate);
        sqlite3_bind_text(st, 5, r->sample_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, r->sinks, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, r->shadow, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 8, r->enabled);
        sqlite3_bind_int(st, 9, r->stop);
        sqlite3_bind_int64(st, 10, time_now_ns());
        if (step_done(s, st, "reconcile routes"))
            goto fail;
    }
    if (exec(s, "DELETE FROM overrides WHERE route NOT IN (SELECT name FROM routes)", err,
             sizeof(err)) ||
        exec(s, "COMMIT", err, sizeof(err)))
        goto fail;
    return 0;
fail:
    exec(s, "ROLLBACK", err, sizeof(err));
    return failed(s, "reconcile routes");
}

int store_override_set(struct store *s, const struct store_override *o)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO overrides(route, key, value, expires_ns, "
                           "set_ns, uid) VALUES(?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return failed(s, "set override");
    sqlite3_bind_text(st, 1, o->route, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, o->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, o->value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, o->expires_ns);
    sqlite3_bind_int64(st, 5, o->set_ns);
    sqlite3_bind_int64(st, 6, o->uid);
    return step_done(s, st, "set override");
}

int store_override_clear(struct store *s, const char *route, const char *key)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM overrides WHERE route = ? AND key = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return failed(s, "clear override");
    sqlite3_bind_text(st, 1, route, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    return step_done(s, st, "clear override");
}

static void copy_col(char *dst, size_t len, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, len, "%s", t ? (const char *)t : "");
}

int store_overrides_each(struct store *s, void (*fn)(void *ud, const struct store_override *o),
                         void *ud)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT route, key, value, expires_ns, set_ns, uid FROM overrides", -1,
                           &st, NULL) != SQLITE_OK)
        return failed(s, "read overrides");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_override o;
        copy_col(o.route, sizeof(o.route), st, 0);
        copy_col(o.key, sizeof(o.key), st, 1);
        copy_col(o.value, sizeof(o.value), st, 2);
        o.expires_ns = sqlite3_column_int64(st, 3);
        o.set_ns = sqlite3_column_int64(st, 4);
        o.uid = sqlite3_column_int64(st, 5);
        fn(ud, &o);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : failed(s, "read overrides");
}

int store_kv_get(struct store *s, const char *key, size_t klen, struct buf *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM kv WHERE key = ?", -1, &st, NULL) != SQLITE_OK)
        return failed(s, "kv get");
    sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_STATIC);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        found = 1;
        buf_append(out, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return failed(s, "kv get");
    return found;
}

int store_kv_set(struct store *s, const char *key, size_t klen, const char *val, size_t vlen)
{
    sqlite3_stmt *st;
    const char *sql = val ? "INSERT OR REPLACE INTO kv(key, value, updated_ns) VALUES(?,?,?)"
                          : "DELETE FROM kv WHERE key = ?";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return failed(s, "kv set");
    sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_STATIC);
    if (val) {
        sqlite3_bind_blob(st, 2, vlen ? val : "", (int)vlen, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, time_now_ns());
    }
    return step_done(s, st, "kv set");
}

int store_kv_each(struct store *s,
                  void (*fn)(void *ud, const char *k, size_t kl, const char *v, size_t vl),
                  void *ud)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT key, value FROM kv", -1, &st, NULL) != SQLITE_OK)
        return failed(s, "kv read");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* SQLite gives NULL for an empty BLOB: an empty key or value is still "". */
        const char *k = sqlite3_column_blob(st, 0), *v = sqlite3_column_blob(st, 1);
        fn(ud, k ? k : "", (size_t)sqlite3_column_bytes(st, 0), v ? v : "",
           (size_t)sqlite3_column_bytes(st, 1));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : failed(s, "kv read");
}

int store_cursor_get(struct store *s, const char *input, struct buf *cursor)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT cursor FROM cursors WHERE input = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return failed(s, "cursor get");
    sqlite3_bind_text(st, 1, input, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        const void *v = sqlite3_column_text(st, 0);
        found = buf_append(cursor, v ? v : "", (size_t)sqlite3_column_bytes(st, 0)) ? -ENOMEM : 1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : failed(s, "cursor get");
}

int store_cursor_set(struct store *s, const char *input, const char *cursor)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO cursors(input, cursor, updated_ns) "
                           "VALUES(?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return failed(s, "cursor set");
    sqlite3_bind_text(st, 1, input, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, cursor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, time_now_ns());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : failed(s, "cursor set");
}

int store_position_get(struct store *s, const char *input, const char *path, uint64_t *inode,
                       uint64_t *offset)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT inode, offset FROM file_positions WHERE input = ? AND path = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return failed(s, "position get");
    sqlite3_bind_text(st, 1, input, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        *inode = (uint64_t)sqlite3_column_int64(st, 0);
        *offset = (uint64_t)sqlite3_column_int64(st, 1);
        found = 1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : failed(s, "position get");
}

int store_position_set(struct store *s, const char *input, const char *path, uint64_t inode,
                       uint64_t offset)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO file_positions(input, path, inode, offset, "
                           "updated_ns) VALUES(?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return failed(s, "position set");
    sqlite3_bind_text(st, 1, input, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)inode);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)offset);
    sqlite3_bind_int64(st, 5, time_now_ns());
    return step_done(s, st, "position set");
}

int store_position_by_inode(struct store *s, const char *input, uint64_t inode, struct buf *path,
                            uint64_t *offset)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT path, offset FROM file_positions WHERE input = ? AND inode = ?"
                           " ORDER BY updated_ns DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return failed(s, "position by inode");
    sqlite3_bind_text(st, 1, input, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)inode);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(st, 0);
        *offset = (uint64_t)sqlite3_column_int64(st, 1);
        found = p && buf_append(path, p, strlen(p)) == 0;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : failed(s, "position by inode");
}

int store_position_delete(struct store *s, const char *input, const char *path)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM file_positions WHERE input = ? AND path = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return failed(s, "position delete");
    sqlite3_bind_text(st, 1, input, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    return step_done(s, st, "position delete");
}

int store_offset_get(struct store *s, const char *topic, int partition, int64_t *offset,
                     uint64_t mark[STORE_MARK])
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT offset, mark_run, mark_seq, mark_skip FROM offsets WHERE "
                           "topic = ? AND partition = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return failed(s, "offset get");
    sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, partition);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        *offset = sqlite3_column_int64(st, 0);
        for (int i = 0; mark && i < STORE_MARK; i++)
            mark[i] = (uint64_t)sqlite3_column_int64(st, 1 + i);
        found = 1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : failed(s, "offset get");
}

int store_offset_set(struct store *s, const char *topic, int partition, int64_t offset,
                     const uint64_t mark[STORE_MARK])
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO offsets(topic, partition, offset, updated_ns, "
                           "mark_run, mark_seq, mark_skip) VALUES(?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return failed(s, "offset set");
    sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, partition);
    sqlite3_bind_int64(st, 3, offset);
    sqlite3_bind_int64(st, 4, time_now_ns());
    for (int i = 0; i < STORE_MARK; i++)
        sqlite3_bind_int64(st, 5 + i, mark ? (sqlite3_int64)mark[i] : 0);
    return step_done(s, st, "offset set");
}

int store_audit_add(struct store *s, const struct store_audit *a)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO audit(at_ns, uid, pid, command, target, old_value, "
                           "new_value) VALUES(?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return failed(s, "audit");
    sqlite3_bind_int64(st, 1, a->at_ns ? a->at_ns : time_now_ns());
    sqlite3_bind_int64(st, 2, a->uid);
    sqlite3_bind_int64(st, 3, a->pid);
    sqlite3_bind_text(st, 4, a->command, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->target, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, a->old_value, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, a->new_value, -1, SQLITE_STATIC);
    return step_done(s, st, "audit");
}

int store_audit_each(struct store *s, int n, void (*fn)(void *ud, const struct store_audit *a),
                     void *ud)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, at_ns, uid, pid, command, target, old_value, new_value "
                           "FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?) ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return failed(s, "audit read");
    sqlite3_bind_int(st, 1, n);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_audit a = {
            .id = sqlite3_column_int64(st, 0),
            .at_ns = sqlite3_column_int64(st, 1),
            .uid = sqlite3_column_int64(st, 2),
            .pid = sqlite3_column_int64(st, 3),
            .command = (const char *)sqlite3_column_text(st, 4),
            .target = (const char *)sqlite3_column_text(st, 5),
            .old_value = (const char *)sqlite3_column_text(st, 6),
            .new_value = (const char *)sqlite3_column_text(st, 7),
        };
        fn(ud, &a);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : failed(s, "audit read");
}
