/*
** args.c -- the arguments of CREATE VIRTUAL TABLE t USING mmap(...).
**
**   name='N'     a named shared-memory mapping (1-64 of A-Z a-z 0-9 . _ -)
**   file='PATH'  a mapping backed by the file at PATH
**   size=N[K|M|G] capacity when created (default 1M, 64K to 16G)
**   mode=create|open|new|readonly                      (default create)
**   timeout=MS   how long to wait for the lock         (default 5000)
**   perms=0600   octal permission bits of a new mapping (default 0600)
**   parts=N      parts of a new mapping, 1-64 (default 1): keys of
**                different parts are written under different locks
**
** Values may be bare or quoted with '...' or "..." (a doubled quote inside
** stands for one).  Every error names the argument at fault.
*/
#include "vtab.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

static const char *const arg_names[] = {"name",    "file",  "size", "mode",
                                        "timeout", "perms", "parts"};
enum { A_NAME, A_FILE, A_SIZE, A_MODE, A_TIMEOUT, A_PERMS, A_PARTS, A_COUNT };

/* Returns s with leading and trailing blanks cut, as a length and start. */
static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t' || **s == '\n' || **s == '\r'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\n' ||
                  (*s)[*n - 1] == '\r'))
        (*n)--;
}

/* Returns a new string holding value v (n bytes) without its quotes, or NULL
** if it is badly quoted or out of memory (*bad tells which). */
static char *unquote(const char *v, size_t n, int *bad)
{
    char q = n ? v[0] : 0;
    *bad = 0;
    char *out = sqlite3_malloc64(n + 1);
    if (!out) return NULL;
    if (q != '\'' && q != '"') {
        memcpy(out, v, n);
        out[n] = 0;
        return out;
    }
    size_t j = 0;
    for (size_t i = 1; i < n; i++) {
        if (v[i] == q) {
            if (i + 1 < n && v[i + 1] == q) {
                out[j++] = q;
                i++;
                continue;
            }
            if (i + 1 == n) {
                out[j] = 0;
                return out;
            }
            break;
        }
        out[j++] = v[i];
    }
    sqlite3_free(out);
    *bad = 1;
    return NULL;
}

/* Parses a size with an optional K, M or G suffix.  Returns 0 or -1. */
static int parse_size(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    const char *p = v;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - 9) / 10) return -1;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    unsigned shift = 0;
    if (*p == 'k' || *p == 'K') shift = 10;
    if (*p == 'm' || *p == 'M') shift = 20;
    if (*p == 'g' || *p == 'G') shift = 30;
    if (shift) p++;
    if (*p || (shift && n > (UINT64_MAX >> shift))) return -1;
    *out = n << shift;
    return 0;
}

/* Parses a non-negative decimal integer up to max.  Returns 0 or -1. */
static int parse_uint(const char *v, long long max, long long *out)
{
    long long n = 0;
    if (!*v) return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9') return -1;
        n = n * 10 + (*v - '0');
        if (n > max) return -1;
    }
    *out = n;
    return 0;
}

/* Parses octal permission bits.  Returns 0 or -1. */
static int parse_perms(const char *v, unsigned *out)
{
    unsigned n = 0;
    if (!*v) return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '7') return -1;
        n = n * 8 + (unsigned)(*v - '0');
        if (n > 0777) return -1;
    }
    *out = n;
    return 0;
}

/* Parses a mode word.  Returns 0 or -1. */
static int parse_mode(const char *v, int *out)
{
    static const char *const modes[] = {"create", "open", "new", "readonly"};
    for (int i = 0; i < 4; i++)
        if (sqlite3_stricmp(v, modes[i]) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

/* Stores value v of argument a into *o.  Returns 0, or -1 if malformed. */
static int apply(int a, char *v, mmkv_options *o)
{
    long long t;
    switch (a) {
    case A_NAME:
        o->name = v;
        return 0;
    case A_FILE:
        o->file = v;
        return 0;
    case A_SIZE:
        return parse_size(v, &o->size);
    case A_MODE:
        return parse_mode(v, &o->mode);
    case A_TIMEOUT:
        if (parse_uint(v, 2147483647LL, &t)) return -1;
        o->timeout_ms = (int)t;
        return 0;
    case A_PARTS:
        if (parse_uint(v, 64, &t) || t < 1) return -1;
        o->parts = (unsigned)t;
        return 0;
    default:
        return parse_perms(v, &o->perms);
    }
}

/* Finds the argument called name (n bytes).  Returns its index or -1. */
static int find_arg(const char *name, size_t n)
{
    for (int i = 0; i < A_COUNT; i++)
        if (strlen(arg_names[i]) == n && sqlite3_strnicmp(name, arg_names[i], (int)n) == 0)
            return i;
    return -1;
}

/* Parses one "key=value" argument.  Returns SQLITE_OK or an error code with
** *err set. */
static int parse_one(const char *arg, mmkv_options *o, int *seen, char **err)
{
    const char *eq = strchr(arg, '=');
    const char *k = arg, *v;
    size_t kn, vn;
    if (!eq) {
        *err = sqlite3_mprintf("mmap: argument '%s' is not of the form key=value", arg);
        return SQLITE_ERROR;
    }
    kn = (size_t)(eq - arg);
    trim(&k, &kn);
    v = eq + 1;
    vn = strlen(v);
    trim(&v, &vn);
    int a = find_arg(k, kn);
    if (a < 0) {
        *err = sqlite3_mprintf("mmap: unknown argument '%.*s' (known: name, file, size, mode, "
                               "timeout, perms, parts)",
                               (int)kn, k);
        return SQLITE_ERROR;
    }
    if (seen[a]++) {
        *err = sqlite3_mprintf("mmap: argument '%s' given twice", arg_names[a]);
        return SQLITE_ERROR;
    }
    int bad;
    char *val = unquote(v, vn, &bad);
    if (!val) {
        if (!bad) return SQLITE_NOMEM;
        *err =
            sqlite3_mprintf("mmap: bad quoting in the value of %s: %.*s", arg_names[a], (int)vn, v);
        return SQLITE_ERROR;
    }
    if (apply(a, val, o) != 0) {
        static const char *const want[] = {"",
                                           "",
                                           "a number of bytes with an optional K, M or G suffix",
                                           "create, open, new or readonly",
                                           "milliseconds, a whole number from 0",
                                           "octal permission bits such as 0600",
                                           "a whole number from 1 to 64"};
        *err = sqlite3_mprintf("mmap: bad value for %s: '%s' (expected %s)", arg_names[a], val,
                               want[a]);
        sqlite3_free(val);
        return SQLITE_ERROR;
    }
    if (a != A_NAME && a != A_FILE) sqlite3_free(val);
    return SQLITE_OK;
}

int mm_parse_args(int argc, const char *const *argv, mmkv_options *o, char **err)
{
    int seen[A_COUNT] = {0};
    *o = mmkv_default_options();
    *err = NULL;
    for (int i = 3; i < argc; i++) {
        int rc = parse_one(argv[i], o, seen, err);
        if (rc != SQLITE_OK) {
            mm_free_options(o);
            return rc;
        }
    }
    if (!o->name == !o->file) {
        *err = sqlite3_mprintf("mmap: give exactly one of name= and file=");
        mm_free_options(o);
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

void mm_free_options(mmkv_options *o)
{
    sqlite3_free((char *)o->name);
    sqlite3_free((char *)o->file);
    o->name = o->file = NULL;
}
