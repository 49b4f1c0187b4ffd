/*
** compat.h -- the POSIX calls that the portable tests use and MinGW-w64 lacks
** (mkdtemp, rand_r).  tests/win/CMakeLists.txt force-includes it (-include) into the
** shared test sources it builds for Windows; nothing else includes it.
*/
#ifndef MMKV_WIN_COMPAT_H
#define MMKV_WIN_COMPAT_H
#ifdef _WIN32
#include <direct.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

/* Creates the parent directories of path (as _mkdir would need them). */
static inline void compat_make_parents(const char *path)
{
    char buf[MAX_PATH];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/' && *p != '\\') continue;
        char c = *p;
        *p = 0;
        _mkdir(buf);
        *p = c;
    }
}

/* mkdtemp(3): replaces the trailing XXXXXX of tmpl and creates that
** directory.  Returns tmpl, or NULL with errno set.  A POSIX path such as
** "/tmp/x" names \tmp\x on the current drive (under Wine with a Unix working
** directory: the Unix /tmp); missing parents are created. */
static inline char *mkdtemp(char *tmpl)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = strlen(tmpl);
    if (n < 6 || strcmp(tmpl + n - 6, "XXXXXX") != 0) {
        errno = EINVAL;
        return NULL;
    }
    compat_make_parents(tmpl);
    LARGE_INTEGER t;
    QueryPerformanceCounter(&t);
    unsigned long long r =
        (unsigned long long)t.QuadPart ^ ((unsigned long long)GetCurrentProcessId() << 20);
    for (int tries = 0; tries < 100; tries++) {
        for (int i = 0; i < 6; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            tmpl[n - 6 + i] = abc[(r >> 33) % (sizeof abc - 1)];
        }
        if (_mkdir(tmpl) == 0) return tmpl;
        if (errno != EEXIST) return NULL;
    }
    return NULL;
}

/* rand_r(3): the POSIX reentrant PRNG (the same recurrence as glibc's). */
static inline int rand_r(unsigned int *seed)
{
    unsigned int next = *seed;
    int result;
    next = next * 1103515245u + 12345u;
    result = (int)((next / 65536u) % 2048u);
    next = next * 1103515245u + 12345u;
    result = (int)((unsigned)(result << 10) ^ ((next / 65536u) % 1024u));
    next = next * 1103515245u + 12345u;
    result = (int)((unsigned)(result << 10) ^ ((next / 65536u) % 1024u));
    *seed = next;
    return result;
}
#endif
#endif
