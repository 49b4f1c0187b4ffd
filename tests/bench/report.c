/*
** report.c -- samples, the printed tables, the CSV file and the targets.
**
** Every figure is a set of samples (one per run); tables show the median
** and the min-max range, and every ratio is a ratio of medians.  Ratios of
** times read "this backend takes X times the time of that one": below 1 is
** faster.  The targets of issue 4 are checked from the same medians and
** printed with PASS or MISS; nothing is rounded in anyone's favour.
*/
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sample_set *sets;
static size_t nsets, capsets;

/* A checked target, kept for the CSV file. */
typedef struct target_row {
    char what[96];
    double value, limit;
    int at_most, pass;
} target_row;
static target_row targets[64];
static int ntargets;

sample_set *sample_find(const char *section, const char *backend, const char *workload, uint64_t n,
                        uint32_t vsize, int procs)
{
    for (size_t i = 0; i < nsets; i++) {
        sample_set *s = &sets[i];
        if (s->n == n && s->vsize == vsize && s->procs == procs && !strcmp(s->section, section) &&
            !strcmp(s->backend, backend) && !strcmp(s->workload, workload))
            return s;
    }
    return NULL;
}

sample_set *sample_get(const char *section, const char *backend, const char *workload, uint64_t n,
                       uint32_t vsize, int procs, const char *unit)
{
    sample_set *s = sample_find(section, backend, workload, n, vsize, procs);
    if (s) return s;
    if (nsets == capsets) {
        capsets = capsets ? capsets * 2 : 256;
        sets = realloc(sets, capsets * sizeof *sets);
        if (!sets) die("out of memory");
    }
    s = &sets[nsets++];
    memset(s, 0, sizeof *s);
    snprintf(s->section, sizeof s->section, "%s", section);
    snprintf(s->backend, sizeof s->backend, "%s", backend);
    snprintf(s->workload, sizeof s->workload, "%s", workload);
    snprintf(s->unit, sizeof s->unit, "%s", unit);
    s->n = n;
    s->vsize = vsize;
    s->procs = procs;
    return s;
}

void sample_add(sample_set *s, double v)
{
    if (s->nv < MAX_REPS) s->v[s->nv++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double sample_median(const sample_set *s)
{
    double v[MAX_REPS];
    if (!s || !s->nv) return 0;
    memcpy(v, s->v, sizeof v);
    qsort(v, (size_t)s->nv, sizeof v[0], cmp_double);
    return s->nv % 2 ? v[s->nv / 2] : (v[s->nv / 2 - 1] + v[s->nv / 2]) / 2;
}

double sample_min(const sample_set *s)
{
    double m = s->nv ? s->v[0] : 0;
    for (int i = 1; i < s->nv; i++)
        if (s->v[i] < m) m = s->v[i];
    return m;
}

double sample_max(const sample_set *s)
{
    double m = s->nv ? s->v[0] : 0;
    for (int i = 1; i < s->nv; i++)
        if (s->v[i] > m) m = s->v[i];
    return m;
}

/* Formats x with about three significant digits. */
static const char *num(char *buf, double x)
{
    if (x < 10)
        snprintf(buf, 24, "%.2f", x);
    else if (x < 100)
        snprintf(buf, 24, "%.1f", x);
    else
        snprintf(buf, 24, "%.0f", x);
    return buf;
}

/* Formats "median [min-max]". */
static const char *spread(char *buf, const sample_set *s, double scale)
{
    char a[24], b[24], c[24];
    snprintf(buf, 80, "%s [%s-%s]", num(a, sample_median(s) * scale), num(b, sample_min(s) * scale),
             num(c, sample_max(s) * scale));
    return buf;
}

/* The time-ratio columns of the single-process tables. */
static const char *const baselines[] = {"mem-sql", "wal-sql", "array-sql", "lmdb", "lmdb-1txn"};
#define NBASE (int)(sizeof baselines / sizeof baselines[0])

/* Prints one row of a single-process table. */
static void single_row(const char *w, const char *be, uint64_t n, uint32_t vsize)
{
    char buf[80], r[24];
    const sample_set *s = sample_find("single", be, w, n, vsize, 1);
    if (!s || !s->nv) return;
    printf("  %-10s %-10s %-24s", w, be, spread(buf, s, 1));
    for (int i = 0; i < NBASE; i++) {
        const sample_set *b = sample_find("single", baselines[i], w, n, vsize, 1);
        if (b && b->nv && strcmp(baselines[i], be))
            printf(" %9s", num(r, sample_median(s) / sample_median(b)));
        else
            printf(" %9s", "-");
    }
    printf("\n");
}

/* Prints the storage each backend takes per entry at this size. */
static void space_line(const backend *const *bes, int nbes, uint64_t n, uint32_t vsize)
{
    char buf[24];
    printf("  storage per entry (bytes, entry = %u key+value bytes):", KEY_LEN + vsize);
    for (int i = 0; i < nbes; i++) {
        const sample_set *s = sample_find("space", bes[i]->name, "bytes/entry", n, vsize, 1);
        if (s && s->nv) printf(" %s %s;", bes[i]->name, num(buf, sample_median(s)));
    }
    printf("\n\n");
}

void report_single(uint64_t n, uint32_t vsize, const backend *const *bes, int nbes)
{
    printf("\n== N = %llu, %d-byte keys, %u-byte values: %s ns per operation (per row for "
           "scan),\n   median [min-max]; xB = this time / time of B (below 1: faster than B)\n",
           (unsigned long long)n, KEY_LEN, vsize, bench_cpu_clock ? "CPU" : "wall");
    printf("  %-10s %-10s %-24s", "workload", "backend", "ns/op");
    for (int i = 0; i < NBASE; i++)
        printf(" %9.9s", baselines[i]);
    printf("\n");
    for (int w = 0; w < W_COUNT; w++)
        for (int i = 0; i < nbes; i++)
            single_row(workload_names[w], bes[i]->name, n, vsize);
    const sample_set *m = sample_find("single", "memory", "dependent-load", n, vsize, 1);
    char buf[80];
    if (m && m->nv)
        printf("  memory floor: one load at a random line that depends on the one before, in a "
               "shared mapping\n  the size of this N's store: %s ns\n",
               spread(buf, m, 1));
    space_line(bes, nbes, n, vsize);
}

static const char *const role_names[] = {"read", "write", "mix90/10", "update"};

void report_procs(uint64_t n, const backend *const *bes, int nbes, const int *procs, int np)
{
    char a[80], b[24];
    printf("\n== Several processes at once, N = %llu, 32-byte values: aggregate thousands of "
           "ops/s,\n   median [min-max], and CPU time / wall time (machine: 2 cores; 4 "
           "processes oversubscribe it)\n",
           (unsigned long long)n);
    for (int r = 0; r < 4; r++) {
        printf("  %-9s %-10s", role_names[r], "backend");
        for (int p = 0; p < np; p++)
            printf(" %22s P=%d cpu/wall", "kops/s", procs[p]);
        printf("\n");
        for (int i = 0; i < nbes; i++) {
            if (r == ROLE_UPDATE && !bes[i]->update) continue;
            printf("  %-9s %-10s", role_names[r], bes[i]->name);
            for (int p = 0; p < np; p++) {
                const sample_set *s =
                    sample_find("procs", bes[i]->name, role_names[r], n, 32, procs[p]);
                const sample_set *c =
                    sample_find("cpu", bes[i]->name, role_names[r], n, 32, procs[p]);
                if (s && s->nv)
                    printf(" %24s %12s", spread(a, s, 1e-3), num(b, sample_median(c)));
                else
                    printf(" %24s %12s", "-", "-");
            }
            printf("\n");
        }
    }
    for (int i = 0; i < nbes; i++) { /* each writer on a store of its own (mp_run_own) */
        const char *be = bes[i]->name;
        const sample_set *s1 = sample_find("procs-own", be, "write", n, 32, 1);
        const sample_set *s2 = sample_find("procs-own", be, "write", n, 32, 2);
        if (!s1 || !s2) continue;
        char a2[80], b2[24];
        printf("  %-9s %-10s %24s %12s %24s %12s   (each writer on a store of its own)\n",
               "write-own", be, spread(a, s1, 1e-3),
               num(b, sample_median(sample_find("cpu-own", be, "write", n, 32, 1))),
               spread(a2, s2, 1e-3),
               num(b2, sample_median(sample_find("cpu-own", be, "write", n, 32, 2))));
    }
}

/* The median of an "rw" figure (0 if missing). */
static double rw_median(const char *sec, const char *be, const char *what, uint64_t n, int procs)
{
    return sample_median(sample_find(sec, be, what, n, 32, procs));
}

void report_rw(uint64_t n, const backend *const *bes, int nbes)
{
    char a[80], b[80], c[80], d[24];
    printf("\n== One writer and one reader at once, N = %llu: the reader's thousands of "
           "lookups/s, median [min-max];\n   the control runs the reader beside a busy loop "
           "that competes for the CPU but not for the store\n",
           (unsigned long long)n);
    printf("  %-10s %-22s %-22s %5s %-22s %5s %9s %s\n", "backend", "reader alone", "with writer",
           "kept", "with busy loop", "kept", "writer/s", "reader cpu/wall");
    for (int i = 0; i < nbes; i++) {
        const char *be = bes[i]->name;
        const sample_set *alone = sample_find("rw", be, "reader-alone", n, 32, 1);
        const sample_set *with = sample_find("rw", be, "reader-with-writer", n, 32, 2);
        const sample_set *spin = sample_find("rw", be, "reader-with-spinner", n, 32, 2);
        if (!alone || !with || !spin) continue;
        double m = sample_median(alone);
        printf("  %-10s %-22s %-22s %4.0f%% %-22s %4.0f%% %8sk %.2f/%.2f/%.2f\n", be,
               spread(a, alone, 1e-3), spread(b, with, 1e-3), 100 * sample_median(with) / m,
               spread(c, spin, 1e-3), 100 * sample_median(spin) / m,
               num(d, rw_median("rw", be, "writer", n, 2) * 1e-3),
               rw_median("rw-cpu", be, "reader-alone", n, 1),
               rw_median("rw-cpu", be, "reader-with-writer", n, 2),
               rw_median("rw-cpu", be, "reader-with-spinner", n, 2));
    }
}

void report_space(void)
{
    char a[24];
    printf("\n== Space: a mapping filled with 16-byte keys and 32-byte values until SQLITE_FULL"
           "\n  %-12s %10s %12s %10s %14s\n",
           "capacity", "entries", "kv bytes", "fill", "bytes/entry");
    for (size_t i = 0; i < nsets; i++) {
        const sample_set *s = &sets[i];
        if (strcmp(s->section, "fill") || strcmp(s->workload, "fill")) continue;
        const sample_set *e = sample_find("fill", "mmap-sql", "entries", s->n, 32, 1);
        double entries = sample_median(e);
        printf("  %-12llu %10.0f %12.0f %9.1f%% %14s\n", (unsigned long long)s->n, entries,
               sample_median(s) * (double)s->n, 100 * sample_median(s),
               num(a, entries > 0 ? (double)s->n / entries : 0));
    }
}

/* Prints a figure that explains a target, without a verdict. */
static void note(const char *what, double value)
{
    printf("  %-66s %8.3f  (diagnostic, no target)\n", what, value);
}

/* Records and prints one target: value against limit. */
static void target(const char *what, double value, double limit, int at_most)
{
    int known = value > 0;
    int pass = known && (at_most ? value <= limit : value >= limit);
    printf("  %-66s %8.3f  %s %-6g %s\n", what, value, at_most ? "<=" : ">=", limit,
           known ? (pass ? "PASS" : "MISS") : "n/a");
    if (ntargets < 64) {
        target_row *t = &targets[ntargets++];
        snprintf(t->what, sizeof t->what, "%s", what);
        t->value = value;
        t->limit = limit;
        t->at_most = at_most;
        t->pass = pass;
    }
}

/* Ratio of the medians of two single-process figures (0 if either is missing). */
static double ratio(const char *be1, const char *w1, uint64_t n1, const char *be2, const char *w2,
                    uint64_t n2)
{
    const sample_set *a = sample_find("single", be1, w1, n1, 32, 1);
    const sample_set *b = sample_find("single", be2, w2, n2, 32, 1);
    if (!a || !b || !a->nv || !b->nv) return 0;
    return sample_median(a) / sample_median(b);
}

/* Ratio of two medians of any section. */
static double ratio_of(const char *sec1, const char *be1, const char *w1, int p1, const char *sec2,
                       const char *be2, const char *w2, int p2, uint64_t n)
{
    const sample_set *a = sample_find(sec1, be1, w1, n, 32, p1);
    const sample_set *b = sample_find(sec2, be2, w2, n, 32, p2);
    if (!a || !b || !a->nv || !b->nv) return 0;
    return sample_median(a) / sample_median(b);
}

/* The lookup targets at N = n. */
static void lookup_targets(uint64_t n)
{
    char w[96];
    snprintf(w, sizeof w, "SQL lookup, mmap / :memory: table, N=%llu", (unsigned long long)n);
    target(w, ratio("mmap-sql", "lookup", n, "mem-sql", "lookup", n), 0.75, 1);
    snprintf(w, sizeof w, "SQL lookup, mmap / C-array vtab, N=%llu", (unsigned long long)n);
    target(w, ratio("mmap-sql", "lookup", n, "array-sql", "lookup", n), 1.1, 1);
    snprintf(w, sizeof w, "C API lookup, mmkv_get / LMDB txn+mdb_get, N=%llu",
             (unsigned long long)n);
    target(w, ratio("mmkv-c", "lookup", n, "lmdb", "lookup", n), 0.3, 1);
    snprintf(w, sizeof w, "C API lookup, mmkv_get / mdb_get in a long txn, N=%llu",
             (unsigned long long)n);
    target(w, ratio("mmkv-c", "lookup", n, "lmdb-1txn", "lookup", n), 0.3, 1);
    const sample_set *h = sample_find("single", "harness", "lookup", n, 32, 1);
    const sample_set *a = sample_find("single", "mmkv-c", "lookup", n, 32, 1);
    const sample_set *b = sample_find("single", "lmdb", "lookup", n, 32, 1);
    if (h && a && b && h->nv && a->nv && b->nv) {
        snprintf(w, sizeof w, "  the same, both net of the benchmark loop (harness), N=%llu",
                 (unsigned long long)n);
        note(w, (sample_median(a) - sample_median(h)) / (sample_median(b) - sample_median(h)));
    }
    snprintf(w, sizeof w, "  mmkv_get / memory floor (dependent random loads), N=%llu",
             (unsigned long long)n);
    note(w, ratio("mmkv-c", "lookup", n, "memory", "dependent-load", n));
    snprintf(w, sizeof w, "  LMDB txn+mdb_get / memory floor, N=%llu", (unsigned long long)n);
    note(w, ratio("lmdb", "lookup", n, "memory", "dependent-load", n));
}

/* The write targets at N = n. */
static void write_targets(uint64_t n)
{
    static const char *const ws[2] = {"put-auto", "delete"};
    static const char *const label[2] = {"autocommit INSERT OR REPLACE", "autocommit DELETE"};
    char w[96];
    for (int i = 0; i < 2; i++) {
        snprintf(w, sizeof w, "SQL %s, mmap / :memory:, N=%llu", label[i], (unsigned long long)n);
        target(w, ratio("mmap-sql", ws[i], n, "mem-sql", ws[i], n), 0.5, 1);
        snprintf(w, sizeof w, "SQL %s, WAL / mmap (speed-up), N=%llu", label[i],
                 (unsigned long long)n);
        target(w, ratio("wal-sql", ws[i], n, "mmap-sql", ws[i], n), 10, 0);
        snprintf(w, sizeof w, "  floors: C-array vtab / :memory:, N=%llu", (unsigned long long)n);
        note(w, ratio("array-sql", ws[i], n, "mem-sql", ws[i], n));
        snprintf(w, sizeof w, "  C-array vtab with empty transaction methods / :memory:, N=%llu",
                 (unsigned long long)n);
        note(w, ratio("array-txn-sql", ws[i], n, "mem-sql", ws[i], n));
        snprintf(w, sizeof w, "  with the store's lock, xBegin to xCommit / :memory:, N=%llu",
                 (unsigned long long)n);
        note(w, ratio("array-lock-sql", ws[i], n, "mem-sql", ws[i], n));
    }
    snprintf(w, sizeof w, "C API put, LMDB put+commit / mmkv_put (speed-up), N=%llu",
             (unsigned long long)n);
    target(w, ratio("lmdb", "put-auto", n, "mmkv-c", "put-auto", n), 5, 0);
}

/* The targets with several processes (N = n). */
static void process_targets(uint64_t n)
{
    target("2 writers, distinct keys: aggregate mmap-sql / wal-sql",
           ratio_of("procs", "mmap-sql", "write", 2, "procs", "wal-sql", "write", 2, n), 10, 0);
    target("2 writers, distinct keys: mmap-sql aggregate / 1 writer",
           ratio_of("procs", "mmap-sql", "write", 2, "procs", "mmap-sql", "write", 1, n), 1.0, 0);
    target("2 writers, distinct keys: mmkv-c aggregate / 1 writer",
           ratio_of("procs", "mmkv-c", "write", 2, "procs", "mmkv-c", "write", 1, n), 1.0, 0);
    target("2 writers, distinct keys: mmap-sql16 (16 parts) aggregate / 1 writer",
           ratio_of("procs", "mmap-sql16", "write", 2, "procs", "mmap-sql16", "write", 1, n), 1.0,
           0);
    target("2 writers, distinct keys: mmkv-c16 (16 parts) aggregate / 1 writer",
           ratio_of("procs", "mmkv-c16", "write", 2, "procs", "mmkv-c16", "write", 1, n), 1.0, 0);
    target("2 writers, distinct keys: aggregate mmap-sql16 / wal-sql",
           ratio_of("procs", "mmap-sql16", "write", 2, "procs", "wal-sql", "write", 2, n), 10, 0);
    note("  16 parts: mmap-sql16 2 writers / mmap-sql (1 part) 1 writer",
         ratio_of("procs", "mmap-sql16", "write", 2, "procs", "mmap-sql", "write", 1, n));
    note("  16 parts: mmkv-c16 2 writers / mmkv-c (1 part) 1 writer",
         ratio_of("procs", "mmkv-c16", "write", 2, "procs", "mmkv-c", "write", 1, n));
    note("  16 parts: mmap-sql16 1 writer / mmap-sql 1 writer",
         ratio_of("procs", "mmap-sql16", "write", 1, "procs", "mmap-sql", "write", 1, n));
    target("2 updaters (UPDATE by key), distinct keys: aggregate mmap-sql16 / wal-sql",
           ratio_of("procs", "mmap-sql16", "update", 2, "procs", "wal-sql", "update", 2, n), 10,
           0);
    target("2 updaters, distinct keys: mmap-sql16 (16 parts) aggregate / 1 updater",
           ratio_of("procs", "mmap-sql16", "update", 2, "procs", "mmap-sql16", "update", 1, n),
           1.0, 0);
    note("  2 updaters: mmap-sql (1 part) aggregate / 1 updater",
         ratio_of("procs", "mmap-sql", "update", 2, "procs", "mmap-sql", "update", 1, n));
    note("  2 updaters: mmkv-c16 (get and put, deferred) aggregate / 1 updater",
         ratio_of("procs", "mmkv-c16", "update", 2, "procs", "mmkv-c16", "update", 1, n));
    note("  2 updaters: lmdb (get and put, one txn) aggregate / 1 updater",
         ratio_of("procs", "lmdb", "update", 2, "procs", "lmdb", "update", 1, n));
    note("  lock floor: 2 writers aggregate / 1 writer (one lock, four lines)",
         ratio_of("procs", "lock-floor", "write", 2, "procs", "lock-floor", "write", 1, n));
    note("  lock floor, 16 parts: 2 writers aggregate / 1 writer",
         ratio_of("procs", "lock-floor16", "write", 2, "procs", "lock-floor16", "write", 1, n));
    note("  split-store ceiling: mmap-sql, 2 writers on own stores / 1",
         ratio_of("procs-own", "mmap-sql", "write", 2, "procs-own", "mmap-sql", "write", 1, n));
    note("  split-store ceiling: mmkv-c, 2 writers on own stores / 1",
         ratio_of("procs-own", "mmkv-c", "write", 2, "procs-own", "mmkv-c", "write", 1, n));
    target(
        "1 writer + 1 reader: mmap-sql reader keeps (of alone)",
        ratio_of("rw", "mmap-sql", "reader-with-writer", 2, "rw", "mmap-sql", "reader-alone", 1, n),
        0.7, 0);
    target("1 writer + 1 reader: mmkv-c reader keeps (of alone)",
           ratio_of("rw", "mmkv-c", "reader-with-writer", 2, "rw", "mmkv-c", "reader-alone", 1, n),
           0.7, 0);
    note("  mmap-sql reader with writer / reader with busy loop",
         ratio_of("rw", "mmap-sql", "reader-with-writer", 2, "rw", "mmap-sql",
                  "reader-with-spinner", 2, n));
    note("  lmdb reader (never waits) with writer / reader alone",
         ratio_of("rw", "lmdb", "reader-with-writer", 2, "rw", "lmdb", "reader-alone", 1, n));
    note("  lmdb writers: 2 writers aggregate / 1 writer",
         ratio_of("procs", "lmdb", "write", 2, "procs", "lmdb", "write", 1, n));
}

void report_targets(uint64_t n_small, uint64_t n_mid, uint64_t n_big, uint64_t n_procs)
{
    char w[96];
    printf("\n== Targets of issue 4 (ratios of medians, measured in this run)\n");
    lookup_targets(n_mid);
    lookup_targets(n_big);
    write_targets(n_small);
    write_targets(n_mid);
    write_targets(n_big);
    process_targets(n_procs);
    snprintf(w, sizeof w, "Scale: mmap-sql lookup N=%llu / N=%llu", (unsigned long long)n_big,
             (unsigned long long)n_small);
    target(w, ratio("mmap-sql", "lookup", n_big, "mmap-sql", "lookup", n_small), 2, 1);
    snprintf(w, sizeof w, "  C-array vtab lookup N=%llu / N=%llu", (unsigned long long)n_big,
             (unsigned long long)n_small);
    note(w, ratio("array-sql", "lookup", n_big, "array-sql", "lookup", n_small));
    snprintf(w, sizeof w, "Scale: mmkv-c lookup N=%llu / N=%llu", (unsigned long long)n_big,
             (unsigned long long)n_small);
    target(w, ratio("mmkv-c", "lookup", n_big, "mmkv-c", "lookup", n_small), 2, 1);
    snprintf(w, sizeof w, "  memory floor N=%llu / N=%llu (one dependent random load)",
             (unsigned long long)n_big, (unsigned long long)n_small);
    note(w, ratio("memory", "dependent-load", n_big, "memory", "dependent-load", n_small));
    for (size_t i = 0; i < nsets; i++) {
        if (strcmp(sets[i].section, "fill") || strcmp(sets[i].workload, "fill")) continue;
        snprintf(w, sizeof w, "Space: key+value bytes / capacity, mapping of %llu bytes",
                 (unsigned long long)sets[i].n);
        target(w, sample_median(&sets[i]), 0.7, 0);
    }
}

int report_csv(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "section,backend,workload,n,value_bytes,procs,unit,median,min,max,runs\n");
    for (size_t i = 0; i < nsets; i++) {
        const sample_set *s = &sets[i];
        fprintf(f, "%s,%s,%s,%llu,%u,%d,%s,%.6g,%.6g,%.6g,%d\n", s->section, s->backend,
                s->workload, (unsigned long long)s->n, s->vsize, s->procs, s->unit,
                sample_median(s), sample_min(s), sample_max(s), s->nv);
    }
    for (int i = 0; i < ntargets; i++)
        fprintf(f, "target,\"%s\",%s,0,0,0,%s%g,%.6g,%.6g,%.6g,1\n", targets[i].what,
                targets[i].pass ? "PASS" : "MISS",
                targets[i].at_most ? "<=" : ">=", targets[i].limit, targets[i].value,
                targets[i].value, targets[i].value);
    return fclose(f);
}
