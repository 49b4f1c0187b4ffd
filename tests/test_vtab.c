/*
** test_vtab.c -- cmocka tests of the mmap virtual table through SQLite: the
** things easier to check from C than from SQL files.
**
** Exact result codes (extended ones too) and messages for constraint, full,
** read-only, busy and too-big errors; two connections on one mapping; bit-
** exact round trips through bound parameters; a million entries; churn over
** ten times the capacity; file mappings that outlive their connections;
** mode='open' taking the size from the mapping; scans that write.
**
** Every test gets a fixture with a mapping name unique to the run
** (vt<pid>_<n>) and a fresh /tmp directory; teardown closes the connections
** and removes both.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "mmkv.h"

#ifndef MMAP_EXT_PATH
#error "MMAP_EXT_PATH must be defined"
#endif

#define MAX_DBS 4

/* A unique mapping name, a temp directory and the connections a test opened. */
typedef struct fixture {
    char name[64];
    char dir[64];
    sqlite3 *db[MAX_DBS];
    int ndb;
} fixture;

static int name_counter;

/* Returns milliseconds of a monotonic clock. */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Opens a new in-memory connection with the extension loaded; the fixture
** closes it. */
static sqlite3 *open_db(fixture *f)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    sqlite3_extended_result_codes(db, 1);
    assert_int_equal(sqlite3_enable_load_extension(db, 1), SQLITE_OK);
    int rc = sqlite3_load_extension(db, MMAP_EXT_PATH, NULL, &err);
    if (rc != SQLITE_OK) fail_msg("load %s: %s", MMAP_EXT_PATH, err ? err : "?");
    assert_true(f->ndb < MAX_DBS);
    f->db[f->ndb++] = db;
    return db;
}

/* Closes one of the fixture's connections early. */
static void close_db(fixture *f, sqlite3 *db)
{
    for (int i = 0; i < f->ndb; i++) {
        if (f->db[i] == db) {
            assert_int_equal(sqlite3_close(db), SQLITE_OK);
            f->db[i] = f->db[--f->ndb];
            return;
        }
    }
    fail_msg("close_db: not a fixture connection");
}

/* Runs sql (printf-style) and returns its result code; on an error the
** message stays readable with sqlite3_errmsg(db). */
static int exec_rc(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    assert_non_null(sql);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_free(sql);
    return rc;
}

/* Runs sql (printf-style) and fails the test unless it succeeds. */
#define exec_ok(db, ...)                                                                           \
    do {                                                                                           \
        if (exec_rc((db), __VA_ARGS__) != SQLITE_OK)                                               \
            fail_msg("%s:%d: %s", __FILE__, __LINE__, sqlite3_errmsg(db));                         \
    } while (0)

/* Returns the integer in the first column of the first row of sql. */
static int64_t query_int(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) fail_msg("step %s: %d %s", sql, rc, sqlite3_errmsg(db));
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_free(sql);
    return v;
}

/* Returns the text of the first column of the first row of sql (caller
** frees with sqlite3_free), or NULL for a NULL. */
static char *query_text(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) fail_msg("step %s: %d %s", sql, rc, sqlite3_errmsg(db));
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *out = t ? sqlite3_mprintf("%s", t) : NULL;
    sqlite3_finalize(st);
    sqlite3_free(sql);
    return out;
}

/* Returns an exact dump of table tbl: every key and value in key order. */
static char *dump(sqlite3 *db, const char *tbl)
{
    return query_text(
        db,
        "SELECT coalesce(group_concat(typeof(key)||':'||hex(key)||'='||typeof(value)||':'||"
        "CASE typeof(value) WHEN 'real' THEN printf('%%!.17g', value) ELSE hex(value) END, ','), "
        "'')"
        " FROM (SELECT key, value FROM %s ORDER BY key)",
        tbl);
}

/* Asserts that the last error message of db contains word. */
#define assert_errmsg_has(db, word)                                                                \
    do {                                                                                           \
        if (!strstr(sqlite3_errmsg(db), (word)))                                                   \
            fail_msg("message '%s' lacks '%s'", sqlite3_errmsg(db), (word));                       \
    } while (0)

/* Creates a fixture with a unique name and a fresh directory. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->name, sizeof f->name, "vt%d_%d", (int)getpid(), ++name_counter);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_vtab%d_XXXXXX", (int)getpid());
    if (!mkdtemp(f->dir)) return -1;
    *state = f;
    return 0;
}

/* Closes the fixture's connections and removes its mapping and directory. */
static int teardown(void **state)
{
    fixture *f = *state;
    char extra[96];
    for (int i = 0; i < f->ndb; i++)
        sqlite3_close(f->db[i]);
    mmkv_unlink(f->name);
    snprintf(extra, sizeof extra, "%s_b", f->name); /* second mappings some tests make */
    mmkv_unlink(extra);
    snprintf(extra, sizeof extra, "%s_small", f->name);
    mmkv_unlink(extra);
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char path[600];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* --- constraint errors ------------------------------------------------- */

static void test_duplicate_key_is_constraint_primarykey_like_an_ordinary_table(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q)", f->name);
    exec_ok(db, "CREATE TABLE t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
    exec_ok(db, "INSERT INTO kv VALUES ('a', 1); INSERT INTO t VALUES ('a', 1)");

    assert_int_equal(exec_rc(db, "INSERT INTO t VALUES ('a', 2)"), SQLITE_CONSTRAINT_PRIMARYKEY);
    assert_int_equal(exec_rc(db, "INSERT INTO kv VALUES ('a', 2)"), SQLITE_CONSTRAINT_PRIMARYKEY);
    assert_int_equal(sqlite3_extended_errcode(db), SQLITE_CONSTRAINT_PRIMARYKEY);
    assert_int_equal(sqlite3_errcode(db) & 0xff, SQLITE_CONSTRAINT);
    assert_string_equal(sqlite3_errmsg(db), "UNIQUE constraint failed: kv.key");
    assert_int_equal(exec_rc(db, "UPDATE kv SET key = 'a' WHERE key = 'b'"), SQLITE_OK);
    exec_ok(db, "INSERT INTO kv VALUES ('b', 2)");
    assert_int_equal(exec_rc(db, "UPDATE kv SET key = 'a' WHERE key = 'b'"),
                     SQLITE_CONSTRAINT_PRIMARYKEY);
    assert_string_equal(sqlite3_errmsg(db), "UNIQUE constraint failed: kv.key");
    assert_int_equal(query_int(db, "SELECT value FROM kv WHERE key = 'a'"), 1);
    assert_int_equal(query_int(db, "SELECT value FROM kv WHERE key = 'b'"), 2);

    /* Through a prepared statement, sqlite3_step returns the same code. */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO kv VALUES (?, ?)", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, "a", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, 3);
    assert_int_equal(sqlite3_step(st), SQLITE_CONSTRAINT_PRIMARYKEY);
    assert_int_equal(sqlite3_reset(st), SQLITE_CONSTRAINT_PRIMARYKEY);
    sqlite3_finalize(st);
}

static void test_null_key_is_constraint_notnull_like_an_ordinary_table(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q)", f->name);
    exec_ok(db, "CREATE TABLE t(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
    assert_int_equal(exec_rc(db, "INSERT INTO t VALUES (NULL, 1)"), SQLITE_CONSTRAINT_NOTNULL);
    assert_int_equal(exec_rc(db, "INSERT INTO kv VALUES (NULL, 1)"), SQLITE_CONSTRAINT_NOTNULL);
    assert_int_equal(sqlite3_extended_errcode(db), SQLITE_CONSTRAINT_NOTNULL);
    assert_string_equal(sqlite3_errmsg(db), "NOT NULL constraint failed: kv.key");

    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO kv VALUES (?, 1)", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_null(st, 1);
    assert_int_equal(sqlite3_step(st), SQLITE_CONSTRAINT_NOTNULL);
    sqlite3_finalize(st);

    exec_ok(db, "INSERT INTO kv VALUES ('a', 1)");
    assert_int_equal(exec_rc(db, "UPDATE kv SET key = NULL"), SQLITE_CONSTRAINT_NOTNULL);
    assert_string_equal(sqlite3_errmsg(db), "NOT NULL constraint failed: kv.key");
    assert_int_equal(query_int(db, "SELECT count(*) FROM kv WHERE key = 'a'"), 1);
}

static void test_changes_count_like_an_ordinary_table(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q)", f->name);
    exec_ok(db, "INSERT INTO kv VALUES ('a', 1), ('b', 2), ('c', 3)");
    assert_int_equal(sqlite3_changes(db), 3);
    exec_ok(db, "UPDATE kv SET value = value + 1 WHERE key IN ('a', 'b', 'x')");
    assert_int_equal(sqlite3_changes(db), 2);
    exec_ok(db, "INSERT OR IGNORE INTO kv VALUES ('a', 9), ('d', 4)");
    assert_int_equal(sqlite3_changes(db), 1);
    exec_ok(db, "DELETE FROM kv");
    assert_int_equal(sqlite3_changes(db), 4);
}

/* --- capacity ------------------------------------------------------------ */

static void test_full_mapping_fails_with_sqlite_full_and_changes_nothing(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, size='64K')", f->name);
    exec_ok(db, "INSERT INTO kv VALUES ('first', 'row')");
    int rc = SQLITE_OK, i;
    char *before = NULL;
    for (i = 0; i < 1000 && rc == SQLITE_OK; i++) {
        sqlite3_free(before);
        before = dump(db, "kv");
        rc = exec_rc(db, "INSERT INTO kv VALUES ('k%d', randomblob(1000))", i);
    }
    assert_int_equal(rc, SQLITE_FULL);
    assert_int_equal(sqlite3_extended_errcode(db), SQLITE_FULL);
    assert_true(i > 10); /* a 64K mapping holds more than ten 1000-byte values */
    assert_errmsg_has(db, f->name);
    assert_errmsg_has(db, "full");
    if (!strstr(sqlite3_errmsg(db), "65536") && !strstr(sqlite3_errmsg(db), "64K"))
        fail_msg("message '%s' does not state the capacity", sqlite3_errmsg(db));
    char *after = dump(db, "kv");
    assert_string_equal(after, before);
    sqlite3_free(after);

    /* A multi-row insert that overflows leaves the table exactly as it was. */
    assert_int_equal(exec_rc(db, "INSERT INTO kv VALUES ('x1', 'small'), ('x2', zeroblob(60000))"),
                     SQLITE_FULL);
    after = dump(db, "kv");
    assert_string_equal(after, before);
    sqlite3_free(after);

    /* So does an update that grows a value past the capacity. */
    assert_int_equal(exec_rc(db, "UPDATE kv SET value = zeroblob(70000) WHERE key = 'first'"),
                     SQLITE_FULL);
    after = dump(db, "kv");
    assert_string_equal(after, before);
    sqlite3_free(after);

    /* Inside a transaction: the failing statement is undone, the earlier
    ** ones stay until ROLLBACK, which restores the start. */
    exec_ok(db, "DELETE FROM kv WHERE key IN ('k0', 'k1', 'k2')");
    sqlite3_free(before);
    before = dump(db, "kv");
    exec_ok(db, "BEGIN");
    exec_ok(db, "INSERT INTO kv VALUES ('t1', randomblob(500))");
    char *mid = dump(db, "kv");
    assert_int_equal(exec_rc(db, "INSERT INTO kv VALUES ('t2', 'x'), ('t3', zeroblob(60000))"),
                     SQLITE_FULL);
    after = dump(db, "kv");
    assert_string_equal(after, mid);
    sqlite3_free(after);
    exec_ok(db, "ROLLBACK");
    after = dump(db, "kv");
    assert_string_equal(after, before);
    sqlite3_free(after);
    sqlite3_free(mid);
    sqlite3_free(before);

    char *check = query_text(db, "SELECT mmap_check('kv')");
    assert_string_equal(check, "ok");
    sqlite3_free(check);
}

/* Compares the table kv with a model of live keys k0..k(n-1) whose value
** lengths are len[] (-1: absent) and whose bytes are all (i & 0xff). */
static void assert_matches_model(sqlite3 *db, const int *len, int n)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM kv WHERE key = ?", -1, &st, NULL),
                     SQLITE_OK);
    int live = 0;
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(st);
        if (len[i] < 0) {
            assert_int_equal(rc, SQLITE_DONE);
        } else {
            live++;
            assert_int_equal(rc, SQLITE_ROW);
            const unsigned char *p = sqlite3_column_blob(st, 0);
            assert_int_equal(sqlite3_column_bytes(st, 0), len[i]);
            for (int j = 0; j < len[i]; j++)
                if (p[j] != (unsigned char)(i & 0xff)) fail_msg("key %s: byte %d differs", key, j);
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    assert_int_equal(query_int(db, "SELECT count(*) FROM kv"), live);
}

static void
test_churn_over_ten_times_the_capacity_never_fills_a_mapping_whose_data_fits(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, size='64K')", f->name);
    enum { NKEYS = 8, OPS = 4000 };
    int len[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        len[i] = -1;
    sqlite3_stmt *put, *del;
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO kv VALUES (?, ?)", -1, &put, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "DELETE FROM kv WHERE key = ?", -1, &del, NULL),
                     SQLITE_OK);
    unsigned seed = 12345;
    uint64_t written = 0;
    unsigned char buf[2000];
    for (int op = 0; op < OPS; op++) {
        int k = (int)(rand_r(&seed) % NKEYS);
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        int in_tx = op % 50 == 0;
        if (in_tx) exec_ok(db, "BEGIN");
        if (rand_r(&seed) % 4 == 0) {
            sqlite3_bind_text(del, 1, key, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(del) != SQLITE_DONE)
                fail_msg("op %d delete: %s", op, sqlite3_errmsg(db));
            sqlite3_reset(del);
            len[k] = -1;
        } else {
            int n = 1 + (int)(rand_r(&seed) % sizeof buf);
            memset(buf, k & 0xff, (size_t)n);
            sqlite3_bind_text(put, 1, key, -1, SQLITE_TRANSIENT);
            sqlite3_bind_blob(put, 2, buf, n, SQLITE_TRANSIENT);
            if (sqlite3_step(put) != SQLITE_DONE)
                fail_msg("op %d (%llu bytes written so far) put of %d bytes: %s", op,
                         (unsigned long long)written, n, sqlite3_errmsg(db));
            sqlite3_reset(put);
            len[k] = n;
            written += (uint64_t)n;
        }
        if (in_tx) exec_ok(db, "COMMIT");
    }
    sqlite3_finalize(put);
    sqlite3_finalize(del);
    assert_true(written > 10 * 65536);
    assert_matches_model(db, len, NKEYS);
    char *check = query_text(db, "SELECT mmap_check('kv')");
    assert_string_equal(check, "ok");
    sqlite3_free(check);
}

/* --- read-only, too big --------------------------------------------------- */

static void test_write_through_readonly_is_sqlite_readonly(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE w USING mmap(name=%Q, size='64K')", f->name);
    exec_ok(db, "INSERT INTO w VALUES ('a', 1)");
    exec_ok(db, "CREATE VIRTUAL TABLE r USING mmap(name=%Q, mode='readonly')", f->name);
    const char *writes[] = {"INSERT INTO r VALUES ('b', 2)",
                            "INSERT OR REPLACE INTO r VALUES ('a', 2)", "UPDATE r SET value = 2",
                            "UPDATE r SET key = 'z'", "DELETE FROM r"};
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        int rc = exec_rc(db, "%s", writes[i]);
        if (rc != SQLITE_READONLY) fail_msg("%s: rc %d (%s)", writes[i], rc, sqlite3_errmsg(db));
        assert_errmsg_has(db, "read-only");
    }
    assert_int_equal(query_int(db, "SELECT value FROM r WHERE key = 'a'"), 1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM r"), 1);
}

static void test_a_key_over_65535_bytes_is_sqlite_toobig(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, size='1M')", f->name);
    char *key = malloc(65536);
    assert_non_null(key);
    memset(key, 'k', 65536);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO kv VALUES (?, 1)", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, key, 65535, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, key, 65536, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_TOOBIG);
    assert_int_equal(sqlite3_extended_errcode(db), SQLITE_TOOBIG);
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, key, 65536, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_TOOBIG);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE kv SET key = ?", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, key, 65536, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_TOOBIG);
    sqlite3_finalize(st);
    assert_int_equal(query_int(db, "SELECT count(*) FROM kv"), 1);
    assert_int_equal(query_int(db, "SELECT length(key) FROM kv"), 65535);
    /* Looking up a longer key finds nothing (and is no error). */
    assert_int_equal(
        query_int(db, "SELECT count(*) FROM kv WHERE key = printf('%%.*c', 65536, 'k')"), 0);
    assert_int_equal(
        query_int(db, "SELECT count(*) FROM kv WHERE key = printf('%%.*c', 10000000, 'k')"), 0);
    assert_int_equal(
        query_int(db, "SELECT count(*) FROM kv WHERE key = printf('%%.*c', 65535, 'k')"), 1);
    free(key);
}

/* --- two connections ------------------------------------------------------ */

static void test_two_connections_see_each_others_committed_changes(void **state)
{
    fixture *f = *state;
    sqlite3 *a = open_db(f), *b = open_db(f);
    exec_ok(a, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q)", f->name);
    exec_ok(b, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, mode='open', timeout=0)", f->name);
    exec_ok(a, "INSERT INTO kv VALUES ('x', 1), ('y', 'two')");
    assert_int_equal(query_int(b, "SELECT count(*) FROM kv"), 2);
    assert_int_equal(query_int(b, "SELECT value FROM kv WHERE key = 'x'"), 1);
    exec_ok(b, "UPDATE kv SET value = value + 41 WHERE key = 'x'");
    assert_int_equal(query_int(a, "SELECT value FROM kv WHERE key = 'x'"), 42);
    exec_ok(b, "UPDATE kv SET key = 'z' WHERE key = 'y'");
    assert_int_equal(query_int(a, "SELECT count(*) FROM kv WHERE key = 'y'"), 0);
    exec_ok(a, "DELETE FROM kv WHERE key = 'z'");
    assert_int_equal(query_int(b, "SELECT count(*) FROM kv"), 1);

    /* An open transaction of a is not seen by b until it commits. */
    exec_ok(a, "BEGIN");
    exec_ok(a, "INSERT INTO kv VALUES ('pending', 1)");
    exec_ok(a, "UPDATE kv SET value = -1 WHERE key = 'x'");
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(b, "SELECT count(*), sum(value) FROM kv", -1, &st, NULL),
                     SQLITE_OK);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        assert_int_equal(sqlite3_column_int(st, 0), 1);
        assert_int_equal(sqlite3_column_int(st, 1), 42);
    } else {
        assert_int_equal(rc, SQLITE_BUSY);
    }
    sqlite3_finalize(st);
    exec_ok(a, "COMMIT");
    assert_int_equal(query_int(b, "SELECT count(*) FROM kv"), 2);
    assert_int_equal(query_int(b, "SELECT value FROM kv WHERE key = 'x'"), -1);

    /* A rolled-back transaction of b is never seen by a. */
    exec_ok(b, "BEGIN");
    exec_ok(b, "DELETE FROM kv");
    exec_ok(b, "ROLLBACK");
    assert_int_equal(query_int(a, "SELECT count(*) FROM kv"), 2);
}

/* Keys and values are stored as UTF-8 whatever the connection's encoding:
** a UTF-16 connection and a UTF-8 one find each other's non-ASCII keys, and
** text bound with an explicit length (no terminating NUL) works too. */
static void test_text_is_utf8_in_the_mapping_for_utf16_and_utf8_connections(void **state)
{
    fixture *f = *state;
    sqlite3 *u16 = open_db(f), *u8 = open_db(f);
    exec_ok(u16, "PRAGMA encoding = 'UTF-16le'");
    exec_ok(u16, "CREATE TABLE force_encoding(x)");
    char *enc = query_text(u16, "PRAGMA encoding");
    assert_string_equal(enc, "UTF-16le");
    sqlite3_free(enc);
    exec_ok(u16, "CREATE VIRTUAL TABLE temp.kv USING mmap(name=%Q)", f->name);
    exec_ok(u8, "CREATE VIRTUAL TABLE temp.kv USING mmap(name=%Q, mode='open')", f->name);
    exec_ok(u16, "INSERT INTO kv VALUES ('cl\xc3\xa9', 'v\xc3\xa4lue')");
    char *hex =
        query_text(u8, "SELECT hex(key) || '/' || hex(value) FROM kv WHERE key = 'cl\xc3\xa9'");
    assert_string_equal(hex, "636CC3A9/76C3A46C7565");
    sqlite3_free(hex);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(u8, "INSERT INTO kv VALUES (?, ?)", -1, &st, NULL),
                     SQLITE_OK);
    const char buf[] = "k\xc3\xb6yXXXX";
    sqlite3_bind_text(st, 1, buf, 4, SQLITE_STATIC); /* "k\xc3\xb6y", not terminated */
    sqlite3_bind_text(st, 2, buf, 4, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(query_int(u16, "SELECT length(value) FROM kv WHERE key = 'k\xc3\xb6y'"), 3);
    assert_int_equal(
        query_int(u16, "SELECT count(*) FROM kv WHERE key IN ('cl\xc3\xa9', 'k\xc3\xb6y')"), 2);
}

static void test_busy_when_another_connection_of_this_thread_holds_the_lock(void **state)
{
    fixture *f = *state;
    sqlite3 *a = open_db(f), *b = open_db(f), *c = open_db(f);
    exec_ok(a, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q)", f->name);
    exec_ok(b, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, timeout=0)", f->name);
    exec_ok(c, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, timeout=100)", f->name);
    exec_ok(a, "INSERT INTO kv VALUES ('k', 1)");
    exec_ok(a, "BEGIN");
    exec_ok(a, "UPDATE kv SET value = 2");

    double t0 = now_ms();
    assert_int_equal(exec_rc(b, "INSERT INTO kv VALUES ('b', 1)"), SQLITE_BUSY);
    assert_errmsg_has(b, f->name);
    assert_errmsg_has(b, "lock");
    assert_int_equal(exec_rc(c, "UPDATE kv SET value = 3"), SQLITE_BUSY);
    assert_int_equal(sqlite3_extended_errcode(c) & 0xff, SQLITE_BUSY);
    assert_errmsg_has(c, f->name);
    assert_errmsg_has(c, "lock");
    assert_true(now_ms() - t0 < 3000); /* no hang */

    exec_ok(a, "COMMIT");
    exec_ok(b, "INSERT INTO kv VALUES ('b', 1)");
    exec_ok(c, "UPDATE kv SET value = 3 WHERE key = 'k'");
    assert_int_equal(query_int(a, "SELECT value FROM kv WHERE key = 'k'"), 3);
    assert_int_equal(query_int(a, "SELECT count(*) FROM kv"), 2);
}

/* A thread that holds the lock of a mapping in a write transaction for a
** while, then commits. */
typedef struct holder {
    const char *name;
    int hold_ms;
    volatile int locked; /* set once the transaction holds the lock */
    int rc;
} holder;

/* For a thread of a test: opens a connection of its own with the extension
** loaded and runs sql (sqlite3_mprintf'd; freed here) on it.  Returns the
** first failure's code or SQLITE_OK; the caller closes *db either way. */
static int thread_db(sqlite3 **db, char *sql)
{
    int rc = sqlite3_open(":memory:", db);
    if (rc == SQLITE_OK) sqlite3_enable_load_extension(*db, 1);
    if (rc == SQLITE_OK) rc = sqlite3_load_extension(*db, MMAP_EXT_PATH, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(*db, sql, NULL, NULL, NULL);
    sqlite3_free(sql);
    return rc;
}

/* Thread body: opens its own connection, writes in a transaction, sleeps,
** commits. */
static void *hold_lock(void *arg)
{
    holder *h = arg;
    sqlite3 *db = NULL;
    h->rc = thread_db(&db, sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING mmap(name=%Q);"
                                           "BEGIN; INSERT INTO kv VALUES ('holder', 1);",
                                           h->name));
    h->locked = 1;
    usleep((useconds_t)h->hold_ms * 1000);
    if (h->rc == SQLITE_OK) h->rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    return NULL;
}

static void test_busy_after_the_timeout_when_another_thread_holds_the_lock(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, timeout=100)", f->name);
    exec_ok(db, "CREATE VIRTUAL TABLE kv0 USING mmap(name=%Q, timeout=0)", f->name);
    holder h = {.name = f->name, .hold_ms = 1500};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_lock, &h), 0);
    while (!h.locked)
        usleep(1000);

    double t0 = now_ms();
    int rc = exec_rc(db, "INSERT INTO kv VALUES ('me', 1)");
    double waited = now_ms() - t0;
    assert_int_equal(rc, SQLITE_BUSY);
    assert_errmsg_has(db, f->name);
    assert_errmsg_has(db, "lock");
    assert_true(waited >= 80);  /* it waited about its timeout */
    assert_true(waited < 1000); /* and not for the holder */

    t0 = now_ms();
    assert_int_equal(exec_rc(db, "INSERT INTO kv0 VALUES ('me', 1)"), SQLITE_BUSY);
    assert_true(now_ms() - t0 < 80); /* timeout=0 does not wait */
    assert_errmsg_has(db, f->name);
    /* the lock comes before the row's own errors, as on an ordinary table */
    assert_int_equal(exec_rc(db, "INSERT INTO kv0 VALUES (NULL, 1)"), SQLITE_BUSY);
    assert_errmsg_has(db, f->name);

    pthread_join(th, NULL);
    assert_int_equal(h.rc, SQLITE_OK);
    exec_ok(db, "INSERT INTO kv VALUES ('me', 1)");
    assert_int_equal(query_int(db, "SELECT count(*) FROM kv"), 2);
}

static void test_a_writer_waits_for_the_lock_and_gets_it_when_the_holder_commits(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, timeout=5000)", f->name);
    holder h = {.name = f->name, .hold_ms = 300};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_lock, &h), 0);
    while (!h.locked)
        usleep(1000);
    double t0 = now_ms();
    exec_ok(db, "INSERT INTO kv VALUES ('waiter', 1)");
    assert_true(now_ms() - t0 >= 150);
    pthread_join(th, NULL);
    assert_int_equal(h.rc, SQLITE_OK);
    assert_int_equal(query_int(db, "SELECT count(*) FROM kv WHERE key IN ('holder', 'waiter')"), 2);
}

/* Thread body of the crossed-order test: writes table a, waits until the
** main thread has written table b, then writes b and commits, or rolls back
** on an error (keeping the error's code and message). */
typedef struct crosser {
    const char *name;
    volatile int step; /* 1: it holds a's lock; 2: the main thread holds b's */
    int rc;
    char msg[256];
} crosser;

static void *cross_writer(void *arg)
{
    crosser *x = arg;
    sqlite3 *db = NULL;
    x->rc = thread_db(&db, sqlite3_mprintf(
                               "CREATE VIRTUAL TABLE a USING mmap(name=%Q, timeout=300);"
                               "CREATE VIRTUAL TABLE b USING mmap(name='%q_b', timeout=300);"
                               "BEGIN; INSERT INTO a VALUES ('thread', 1);",
                               x->name, x->name));
    x->step = 1;
    while (x->step < 2 && x->rc == SQLITE_OK)
        usleep(1000);
    if (x->rc == SQLITE_OK) x->rc = sqlite3_exec(db, "INSERT INTO b VALUES ('thread', 1)", 0, 0, 0);
    snprintf(x->msg, sizeof x->msg, "%s", sqlite3_errmsg(db));
    sqlite3_exec(db, x->rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    return NULL;
}

/* Two transactions that write two tables in opposite orders wait for each
** other's lock: the one whose timeout runs out first fails with SQLITE_BUSY
** naming the mapping it waited for and rolls back, and the other commits.
** Neither table keeps any part of the one that failed. */
static void test_transactions_taking_two_tables_in_opposite_orders_end_in_one_busy(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE a USING mmap(name=%Q, timeout=5000)", f->name);
    exec_ok(db, "CREATE VIRTUAL TABLE b USING mmap(name='%q_b', timeout=5000)", f->name);
    crosser x = {.name = f->name};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cross_writer, &x), 0);
    while (x.step < 1)
        usleep(1000);
    int rc = exec_rc(db, "BEGIN; INSERT INTO b VALUES ('main', 2)");
    double t0 = now_ms();
    x.step = 2;
    if (rc == SQLITE_OK) rc = exec_rc(db, "INSERT INTO a VALUES ('main', 2)"); /* waits */
    double waited = now_ms() - t0;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(db));
    pthread_join(th, NULL); /* before any assertion: the thread uses x */
    if (rc != SQLITE_OK) fail_msg("main thread: %s", msg);
    exec_ok(db, "COMMIT");
    assert_int_equal(x.rc, SQLITE_BUSY);
    char want[96];
    snprintf(want, sizeof want, "mapping %s_b", f->name);
    if (!strstr(x.msg, want) || !strstr(x.msg, "timed out")) fail_msg("message: %s", x.msg);
    assert_true(waited >= 150); /* about the thread's timeout, then its rollback */
    assert_true(waited < 3000);
    const char *tables[2] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        char *d = dump(db, tables[i]);
        assert_string_equal(d, "text:6D61696E=integer:32"); /* 'main' = 2 only */
        sqlite3_free(d);
    }
}

/* --- exact values ------------------------------------------------------- */

static void test_random_blobs_texts_integers_and_doubles_round_trip_bit_exact(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, size='16M')", f->name);
    enum { N = 2000 };
    unsigned seed = 4242;
    sqlite3_stmt *ins, *get;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO kv VALUES (?, ?)", -1, &ins, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT value, typeof(value) FROM kv WHERE key = ?", -1, &get, NULL),
        SQLITE_OK);
    unsigned char buf[3000];
    /* Pass 0 inserts, pass 1 regenerates the same sequence and checks it. */
    for (int pass = 0; pass < 2; pass++) {
        seed = 4242;
        if (pass == 0) exec_ok(db, "BEGIN");
        for (int i = 0; i < N; i++) {
            unsigned char key[40];
            int keylen = 2 + (int)(rand_r(&seed) % (sizeof key - 2));
            for (int j = 0; j < keylen; j++)
                key[j] = (unsigned char)rand_r(&seed);
            key[0] = (unsigned char)i; /* the first two bytes make keys unique */
            key[1] = (unsigned char)(i >> 8);
            int kind = i % 4, n = (int)(rand_r(&seed) % sizeof buf);
            uint64_t bits = ((uint64_t)rand_r(&seed) << 33) ^ ((uint64_t)rand_r(&seed) << 11) ^
                            (uint64_t)rand_r(&seed);
            double d;
            memcpy(&d, &bits, sizeof d);
            if (d != d) bits &= ~((uint64_t)0x7ff << 52); /* no NaN: SQLite turns it into NULL */
            if (i == 1) bits = (uint64_t)1 << 63;         /* -0.0 */
            if (i == 5) bits = 1;                         /* the smallest denormal */
            memcpy(&d, &bits, sizeof d);
            for (int j = 0; j < n; j++)
                buf[j] = (unsigned char)rand_r(&seed);
            if (kind == 2)
                for (int j = 0; j < n; j++)
                    buf[j] = (unsigned char)(buf[j] % 127); /* text with NULs */
            sqlite3_stmt *st = pass == 0 ? ins : get;
            sqlite3_bind_blob(st, 1, key, keylen, SQLITE_STATIC);
            if (pass == 0) {
                if (kind == 0) sqlite3_bind_blob(st, 2, buf, n, SQLITE_STATIC);
                if (kind == 1) sqlite3_bind_double(st, 2, d);
                if (kind == 2) sqlite3_bind_text(st, 2, (const char *)buf, n, SQLITE_STATIC);
                if (kind == 3) sqlite3_bind_int64(st, 2, (sqlite3_int64)bits);
                if (sqlite3_step(st) != SQLITE_DONE)
                    fail_msg("insert %d: %s", i, sqlite3_errmsg(db));
            } else {
                if (sqlite3_step(st) != SQLITE_ROW)
                    fail_msg("row %d not found: %s", i, sqlite3_errmsg(db));
                static const int types[] = {SQLITE_BLOB, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_INTEGER};
                assert_int_equal(sqlite3_column_type(st, 0), types[kind]);
                if (kind == 0 || kind == 2) {
                    const void *p = kind == 0 ? sqlite3_column_blob(st, 0)
                                              : (const void *)sqlite3_column_text(st, 0);
                    assert_int_equal(sqlite3_column_bytes(st, 0), n);
                    if (n && memcmp(p, buf, (size_t)n) != 0) fail_msg("row %d: bytes differ", i);
                } else if (kind == 1) {
                    double got = sqlite3_column_double(st, 0);
                    uint64_t gotbits;
                    memcpy(&gotbits, &got, sizeof got);
                    if (gotbits != bits)
                        fail_msg("row %d: double %016llx came back as %016llx", i,
                                 (unsigned long long)bits, (unsigned long long)gotbits);
                } else {
                    assert_int_equal((uint64_t)sqlite3_column_int64(st, 0), bits);
                }
                assert_int_equal(sqlite3_step(st), SQLITE_DONE);
            }
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
        }
        if (pass == 0) exec_ok(db, "COMMIT");
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(get);
    assert_int_equal(query_int(db, "SELECT count(*) FROM kv"), N);

    /* Bound integer and real keys take TEXT affinity, as literals do. */
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO kv VALUES (?, 'num')", -1, &ins, NULL),
                     SQLITE_OK);
    sqlite3_bind_int(ins, 1, 42);
    assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
    sqlite3_reset(ins);
    sqlite3_bind_double(ins, 1, 2.5);
    assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
    sqlite3_finalize(ins);
    assert_int_equal(
        query_int(db,
                  "SELECT count(*) FROM kv WHERE key IN ('42', '2.5') AND typeof(key) = 'text'"),
        2);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT count(*) FROM kv WHERE key = ?", -1, &get, NULL), SQLITE_OK);
    sqlite3_bind_int(get, 1, 42);
    assert_int_equal(sqlite3_step(get), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(get, 0), 1);
    sqlite3_reset(get);
    sqlite3_bind_double(get, 1, 2.5);
    assert_int_equal(sqlite3_step(get), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(get, 0), 1);
    sqlite3_finalize(get);
}

/* --- scale -------------------------------------------------------------- */

/* Returns the milliseconds taken by `lookups` point lookups of random keys
** among keys key0..key(n-1) of table tbl, asserting each finds its value. */
static double time_lookups(sqlite3 *db, const char *tbl, int n, int lookups)
{
    sqlite3_stmt *st;
    char *sql = sqlite3_mprintf("SELECT value FROM %s WHERE key = ?", tbl);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_free(sql);
    unsigned seed = 99;
    double t0 = now_ms();
    for (int i = 0; i < lookups; i++) {
        int k = (int)(rand_r(&seed) % (unsigned)n);
        char key[32];
        snprintf(key, sizeof key, "key%07d", k);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_ROW) fail_msg("%s not found: %s", key, sqlite3_errmsg(db));
        if (sqlite3_column_int64(st, 0) != (int64_t)k * 3) fail_msg("%s has the wrong value", key);
        sqlite3_reset(st);
    }
    double ms = now_ms() - t0;
    sqlite3_finalize(st);
    return ms;
}

/* Inserts keys key0..key(n-1) with values 3*i into tbl in one transaction. */
static void fill(sqlite3 *db, const char *tbl, int n)
{
    sqlite3_stmt *st;
    char *sql = sqlite3_mprintf("INSERT INTO %s VALUES (?, ?)", tbl);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_free(sql);
    exec_ok(db, "BEGIN");
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "key%07d", i);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, (int64_t)i * 3);
        if (sqlite3_step(st) != SQLITE_DONE)
            fail_msg("insert %d into %s: %s", i, tbl, sqlite3_errmsg(db));
        sqlite3_reset(st);
    }
    exec_ok(db, "COMMIT");
    sqlite3_finalize(st);
}

static void test_a_million_entries_in_a_256M_mapping_work_and_lookups_stay_fast(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    char small[80];
    snprintf(small, sizeof small, "%s_small", f->name);
    exec_ok(db, "CREATE VIRTUAL TABLE big USING mmap(name=%Q, size='256M')", f->name);
    exec_ok(db, "CREATE VIRTUAL TABLE small USING mmap(name=%Q, size='1M')", small);
    fill(db, "big", 1000000);
    fill(db, "small", 1000);
    assert_int_equal(query_int(db, "SELECT count(*) FROM big"), 1000000);
    assert_int_equal(query_int(db, "SELECT json_extract(mmap_info('big'), '$.entries')"), 1000000);
    assert_int_equal(query_int(db, "SELECT value FROM big WHERE key = 'key0000000'"), 0);
    assert_int_equal(query_int(db, "SELECT value FROM big WHERE key = 'key0999999'"), 2999997);
    assert_int_equal(query_int(db, "SELECT count(*) FROM big WHERE key = 'key1000000'"), 0);
    assert_int_equal(
        query_int(db,
                  "SELECT sum(value) FROM big WHERE key IN ('key0000001', 'key0500000', 'nokey')"),
        1500003);
    /* A full scan copies the million rows into one cursor arena of about
    ** 80 MB, the size that asks for huge pages (vtab.c): every row whole. */
    assert_int_equal(query_int(db, "SELECT sum(value) FROM big"), 1499998500000);
    assert_int_equal(query_int(db, "SELECT sum(length(key)) FROM big WHERE value %% 3 = 0"),
                     10000000);
    char *last = query_text(db, "SELECT max(key) || '=' || max(value) FROM big");
    assert_string_equal(last, "key0999999=2999997");
    sqlite3_free(last);

    /* A lookup among a million costs about what it costs among a thousand
    ** (best of three rounds; a scan would be a thousand times slower). */
    double best_big = 1e18, best_small = 1e18;
    for (int round = 0; round < 3; round++) {
        double b = time_lookups(db, "big", 1000000, 20000),
               s = time_lookups(db, "small", 1000, 20000);
        if (b < best_big) best_big = b;
        if (s < best_small) best_small = s;
    }
    print_message("20000 lookups: %.1f ms among 1e6, %.1f ms among 1e3\n", best_big, best_small);
    assert_true(best_big < 20 * best_small + 50);

    exec_ok(db, "DELETE FROM big WHERE key >= 'key0500000'");
    assert_int_equal(query_int(db, "SELECT count(*) FROM big"), 500000);
    char *check = query_text(db, "SELECT mmap_check('big')");
    assert_string_equal(check, "ok");
    sqlite3_free(check);
    mmkv_unlink(small);
}

/* Peak resident kilobytes of this process since the last reset_peak()
** (Linux: VmHWM), or -1 where unknown. */
static long peak_kib(void)
{
    long kib = -1;
#ifdef __linux__
    char line[256];
    FILE *fp = fopen("/proc/self/status", "r");
    while (fp && fgets(line, sizeof line, fp))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
    if (fp) fclose(fp);
#endif
    return kib;
}

/* Resets the peak to the current resident size (Linux 4.0 on).  Returns 0,
** or -1 where it cannot. */
static int reset_peak(void)
{
#ifdef __linux__
    FILE *fp = fopen("/proc/self/clear_refs", "w");
    if (!fp) return -1;
    int ok = fputs("5", fp) >= 0;
    return fclose(fp) == 0 && ok ? 0 : -1;
#else
    return -1;
#endif
}

/* The header's entry and byte counts are figures a scan sizes its buffer
** by; damaged, they must not make it take memory the mapping could never
** fill (before they were held to what the mapping can hold, a count of
** 10^8 in a 1 MB mapping made a count(*) fault in 6.4 GB), and the scan,
** which walks the heap, still returns every row. */
static void test_damaged_entry_counts_do_not_size_a_scan(void **state)
{
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/damaged.mmap", f->dir);
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(file=%Q, size='1M')", path);
    exec_ok(db, "INSERT INTO kv WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                "WHERE i < 100) SELECT 'k' || i, i FROM n");
    uint64_t entries = 100000000, kv_bytes = (uint64_t)1 << 40;
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 136, SEEK_SET), 0); /* entries (FORMAT.md) */
    assert_int_equal(fwrite(&entries, 8, 1, fp), 1);
    assert_int_equal(fseek(fp, 152, SEEK_SET), 0); /* kv_bytes */
    assert_int_equal(fwrite(&kv_bytes, 8, 1, fp), 1);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(query_int(db, "SELECT json_extract(mmap_info('kv'), '$.entries')"), entries);
    long before = reset_peak() == 0 ? peak_kib() : -1;
    assert_int_equal(query_int(db, "SELECT count(*) FROM kv"), 100);
    assert_int_equal(query_int(db, "SELECT sum(value) FROM kv"), 5050);
    if (before >= 0) { /* Linux: at most 64 MB more at the peak */
        long grown = peak_kib() - before;
        print_message("peak resident memory grew by %ld KiB during the scans\n", grown);
        assert_true(grown < 64 * 1024);
    }
}

/* --- scans that write ------------------------------------------------------ */

static void test_updating_every_row_during_a_scan_visits_each_row_once(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, size='4M')", f->name);
    exec_ok(db, "INSERT INTO kv WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                "WHERE i < 1000)"
                " SELECT 'k' || i, i FROM n");
    sqlite3_stmt *scan, *upd;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT key, value FROM kv", -1, &scan, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "UPDATE kv SET value = ? WHERE key = ?", -1, &upd, NULL), SQLITE_OK);
    int seen = 0;
    int64_t sum = 0;
    while (sqlite3_step(scan) == SQLITE_ROW) {
        seen++;
        int64_t v = sqlite3_column_int64(scan, 1);
        sum += v;
        sqlite3_bind_int64(upd, 1, v + 100000);
        sqlite3_bind_text(upd, 2, (const char *)sqlite3_column_text(scan, 0), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(upd) != SQLITE_DONE) fail_msg("update: %s", sqlite3_errmsg(db));
        sqlite3_reset(upd);
    }
    sqlite3_finalize(scan);
    sqlite3_finalize(upd);
    assert_int_equal(seen, 1000);
    assert_int_equal(sum, 500500);
    assert_int_equal(query_int(db, "SELECT sum(value) FROM kv"), 500500 + 1000 * 100000);

    /* Deleting each row as it is visited empties the table. */
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT key FROM kv", -1, &scan, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "DELETE FROM kv WHERE key = ?", -1, &upd, NULL),
                     SQLITE_OK);
    seen = 0;
    while (sqlite3_step(scan) == SQLITE_ROW) {
        seen++;
        sqlite3_bind_text(upd, 1, (const char *)sqlite3_column_text(scan, 0), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(upd) != SQLITE_DONE) fail_msg("delete: %s", sqlite3_errmsg(db));
        sqlite3_reset(upd);
    }
    sqlite3_finalize(scan);
    sqlite3_finalize(upd);
    assert_int_equal(seen, 1000);
    assert_int_equal(query_int(db, "SELECT count(*) FROM kv"), 0);
}

/* --- values handed to SQLite ------------------------------------------- */

/* Steps st to its first row and returns the row's column 0 as text, copied
** with sqlite3_mprintf (caller frees). */
static char *first_text(sqlite3_stmt *st)
{
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    return t ? sqlite3_mprintf("%s", t) : NULL;
}

/* Runs the same query on kv and on plain (an ordinary table with the same
** rows; each of at most two %s in the query is the table) and asserts equal
** first results. */
static void assert_same_as_plain(sqlite3 *db, const char *query)
{
    char *a = query_text(db, query, "kv", "kv"), *b = query_text(db, query, "plain", "plain");
    if (!a || !b || strcmp(a, b) != 0)
        fail_msg("%s: mmap gave %.60s, ordinary table %.60s", query, a ? a : "NULL",
                 b ? b : "NULL");
    sqlite3_free(a);
    sqlite3_free(b);
}

static void test_values_reach_sqlite_without_a_copy_and_live_while_it_holds_them(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, size='8M')", f->name);
    exec_ok(db, "CREATE TABLE plain(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
    for (int t = 0; t < 2; t++) {
        const char *tbl = t ? "plain" : "kv";
        exec_ok(db,
                "INSERT INTO %s WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                "WHERE i < 300) SELECT printf('k%%03d', i), CASE i %% 4 WHEN 0 THEN i WHEN 1 "
                "THEN printf('v%%d', 300 - i) WHEN 2 THEN CAST(printf('b%%d', i) AS BLOB) ELSE i * 0.5 END "
                "FROM n",
                tbl);
        exec_ok(db, "INSERT INTO %s VALUES ('big', zeroblob(300000) || 'end'),"
                    " ('bigtext', printf('%%.*c', 300000, 'x')), ('nul', 'a' || char(0) || 'b'),"
                    " ('empty', ''), ('emptyblob', x'')",
                tbl);
    }

    /* A 300 KB lookup allocates nothing through SQLite: the value is not
    ** copied, neither by the step nor by sqlite3_column_text. */
    sqlite3_stmt *get;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM kv WHERE key = ?", -1, &get, NULL),
                     SQLITE_OK);
    assert_true(sqlite3_memory_used() > 0); /* SQLite counts its memory */
    const char *keys[] = {"big", "bigtext"};
    for (int i = 0; i < 2; i++) {
        sqlite3_bind_text(get, 1, keys[i], -1, SQLITE_STATIC);
        sqlite3_int64 before = sqlite3_memory_used();
        assert_int_equal(sqlite3_step(get), SQLITE_ROW);
        const unsigned char *p = i ? sqlite3_column_text(get, 0) : sqlite3_column_blob(get, 0);
        sqlite3_int64 grew = sqlite3_memory_used() - before;
        assert_int_equal(sqlite3_column_bytes(get, 0), 300003 - 3 * i);
        assert_non_null(p);
        assert_int_equal(p[i ? 299999 : 300000], i ? 'x' : 'e');
        if (grew > 100000) fail_msg("lookup of %s grew SQLite's memory by %lld", keys[i], grew);
        assert_int_equal(sqlite3_step(get), SQLITE_DONE);
        sqlite3_reset(get);
    }

    /* Text with a NUL inside keeps its length. */
    sqlite3_bind_text(get, 1, "nul", -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(get), SQLITE_ROW);
    assert_int_equal(sqlite3_column_bytes(get, 0), 3);
    assert_memory_equal(sqlite3_column_blob(get, 0), "a\0b", 3);
    assert_int_equal(sqlite3_column_type(get, 0), SQLITE_TEXT);
    sqlite3_reset(get);

    /* SQLite keeps values while the same cursor is filled again: aggregates
    ** over IN lists, correlated lookups, self-joins, sorting. */
    assert_same_as_plain(db, "SELECT group_concat(quote(value), '|') FROM %s WHERE key IN "
                             "('k001','k002','k003','k004','k005','k006','k007','k099','big')");
    assert_same_as_plain(db, "SELECT max(value) || min(key) || max(key) FROM %s WHERE key IN "
                             "('k010','k011','k012','k013','k014','k015','nul','empty')");
    assert_same_as_plain(db, "SELECT group_concat(quote(x), ',') FROM (SELECT (SELECT value "
                             "FROM %s WHERE key = a.key) AS x FROM %s a ORDER BY a.key)");
    assert_same_as_plain(db, "SELECT group_concat(a.key || quote(b.value), ',') FROM %s a "
                             "JOIN %s b ON b.key = a.key WHERE a.key LIKE 'k1%%' ORDER BY 1");
    assert_same_as_plain(db, "SELECT group_concat(quote(value), ',') FROM (SELECT value FROM "
                             "%s WHERE key IN (SELECT printf('k%%03d', i) FROM (SELECT 1 AS i "
                             "UNION SELECT 7 UNION SELECT 250)) ORDER BY value DESC)");

    /* Row by row, each row's text stays right while the application reads
    ** it, in a scan and in an IN list. */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT key, value FROM kv WHERE key IN "
                                        "('k001','k005','k009','k013') ORDER BY key",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        char want[16];
        snprintf(want, sizeof want, "v%d", 300 - atoi(k + 1));
        assert_string_equal(v, want);
        assert_string_equal(k, (const char *)sqlite3_column_text(st, 0));
        rows++;
    }
    assert_int_equal(rows, 4);
    sqlite3_finalize(st);

    /* A value outlives its connection's close until the statement ends. */
    sqlite3_bind_text(get, 1, "k021", -1, SQLITE_STATIC);
    char *v = first_text(get);
    const unsigned char *held = sqlite3_column_text(get, 0);
    for (int i = 0; i < f->ndb; i++)
        if (f->db[i] == db) f->db[i] = f->db[--f->ndb];
    assert_int_equal(sqlite3_close_v2(db), SQLITE_OK);
    assert_string_equal((const char *)held, v);
    assert_string_equal(v, "v279");
    sqlite3_free(v);
    sqlite3_finalize(get); /* the connection closes here */
}

/* --- lifetime and size -------------------------------------------------- */

static void test_a_file_mapping_persists_after_all_connections_close(void **state)
{
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/data.mmap", f->dir);
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(file=%Q, size='128K')", path);
    exec_ok(
        db,
        "INSERT INTO kv VALUES ('a', 1), ('b', 2.5), ('c', x'00ff'), ('d', NULL), ('e', 'text')");
    char *before = dump(db, "kv");
    close_db(f, db);
    assert_int_equal(access(path, F_OK), 0);

    db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(file=%Q, mode='open')", path);
    char *after = dump(db, "kv");
    assert_string_equal(after, before);
    assert_int_equal(query_int(db, "SELECT json_extract(mmap_info('kv'), '$.capacity')"), 131072);
    char *where = query_text(db, "SELECT json_extract(mmap_info('kv'), '$.file')");
    assert_string_equal(where, path);
    exec_ok(db, "DELETE FROM kv WHERE key = 'a'");
    close_db(f, db);
    sqlite3_free(where);
    sqlite3_free(after);
    sqlite3_free(before);

    db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(file=%Q, mode='readonly')", path);
    assert_int_equal(query_int(db, "SELECT count(*) FROM kv"), 4);
    assert_int_equal(query_int(db, "SELECT count(*) FROM kv WHERE key = 'a'"), 0);
}

static void test_a_named_mapping_persists_after_all_connections_close(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, size='64K')", f->name);
    exec_ok(db, "INSERT INTO kv VALUES ('kept', 'after close')");
    close_db(f, db);
    db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, mode='open')", f->name);
    char *v = query_text(db, "SELECT value FROM kv WHERE key = 'kept'");
    assert_string_equal(v, "after close");
    sqlite3_free(v);
}

static void test_mode_open_takes_the_size_from_the_mapping(void **state)
{
    fixture *f = *state;
    sqlite3 *a = open_db(f), *b = open_db(f);
    exec_ok(a, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, size='256K')", f->name);
    assert_int_equal(query_int(a, "SELECT json_extract(mmap_info('kv'), '$.capacity')"), 262144);
    exec_ok(b, "CREATE VIRTUAL TABLE o USING mmap(name=%Q, mode='open')", f->name);
    assert_int_equal(query_int(b, "SELECT json_extract(mmap_info('o'), '$.capacity')"), 262144);
    exec_ok(b, "CREATE VIRTUAL TABLE o2 USING mmap(name=%Q, mode='open', size='1M')", f->name);
    assert_int_equal(query_int(b, "SELECT json_extract(mmap_info('o2'), '$.capacity')"), 262144);
    exec_ok(b, "CREATE VIRTUAL TABLE c USING mmap(name=%Q, size='64K')", f->name);
    assert_int_equal(query_int(b, "SELECT json_extract(mmap_info('c'), '$.capacity')"), 262144);
    /* The whole capacity is usable through a table opened without a size. */
    exec_ok(b, "INSERT INTO o VALUES ('big', zeroblob(200000))");
    assert_int_equal(query_int(a, "SELECT length(value) FROM kv WHERE key = 'big'"), 200000);
}

/* Opens the database file path in a new fixture connection with the
** extension loaded. */
static sqlite3 *open_file_db(fixture *f, const char *path)
{
    sqlite3 *db = open_db(f);
    char *sql = sqlite3_mprintf("ATTACH %Q AS disk", path);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(sql);
    return db;
}

static void test_tables_in_a_database_file_reconnect_when_it_is_reopened(void **state)
{
    fixture *f = *state;
    char path[128], file[128], other[96];
    snprintf(path, sizeof path, "%s/schema.db", f->dir);
    snprintf(file, sizeof file, "%s/data.mmap", f->dir);
    snprintf(other, sizeof other, "%s_b", f->name);
    sqlite3 *db = open_file_db(f, path);
    exec_ok(db, "CREATE VIRTUAL TABLE disk.c USING mmap(name=%Q, size='64K')", f->name);
    exec_ok(db, "CREATE VIRTUAL TABLE disk.n USING mmap(name=%Q, size='64K', mode='new')", other);
    exec_ok(db, "CREATE VIRTUAL TABLE disk.fl USING mmap(file=%Q, size='64K', mode='new')", file);
    exec_ok(db, "INSERT INTO c VALUES ('c', 1); INSERT INTO n VALUES ('n', 2); INSERT INTO fl "
                "VALUES ('f', 3)");
    close_db(f, db);

    /* xConnect, not xCreate: a table made with mode='new' opens its mapping. */
    db = open_file_db(f, path);
    if (exec_rc(db, "SELECT 1 FROM c") != SQLITE_OK)
        fail_msg("reconnect c: %s", sqlite3_errmsg(db));
    if (exec_rc(db, "SELECT 1 FROM n") != SQLITE_OK)
        fail_msg("reconnect mode=new table: %s", sqlite3_errmsg(db));
    if (exec_rc(db, "SELECT 1 FROM fl") != SQLITE_OK)
        fail_msg("reconnect mode=new file table: %s", sqlite3_errmsg(db));
    assert_int_equal(query_int(db, "SELECT value FROM c WHERE key = 'c'"), 1);
    assert_int_equal(query_int(db, "SELECT value FROM n WHERE key = 'n'"), 2);
    assert_int_equal(query_int(db, "SELECT value FROM fl WHERE key = 'f'"), 3);
    exec_ok(db, "INSERT INTO n VALUES ('n2', 4)");
    assert_int_equal(query_int(db, "SELECT count(*) FROM n"), 2);
    close_db(f, db);
    mmkv_unlink(other);
}

static void test_a_mode_new_table_survives_a_failed_create_in_the_same_connection(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE w USING mmap(name=%Q, size='64K', mode='new')", f->name);
    exec_ok(db, "INSERT INTO w VALUES ('a', 1)");
    /* A failing CREATE VIRTUAL TABLE makes SQLite reload the schema and
    ** reconnect w. */
    assert_int_equal(exec_rc(db, "CREATE VIRTUAL TABLE e USING mmap(name=%Q, mode='new')", f->name),
                     SQLITE_ERROR);
    assert_errmsg_has(db, "already exists");
    if (exec_rc(db, "INSERT INTO w VALUES ('b', 2)") != SQLITE_OK)
        fail_msg("w after reload: %s", sqlite3_errmsg(db));
    assert_int_equal(query_int(db, "SELECT count(*) FROM w"), 2);
}

/* A thread that keeps rewriting the keys p and q of a mapping: committed
** values are blobs of 100 + 7*c bytes all equal to c (c < 255); values
** written and then rolled back are all 0xff. */
typedef struct churner {
    const char *name;
    volatile int stop;
    int rc;
    int commits;
} churner;

/* Thread body of a churner: runs until stop is set. */
static void *churn_values(void *arg)
{
    churner *c = arg;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    unsigned char buf[100 + 7 * 255];
    c->rc = sqlite3_open(":memory:", &db);
    if (c->rc == SQLITE_OK) sqlite3_enable_load_extension(db, 1);
    if (c->rc == SQLITE_OK) c->rc = sqlite3_load_extension(db, MMAP_EXT_PATH, NULL, NULL);
    char *sql = sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING mmap(name=%Q)", c->name);
    if (c->rc == SQLITE_OK) c->rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_free(sql);
    if (c->rc == SQLITE_OK)
        c->rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO kv VALUES (?, ?)", -1, &st, NULL);
    for (int i = 0; c->rc == SQLITE_OK && !c->stop; i++) {
        int rollback = i % 3 == 2;
        int v = rollback ? 255 : i % 255;
        int n = 100 + 7 * v;
        memset(buf, v, (size_t)n);
        c->rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (int k = 0; k < 2 && c->rc == SQLITE_OK; k++) {
            sqlite3_bind_text(st, 1, k ? "q" : "p", -1, SQLITE_STATIC);
            sqlite3_bind_blob(st, 2, buf, n, SQLITE_STATIC);
            c->rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
            sqlite3_reset(st);
        }
        /* some churn of other keys, so that space is freed and reused */
        if (c->rc == SQLITE_OK)
            c->rc =
                sqlite3_exec(db,
                             i % 2 ? "INSERT OR REPLACE INTO kv VALUES ('pad', randomblob(3000))"
                                   : "DELETE FROM kv WHERE key = 'pad'",
                             NULL, NULL, NULL);
        if (c->rc == SQLITE_OK)
            c->rc = sqlite3_exec(db, rollback ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
        if (c->rc == SQLITE_OK && !rollback) c->commits++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return NULL;
}

/* Returns NULL if the blob [p, p+n) is a value a churner commits, else
** what is wrong with it. */
static const char *churned_value_problem(const unsigned char *p, int n)
{
    int v = n ? p[0] : -1;
    if (n < 100 || (n - 100) % 7 != 0 || (n - 100) / 7 != v) return "a torn (wrong length)";
    for (int j = 0; j < n; j++)
        if (p[j] != v) return "a torn (mixed bytes)";
    return v == 255 ? "an uncommitted" : NULL;
}

/* SQL function write_other(key): puts key = 1 through a handle of its own
** (sqlite3_user_data) that never waits, and returns the result code: 0,
** or MMKV_BUSY where the statement that calls it holds the key's part. */
static void write_other(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    mmkv *h = sqlite3_user_data(ctx);
    mmkv_key k = {MMKV_TEXT, sqlite3_value_text(argv[0]), (uint32_t)sqlite3_value_bytes(argv[0])};
    mmkv_value v = {MMKV_INT, 1, 0, NULL, 0};
    sqlite3_result_int(ctx, mmkv_put(h, &k, &v, MMKV_PUT_REPLACE));
}

/* An UPDATE or DELETE of one key outside BEGIN, on a mapping in 4 parts,
** holds only its key's part while it runs: a write from elsewhere made
** during the statement finds the other parts free.  UPDATE ... WHERE key
** IN (...) takes every part. */
static void test_a_statement_on_one_key_of_a_split_mapping_holds_only_its_part(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE m USING mmap(name=%Q, size='1M', parts=4)", f->name);
    exec_ok(db, "INSERT INTO m VALUES ('k', 0), ('j', 0)");
    mmkv_options o = mmkv_default_options();
    o.name = f->name;
    o.mode = MMKV_MODE_OPEN;
    o.timeout_ms = 0;
    mmkv *h = NULL;
    assert_int_equal(mmkv_open(&o, &h, NULL), MMKV_OK);
    assert_int_equal(sqlite3_create_function(db, "write_other", 1, SQLITE_UTF8, h, write_other,
                                             NULL, NULL),
                     SQLITE_OK);
    int ok = 0, busy = 0, in_busy = 0;
    for (int i = 0; i < 100; i++) {
        exec_ok(db, "UPDATE m SET value = write_other('x%d') WHERE key = 'k'", i);
        int64_t rc = query_int(db, "SELECT value FROM m WHERE key = 'k'");
        assert_true(rc == MMKV_OK || rc == MMKV_BUSY);
        ok += rc == MMKV_OK;
        busy += rc == MMKV_BUSY;
        exec_ok(db, "UPDATE m SET value = write_other('y%d') WHERE key IN ('k', 'j')", i);
        in_busy += query_int(db, "SELECT count(*) FROM m WHERE key IN ('k', 'j') AND value = %d",
                             MMKV_BUSY) == 2;
    }
    /* 100 keys in 4 parts: about 25 share k's part (fewer than 2, or more
    ** than 50, about once in 50 million mappings' seeds). */
    assert_true(busy >= 2 && ok >= 50);
    assert_int_equal(ok + busy, 100);
    assert_int_equal(in_busy, 100);
    assert_int_equal(query_int(db, "SELECT count(*) FROM m WHERE key GLOB 'x*'"), ok);
    /* A DELETE by key: the same. */
    ok = 0;
    for (int i = 0; i < 100; i++) {
        exec_ok(db, "INSERT INTO m VALUES ('d', 0)");
        exec_ok(db, "DELETE FROM m WHERE key = 'd' AND write_other('z%d') = 0", i);
        ok += query_int(db, "SELECT count(*) FROM m WHERE key = 'd'") == 0;
        exec_ok(db, "DELETE FROM m WHERE key = 'd'");
    }
    assert_true(ok >= 50 && ok <= 98);
    assert_int_equal(query_int(db, "SELECT count(*) FROM m WHERE key GLOB 'z*'"), ok);
    assert_int_equal(query_int(db, "SELECT mmap_check('m') = 'ok'"), 1);
    mmkv_close(h);
}

static void test_readers_never_see_torn_or_uncommitted_values_while_a_writer_works(void **state)
{
    fixture *f = *state;
    sqlite3 *db = open_db(f);
    exec_ok(db, "CREATE VIRTUAL TABLE kv USING mmap(name=%Q, size='1M')", f->name);
    exec_ok(db, "INSERT INTO kv VALUES ('p', zeroblob(100)), ('q', zeroblob(100))");
    churner c = {.name = f->name};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, churn_values, &c), 0);
    sqlite3_stmt *get, *scan;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM kv WHERE key = ?", -1, &get, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT key, value FROM kv", -1, &scan, NULL),
                     SQLITE_OK);
    double t0 = now_ms();
    long reads = 0, scans = 0;
    const char *problem = NULL, *how = "";
    int rc = SQLITE_OK;
    while (now_ms() - t0 < 1500 && !problem && rc == SQLITE_OK) {
        for (int k = 0; k < 2 && !problem && rc == SQLITE_OK; k++) {
            sqlite3_bind_text(get, 1, k ? "q" : "p", -1, SQLITE_STATIC);
            rc = sqlite3_step(get);
            if (rc == SQLITE_ROW) {
                rc = SQLITE_OK;
                problem = churned_value_problem(sqlite3_column_blob(get, 0),
                                                sqlite3_column_bytes(get, 0));
                how = "a lookup";
                reads++;
            }
            sqlite3_reset(get);
        }
        if (reads % 16 == 0) {
            int seen = 0;
            while (!problem && (rc = sqlite3_step(scan)) == SQLITE_ROW) {
                const char *key = (const char *)sqlite3_column_text(scan, 0);
                if (strcmp(key, "p") != 0 && strcmp(key, "q") != 0) continue;
                seen++;
                problem = churned_value_problem(sqlite3_column_blob(scan, 1),
                                                sqlite3_column_bytes(scan, 1));
                how = "a scan";
            }
            if (rc == SQLITE_DONE) rc = SQLITE_OK;
            if (!problem && rc == SQLITE_OK && seen != 2) problem = "a scan missing p or q:";
            sqlite3_reset(scan);
            scans++;
        }
    }
    c.stop = 1;
    pthread_join(th, NULL);
    if (rc != SQLITE_OK) fail_msg("read failed: %d %s", rc, sqlite3_errmsg(db));
    if (problem) fail_msg("%s saw %s value after %ld lookups", how, problem, reads);
    sqlite3_finalize(get);
    sqlite3_finalize(scan);
    assert_int_equal(c.rc, SQLITE_OK);
    print_message("%ld lookups and %ld scans during %d commits\n", reads, scans, c.commits);
    assert_true(c.commits > 10);
    assert_true(reads > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_duplicate_key_is_constraint_primarykey_like_an_ordinary_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_key_is_constraint_notnull_like_an_ordinary_table,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_count_like_an_ordinary_table, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_full_mapping_fails_with_sqlite_full_and_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_churn_over_ten_times_the_capacity_never_fills_a_mapping_whose_data_fits, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_write_through_readonly_is_sqlite_readonly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_key_over_65535_bytes_is_sqlite_toobig, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_text_is_utf8_in_the_mapping_for_utf16_and_utf8_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_connections_see_each_others_committed_changes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_busy_when_another_connection_of_this_thread_holds_the_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_busy_after_the_timeout_when_another_thread_holds_the_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_writer_waits_for_the_lock_and_gets_it_when_the_holder_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_transactions_taking_two_tables_in_opposite_orders_end_in_one_busy, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_readers_never_see_torn_or_uncommitted_values_while_a_writer_works, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_random_blobs_texts_integers_and_doubles_round_trip_bit_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_million_entries_in_a_256M_mapping_work_and_lookups_stay_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_entry_counts_do_not_size_a_scan, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_updating_every_row_during_a_scan_visits_each_row_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_values_reach_sqlite_without_a_copy_and_live_while_it_holds_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_mapping_persists_after_all_connections_close,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_named_mapping_persists_after_all_connections_close,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_open_takes_the_size_from_the_mapping, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_tables_in_a_database_file_reconnect_when_it_is_reopened, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_mode_new_table_survives_a_failed_create_in_the_same_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_statement_on_one_key_of_a_split_mapping_holds_only_its_part, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
