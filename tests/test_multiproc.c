/*
** test_multiproc.c -- several processes share one `mmap` table through SQL.
**
** The parent creates a named mapping with a few shared counters, then forks
** N workers (default 4).  Each worker opens its own SQLite connection, loads
** the extension, attaches the same mapping as temp.kv and runs OPS random
** operations (default 10,000) on overlapping keys through prepared
** statements: INSERT OR REPLACE, DELETE, SELECT by key, increments of the
** shared counters (UPDATE kv SET value = value + 1 WHERE key = 'cN'), and
** now and then a BEGIN ... COMMIT or BEGIN ... ROLLBACK over several
** statements.  Workers count the increments that took effect and committed
** and report them through a pipe.
**
** Checked at the end:
**   - every counter equals the sum of the increments the workers report
**     (no lost update, no rolled-back increment left behind);
**   - after a barrier, every worker and the parent compute a digest of the
**     whole table: all are equal (every process sees the same table);
**   - every value a worker read was well formed (no torn reads), and inside
**     a transaction a worker reads back exactly what it wrote;
**   - mmap_check says 'ok'.
**
** Usage: test_multiproc [PROCS [OPS [SEED]]]
** Output: one "ok - ..." or "not ok - ..." line per check, then
** "N passed, M failed"; the exit code is non-zero on failure.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc_util.h"

#define NCOUNTERS 4 /* shared counters c0..c3 */
#define NKEYS 200   /* overlapping keys k0..k199 */
#define MAXPROCS 64

/* Returns the first column of the first row of sql as a new string
** (sqlite3_malloc'd), or NULL on error or no row. */
static char *query_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "prepare %s: %s\n", sql, sqlite3_errmsg(db));
        return NULL;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        out = sqlite3_mprintf("%s", t ? (const char *)t : "(null)");
    } else {
        fprintf(stderr, "step %s: %d %s\n", sql, rc, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return out;
}

/* FNV-1a over n bytes. */
static uint64_t fnv64(const void *p, size_t n)
{
    const unsigned char *c = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

/* A digest of the whole table: count and hash of every key, type and value
** in key order.  Returns 0 on success. */
static int table_digest(sqlite3 *db, uint64_t *hash, int64_t *rows)
{
    const char *sql = "SELECT count(*), group_concat(key || '=' || typeof(value) || ':' || "
                      "quote(value), ';') FROM (SELECT key, value FROM kv ORDER BY key)";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        fprintf(stderr, "digest: %d %s\n", rc, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    *rows = sqlite3_column_int64(st, 0);
    const void *t = sqlite3_column_text(st, 1);
    int n = sqlite3_column_bytes(st, 1);
    *hash = fnv64(t ? t : "", (size_t)n);
    sqlite3_finalize(st);
    return 0;
}

/* ---- the worker ---- */

/* What a worker reports after its operations (phase 1). */
typedef struct {
    int64_t incs[NCOUNTERS]; /* committed increments per counter */
    int64_t ops, commits, rollbacks, busy_retries, reads_checked;
    int64_t failures; /* checks that failed inside the worker */
} worker_report;

/* What a worker reports after the barrier (phase 2). */
typedef struct {
    uint64_t hash;
    int64_t rows;
    int ok;
} worker_digest;

typedef struct {
    int id;
    sqlite3 *db;
    uint64_t rng;
    sqlite3_stmt *put, *del, *get, *inc, *getc;
    worker_report rep;
    char *buf;               /* scratch for values; holds the last TEXT/BLOB written */
    int last_type, last_len; /* the value last bound by bind_random_value */
    int64_t last_i;
    double last_r;
} worker;

/* Notes a failed check inside a worker. */
static void wfail(worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "worker %d: ", w->id);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    w->rep.failures++;
}

/* Steps st to completion, retrying on SQLITE_BUSY.  For a SELECT that
** returns one row the row is left current and SQLITE_ROW returned.  Any
** other error is a failure: returns the code. */
static int step_retry(worker *w, sqlite3_stmt *st)
{
    for (int tries = 0;; tries++) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE || rc == SQLITE_ROW) return rc;
        if ((rc & 0xff) == SQLITE_BUSY && tries < 100) {
            w->rep.busy_retries++;
            sqlite3_reset(st);
            continue;
        }
        wfail(w, "%s -> %d %s", sqlite3_sql(st), rc, sqlite3_errmsg(w->db));
        sqlite3_reset(st);
        return rc;
    }
}

/* Runs a statement with no bound parameters, retrying on SQLITE_BUSY. */
static int exec_retry(worker *w, const char *sql)
{
    for (int tries = 0;; tries++) {
        int rc = sqlite3_exec(w->db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK) return rc;
        if ((rc & 0xff) == SQLITE_BUSY && tries < 100) {
            w->rep.busy_retries++;
            continue;
        }
        wfail(w, "%s -> %d %s", sql, rc, sqlite3_errmsg(w->db));
        return rc;
    }
}

/* Binds a self-describing random value to parameter idx of st and notes it
** in w->last_*.  Text is
** "w<id>:<len>:" padded with 'x' to exactly len bytes; a blob's byte i is
** b0 + i. */
static void bind_random_value(worker *w, sqlite3_stmt *st, int idx)
{
    switch (rnd(&w->rng, 5)) {
    case 0:
        w->last_type = SQLITE_INTEGER;
        w->last_i = (int64_t)rnd_next(&w->rng);
        sqlite3_bind_int64(st, idx, w->last_i);
        break;
    case 1:
        w->last_type = SQLITE_FLOAT;
        w->last_r = (double)(int64_t)rnd_next(&w->rng) / 7.0;
        sqlite3_bind_double(st, idx, w->last_r);
        break;
    case 2: {
        int len = 20 + (int)rnd(&w->rng, 1500);
        int h = snprintf(w->buf, 64, "w%d:%d:", w->id, len);
        memset(w->buf + h, 'x', (size_t)(len - h));
        w->last_type = SQLITE_TEXT;
        w->last_len = len;
        sqlite3_bind_text(st, idx, w->buf, len, SQLITE_TRANSIENT);
        break;
    }
    case 3: {
        int len = 1 + (int)rnd(&w->rng, 3000);
        unsigned char b0 = (unsigned char)rnd(&w->rng, 256);
        for (int i = 0; i < len; i++)
            w->buf[i] = (char)(unsigned char)(b0 + i);
        w->last_type = SQLITE_BLOB;
        w->last_len = len;
        sqlite3_bind_blob(st, idx, w->buf, len, SQLITE_TRANSIENT);
        break;
    }
    default:
        w->last_type = SQLITE_NULL;
        sqlite3_bind_null(st, idx);
    }
}

/* Returns 1 if column col of st holds a value some worker could have
** written (see bind_random_value), else 0. */
static int value_well_formed(sqlite3_stmt *st, int col)
{
    int t = sqlite3_column_type(st, col);
    if (t == SQLITE_INTEGER || t == SQLITE_FLOAT || t == SQLITE_NULL) return 1;
    if (t == SQLITE_TEXT) {
        const char *s = (const char *)sqlite3_column_text(st, col);
        int n = sqlite3_column_bytes(st, col), id, len, h = 0;
        if (!s || sscanf(s, "w%d:%d:%n", &id, &len, &h) != 2 || h == 0 || len != n) return 0;
        for (int i = h; i < n; i++)
            if (s[i] != 'x') return 0;
        return 1;
    }
    const unsigned char *b = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (!b || n < 1) return 0;
    for (int i = 0; i < n; i++)
        if (b[i] != (unsigned char)(b[0] + i)) return 0;
    return 1;
}

/* Copies column col of st as an SQL literal (sqlite3_malloc'd). */
static char *column_quoted(sqlite3 *db, sqlite3_stmt *st, int col)
{
    sqlite3_stmt *q = NULL;
    char *out = NULL;
    sqlite3_prepare_v2(db, "SELECT quote(?)", -1, &q, NULL);
    sqlite3_bind_value(q, 1, sqlite3_column_value(st, col));
    if (sqlite3_step(q) == SQLITE_ROW)
        out = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return out;
}

/* Picks a key k0..k(NKEYS-1) into buf. */
static const char *random_key(worker *w, char *buf)
{
    snprintf(buf, 16, "k%u", rnd(&w->rng, NKEYS));
    return buf;
}

/* Returns 1 if column col of st holds exactly the value last bound by
** bind_random_value (same storage class, same bits, same bytes). */
static int value_is_last_written(worker *w, sqlite3_stmt *st, int col)
{
    int t = sqlite3_column_type(st, col);
    if (t != w->last_type) return 0;
    switch (t) {
    case SQLITE_INTEGER:
        return sqlite3_column_int64(st, col) == w->last_i;
    case SQLITE_FLOAT: {
        double r = sqlite3_column_double(st, col);
        return memcmp(&r, &w->last_r, sizeof r) == 0;
    }
    case SQLITE_NULL:
        return 1;
    default: {
        const void *p = t == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, col)
                                         : sqlite3_column_blob(st, col);
        int n = sqlite3_column_bytes(st, col);
        return n == w->last_len && p && memcmp(p, w->buf, (size_t)n) == 0;
    }
    }
}

/* One INSERT OR REPLACE of a random key.  If verify, reads the key back and
** requires exactly the value written (the caller holds the lock). */
static void op_put(worker *w, int verify)
{
    char key[16];
    random_key(w, key);
    sqlite3_bind_text(w->put, 1, key, -1, SQLITE_TRANSIENT);
    bind_random_value(w, w->put, 2);
    int rc = step_retry(w, w->put);
    int changed = sqlite3_changes(w->db);
    sqlite3_reset(w->put);
    if (rc != SQLITE_DONE) return;
    if (changed != 1) {
        wfail(w, "INSERT OR REPLACE of %s changed %d rows", key, changed);
        return;
    }
    if (!verify) return;
    sqlite3_bind_text(w->get, 1, key, -1, SQLITE_TRANSIENT);
    rc = step_retry(w, w->get);
    if (rc != SQLITE_ROW) {
        wfail(w, "in a transaction, key %s just written is missing", key);
    } else {
        w->rep.reads_checked++;
        if (!value_is_last_written(w, w->get, 0)) {
            char *lit = column_quoted(w->db, w->get, 0);
            wfail(w, "in a transaction, %s reads back %.100s, not what was written (type %d)", key,
                  lit ? lit : "?", w->last_type);
            sqlite3_free(lit);
        }
    }
    sqlite3_reset(w->get);
}

/* One DELETE of a random key. */
static void op_del(worker *w)
{
    char key[16];
    sqlite3_bind_text(w->del, 1, random_key(w, key), -1, SQLITE_TRANSIENT);
    step_retry(w, w->del);
    if (sqlite3_changes(w->db) > 1)
        wfail(w, "DELETE of one key changed %d rows", sqlite3_changes(w->db));
    sqlite3_reset(w->del);
}

/* One SELECT by key; the value, if any, must be well formed. */
static void op_get(worker *w)
{
    char key[16];
    sqlite3_bind_text(w->get, 1, random_key(w, key), -1, SQLITE_TRANSIENT);
    int rc = step_retry(w, w->get);
    if (rc == SQLITE_ROW) {
        w->rep.reads_checked++;
        if (!value_well_formed(w->get, 0)) {
            char *lit = column_quoted(w->db, w->get, 0);
            wfail(w, "torn or foreign value under %s: %.200s", key, lit ? lit : "?");
            sqlite3_free(lit);
        }
        if (sqlite3_step(w->get) != SQLITE_DONE)
            wfail(w, "SELECT by key %s returned two rows", key);
    }
    sqlite3_reset(w->get);
}

/* Reads counter c; returns its value or -1 (and a failure). */
static int64_t read_counter(worker *w, int c)
{
    int64_t v = -1;
    sqlite3_bind_int(w->getc, 1, c);
    if (step_retry(w, w->getc) == SQLITE_ROW && sqlite3_column_type(w->getc, 0) == SQLITE_INTEGER)
        v = sqlite3_column_int64(w->getc, 0);
    else
        wfail(w, "counter c%d is missing or not an integer", c);
    sqlite3_reset(w->getc);
    return v;
}

/* One increment of a random counter.  Returns the counter incremented
** (its increment took effect: sqlite3_changes() == 1), or -1. */
static int op_inc(worker *w)
{
    int c = (int)rnd(&w->rng, NCOUNTERS);
    sqlite3_bind_int(w->inc, 1, c);
    int rc = step_retry(w, w->inc);
    int changed = sqlite3_changes(w->db);
    sqlite3_reset(w->inc);
    if (rc != SQLITE_DONE) return -1;
    if (changed != 1) {
        wfail(w, "increment of c%d changed %d rows", c, changed);
        return -1;
    }
    return c;
}

/* A transaction of 2-7 statements, committed (4 in 5) or rolled back.
** Inside it the worker holds the lock after its first write, so it checks
** that it reads back its own writes and that a counter it increments twice
** moves by exactly 2 (nobody else can change it meanwhile). */
static void op_transaction(worker *w)
{
    int64_t pending[NCOUNTERS] = {0};
    int n = 2 + (int)rnd(&w->rng, 6);
    if (exec_retry(w, "BEGIN") != SQLITE_OK) return;
    for (int i = 0; i < n; i++) {
        switch (rnd(&w->rng, 4)) {
        case 0:
            op_put(w, 1);
            break;
        case 1:
            op_del(w);
            break;
        case 2:
            op_get(w);
            break;
        default: {
            int c = op_inc(w);
            if (c < 0) break;
            pending[c]++;
            int64_t v1 = read_counter(w, c);
            sqlite3_bind_int(w->inc, 1, c);
            int rc = step_retry(w, w->inc);
            int changed = sqlite3_changes(w->db);
            sqlite3_reset(w->inc);
            if (rc == SQLITE_DONE && changed == 1) pending[c]++;
            int64_t v2 = read_counter(w, c);
            if (v2 != v1 + 1)
                wfail(w,
                      "inside a transaction c%d went %" PRId64 " -> %" PRId64
                      " after one increment",
                      c, v1, v2);
        }
        }
        w->rep.ops++;
    }
    if (rnd(&w->rng, 5) == 0) {
        if (exec_retry(w, "ROLLBACK") == SQLITE_OK) w->rep.rollbacks++;
        return;
    }
    if (exec_retry(w, "COMMIT") != SQLITE_OK) {
        sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
        return;
    }
    w->rep.commits++;
    for (int c = 0; c < NCOUNTERS; c++)
        w->rep.incs[c] += pending[c];
}

/* Prepares one statement or records a failure. */
static sqlite3_stmt *prep(worker *w, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(w->db, sql, -1, &st, NULL) != SQLITE_OK)
        wfail(w, "prepare %s: %s", sql, sqlite3_errmsg(w->db));
    return st;
}

/* The body of a worker process: never returns. */
static void worker_main(int id, const char *name, int ops, uint64_t seed, int out_fd, int go_fd)
{
    worker w;
    memset(&w, 0, sizeof w);
    w.id = id;
    w.rng = seed * 0x9E3779B97F4A7C15ull + (uint64_t)id * 7919 + 1;
    w.buf = malloc(4096);
    w.db = open_db();
    if (!w.db) {
        if (write_all(out_fd, "E", 1)) _exit(99);
        _exit(2);
    }
    char *sql = sqlite3_mprintf(
        "CREATE VIRTUAL TABLE temp.kv USING mmap(name='%q', size='4M', timeout=20000)", name);
    int rc = exec_sql(w.db, "worker create", sql);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) {
        if (write_all(out_fd, "E", 1)) _exit(99);
        _exit(2);
    }
    w.put = prep(&w, "INSERT OR REPLACE INTO kv(key, value) VALUES (?1, ?2)");
    w.del = prep(&w, "DELETE FROM kv WHERE key = ?1");
    w.get = prep(&w, "SELECT value FROM kv WHERE key = ?1");
    w.inc = prep(&w, "UPDATE kv SET value = value + 1 WHERE key = 'c' || ?1");
    w.getc = prep(&w, "SELECT value FROM kv WHERE key = 'c' || ?1");
    if (!w.put || !w.del || !w.get || !w.inc || !w.getc) {
        if (write_all(out_fd, "E", 1)) _exit(99);
        _exit(2);
    }

    /* Start barrier: all workers begin their operations together. */
    char go;
    if (write_all(out_fd, "R", 1)) _exit(99);
    if (read_all(go_fd, &go, 1) != 0) _exit(2);

    while (w.rep.ops < ops) {
        unsigned r = rnd(&w.rng, 100);
        if (r < 5) {
            op_transaction(&w);
            continue;
        }
        if (r < 30)
            op_put(&w, 0);
        else if (r < 45)
            op_del(&w);
        else if (r < 70)
            op_get(&w);
        else {
            int c = op_inc(&w);
            if (c >= 0) w.rep.incs[c]++;
        }
        w.rep.ops++;
    }
    if (write_all(out_fd, &w.rep, sizeof w.rep)) _exit(99);

    /* Barrier: wait until every worker has finished writing. */
    worker_digest d = {0, 0, 0};
    if (read_all(go_fd, &go, 1) == 0 && table_digest(w.db, &d.hash, &d.rows) == 0) d.ok = 1;
    if (write_all(out_fd, &d, sizeof d)) _exit(99);

    sqlite3_finalize(w.put);
    sqlite3_finalize(w.del);
    sqlite3_finalize(w.get);
    sqlite3_finalize(w.inc);
    sqlite3_finalize(w.getc);
    sqlite3_close(w.db);
    free(w.buf);
    _exit(w.rep.failures ? 1 : 0);
}

/* ---- the parent ---- */

int main(int argc, char **argv)
{
    int nprocs = argc > 1 ? atoi(argv[1]) : 4;
    int ops = argc > 2 ? atoi(argv[2]) : 10000;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : (uint64_t)time(NULL);
    int parts = argc > 4 ? atoi(argv[4]) : 1;
    if (nprocs < 1 || nprocs > MAXPROCS || ops < 1 || parts < 1) {
        fprintf(stderr, "usage: %s [PROCS(1-%d) [OPS [SEED [PARTS]]]]\n", argv[0], MAXPROCS);
        return 2;
    }
    char name[64];
    snprintf(name, sizeof name, "test-multiproc-%d-%ld", (int)getpid(), (long)time(NULL));
    printf("# %d processes x %d operations, seed %" PRIu64 ", mapping %s in %d part%s\n", nprocs,
           ops, seed, name, parts, parts > 1 ? "s" : "");

    sqlite3 *db = open_db();
    check(db != NULL, "the parent loads the extension");
    if (!db) goto done;
    char *sql =
        sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING mmap(name='%q', size='4M', mode='new', "
                        "timeout=20000, parts=%d)",
                        name, parts);
    int rc = exec_sql(db, "parent", sql);
    sqlite3_free(sql);
    check(rc == SQLITE_OK, "the parent creates the mapping with mode='new'");
    if (rc != SQLITE_OK) goto done;
    rc = exec_sql(db, "parent", "INSERT INTO kv VALUES ('c0', 0), ('c1', 0), ('c2', 0), ('c3', 0)");
    check(rc == SQLITE_OK, "the parent creates %d counters at 0", NCOUNTERS);

    int out_fd[MAXPROCS], go_fd[MAXPROCS];
    pid_t pid[MAXPROCS];
    double t0 = now_ms();
    for (int i = 0; i < nprocs; i++) {
        int p1[2], p2[2];
        if (pipe(p1) != 0 || pipe(p2) != 0) {
            perror("pipe");
            return 2;
        }
        fflush(stdout);
        pid[i] = fork();
        if (pid[i] < 0) {
            perror("fork");
            return 2;
        }
        if (pid[i] == 0) {
            close(p1[0]);
            close(p2[1]);
            for (int j = 0; j < i; j++) {
                close(out_fd[j]);
                close(go_fd[j]);
            }
            worker_main(i, name, ops, seed, p1[1], p2[0]);
        }
        close(p1[1]);
        close(p2[0]);
        out_fd[i] = p1[0];
        go_fd[i] = p2[1];
    }

    /* Start barrier: wait until every worker is ready, then let all go. */
    int ready = 0;
    for (int i = 0; i < nprocs; i++) {
        char c = 0;
        if (read_all(out_fd[i], &c, 1) == 0 && c == 'R') ready++;
    }
    check(ready == nprocs, "all %d workers open the mapping and prepare their statements", nprocs);
    t0 = now_ms();
    for (int i = 0; i < nprocs; i++)
        if (write_all(go_fd[i], "s", 1)) perror("write");

    /* Phase 1: collect each worker's report. */
    worker_report rep[MAXPROCS];
    int64_t incs[NCOUNTERS] = {0}, total_ops = 0, commits = 0, rollbacks = 0, busy = 0, reads = 0;
    int reported = 0, wfailures = 0;
    for (int i = 0; i < nprocs; i++) {
        memset(&rep[i], 0, sizeof rep[i]);
        if (read_all(out_fd[i], &rep[i], sizeof rep[i]) != 0) {
            fprintf(stderr, "worker %d sent no report\n", i);
            continue;
        }
        reported++;
        for (int c = 0; c < NCOUNTERS; c++)
            incs[c] += rep[i].incs[c];
        total_ops += rep[i].ops;
        commits += rep[i].commits;
        rollbacks += rep[i].rollbacks;
        busy += rep[i].busy_retries;
        reads += rep[i].reads_checked;
        wfailures += (int)rep[i].failures;
    }
    double t1 = now_ms();
    check(reported == nprocs, "all %d workers finished their operations", nprocs);
    check(wfailures == 0,
          "no worker saw an error, a torn value or a broken transaction (%d failures)", wfailures);
    printf("# %" PRId64 " operations in %.0f ms (%.0f ops/s), %" PRId64 " commits, %" PRId64
           " rollbacks, %" PRId64 " busy retries, %" PRId64 " reads checked\n",
           total_ops, t1 - t0, total_ops / ((t1 - t0) / 1000.0), commits, rollbacks, busy, reads);
    check(total_ops >= (int64_t)nprocs * ops, "the workers ran %" PRId64 " operations", total_ops);

    /* The counters, read by the parent while every worker waits. */
    int64_t sum = 0;
    for (int c = 0; c < NCOUNTERS; c++) {
        char q[64];
        snprintf(q, sizeof q, "SELECT value FROM kv WHERE key = 'c%d'", c);
        char *v = query_text(db, q);
        int64_t got = v ? strtoll(v, NULL, 10) : -1;
        check(v && got == incs[c], "counter c%d is %s, the sum of reported increments %" PRId64, c,
              v ? v : "(missing)", incs[c]);
        sqlite3_free(v);
        sum += incs[c];
    }
    check(sum > 0, "the workers made %" PRId64 " increments in all", sum);

    /* Phase 2: release the barrier; collect the digests. */
    uint64_t phash = 0;
    int64_t prows = -1;
    int pd = table_digest(db, &phash, &prows);
    check(pd == 0, "the parent computes a digest of the table (%" PRId64 " rows)", prows);
    for (int i = 0; i < nprocs; i++)
        if (write_all(go_fd[i], "g", 1)) perror("write");
    int same = 0;
    for (int i = 0; i < nprocs; i++) {
        worker_digest d;
        if (read_all(out_fd[i], &d, sizeof d) != 0 || !d.ok) {
            fprintf(stderr, "worker %d sent no digest\n", i);
            continue;
        }
        if (d.hash == phash && d.rows == prows)
            same++;
        else
            fprintf(stderr,
                    "worker %d digest %016" PRIx64 "/%" PRId64 " != parent %016" PRIx64 "/%" PRId64
                    "\n",
                    i, d.hash, d.rows, phash, prows);
    }
    check(same == nprocs, "every process sees the same table (%d of %d digests equal the parent's)",
          same, nprocs);

    int clean = 0;
    for (int i = 0; i < nprocs; i++) {
        int status = 0;
        waitpid(pid[i], &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            clean++;
        else
            fprintf(stderr, "worker %d: status 0x%x\n", i, status);
        close(out_fd[i]);
        close(go_fd[i]);
    }
    check(clean == nprocs, "every worker exits with status 0");

    char *chk = query_text(db, "SELECT mmap_check('kv')");
    check(chk && strcmp(chk, "ok") == 0, "mmap_check('kv') = 'ok' (got %s)", chk ? chk : "(error)");
    sqlite3_free(chk);

done:
    if (db) {
        sqlite3_exec(db, "DROP TABLE IF EXISTS temp.kv", NULL, NULL, NULL);
        char *q = sqlite3_mprintf("SELECT mmap_unlink('%q')", name);
        char *u = query_text(db, q);
        check(u && strcmp(u, "1") == 0, "mmap_unlink removes the mapping");
        sqlite3_free(u);
        sqlite3_free(q);
        sqlite3_close(db);
    }
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
