/*
** bench.h -- declarations shared by the parts of the benchmark (issue 4).
**
** The benchmark runs the same workloads against several key/value stores
** ("backends") that all hide behind one table of functions, `backend`.
** bench.c drives the run, workloads.c times one workload against one
** backend, multiproc.c runs several processes at once, report.c turns the
** samples into tables, CSV and the targets.
*/
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

#define KEY_LEN 16 /* every key is 16 bytes of text */
#define MAX_REPS 15

/* What one store holds: n entries of KEY_LEN-byte keys and vsize-byte values. */
typedef struct bench_cfg {
    uint64_t n;
    uint32_t vsize;
    char tag[64]; /* unique per process and store: used in names of files and mappings */
} bench_cfg;

typedef struct bench_db bench_db; /* one open handle, private to its backend */

/* One kind of store.  Every function returns 0 on success and -1 on error
** (after printing the error to stderr), unless it says otherwise. */
typedef struct backend {
    const char *name;     /* short name used in tables, CSV and --only */
    const char *about;    /* one line for the legend */
    int shared;           /* several processes can open the store that create made */
    int lookups_only;     /* a variant measured for lookups alone */
    const char *store_of; /* measured on the store of that backend (opened, not loaded) */
    int (*create)(const bench_cfg *c, bench_db **out); /* a new, empty store */
    int (*open)(const bench_cfg *c, bench_db **out);   /* attach to it (if shared) */
    void (*close)(bench_db *d);
    void (*destroy)(const bench_cfg *c); /* removes its files or mapping */
    /* Looks up key; adds something of the value to *sink.  1 = not found. */
    int (*get)(bench_db *d, const char *key, uint64_t *sink);
    /* Inserts or replaces; commits at once unless begin() was called. */
    int (*put)(bench_db *d, const char *key, const void *val, uint32_t vlen);
    int (*del)(bench_db *d, const char *key);
    int (*begin)(bench_db *d);
    int (*commit)(bench_db *d);
    /* Reads every entry; returns the number of rows or -1. */
    int64_t (*scan)(bench_db *d, uint64_t *sink);
    /* Optional: called with 1 before and 0 after a timed chunk of lookups. */
    void (*read_chunk)(bench_db *d, int start);
    /* Optional: bytes of storage the entries take; 0 on success. */
    int (*space)(bench_db *d, uint64_t *used, uint64_t *entries);
    int procs_only; /* measured in the multi-process runs only */
    /* Optional: reads the value of a key that exists and replaces it, in
    ** one transaction (SQL: UPDATE kv SET value = ?2 WHERE key = ?1). */
    int (*update)(bench_db *d, const char *key, const void *val, uint32_t vlen);
} backend;

extern const backend be_mmap_sql, be_mem_sql, be_wal_sql, be_array_sql, be_array_txn_sql;
extern const backend be_array_lock_sql;
extern const backend be_lmdb, be_lmdb_1txn, be_mmkv_c, be_lock_floor;
/* The parts of the mapping of the split-store backends (mmap-sql16, mmkv-c16). */
#define BENCH_PARTS 16
#define BENCH_PARTS_STR "16"
#define BENCH_PARTS_NAME(base) base "16"
extern const backend be_mmap_sqlp, be_mmkv_cp, be_lock_floorp;

/* --- helpers (bench.c) --- */
extern int bench_in_child; /* set in worker processes: die() then _exits */
double now_sec(void);
double bench_clock(void); /* the clock of single-process timings (--clock) */
extern int bench_cpu_clock;
double cpu_sec(void);
const char *key_of(uint64_t i);             /* the key of entry i */
const void *value_of(uint64_t salt);        /* a vsize-byte value */
uint64_t rng_next(uint64_t *state);         /* xorshift64* */
uint64_t mapping_bytes(const bench_cfg *c); /* size for an mmap store */
void keys_prepare(uint64_t n, uint32_t vsize);
void cleanup_register(const char *path); /* a file to unlink at exit */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int load_entries(const backend *b, bench_db *d, uint64_t n, uint32_t vsize);

/* Fills a new mapping of `capacity` bytes through SQL (autocommit INSERTs)
** until SQLITE_FULL; returns its entries and key+value bytes (backend_sql.c). */
int mmap_fill(const char *tag, uint64_t capacity, uint64_t *entries, uint64_t *kv_bytes);

/* --- the array virtual table (vtab_array.c) --- */
struct sqlite3;
int array_vtab_register(struct sqlite3 *db);

/* --- workloads (workloads.c) --- */
enum { W_LOOKUP, W_PUT_AUTO, W_PUT_BATCH, W_DELETE, W_SCAN, W_MIX, W_COUNT };
extern const char *const workload_names[W_COUNT];
extern const char *const workload_about[W_COUNT];
int workload_supported(const backend *b, int w);
/* Times workload w for about `seconds`; returns ns per operation (per row
** for a scan). */
double workload_run(const backend *b, bench_db *d, const bench_cfg *c, int w, double seconds,
                    uint64_t *rng);
/* Runs exactly ops operations of w (for callgrind); returns 0. */
int workload_ops(const backend *b, bench_db *d, const bench_cfg *c, int w, uint64_t ops,
                 uint64_t *rng);
int workload_warmup(const backend *b, bench_db *d, const bench_cfg *c, int w, uint64_t ops,
                    uint64_t *rng);

/* --- several processes (multiproc.c) --- */
enum { ROLE_READ, ROLE_WRITE, ROLE_MIX, ROLE_UPDATE, ROLE_SPIN };
typedef struct mp_result {
    double ops_per_sec; /* aggregate over the processes */
    double cpu_per_wall;
    double reader_ops_per_sec; /* writer+reader runs: the reader's alone */
    double reader_cpu_per_wall;
    double writer_ops_per_sec;
} mp_result;
int mp_run(const backend *b, const bench_cfg *c, int procs, int role, double seconds, mp_result *r);
/* The same, each worker on a store of its own (created and loaded by the
** parent, untimed, and removed after): the ceiling of a store split into
** parts. */
int mp_run_own(const backend *b, const bench_cfg *c, int procs, int role, double seconds,
               mp_result *r);
/* A reader for `seconds`, alone (other = -1) or with a second process of
** role `other` (ROLE_WRITE, or ROLE_SPIN: a busy loop that touches no store,
** the control for CPU competition). */
int mp_reader_with(const backend *b, const bench_cfg *c, int other, double seconds, mp_result *r);

/* --- samples and reports (report.c) --- */
typedef struct sample_set {
    char section[16]; /* "single", "procs", "rw", "space", "cg" */
    char backend[24];
    char workload[24];
    uint64_t n;
    uint32_t vsize;
    int procs;
    char unit[16];
    double v[MAX_REPS];
    int nv;
} sample_set;
sample_set *sample_get(const char *section, const char *backend, const char *workload, uint64_t n,
                       uint32_t vsize, int procs, const char *unit);
void sample_add(sample_set *s, double v);
double sample_median(const sample_set *s);
double sample_min(const sample_set *s);
double sample_max(const sample_set *s);
sample_set *sample_find(const char *section, const char *backend, const char *workload, uint64_t n,
                        uint32_t vsize, int procs);
void report_single(uint64_t n, uint32_t vsize, const backend *const *bes, int nbes);
void report_procs(uint64_t n, const backend *const *bes, int nbes, const int *procs, int np);
void report_rw(uint64_t n, const backend *const *bes, int nbes);
void report_space(void);
void report_targets(uint64_t n_small, uint64_t n_mid, uint64_t n_big, uint64_t n_procs);
int report_csv(const char *path);

#endif
