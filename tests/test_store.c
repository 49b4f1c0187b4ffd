/*
** test_store.c -- cmocka unit tests of the store's public API (src/mmkv.h).
**
** Covers: open modes (create/open/new/readonly), the name rule, size
** limits, bit-exact round trips of every value type, key identity (text vs
** blob, empty keys, embedded NULs), insert vs replace, delete, scans,
** statistics, transactions (rollback, marks, commit, visibility to a second
** handle), MMKV_FULL leaving the store unchanged, reuse of freed space,
** index growth to 100,000 entries, size limits of keys and values, read-only
** handles that never write, file-backed stores, files and named mappings
** that are not stores (never changed, never a crash), a model-checked random
** workload, and deliberate damage to a live mapping (reported as
** MMKV_CORRUPT or by mmkv_check, never a crash).
**
** Portable: the same tests run on Linux (tests/unit.cmake) and, built with
** MinGW-w64, under Wine (win_test_store, tests/win/CMakeLists.txt, with
** tests/win/compat.h for mkdtemp).  The few places that must see a named
** mapping's operating-system object (does it exist, its bytes, a second
** view of it) go through the "Platform helpers" below: /dev/shm on Linux,
** the section Local\sqlite-mmap.<name> on Windows.  The tests that need
** fork() or POSIX mode bits are in tests/test_store_posix.c, which
** includes this file with MMKV_TEST_STORE_HELPERS_ONLY defined to share the
** helpers and fixtures (everything before "Tests" below).
**
** The damage tests use the on-mapping layout from src/store_int.h to aim at
** the header, the index, record headers and the free lists.
*/
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <sys/mman.h>
#endif

#ifndef O_BINARY
#define O_BINARY 0 /* Windows: no CR/LF translation in read_all/write_all */
#endif

#include "mmkv.h"
#include "store_int.h"

#define SIZE_64K ((uint64_t)64 * 1024)
#define SIZE_1M ((uint64_t)1024 * 1024)
#define SIZE_16M ((uint64_t)16 * 1024 * 1024)

/* ------------------------------------------------------------------ */
/* Helpers: names, opening, keys and values                            */
/* ------------------------------------------------------------------ */

static int name_counter;

/* Per-test state: a unique mapping name, maybe an open 1 MiB store on it,
** and a temp dir with a file path for file-backed stores. */
typedef struct fixture {
    char name[64];
    mmkv *s;
    char dir[64];
    char file[128];
} fixture;

/* Opens a store on `name` or `file`; returns the rc.  On failure asserts
** that *out is NULL; the error message (if any) goes to *msg (caller frees)
** or is freed when msg is NULL. */
static int try_open_ex(const char *name, const char *file, uint64_t size, int mode, int timeout_ms,
                       mmkv **out, char **msg)
{
    mmkv_options o = mmkv_default_options();
    char *err = NULL;
    o.name = name;
    o.file = file;
    o.size = size;
    o.mode = mode;
    o.timeout_ms = timeout_ms;
    *out = (mmkv *)&o; /* garbage, to see it reset */
    int rc = mmkv_open(&o, out, &err);
    if (rc != MMKV_OK) assert_null(*out);
    if (msg)
        *msg = err;
    else
        free(err);
    return rc;
}

static int try_open(const char *name, uint64_t size, int mode, mmkv **out)
{
    return try_open_ex(name, NULL, size, mode, 1000, out, NULL);
}

/* Opens a store and fails the test if that does not work. */
static mmkv *open_ok_ex(const char *name, const char *file, uint64_t size, int mode, int timeout_ms)
{
    mmkv *s = NULL;
    char *msg = NULL;
    int rc = try_open_ex(name, file, size, mode, timeout_ms, &s, &msg);
    if (rc != MMKV_OK) fail_msg("mmkv_open(%s) = %d: %s", name ? name : file, rc, msg);
    assert_non_null(s);
    return s;
}

static mmkv *open_ok(const char *name, uint64_t size, int mode)
{
    return open_ok_ex(name, NULL, size, mode, 1000);
}

static mmkv_key k_text(const void *p, uint32_t n)
{
    return (mmkv_key){MMKV_TEXT, p, n};
}
static mmkv_key k_blob(const void *p, uint32_t n)
{
    return (mmkv_key){MMKV_BLOB, p, n};
}

static mmkv_value v_null(void)
{
    return (mmkv_value){.type = MMKV_NULL};
}
static mmkv_value v_int(int64_t i)
{
    return (mmkv_value){.type = MMKV_INT, .i = i};
}
static mmkv_value v_real(double r)
{
    return (mmkv_value){.type = MMKV_REAL, .r = r};
}
static mmkv_value v_text(const void *p, uint32_t n)
{
    return (mmkv_value){.type = MMKV_TEXT, .p = p, .n = n};
}
static mmkv_value v_blob(const void *p, uint32_t n)
{
    return (mmkv_value){.type = MMKV_BLOB, .p = p, .n = n};
}

/* A real value with exactly the given 64 bits. */
static mmkv_value v_real_bits(uint64_t bits)
{
    mmkv_value v = {.type = MMKV_REAL};
    memcpy(&v.r, &bits, sizeof bits);
    return v;
}

/* Returns the 64 bits of a double. */
static uint64_t bits_of(double r)
{
    uint64_t b;
    memcpy(&b, &r, sizeof b);
    return b;
}

/* Returns non-zero if a and b are the same value, bit for bit. */
static int value_same(const mmkv_value *a, const mmkv_value *b)
{
    if (a->type != b->type) return 0;
    switch (a->type) {
    case MMKV_NULL:
        return 1;
    case MMKV_INT:
        return a->i == b->i;
    case MMKV_REAL:
        return bits_of(a->r) == bits_of(b->r);
    default:
        return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
    }
}

/* Puts and fails the test (with the store's message) unless it works. */
static void put_ok(mmkv *s, const mmkv_key *k, const mmkv_value *v, int flags)
{
    int rc = mmkv_put(s, k, v, flags);
    if (rc != MMKV_OK) fail_msg("mmkv_put = %d (%s): %s", rc, mmkv_strerror(rc), mmkv_errmsg(s));
}

/* Asserts that key k holds exactly `want`. */
static void expect_entry(mmkv *s, const mmkv_key *k, const mmkv_value *want)
{
    void *buf = NULL;
    size_t bufsz = 0;
    mmkv_value got;
    memset(&got, 0, sizeof got);
    int rc = mmkv_get(s, k, &got, &buf, &bufsz);
    if (rc != MMKV_OK) fail_msg("mmkv_get = %d (%s): %s", rc, mmkv_strerror(rc), mmkv_errmsg(s));
    assert_int_equal(got.type, want->type);
    if (!value_same(&got, want))
        fail_msg("value of type %d differs (n %u vs %u, i %lld vs %lld)", got.type, (unsigned)got.n,
                 (unsigned)want->n, (long long)got.i, (long long)want->i);
    free(buf);
}

/* Asserts that key k is absent. */
static void expect_missing(mmkv *s, const mmkv_key *k)
{
    void *buf = NULL;
    size_t bufsz = 0;
    mmkv_value got;
    assert_int_equal(mmkv_get(s, k, &got, &buf, &bufsz), MMKV_NOTFOUND);
    free(buf);
}

/* Asserts that mmkv_check reports "ok". */
static void expect_check_ok(mmkv *s)
{
    char *report = NULL;
    assert_int_equal(mmkv_check(s, &report), MMKV_OK);
    assert_non_null(report);
    assert_string_equal(report, "ok");
    free(report);
}

/* Returns the entries figure of mmkv_stat. */
static uint64_t entries_of(mmkv *s)
{
    mmkv_stats st;
    assert_int_equal(mmkv_stat(s, &st), MMKV_OK);
    return st.entries;
}

/* Writes the usual test key "k<i>" (zero-padded) into buf. */
static mmkv_key numbered_key(char *buf, size_t n, int i)
{
    int len = snprintf(buf, n, "k%06d", i);
    return k_text(buf, (uint32_t)len);
}

/* Fills buf with n bytes derived from seed (so each entry is recognisable). */
static void pattern(unsigned char *buf, size_t n, uint32_t seed)
{
    for (size_t j = 0; j < n; j++)
        buf[j] = (unsigned char)(seed * 131u + j * 7u + (j >> 8));
}

/* xorshift64*: a small deterministic generator, so failures repeat. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static uint32_t rnd_below(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

/* Reads a whole file into a malloc'd buffer; *len gets its size. */
static unsigned char *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_BINARY);
    struct stat st;
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    unsigned char *b = malloc((size_t)st.st_size + 1);
    assert_non_null(b);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return b;
}

/* Replaces the contents of a file with n bytes. */
static void write_all(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_BINARY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

/* ------------------------------------------------------------------ */
/* Platform helpers: the operating-system object of a named mapping    */
/* ------------------------------------------------------------------ */

#ifndef _WIN32
/* Linux: the object is the file /dev/shm/sqlite-mmap.<name>. */

/* Writes the /dev/shm path of mapping `name` into out. */
static void shm_file(const char *name, char *out, size_t n)
{
    snprintf(out, n, "/dev/shm/sqlite-mmap.%s", name);
}

/* Returns non-zero if the object of named mapping `name` exists. */
static int mapping_exists(const char *name)
{
    char path[128];
    struct stat st;
    shm_file(name, path, sizeof path);
    return stat(path, &st) == 0;
}

/* Returns a malloc'd copy of the bytes of named mapping `name`; *len gets
** their number. */
static unsigned char *read_mapping(const char *name, size_t *len)
{
    char path[128];
    shm_file(name, path, sizeof path);
    return read_all(path, len);
}

/* Creates the object of named mapping `name` with the n bytes at p as its
** contents, as a program other than the store would.  Returns a token for
** drop_foreign_mapping. */
static void *make_foreign_mapping(const char *name, const void *p, size_t n)
{
    char path[128];
    shm_file(name, path, sizeof path);
    write_all(path, p, n);
    return NULL;
}

/* Ends make_foreign_mapping's hold (nothing to do: the file stays until
** unlinked). */
static void drop_foreign_mapping(void *token)
{
    (void)token;
}

/* Maps named mapping `name` read-write, beside the store's own mapping,
** for tests that damage it.  *len gets its size. */
static unsigned char *map_raw(const char *name, size_t *len)
{
    char path[128];
    struct stat st;
    shm_file(name, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(p != MAP_FAILED);
    *len = (size_t)st.st_size;
    return p;
}

static void unmap_raw(unsigned char *p, size_t len)
{
    munmap(p, len);
}

/* Returns n bytes of address space that read as zeros but are never
** backed by memory (MAP_NORESERVE): a value too large to be copied. */
static void *reserve_untouched(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

static void release_untouched(void *p, size_t n)
{
    munmap(p, n);
}

/* Ends the process (SIGALRM) after `seconds`; 0 cancels. */
static void watchdog(unsigned seconds)
{
    alarm(seconds);
}

#else
/* Windows: the object is the pagefile-backed section
** Local\sqlite-mmap.<name> (Global\ for names starting "Global."), see
** src/os_win.c and WINDOWS.md.  A section lives while some process has a
** handle to it; the store keeps one for every name this process opened
** until mmkv_unlink, so within this process it behaves as on Linux. */

/* Writes the section name of mapping `name` into out. */
static void section_name(const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s\\sqlite-mmap.%s", strncmp(name, "Global.", 7) == 0 ? "Global" : "Local",
             name);
}

/* Returns non-zero if the section of named mapping `name` exists. */
static int mapping_exists(const char *name)
{
    char sec[160];
    section_name(name, sec, sizeof sec);
    HANDLE h = OpenFileMappingA(FILE_MAP_READ, FALSE, sec);
    if (h) {
        CloseHandle(h);
        return 1;
    }
    return GetLastError() == ERROR_ACCESS_DENIED;
}

/* Maps the whole section of `name` (access FILE_MAP_READ or FILE_MAP_WRITE);
** *len gets the view's size. */
static unsigned char *map_section(const char *name, DWORD access, size_t *len)
{
    char sec[160];
    MEMORY_BASIC_INFORMATION mi;
    section_name(name, sec, sizeof sec);
    HANDLE h = OpenFileMappingA(access == FILE_MAP_WRITE ? FILE_MAP_READ | FILE_MAP_WRITE : access,
                                FALSE, sec);
    if (!h) fail_msg("OpenFileMapping(%s): error %lu", sec, (unsigned long)GetLastError());
    void *p = MapViewOfFile(h, access, 0, 0, 0);
    DWORD e = GetLastError();
    CloseHandle(h); /* the view keeps the section */
    if (!p) fail_msg("MapViewOfFile(%s): error %lu", sec, (unsigned long)e);
    assert_true(VirtualQuery(p, &mi, sizeof mi) == sizeof mi);
    *len = mi.RegionSize;
    return p;
}

static unsigned char *read_mapping(const char *name, size_t *len)
{
    unsigned char *view = map_section(name, FILE_MAP_READ, len);
    unsigned char *b = malloc(*len + 1);
    assert_non_null(b);
    memcpy(b, view, *len);
    UnmapViewOfFile(view);
    return b;
}

/* The section made here lives while the returned handle is open (a section
** disappears with its last handle): drop_foreign_mapping closes it. */
static void *make_foreign_mapping(const char *name, const void *p, size_t n)
{
    char sec[160];
    section_name(name, sec, sizeof sec);
    HANDLE h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, (DWORD)n, sec);
    if (!h) fail_msg("CreateFileMapping(%s): error %lu", sec, (unsigned long)GetLastError());
    assert_int_not_equal(GetLastError(), ERROR_ALREADY_EXISTS);
    void *view = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0);
    assert_non_null(view);
    memcpy(view, p, n);
    UnmapViewOfFile(view);
    return h;
}

static void drop_foreign_mapping(void *token)
{
    CloseHandle((HANDLE)token);
}

static unsigned char *map_raw(const char *name, size_t *len)
{
    return map_section(name, FILE_MAP_WRITE, len);
}

static void unmap_raw(unsigned char *p, size_t len)
{
    (void)len;
    UnmapViewOfFile(p);
}

/* Reserved address space, never committed: any read of it would fault, so
** here a store that touched the bytes would crash the test. */
static void *reserve_untouched(size_t n)
{
    void *p = VirtualAlloc(NULL, n, MEM_RESERVE, PAGE_NOACCESS);
    assert_non_null(p);
    return p;
}

static void release_untouched(void *p, size_t n)
{
    (void)n;
    VirtualFree(p, 0, MEM_RELEASE);
}

/* The watchdog: a thread that ends the process unless its event is set in
** time (Windows has no alarm()). */
typedef struct watchdog_arg {
    HANDLE cancel;
    DWORD ms;
} watchdog_arg;

static watchdog_arg *watchdog_now;

static DWORD WINAPI watchdog_thread(LPVOID p)
{
    watchdog_arg *w = p;
    if (WaitForSingleObject(w->cancel, w->ms) == WAIT_TIMEOUT) {
        fprintf(stderr, "watchdog: test still running after %lu ms\n", (unsigned long)w->ms);
        fflush(stderr);
        ExitProcess(3);
    }
    CloseHandle(w->cancel);
    free(w);
    return 0;
}

/* Ends the process after `seconds`; 0 cancels. */
static void watchdog(unsigned seconds)
{
    if (watchdog_now) SetEvent(watchdog_now->cancel);
    watchdog_now = NULL;
    if (seconds == 0) return;
    watchdog_arg *w = malloc(sizeof *w);
    assert_non_null(w);
    w->cancel = CreateEventA(NULL, TRUE, FALSE, NULL);
    w->ms = seconds * 1000u;
    assert_non_null(w->cancel);
    HANDLE t = CreateThread(NULL, 0, watchdog_thread, w, 0, NULL);
    assert_non_null(t);
    CloseHandle(t);
    watchdog_now = w;
}
#endif

/* ------------------------------------------------------------------ */
/* Scans into a sorted snapshot                                        */
/* ------------------------------------------------------------------ */

typedef struct entry {
    int ktype;
    unsigned char *k;
    uint32_t kn;
    mmkv_value v;
    unsigned char *vbuf;
} entry;

typedef struct snapshot {
    entry *e;
    size_t n, cap;
} snapshot;

/* Scan callback: appends a deep copy of the entry to the snapshot. */
static int collect_cb(void *ctx, const mmkv_key *k, const mmkv_value *v)
{
    snapshot *sn = ctx;
    if (sn->n == sn->cap) {
        sn->cap = sn->cap ? 2 * sn->cap : 64;
        sn->e = realloc(sn->e, sn->cap * sizeof *sn->e);
        if (!sn->e) return -1;
    }
    entry *e = &sn->e[sn->n++];
    e->ktype = k->type;
    e->kn = k->n;
    e->k = malloc(k->n + 1);
    if (k->n) memcpy(e->k, k->p, k->n);
    e->v = *v;
    e->vbuf = NULL;
    if (v->type == MMKV_TEXT || v->type == MMKV_BLOB) {
        e->vbuf = malloc(v->n + 1);
        if (v->n) memcpy(e->vbuf, v->p, v->n);
        e->v.p = e->vbuf;
    }
    return 0;
}

/* Orders entries by key type, then key length, then key bytes. */
static int entry_cmp(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->ktype != y->ktype) return x->ktype < y->ktype ? -1 : 1;
    if (x->kn != y->kn) return x->kn < y->kn ? -1 : 1;
    return x->kn ? memcmp(x->k, y->k, x->kn) : 0;
}

/* Scans the whole store into a sorted snapshot. */
static snapshot take_snapshot(mmkv *s)
{
    snapshot sn = {0};
    int rc = mmkv_scan(s, collect_cb, &sn);
    if (rc != MMKV_OK) fail_msg("mmkv_scan = %d: %s", rc, mmkv_errmsg(s));
    if (sn.n) qsort(sn.e, sn.n, sizeof *sn.e, entry_cmp);
    return sn;
}

static void free_snapshot(snapshot *sn)
{
    for (size_t i = 0; i < sn->n; i++) {
        free(sn->e[i].k);
        free(sn->e[i].vbuf);
    }
    free(sn->e);
    memset(sn, 0, sizeof *sn);
}

/* Asserts that two snapshots hold the same keys with the same values. */
static void expect_same_snapshot(const snapshot *a, const snapshot *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(entry_cmp(&a->e[i], &b->e[i]), 0);
        if (!value_same(&a->e[i].v, &b->e[i].v)) fail_msg("value of entry %zu differs", i);
    }
}

/* The value fill_mixed gives entry i (TEXT/BLOB bytes written into vb). */
static mmkv_value mixed_value(int i, char *vb, size_t n)
{
    int len = snprintf(vb, n, "value-%d", i);
    return i % 3 == 0   ? v_int(i)
           : i % 3 == 1 ? v_text(vb, (uint32_t)len)
                        : v_blob(vb, (uint32_t)len);
}

/* Fills a store with n entries "k<i>" of mixed types. */
static void fill_mixed(mmkv *s, int n)
{
    char kb[32], vb[64];
    for (int i = 0; i < n; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = mixed_value(i, vb, sizeof vb);
        put_ok(s, &k, &v, MMKV_PUT_INSERT);
    }
}

/* ------------------------------------------------------------------ */
/* Fixtures                                                            */
/* ------------------------------------------------------------------ */

/* Gives the test a unique mapping name and a temp dir, nothing open. */
static int setup_name(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->name, sizeof f->name, "mst-%ld-%d", (long)getpid(), ++name_counter);
    snprintf(f->dir, sizeof f->dir, "/tmp/mmkv-mst-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->file, sizeof f->file, "%s/store", f->dir);
    *state = f;
    return 0;
}

/* As setup_name, plus a new 1 MiB store on the name in f->s. */
static int setup_store(void **state)
{
    if (setup_name(state) != 0) return -1;
    fixture *f = *state;
    mmkv_options o = mmkv_default_options();
    o.name = f->name;
    o.mode = MMKV_MODE_NEW;
    return mmkv_open(&o, &f->s, NULL) == MMKV_OK ? 0 : -1;
}

/* Closes the store, removes the mapping, the file and the temp dir. */
static int teardown(void **state)
{
    fixture *f = *state;
    char copy[160];
    if (f->s) mmkv_close(f->s);
    mmkv_unlink(f->name);
    unlink(f->file);
    snprintf(copy, sizeof copy, "%s.copy", f->file);
    unlink(copy);
    rmdir(f->dir);
    free(f);
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_name, teardown)
#define TS(fn) cmocka_unit_test_setup_teardown(fn, setup_store, teardown)

/* ================================================================== */
/* Tests (left out when test_store_posix.c includes this file)        */
/* ================================================================== */
/* Opens the mapping `name`, or else the file `path`, in every mode; each must fail
** with one of the codes `ok1`/`ok2` and a message naming the problem, and
** leave the bytes as they were. */
static void expect_rejected(const char *name, const char *path, int ok1, int ok2)
{
    const int modes[] = {MMKV_MODE_CREATE, MMKV_MODE_OPEN, MMKV_MODE_READONLY};
    size_t n0, n1;
    unsigned char *before = name ? read_mapping(name, &n0) : read_all(path, &n0);
    for (size_t i = 0; i < 3; i++) {
        mmkv *s;
        char *msg = NULL;
        int rc = try_open_ex(name, name ? NULL : path, SIZE_64K, modes[i], 1000, &s, &msg);
        if (rc != ok1 && rc != ok2) fail_msg("mode %d: open = %d: %s", modes[i], rc, msg);
        assert_non_null(msg);
        if (!strstr(msg, "not an mmap mapping") && !strstr(msg, "format version") &&
            !strstr(msg, "corrupt"))
            fail_msg("mode %d: unclear message: %s", modes[i], msg);
        free(msg);
        unsigned char *after = name ? read_mapping(name, &n1) : read_all(path, &n1);
        assert_int_equal(n1, n0);
        assert_memory_equal(after, before, n0);
        free(after);
    }
    free(before);
}

#ifndef MMKV_TEST_STORE_HELPERS_ONLY

/* ------------------------------------------------------------------ */
/* Small API pieces                                                    */
/* ------------------------------------------------------------------ */

static void test_store_default_options_are_as_documented(void **state)
{
    (void)state;
    mmkv_options o = mmkv_default_options();
    assert_null(o.name);
    assert_null(o.file);
    assert_int_equal(o.size, MMKV_DEFAULT_SIZE);
    assert_int_equal(o.mode, MMKV_MODE_CREATE);
    assert_int_equal(o.timeout_ms, 5000);
    assert_int_equal(o.perms, 0600);
}

static void test_store_text_key_borrows_the_string(void **state)
{
    (void)state;
    const char *s = "hello";
    mmkv_key k = mmkv_text_key(s);
    assert_int_equal(k.type, MMKV_TEXT);
    assert_ptr_equal(k.p, s);
    assert_int_equal(k.n, 5);
}

static void test_store_strerror_names_every_code_distinctly(void **state)
{
    (void)state;
    assert_non_null(strstr(mmkv_strerror(MMKV_BUSY), "busy"));
    for (int a = MMKV_OK; a <= MMKV_IOERR; a++) {
        assert_non_null(mmkv_strerror(a));
        assert_true(strlen(mmkv_strerror(a)) > 0);
        for (int b = MMKV_OK; b < a; b++)
            assert_string_not_equal(mmkv_strerror(a), mmkv_strerror(b));
    }
}

static void test_store_errmsg_is_set_by_an_error_and_cleared_by_success(void **state)
{
    fixture *f = *state;
    mmkv_key k = mmkv_text_key("absent");
    assert_int_equal(mmkv_del(f->s, &k), MMKV_NOTFOUND);
    assert_true(strlen(mmkv_errmsg(f->s)) > 0);
    mmkv_value v = v_int(1);
    put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    assert_string_equal(mmkv_errmsg(f->s), "");
}

static void test_store_location_names_the_mapping_or_the_file(void **state)
{
    fixture *f = *state;
    int is_file = -1;
    assert_string_equal(mmkv_location(f->s, &is_file), f->name);
    assert_int_equal(is_file, 0);
    mmkv *fs = open_ok_ex(NULL, f->file, SIZE_64K, MMKV_MODE_CREATE, 1000);
    assert_string_equal(mmkv_location(fs, &is_file), f->file);
    assert_int_equal(is_file, 1);
    mmkv_close(fs);
}

/* ------------------------------------------------------------------ */
/* Open modes, names, sizes                                            */
/* ------------------------------------------------------------------ */

static void test_store_create_mode_creates_a_missing_mapping(void **state)
{
    fixture *f = *state;
    mmkv_stats st;
    assert_false(mapping_exists(f->name));
    mmkv *s = open_ok(f->name, 2 * SIZE_64K, MMKV_MODE_CREATE);
    assert_true(mapping_exists(f->name));
    assert_int_equal(mmkv_stat(s, &st), MMKV_OK);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.capacity, 2 * SIZE_64K);
    assert_int_equal(st.format, MMKV_FORMAT_VERSION);
    expect_check_ok(s);
    mmkv_close(s);
}

static void test_store_create_mode_opens_an_existing_mapping_with_its_entries(void **state)
{
    fixture *f = *state;
    mmkv_key k = mmkv_text_key("a");
    mmkv_value v = v_int(42);
    put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    mmkv_close(f->s);
    f->s = open_ok(f->name, SIZE_64K, MMKV_MODE_CREATE);
    expect_entry(f->s, &k, &v);
    mmkv_stats st;
    assert_int_equal(mmkv_stat(f->s, &st), MMKV_OK);
    assert_int_equal(st.capacity, SIZE_1M); /* the size is the mapping's, not the option's */
}

static void test_store_open_mode_on_a_missing_mapping_fails_with_cantopen(void **state)
{
    fixture *f = *state;
    mmkv *s;
    char *msg = NULL;
    assert_int_equal(try_open_ex(f->name, NULL, SIZE_1M, MMKV_MODE_OPEN, 1000, &s, &msg),
                     MMKV_CANTOPEN);
    assert_non_null(msg);
    assert_non_null(strstr(msg, f->name));
    free(msg);
    assert_false(mapping_exists(f->name));
}

static void test_store_open_mode_opens_an_existing_mapping(void **state)
{
    fixture *f = *state;
    mmkv_key k = mmkv_text_key("a");
    mmkv_value v = v_text("x", 1);
    put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    mmkv *s = open_ok(f->name, SIZE_64K, MMKV_MODE_OPEN);
    expect_entry(s, &k, &v);
    mmkv_close(s);
}

static void test_store_new_mode_on_an_existing_mapping_fails_with_cantopen(void **state)
{
    fixture *f = *state;
    mmkv *s;
    char *msg = NULL;
    mmkv_key k = mmkv_text_key("a");
    mmkv_value v = v_int(7);
    put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    assert_int_equal(try_open_ex(f->name, NULL, SIZE_1M, MMKV_MODE_NEW, 1000, &s, &msg),
                     MMKV_CANTOPEN);
    assert_non_null(msg);
    assert_non_null(strstr(msg, f->name));
    free(msg);
    /* The existing mapping is untouched. */
    expect_entry(f->s, &k, &v);
    assert_int_equal(entries_of(f->s), 1);
}

static void test_store_new_mode_creates_a_missing_mapping(void **state)
{
    fixture *f = *state;
    mmkv *s = open_ok(f->name, SIZE_64K, MMKV_MODE_NEW);
    assert_true(mapping_exists(f->name));
    assert_int_equal(entries_of(s), 0);
    mmkv_close(s);
}

static void test_store_readonly_mode_on_a_missing_mapping_fails_with_cantopen(void **state)
{
    fixture *f = *state;
    mmkv *s;
    assert_int_equal(try_open(f->name, SIZE_1M, MMKV_MODE_READONLY, &s), MMKV_CANTOPEN);
    assert_false(mapping_exists(f->name));
}

static void test_store_open_with_a_bad_name_fails_with_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"", ".hidden", "a/b", "a b", "sp\xc3\xa9"};
    mmkv *s;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(try_open(bad[i], SIZE_64K, MMKV_MODE_CREATE, &s), MMKV_INVALID);
        if (bad[i][0] && !strchr(bad[i], '/')) assert_false(mapping_exists(bad[i]));
    }
}

static void test_store_open_needs_exactly_one_of_name_and_file(void **state)
{
    fixture *f = *state;
    mmkv *s;
    assert_int_equal(try_open_ex(NULL, NULL, SIZE_64K, MMKV_MODE_CREATE, 1000, &s, NULL),
                     MMKV_INVALID);
    assert_int_equal(try_open_ex(f->name, f->file, SIZE_64K, MMKV_MODE_CREATE, 1000, &s, NULL),
                     MMKV_INVALID);
    assert_false(mapping_exists(f->name));
    assert_int_not_equal(access(f->file, F_OK), 0);
}

static void test_store_open_with_an_unknown_mode_fails_with_invalid(void **state)
{
    fixture *f = *state;
    mmkv *s;
    assert_int_equal(try_open(f->name, SIZE_64K, 99, &s), MMKV_INVALID);
    assert_int_equal(try_open(f->name, SIZE_64K, -1, &s), MMKV_INVALID);
    assert_false(mapping_exists(f->name));
}

static void test_store_sizes_below_64k_or_above_16g_are_invalid(void **state)
{
    fixture *f = *state;
    mmkv *s;
    assert_int_equal(try_open(f->name, MMKV_MIN_SIZE - 1, MMKV_MODE_CREATE, &s), MMKV_INVALID);
    assert_int_equal(try_open(f->name, 4096, MMKV_MODE_CREATE, &s), MMKV_INVALID);
    assert_int_equal(try_open(f->name, MMKV_MAX_SIZE + 1, MMKV_MODE_CREATE, &s), MMKV_INVALID);
    assert_int_equal(try_open(f->name, UINT64_MAX, MMKV_MODE_CREATE, &s), MMKV_INVALID);
    assert_false(mapping_exists(f->name));
    s = open_ok(f->name, MMKV_MIN_SIZE, MMKV_MODE_CREATE);
    mmkv_stats st;
    assert_int_equal(mmkv_stat(s, &st), MMKV_OK);
    assert_int_equal(st.capacity, MMKV_MIN_SIZE);
    mmkv_close(s);
}

static void test_store_check_name_accepts_lengths_1_and_64(void **state)
{
    (void)state;
    char n64[65];
    memset(n64, 'a', 64);
    n64[64] = 0;
    assert_int_equal(mmkv_check_name("a"), MMKV_OK);
    assert_int_equal(mmkv_check_name(n64), MMKV_OK);
}

static void test_store_check_name_rejects_lengths_0_and_65(void **state)
{
    (void)state;
    char n65[66];
    memset(n65, 'a', 65);
    n65[65] = 0;
    assert_int_equal(mmkv_check_name(""), MMKV_INVALID);
    assert_int_equal(mmkv_check_name(n65), MMKV_INVALID);
}

static void test_store_check_name_accepts_letters_digits_dot_dash_underscore(void **state)
{
    (void)state;
    assert_int_equal(mmkv_check_name("AZaz09._-"), MMKV_OK);
    assert_int_equal(mmkv_check_name("a."), MMKV_OK);
    assert_int_equal(mmkv_check_name("a..b"), MMKV_OK);
    assert_int_equal(mmkv_check_name("-x"), MMKV_OK);
    assert_int_equal(mmkv_check_name("_"), MMKV_OK);
    assert_int_equal(mmkv_check_name("0"), MMKV_OK);
}

static void test_store_check_name_rejects_other_characters(void **state)
{
    (void)state;
    const char *bad[] = {"a/b", "/a",          "a b", "a\\b", "a:b", "a*",   "a\n",
                         "a\t", "caf\xc3\xa9", "a+b", "a%b",  "a~",  "a\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (mmkv_check_name(bad[i]) != MMKV_INVALID) fail_msg("accepted bad name #%zu", i);
    }
}

static void test_store_check_name_rejects_a_leading_dot(void **state)
{
    (void)state;
    assert_int_equal(mmkv_check_name("."), MMKV_INVALID);
    assert_int_equal(mmkv_check_name(".."), MMKV_INVALID);
    assert_int_equal(mmkv_check_name(".a"), MMKV_INVALID);
}

static void test_store_unlink_reports_whether_the_mapping_existed(void **state)
{
    fixture *f = *state;
    mmkv_close(f->s);
    f->s = NULL;
    assert_int_equal(mmkv_unlink(f->name), MMKV_OK);
    assert_false(mapping_exists(f->name));
    assert_int_equal(mmkv_unlink(f->name), MMKV_NOTFOUND);
    assert_int_equal(mmkv_unlink("../etc"), MMKV_INVALID);
    assert_int_equal(mmkv_unlink(""), MMKV_INVALID);
}

/* ------------------------------------------------------------------ */
/* Values and keys                                                     */
/* ------------------------------------------------------------------ */

static void test_store_null_value_round_trips(void **state)
{
    fixture *f = *state;
    mmkv_key k = mmkv_text_key("n");
    mmkv_value v = v_null();
    put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    expect_entry(f->s, &k, &v);
}

static void test_store_integer_values_round_trip_including_min_and_max(void **state)
{
    fixture *f = *state;
    const int64_t vals[] = {
        0,         1,         -1,           255, -256, INT32_MAX, (int64_t)INT32_MIN - 1,
        INT64_MAX, INT64_MIN, INT64_MIN + 1};
    char kb[32];
    for (int i = 0; i < (int)(sizeof vals / sizeof vals[0]); i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int(vals[i]);
        put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    }
    for (int i = 0; i < (int)(sizeof vals / sizeof vals[0]); i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int(vals[i]);
        expect_entry(f->s, &k, &v);
    }
}

/* Reals keep all 64 bits: the sign of zero and NaN payloads included. */
static void test_store_real_values_round_trip_bit_exact(void **state)
{
    fixture *f = *state;
    const uint64_t bits[] = {
        0x0000000000000000ull, /* 0.0 */
        0x8000000000000000ull, /* -0.0 */
        0x7ff8000000000000ull, /* quiet NaN */
        0x7ff800000000beefull, /* quiet NaN with payload */
        0xfff8000000000001ull, /* negative NaN with payload */
        0x7ff0000000000001ull, /* signalling NaN */
        0x7ff0000000000000ull, /* +inf */
        0xfff0000000000000ull, /* -inf */
        0x0000000000000001ull, /* smallest subnormal */
        0x7fefffffffffffffull, /* DBL_MAX */
        0x3fd5555555555555ull, /* 1/3 */
    };
    char kb[32];
    for (int i = 0; i < (int)(sizeof bits / sizeof bits[0]); i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_real_bits(bits[i]);
        put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    }
    for (int i = 0; i < (int)(sizeof bits / sizeof bits[0]); i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        void *buf = NULL;
        size_t bufsz = 0;
        mmkv_value got;
        assert_int_equal(mmkv_get(f->s, &k, &got, &buf, &bufsz), MMKV_OK);
        assert_int_equal(got.type, MMKV_REAL);
        assert_int_equal(bits_of(got.r), bits[i]);
        free(buf);
    }
}

static void test_store_text_values_round_trip_with_embedded_nul_and_empty(void **state)
{
    fixture *f = *state;
    mmkv_key k1 = mmkv_text_key("t1"), k2 = mmkv_text_key("t2"), k3 = mmkv_text_key("t3");
    mmkv_value v1 = v_text("a\0b\0", 4), v2 = v_text("", 0), v3 = v_text("\0", 1);
    put_ok(f->s, &k1, &v1, MMKV_PUT_INSERT);
    put_ok(f->s, &k2, &v2, MMKV_PUT_INSERT);
    put_ok(f->s, &k3, &v3, MMKV_PUT_INSERT);
    expect_entry(f->s, &k1, &v1);
    expect_entry(f->s, &k2, &v2);
    expect_entry(f->s, &k3, &v3);
}

/* An empty blob may come with a NULL pointer, as SQLite gives it. */
static void test_store_blob_values_round_trip_including_empty_and_large(void **state)
{
    fixture *f = *state;
    unsigned char all[256];
    unsigned char *big = malloc(100000);
    assert_non_null(big);
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    pattern(big, 100000, 3);
    mmkv_key k1 = mmkv_text_key("b1"), k2 = mmkv_text_key("b2"), k3 = mmkv_text_key("b3"),
             k4 = mmkv_text_key("b4");
    mmkv_value v1 = v_blob(all, 256), v2 = v_blob(NULL, 0), v3 = v_blob(big, 100000),
               v4 = v_blob("", 0);
    put_ok(f->s, &k1, &v1, MMKV_PUT_INSERT);
    put_ok(f->s, &k2, &v2, MMKV_PUT_INSERT);
    put_ok(f->s, &k3, &v3, MMKV_PUT_INSERT);
    put_ok(f->s, &k4, &v4, MMKV_PUT_INSERT);
    expect_entry(f->s, &k1, &v1);
    expect_entry(f->s, &k2, &v2);
    expect_entry(f->s, &k3, &v3);
    expect_entry(f->s, &k4, &v4);
    free(big);
}

static void test_store_text_and_blob_values_keep_their_type(void **state)
{
    fixture *f = *state;
    mmkv_key kt = mmkv_text_key("t"), kb = mmkv_text_key("b");
    mmkv_value vt = v_text("abc", 3), vb = v_blob("abc", 3);
    put_ok(f->s, &kt, &vt, MMKV_PUT_INSERT);
    put_ok(f->s, &kb, &vb, MMKV_PUT_INSERT);
    expect_entry(f->s, &kt, &vt);
    expect_entry(f->s, &kb, &vb);
}

static void test_store_empty_text_key_and_empty_blob_key_are_distinct(void **state)
{
    fixture *f = *state;
    mmkv_key kt = k_text("", 0), kb = k_blob(NULL, 0);
    mmkv_value vt = v_int(1), vb = v_int(2);
    put_ok(f->s, &kt, &vt, MMKV_PUT_INSERT);
    put_ok(f->s, &kb, &vb, MMKV_PUT_INSERT);
    assert_int_equal(entries_of(f->s), 2);
    expect_entry(f->s, &kt, &vt);
    expect_entry(f->s, &kb, &vb);
    assert_int_equal(mmkv_del(f->s, &kt), MMKV_OK);
    expect_missing(f->s, &kt);
    expect_entry(f->s, &kb, &vb);
}

static void test_store_text_key_and_blob_key_with_the_same_bytes_are_distinct(void **state)
{
    fixture *f = *state;
    mmkv_key kt = k_text("abc", 3), kb = k_blob("abc", 3);
    mmkv_value vt = v_text("text", 4), vb = v_text("blob", 4);
    put_ok(f->s, &kt, &vt, MMKV_PUT_INSERT);
    put_ok(f->s, &kb, &vb, MMKV_PUT_INSERT);
    assert_int_equal(entries_of(f->s), 2);
    expect_entry(f->s, &kt, &vt);
    expect_entry(f->s, &kb, &vb);
    mmkv_value v2 = v_int(9);
    assert_int_equal(mmkv_put(f->s, &kb, &v2, MMKV_PUT_INSERT), MMKV_EXISTS);
    put_ok(f->s, &kb, &v2, MMKV_PUT_REPLACE);
    expect_entry(f->s, &kt, &vt);
    expect_entry(f->s, &kb, &v2);
}

static void test_store_keys_with_embedded_nul_differ_from_their_prefix(void **state)
{
    fixture *f = *state;
    mmkv_key a = k_text("a", 1), anul = k_text("a\0", 2), anulb = k_text("a\0b", 3);
    mmkv_value v1 = v_int(1), v2 = v_int(2), v3 = v_int(3);
    put_ok(f->s, &a, &v1, MMKV_PUT_INSERT);
    put_ok(f->s, &anul, &v2, MMKV_PUT_INSERT);
    put_ok(f->s, &anulb, &v3, MMKV_PUT_INSERT);
    assert_int_equal(entries_of(f->s), 3);
    expect_entry(f->s, &a, &v1);
    expect_entry(f->s, &anul, &v2);
    expect_entry(f->s, &anulb, &v3);
}

/* mmkv_get copies into the caller's buffer, growing it as needed. */
static void test_store_get_grows_the_callers_buffer(void **state)
{
    fixture *f = *state;
    unsigned char *big = malloc(50000);
    assert_non_null(big);
    pattern(big, 50000, 11);
    mmkv_key k = mmkv_text_key("big");
    mmkv_value v = v_blob(big, 50000), got;
    put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    size_t bufsz = 4;
    void *buf = malloc(bufsz);
    assert_int_equal(mmkv_get(f->s, &k, &got, &buf, &bufsz), MMKV_OK);
    assert_true(bufsz >= 50000);
    assert_true((const char *)got.p >= (char *)buf &&
                (const char *)got.p + got.n <= (char *)buf + bufsz);
    assert_true(value_same(&got, &v));
    free(buf);
    free(big);
}

static void test_store_get_of_a_missing_key_fails_with_notfound(void **state)
{
    fixture *f = *state;
    mmkv_key k = mmkv_text_key("nope");
    expect_missing(f->s, &k);
}

static void test_store_key_of_65535_bytes_is_accepted(void **state)
{
    fixture *f = *state;
    char *kb = malloc(MMKV_MAX_KEY);
    assert_non_null(kb);
    pattern((unsigned char *)kb, MMKV_MAX_KEY, 5);
    mmkv_key k = k_blob(kb, MMKV_MAX_KEY);
    mmkv_value v = v_int(5);
    put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    expect_entry(f->s, &k, &v);
    snapshot sn = take_snapshot(f->s);
    assert_int_equal(sn.n, 1);
    assert_int_equal(sn.e[0].kn, MMKV_MAX_KEY);
    assert_memory_equal(sn.e[0].k, kb, MMKV_MAX_KEY);
    free_snapshot(&sn);
    free(kb);
}

static void test_store_key_of_65536_bytes_fails_with_toobig(void **state)
{
    fixture *f = *state;
    char *kb = calloc(1, MMKV_MAX_KEY + 1);
    assert_non_null(kb);
    mmkv_key k = k_text(kb, MMKV_MAX_KEY + 1);
    mmkv_value v = v_int(5);
    assert_int_equal(mmkv_put(f->s, &k, &v, MMKV_PUT_REPLACE), MMKV_TOOBIG);
    assert_int_equal(entries_of(f->s), 0);
    expect_check_ok(f->s);
    free(kb);
}

/* The length is checked before any byte is read (the pages are never touched). */
static void test_store_value_over_1e9_bytes_fails_with_toobig(void **state)
{
    fixture *f = *state;
    size_t n = (size_t)MMKV_MAX_VALUE + 1;
    void *p = reserve_untouched(n);
    mmkv_key k = mmkv_text_key("huge");
    mmkv_value v = v_blob(p, (uint32_t)n);
    assert_int_equal(mmkv_put(f->s, &k, &v, MMKV_PUT_REPLACE), MMKV_TOOBIG);
    v.type = MMKV_TEXT;
    assert_int_equal(mmkv_put(f->s, &k, &v, MMKV_PUT_REPLACE), MMKV_TOOBIG);
    release_untouched(p, n);
    assert_int_equal(entries_of(f->s), 0);
}

/* ------------------------------------------------------------------ */
/* Insert, replace, delete                                             */
/* ------------------------------------------------------------------ */

static void test_store_insert_of_present_key_fails_with_exists(void **state)
{
    fixture *f = *state;
    mmkv_key k = mmkv_text_key("dup");
    mmkv_value v1 = v_text("first", 5), v2 = v_text("second", 6);
    put_ok(f->s, &k, &v1, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_put(f->s, &k, &v2, MMKV_PUT_INSERT), MMKV_EXISTS);
    expect_entry(f->s, &k, &v1);
    assert_int_equal(entries_of(f->s), 1);
}

static void test_store_put_replaces_value(void **state)
{
    fixture *f = *state;
    mmkv_key k = mmkv_text_key("r");
    unsigned char big[3000];
    pattern(big, sizeof big, 1);
    mmkv_value vals[] = {v_int(1),    v_text("short", 5), v_blob(big, sizeof big),
                         v_real(2.5), v_null(),           v_blob(big, 10),
                         v_int(-7)};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        put_ok(f->s, &k, &vals[i], MMKV_PUT_REPLACE);
        expect_entry(f->s, &k, &vals[i]);
        assert_int_equal(entries_of(f->s), 1);
    }
    expect_check_ok(f->s);
}

static void test_store_del_removes_the_entry(void **state)
{
    fixture *f = *state;
    mmkv_key a = mmkv_text_key("a"), b = mmkv_text_key("b");
    mmkv_value v = v_int(1);
    put_ok(f->s, &a, &v, MMKV_PUT_INSERT);
    put_ok(f->s, &b, &v, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_del(f->s, &a), MMKV_OK);
    expect_missing(f->s, &a);
    expect_entry(f->s, &b, &v);
    assert_int_equal(entries_of(f->s), 1);
}

static void test_store_del_of_missing_key_fails_with_notfound(void **state)
{
    fixture *f = *state;
    mmkv_key a = mmkv_text_key("a");
    mmkv_value v = v_int(1);
    assert_int_equal(mmkv_del(f->s, &a), MMKV_NOTFOUND);
    put_ok(f->s, &a, &v, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_del(f->s, &a), MMKV_OK);
    assert_int_equal(mmkv_del(f->s, &a), MMKV_NOTFOUND);
    assert_int_equal(entries_of(f->s), 0);
}

static void test_store_deleted_key_can_be_inserted_again(void **state)
{
    fixture *f = *state;
    mmkv_key a = mmkv_text_key("a");
    for (int i = 0; i < 100; i++) {
        mmkv_value v = v_int(i);
        put_ok(f->s, &a, &v, MMKV_PUT_INSERT);
        expect_entry(f->s, &a, &v);
        assert_int_equal(mmkv_del(f->s, &a), MMKV_OK);
    }
    expect_missing(f->s, &a);
    expect_check_ok(f->s);
}

/* mmkv_get_at puts the value's bytes at the given offset of the caller's
** buffer, NUL after them, keeps the bytes before them when it grows the
** buffer, and touches nothing for numbers or a missing key. */
static void test_store_get_at_puts_the_value_after_the_callers_own_bytes(void **state)
{
    fixture *f = *state;
    char big[5000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    mmkv_key kt = mmkv_text_key("t"), kb = mmkv_text_key("b"), ki = mmkv_text_key("i");
    mmkv_value vt = v_text(big, sizeof big), vb = v_blob("\0\1\2", 3), vi = v_int(-7);
    put_ok(f->s, &kt, &vt, MMKV_PUT_INSERT);
    put_ok(f->s, &kb, &vb, MMKV_PUT_INSERT);
    put_ok(f->s, &ki, &vi, MMKV_PUT_INSERT);
    size_t cap = 64;
    char *buf = malloc(cap);
    assert_non_null(buf);
    memcpy(buf, "prefix--", 8);
    mmkv_value got;
    void *vbuf = buf;
    /* grows: the prefix moves with the buffer */
    assert_int_equal(mmkv_get_at(f->s, &kt, &got, &vbuf, &cap, 8), MMKV_OK);
    buf = vbuf;
    assert_true(cap >= 8 + sizeof big + 1);
    assert_memory_equal(buf, "prefix--", 8);
    assert_int_equal(got.type, MMKV_TEXT);
    assert_int_equal(got.n, sizeof big);
    assert_ptr_equal(got.p, buf + 8);
    assert_memory_equal(buf + 8, big, sizeof big);
    assert_int_equal(buf[8 + sizeof big], 0);
    /* fits: same buffer, bytes at the offset */
    size_t before = cap;
    assert_int_equal(mmkv_get_at(f->s, &kb, &got, &vbuf, &cap, 100), MMKV_OK);
    assert_ptr_equal(vbuf, buf);
    assert_int_equal(cap, before);
    assert_ptr_equal(got.p, buf + 100);
    assert_memory_equal(buf + 100, "\0\1\2", 3);
    assert_int_equal(buf[103], 0);
    assert_memory_equal(buf, "prefix--", 8);
    /* numbers and a missing key leave the buffer alone */
    memset(buf + 200, 'z', 16);
    assert_int_equal(mmkv_get_at(f->s, &ki, &got, &vbuf, &cap, 200), MMKV_OK);
    assert_int_equal(got.type, MMKV_INT);
    assert_int_equal(got.i, -7);
    mmkv_key none = mmkv_text_key("none");
    assert_int_equal(mmkv_get_at(f->s, &none, &got, &vbuf, &cap, 200), MMKV_NOTFOUND);
    assert_int_equal(buf[200], 'z');
    /* the same under the lock, in a transaction */
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    assert_int_equal(mmkv_get_at(f->s, &kb, &got, &vbuf, &cap, 300), MMKV_OK);
    assert_memory_equal((char *)vbuf + 300, "\0\1\2", 3);
    assert_int_equal(mmkv_commit(f->s), MMKV_OK);
    free(vbuf);
}

/* A delete in a transaction starts where the transaction's last lookup
** found its key; that must never delete the wrong entry: after a lookup of
** another key, after changes in between, after a rollback to a mark, and
** after a lookup that found nothing. */
static void test_store_delete_after_lookup_in_a_transaction_deletes_the_right_key(void **state)
{
    fixture *f = *state;
    char kb[32], kb2[32];
    for (int i = 0; i < 200; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int(i);
        put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    }
    mmkv_key k1 = numbered_key(kb, sizeof kb, 1), k2 = numbered_key(kb2, sizeof kb2, 2);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    /* the same key: found where the lookup left it */
    assert_int_equal(mmkv_get(f->s, &k1, NULL, NULL, NULL), MMKV_OK);
    assert_int_equal(mmkv_del(f->s, &k1), MMKV_OK);
    assert_int_equal(mmkv_get(f->s, &k1, NULL, NULL, NULL), MMKV_NOTFOUND);
    /* another key than the one looked up */
    mmkv_key k3 = numbered_key(kb, sizeof kb, 3);
    assert_int_equal(mmkv_get(f->s, &k3, NULL, NULL, NULL), MMKV_OK);
    assert_int_equal(mmkv_del(f->s, &k2), MMKV_OK);
    mmkv_value three = v_int(3);
    expect_entry(f->s, &k3, &three);
    /* changes between the lookup and the delete move slots */
    mmkv_key k4 = numbered_key(kb2, sizeof kb2, 4);
    assert_int_equal(mmkv_get(f->s, &k4, NULL, NULL, NULL), MMKV_OK);
    for (int i = 1000; i < 1100; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int(i);
        put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    }
    assert_int_equal(mmkv_del(f->s, &k4), MMKV_OK);
    /* a rollback to a mark after the lookup */
    mmkv_key k5 = numbered_key(kb2, sizeof kb2, 5);
    size_t mark = mmkv_mark(f->s);
    mmkv_key k6 = numbered_key(kb, sizeof kb, 6);
    assert_int_equal(mmkv_del(f->s, &k6), MMKV_OK);
    assert_int_equal(mmkv_get(f->s, &k5, NULL, NULL, NULL), MMKV_OK);
    assert_int_equal(mmkv_rollback_to(f->s, mark), MMKV_OK);
    assert_int_equal(mmkv_del(f->s, &k5), MMKV_OK);
    mmkv_value six = v_int(6);
    expect_entry(f->s, &k6, &six);
    /* a lookup that found nothing */
    mmkv_key none = mmkv_text_key("absent");
    assert_int_equal(mmkv_get(f->s, &none, NULL, NULL, NULL), MMKV_NOTFOUND);
    assert_int_equal(mmkv_del(f->s, &none), MMKV_NOTFOUND);
    assert_int_equal(mmkv_commit(f->s), MMKV_OK);
    for (int i = 0; i < 200; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int(i);
        if (i == 1 || i == 2 || i == 4 || i == 5)
            expect_missing(f->s, &k);
        else
            expect_entry(f->s, &k, &v);
    }
    assert_int_equal(entries_of(f->s), 200 - 4 + 100);
    expect_check_ok(f->s);
}

/* mmkv_get with no value only says whether the key is there. */
static void test_store_get_without_a_value_says_whether_the_key_is_there(void **state)
{
    fixture *f = *state;
    mmkv_key a = mmkv_text_key("a"), b = mmkv_text_key("b");
    mmkv_value v = v_text("hello", 5);
    put_ok(f->s, &a, &v, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_get(f->s, &a, NULL, NULL, NULL), MMKV_OK);
    assert_int_equal(mmkv_get(f->s, &b, NULL, NULL, NULL), MMKV_NOTFOUND);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    assert_int_equal(mmkv_get(f->s, &a, NULL, NULL, NULL), MMKV_OK);
    assert_int_equal(mmkv_get(f->s, &b, NULL, NULL, NULL), MMKV_NOTFOUND);
    assert_int_equal(mmkv_rollback(f->s), MMKV_OK);
}

/* ------------------------------------------------------------------ */
/* Scans and figures                                                   */
/* ------------------------------------------------------------------ */

/* Scan callback: counts calls per "k<i>" key in the int array ctx. */
static int count_cb(void *ctx, const mmkv_key *k, const mmkv_value *v)
{
    int *seen = ctx;
    char buf[16];
    if (k->type != MMKV_TEXT || k->n != 7) return -1;
    memcpy(buf, k->p, 7);
    buf[7] = 0;
    int i = atoi(buf + 1);
    if (i < 0 || i >= 1000 || v->type != MMKV_INT || v->i != i * 3) return -2;
    seen[i]++;
    return 0;
}

static void test_store_scan_sees_every_entry_exactly_once(void **state)
{
    fixture *f = *state;
    static int seen[1000];
    char kb[32];
    for (int i = 0; i < 1000; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int(i * 3);
        put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    }
    memset(seen, 0, sizeof seen);
    assert_int_equal(mmkv_scan(f->s, count_cb, seen), MMKV_OK);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(seen[i], 1);
    for (int i = 0; i < 1000; i += 2) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        assert_int_equal(mmkv_del(f->s, &k), MMKV_OK);
    }
    memset(seen, 0, sizeof seen);
    assert_int_equal(mmkv_scan(f->s, count_cb, seen), MMKV_OK);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(seen[i], i % 2);
}

/* Scan callback: counts calls in *(int *)ctx and returns 77 at the 5th. */
static int stop_cb(void *ctx, const mmkv_key *k, const mmkv_value *v)
{
    (void)k;
    (void)v;
    return ++*(int *)ctx == 5 ? 77 : 0;
}

static void test_store_scan_stops_at_a_nonzero_return_and_returns_it(void **state)
{
    fixture *f = *state;
    char kb[32];
    int calls = 0;
    for (int i = 0; i < 20; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_null();
        put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    }
    assert_int_equal(mmkv_scan(f->s, stop_cb, &calls), 77);
    assert_int_equal(calls, 5);
    /* The lock was released: a write works at once. */
    mmkv_key k = mmkv_text_key("after");
    mmkv_value v = v_null();
    put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
}

static void test_store_scan_of_an_empty_store_calls_nothing(void **state)
{
    fixture *f = *state;
    int calls = 0;
    assert_int_equal(mmkv_scan(f->s, stop_cb, &calls), MMKV_OK);
    assert_int_equal(calls, 0);
}

static void test_store_stat_counts_entries_exactly(void **state)
{
    fixture *f = *state;
    char kb[32];
    assert_int_equal(entries_of(f->s), 0);
    for (int i = 0; i < 10; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int(i);
        put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
        assert_int_equal(entries_of(f->s), (uint64_t)i + 1);
    }
    mmkv_key k0 = numbered_key(kb, sizeof kb, 0);
    mmkv_value v = v_text("x", 1);
    put_ok(f->s, &k0, &v, MMKV_PUT_REPLACE);
    assert_int_equal(mmkv_put(f->s, &k0, &v, MMKV_PUT_INSERT), MMKV_EXISTS);
    assert_int_equal(entries_of(f->s), 10);
    assert_int_equal(mmkv_del(f->s, &k0), MMKV_OK);
    assert_int_equal(mmkv_del(f->s, &k0), MMKV_NOTFOUND);
    assert_int_equal(entries_of(f->s), 9);
    assert_int_equal(mmkv_estimate(f->s), 9);
}

static void test_store_stat_reports_capacity_used_kv_bytes_and_slots(void **state)
{
    fixture *f = *state;
    mmkv_stats a, b, c;
    unsigned char val[20000];
    pattern(val, sizeof val, 2);
    assert_int_equal(mmkv_stat(f->s, &a), MMKV_OK);
    assert_int_equal(a.capacity, SIZE_1M);
    assert_int_equal(a.format, MMKV_FORMAT_VERSION);
    assert_int_equal(a.kv_bytes, 0);
    assert_true(a.used > 0 && a.used <= a.capacity);
    mmkv_key k1 = k_text("key1", 4), k2 = k_blob("k2", 2);
    mmkv_value v1 = v_blob(val, 20000), v2 = v_text("hello", 5);
    put_ok(f->s, &k1, &v1, MMKV_PUT_INSERT);
    put_ok(f->s, &k2, &v2, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_stat(f->s, &b), MMKV_OK);
    assert_int_equal(b.entries, 2);
    assert_int_equal(b.kv_bytes, 4 + 20000 + 2 + 5);
    assert_true(b.used >= a.used + 20000);
    assert_true(b.used <= b.capacity);
    assert_true(b.slots >= b.entries);
    assert_int_equal(mmkv_del(f->s, &k1), MMKV_OK);
    assert_int_equal(mmkv_stat(f->s, &c), MMKV_OK);
    assert_int_equal(c.kv_bytes, 2 + 5);
    assert_true(c.used + 20000 <= b.used);
}

/* ------------------------------------------------------------------ */
/* Transactions                                                        */
/* ------------------------------------------------------------------ */

static void test_store_rollback_restores_the_store_exactly(void **state)
{
    fixture *f = *state;
    char kb[32];
    unsigned char big[5000];
    mmkv_stats before, after;
    pattern(big, sizeof big, 9);
    fill_mixed(f->s, 60);
    snapshot s0 = take_snapshot(f->s);
    assert_int_equal(mmkv_stat(f->s, &before), MMKV_OK);
    assert_int_equal(mmkv_in_transaction(f->s), 0);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    assert_true(mmkv_in_transaction(f->s));
    for (int i = 0; i < 60; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_blob(big, (uint32_t)(100 + i * 50));
        if (i % 4 == 0) put_ok(f->s, &k, &v, MMKV_PUT_REPLACE);
        if (i % 4 == 1) assert_int_equal(mmkv_del(f->s, &k), MMKV_OK);
        if (i % 4 == 2) { /* replaced twice, deleted, inserted again */
            put_ok(f->s, &k, &v, MMKV_PUT_REPLACE);
            put_ok(f->s, &k, &v, MMKV_PUT_REPLACE);
            assert_int_equal(mmkv_del(f->s, &k), MMKV_OK);
            put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
        }
    }
    for (int i = 1000; i < 1200; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int(i);
        put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    }
    mmkv_key k1 = numbered_key(kb, sizeof kb, 1);
    expect_missing(f->s, &k1); /* the transaction sees its own changes */
    assert_int_equal(entries_of(f->s), 60 - 15 + 200);
    assert_int_equal(mmkv_rollback(f->s), MMKV_OK);
    assert_int_equal(mmkv_in_transaction(f->s), 0);
    snapshot s1 = take_snapshot(f->s);
    expect_same_snapshot(&s0, &s1);
    assert_int_equal(mmkv_stat(f->s, &after), MMKV_OK);
    assert_int_equal(after.entries, before.entries);
    assert_int_equal(after.kv_bytes, before.kv_bytes);
    expect_check_ok(f->s);
    free_snapshot(&s0);
    free_snapshot(&s1);
}

static void test_store_begin_inside_a_transaction_fails_with_invalid(void **state)
{
    fixture *f = *state;
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    assert_int_equal(mmkv_begin(f->s), MMKV_INVALID);
    assert_true(mmkv_in_transaction(f->s));
    assert_int_equal(mmkv_commit(f->s), MMKV_OK);
    assert_int_equal(mmkv_in_transaction(f->s), 0);
}

static void test_store_rollback_to_a_mark_undoes_only_later_changes(void **state)
{
    fixture *f = *state;
    mmkv_key a = mmkv_text_key("A"), b = mmkv_text_key("B"), c = mmkv_text_key("C"),
             d = mmkv_text_key("D");
    mmkv_value one = v_int(1), two = v_int(2), three = v_int(3), four = v_int(4),
               cv = v_text("c", 1);
    put_ok(f->s, &c, &cv, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    put_ok(f->s, &a, &one, MMKV_PUT_INSERT);
    size_t m1 = mmkv_mark(f->s);
    put_ok(f->s, &b, &two, MMKV_PUT_INSERT);
    put_ok(f->s, &a, &three, MMKV_PUT_REPLACE);
    assert_int_equal(mmkv_del(f->s, &c), MMKV_OK);
    assert_int_equal(mmkv_rollback_to(f->s, m1), MMKV_OK);
    assert_true(mmkv_in_transaction(f->s));
    expect_entry(f->s, &a, &one);
    expect_missing(f->s, &b);
    expect_entry(f->s, &c, &cv);
    put_ok(f->s, &d, &four, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_commit(f->s), MMKV_OK);
    expect_entry(f->s, &a, &one);
    expect_missing(f->s, &b);
    expect_entry(f->s, &c, &cv);
    expect_entry(f->s, &d, &four);
    assert_int_equal(entries_of(f->s), 3);
    expect_check_ok(f->s);
}

static void test_store_nested_marks_roll_back_in_order(void **state)
{
    fixture *f = *state;
    mmkv_key x = mmkv_text_key("X"), y = mmkv_text_key("Y"), z = mmkv_text_key("Z");
    mmkv_value v = v_int(1);
    fill_mixed(f->s, 5);
    snapshot s0 = take_snapshot(f->s);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    size_t m0 = mmkv_mark(f->s);
    put_ok(f->s, &x, &v, MMKV_PUT_INSERT);
    size_t m1 = mmkv_mark(f->s);
    put_ok(f->s, &y, &v, MMKV_PUT_INSERT);
    size_t m2 = mmkv_mark(f->s);
    put_ok(f->s, &z, &v, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_rollback_to(f->s, m2), MMKV_OK);
    expect_missing(f->s, &z);
    expect_entry(f->s, &y, &v);
    assert_int_equal(mmkv_rollback_to(f->s, m1), MMKV_OK);
    expect_missing(f->s, &y);
    expect_entry(f->s, &x, &v);
    assert_int_equal(mmkv_rollback_to(f->s, m0), MMKV_OK);
    expect_missing(f->s, &x);
    assert_int_equal(mmkv_commit(f->s), MMKV_OK);
    snapshot s1 = take_snapshot(f->s);
    expect_same_snapshot(&s0, &s1);
    expect_check_ok(f->s);
    free_snapshot(&s0);
    free_snapshot(&s1);
}

static void test_store_commit_persists_after_close_and_reopen(void **state)
{
    fixture *f = *state;
    mmkv_key a = mmkv_text_key("a"), b = mmkv_text_key("b");
    mmkv_value va = v_int(10), vb = v_text("bee", 3);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    put_ok(f->s, &a, &va, MMKV_PUT_INSERT);
    put_ok(f->s, &b, &vb, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_commit(f->s), MMKV_OK);
    mmkv_close(f->s);
    f->s = open_ok(f->name, SIZE_1M, MMKV_MODE_OPEN);
    expect_entry(f->s, &a, &va);
    expect_entry(f->s, &b, &vb);
    assert_int_equal(entries_of(f->s), 2);
}

/* While one handle's transaction is open, a second handle (timeout 0) either
** waits (MMKV_BUSY) or sees the old state; after commit it sees the new. */
static void test_store_second_handle_sees_committed_data_only_after_commit(void **state)
{
    fixture *f = *state;
    mmkv_key k = mmkv_text_key("k"), n = mmkv_text_key("n");
    mmkv_value old = v_text("old", 3), nw = v_text("new", 3), one = v_int(1), got;
    void *buf = NULL;
    size_t bufsz = 0;
    put_ok(f->s, &k, &old, MMKV_PUT_INSERT);
    mmkv *s2 = open_ok_ex(f->name, NULL, SIZE_1M, MMKV_MODE_OPEN, 0);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    put_ok(f->s, &k, &nw, MMKV_PUT_REPLACE);
    put_ok(f->s, &n, &one, MMKV_PUT_INSERT);
    int rc = mmkv_get(s2, &k, &got, &buf, &bufsz);
    assert_true(rc == MMKV_BUSY || rc == MMKV_OK);
    if (rc == MMKV_OK) assert_true(value_same(&got, &old));
    rc = mmkv_get(s2, &n, &got, &buf, &bufsz);
    assert_true(rc == MMKV_BUSY || rc == MMKV_NOTFOUND);
    assert_int_equal(mmkv_put(s2, &n, &old, MMKV_PUT_REPLACE), MMKV_BUSY);
    assert_int_equal(mmkv_commit(f->s), MMKV_OK);
    expect_entry(s2, &k, &nw);
    expect_entry(s2, &n, &one);
    assert_int_equal(entries_of(s2), 2);
    free(buf);
    mmkv_close(s2);
}

static void test_store_close_with_an_open_transaction_rolls_it_back(void **state)
{
    fixture *f = *state;
    mmkv_key a = mmkv_text_key("a"), b = mmkv_text_key("b");
    mmkv_value v = v_int(1);
    put_ok(f->s, &a, &v, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    put_ok(f->s, &b, &v, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_del(f->s, &a), MMKV_OK);
    mmkv_close(f->s);
    /* Timeout 0: the lock must have been released by close. */
    f->s = open_ok_ex(f->name, NULL, SIZE_1M, MMKV_MODE_OPEN, 0);
    expect_entry(f->s, &a, &v);
    expect_missing(f->s, &b);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    assert_int_equal(mmkv_rollback(f->s), MMKV_OK);
    expect_check_ok(f->s);
}

static void test_store_commit_and_rollback_release_the_lock(void **state)
{
    fixture *f = *state;
    mmkv *s2 = open_ok_ex(f->name, NULL, SIZE_1M, MMKV_MODE_OPEN, 0);
    mmkv_key k = mmkv_text_key("k");
    mmkv_value v = v_int(1);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    assert_int_equal(mmkv_begin(s2), MMKV_BUSY);
    assert_int_equal(mmkv_commit(f->s), MMKV_OK);
    assert_int_equal(mmkv_begin(s2), MMKV_OK);
    put_ok(s2, &k, &v, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_rollback(s2), MMKV_OK);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    expect_missing(f->s, &k);
    assert_int_equal(mmkv_rollback(f->s), MMKV_OK);
    mmkv_close(s2);
}

/* ------------------------------------------------------------------ */
/* Full mappings and space reuse                                       */
/* ------------------------------------------------------------------ */

/* Inserts "k<start>", "k<start+1>", ... with values of vlen pattern bytes
** (NULL values if vlen is 0) until a put fails; asserts that it failed with
** MMKV_FULL and a message; returns the index of the key that did not fit. */
static int fill_until_full(mmkv *s, uint32_t vlen, int start)
{
    char kb[32];
    unsigned char vb[4096];
    int i;
    for (i = start; i < 1000000; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        pattern(vb, vlen, (uint32_t)i);
        mmkv_value v = vlen ? v_blob(vb, vlen) : v_null();
        int rc = mmkv_put(s, &k, &v, MMKV_PUT_INSERT);
        if (rc == MMKV_FULL) break;
        if (rc != MMKV_OK) fail_msg("put #%d = %d: %s", i, rc, mmkv_errmsg(s));
    }
    assert_true(i < 1000000);
    assert_true(strlen(mmkv_errmsg(s)) > 0);
    return i;
}

/* Asserts that "k<from..to-1>" hold their fill_until_full values and that
** "k<to>" is absent. */
static void expect_filled(mmkv *s, int from, int to, uint32_t vlen)
{
    char kb[32];
    unsigned char vb[4096];
    for (int i = from; i < to; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        pattern(vb, vlen, (uint32_t)i);
        mmkv_value v = vlen ? v_blob(vb, vlen) : v_null();
        expect_entry(s, &k, &v);
    }
    mmkv_key k = numbered_key(kb, sizeof kb, to);
    expect_missing(s, &k);
}

static void test_store_full_leaves_every_entry_intact(void **state)
{
    fixture *f = *state;
    mmkv *s = open_ok(f->name, SIZE_64K, MMKV_MODE_NEW);
    int n = fill_until_full(s, 100, 0);
    assert_true(n > 300); /* 64K holds several hundred 100-byte values */
    expect_filled(s, 0, n, 100);
    assert_int_equal(entries_of(s), (uint64_t)n);
    expect_check_ok(s);
    /* A second try is full at once and changes nothing either. */
    assert_int_equal(fill_until_full(s, 100, n), n);
    expect_filled(s, 0, n, 100);
    assert_int_equal(entries_of(s), (uint64_t)n);
    expect_check_ok(s);
    mmkv_close(s);
}

/* Filling a mapping merges free blocks (a walk of the whole heap, counted
** by the header's reshape) only when a merge could make room: an index
** that can no longer grow, or a full heap, must not cost a walk per insert. */
static void test_store_filling_to_full_does_not_walk_the_heap_per_insert(void **state)
{
    fixture *f = *state;
    mmkv *s = open_ok(f->name, (uint64_t)4 << 20, MMKV_MODE_NEW);
    struct mmkv_hdr *hdr = s->hdr;
    uint64_t before = hdr->reshape;
    int n = fill_until_full(s, 32, 0);
    assert_true(n > 30000);
    assert_in_range(hdr->reshape - before, 0, 10);
    expect_check_ok(s);
    mmkv_close(s);
}

/* Tiny entries make the index grow often; a growth that does not fit must
** also leave everything intact. */
static void test_store_full_from_index_growth_leaves_every_entry_intact(void **state)
{
    fixture *f = *state;
    mmkv *s = open_ok(f->name, SIZE_64K, MMKV_MODE_NEW);
    int n = fill_until_full(s, 0, 0);
    assert_true(n > 1000);
    expect_filled(s, 0, n, 0);
    assert_int_equal(entries_of(s), (uint64_t)n);
    expect_check_ok(s);
    mmkv_close(s);
}

static void test_store_full_replace_keeps_the_old_value(void **state)
{
    fixture *f = *state;
    mmkv *s = open_ok(f->name, SIZE_64K, MMKV_MODE_NEW);
    unsigned char *big = malloc(40000);
    char kb[32];
    assert_non_null(big);
    pattern(big, 40000, 1);
    int n = fill_until_full(s, 100, 0);
    mmkv_key k0 = numbered_key(kb, sizeof kb, 0);
    mmkv_value v = v_blob(big, 40000);
    assert_int_equal(mmkv_put(s, &k0, &v, MMKV_PUT_REPLACE), MMKV_FULL);
    expect_filled(s, 0, n, 100);
    assert_int_equal(entries_of(s), (uint64_t)n);
    expect_check_ok(s);
    free(big);
    mmkv_close(s);
}

static void test_store_full_inside_a_transaction_keeps_earlier_changes(void **state)
{
    fixture *f = *state;
    mmkv *s = open_ok(f->name, SIZE_64K, MMKV_MODE_NEW);
    mmkv_key base = mmkv_text_key("base");
    mmkv_value bv = v_int(99);
    put_ok(s, &base, &bv, MMKV_PUT_INSERT);
    /* Full, then rolled back: only the base entry is left. */
    assert_int_equal(mmkv_begin(s), MMKV_OK);
    int n = fill_until_full(s, 100, 0);
    assert_true(n > 100);
    assert_true(mmkv_in_transaction(s));
    expect_filled(s, 0, n, 100);
    assert_int_equal(entries_of(s), (uint64_t)n + 1);
    assert_int_equal(mmkv_rollback(s), MMKV_OK);
    assert_int_equal(entries_of(s), 1);
    expect_entry(s, &base, &bv);
    expect_check_ok(s);
    /* Full, then committed: everything before the failing put is kept. */
    assert_int_equal(mmkv_begin(s), MMKV_OK);
    n = fill_until_full(s, 100, 0);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    expect_filled(s, 0, n, 100);
    expect_entry(s, &base, &bv);
    assert_int_equal(entries_of(s), (uint64_t)n + 1);
    expect_check_ok(s);
    mmkv_close(s);
}

static void test_store_space_of_deleted_entries_is_reused_after_full(void **state)
{
    fixture *f = *state;
    char kb[32];
    mmkv *s = open_ok(f->name, SIZE_64K, MMKV_MODE_NEW);
    int n = fill_until_full(s, 100, 0);
    for (int i = 0; i < 20; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        assert_int_equal(mmkv_del(s, &k), MMKV_OK);
    }
    for (int round = 0; round < 50; round++) {
        /* Ten new entries in, ten old ones out: the live size stays below full. */
        for (int i = 0; i < 10; i++) {
            unsigned char vb[100];
            int id = n + round * 10 + i;
            mmkv_key k = numbered_key(kb, sizeof kb, id);
            pattern(vb, 100, (uint32_t)id);
            mmkv_value v = v_blob(vb, 100);
            put_ok(s, &k, &v, MMKV_PUT_INSERT);
        }
        for (int i = 0; i < 10; i++) {
            mmkv_key k = numbered_key(kb, sizeof kb, 20 + round * 10 + i);
            assert_int_equal(mmkv_del(s, &k), MMKV_OK);
        }
    }
    assert_int_equal(entries_of(s), (uint64_t)n - 20);
    expect_check_ok(s);
    mmkv_close(s);
}

/* Replaces, deletes and inserts over 100 keys with values of 1..2000 bytes
** (live data at most 20% of 1 MiB), writing over 10x the capacity in all;
** no put may fail and the end state matches a model. */
static void test_store_churn_over_ten_times_the_capacity_never_fills(void **state)
{
    fixture *f = *state;
    enum { NKEYS = 100, MAXV = 2000 };
    static unsigned char vals[NKEYS][MAXV];
    static uint32_t lens[NKEYS];
    static int present[NKEYS];
    char kb[32];
    uint64_t written = 0;
    rng_state = 12345;
    memset(present, 0, sizeof present);
    for (int op = 0; written < 12 * SIZE_1M; op++) {
        int i = (int)rnd_below(NKEYS);
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        if (present[i] && rnd_below(4) == 0) {
            assert_int_equal(mmkv_del(f->s, &k), MMKV_OK);
            present[i] = 0;
            continue;
        }
        lens[i] = 1 + rnd_below(MAXV);
        pattern(vals[i], lens[i], (uint32_t)op);
        mmkv_value v = v_blob(vals[i], lens[i]);
        int rc = mmkv_put(f->s, &k, &v, present[i] ? MMKV_PUT_REPLACE : MMKV_PUT_INSERT);
        if (rc != MMKV_OK)
            fail_msg("op %d after %llu bytes: put = %d: %s", op, (unsigned long long)written, rc,
                     mmkv_errmsg(f->s));
        present[i] = 1;
        written += lens[i];
    }
    uint64_t live = 0;
    for (int i = 0; i < NKEYS; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_blob(vals[i], lens[i]);
        if (present[i]) {
            expect_entry(f->s, &k, &v);
            live++;
        } else {
            expect_missing(f->s, &k);
        }
    }
    assert_int_equal(entries_of(f->s), live);
    expect_check_ok(f->s);
}

static void test_store_index_grows_past_100000_entries(void **state)
{
    fixture *f = *state;
    enum { N = 100000 };
    char kb[32];
    mmkv_stats st;
    mmkv *s = open_ok(f->name, SIZE_16M, MMKV_MODE_NEW);
    for (int i = 0; i < N; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int((int64_t)i * 7);
        put_ok(s, &k, &v, MMKV_PUT_INSERT);
    }
    for (int i = 0; i < N; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int((int64_t)i * 7);
        expect_entry(s, &k, &v);
    }
    mmkv_key k = numbered_key(kb, sizeof kb, N);
    expect_missing(s, &k);
    assert_int_equal(mmkv_stat(s, &st), MMKV_OK);
    assert_int_equal(st.entries, N);
    assert_true(st.slots >= N);
    snapshot sn = take_snapshot(s);
    assert_int_equal(sn.n, N);
    for (size_t i = 1; i < sn.n; i++)
        assert_true(entry_cmp(&sn.e[i - 1], &sn.e[i]) < 0);
    free_snapshot(&sn);
    expect_check_ok(s);
    mmkv_close(s);
}

/* ------------------------------------------------------------------ */
/* A random workload against a model                                   */
/* ------------------------------------------------------------------ */

enum { MK = 300 };

typedef struct mslot {
    int present;
    mmkv_value v;
    unsigned char *buf;
} mslot;

typedef struct model {
    mslot e[MK];
} model;

/* Key i of the model: bytes "m<i/2>", TEXT for even i and BLOB for odd i,
** so pairs of keys share their bytes and differ only in type. */
static mmkv_key model_key(int i, char *buf, size_t n)
{
    int len = snprintf(buf, n, "m%d", i / 2);
    return i % 2 ? k_blob(buf, (uint32_t)len) : k_text(buf, (uint32_t)len);
}

/* A random value of any type; TEXT/BLOB bytes are written into buf. */
static mmkv_value random_value(unsigned char *buf)
{
    uint32_t n;
    switch (rnd_below(5)) {
    case 0:
        return v_null();
    case 1:
        return v_int((int64_t)rnd());
    case 2:
        return v_real_bits(rnd());
    default:
        n = rnd_below(8) == 0 ? 0 : rnd_below(300);
        for (uint32_t j = 0; j < n; j++)
            buf[j] = (unsigned char)rnd();
        return rnd_below(2) ? v_text(buf, n) : v_blob(buf, n);
    }
}

/* Sets slot i of the model to a copy of v (or clears it if v is NULL). */
static void model_set(model *m, int i, const mmkv_value *v)
{
    mslot *e = &m->e[i];
    free(e->buf);
    e->buf = NULL;
    e->present = v != NULL;
    if (!v) return;
    e->v = *v;
    if (v->type == MMKV_TEXT || v->type == MMKV_BLOB) {
        e->buf = malloc(v->n + 1);
        if (v->n) memcpy(e->buf, v->p, v->n);
        e->v.p = e->buf;
    }
}

/* Makes dst a deep copy of src. */
static void model_copy(model *dst, const model *src)
{
    for (int i = 0; i < MK; i++)
        model_set(dst, i, src->e[i].present ? &src->e[i].v : NULL);
}

static void model_free(model *m)
{
    for (int i = 0; i < MK; i++)
        free(m->e[i].buf);
    free(m);
}

/* Asserts that the store holds exactly the model's entries. */
static void expect_model(mmkv *s, const model *m)
{
    char kb[32];
    uint64_t count = 0;
    for (int i = 0; i < MK; i++) {
        mmkv_key k = model_key(i, kb, sizeof kb);
        if (m->e[i].present) {
            expect_entry(s, &k, &m->e[i].v);
            count++;
        } else {
            expect_missing(s, &k);
        }
    }
    snapshot sn = take_snapshot(s);
    assert_int_equal(sn.n, count);
    free_snapshot(&sn);
    assert_int_equal(entries_of(s), count);
}

/* Random puts, inserts, deletes, gets, transactions, marks and rollbacks;
** the store must agree with a model all along and check "ok" at the end. */
static void test_store_random_operations_match_a_model_and_check_ok(void **state)
{
    fixture *f = *state;
    model *m = calloc(1, sizeof *m), *at_begin = calloc(1, sizeof *m),
          *at_mark = calloc(1, sizeof *m);
    unsigned char vb[300];
    char kb[32];
    int in_txn = 0, has_mark = 0;
    size_t mark = 0;
    assert_true(m && at_begin && at_mark);
    rng_state = 777;
    for (int op = 0; op < 8000; op++) {
        int i = (int)rnd_below(MK);
        uint32_t r = rnd_below(100);
        mmkv_key k = model_key(i, kb, sizeof kb);
        if (r < 40) {
            mmkv_value v = random_value(vb);
            put_ok(f->s, &k, &v, MMKV_PUT_REPLACE);
            model_set(m, i, &v);
        } else if (r < 55) {
            mmkv_value v = random_value(vb);
            int rc = mmkv_put(f->s, &k, &v, MMKV_PUT_INSERT);
            assert_int_equal(rc, m->e[i].present ? MMKV_EXISTS : MMKV_OK);
            if (rc == MMKV_OK) model_set(m, i, &v);
        } else if (r < 75) {
            assert_int_equal(mmkv_del(f->s, &k), m->e[i].present ? MMKV_OK : MMKV_NOTFOUND);
            model_set(m, i, NULL);
        } else if (r < 90) {
            if (m->e[i].present)
                expect_entry(f->s, &k, &m->e[i].v);
            else
                expect_missing(f->s, &k);
        } else if (r < 93 && !in_txn) {
            assert_int_equal(mmkv_begin(f->s), MMKV_OK);
            model_copy(at_begin, m);
            in_txn = 1;
            has_mark = 0;
        } else if (r < 95 && in_txn && !has_mark) {
            mark = mmkv_mark(f->s);
            model_copy(at_mark, m);
            has_mark = 1;
        } else if (r < 97 && in_txn) {
            assert_int_equal(mmkv_commit(f->s), MMKV_OK);
            in_txn = 0;
        } else if (r < 98 && in_txn && has_mark) {
            assert_int_equal(mmkv_rollback_to(f->s, mark), MMKV_OK);
            model_copy(m, at_mark);
            has_mark = 0;
        } else if (in_txn) {
            assert_int_equal(mmkv_rollback(f->s), MMKV_OK);
            model_copy(m, at_begin);
            in_txn = 0;
        }
        if (op % 1000 == 999 && !in_txn) expect_check_ok(f->s);
    }
    if (in_txn) assert_int_equal(mmkv_commit(f->s), MMKV_OK);
    expect_model(f->s, m);
    expect_check_ok(f->s);
    /* Another handle sees the same. */
    mmkv *s2 = open_ok(f->name, SIZE_1M, MMKV_MODE_OPEN);
    expect_model(s2, m);
    mmkv_close(s2);
    model_free(m);
    model_free(at_begin);
    model_free(at_mark);
}

/* ------------------------------------------------------------------ */
/* Read-only handles                                                   */
/* ------------------------------------------------------------------ */

static void test_store_readonly_handle_reads_but_never_writes(void **state)
{
    fixture *f = *state;
    char *report = NULL;
    size_t n0, n1;
    mmkv_stats st;
    fill_mixed(f->s, 50);
    snapshot s0 = take_snapshot(f->s);
    mmkv_close(f->s);
    f->s = NULL;
    unsigned char *before = read_mapping(f->name, &n0);

    mmkv *ro = open_ok(f->name, SIZE_1M, MMKV_MODE_READONLY);
    snapshot s1 = take_snapshot(ro);
    expect_same_snapshot(&s0, &s1);
    assert_int_equal(mmkv_stat(ro, &st), MMKV_OK);
    assert_int_equal(st.entries, 50);
    assert_int_equal(mmkv_check(ro, &report), MMKV_OK);
    assert_string_equal(report, "ok");
    free(report);
    mmkv_key k0 = mmkv_text_key("k000000"), kn = mmkv_text_key("new");
    mmkv_value v = v_int(1);
    assert_int_equal(mmkv_put(ro, &kn, &v, MMKV_PUT_INSERT), MMKV_READONLY);
    assert_int_equal(mmkv_put(ro, &k0, &v, MMKV_PUT_REPLACE), MMKV_READONLY);
    assert_non_null(strstr(mmkv_errmsg(ro), "read-only"));
    assert_int_equal(mmkv_del(ro, &k0), MMKV_READONLY);
    assert_int_equal(mmkv_begin(ro), MMKV_READONLY);
    assert_int_equal(mmkv_in_transaction(ro), 0);
    expect_missing(ro, &kn);
    mmkv_close(ro);

    unsigned char *after = read_mapping(f->name, &n1);
    assert_int_equal(n0, n1);
    if (memcmp(before, after, n0) != 0) {
        size_t at = 0;
        while (before[at] == after[at])
            at++;
        fail_msg("a read-only handle changed byte %zu of the mapping", at);
    }
    free(before);
    free(after);
    free_snapshot(&s0);
    free_snapshot(&s1);
}

static void test_store_readonly_handle_sees_changes_committed_by_a_writer(void **state)
{
    fixture *f = *state;
    mmkv *ro = open_ok(f->name, SIZE_1M, MMKV_MODE_READONLY);
    mmkv_key k = mmkv_text_key("k");
    mmkv_value v = v_text("later", 5);
    expect_missing(ro, &k);
    put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    expect_entry(ro, &k, &v);
    mmkv_close(ro);
}

/* ------------------------------------------------------------------ */
/* File-backed stores and files that are not stores                    */
/* ------------------------------------------------------------------ */

static void test_store_file_store_persists_after_close_and_reopen(void **state)
{
    fixture *f = *state;
    struct stat st;
    mmkv *s = open_ok_ex(NULL, f->file, 2 * SIZE_64K, MMKV_MODE_CREATE, 1000);
    fill_mixed(s, 50);
    snapshot s0 = take_snapshot(s);
    assert_int_equal(mmkv_flush(s), MMKV_OK);
    mmkv_close(s);
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(st.st_size, 2 * SIZE_64K);
#ifndef _WIN32
    /* Windows has no mode bits (WINDOWS.md, "perms"): the default perms
    ** become an owner-only DACL there, which test_os_win checks. */
    assert_int_equal(st.st_mode & 07777, 0600);
#endif
    s = open_ok_ex(NULL, f->file, SIZE_1M, MMKV_MODE_OPEN, 1000);
    snapshot s1 = take_snapshot(s);
    expect_same_snapshot(&s0, &s1);
    expect_check_ok(s);
    mmkv_close(s);
    s = open_ok_ex(NULL, f->file, SIZE_1M, MMKV_MODE_READONLY, 1000);
    snapshot s2 = take_snapshot(s);
    expect_same_snapshot(&s0, &s2);
    mmkv_close(s);
    free_snapshot(&s0);
    free_snapshot(&s1);
    free_snapshot(&s2);
}

static void test_store_open_mode_on_a_missing_file_fails_with_cantopen(void **state)
{
    fixture *f = *state;
    mmkv *s;
    assert_int_equal(try_open_ex(NULL, f->file, SIZE_64K, MMKV_MODE_OPEN, 1000, &s, NULL),
                     MMKV_CANTOPEN);
    assert_int_not_equal(access(f->file, F_OK), 0);
}

/* Makes a valid file store of `size` bytes with 20 entries. */
static void make_file_store(const char *path, uint64_t size)
{
    mmkv *s = open_ok_ex(NULL, path, size, MMKV_MODE_NEW, 1000);
    fill_mixed(s, 20);
    mmkv_close(s);
}

static void test_store_file_of_random_bytes_is_rejected_and_unchanged(void **state)
{
    fixture *f = *state;
    static unsigned char junk[SIZE_64K];
    rng_state = 4242;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rnd();
    write_all(f->file, junk, sizeof junk);
    expect_rejected(NULL, f->file, MMKV_FORMAT, MMKV_FORMAT);
    write_all(f->file, junk, 100);
    expect_rejected(NULL, f->file, MMKV_FORMAT, MMKV_FORMAT);
}

static void test_store_file_of_zero_bytes_of_full_size_is_rejected(void **state)
{
    fixture *f = *state;
    static unsigned char zeros[SIZE_64K];
    write_all(f->file, zeros, sizeof zeros);
    expect_rejected(NULL, f->file, MMKV_FORMAT, MMKV_FORMAT);
}

static void test_store_file_with_a_wrong_magic_is_rejected_with_format(void **state)
{
    fixture *f = *state;
    size_t n;
    make_file_store(f->file, SIZE_64K);
    unsigned char *b = read_all(f->file, &n);
    b[0] ^= 0x20;
    write_all(f->file, b, n);
    free(b);
    expect_rejected(NULL, f->file, MMKV_FORMAT, MMKV_FORMAT);
}

static void test_store_file_of_another_format_version_is_rejected_with_format(void **state)
{
    fixture *f = *state;
    size_t n;
    uint32_t version = MMKV_FORMAT_PARTS + 1;
    make_file_store(f->file, SIZE_64K);
    unsigned char *b = read_all(f->file, &n);
    memcpy(b + offsetof(struct mmkv_hdr, version), &version, sizeof version);
    write_all(f->file, b, n);
    free(b);
    expect_rejected(NULL, f->file, MMKV_FORMAT, MMKV_FORMAT);
}

static void test_store_truncated_file_is_rejected_and_unchanged(void **state)
{
    fixture *f = *state;
    size_t n;
    make_file_store(f->file, 4 * SIZE_64K);
    unsigned char *b = read_all(f->file, &n);
    const size_t cuts[] = {2 * SIZE_64K, SIZE_64K, 4096, 100, 8};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all(f->file, b, cuts[i]);
        expect_rejected(NULL, f->file, MMKV_FORMAT, MMKV_CORRUPT);
    }
    free(b);
}

static void test_store_named_mapping_of_random_bytes_is_rejected_and_unchanged(void **state)
{
    fixture *f = *state;
    static unsigned char junk[SIZE_64K];
    rng_state = 99;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rnd();
    void *foreign = make_foreign_mapping(f->name, junk, sizeof junk);
    expect_rejected(f->name, NULL, MMKV_FORMAT, MMKV_FORMAT);
    drop_foreign_mapping(foreign);
}

/* ------------------------------------------------------------------ */
/* Damage to a live mapping                                            */
/* ------------------------------------------------------------------ */

/* Non-zero while the damage of the current test covers the header's magic or
** version: then MMKV_FORMAT ("another format version") is a fair answer too. */
static int format_damaged;

/* Returns non-zero if rc is MMKV_CORRUPT, or MMKV_FORMAT after damage to the
** magic or version. */
static int is_damage_code(int rc)
{
    return rc == MMKV_CORRUPT || (format_damaged && rc == MMKV_FORMAT);
}

/* Runs every operation on a damaged store; each must return one of its
** documented codes (never crash).  Values that come back OK for the keys
** "k<0..nkeys-1>" are not checked: damage to value bytes is undetectable. */
static void poke_damaged(mmkv *s, int nkeys)
{
    char kb[32];
    void *buf = NULL;
    size_t bufsz = 0;
    mmkv_value got;
    mmkv_stats st;
    snapshot sn = {0};
    for (int i = 0; i < nkeys; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        int rc = mmkv_get(s, &k, &got, &buf, &bufsz);
        if (rc != MMKV_OK && rc != MMKV_NOTFOUND && !is_damage_code(rc))
            fail_msg("get = %d: %s", rc, mmkv_errmsg(s));
    }
    int rc = mmkv_scan(s, collect_cb, &sn);
    if (rc != MMKV_OK && !is_damage_code(rc)) fail_msg("scan = %d: %s", rc, mmkv_errmsg(s));
    free_snapshot(&sn);
    rc = mmkv_stat(s, &st);
    if (rc != MMKV_OK && !is_damage_code(rc)) fail_msg("stat = %d: %s", rc, mmkv_errmsg(s));
    mmkv_key kn = mmkv_text_key("fresh-key");
    mmkv_value v = v_text("fresh value", 11);
    rc = mmkv_put(s, &kn, &v, MMKV_PUT_REPLACE);
    if (rc != MMKV_OK && !is_damage_code(rc) && rc != MMKV_FULL)
        fail_msg("put = %d: %s", rc, mmkv_errmsg(s));
    mmkv_key k1 = numbered_key(kb, sizeof kb, 1);
    rc = mmkv_put(s, &k1, &v, MMKV_PUT_REPLACE);
    if (rc != MMKV_OK && !is_damage_code(rc) && rc != MMKV_FULL)
        fail_msg("replace = %d: %s", rc, mmkv_errmsg(s));
    mmkv_key k2 = numbered_key(kb, sizeof kb, 2);
    rc = mmkv_del(s, &k2);
    if (rc != MMKV_OK && rc != MMKV_NOTFOUND && !is_damage_code(rc))
        fail_msg("del = %d: %s", rc, mmkv_errmsg(s));
    rc = mmkv_begin(s);
    if (rc == MMKV_OK) {
        rc = mmkv_put(s, &kn, &v, MMKV_PUT_REPLACE);
        if (rc != MMKV_OK && !is_damage_code(rc) && rc != MMKV_FULL)
            fail_msg("put in transaction = %d: %s", rc, mmkv_errmsg(s));
        rc = mmkv_rollback(s);
        if (rc != MMKV_OK && !is_damage_code(rc)) fail_msg("rollback = %d", rc);
    } else if (!is_damage_code(rc)) {
        fail_msg("begin = %d: %s", rc, mmkv_errmsg(s));
    }
    char *report = NULL;
    rc = mmkv_check(s, &report);
    if (rc != MMKV_OK && !is_damage_code(rc)) fail_msg("check = %d", rc);
    if (rc == MMKV_OK) assert_non_null(report);
    free(report);
    free(buf);
}

/* Asserts that mmkv_check does not say "ok": it returns MMKV_CORRUPT, or a
** report of problems. */
static void expect_check_not_ok(mmkv *s, const char *what)
{
    char *report = NULL;
    int rc = mmkv_check(s, &report);
    if (rc == MMKV_OK) {
        assert_non_null(report);
        if (strcmp(report, "ok") == 0) fail_msg("check says ok after damage to %s", what);
    } else if (!is_damage_code(rc)) {
        fail_msg("check = %d after damage to %s", rc, what);
    }
    free(report);
}

/* A freshly made store with nkeys mixed entries, and a raw view of it. */
typedef struct damaged {
    mmkv *s;
    unsigned char *raw;
    size_t len;
    struct mmkv_hdr *hdr;
} damaged;

static damaged make_damageable(const char *name, uint64_t size, int nkeys)
{
    damaged d;
    mmkv_unlink(name);
    d.s = open_ok(name, size, MMKV_MODE_NEW);
    fill_mixed(d.s, nkeys);
    d.raw = map_raw(name, &d.len);
    d.hdr = (struct mmkv_hdr *)d.raw;
    return d;
}

static void drop_damaged(damaged *d, const char *name)
{
    mmkv_close(d->s);
    unmap_raw(d->raw, d->len);
    /* Reopening a damaged mapping must not crash either. */
    mmkv *s;
    int rc = try_open(name, SIZE_64K, MMKV_MODE_OPEN, &s);
    if (rc == MMKV_OK) {
        poke_damaged(s, 0);
        mmkv_close(s);
    } else if (rc != MMKV_CORRUPT && rc != MMKV_FORMAT) {
        fail_msg("reopen of a damaged mapping = %d", rc);
    }
    mmkv_unlink(name);
}

/* Returns the offset of the `nth` LIVE record block, walking the heap. */
static uint64_t find_live_record(const damaged *d, int nth)
{
    uint64_t off = HDR_SIZE;
    while (off + 8 <= d->hdr->heap_top) {
        uint64_t w;
        memcpy(&w, d->raw + off, 8);
        assert_true(w_size(w) >= MIN_BLOCK);
        if (w_state(w) == BS_LIVE && nth-- == 0) return off;
        off += w_size(w);
    }
    fail_msg("no live record #%d", nth);
    return 0;
}

static void test_store_damaged_index_slots_are_reported_not_crashed(void **state)
{
    fixture *f = *state;
    for (int variant = 0; variant < 3; variant++) {
        damaged d = make_damageable(f->name, SIZE_1M, 200);
        uint64_t w, *slots = (uint64_t *)(d.raw + d.hdr->table_off + 8);
        memcpy(&w, d.raw + d.hdr->table_off, 8);
        uint64_t nslots = (w_size(w) - 8) / 8;
        rng_state = 1000 + (uint64_t)variant;
        for (uint64_t i = 0; i < nslots; i++) {
            if (variant == 0) slots[i] = rnd();                      /* offsets anywhere */
            if (variant == 1 && slots[i]) slots[i] += 1;             /* 8 bytes into each record */
            if (variant == 2 && slots[i]) slots[i] |= 0xffffffffull; /* past the end */
        }
        expect_check_not_ok(d.s, "the index slots");
        poke_damaged(d.s, 200);
        drop_damaged(&d, f->name);
    }
}

static void test_store_damaged_index_block_header_is_reported_not_crashed(void **state)
{
    fixture *f = *state;
    for (int variant = 0; variant < 4; variant++) {
        damaged d = make_damageable(f->name, SIZE_1M, 200);
        uint64_t *word = (uint64_t *)(d.raw + d.hdr->table_off);
        if (variant == 0) *word = w_make(0, BS_TABLE, 0, 0);
        if (variant == 1) *word = w_make(0xfffffff8u, BS_TABLE, 0, 0);
        if (variant == 2) *word = (*word & ~(0xffull << 32)) | ((uint64_t)BS_FREE << 32);
        if (variant == 3) *word = ~*word;
        expect_check_not_ok(d.s, "the index block word");
        poke_damaged(d.s, 200);
        drop_damaged(&d, f->name);
    }
}

/* Each variant damages the word of one live record; its key must then read
** as MMKV_CORRUPT (or be missing), never as some value. */
static void test_store_damaged_record_header_is_reported_not_crashed(void **state)
{
    fixture *f = *state;
    for (int variant = 0; variant < 8; variant++) {
        damaged d = make_damageable(f->name, SIZE_1M, 50);
        uint64_t off = find_live_record(&d, 10);
        uint64_t *word = (uint64_t *)(d.raw + off), w = *word;
        char key[64];
        uint32_t klen = (uint32_t)(w >> 48);
        assert_true(klen < sizeof key);
        memcpy(key, d.raw + off + 8, klen);
        int ktype = (w >> 40) & 1 ? MMKV_BLOB : MMKV_TEXT;
        switch (variant) {
        case 0:
            w = w_make(0, BS_LIVE, (unsigned)(w >> 40) & 0xff, klen);
            break;
        case 1:
            w = w_make(0xfffffff8u, BS_LIVE, (unsigned)(w >> 40) & 0xff, klen);
            break;
        case 2:
            w = w_make(w_size(w), BS_LIVE, (unsigned)(w >> 40) & 0xff, 0xffff);
            break;
        case 3:
            w = (w & ~(0xffull << 32)) | (0x17ull << 32);
            break; /* no such state */
        case 4:
            w = (w & ~(0x0eull << 40)) | (0x0eull << 40);
            break; /* value type 7 */
        case 5:
            w = w_make(8, BS_LIVE, (unsigned)(w >> 40) & 0xff, klen);
            break;
        case 6:
            w = w_make(w_size(w) + 4, BS_LIVE, (unsigned)(w >> 40) & 0xff, klen);
            break;
        default:
            rng_state = 31337;
            w = rnd();
            break;
        }
        *word = w;
        expect_check_not_ok(d.s, "a record header");
        mmkv_key k = {ktype, key, klen};
        mmkv_value got;
        void *buf = NULL;
        size_t bufsz = 0;
        int rc = mmkv_get(d.s, &k, &got, &buf, &bufsz);
        free(buf);
        if (rc != MMKV_CORRUPT && rc != MMKV_NOTFOUND)
            fail_msg("variant %d: get of the damaged key = %d", variant, rc);
        poke_damaged(d.s, 50);
        drop_damaged(&d, f->name);
    }
}

static void test_store_damaged_header_fields_are_reported_not_crashed(void **state)
{
    fixture *f = *state;
    for (int variant = 0; variant < 8; variant++) {
        damaged d = make_damageable(f->name, SIZE_1M, 100);
        struct mmkv_hdr *h = d.hdr;
        switch (variant) {
        case 0:
            h->table_off = h->capacity + 8;
            break;
        case 1:
            h->table_off = 12345;
            break;
        case 2:
            h->table_off = 0;
            break;
        case 3:
            h->heap_top = h->capacity * 2;
            break;
        case 4:
            h->heap_top = 0;
            break;
        case 5:
            h->entries = 999999;
            break;
        case 6:
            h->capacity *= 4;
            break;
        default:
            h->table_off = HDR_SIZE + 8;
            break; /* inside the first block */
        }
        expect_check_not_ok(d.s, "the header");
        poke_damaged(d.s, 100);
        drop_damaged(&d, f->name);
    }
}

/* The free lists steer allocation: damaged heads or links (out of range,
** looping, pointing at a live record) must not make a put overwrite data. */
static void test_store_damaged_free_lists_are_reported_not_crashed(void **state)
{
    fixture *f = *state;
    char kb[32];
    for (int variant = 0; variant < 4; variant++) {
        damaged d = make_damageable(f->name, SIZE_1M, 200);
        for (int i = 100; i < 200; i++) { /* free blocks of several sizes */
            mmkv_key k = numbered_key(kb, sizeof kb, i);
            assert_int_equal(mmkv_del(d.s, &k), MMKV_OK);
        }
        uint64_t live = find_live_record(&d, 3);
        rng_state = 555 + (uint64_t)variant;
        for (unsigned c = 0; c < NCLASS; c++) {
            uint32_t *head = &d.hdr->free_head[c];
            if (!*head) continue;
            uint32_t *link = (uint32_t *)(d.raw + (uint64_t)*head * 8 + 8);
            if (variant == 0) *head = (uint32_t)rnd();
            if (variant == 1) *link = (uint32_t)rnd();
            if (variant == 2) *link = *head; /* a loop */
            if (variant == 3) *head = (uint32_t)(live / 8);
        }
        expect_check_not_ok(d.s, "the free lists");
        /* After many allocations, every entry still readable holds its value. */
        static const char filler[300] = "filler";
        for (int j = 0; j < 2000; j++) {
            mmkv_key kn = numbered_key(kb, sizeof kb, 1000 + j);
            mmkv_value v = v_text(filler, (uint32_t)(j % 300));
            int rc = mmkv_put(d.s, &kn, &v, MMKV_PUT_INSERT);
            if (rc != MMKV_OK && rc != MMKV_CORRUPT) fail_msg("put = %d", rc);
        }
        for (int i = 0; i < 100; i++) {
            char vb[64];
            mmkv_key k = numbered_key(kb, sizeof kb, i);
            mmkv_value want = mixed_value(i, vb, sizeof vb), got;
            void *buf = NULL;
            size_t bufsz = 0;
            int rc = mmkv_get(d.s, &k, &got, &buf, &bufsz);
            if (rc != MMKV_OK && rc != MMKV_CORRUPT) fail_msg("get of k%06d = %d", i, rc);
            if (rc == MMKV_OK && !value_same(&got, &want))
                fail_msg("variant %d: k%06d was overwritten", variant, i);
            free(buf);
        }
        poke_damaged(d.s, 200);
        drop_damaged(&d, f->name);
    }
}

/* Random bytes over a random stretch of the used part of the mapping (the
** lock word aside), many times: operations return documented codes only. */
static void test_store_random_damage_anywhere_never_crashes(void **state)
{
    fixture *f = *state;
    const uint64_t lock_at = offsetof(struct mmkv_hdr, lock);
    rng_state = 2024;
    watchdog(300); /* a loop on damaged data ends the test instead of hanging it */
    for (int round = 0; round < 300; round++) {
        damaged d = make_damageable(f->name, SIZE_64K, 40);
        uint64_t top = d.hdr->heap_top, at, len;
        do {
            len = 1 + rnd_below(rnd_below(4) ? 16 : 256);
            at = rnd_below((uint32_t)top);
        } while (at < lock_at + MMKV_OS_LOCK_BYTES && at + len > lock_at);
        for (uint64_t i = 0; i < len && at + i < d.len; i++)
            d.raw[at + i] = (unsigned char)rnd();
        format_damaged = at < offsetof(struct mmkv_hdr, hdr_size);
        poke_damaged(d.s, 40);
        drop_damaged(&d, f->name);
        format_damaged = 0;
    }
    watchdog(0);
}

/* ------------------------------------------------------------------ */

/* A mapping in parts has a lock per part, on every platform: a part held
** through one handle blocks that part only.  (The split store's own tests,
** which need fork and threads, are in test_parts.c.) */
static void test_store_each_part_of_a_split_mapping_has_its_own_lock(void **state)
{
    fixture *f = *state;
    mmkv_options o = mmkv_default_options();
    mmkv *s, *t;
    o.name = f->name;
    o.parts = 4;
    o.timeout_ms = 0;
    assert_int_equal(mmkv_open(&o, &s, NULL), MMKV_OK);
    assert_int_equal(mmkv_open(&o, &t, NULL), MMKV_OK);
    assert_int_equal(s->nparts, 4);
    char kb[32];
    int held = -1, same = 0, other = 0;
    for (int i = 0; i < 200; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        uint32_t p = (uint32_t)(((uint64_t)(uint32_t)key_hash(s->route_seed, &k) * 4) >> 32);
        if (held < 0) {
            held = (int)p;
            assert_int_equal(store_lock(s->part[held]), MMKV_OK);
        }
        mmkv_value v = v_int(i);
        int rc = mmkv_put(t, &k, &v, MMKV_PUT_REPLACE);
        if ((int)p == held) {
            assert_int_equal(rc, MMKV_BUSY);
            same++;
        } else {
            assert_int_equal(rc, MMKV_OK);
            other++;
        }
    }
    assert_true(same > 10 && other > 100);
    store_unlock(s->part[held]);
    assert_int_equal(entries_of(s), (uint64_t)other);
    expect_check_ok(s);
    mmkv_close(t);
    mmkv_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_default_options_are_as_documented),
        T(test_store_text_key_borrows_the_string),
        T(test_store_strerror_names_every_code_distinctly),
        TS(test_store_errmsg_is_set_by_an_error_and_cleared_by_success),
        TS(test_store_location_names_the_mapping_or_the_file),
        T(test_store_create_mode_creates_a_missing_mapping),
        TS(test_store_create_mode_opens_an_existing_mapping_with_its_entries),
        T(test_store_open_mode_on_a_missing_mapping_fails_with_cantopen),
        TS(test_store_open_mode_opens_an_existing_mapping),
        TS(test_store_new_mode_on_an_existing_mapping_fails_with_cantopen),
        T(test_store_new_mode_creates_a_missing_mapping),
        T(test_store_readonly_mode_on_a_missing_mapping_fails_with_cantopen),
        T(test_store_open_with_a_bad_name_fails_with_invalid),
        T(test_store_open_needs_exactly_one_of_name_and_file),
        T(test_store_open_with_an_unknown_mode_fails_with_invalid),
        T(test_store_sizes_below_64k_or_above_16g_are_invalid),
        T(test_store_check_name_accepts_lengths_1_and_64),
        T(test_store_check_name_rejects_lengths_0_and_65),
        T(test_store_check_name_accepts_letters_digits_dot_dash_underscore),
        T(test_store_check_name_rejects_other_characters),
        T(test_store_check_name_rejects_a_leading_dot),
        TS(test_store_unlink_reports_whether_the_mapping_existed),
        TS(test_store_null_value_round_trips),
        TS(test_store_integer_values_round_trip_including_min_and_max),
        TS(test_store_real_values_round_trip_bit_exact),
        TS(test_store_text_values_round_trip_with_embedded_nul_and_empty),
        TS(test_store_blob_values_round_trip_including_empty_and_large),
        TS(test_store_text_and_blob_values_keep_their_type),
        TS(test_store_empty_text_key_and_empty_blob_key_are_distinct),
        TS(test_store_text_key_and_blob_key_with_the_same_bytes_are_distinct),
        TS(test_store_keys_with_embedded_nul_differ_from_their_prefix),
        TS(test_store_get_grows_the_callers_buffer),
        TS(test_store_get_of_a_missing_key_fails_with_notfound),
        TS(test_store_key_of_65535_bytes_is_accepted),
        TS(test_store_key_of_65536_bytes_fails_with_toobig),
        TS(test_store_value_over_1e9_bytes_fails_with_toobig),
        TS(test_store_insert_of_present_key_fails_with_exists),
        TS(test_store_put_replaces_value),
        TS(test_store_del_removes_the_entry),
        TS(test_store_del_of_missing_key_fails_with_notfound),
        TS(test_store_deleted_key_can_be_inserted_again),
        TS(test_store_scan_sees_every_entry_exactly_once),
        TS(test_store_scan_stops_at_a_nonzero_return_and_returns_it),
        TS(test_store_scan_of_an_empty_store_calls_nothing),
        TS(test_store_stat_counts_entries_exactly),
        TS(test_store_stat_reports_capacity_used_kv_bytes_and_slots),
        TS(test_store_rollback_restores_the_store_exactly),
        TS(test_store_begin_inside_a_transaction_fails_with_invalid),
        TS(test_store_rollback_to_a_mark_undoes_only_later_changes),
        TS(test_store_nested_marks_roll_back_in_order),
        TS(test_store_commit_persists_after_close_and_reopen),
        TS(test_store_second_handle_sees_committed_data_only_after_commit),
        TS(test_store_close_with_an_open_transaction_rolls_it_back),
        TS(test_store_commit_and_rollback_release_the_lock),
        T(test_store_full_leaves_every_entry_intact),
        T(test_store_full_from_index_growth_leaves_every_entry_intact),
        T(test_store_full_replace_keeps_the_old_value),
        T(test_store_full_inside_a_transaction_keeps_earlier_changes),
        T(test_store_space_of_deleted_entries_is_reused_after_full),
        TS(test_store_churn_over_ten_times_the_capacity_never_fills),
        T(test_store_index_grows_past_100000_entries),
        TS(test_store_delete_after_lookup_in_a_transaction_deletes_the_right_key),
        TS(test_store_get_at_puts_the_value_after_the_callers_own_bytes),
        TS(test_store_get_without_a_value_says_whether_the_key_is_there),
        T(test_store_filling_to_full_does_not_walk_the_heap_per_insert),
        TS(test_store_random_operations_match_a_model_and_check_ok),
        TS(test_store_readonly_handle_reads_but_never_writes),
        TS(test_store_readonly_handle_sees_changes_committed_by_a_writer),
        T(test_store_file_store_persists_after_close_and_reopen),
        T(test_store_open_mode_on_a_missing_file_fails_with_cantopen),
        T(test_store_file_of_random_bytes_is_rejected_and_unchanged),
        T(test_store_file_of_zero_bytes_of_full_size_is_rejected),
        T(test_store_file_with_a_wrong_magic_is_rejected_with_format),
        T(test_store_file_of_another_format_version_is_rejected_with_format),
        T(test_store_each_part_of_a_split_mapping_has_its_own_lock),
        T(test_store_truncated_file_is_rejected_and_unchanged),
        T(test_store_named_mapping_of_random_bytes_is_rejected_and_unchanged),
        T(test_store_damaged_index_slots_are_reported_not_crashed),
        T(test_store_damaged_index_block_header_is_reported_not_crashed),
        T(test_store_damaged_record_header_is_reported_not_crashed),
        T(test_store_damaged_header_fields_are_reported_not_crashed),
        T(test_store_damaged_free_lists_are_reported_not_crashed),
        T(test_store_random_damage_anywhere_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif /* MMKV_TEST_STORE_HELPERS_ONLY */
