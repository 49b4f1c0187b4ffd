/*
** backend_sql.c -- the four backends reached through SQL.
**
**   mmap-sql   the `mmap` virtual table (the extension, loaded), temp.kv
**   mem-sql    kv(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID in :memory:
**   wal-sql    the same table in a WAL database on /dev/shm, synchronous=NORMAL,
**              busy_timeout=5000: what several processes share today
**   array-sql  the trivial virtual table over a C array (vtab_array.c)
**
** All four use the same prepared statements, as an application would:
** bind, step, read the columns, reset.
*/
#include "bench.h"
#include "os.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MMAP_EXT_PATH
#error "MMAP_EXT_PATH must name the built mmap.so"
#endif

struct bench_db {
    sqlite3 *db;
    sqlite3_stmt *get, *put, *del, *scan, *begin, *commit;
    sqlite3_stmt *upd; /* prepared at its first use (the array tables have no UPDATE) */
};

/* Prints the connection's error about what; returns -1. */
static int sql_fail(sqlite3 *db, const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, db ? sqlite3_errmsg(db) : "no connection");
    return -1;
}

/* Runs one statement without results; returns 0 or -1. */
static int sql_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK) return 0;
    fprintf(stderr, "bench: %s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    return -1;
}

/* Prepares the six statements of table kv. */
static int sql_prepare_all(struct bench_db *d)
{
    static const char *const sql[6] = {"SELECT value FROM kv WHERE key = ?1",
                                       "INSERT OR REPLACE INTO kv(key, value) VALUES (?1, ?2)",
                                       "DELETE FROM kv WHERE key = ?1",
                                       "SELECT key, value FROM kv",
                                       "BEGIN",
                                       "COMMIT"};
    sqlite3_stmt **st[6] = {&d->get, &d->put, &d->del, &d->scan, &d->begin, &d->commit};
    for (int i = 0; i < 6; i++)
        if (sqlite3_prepare_v3(d->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, st[i], NULL))
            return sql_fail(d->db, sql[i]);
    return 0;
}

/* Opens a connection to path and runs setup (several statements). */
static int sql_open(const char *path, const char *setup, int load_ext, struct bench_db **out)
{
    struct bench_db *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d) return -1;
    if (sqlite3_open(path, &d->db) != SQLITE_OK) goto fail;
    if (load_ext == 1) {
        char *err = NULL;
        sqlite3_enable_load_extension(d->db, 1);
        if (sqlite3_load_extension(d->db, MMAP_EXT_PATH, NULL, &err) != SQLITE_OK) {
            fprintf(stderr, "bench: loading %s: %s\n", MMAP_EXT_PATH, err ? err : "?");
            sqlite3_free(err);
            goto fail_quiet;
        }
    }
    if (load_ext == 2 && array_vtab_register(d->db)) goto fail;
    if (sql_exec(d->db, setup) || sql_prepare_all(d)) goto fail_quiet;
    *out = d;
    return 0;
fail:
    sql_fail(d->db, path);
fail_quiet:
    sqlite3_close_v2(d->db);
    free(d);
    return -1;
}

static void sql_close(struct bench_db *d)
{
    sqlite3_stmt *st[6] = {d->get, d->put, d->del, d->scan, d->begin, d->commit};
    for (int i = 0; i < 6; i++)
        sqlite3_finalize(st[i]);
    sqlite3_finalize(d->upd);
    sqlite3_close(d->db);
    free(d);
}

/* Steps st once and resets it; returns 0 if it gave `want`, else -1. */
static int sql_step_reset(struct bench_db *d, sqlite3_stmt *st, int want)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == want) return 0;
    return sql_fail(d->db, sqlite3_sql(st));
}

static int sql_get(struct bench_db *d, const char *key, uint64_t *sink)
{
    sqlite3_bind_text(d->get, 1, key, KEY_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(d->get);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_blob(d->get, 0);
        int n = sqlite3_column_bytes(d->get, 0);
        *sink += (uint64_t)n + (n ? v[0] : 0);
    }
    sqlite3_reset(d->get);
    if (rc == SQLITE_ROW) return 0;
    return rc == SQLITE_DONE ? 1 : sql_fail(d->db, "lookup");
}

static int sql_put(struct bench_db *d, const char *key, const void *val, uint32_t vlen)
{
    sqlite3_bind_text(d->put, 1, key, KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(d->put, 2, val, (int)vlen, SQLITE_STATIC);
    return sql_step_reset(d, d->put, SQLITE_DONE);
}

static int sql_del(struct bench_db *d, const char *key)
{
    sqlite3_bind_text(d->del, 1, key, KEY_LEN, SQLITE_STATIC);
    return sql_step_reset(d, d->del, SQLITE_DONE);
}

/* UPDATE of one key that exists: SQLite looks the row up, then changes it. */
static int sql_update(struct bench_db *d, const char *key, const void *val, uint32_t vlen)
{
    static const char sql[] = "UPDATE kv SET value = ?2 WHERE key = ?1";
    if (!d->upd && sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &d->upd, NULL))
        return sql_fail(d->db, sql);
    sqlite3_bind_text(d->upd, 1, key, KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(d->upd, 2, val, (int)vlen, SQLITE_STATIC);
    if (sql_step_reset(d, d->upd, SQLITE_DONE)) return -1;
    if (sqlite3_changes(d->db) == 1) return 0;
    fprintf(stderr, "bench: update of %.*s changed %d rows\n", KEY_LEN, key,
            sqlite3_changes(d->db));
    return -1;
}

static int sql_begin(struct bench_db *d)
{
    return sql_step_reset(d, d->begin, SQLITE_DONE);
}

static int sql_commit(struct bench_db *d)
{
    return sql_step_reset(d, d->commit, SQLITE_DONE);
}

static int64_t sql_scan(struct bench_db *d, uint64_t *sink)
{
    int64_t rows = 0;
    int rc;
    while ((rc = sqlite3_step(d->scan)) == SQLITE_ROW) {
        const unsigned char *k = sqlite3_column_text(d->scan, 0);
        const unsigned char *v = sqlite3_column_blob(d->scan, 1);
        int n = sqlite3_column_bytes(d->scan, 1);
        *sink += k[0] + (uint64_t)n + (n ? v[0] : 0);
        rows++;
    }
    sqlite3_reset(d->scan);
    return rc == SQLITE_DONE ? rows : sql_fail(d->db, "scan");
}

/* Runs a query returning one integer. */
static int sql_int(sqlite3 *db, const char *sql, uint64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL)) return sql_fail(db, sql);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Bytes of database pages (page_count * page_size) per entry. */
static int sql_space(struct bench_db *d, uint64_t *used, uint64_t *entries)
{
    uint64_t pages, psize;
    if (sql_int(d->db, "PRAGMA main.page_count", &pages) ||
        sql_int(d->db, "PRAGMA main.page_size", &psize) ||
        sql_int(d->db, "SELECT count(*) FROM kv", entries))
        return -1;
    *used = pages * psize;
    return 0;
}

/* --- mmap-sql --- */

static void mmap_name(const bench_cfg *c, char *out, size_t n)
{
    snprintf(out, n, "bench-%s", c->tag);
}

/* Attaches temp.kv to the mapping of c (split into `parts` parts when it
** is created, and then named with a "-p<parts>" suffix). */
static int mmap_connect_parts(const bench_cfg *c, const char *mode, int parts, bench_db **out)
{
    char name[96], setup[400];
    mmap_name(c, name, sizeof name);
    if (parts > 1) snprintf(name + strlen(name), sizeof name - strlen(name), "-p%d", parts);
    snprintf(setup, sizeof setup,
             "CREATE VIRTUAL TABLE temp.kv USING mmap(name='%s', size=%llu, mode=%s, "
             "timeout=10000, parts=%d)",
             name, (unsigned long long)mapping_bytes(c), mode, parts);
    return sql_open(":memory:", setup, 1, out);
}

static int mmap_connect(const bench_cfg *c, const char *mode, bench_db **out)
{
    return mmap_connect_parts(c, mode, 1, out);
}

static int mmap_create(const bench_cfg *c, bench_db **out)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/sqlite-mmap.bench-%s", c->tag);
    cleanup_register(path);
    return mmap_connect(c, "new", out);
}

static int mmap_open(const bench_cfg *c, bench_db **out)
{
    return mmap_connect(c, "open", out);
}

static void mmap_destroy(const bench_cfg *c)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/sqlite-mmap.bench-%s", c->tag);
    unlink(path);
}

/* Reads a number field of the JSON from mmap_info. */
static uint64_t json_field(const char *json, const char *field)
{
    char pat[40];
    snprintf(pat, sizeof pat, "\"%s\":", field);
    const char *p = strstr(json, pat);
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* Bytes of the mapping used (header, records, index) per entry. */
static int mmap_space(struct bench_db *d, uint64_t *used, uint64_t *entries)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->db, "SELECT mmap_info('kv')", -1, &st, NULL))
        return sql_fail(d->db, "mmap_info");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *j = (const char *)sqlite3_column_text(st, 0);
        *used = json_field(j, "used");
        *entries = json_field(j, "entries");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sql_fail(d->db, "mmap_info");
}

const backend be_mmap_sql = {"mmap-sql",
                             "the mmap virtual table through SQL (this project)",
                             1,
                             0,
                             NULL,
                             mmap_create,
                             mmap_open,
                             sql_close,
                             mmap_destroy,
                             sql_get,
                             sql_put,
                             sql_del,
                             sql_begin,
                             sql_commit,
                             sql_scan,
                             NULL,
                             mmap_space, 0, sql_update};

/* --- mmap-sqlP: the same on a mapping split into BENCH_PARTS parts --- */

static int mmapp_create(const bench_cfg *c, bench_db **out)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/sqlite-mmap.bench-%s-p%d", c->tag, BENCH_PARTS);
    cleanup_register(path);
    return mmap_connect_parts(c, "new", BENCH_PARTS, out);
}

static int mmapp_open(const bench_cfg *c, bench_db **out)
{
    return mmap_connect_parts(c, "open", BENCH_PARTS, out);
}

static void mmapp_destroy(const bench_cfg *c)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/sqlite-mmap.bench-%s-p%d", c->tag, BENCH_PARTS);
    unlink(path);
}

const backend be_mmap_sqlp = {BENCH_PARTS_NAME("mmap-sql"),
                              "the mmap virtual table through SQL, mapping in parts (parts="
                              BENCH_PARTS_STR ")",
                              1,
                              0,
                              NULL,
                              mmapp_create,
                              mmapp_open,
                              sql_close,
                              mmapp_destroy,
                              sql_get,
                              sql_put,
                              sql_del,
                              sql_begin,
                              sql_commit,
                              sql_scan,
                              NULL,
                              mmap_space, 1, sql_update};

/* --- mem-sql --- */

#define KV_TABLE "CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID"

static int mem_create(const bench_cfg *c, bench_db **out)
{
    (void)c;
    return sql_open(":memory:", KV_TABLE, 0, out);
}

static void no_destroy(const bench_cfg *c)
{
    (void)c;
}

const backend be_mem_sql = {"mem-sql",  "ordinary WITHOUT ROWID table in :memory:",
                            0,          0,
                            NULL,       mem_create,
                            NULL,       sql_close,
                            no_destroy, sql_get,
                            sql_put,    sql_del,
                            sql_begin,  sql_commit,
                            sql_scan,   NULL,
                            sql_space, 0, NULL};

/* --- wal-sql --- */

static void wal_path(const bench_cfg *c, char *out, size_t n)
{
    snprintf(out, n, "/dev/shm/bench-%s.db", c->tag);
}

static int wal_open(const bench_cfg *c, bench_db **out)
{
    char path[128];
    wal_path(c, path, sizeof path);
    return sql_open(path,
                    "PRAGMA busy_timeout=10000; PRAGMA journal_mode=WAL; "
                    "PRAGMA synchronous=NORMAL; " KV_TABLE,
                    0, out);
}

static void wal_destroy(const bench_cfg *c)
{
    char path[128], side[140];
    wal_path(c, path, sizeof path);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

static int wal_create(const bench_cfg *c, bench_db **out)
{
    char path[128], side[140];
    wal_path(c, path, sizeof path);
    wal_destroy(c);
    cleanup_register(path);
    snprintf(side, sizeof side, "%s-wal", path);
    cleanup_register(side);
    snprintf(side, sizeof side, "%s-shm", path);
    cleanup_register(side);
    return wal_open(c, out);
}

const backend be_wal_sql = {
    "wal-sql",   "the same table in a WAL database on /dev/shm (synchronous=NORMAL)",
    1,           0,
    NULL,        wal_create,
    wal_open,    sql_close,
    wal_destroy, sql_get,
    sql_put,     sql_del,
    sql_begin,   sql_commit,
    sql_scan,    NULL,
    sql_space, 0, sql_update};

/* --- array-sql --- */

static int array_create(const bench_cfg *c, bench_db **out)
{
    (void)c;
    return sql_open(":memory:", "CREATE VIRTUAL TABLE temp.kv USING array", 2, out);
}

/* The C-array floors: tables in this process, through the same statements. */
#define ARRAY_BACKEND(NAME, ABOUT, CREATE, DESTROY)                                            \
    {.name = NAME, .about = ABOUT, .create = CREATE, .close = sql_close, .destroy = DESTROY,   \
     .get = sql_get, .put = sql_put, .del = sql_del, .begin = sql_begin, .commit = sql_commit, \
     .scan = sql_scan}

const backend be_array_sql = ARRAY_BACKEND(
    "array-sql", "trivial virtual table over a C array (the vtab floor)", array_create, no_destroy);

/* --- array-txn-sql --- */

static int array_txn_create(const bench_cfg *c, bench_db **out)
{
    (void)c;
    return sql_open(":memory:", "CREATE VIRTUAL TABLE temp.kv USING array_txn", 2, out);
}

const backend be_array_txn_sql =
    ARRAY_BACKEND("array-txn-sql", "the same C-array table with empty xBegin/xSync/xCommit/xRollback",
                  array_txn_create, no_destroy);

/* --- array-lock-sql --- */

static void array_lock_name(const bench_cfg *c, char *out, size_t n)
{
    snprintf(out, n, "bench-%s-arrlock", c->tag);
}

static int array_lock_create(const bench_cfg *c, bench_db **out)
{
    char name[96], path[160], setup[200];
    array_lock_name(c, name, sizeof name);
    mmkv_os_unlink(name);
    snprintf(path, sizeof path, "/dev/shm/sqlite-mmap.%s", name);
    cleanup_register(path);
    snprintf(setup, sizeof setup, "CREATE VIRTUAL TABLE temp.kv USING array_lock(%s)", name);
    return sql_open(":memory:", setup, 2, out);
}

static void array_lock_destroy(const bench_cfg *c)
{
    char name[96];
    array_lock_name(c, name, sizeof name);
    mmkv_os_unlink(name);
}

const backend be_array_lock_sql =
    ARRAY_BACKEND("array-lock-sql",
                  "the same, its xBegin taking the store's process-shared lock and xCommit "
                  "counting the commit in shared memory",
                  array_lock_create, array_lock_destroy);

/* --- filling a mapping until SQLITE_FULL --- */

int mmap_fill(const char *tag, uint64_t capacity, uint64_t *entries, uint64_t *kv_bytes)
{
    char setup[300], path[128];
    struct bench_db *d;
    uint64_t i = 0, used;
    snprintf(path, sizeof path, "/dev/shm/sqlite-mmap.bench-%s", tag);
    cleanup_register(path);
    snprintf(setup, sizeof setup,
             "CREATE VIRTUAL TABLE temp.kv USING mmap(name='bench-%s', size=%llu, mode=new)", tag,
             (unsigned long long)capacity);
    if (sql_open(":memory:", setup, 1, &d)) return -1;
    int rc;
    do {
        sqlite3_bind_text(d->put, 1, key_of(i), KEY_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(d->put, 2, value_of(i), 32, SQLITE_STATIC);
        rc = sqlite3_step(d->put);
        sqlite3_reset(d->put);
        i++;
    } while (rc == SQLITE_DONE);
    if (rc != SQLITE_FULL) sql_fail(d->db, "fill");
    sqlite3_stmt *st;
    int ok = rc == SQLITE_FULL && mmap_space(d, &used, entries) == 0 &&
             sqlite3_prepare_v2(d->db, "SELECT mmap_info('kv')", -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        ok = sqlite3_step(st) == SQLITE_ROW;
        *kv_bytes = ok ? json_field((const char *)sqlite3_column_text(st, 0), "kv_bytes") : 0;
        sqlite3_finalize(st);
    }
    sql_close(d);
    unlink(path);
    return ok ? 0 : -1;
}
