/*
** test_crash.c -- processes that die or stall while holding a mapping's lock.
**
** Four parts, each with its own named mapping:
**
**  (a) A child opens the table, runs BEGIN, inserts rows, changes and
**      deletes committed rows and increments a counter (so it holds the lock
**      inside an unfinished transaction), tells the parent, then sleeps; the
**      parent kills it with SIGKILL.  Another connection (the parent's
**      long-open one; a fresh one while that is open; a fresh one as the
**      only user of the mapping; a process already waiting for the lock)
**      must get through within the 2 s timeout
**      with no SQLITE_BUSY, see none of the dead child's changes and all the
**      committed rows, get 'ok' from mmap_check, and be able to write; a
**      third process sees that write.
**
**  (b) Crash torture: workers loop over logged transfer transactions between
**      accounts, rolled-back transactions, savepoints, autocommit multi-row
**      transfers and big-blob churn, while the parent SIGKILLs them at random
**      moments (some while they are still opening the mapping).  After every
**      round of kills the parent checks: the totals are unchanged, the
**      balances equal the initial ones plus every logged transfer, every
**      transaction a worker reported committed is in the log (and at most one
**      more), nothing of a rolled-back transaction is present, mmap_check is
**      'ok', and the first statement got the lock within the timeout.
**
**  (c) A child holding the lock inside a transaction is stopped with
**      SIGSTOP: a connection with timeout=300 gets SQLITE_BUSY after about
**      300 ms (between 250 ms and 2 s) with a message naming the mapping and
**      the lock, timeout=0 fails at once, and a reader never sees the
**      child's uncommitted row.  After SIGCONT and the child's COMMIT,
**      everything is intact and visible.
**
**  (d) A child is killed while it creates a new (big) named or file
**      mapping; another process must still be able to open it with mode='create',
**      find it empty or holding the child's row, and write to it.
**
** Usage: test_crash [KILLS [SEED]]   (KILLS for part b, default 200)
** Output: "ok - ..." / "not ok - ..." per check, then "N passed, M failed";
** the exit code is non-zero on failure.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc_util.h"

static int g_name_counter;
static char g_parts[32]; /* ", parts=N" for the mappings this test creates, or "" */

/* A mapping name unique to this run. */
static void unique_name(char *buf, size_t n, const char *part)
{
    snprintf(buf, n, "test-crash-%s-%d-%d", part, (int)getpid(), ++g_name_counter);
}

/* Opens a connection with temp.kv attached to a mapping given by what
** ("name" or "file") and where; args are appended to the CREATE arguments.
** Returns NULL on failure. */
static sqlite3 *open_table_at(const char *what, const char *where, const char *args)
{
    sqlite3 *db = open_db();
    if (!db) return NULL;
    char *sql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING mmap(%s='%q'%s%s%s)", what,
                                where, *args ? ", " : "", args,
                                strstr(args, "mode='new'") ? g_parts : "");
    int rc = exec_sql(db, "open_table", sql);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Opens a connection with temp.kv attached to the named mapping name. */
static sqlite3 *open_table(const char *name, const char *args)
{
    return open_table_at("name", name, args);
}

/* Runs a query and returns its first column of its first row as a new
** string (sqlite3_free it); NULL on error or no row.  *rcp gets the code. */
static char *query_text_rc(sqlite3 *db, const char *sql, int *rcp)
{
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            out = sqlite3_mprintf("%s", t ? (const char *)t : "NULL");
        } else if (rc != SQLITE_DONE) {
            fprintf(stderr, "step %.200s: %d %s\n", sql, rc, sqlite3_errmsg(db));
        }
    } else {
        fprintf(stderr, "prepare %.200s: %s\n", sql, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    if (rcp) *rcp = rc;
    return out;
}

static char *query_text(sqlite3 *db, const char *sql)
{
    return query_text_rc(db, sql, NULL);
}

/* Runs a query whose result is one integer; returns it, or INT64_MIN. */
static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = INT64_MIN;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_type(st, 0) == SQLITE_INTEGER)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "query_int %.200s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return v;
}

/* Returns 1 if mmap_check('kv') is 'ok'; else prints the report. */
static int check_ok(sqlite3 *db)
{
    char *r = query_text(db, "SELECT mmap_check('kv')");
    int ok = r && strcmp(r, "ok") == 0;
    if (!ok) fprintf(stderr, "mmap_check: %s\n", r ? r : "(error)");
    sqlite3_free(r);
    return ok;
}

/* Removes the mapping name through db (or a new connection). */
static void unlink_mapping(const char *name)
{
    sqlite3 *db = open_db();
    if (!db) return;
    char *q = sqlite3_mprintf("SELECT mmap_unlink('%q')", name);
    sqlite3_free(query_text(db, q));
    sqlite3_free(q);
    sqlite3_close(db);
}

/* Kills pid with sig and reaps it; returns 1 if it died of that signal. */
static int kill_and_reap(pid_t pid, int sig)
{
    int status = 0;
    kill(pid, sig);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

/* ====================================================================== */
/* (a) SIGKILL inside an open transaction                                  */
/* ====================================================================== */

/* The child of part (a): opens the table, leaves a transaction unfinished
** while holding the lock, tells the parent ('R', or 'E' on error) and
** sleeps until killed. */
static void child_open_transaction(const char *name, int fd)
{
    sqlite3 *db = open_table(name, "mode='open', timeout=2000");
    int ok = db != NULL;
    if (ok) ok = exec_sql(db, "child", "BEGIN") == SQLITE_OK;
    for (int i = 0; ok && i < 50; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO kv VALUES ('u%03d', randomblob(%d))", i,
                 10 + i * 37);
        ok = exec_sql(db, "child", sql) == SQLITE_OK;
    }
    if (ok)
        ok = exec_sql(db, "child", "UPDATE kv SET value = 'changed' WHERE key = 'b000'") ==
             SQLITE_OK;
    if (ok) ok = exec_sql(db, "child", "DELETE FROM kv WHERE key = 'b001'") == SQLITE_OK;
    if (ok)
        ok = exec_sql(db, "child", "UPDATE kv SET value = value + 1 WHERE key = 'c'") == SQLITE_OK;
    write_all(fd, ok ? "R" : "E", 1);
    for (;;)
        pause();
}

/* Checks, through db, the state after the child of part (a) died: what
** names the connection in the messages. */
static void check_after_kill(sqlite3 *db, const char *what, int64_t expect_c)
{
    check(query_int(db, "SELECT count(*) FROM kv WHERE key GLOB 'u*'") == 0,
          "%s: none of the dead child's 50 inserted rows is present", what);
    check(query_int(db, "SELECT count(*) FROM kv WHERE key GLOB 'b*'") == 100,
          "%s: all 100 committed rows are present", what);
    char *v0 = query_text(db, "SELECT value FROM kv WHERE key = 'b000'");
    check(v0 && strcmp(v0, "value-0") == 0, "%s: the dead child's UPDATE of b000 is undone (%s)",
          what, v0 ? v0 : "(missing)");
    sqlite3_free(v0);
    char *v1 = query_text(db, "SELECT value FROM kv WHERE key = 'b001'");
    check(v1 && strcmp(v1, "value-1") == 0, "%s: the dead child's DELETE of b001 is undone (%s)",
          what, v1 ? v1 : "(missing)");
    sqlite3_free(v1);
    int64_t c = query_int(db, "SELECT value FROM kv WHERE key = 'c'");
    check(c == expect_c, "%s: the counter is %" PRId64 " (expected %" PRId64 ")", what, c,
          expect_c);
    check(check_ok(db), "%s: mmap_check is 'ok'", what);
}

/* Forks a child that opens the mapping and checks that counter c has the
** value expect; returns 1 if it does. */
static int other_process_sees_counter(const char *name, int64_t expect)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        sqlite3 *db = open_table(name, "mode='open', timeout=2000");
        int64_t c = db ? query_int(db, "SELECT value FROM kv WHERE key = 'c'") : INT64_MIN;
        int extra =
            db ? (int)query_int(db, "SELECT count(*) FROM kv WHERE key = 'after-recovery'") : -1;
        _exit(c == expect && extra == 1 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Part (a).  how = 0: the parent's long-open connection recovers, through a
** write; how = 1: a fresh connection recovers, through a read, while the
** long-open one still has the mapping open; how = 2: the parent closed its
** connection before the kill, so a fresh connection recovers as the only
** process that has the mapping open; how = 3: another process is already
** waiting for the lock (timeout=5000) when the holder is killed. */
static void test_kill_holding_lock_in_transaction(int how)
{
    char name[80];
    unique_name(name, sizeof name, "txn");
    int fresh = how != 0;
    const char *who = how == 0   ? "the long-open connection"
                      : how == 1 ? "a fresh connection, while another has it open"
                      : how == 2 ? "a fresh connection, the only one that has it open"
                                 : "a process that waits for the lock when the holder dies";
    printf("# (a) SIGKILL of a lock holder inside BEGIN...; recovery by %s\n", who);
    sqlite3 *db = open_table(name, "mode='new', size='1M', timeout=2000");
    if (!check(db != NULL, "(a) the parent creates mapping %s", name)) return;
    int rc = exec_sql(db, "parent", "BEGIN");
    for (int i = 0; rc == SQLITE_OK && i < 100; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO kv VALUES ('b%03d', 'value-%d')", i, i);
        rc = exec_sql(db, "parent", sql);
    }
    if (rc == SQLITE_OK) rc = exec_sql(db, "parent", "INSERT INTO kv VALUES ('c', 0)");
    if (rc == SQLITE_OK) rc = exec_sql(db, "parent", "COMMIT");
    check(rc == SQLITE_OK, "(a) 100 rows and a counter are committed");
    if (how == 2) {
        sqlite3_close(db);
        db = NULL;
    }

    int p[2];
    if (pipe(p) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        /* The parent's connection is not used (nor closed) in the child. */
        child_open_transaction(name, p[1]);
    }
    close(p[1]);
    char msg = 0;
    read_all(p[0], &msg, 1);
    close(p[0]);
    check(msg == 'R', "(a) the child holds the lock with an unfinished transaction");
    int wp[2] = {-1, -1};
    pid_t waiter = -1;
    if (how == 3) {
        if (pipe(wp) != 0) {
            perror("pipe");
            exit(2);
        }
        fflush(stdout);
        waiter = fork();
        if (waiter == 0) {
            close(wp[0]);
            sqlite3 *wdb = open_table(name, "mode='open', timeout=5000");
            write_all(wp[1], wdb ? "W" : "E", 1);
            int wrc = wdb ? exec_sql(wdb, "waiter", "INSERT INTO kv VALUES ('waiter', 1)") : -1;
            write_all(wp[1], wrc == SQLITE_OK ? "D" : "E", 1);
            _exit(wrc == SQLITE_OK ? 0 : 1);
        }
        close(wp[1]);
        msg = 0;
        read_all(wp[0], &msg, 1);
        check(msg == 'W', "(a) a second process opens the mapping and starts an INSERT");
        usleep(300000); /* it is now waiting for the lock */
    }
    check(kill_and_reap(pid, SIGKILL), "(a) the child is killed with SIGKILL");

    sqlite3 *rdb = db;
    if (how == 3) {
        double t0 = now_ms();
        msg = 0;
        read_all(wp[0], &msg, 1);
        double t1 = now_ms();
        close(wp[0]);
        int status = 0;
        waitpid(waiter, &status, 0);
        check(msg == 'D' && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "(a) the waiting process's INSERT succeeds after the holder's death");
        check(t1 - t0 < 2000, "(a) it gets the lock %.0f ms after the kill (< 2000)", t1 - t0);
        check(query_int(db, "SELECT count(*) FROM kv WHERE key = 'waiter'") == 1,
              "(a) the waiting process's row is present");
        exec_sql(db, "parent", "DELETE FROM kv WHERE key = 'waiter'");
    } else if (fresh) {
        double t0 = now_ms();
        rdb = open_table(name, "mode='open', timeout=2000");
        double t1 = now_ms();
        check(rdb != NULL, "(a) %s opens the mapping (%.0f ms)", who, t1 - t0);
        if (!rdb) goto out;
        int qrc = 0;
        char *n = query_text_rc(rdb, "SELECT count(*) FROM kv", &qrc);
        double t2 = now_ms();
        check(qrc == SQLITE_ROW && n && strcmp(n, "101") == 0,
              "(a) its first SELECT returns the 101 committed rows, result code %d (not "
              "SQLITE_BUSY), "
              "in %.0f ms",
              qrc, t2 - t1);
        check(t2 - t1 < 2000, "(a) the first SELECT after the kill takes under 2 s (%.0f ms)",
              t2 - t1);
        sqlite3_free(n);
    } else {
        double t1 = now_ms();
        rc = exec_sql(rdb, "parent", "INSERT INTO kv VALUES ('first-write', 1)");
        double t2 = now_ms();
        check(rc == SQLITE_OK,
              "(a) its first statement, an INSERT, succeeds (result code %d) in %.0f ms", rc,
              t2 - t1);
        check(t2 - t1 < 2000, "(a) the first write after the kill takes under 2 s (%.0f ms)",
              t2 - t1);
        exec_sql(rdb, "parent", "DELETE FROM kv WHERE key = 'first-write'");
    }
    check_after_kill(rdb, how == 0 ? "(a) long-open connection" : "(a) fresh connection", 0);
    rc = exec_sql(rdb, "recoverer", "UPDATE kv SET value = value + 1 WHERE key = 'c'");
    check(rc == SQLITE_OK && sqlite3_changes(rdb) == 1, "(a) a write works after recovery");
    rc = exec_sql(rdb, "recoverer", "INSERT INTO kv VALUES ('after-recovery', 'yes')");
    check(rc == SQLITE_OK, "(a) an insert works after recovery");
    if (how == 1) check_after_kill(db, "(a) the other, long-open connection", 1);
    check(other_process_sees_counter(name, 1),
          "(a) another process sees the counter at 1 and the new row");
    if (fresh) sqlite3_close(rdb);
out:
    sqlite3_close(db);
    unlink_mapping(name);
}

/* ====================================================================== */
/* (b) crash torture                                                       */
/* ====================================================================== */

#define NACC 20        /* logged accounts a00..a19 */
#define ACC_START 1000 /* initial balance of each */
#define NBACC 10       /* autocommit accounts b00..b09 */
#define BACC_START 500
#define NSCRATCH 20 /* scratch keys s00..s19 with big blobs */
#define WORKERS_PER_ROUND 2

/* Runs one statement with sqlite3_exec; on error prints it and exits the
** worker with status 3 (the parent counts that as a failure). */
static void wexec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "torture worker %d: %.200s -> %s\n", (int)getpid(), sql, err ? err : "?");
        _exit(3);
    }
}

/* The body of a torture worker with id wid: announces itself with a 0 on
** fd, then loops forever, writing the sequence number of every committed
** logged transfer to fd after its COMMIT returns. */
static void torture_worker(const char *name, int wid, uint64_t seed, int fd)
{
    sqlite3 *db = open_table(name, "mode='open', timeout=2000");
    if (!db) _exit(3);
    uint64_t r = seed ^ ((uint64_t)wid * 0x9E3779B97F4A7C15ull) ^ 0x5bd1e995;
    int32_t seq = 0;
    if (write_all(fd, &seq, sizeof seq) != 0) _exit(3);
    char sql[512];
    for (int32_t attempt = 1;; attempt++) {
        unsigned kind = rnd(&r, 100);
        int from = (int)rnd(&r, NACC), to = (from + 1 + (int)rnd(&r, NACC - 1)) % NACC;
        int amt = 1 + (int)rnd(&r, 50);
        if (kind < 40) { /* a logged transfer, committed */
            seq++;
            snprintf(
                sql, sizeof sql,
                "BEGIN; UPDATE kv SET value = value - %d WHERE key = 'a%02d'; "
                "UPDATE kv SET value = value + %d WHERE key = 'a%02d'; "
                "INSERT INTO kv VALUES (printf('L%%05d-%%06d', %d, %d), '%d,%d,%d'); %s COMMIT;",
                amt, from, amt, to, wid, seq, from, to, amt,
                rnd(&r, 4) == 0 ? "INSERT OR REPLACE INTO kv SELECT 's' || abs(random() % 20), "
                                  "randomblob(abs(random() % 40000));"
                                : "");
            wexec(db, sql);
            if (write_all(fd, &seq, sizeof seq) != 0) _exit(3);
        } else if (kind < 50) { /* a transfer rolled back */
            snprintf(sql, sizeof sql,
                     "BEGIN; UPDATE kv SET value = value - %d WHERE key = 'a%02d'; "
                     "INSERT INTO kv VALUES ('R%05d-%06d', 'rolled back'); "
                     "UPDATE kv SET value = value + %d WHERE key = 'a%02d'; "
                     "UPDATE kv SET value = value + 1 WHERE key GLOB 'b*'; "
                     "INSERT OR REPLACE INTO kv VALUES ('s%02d', randomblob(30000)); ROLLBACK;",
                     amt, from, wid, attempt, amt + 1, to, (int)rnd(&r, NSCRATCH));
            wexec(db, sql);
        } else if (kind < 60) { /* logged transfer plus a part undone by ROLLBACK TO */
            seq++;
            snprintf(sql, sizeof sql,
                     "BEGIN; UPDATE kv SET value = value - %d WHERE key = 'a%02d'; "
                     "UPDATE kv SET value = value + %d WHERE key = 'a%02d'; "
                     "INSERT INTO kv VALUES (printf('L%%05d-%%06d', %d, %d), '%d,%d,%d'); "
                     "SAVEPOINT sp; UPDATE kv SET value = value + 1000 WHERE key GLOB 'a*'; "
                     "INSERT INTO kv VALUES ('R%05d-%06d', 'undone by rollback to'); "
                     "ROLLBACK TO sp; RELEASE sp; COMMIT;",
                     amt, from, amt, to, wid, seq, from, to, amt, wid, attempt);
            wexec(db, sql);
            if (write_all(fd, &seq, sizeof seq) != 0) _exit(3);
        } else if (kind < 80) { /* one autocommit statement over two rows */
            int bf = (int)rnd(&r, NBACC), bt = (bf + 1 + (int)rnd(&r, NBACC - 1)) % NBACC;
            snprintf(sql, sizeof sql,
                     "UPDATE kv SET value = value + CASE key WHEN 'b%02d' THEN -%d ELSE %d END "
                     "WHERE key IN ('b%02d', 'b%02d')",
                     bf, amt, amt, bf, bt);
            wexec(db, sql);
        } else if (kind < 92) { /* autocommit churn of big values */
            snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO kv VALUES ('s%02d', randomblob(%u))",
                     (int)rnd(&r, NSCRATCH), 1 + rnd(&r, 60000));
            wexec(db, sql);
        } else {
            snprintf(sql, sizeof sql, "DELETE FROM kv WHERE key = 's%02d'", (int)rnd(&r, NSCRATCH));
            wexec(db, sql);
        }
    }
}

/* State of the torture that the parent keeps between rounds. */
typedef struct {
    int64_t base[NACC]; /* balances before the log rows still in the table */
    int failures;       /* invariant violations seen */
    double worst_first_ms;
} torture_state;

/* Notes one invariant violation of round `round`. */
static void tfail(torture_state *ts, int round, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ts->failures < 20) {
        fprintf(stderr, "torture round %d: ", round);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
    }
    va_end(ap);
    ts->failures++;
}

/* Checks every invariant through db after the round's workers died; wids
** and reported[] give each worker's id and last reported commit.  Then
** folds the log into ts->base and deletes it, so the mapping stays small. */
static void torture_verify(sqlite3 *db, torture_state *ts, int round, const int *wids,
                           const int32_t *reported, int nw)
{
    double t0 = now_ms();
    int qrc = 0;
    char *first = query_text_rc(db, "SELECT count(*) FROM kv WHERE key GLOB 'a*'", &qrc);
    double t = now_ms() - t0;
    if (t > ts->worst_first_ms) ts->worst_first_ms = t;
    if (qrc != SQLITE_ROW || !first || strcmp(first, "20") != 0)
        tfail(ts, round, "first SELECT: rc %d, %s accounts (%s)", qrc, first ? first : "?",
              sqlite3_errmsg(db));
    sqlite3_free(first);
    if (t > 2000) tfail(ts, round, "first statement after the kills took %.0f ms", t);

    int64_t bal[NACC], sum = 0;
    memcpy(bal, ts->base, sizeof bal);
    int32_t maxseq[WORKERS_PER_ROUND] = {0};
    int gaps = 0;
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT key, value FROM kv WHERE key GLOB 'L*' ORDER BY key", -1, &st,
                       NULL);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        int w, s, f, to, amt;
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (!k || !v || sscanf(k, "L%d-%d", &w, &s) != 2 ||
            sscanf(v, "%d,%d,%d", &f, &to, &amt) != 3 || f < 0 || f >= NACC || to < 0 ||
            to >= NACC) {
            tfail(ts, round, "malformed log row %s = %s", k ? k : "?", v ? v : "?");
            continue;
        }
        bal[f] -= amt;
        bal[to] += amt;
        int i = 0;
        while (i < nw && wids[i] != w)
            i++;
        if (i == nw) {
            tfail(ts, round, "log row %s of an unknown worker", k);
            continue;
        }
        if (s != maxseq[i] + 1) gaps++;
        maxseq[i] = s;
    }
    sqlite3_finalize(st);
    if (gaps) tfail(ts, round, "%d gaps in the committed-transaction logs", gaps);
    for (int i = 0; i < nw; i++)
        if (maxseq[i] < reported[i] || maxseq[i] > reported[i] + 1)
            tfail(ts, round, "worker %d reported %d commits but the log holds %d", wids[i],
                  reported[i], maxseq[i]);

    for (int a = 0; a < NACC; a++) {
        char q[64];
        snprintf(q, sizeof q, "SELECT value FROM kv WHERE key = 'a%02d'", a);
        int64_t v = query_int(db, q);
        if (v != bal[a])
            tfail(ts, round, "account a%02d is %" PRId64 ", the log says %" PRId64, a, v, bal[a]);
        sum += v;
    }
    if (sum != (int64_t)NACC * ACC_START) tfail(ts, round, "the accounts total %" PRId64, sum);
    int64_t bsum = query_int(db, "SELECT sum(value) FROM kv WHERE key GLOB 'b*'");
    if (bsum != (int64_t)NBACC * BACC_START)
        tfail(ts, round, "the b accounts total %" PRId64, bsum);
    int64_t nr = query_int(db, "SELECT count(*) FROM kv WHERE key GLOB 'R*'");
    if (nr != 0) tfail(ts, round, "%" PRId64 " rows of rolled-back transactions are present", nr);
    if (!check_ok(db)) tfail(ts, round, "mmap_check is not ok");

    /* Fold the log into the base and delete it, in one transaction. */
    memcpy(ts->base, bal, sizeof bal);
    if (exec_sql(db, "torture", "DELETE FROM kv WHERE key GLOB 'L*'") != SQLITE_OK)
        tfail(ts, round, "cannot delete the log: %s", sqlite3_errmsg(db));
}

/* Reads every int32 a worker wrote on fd until EOF; returns the last
** non-zero one (0 if none) and sets *started if the first (0) came. */
static int32_t drain_reports(int fd, int *started)
{
    int32_t v, last = 0;
    while (read_all(fd, &v, sizeof v) == 0) {
        if (v == 0)
            *started = 1;
        else
            last = v;
    }
    return last;
}

/* Waits until a worker announced itself on fd (the 0); returns 0 or -1.
** Any report after it stays in the pipe for drain_reports. */
static int wait_started(int fd)
{
    int32_t v;
    return read_all(fd, &v, sizeof v) == 0 && v == 0 ? 0 : -1;
}

/* Part (b): `kills` SIGKILLs at random moments, checking after each round. */
static void test_crash_torture(int kills, uint64_t seed)
{
    char name[80];
    unique_name(name, sizeof name, "torture");
    printf("# (b) crash torture: %d kills, seed %" PRIu64 ", mapping %s\n", kills, seed, name);
    sqlite3 *db = open_table(name, "mode='new', size='16M', timeout=2000");
    if (!check(db != NULL, "(b) the parent creates mapping %s", name)) return;
    int rc = exec_sql(db, "parent", "BEGIN");
    torture_state ts;
    memset(&ts, 0, sizeof ts);
    for (int a = 0; a < NACC; a++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO kv VALUES ('a%02d', %d)", a, ACC_START);
        if (rc == SQLITE_OK) rc = exec_sql(db, "parent", sql);
        ts.base[a] = ACC_START;
    }
    for (int b = 0; b < NBACC; b++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO kv VALUES ('b%02d', %d)", b, BACC_START);
        if (rc == SQLITE_OK) rc = exec_sql(db, "parent", sql);
    }
    if (rc == SQLITE_OK) rc = exec_sql(db, "parent", "COMMIT");
    if (!check(rc == SQLITE_OK, "(b) %d accounts of %d and %d of %d are committed", NACC, ACC_START,
               NBACC, BACC_START))
        goto out;

    uint64_t r = seed;
    int done_kills = 0, round = 0, unexpected_exits = 0, early_kills = 0;
    int64_t commits = 0;
    double t0 = now_ms();
    while (done_kills < kills) {
        int nw = kills - done_kills < WORKERS_PER_ROUND ? kills - done_kills : WORKERS_PER_ROUND;
        pid_t pid[WORKERS_PER_ROUND];
        int fd[WORKERS_PER_ROUND], wid[WORKERS_PER_ROUND];
        int32_t reported[WORKERS_PER_ROUND];
        int early = rnd(&r, 10) == 0; /* kill while the worker may still be opening */
        round++;
        for (int i = 0; i < nw; i++) {
            int p[2];
            if (pipe(p) != 0) {
                perror("pipe");
                exit(2);
            }
            wid[i] = round * WORKERS_PER_ROUND + i;
            fflush(stdout);
            pid[i] = fork();
            if (pid[i] < 0) {
                perror("fork");
                exit(2);
            }
            if (pid[i] == 0) {
                close(p[0]);
                for (int j = 0; j < i; j++)
                    close(fd[j]);
                /* The parent's connection is not used (nor closed) in the child. */
                torture_worker(name, wid[i], seed + (uint64_t)round, p[1]);
            }
            close(p[1]);
            fd[i] = p[0];
        }
        if (early) {
            usleep(rnd(&r, 3000));
            early_kills += nw;
        } else {
            for (int i = 0; i < nw; i++)
                if (wait_started(fd[i]) != 0)
                    fprintf(stderr, "torture worker %d did not start\n", wid[i]);
            usleep(1000 + rnd(&r, 20000));
        }
        for (int i = 0; i < nw; i++) {
            if (i > 0) usleep(rnd(&r, 5000));
            if (!kill_and_reap(pid[i], SIGKILL)) {
                unexpected_exits++;
                fprintf(stderr, "torture worker %d ended before it was killed\n", wid[i]);
            }
            done_kills++;
        }
        for (int i = 0; i < nw; i++) {
            int started = 0;
            reported[i] = drain_reports(fd[i], &started);
            commits += reported[i];
            close(fd[i]);
        }
        /* Now and then the check opens a fresh connection after the kill. */
        if (rnd(&r, 5) == 0) {
            sqlite3 *fresh = open_table(name, "mode='open', timeout=2000");
            if (!fresh)
                tfail(&ts, round, "a fresh connection cannot open the mapping");
            else {
                torture_verify(fresh, &ts, round, wid, reported, nw);
                sqlite3_close(fresh);
            }
        } else {
            torture_verify(db, &ts, round, wid, reported, nw);
        }
    }
    double t1 = now_ms();
    printf("# (b) %d kills in %d rounds (%d while opening), %" PRId64
           " committed transfers reported, %.1f s, slowest first statement after a kill %.0f ms\n",
           done_kills, round, early_kills, commits, (t1 - t0) / 1000, ts.worst_first_ms);
    check(done_kills == kills, "(b) %d workers were killed with SIGKILL at random moments",
          done_kills);
    check(unexpected_exits == 0, "(b) no worker stopped on an error before it was killed (%d did)",
          unexpected_exits);
    check(commits > 0, "(b) the workers committed %" PRId64 " logged transfers", commits);
    check(ts.failures == 0,
          "(b) after every round: totals kept, balances match the logs, every reported commit is "
          "present, nothing rolled back is, mmap_check ok, lock had within the timeout (%d "
          "violations)",
          ts.failures);
    check(ts.worst_first_ms < 2000,
          "(b) the slowest first statement after a kill took %.0f ms (< 2000)", ts.worst_first_ms);
    rc = exec_sql(db, "parent", "UPDATE kv SET value = value + 0 WHERE key GLOB 'a*'");
    check(rc == SQLITE_OK && sqlite3_changes(db) == NACC, "(b) a write works after the torture");
out:
    sqlite3_close(db);
    unlink_mapping(name);
}

/* ====================================================================== */
/* (c) SIGSTOP of a lock holder                                            */
/* ====================================================================== */

/* The child of part (c): holds the lock in a transaction, says 'R', waits
** for a byte on in_fd, commits and says 'C' (or 'E' on error). */
static void child_stalled_holder(const char *name, int out_fd, int in_fd)
{
    sqlite3 *db = open_table(name, "mode='open', timeout=2000");
    int ok = db && exec_sql(db, "child", "BEGIN") == SQLITE_OK &&
             exec_sql(db, "child", "INSERT INTO kv VALUES ('stop-row', 'committed late')") ==
                 SQLITE_OK &&
             exec_sql(db, "child", "UPDATE kv SET value = value + 1 WHERE key = 'c'") == SQLITE_OK;
    write_all(out_fd, ok ? "R" : "E", 1);
    char go;
    if (read_all(in_fd, &go, 1) != 0) _exit(3);
    ok = ok && exec_sql(db, "child", "COMMIT") == SQLITE_OK;
    write_all(out_fd, ok ? "C" : "E", 1);
    sqlite3_close(db);
    _exit(ok ? 0 : 3);
}

/* Runs sql on db, returning its result code; *ms gets the time it took. */
static int timed_exec(sqlite3 *db, const char *sql, double *ms)
{
    double t0 = now_ms();
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    *ms = now_ms() - t0;
    return rc;
}

/* Part (c). */
static void test_stalled_holder(void)
{
    char name[80];
    unique_name(name, sizeof name, "stop");
    printf("# (c) SIGSTOP of a lock holder inside a transaction\n");
    sqlite3 *db = open_table(name, "mode='new', size='1M', timeout=300");
    if (!check(db != NULL, "(c) the parent creates mapping %s with timeout=300", name)) return;
    int rc = exec_sql(db, "parent", "INSERT INTO kv VALUES ('c', 10), ('keep', 'me')");
    check(rc == SQLITE_OK, "(c) two rows are committed");
    sqlite3 *db0 = open_table(name, "mode='open', timeout=0");
    check(db0 != NULL, "(c) a second connection opens it with timeout=0");

    int up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        child_stalled_holder(name, up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    char msg = 0;
    read_all(up[0], &msg, 1);
    check(msg == 'R', "(c) the child holds the lock inside a transaction");
    check(kill(pid, SIGSTOP) == 0, "(c) the child is stopped with SIGSTOP");

    double ms = 0;
    rc = timed_exec(db, "INSERT INTO kv VALUES ('blocked', 1)", &ms);
    const char *err = sqlite3_errmsg(db);
    check((rc & 0xff) == SQLITE_BUSY,
          "(c) a write with timeout=300 fails with SQLITE_BUSY (rc %d: %s)", rc, err);
    check(ms >= 250 && ms <= 2000,
          "(c) it fails after about the timeout (%.0f ms, expected 250-2000)", ms);
    check(strstr(err, name) != NULL, "(c) the message names the mapping: %s", err);
    check(strstr(err, "lock") != NULL, "(c) the message mentions the lock");

    if (db0) {
        rc = timed_exec(db0, "INSERT INTO kv VALUES ('blocked0', 1)", &ms);
        check((rc & 0xff) == SQLITE_BUSY && ms < 200,
              "(c) with timeout=0 a write fails with SQLITE_BUSY at once (rc %d, %.0f ms)", rc, ms);
    }

    /* A reader may wait and fail, but must never see uncommitted data. */
    double t0 = now_ms();
    int qrc = 0;
    char *n = query_text_rc(db, "SELECT count(*) FROM kv WHERE key = 'stop-row'", &qrc);
    ms = now_ms() - t0;
    check(((qrc & 0xff) == SQLITE_BUSY && ms <= 2000) ||
              (qrc == SQLITE_ROW && n && strcmp(n, "0") == 0),
          "(c) a reader gets SQLITE_BUSY or does not see the uncommitted row (rc %d, %s, %.0f ms)",
          qrc, n ? n : "-", ms);
    sqlite3_free(n);
    n = query_text_rc(db, "SELECT value FROM kv WHERE key = 'c'", &qrc);
    check((qrc & 0xff) == SQLITE_BUSY || (qrc == SQLITE_ROW && n && strcmp(n, "10") == 0),
          "(c) a reader gets SQLITE_BUSY or the committed counter 10 (rc %d, %s)", qrc,
          n ? n : "-");
    sqlite3_free(n);

    check(kill(pid, SIGCONT) == 0, "(c) the child continues after SIGCONT");
    write_all(down[1], "g", 1);
    msg = 0;
    read_all(up[0], &msg, 1);
    check(msg == 'C', "(c) the child commits after it resumes");
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "(c) the child exits cleanly");
    close(up[0]);
    close(down[1]);

    char *v = query_text(db, "SELECT value FROM kv WHERE key = 'stop-row'");
    check(v && strcmp(v, "committed late") == 0, "(c) the child's row is visible after its COMMIT");
    sqlite3_free(v);
    check(query_int(db, "SELECT value FROM kv WHERE key = 'c'") == 11, "(c) the counter is 11");
    v = query_text(db, "SELECT value FROM kv WHERE key = 'keep'");
    check(v && strcmp(v, "me") == 0, "(c) the earlier row is intact");
    sqlite3_free(v);
    check(query_int(db, "SELECT count(*) FROM kv WHERE key GLOB 'blocked*'") == 0,
          "(c) the writes that got SQLITE_BUSY changed nothing");
    check(query_int(db, "SELECT count(*) FROM kv") == 3, "(c) the table holds exactly 3 rows");
    check(check_ok(db), "(c) mmap_check is 'ok'");
    rc = exec_sql(db, "parent", "INSERT INTO kv VALUES ('after', 1)");
    check(rc == SQLITE_OK, "(c) the parent can write again");
    if (db0) sqlite3_close(db0);
    sqlite3_close(db);
    unlink_mapping(name);
}

/* ====================================================================== */
/* (d) SIGKILL of a process that is creating a mapping                     */
/* ====================================================================== */

/* Part (d): a child creates a big new mapping (so that sizing it takes a
** while; a named one, or every other round a file) and is killed at a random moment of that; then
*another process
** opens the same name with mode='create'.  A dead creator must not break
** the name: the open succeeds within the timeout, the table is empty or
** holds the child's one row, mmap_check is 'ok', and a write works. */
static void test_kill_while_creating(int rounds, uint64_t seed)
{
    printf(
        "# (d) SIGKILL of a process while it creates a mapping (256M named, 64M file), %d times\n",
        rounds);
    uint64_t r = seed ^ 0xD1B54A32D192ED03ull;
    int opened = 0, sane = 0, wrote = 0, killed = 0;
    double worst = 0;
    for (int i = 0; i < rounds; i++) {
        char name[80], dir[] = "/tmp/test-crash-XXXXXX", path[128];
        const char *args = "size='256M', timeout=2000", *what = "name", *where = name;
        unique_name(name, sizeof name, "create");
        if (i % 2 && mkdtemp(dir)) { /* every other round: a file mapping */
            snprintf(path, sizeof path, "%s/kv.mmap", dir);
            what = "file";
            where = path;
            args = "size='64M', timeout=2000";
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            sqlite3 *db = open_table_at(what, where, args);
            if (db) sqlite3_exec(db, "INSERT INTO kv VALUES ('x', 1)", NULL, NULL, NULL);
            _exit(0);
        }
        usleep(500 + rnd(&r, 40000));
        killed += kill_and_reap(pid, SIGKILL);
        double t0 = now_ms();
        sqlite3 *db = open_table_at(what, where, args);
        double t = now_ms() - t0;
        if (t > worst) worst = t;
        if (db) {
            opened++;
            int64_t n = query_int(db, "SELECT count(*) FROM kv");
            int64_t other = query_int(db, "SELECT count(*) FROM kv WHERE key <> 'x'");
            if ((n == 0 || n == 1) && other == 0 && check_ok(db)) sane++;
            if (exec_sql(db, "(d)", "INSERT OR REPLACE INTO kv VALUES ('y', 2)") == SQLITE_OK &&
                query_int(db, "SELECT value FROM kv WHERE key = 'y'") == 2)
                wrote++;
            sqlite3_close(db);
        }
        if (where == path) {
            unlink(path);
            rmdir(dir);
        } else {
            unlink_mapping(name);
        }
    }
    printf("# (d) %d of %d creators were killed before they finished; slowest reopen %.0f ms\n",
           killed, rounds, worst);
    check(opened == rounds, "(d) after a creator is killed, the name opens again (%d of %d times)",
          opened, rounds);
    check(sane == rounds,
          "(d) the table is empty or holds the creator's row, mmap_check ok (%d of %d)", sane,
          rounds);
    check(wrote == rounds, "(d) a write works on it (%d of %d)", wrote, rounds);
    check(worst < 2500, "(d) reopening took at most %.0f ms (< 2500)", worst);
}

int main(int argc, char **argv)
{
    int kills = argc > 1 ? atoi(argv[1]) : 200;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)time(NULL);
    int parts = argc > 3 ? atoi(argv[3]) : 1;
    if (kills < 1 || parts < 1) {
        fprintf(stderr, "usage: %s [KILLS [SEED [PARTS]]]\n", argv[0]);
        return 2;
    }
    if (parts > 1) snprintf(g_parts, sizeof g_parts, ", parts=%d", parts);
    printf("# mappings in %d part%s\n", parts, parts > 1 ? "s" : "");
    signal(SIGPIPE, SIG_IGN);
    double t0 = now_ms();
    test_kill_holding_lock_in_transaction(0);
    test_kill_holding_lock_in_transaction(1);
    test_kill_holding_lock_in_transaction(2);
    test_kill_holding_lock_in_transaction(3);
    double t1 = now_ms();
    test_crash_torture(kills, seed);
    double t2 = now_ms();
    test_stalled_holder();
    double t3 = now_ms();
    test_kill_while_creating(20, seed);
    double t4 = now_ms();
    printf("# times: (a) %.1f s, (b) %.1f s, (c) %.1f s, (d) %.1f s\n", (t1 - t0) / 1000,
           (t2 - t1) / 1000, (t3 - t2) / 1000, (t4 - t3) / 1000);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
