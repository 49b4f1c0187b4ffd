/*
** proc_util.h -- helpers shared by the tests that fork processes
** (test_multiproc.c, test_crash.c): checks that print TAP-like lines, a
** clock, a small deterministic random generator, whole reads and writes
** on pipes, and a connection with the extension loaded.
*/
#ifndef MMAP_PROC_UTIL_H
#define MMAP_PROC_UTIL_H

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#ifndef MMAP_EXT_PATH
#error "MMAP_EXT_PATH must name the extension (set by tests/CMakeLists.txt)"
#endif

static int g_passed, g_failed;

/* Records one check, prints "ok - ..." or "not ok - ...", returns ok. */
static int check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", ok ? "ok" : "not ok");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (ok)
        g_passed++;
    else
        g_failed++;
    return ok;
}

/* Milliseconds on a monotonic clock. */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* xorshift64*: a small deterministic generator. */
static uint64_t rnd_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* Returns a number in [0, n). */
static unsigned rnd(uint64_t *s, unsigned n)
{
    return (unsigned)(rnd_next(s) % n);
}

/* Writes all n bytes; returns 0 or -1. */
static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes; returns 0 on success, -1 on EOF or error. */
static int read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Opens an in-memory connection with the extension loaded, or NULL. */
static sqlite3 *open_db(void)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) return NULL;
    sqlite3_enable_load_extension(db, 1);
    if (sqlite3_load_extension(db, MMAP_EXT_PATH, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "load_extension(%s): %s\n", MMAP_EXT_PATH, err ? err : "?");
        sqlite3_free(err);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Runs SQL; returns the result code and prints any error with who. */
static int exec_sql(sqlite3 *db, const char *who, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) fprintf(stderr, "%s: %.200s -> %d %s\n", who, sql, rc, err ? err : "");
    sqlite3_free(err);
    return rc;
}

#endif
