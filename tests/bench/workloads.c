/*
** workloads.c -- one workload against one open backend, timed.
**
** Keys are picked uniformly at random among the n loaded entries, so every
** lookup finds its key and every write replaces an entry: the store keeps n
** entries from one measurement to the next.  A measurement runs chunks of
** operations until `seconds` have passed and returns nanoseconds per
** operation (per row for a scan).  The delete workload deletes a chunk of
** distinct keys (timed) and puts them back in one transaction (not timed).
** Times are read from bench_clock(): by default the CPU time of this
** process, so that other load on a shared machine does not count.
*/
#include "bench.h"

#include <stdlib.h>

#define CHUNK 256   /* operations between two looks at the clock */
#define BATCH 1000  /* writes per transaction in the batched workload */
#define DEL_RUN 500 /* keys deleted between two untimed re-inserts */

const char *const workload_names[W_COUNT] = {"lookup", "put-auto", "put-batch",
                                             "delete", "scan",     "mix90/10"};
const char *const workload_about[W_COUNT] = {
    "point lookup by key (SELECT value FROM kv WHERE key=?)",
    "INSERT OR REPLACE, one per statement, autocommit",
    "INSERT OR REPLACE, 1000 per transaction (time per row, commit included)",
    "DELETE by key, autocommit (re-inserted untimed)",
    "full scan, time per row",
    "90% lookups, 10% autocommit INSERT OR REPLACE"};

/* Returns a random entry number below n. */
static uint64_t pick(uint64_t *rng, uint64_t n)
{
    return ((rng_next(rng) >> 32) * n) >> 32;
}

int workload_supported(const backend *b, int w)
{
    return w == W_LOOKUP || !b->lookups_only;
}

/* Looks up one random key; dies if it is missing. */
static void one_get(const backend *b, bench_db *d, const bench_cfg *c, uint64_t *rng,
                    uint64_t *sink)
{
    uint64_t i = pick(rng, c->n);
    int rc = b->get(d, key_of(i), sink);
    if (rc) die("%s: lookup of entry %llu failed (%d)", b->name, (unsigned long long)i, rc);
}

/* Replaces the value of one random key. */
static void one_put(const backend *b, bench_db *d, const bench_cfg *c, uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    if (b->put(d, key_of(((r >> 32) * c->n) >> 32), value_of(r), c->vsize))
        die("%s: write failed", b->name);
}

/* Runs CHUNK operations of workload w (lookup, put-auto, mix). */
static void run_chunk(const backend *b, bench_db *d, const bench_cfg *c, int w, uint64_t *rng,
                      uint64_t *sink)
{
    if (w == W_LOOKUP && b->read_chunk) b->read_chunk(d, 1);
    for (int k = 0; k < CHUNK; k++) {
        if (w == W_PUT_AUTO || (w == W_MIX && rng_next(rng) % 10 == 0))
            one_put(b, d, c, rng);
        else
            one_get(b, d, c, rng, sink);
    }
    if (w == W_LOOKUP && b->read_chunk) b->read_chunk(d, 0);
}

/* Runs one transaction of BATCH (at most n) writes; returns the count. */
static uint64_t run_batch(const backend *b, bench_db *d, const bench_cfg *c, uint64_t *rng)
{
    uint64_t n = c->n < BATCH ? c->n : BATCH;
    if (b->begin(d)) die("%s: begin failed", b->name);
    for (uint64_t k = 0; k < n; k++)
        one_put(b, d, c, rng);
    if (b->commit(d)) die("%s: commit failed", b->name);
    return n;
}

/* Deletes `run` distinct keys from entry `from` on; returns seconds taken.
** Puts them back afterwards, untimed. */
static double delete_run(const backend *b, bench_db *d, const bench_cfg *c, uint64_t from,
                         uint64_t run)
{
    double t0 = bench_clock();
    for (uint64_t k = 0; k < run; k++)
        if (b->del(d, key_of((from + k) % c->n))) die("%s: delete failed", b->name);
    double t = bench_clock() - t0;
    if (b->begin(d)) die("%s: begin failed", b->name);
    for (uint64_t k = 0; k < run; k++)
        if (b->put(d, key_of((from + k) % c->n), value_of(from + k), c->vsize))
            die("%s: re-insert failed", b->name);
    if (b->commit(d)) die("%s: commit failed", b->name);
    return t;
}

/* The delete workload: returns ns per delete. */
static double run_deletes(const backend *b, bench_db *d, const bench_cfg *c, double seconds,
                          uint64_t *rng)
{
    uint64_t run = c->n / 10 ? (c->n / 10 < DEL_RUN ? c->n / 10 : DEL_RUN) : 1, ops = 0;
    double timed = 0, t0 = now_sec();
    while (timed < seconds && now_sec() - t0 < 10 * seconds) {
        timed += delete_run(b, d, c, pick(rng, c->n), run);
        ops += run;
    }
    return timed * 1e9 / (double)ops;
}

/* The scan workload: whole scans until the time is up; returns ns per row. */
static double run_scans(const backend *b, bench_db *d, const bench_cfg *c, double seconds,
                        uint64_t *sink)
{
    uint64_t rows = 0;
    double t0 = bench_clock(), t;
    do {
        int64_t r = b->scan(d, sink);
        if (r != (int64_t)c->n)
            die("%s: scan saw %lld rows, expected %llu", b->name, (long long)r,
                (unsigned long long)c->n);
        rows += (uint64_t)r;
    } while ((t = bench_clock() - t0) < seconds);
    return t * 1e9 / (double)rows;
}

double workload_run(const backend *b, bench_db *d, const bench_cfg *c, int w, double seconds,
                    uint64_t *rng)
{
    static volatile uint64_t keep;
    uint64_t sink = 0, ops = 0;
    double t0 = bench_clock(), t;
    if (w == W_DELETE) return run_deletes(b, d, c, seconds, rng);
    if (w == W_SCAN) {
        double ns = run_scans(b, d, c, seconds, &sink);
        keep += sink;
        return ns;
    }
    do {
        if (w == W_PUT_BATCH) {
            ops += run_batch(b, d, c, rng);
        } else {
            run_chunk(b, d, c, w, rng, &sink);
            ops += CHUNK;
        }
    } while ((t = bench_clock() - t0) < seconds);
    keep += sink;
    return t * 1e9 / (double)ops;
}

/* Exactly ops operations of w.  A scan operation is one whole scan; delete
** operations take entries in order across calls (ops * calls <= n). */
static __attribute__((noinline)) int run_ops(const backend *b, bench_db *d, const bench_cfg *c,
                                             int w, uint64_t ops, uint64_t *rng)
{
    static volatile uint64_t keep;
    static uint64_t next_delete;
    uint64_t sink = 0;
    for (uint64_t k = 0; k < ops; k++) {
        if (w == W_SCAN) {
            if (b->scan(d, &sink) < 0) die("%s: scan failed", b->name);
        } else if (w == W_DELETE) {
            if (b->del(d, key_of(next_delete++ % c->n))) die("%s: delete failed", b->name);
        } else if (w == W_PUT_AUTO || (w == W_MIX && rng_next(rng) % 10 == 0)) {
            one_put(b, d, c, rng);
        } else {
            one_get(b, d, c, rng, &sink);
        }
    }
    keep += sink;
    return 0;
}

/* The only function callgrind counts (--toggle-collect=workload_ops). */
__attribute__((noinline)) int workload_ops(const backend *b, bench_db *d, const bench_cfg *c, int w,
                                           uint64_t ops, uint64_t *rng)
{
    return run_ops(b, d, c, w, ops, rng);
}

/* The same operations, not counted by callgrind (a warm-up). */
int workload_warmup(const backend *b, bench_db *d, const bench_cfg *c, int w, uint64_t ops,
                    uint64_t *rng)
{
    return run_ops(b, d, c, w, ops, rng);
}
