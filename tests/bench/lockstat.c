/*
** lockstat.c -- an LD_PRELOAD library that measures how long a process holds
** and waits for the mapping's lock, to see where multi-process time goes.
**
**   LD_PRELOAD=build-bench/libmmkv_lockstat.so build-bench/mmkv_bench \
**       --phase procs --only mmap-sql --roles write --reps 1
**
** It wraps pthread_mutex_lock, _trylock, _clocklock, _timedlock and _unlock
** and counts only robust mutexes (the store's lock is a robust,
** process-shared mutex; SQLite's and libc's own mutexes are not robust).
** When the process exits it prints one line to stderr: acquisitions, how
** many found the lock taken, and the share of its lifetime it held the lock
** and waited for it.  The clock reads add about 50 ns to each acquisition.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

typedef int (*lock_fn)(pthread_mutex_t *);
typedef int (*clocklock_fn)(pthread_mutex_t *, clockid_t, const struct timespec *);
typedef int (*timedlock_fn)(pthread_mutex_t *, const struct timespec *);

static uint64_t start_ns, acquired_ns, held_ns, waited_ns, acquisitions, contended;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Non-zero for a robust mutex: the store's lock.  16 is glibc's internal
** PTHREAD_MUTEX_ROBUST_NORMAL_NP bit of __kind. */
static int is_store_lock(const pthread_mutex_t *m)
{
    return (m->__data.__kind & 16) != 0;
}

/* Looks up the real function behind a wrapper. */
static void *real(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        fprintf(stderr, "lockstat: no %s\n", name);
        _exit(99);
    }
    return f;
}

/* Counts one acquisition attempt that began at t0 and returned rc. */
static int counted(int rc, uint64_t t0)
{
    uint64_t t1 = now_ns();
    if (rc == 0 || rc == EOWNERDEAD) {
        acquisitions++;
        acquired_ns = t1;
    }
    waited_ns += t1 - t0;
    return rc;
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
    static lock_fn f;
    if (!f) f = (lock_fn)real("pthread_mutex_lock");
    if (!is_store_lock(m)) return f(m);
    uint64_t t0 = now_ns();
    return counted(f(m), t0);
}

int pthread_mutex_trylock(pthread_mutex_t *m)
{
    static lock_fn f;
    if (!f) f = (lock_fn)real("pthread_mutex_trylock");
    if (!is_store_lock(m)) return f(m);
    int rc = f(m);
    if (rc == EBUSY) contended++;
    if (rc == 0 || rc == EOWNERDEAD) {
        acquisitions++;
        acquired_ns = now_ns();
    }
    return rc;
}

int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t c, const struct timespec *ts)
{
    static clocklock_fn f;
    if (!f) f = (clocklock_fn)real("pthread_mutex_clocklock");
    if (!is_store_lock(m)) return f(m, c, ts);
    uint64_t t0 = now_ns();
    return counted(f(m, c, ts), t0);
}

int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *ts)
{
    static timedlock_fn f;
    if (!f) f = (timedlock_fn)real("pthread_mutex_timedlock");
    if (!is_store_lock(m)) return f(m, ts);
    uint64_t t0 = now_ns();
    return counted(f(m, ts), t0);
}

int pthread_mutex_unlock(pthread_mutex_t *m)
{
    static lock_fn f;
    if (!f) f = (lock_fn)real("pthread_mutex_unlock");
    if (is_store_lock(m) && acquired_ns) {
        held_ns += now_ns() - acquired_ns;
        acquired_ns = 0;
    }
    return f(m);
}

__attribute__((constructor)) static void lockstat_start(void)
{
    start_ns = now_ns();
}

/* Prints the process's figures (only if it took the store's lock). */
__attribute__((destructor)) static void lockstat_report(void)
{
    double life = (double)(now_ns() - start_ns);
    if (!acquisitions) return;
    fprintf(stderr,
            "lockstat[%d]: %llu acquisitions, %llu found it taken; held %.1f%% and waited "
            "%.1f%% of %.3f s; %.0f ns held per acquisition\n",
            (int)getpid(), (unsigned long long)acquisitions, (unsigned long long)contended,
            100.0 * (double)held_ns / life, 100.0 * (double)waited_ns / life, life * 1e-9,
            (double)held_ns / (double)acquisitions);
}
