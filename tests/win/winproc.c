/*
** winproc.c -- helpers shared by the Windows tests; see winproc.h.
*/
#include "winproc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifndef MMAP_EXT_PATH
#error "MMAP_EXT_PATH must name the extension (set by tests/win/CMakeLists.txt)"
#endif

void wp_unique_name(char *out, size_t n, const char *tag)
{
    static LONG counter;
    snprintf(out, n, "%s%lu_%ld", tag, (unsigned long)GetCurrentProcessId(),
             InterlockedIncrement(&counter));
}

int wp_make_temp_dir(char *out, size_t n)
{
    char base[MAX_PATH], name[64];
    DWORD len = GetTempPathA(sizeof base, base);
    if (len == 0 || len >= sizeof base) return -1;
    for (int tries = 0; tries < 100; tries++) {
        wp_unique_name(name, sizeof name, "mmkvwin");
        snprintf(out, n, "%s%s", base, name);
        if (CreateDirectoryA(out, NULL)) return 0;
        if (GetLastError() != ERROR_ALREADY_EXISTS) return -1;
    }
    return -1;
}

void wp_remove_dir(const char *dir)
{
    wchar_t wdir[MAX_PATH], pattern[MAX_PATH + 4], path[2 * MAX_PATH];
    if (!MultiByteToWideChar(CP_UTF8, 0, dir, -1, wdir, MAX_PATH)) return;
    swprintf(pattern, MAX_PATH + 4, L"%ls\\*", wdir);
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pattern, &fd);
    if (f != INVALID_HANDLE_VALUE) {
        do {
            if (wcscmp(fd.cFileName, L".") == 0 || wcscmp(fd.cFileName, L"..") == 0) continue;
            swprintf(path, 2 * MAX_PATH, L"%ls\\%ls", wdir, fd.cFileName);
            DeleteFileW(path);
        } while (FindNextFileW(f, &fd));
        FindClose(f);
    }
    RemoveDirectoryW(wdir);
}

HANDLE wp_job_new(void)
{
    HANDLE job = CreateJobObjectA(NULL, NULL);
    if (!job) return NULL;
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
    memset(&li, 0, sizeof li);
    li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li)) {
        CloseHandle(job);
        return NULL;
    }
    return job;
}

HANDLE wp_spawn_in(HANDLE job, const char *args)
{
    char self[MAX_PATH], cmd[MAX_PATH + 2100];
    if (!GetModuleFileNameA(NULL, self, sizeof self)) return NULL;
    snprintf(cmd, sizeof cmd, "\"%s\" --child %s", self, args);
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    /* Suspended until it is in the job, so it cannot start a process of
    ** its own outside it first. */
    if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, job ? CREATE_SUSPENDED : 0, NULL, NULL, &si,
                        &pi)) {
        fprintf(stderr, "CreateProcess(%s) failed: %lu\n", cmd, (unsigned long)GetLastError());
        return NULL;
    }
    if (job && !AssignProcessToJobObject(job, pi.hProcess))
        fprintf(stderr, "AssignProcessToJobObject failed: %lu (the child may outlive the test)\n",
                (unsigned long)GetLastError());
    if (job && ResumeThread(pi.hThread) == (DWORD)-1) {
        fprintf(stderr, "ResumeThread failed: %lu\n", (unsigned long)GetLastError());
        TerminateProcess(pi.hProcess, 255);
        CloseHandle(pi.hThread);
        CloseHandle(pi.hProcess);
        return NULL;
    }
    CloseHandle(pi.hThread);
    return pi.hProcess;
}

HANDLE wp_spawn(const char *fmt, ...)
{
    /* One job for the program's life: when the program ends, even through
    ** a failed assertion, Windows closes the job's last handle and ends
    ** every child still running, instead of leaving it to hold the test
    ** runner's output pipe open until the test's timeout. */
    static HANDLE job;
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    if (!job) job = wp_job_new();
    return wp_spawn_in(job, args);
}

int wp_wait(HANDLE p, DWORD ms)
{
    DWORD code = (DWORD)-1;
    if (!p) return -1;
    if (WaitForSingleObject(p, ms) != WAIT_OBJECT_0) {
        TerminateProcess(p, 255);
        WaitForSingleObject(p, 5000);
        CloseHandle(p);
        return -1;
    }
    GetExitCodeProcess(p, &code);
    CloseHandle(p);
    return (int)code;
}

HANDLE wp_event(const char *name)
{
    char full[256];
    snprintf(full, sizeof full, "Local\\%s", name);
    return CreateEventA(NULL, TRUE, FALSE, full);
}

sqlite3 *wp_open_db(void)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK || sqlite3_enable_load_extension(db, 1) ||
        sqlite3_load_extension(db, MMAP_EXT_PATH, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "cannot load %s: %s\n", MMAP_EXT_PATH, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

int wp_exec(sqlite3 *db, int quiet, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK && !quiet) fprintf(stderr, "%s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    sqlite3_free(sql);
    return rc;
}

/* Prepares the formatted query; NULL on failure (message on stderr). */
static sqlite3_stmt *prepare_v(sqlite3 *db, const char *fmt, va_list ap)
{
    char *sql = sqlite3_vmprintf(fmt, ap);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_free(sql);
    return st;
}

int64_t wp_query_int(sqlite3 *db, int64_t dflt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = prepare_v(db, fmt, ap);
    va_end(ap);
    int64_t v = dflt;
    if (st && sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

char *wp_query_text(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = prepare_v(db, fmt, ap);
    va_end(ap);
    char *v = NULL;
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

uint64_t wp_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

int wp_table_digest(sqlite3 *db, const char *tbl, uint64_t *digest, int64_t *rows)
{
    char *sql = sqlite3_mprintf("SELECT quote(key), quote(value) FROM %s ORDER BY key", tbl);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    sqlite3_free(sql);
    uint64_t h = 0xcbf29ce484222325ull;
    *rows = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < 2; c++) {
            const char *t = (const char *)sqlite3_column_text(st, c);
            h = wp_fnv(h, t, strlen(t) + 1);
        }
        ++*rows;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    *digest = h;
    return rc == SQLITE_DONE ? 0 : -1;
}

double wp_now_ms(void)
{
    LARGE_INTEGER f, t;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart * 1000.0 / (double)f.QuadPart;
}

uint64_t wp_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

unsigned wp_pick(uint64_t *s, unsigned n)
{
    return (unsigned)(wp_rand(s) % n);
}

int wp_under_wine(void)
{
    HMODULE ntdll = GetModuleHandleA("ntdll.dll");
    return ntdll && GetProcAddress(ntdll, "wine_get_version") != NULL;
}
