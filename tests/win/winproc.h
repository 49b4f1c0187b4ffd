/*
** winproc.h -- helpers shared by the Windows tests (tests/win): unique
** mapping names, temporary directories, child processes that are the test
** program itself run again with "--child ROLE ARGS...", named events, and
** SQLite connections with the mmap extension loaded.
*/
#ifndef MMKV_WINPROC_H
#define MMKV_WINPROC_H

#include <windows.h>

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

/* Writes "<tag><pid>_<n>" (n counts up per call) into out. */
void wp_unique_name(char *out, size_t n, const char *tag);

/* Creates a fresh directory under the Windows temp directory; its path
** (ANSI, no trailing slash) goes into out.  Returns 0 or -1. */
int wp_make_temp_dir(char *out, size_t n);

/* Deletes the files in dir (UTF-8) and dir itself. */
void wp_remove_dir(const char *dir);

/* Starts this program again as "<self> --child <args>" (args formatted as
** printf), in a job that ends it when this program ends.  Returns the
** process handle, or NULL. */
HANDLE wp_spawn(const char *fmt, ...);

/* Creates a job object that ends its processes when its last handle is
** closed.  Returns it, or NULL. */
HANDLE wp_job_new(void);

/* Starts "<self> --child <args>" in job (NULL: in no job of ours).
** Returns the process handle, or NULL. */
HANDLE wp_spawn_in(HANDLE job, const char *args);

/* Waits at most ms for process p to end, then closes its handle.  Returns
** its exit code, or -1 if it had to be terminated. */
int wp_wait(HANDLE p, DWORD ms);

/* Creates or opens the manual-reset event Local\<name>.  Returns it or NULL. */
HANDLE wp_event(const char *name);

/* Opens an in-memory connection with the extension (MMAP_EXT_PATH) loaded.
** Returns it, or NULL with a message on stderr. */
sqlite3 *wp_open_db(void);

/* Runs SQL built with sqlite3_mprintf's format; returns the SQLite code
** (an error message goes to stderr unless quiet). */
int wp_exec(sqlite3 *db, int quiet, const char *fmt, ...);

/* Runs a query built as above and returns the integer in its first row
** (or dflt when there is none or it fails). */
int64_t wp_query_int(sqlite3 *db, int64_t dflt, const char *fmt, ...);

/* Runs a query built as above and returns the text of its first row in a
** string from sqlite3_malloc (NULL when there is none). */
char *wp_query_text(sqlite3 *db, const char *fmt, ...);

/* 64-bit FNV-1a of n bytes, continuing from h. */
uint64_t wp_fnv(uint64_t h, const void *p, size_t n);

/* The digest of every row of table tbl (key order, quoted keys and
** values); sets *rows.  Returns 0 or -1. */
int wp_table_digest(sqlite3 *db, const char *tbl, uint64_t *digest, int64_t *rows);

/* Milliseconds of a monotonic clock. */
double wp_now_ms(void);

/* A small PRNG (splitmix64) and a uniform pick in [0, n). */
uint64_t wp_rand(uint64_t *state);
unsigned wp_pick(uint64_t *state, unsigned n);

/* Returns 1 when running under Wine (its ntdll exports wine_get_version). */
int wp_under_wine(void);

#endif
