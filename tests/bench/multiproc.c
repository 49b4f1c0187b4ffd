/*
** multiproc.c -- several processes on one shared store at once.
**
** The parent has created and loaded the store and closed its own handle.
** It forks the workers; each opens the store, says it is ready on a pipe,
** and waits until the parent closes the "go" pipe, so all of them start
** together.  Each runs its role for a fixed time and writes its count of
** operations, its wall time and its CPU time (user + system) into a page
** shared with the parent.  Aggregate throughput is the sum of the counts
** over the longest wall time; CPU / wall is the sum of CPU times over it
** (above the number of cores means the processes were oversubscribed).
** Worker i is pinned to CPU i mod (number of CPUs): left alone, Linux woke
** the workers on the parent's CPU and kept them there for much of a short
** run, so two processes shared one core while the other idled.
**
** Roles: read (lookups of random keys), write (autocommit INSERT OR
** REPLACE; process p of P writes only keys k with k % P == p, so writers
** never touch the same keys), mix (90% lookups, 10% writes) and spin (a
** busy loop that opens no store: the control for a reader that competes
** for the CPU but not for the store).
**
** mp_run_own runs the same roles with a store of its own for each worker,
** which the parent creates and loads before the workers start (untimed) and
** removes after: writers that share no line of any store.  Its two-writer
** figure is the most that splitting one store into independent parts could
** reach on this machine, with the same keys written per process.
*/
#define _GNU_SOURCE /* sched_setaffinity */
#include "bench.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROCS 8

/* What one worker reports. */
typedef struct mp_slot {
    uint64_t ops;
    double wall, cpu;
    int failed;
} mp_slot;

/* The page shared by the parent and its workers. */
typedef struct mp_shared {
    volatile int stop; /* set by the reader of a writer+reader run */
    mp_slot slot[MAX_PROCS];
} mp_shared;

/* What a worker is to do. */
typedef struct mp_job {
    const backend *b;
    const bench_cfg *c;
    int role, index; /* index: the worker's slot */
    int part, parts; /* a writer writes only keys k with k % parts == part */
    double seconds;  /* 0: until shared->stop */
    int stops_others;
} mp_job;

/* One operation of the worker's role. */
static void mp_op(const mp_job *j, bench_db *d, uint64_t *rng, uint64_t *sink)
{
    uint64_t r = rng_next(rng), n = j->c->n;
    if (j->role == ROLE_SPIN) {
        for (int k = 0; k < 100; k++)
            *sink += rng_next(rng);
        return;
    }
    int write =
        j->role == ROLE_WRITE || j->role == ROLE_UPDATE || (j->role == ROLE_MIX && r % 10 == 0);
    if (!write) {
        if (j->b->get(d, key_of(((r >> 32) * n) >> 32), sink))
            die("%s: lookup failed in worker %d", j->b->name, j->index);
        return;
    }
    uint64_t share = n / (uint64_t)j->parts;
    uint64_t i = (((r >> 32) * share) >> 32) * (uint64_t)j->parts + (uint64_t)j->part;
    if (j->role == ROLE_UPDATE ? j->b->update(d, key_of(i), value_of(r), j->c->vsize)
                               : j->b->put(d, key_of(i), value_of(r), j->c->vsize))
        die("%s: write failed in worker %d", j->b->name, j->index);
}

/* Runs the role until its time is up (or it is told to stop). */
static void mp_loop(const mp_job *j, bench_db *d, mp_shared *sh, mp_slot *out)
{
    uint64_t rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)getpid() << 20), sink = 0, ops = 0;
    double t0 = now_sec(), c0 = cpu_sec(), t;
    for (;;) {
        for (int k = 0; k < 64; k++)
            mp_op(j, d, &rng, &sink);
        ops += 64;
        t = now_sec() - t0;
        if (j->seconds > 0 ? t >= j->seconds : (sh->stop || t > 60)) break;
    }
    out->ops = ops + (sink & 0); /* sink only keeps the reads honest */
    out->wall = t;
    out->cpu = cpu_sec() - c0;
    if (j->stops_others) sh->stop = 1;
}

/* Pins the calling process to CPU i mod the number of online CPUs. */
static void pin_to_cpu(int i)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(n > 0 ? i % (int)n : 0, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* The body of a worker process; never returns. */
static void mp_child(const mp_job *j, mp_shared *sh, int ready_fd, int go_fd)
{
    bench_db *d = NULL;
    char x = 'r';
    bench_in_child = 1;
    pin_to_cpu(j->index);
    mp_slot *out = &sh->slot[j->index];
    if (j->role != ROLE_SPIN && j->b->open(j->c, &d)) out->failed = 1;
    if (write(ready_fd, &x, 1) != 1 || out->failed) _exit(1);
    while (read(go_fd, &x, 1) > 0) {
    }
    mp_loop(j, d, sh, out);
    if (d) j->b->close(d);
    exit(0); /* not _exit: tools preloaded for a diagnosis (lockstat.c) report at exit */
}

/* Forks one worker per job, starts them together, waits for all. */
static int mp_fork_all(const mp_job *jobs, int count, mp_shared *sh)
{
    int ready[2], go[2];
    if (pipe(ready) || pipe(go)) die("pipe failed");
    fflush(NULL);
    for (int i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork failed");
        if (pid == 0) {
            close(ready[0]);
            close(go[1]);
            mp_child(&jobs[i], sh, ready[1], go[0]);
        }
    }
    close(ready[1]);
    close(go[0]);
    char x;
    for (int i = 0; i < count && read(ready[0], &x, 1) == 1; i++) {
    }
    close(go[1]); /* go */
    close(ready[0]);
    int failed = 0, status;
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    for (int i = 0; i < count; i++)
        failed |= sh->slot[i].failed;
    return failed ? -1 : 0;
}

/* Maps a zeroed page shared with the children. */
static mp_shared *mp_shared_new(void)
{
    void *p =
        mmap(NULL, sizeof(mp_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap of the shared page failed");
    memset(p, 0, sizeof(mp_shared));
    return p;
}

/* Sums the workers' reports into r. */
static void mp_sum(const mp_shared *sh, int count, mp_result *r)
{
    double wall = 0, cpu = 0, ops = 0;
    for (int i = 0; i < count; i++) {
        if (sh->slot[i].wall > wall) wall = sh->slot[i].wall;
        cpu += sh->slot[i].cpu;
        ops += (double)sh->slot[i].ops;
    }
    r->ops_per_sec = wall > 0 ? ops / wall : 0;
    r->cpu_per_wall = wall > 0 ? cpu / wall : 0;
}

/* procs workers of one role, on one store or (own) on one each. */
static int mp_run_with(const backend *b, const bench_cfg *c, int procs, int role, double seconds,
                       int own, mp_result *r)
{
    mp_job jobs[MAX_PROCS];
    bench_cfg cfgs[MAX_PROCS];
    if (procs < 1 || procs > MAX_PROCS) return -1;
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < procs; i++) {
        cfgs[i] = *c;
        if (!own) continue;
        size_t len = strlen(cfgs[i].tag); /* the same size and entries, a name of its own */
        snprintf(cfgs[i].tag + len, sizeof cfgs[i].tag - len, "-own%d", i);
        bench_db *d;
        if (b->create(&cfgs[i], &d)) die("%s: cannot create a store", b->name);
        if (load_entries(b, d, cfgs[i].n, cfgs[i].vsize)) die("%s: loading failed", b->name);
        b->close(d);
    }
    mp_shared *sh = mp_shared_new();
    for (int i = 0; i < procs; i++)
        jobs[i] = (mp_job){b, &cfgs[i], role, i, i, procs, seconds, 0};
    int rc = mp_fork_all(jobs, procs, sh);
    memset(r, 0, sizeof *r);
    mp_sum(sh, procs, r);
    munmap(sh, sizeof *sh);
    for (int i = 0; own && i < procs; i++)
        b->destroy(&cfgs[i]);
    return rc;
}

int mp_run(const backend *b, const bench_cfg *c, int procs, int role, double seconds, mp_result *r)
{
    return mp_run_with(b, c, procs, role, seconds, 0, r);
}

int mp_run_own(const backend *b, const bench_cfg *c, int procs, int role, double seconds,
               mp_result *r)
{
    return mp_run_with(b, c, procs, role, seconds, 1, r);
}

int mp_reader_with(const backend *b, const bench_cfg *c, int other, double seconds, mp_result *r)
{
    mp_shared *sh = mp_shared_new();
    /* The reader stops the other process when its time is up. */
    mp_job jobs[2] = {{b, c, ROLE_READ, 0, 0, 1, seconds, 1}, {b, c, other, 1, 0, 1, 0, 0}};
    int rc = mp_fork_all(jobs, other < 0 ? 1 : 2, sh);
    memset(r, 0, sizeof *r);
    r->reader_ops_per_sec = sh->slot[0].wall > 0 ? (double)sh->slot[0].ops / sh->slot[0].wall : 0;
    r->reader_cpu_per_wall = sh->slot[0].wall > 0 ? sh->slot[0].cpu / sh->slot[0].wall : 0;
    r->writer_ops_per_sec = other == ROLE_WRITE && sh->slot[1].wall > 0
                                ? (double)sh->slot[1].ops / sh->slot[1].wall
                                : 0;
    munmap(sh, sizeof *sh);
    return rc;
}
