/*
** bench.c -- the benchmark of issue 4: the `mmap` table and the store's C API
** against an ordinary SQLite table (:memory: and a WAL database on
** /dev/shm), a trivial C-array virtual table and LMDB, in one run.
**
** USAGE
**   mmkv_bench [--quick] [--reps R] [--seconds S] [--csv FILE] [--only a,b]
**              [--clock cpu|wall] [--phase fill,single,procs] [--roles read,write,mix,update,rw,own]
**   mmkv_bench --callgrind BACKEND:WORKLOAD [--n N] [--ops M] [--value V]
**
** The full run measures every workload (workloads.c) at N = 1,000, 100,000
** and 1,000,000 entries with 32-byte and 1 KiB values, then 1, 2 and 4
** processes at once and one writer with one reader (multiproc.c), then fills
** a mapping until SQLITE_FULL, and prints tables, the targets and a CSV file
** (report.c).  --quick is a small run (a CI smoke test, under a minute).
** Single-process times are CPU time of the process by default (--clock
** cpu): on a shared machine other load then changes them little; the
** multi-process figures are wall-clock throughput by nature.
**
** --callgrind loads N entries, then runs exactly M operations inside the
** function workload_ops, so that
**   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=workload_ops \
**       mmkv_bench --callgrind mmap-sql:lookup
** counts instructions per operation (Ir / M).  tests/bench/run.sh callgrind
** does that for the interesting backends.
*/
#include "bench.h"

#include <lmdb.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int bench_in_child;
int bench_cpu_clock = 1;

/* --- "harness": the benchmark's own loop, a lookup that does nothing --- */

static int harness_create(const bench_cfg *c, bench_db **out)
{
    static char handle; /* any non-NULL handle will do */
    (void)c;
    *out = (bench_db *)&handle;
    return 0;
}

static void harness_close(bench_db *d)
{
    (void)d;
}

static void harness_destroy(const bench_cfg *c)
{
    (void)c;
}

static int harness_get(bench_db *d, const char *key, uint64_t *sink)
{
    (void)d;
    *sink += (unsigned char)key[0];
    return 0;
}

static int harness_put(bench_db *d, const char *key, const void *val, uint32_t vlen)
{
    (void)d, (void)key, (void)val, (void)vlen;
    return 0;
}

static int harness_txn(bench_db *d)
{
    (void)d;
    return 0;
}

static const backend be_harness = {
    "harness",
    "the benchmark loop alone (key made, nothing looked up): its overhead",
    0,
    1,
    NULL,
    harness_create,
    NULL,
    harness_close,
    harness_destroy,
    harness_get,
    harness_put,
    NULL,
    harness_txn,
    harness_txn,
    NULL,
    NULL,
    NULL, 0, NULL};

static const backend *const all_backends[] = {
    &be_mmap_sql, &be_mem_sql, &be_wal_sql,   &be_array_sql, &be_array_txn_sql,
    &be_array_lock_sql,
    &be_mmkv_c,   &be_lmdb,    &be_lmdb_1txn, &be_harness,   &be_lock_floor,
    &be_mmap_sqlp, &be_mmkv_cp, &be_lock_floorp};
#define NBACKENDS (int)(sizeof all_backends / sizeof all_backends[0])

/* Options of a run. */
typedef struct options {
    int quick, reps;
    double seconds, proc_seconds;
    const char *csv, *only, *callgrind, *phases, *roles;
    uint64_t cg_n, cg_ops;
    uint64_t procs_n; /* entries of the multi-process runs (0: the default) */
    uint32_t cg_value;
} options;

/* ---------------------------------------------------------------- helpers */

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (bench_in_child) _exit(1);
    exit(1);
}

double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_clock(void)
{
    struct timespec ts;
    clock_gettime(bench_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double cpu_sec(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint32_t *load_order; /* entry numbers in key order, for fast loading */
static uint64_t nkeys;
static unsigned char *pool; /* values are windows into this pool */
#define POOL_SPREAD 4096

/* A bijective 64-bit mix: keys are spread over the key space. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static int cmp_mixed(const void *a, const void *b)
{
    uint64_t x = mix64(*(const uint32_t *)a), y = mix64(*(const uint32_t *)b);
    return x < y ? -1 : x > y;
}

/* Prepares loading of entries [0, n) in key order and a value pool for
** vsize bytes. */
void keys_prepare(uint64_t n, uint32_t vsize)
{
    free(load_order);
    free(pool);
    load_order = malloc(n * sizeof *load_order);
    pool = malloc(vsize + POOL_SPREAD);
    if (!load_order || !pool) die("out of memory for %llu keys", (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        load_order[i] = (uint32_t)i;
    qsort(load_order, n, sizeof *load_order, cmp_mixed);
    nkeys = n;
    uint64_t r = 42;
    for (uint32_t i = 0; i < vsize + POOL_SPREAD; i++)
        pool[i] = (unsigned char)(' ' + rng_next(&r) % 95);
}

/* The key of entry i: mix64(i) in 16 hex digits, most significant first
** (so key order is numeric order).  Made on the spot in one of 8 rotating
** buffers: like an application's key it is in cache, and the benchmark does
** not add a cache miss of its own to every operation. */
const char *key_of(uint64_t i)
{
    static char hex2[256][2], ring[8][KEY_LEN + 1];
    static unsigned next;
    if (!hex2[0][0])
        for (int b = 0; b < 256; b++) {
            hex2[b][0] = "0123456789abcdef"[b >> 4];
            hex2[b][1] = "0123456789abcdef"[b & 15];
        }
    char *k = ring[next++ & 7];
    uint64_t h = mix64(i);
    for (int d = KEY_LEN / 2 - 1; d >= 0; d--, h >>= 8)
        memcpy(k + 2 * d, hex2[h & 255], 2);
    return k;
}

const void *value_of(uint64_t salt)
{
    return pool + salt % POOL_SPREAD;
}

/* Capacity for an mmap store of c: records, an index that may be twice
** the entries over its load limit (and the old one while it regrows), the
** records of one open batch, and slack. */
uint64_t mapping_bytes(const bench_cfg *c)
{
    uint64_t rec = (8 + KEY_LEN + (uint64_t)c->vsize + 7) & ~(uint64_t)7;
    uint64_t bytes = c->n * (rec + 40) * 5 / 4 + 2000 * rec + ((uint64_t)4 << 20);
    return (bytes + ((uint64_t)1 << 20) - 1) & ~(((uint64_t)1 << 20) - 1);
}

#define MAX_CLEANUP 256 /* a full run registers about 70 */
static char *cleanup_paths[MAX_CLEANUP];
static int ncleanup;
static pid_t main_pid;

void cleanup_register(const char *path)
{
    for (int i = 0; i < ncleanup; i++)
        if (!strcmp(cleanup_paths[i], path)) return;
    if (ncleanup == MAX_CLEANUP) die("too many files to remove at exit (%s)", path);
    char *copy = strdup(path);
    if (!copy) die("out of memory");
    cleanup_paths[ncleanup++] = copy;
}

/* Removes every file and mapping the run made (in the main process). */
static void cleanup_all(void)
{
    if (getpid() != main_pid) return;
    for (int i = 0; i < ncleanup; i++)
        if (cleanup_paths[i]) unlink(cleanup_paths[i]);
}

static void on_signal(int sig)
{
    cleanup_all();
    _exit(128 + sig);
}

/* Loads entries [0, n) in key order (B-trees load fastest so), 10,000 per
** transaction. */
int load_entries(const backend *b, bench_db *d, uint64_t n, uint32_t vsize)
{
    uint64_t done = 0;
    for (uint64_t j = 0; j < nkeys && done < n;) {
        if (b->begin(d)) return -1;
        for (uint64_t k = 0; k < 10000 && j < nkeys; j++) {
            if (load_order[j] >= n) continue;
            if (b->put(d, key_of(load_order[j]), value_of(load_order[j]), vsize)) return -1;
            k++;
            done++;
        }
        if (b->commit(d)) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- options */

static void usage(void)
{
    fprintf(stderr,
            "usage: mmkv_bench [--quick] [--reps R] [--seconds S] [--csv FILE] [--only a,b]\n"
            "                  [--clock cpu|wall] [--phase fill,single,procs]\n"
            "                  [--roles read,write,mix,update,rw,own] [--procs-n N (default 100000)]\n"
            "       mmkv_bench --callgrind BACKEND:WORKLOAD [--n N] [--ops M] [--value V]\n"
            "backends: mmap-sql mem-sql wal-sql array-sql array-txn-sql array-lock-sql mmkv-c lmdb\n"
            "          lmdb-1txn\n"
            "          (multi-process runs also: lock-floor, lock-floor16, mmap-sql16 and mmkv-c16)\n"
            "workloads: lookup put-auto delete scan mix90/10 (a scan counts as one operation)\n");
    exit(2);
}

static void parse_options(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->csv = "bench.csv";
    o->cg_n = 100000;
    o->cg_ops = 100000;
    o->cg_value = 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            o->quick = 1;
            continue;
        }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--reps"))
            o->reps = atoi(v);
        else if (!strcmp(a, "--seconds"))
            o->seconds = atof(v);
        else if (!strcmp(a, "--csv"))
            o->csv = v;
        else if (!strcmp(a, "--only"))
            o->only = v;
        else if (!strcmp(a, "--phase"))
            o->phases = v;
        else if (!strcmp(a, "--roles"))
            o->roles = v;
        else if (!strcmp(a, "--callgrind"))
            o->callgrind = v;
        else if (!strcmp(a, "--n"))
            o->cg_n = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--procs-n") && strtoull(v, NULL, 10) >= 1000)
            o->procs_n = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--ops"))
            o->cg_ops = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--value"))
            o->cg_value = (uint32_t)atoi(v);
        else if (!strcmp(a, "--clock") && (!strcmp(v, "cpu") || !strcmp(v, "wall")))
            bench_cpu_clock = !strcmp(v, "cpu");
        else
            usage();
    }
    if (!o->reps) o->reps = o->quick ? 3 : 5;
    if (o->reps > MAX_REPS) o->reps = MAX_REPS;
    if (o->seconds <= 0) o->seconds = o->quick ? 0.01 : 0.1;
    o->proc_seconds = o->quick ? 0.03 : 0.3;
}

/* Returns non-zero if phase p (fill, single, procs) is to run (--phase). */
static int phase_on(const options *o, const char *p)
{
    return !o->phases || strstr(o->phases, p) != NULL;
}

/* Returns non-zero if multi-process role r (read, write, mix, rw) is to run
** (--roles). */
static int role_on(const options *o, const char *r)
{
    return !o->roles || strstr(o->roles, r) != NULL;
}

/* Returns non-zero if backend b takes part (--only). */
static int selected(const options *o, const backend *b)
{
    if (!o->only) return 1;
    size_t n = strlen(b->name);
    for (const char *p = o->only; (p = strstr(p, b->name)) != NULL; p += n)
        if ((p == o->only || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

static const backend *backend_named(const char *name, size_t len)
{
    for (int i = 0; i < NBACKENDS; i++)
        if (strlen(all_backends[i]->name) == len && !strncmp(all_backends[i]->name, name, len))
            return all_backends[i];
    return NULL;
}

/* ---------------------------------------------------------------- phases */

/* Creates and loads store b for c; dies on failure. */
static bench_db *create_loaded(const backend *b, const bench_cfg *c)
{
    bench_db *d;
    double t0 = now_sec();
    if (b->create(c, &d)) die("%s: cannot create the store", b->name);
    if (load_entries(b, d, c->n, c->vsize)) die("%s: loading failed", b->name);
    printf("  loaded %-10s %8llu entries in %6.2f s\n", b->name, (unsigned long long)c->n,
           now_sec() - t0);
    fflush(stdout);
    return d;
}

/* Records the storage of every loaded backend per entry. */
static void record_space(const backend *const *bes, bench_db **dbs, int nb, const bench_cfg *c)
{
    for (int i = 0; i < nb; i++) {
        uint64_t used = 0, entries = 0;
        if (!bes[i]->space || bes[i]->space(dbs[i], &used, &entries) || !entries) continue;
        sample_add(sample_get("space", bes[i]->name, "bytes/entry", c->n, c->vsize, 1, "bytes"),
                   (double)used / (double)entries);
    }
}

/* Returns the position in bes[0..nb) of the backend named name, or -1. */
static int find_backend(const backend *const *bes, int nb, const char *name)
{
    for (int i = 0; name && i < nb; i++)
        if (!strcmp(bes[i]->name, name)) return i;
    return -1;
}

/* Makes store i of a configuration: created and loaded, or, for a variant
** measured on another backend's store, opened on that one. */
static bench_db *make_store(const backend *const *bes, bench_cfg *cfgs, int i)
{
    bench_db *d;
    int of = find_backend(bes, i, bes[i]->store_of);
    if (of < 0) return create_loaded(bes[i], &cfgs[i]);
    cfgs[i] = cfgs[of];
    if (bes[i]->open(&cfgs[i], &d)) die("%s: cannot open the store", bes[i]->name);
    return d;
}

/* Closes every store of a configuration and removes those it made. */
static void drop_stores(const backend *const *bes, bench_db **dbs, const bench_cfg *cfgs, int nb)
{
    for (int i = nb - 1; i >= 0; i--) {
        bes[i]->close(dbs[i]);
        if (find_backend(bes, i, bes[i]->store_of) < 0) bes[i]->destroy(&cfgs[i]);
    }
}

/* One configuration (n, vsize): load every backend, then reps rounds of
** every workload, backends interleaved so that drift hits all alike. */
/* The memory floor: nanoseconds of one load whose address depends on the
** previous one, at random cache lines of a shared anonymous mapping of
** `bytes` (shmem, the same kind of pages as a mapping in /dev/shm).  A
** lookup that must read k lines it cannot predict costs at least k times
** this; a store bigger than the caches cannot scale better. */
static double memory_floor_ns(uint64_t bytes, double seconds)
{
    uint64_t lines = bytes / 64;
    if (lines < 2) return 0;
    unsigned char *m = mmap(NULL, lines * 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                            -1, 0);
    if (m == MAP_FAILED) return 0;
    uint64_t *order = malloc(lines * sizeof *order);
    if (!order) die("out of memory");
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ bytes;
    for (uint64_t i = 0; i < lines; i++) order[i] = i;
    for (uint64_t i = lines - 1; i > 0; i--) { /* one random cycle through every line */
        rng = mix64(rng + i);
        uint64_t j = rng % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (uint64_t i = 0; i < lines; i++)
        *(uint64_t *)(void *)(m + order[i] * 64) = order[(i + 1) % lines] * 64;
    free(order);
    uint64_t at = 0, steps = 0;
    for (uint64_t i = 0; i < lines; i++) at = *(volatile uint64_t *)(void *)(m + at); /* warm */
    double t0 = bench_clock(), t;
    do {
        for (int i = 0; i < 4096; i++) at = *(volatile uint64_t *)(void *)(m + at);
        steps += 4096;
    } while ((t = bench_clock() - t0) < seconds);
    munmap(m, lines * 64);
    return at == 1 ? 0 : t * 1e9 / (double)steps; /* at is never 1: keeps the loop */
}

static void phase_single(const options *o, uint64_t n, uint32_t vsize)
{
    const backend *bes[NBACKENDS];
    bench_db *dbs[NBACKENDS];
    bench_cfg cfgs[NBACKENDS];
    int nb = 0;
    uint64_t rng = 0x1234567 ^ n;
    printf("\n-- loading N = %llu, %u-byte values\n", (unsigned long long)n, vsize);
    for (int i = 0; i < NBACKENDS; i++) {
        if (!selected(o, all_backends[i]) || all_backends[i]->procs_only) continue;
        bes[nb] = all_backends[i];
        cfgs[nb] = (bench_cfg){n, vsize, ""};
        snprintf(cfgs[nb].tag, sizeof cfgs[nb].tag, "%d-%s-%llu-%u", (int)getpid(), bes[nb]->name,
                 (unsigned long long)n, vsize);
        dbs[nb] = make_store(bes, cfgs, nb);
        nb++;
    }
    record_space(bes, dbs, nb, &cfgs[0]);
    if (vsize == 32)
        for (int r = 0; r < o->reps; r++)
            sample_add(sample_get("single", "memory", "dependent-load", n, vsize, 1,
                                  bench_cpu_clock ? "cpu-ns/op" : "wall-ns/op"),
                       memory_floor_ns(mapping_bytes(&cfgs[0]), o->seconds));
    for (int r = 0; r < o->reps; r++)
        for (int w = 0; w < W_COUNT; w++)
            for (int i = 0; i < nb; i++) {
                if (!workload_supported(bes[i], w)) continue;
                double ns = workload_run(bes[i], dbs[i], &cfgs[i], w, o->seconds, &rng);
                sample_add(sample_get("single", bes[i]->name, workload_names[w], n, vsize, 1,
                                      bench_cpu_clock ? "cpu-ns/op" : "wall-ns/op"),
                           ns);
            }
    drop_stores(bes, dbs, cfgs, nb);
    report_single(n, vsize, bes, nb);
    fflush(stdout);
}

/* The backends that several processes can share. */
static int shared_backends(const options *o, const backend **bes, bench_cfg *cfgs, uint64_t n)
{
    int nb = 0;
    for (int i = 0; i < NBACKENDS; i++) {
        const backend *b = all_backends[i];
        if (!selected(o, b) || !b->shared || b->lookups_only) continue;
        bes[nb] = b;
        cfgs[nb] = (bench_cfg){n, 32, ""};
        snprintf(cfgs[nb].tag, sizeof cfgs[nb].tag, "%d-%s-mp", (int)getpid(), b->name);
        bench_db *d = create_loaded(b, &cfgs[nb]);
        b->close(d); /* workers open their own handles */
        nb++;
    }
    return nb;
}

static const char *const role_names[4] = {"read", "write", "mix90/10", "update"};

/* Records one multi-process result. */
static void record_mp(const backend *b, const char *role, uint64_t n, int procs, const mp_result *r)
{
    sample_add(sample_get("procs", b->name, role, n, 32, procs, "ops/s"), r->ops_per_sec);
    sample_add(sample_get("cpu", b->name, role, n, 32, procs, "cpu/wall"), r->cpu_per_wall);
}

/* One writer and one reader: the reader alone, with the writer, and with a
** busy loop (the control: it competes for the CPU, not for the store). */
static void reader_runs(const options *o, const backend *b, const bench_cfg *c)
{
    static const int others[3] = {-1, ROLE_WRITE, ROLE_SPIN};
    static const char *const names[3] = {"reader-alone", "reader-with-writer",
                                         "reader-with-spinner"};
    mp_result r;
    for (int k = 0; k < 3; k++) {
        if (mp_reader_with(b, c, others[k], o->proc_seconds, &r))
            die("%s: a worker failed", b->name);
        int procs = others[k] < 0 ? 1 : 2;
        sample_add(sample_get("rw", b->name, names[k], c->n, 32, procs, "ops/s"),
                   r.reader_ops_per_sec);
        sample_add(sample_get("rw-cpu", b->name, names[k], c->n, 32, procs, "cpu/wall"),
                   r.reader_cpu_per_wall);
        if (others[k] == ROLE_WRITE)
            sample_add(sample_get("rw", b->name, "writer", c->n, 32, 2, "ops/s"),
                       r.writer_ops_per_sec);
    }
}

/* 1, 2 and 4 processes, then one writer with one reader. */
static void phase_procs(const options *o, uint64_t n)
{
    static const int procs[3] = {1, 2, 4};
    static const char *const roles[4] = {"read", "write", "mix", "update"};
    const backend *bes[NBACKENDS];
    bench_cfg cfgs[NBACKENDS];
    mp_result r;
    printf("\n-- loading N = %llu for the multi-process runs\n", (unsigned long long)n);
    int nb = shared_backends(o, bes, cfgs, n);
    /* A backend's runs with 1, 2 and 4 processes follow one another, so that
    ** a slow or fast spell of the machine (seconds long, see RESULTS.md)
    ** falls on all three rather than on one of the figures a ratio divides. */
    for (int rep = 0; rep < o->reps; rep++) {
        for (int role = 0; role < 4; role++)
            for (int i = 0; role_on(o, roles[role]) && i < nb; i++)
                for (int p = 0; p < 3; p++) {
                    if (role == ROLE_UPDATE ? !bes[i]->update /* some have no UPDATE */
                                            : bes[i]->procs_only && role != ROLE_WRITE)
                        continue; /* the split and floor stores: writers (and updaters) only */
                    if (mp_run(bes[i], &cfgs[i], procs[p], role, o->proc_seconds, &r))
                        die("%s: a worker failed", bes[i]->name);
                    record_mp(bes[i], role_names[role], n, procs[p], &r);
                }
        for (int i = 0; role_on(o, "own") && i < nb; i++)
            for (int p = 0; p < 2; p++) { /* 1 and 2 writers */
                if (strcmp(bes[i]->name, "mmap-sql") && strcmp(bes[i]->name, "mmkv-c")) continue;
                const char *be = bes[i]->name;
                if (mp_run_own(bes[i], &cfgs[i], procs[p], ROLE_WRITE, o->proc_seconds, &r))
                    die("%s: a worker failed", be);
                sample_add(sample_get("procs-own", be, "write", n, 32, procs[p], "ops/s"),
                           r.ops_per_sec);
                sample_add(sample_get("cpu-own", be, "write", n, 32, procs[p], "cpu/wall"),
                           r.cpu_per_wall);
            }
        for (int i = 0; role_on(o, "rw") && i < nb; i++)
            if (!bes[i]->procs_only) reader_runs(o, bes[i], &cfgs[i]);
    }
    for (int i = 0; i < nb; i++)
        bes[i]->destroy(&cfgs[i]);
    report_procs(n, bes, nb, procs, 3);
    report_rw(n, bes, nb);
    fflush(stdout);
}

/* Fills mappings of a few sizes until SQLITE_FULL and records the fill. */
static void phase_fill(const options *o)
{
    static const uint64_t sizes[3] = {(uint64_t)1 << 20, (uint64_t)16 << 20, (uint64_t)64 << 20};
    for (int i = 0; i < (o->quick ? 1 : 3); i++) {
        uint64_t entries, kv;
        char tag[64];
        snprintf(tag, sizeof tag, "%d-fill-%d", (int)getpid(), i);
        if (mmap_fill(tag, sizes[i], &entries, &kv)) die("the fill of a mapping failed");
        sample_add(sample_get("fill", "mmap-sql", "entries", sizes[i], 32, 1, "entries"),
                   (double)entries);
        sample_add(sample_get("fill", "mmap-sql", "fill", sizes[i], 32, 1, "kv/capacity"),
                   (double)kv / (double)sizes[i]);
    }
    report_space();
}

/* Prints the load average: other work on the machine disturbs timings. */
static void print_load(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fgets(buf, sizeof buf, f)) buf[strcspn(buf, "\n")] = 0;
    if (f) fclose(f);
    printf("load average %s: %s\n", when, buf);
}

/* Prints what was run where. */
static void print_header(const options *o, int argc, char **argv)
{
    char when[64], model[256] = "?", line[512];
    time_t t = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %z", localtime(&t));
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    printf("mmkv_bench:");
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n%s; %ld CPUs (%s); SQLite %s; %s\n", when, sysconf(_SC_NPROCESSORS_ONLN), model,
           sqlite3_libversion(), mdb_version(NULL, NULL, NULL));
    printf("%d runs per figure, %.3f s per single-process run (%s time), %.3f s (wall) per "
           "multi-process run\n",
           o->reps, o->seconds, bench_cpu_clock ? "CPU" : "wall", o->proc_seconds);
    print_load("at start");
    printf("backends:\n");
    for (int i = 0; i < NBACKENDS; i++)
        if (selected(o, all_backends[i]))
            printf("  %-10s %s\n", all_backends[i]->name, all_backends[i]->about);
    printf("workloads (16-byte random keys, every key present):\n");
    for (int w = 0; w < W_COUNT; w++)
        printf("  %-10s %s\n", workload_names[w], workload_about[w]);
}

/* --callgrind BACKEND:WORKLOAD: load, warm up, then exactly cg_ops operations
** inside workload_ops (the function callgrind is told to count). */
static int run_callgrind(const options *o)
{
    const char *colon = strchr(o->callgrind, ':');
    const backend *b = colon ? backend_named(o->callgrind, (size_t)(colon - o->callgrind)) : NULL;
    int w = -1;
    for (int i = 0; colon && i < W_COUNT; i++)
        if (!strcmp(colon + 1, workload_names[i])) w = i;
    if (!b || w < 0 || w == W_PUT_BATCH || !workload_supported(b, w)) usage();
    bench_cfg c = {o->cg_n, o->cg_value, ""};
    snprintf(c.tag, sizeof c.tag, "%d-cg", (int)getpid());
    keys_prepare(c.n, c.vsize);
    bench_db *d = create_loaded(b, &c);
    uint64_t rng = 99;
    workload_warmup(b, d, &c, w, o->cg_ops, &rng); /* not counted */
    if (b->read_chunk) b->read_chunk(d, 1);
    workload_ops(b, d, &c, w, o->cg_ops, &rng);
    if (b->read_chunk) b->read_chunk(d, 0);
    printf("callgrind: %s %s, N=%llu, %llu operations counted (Ir / %llu = per op)\n", b->name,
           workload_names[w], (unsigned long long)c.n, (unsigned long long)o->cg_ops,
           (unsigned long long)o->cg_ops);
    b->close(d);
    b->destroy(&c);
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    main_pid = getpid();
    atexit(cleanup_all);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGSEGV, on_signal);
    signal(SIGABRT, on_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_options(argc, argv, &o);
    if (o.callgrind) return run_callgrind(&o);
    static const uint64_t full_n[3] = {1000, 100000, 1000000}, quick_n[3] = {1000, 10000, 100000};
    const uint64_t *ns = o.quick ? quick_n : full_n;
    uint64_t n_procs = o.procs_n ? o.procs_n : o.quick ? 10000 : 100000;
    double t0 = now_sec();
    print_header(&o, argc, argv);
    keys_prepare(ns[2], 1024);
    if (phase_on(&o, "fill")) phase_fill(&o);
    for (int i = 0; phase_on(&o, "single") && i < 3; i++)
        phase_single(&o, ns[i], 32);
    for (int i = 0; phase_on(&o, "single") && i < (o.quick ? 1 : 3); i++)
        phase_single(&o, ns[i], 1024);
    if (phase_on(&o, "procs")) phase_procs(&o, n_procs);
    report_targets(ns[0], ns[1], ns[2], n_procs);
    if (report_csv(o.csv)) die("cannot write %s", o.csv);
    printf("\n");
    print_load("at end");
    printf("CSV: %s; total time %.0f s\n", o.csv, now_sec() - t0);
    return 0;
}
