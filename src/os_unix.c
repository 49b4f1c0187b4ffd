/*
** os_unix.c -- the platform contract (os.h) on POSIX systems (Linux).
**
** A named mapping is a POSIX shared-memory object "/sqlite-mmap.<name>"
** (on Linux: /dev/shm/sqlite-mmap.<name>); a file mapping is the file itself.
** Both are mapped MAP_SHARED.  Space is reserved with posix_fallocate when a
** mapping is created, so a full /dev/shm or disk is an error at creation and
** never a SIGBUS later.
**
** Two open-file-description locks on the object coordinate openers:
**   byte 0, exclusive, while a handle creates or validates the header;
**   byte 1, shared, for as long as a handle is open (an opener that can take
**   it exclusively knows it is alone, so lock words left behind are stale).
** The data lock is a robust, process-shared, error-checking pthread mutex
** that lives in the mapping's header.
*/
#ifndef _WIN32
#define _GNU_SOURCE
#include "os.h"
#include "mmkv.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(pthread_mutex_t) <= MMKV_OS_LOCK_BYTES, "mutex fits its slot");

struct mmkv_os_map {
    int fd;
    void *base;
    uint64_t size;
    char path[4096]; /* shm name ("/sqlite-mmap.x") or file path */
    int is_file;
    int created; /* this handle created the object */
    char err[4400];
};

#define SHM_PREFIX "/sqlite-mmap."

/* Builds the shm object name for a mapping name into out. */
static void shm_path(const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s%s", SHM_PREFIX, name);
}

/* Returns the monotonic clock in milliseconds. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Tries (no wait) to set an OFD lock of type `type` on byte `at`.
** Returns 0 on success, -1 with errno otherwise. */
static int ofd_lock(int fd, int type, off_t at)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = (short)type;
    fl.l_whence = SEEK_SET;
    fl.l_start = at;
    fl.l_len = 1;
    return fcntl(fd, F_OFD_SETLK, &fl);
}

/* Takes the exclusive init lock, polling for at most timeout_ms.
** Returns 0, or -1 on timeout or error. */
static int take_init_lock(int fd, int timeout_ms)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (ofd_lock(fd, F_WRLCK, 0) == 0) return 0;
        if (errno != EAGAIN && errno != EACCES) return -1;
        if (now_ms() >= deadline) return -1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Opens (maybe creating) the object's descriptor.  Sets *made when this
** call created it.  Returns the fd or -1 with errno. */
static int open_object(struct mmkv_os_map *m, int flags, unsigned perms, int *made)
{
    int fd;
    *made = 0;
    for (int tries = 0; tries < 100; tries++) {
        fd = m->is_file ? open(m->path, O_RDWR | O_CLOEXEC) : shm_open(m->path, O_RDWR, 0);
        if (fd >= 0) {
            if (flags & MMKV_OS_EXCL) {
                close(fd);
                errno = EEXIST;
                return -1;
            }
            return fd;
        }
        if (errno != ENOENT || !(flags & MMKV_OS_CREATE)) return -1;
        fd = m->is_file ? open(m->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, perms)
                        : shm_open(m->path, O_RDWR | O_CREAT | O_EXCL, perms);
        if (fd >= 0) {
            fchmod(fd, perms); /* not narrowed by the umask */
            *made = 1;
            return fd;
        }
        if (errno != EEXIST) return -1;
    }
    return -1;
}

/* Returns non-zero if the object is empty or still holds the marker of a
** creation that did not finish (its creator died: we hold the init lock). */
static int is_unfinished(int fd, off_t size)
{
    uint64_t first = 0;
    if (size == 0) return 1;
    return pread(fd, &first, 8, 0) == 8 && first == MMKV_OS_UNFINISHED;
}

/* Marks the object unfinished, then gives it its size with space reserved.
** Returns 0 or an MMKV_ code with m->err set. */
static int size_new_object(struct mmkv_os_map *m, uint64_t size)
{
    uint64_t marker = MMKV_OS_UNFINISHED;
    if (pwrite(m->fd, &marker, 8, 0) != 8 || ftruncate(m->fd, (off_t)size) != 0) {
        snprintf(m->err, sizeof m->err, "cannot size %s to %llu bytes: %s", m->path,
                 (unsigned long long)size, strerror(errno));
        return MMKV_IOERR;
    }
    int rc = posix_fallocate(m->fd, 0, (off_t)size);
    if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
        snprintf(m->err, sizeof m->err, "cannot reserve %llu bytes for %s: %s",
                 (unsigned long long)size, m->path, strerror(rc));
        return rc == ENOSPC ? MMKV_FULL : MMKV_IOERR;
    }
    return MMKV_OK;
}

/* Maps the whole object.  Returns 0 or an MMKV_ code with m->err set. */
static int map_object(struct mmkv_os_map *m)
{
    void *p = mmap(NULL, (size_t)m->size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
    if (p == MAP_FAILED) {
        snprintf(m->err, sizeof m->err, "cannot map %s: %s", m->path, strerror(errno));
        return errno == ENOMEM ? MMKV_NOMEM : MMKV_IOERR;
    }
    m->base = p;
    return MMKV_OK;
}

/* Takes the shared presence lock; *sole tells if no one else holds it. */
static void take_presence_lock(struct mmkv_os_map *m, int *sole)
{
    *sole = ofd_lock(m->fd, F_WRLCK, 1) == 0;
    ofd_lock(m->fd, F_RDLCK, 1); /* converts ours, or joins the others' */
}

/* Each part's lock word is a mutex of its own: nothing to prepare. */
int mmkv_os_set_parts(mmkv_os_map *m, unsigned n, uint64_t region)
{
    (void)m;
    (void)n;
    (void)region;
    return 0;
}

/* Maps errno of a failed open to an MMKV_ code and message. */
static int open_error(struct mmkv_os_map *m, const char *what, char *err, int errsz)
{
    int e = errno;
    int rc = MMKV_IOERR;
    if (e == ENOENT) {
        snprintf(err, (size_t)errsz, "no such mapping: %s", what);
        rc = MMKV_CANTOPEN;
    } else if (e == EEXIST) {
        snprintf(err, (size_t)errsz, "mapping already exists: %s", what);
        rc = MMKV_CANTOPEN;
    } else if (e == EACCES || e == EPERM) {
        snprintf(err, (size_t)errsz, "no permission to open %s read-write", what);
        rc = MMKV_CANTOPEN;
    } else {
        snprintf(err, (size_t)errsz, "cannot open %s: %s", what, strerror(e));
    }
    (void)m;
    return rc;
}

int mmkv_os_open(const char *name, int is_file, int flags, uint64_t size, unsigned perms,
                 int timeout_ms, mmkv_os_map **out, int *created, int *sole, char *err, int errsz)
{
    struct mmkv_os_map *m = calloc(1, sizeof *m);
    int made, rc;
    *out = NULL;
    if (!m) {
        snprintf(err, (size_t)errsz, "out of memory");
        return MMKV_NOMEM;
    }
    m->is_file = is_file;
    if (is_file)
        snprintf(m->path, sizeof m->path, "%s", name);
    else
        shm_path(name, m->path, sizeof m->path);
    m->fd = open_object(m, flags, perms, &made);
    if (m->fd < 0) {
        rc = open_error(m, name, err, errsz);
        free(m);
        return rc;
    }
    m->created = made;
    if (take_init_lock(m->fd, timeout_ms) != 0) {
        snprintf(err, (size_t)errsz, "timed out after %d ms waiting for %s to be set up",
                 timeout_ms, name);
        mmkv_os_close(m, made);
        return MMKV_BUSY;
    }
    take_presence_lock(m, sole);
    struct stat st;
    if (fstat(m->fd, &st) != 0) {
        snprintf(err, (size_t)errsz, "cannot stat %s: %s", name, strerror(errno));
        mmkv_os_close(m, made);
        return MMKV_IOERR;
    }
    int unfinished = is_unfinished(m->fd, st.st_size);
    if (unfinished && !(flags & MMKV_OS_CREATE)) {
        snprintf(err, (size_t)errsz,
                 "no such mapping: %s (a process died while creating it; mode='create' sets it "
                 "up again)",
                 name);
        mmkv_os_close(m, 0);
        return MMKV_CANTOPEN;
    }
    if (unfinished && !*sole) {
        /* Others have it open, so no creator died mid-way: the marker is
        ** damage.  Setting the mapping up again would reset the locks and
        ** the size under its users. */
        snprintf(err, (size_t)errsz,
                 "mapping %s is corrupt: it is marked unfinished while other handles use it",
                 name);
        mmkv_os_close(m, 0);
        return MMKV_CORRUPT;
    }
    *created = unfinished;
    if (*created) {
        rc = size_new_object(m, size);
        m->size = size;
    } else {
        rc = MMKV_OK;
        m->size = (uint64_t)st.st_size;
        if (st.st_size < (off_t)MMKV_MIN_SIZE || (uint64_t)st.st_size > MMKV_MAX_SIZE) {
            snprintf(m->err, sizeof m->err, "not an mmap mapping: %s (size %lld bytes)", name,
                     (long long)st.st_size);
            rc = MMKV_FORMAT;
        }
    }
    if (rc == MMKV_OK) rc = map_object(m);
    if (rc != MMKV_OK) {
        snprintf(err, (size_t)errsz, "%s", m->err);
        mmkv_os_close(m, *created && made);
        return rc;
    }
    *out = m;
    return MMKV_OK;
}

void mmkv_os_open_done(mmkv_os_map *m)
{
    ofd_lock(m->fd, F_UNLCK, 0);
}

void mmkv_os_close(mmkv_os_map *m, int discard)
{
    if (!m) return;
    if (m->base) munmap(m->base, (size_t)m->size);
    if (discard && m->created) {
        if (m->is_file)
            unlink(m->path);
        else
            shm_unlink(m->path);
    }
    if (m->fd >= 0) close(m->fd);
    free(m);
}

void *mmkv_os_base(mmkv_os_map *m)
{
    return m->base;
}

uint64_t mmkv_os_size(mmkv_os_map *m)
{
    return m->size;
}

const char *mmkv_os_errmsg(mmkv_os_map *m)
{
    return m->err;
}

int mmkv_os_flush(mmkv_os_map *m)
{
    if (!m->is_file) return 0;
    if (msync(m->base, (size_t)m->size, MS_SYNC) != 0) {
        snprintf(m->err, sizeof m->err, "msync of %s failed: %s", m->path, strerror(errno));
        return -1;
    }
    return 0;
}

int mmkv_os_unlink(const char *name)
{
    char path[MMKV_MAX_NAME + 32];
    shm_path(name, path, sizeof path);
    if (shm_unlink(path) == 0) return 1;
    return errno == ENOENT ? 0 : -1;
}

int mmkv_os_lock_init(mmkv_os_map *m, void *lockmem)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc == 0) rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0) rc = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    if (rc == 0) {
        memset(lockmem, 0, MMKV_OS_LOCK_BYTES);
        rc = pthread_mutex_init((pthread_mutex_t *)lockmem, &a);
    }
    pthread_mutexattr_destroy(&a);
    if (rc != 0) {
        snprintf(m->err, sizeof m->err, "cannot set up the lock: %s", strerror(rc));
        return -1;
    }
    return 0;
}

/* Nanoseconds of CLOCK_MONOTONIC. */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Waits up to SPIN_NS for a held mutex to be let go before sleeping in the
** kernel: holders keep the lock for a few hundred nanoseconds, far less
** than a sleep and a wake-up cost.  The waiter reads the lock word (never
** writes it) and tries to take the lock only when it reads free; between
** reads it waits, twice as long each time up to BACKOFF_MAX_NS, so that a
** holder doing many short changes keeps the lock's cache line rather than
** handing it over after every one.  Returns trylock's last result. */
#ifndef SPIN_NS
#define SPIN_NS 100000u
#endif
#ifndef BACKOFF_MAX_NS
#define BACKOFF_MAX_NS 4000u
#endif
static int spin_lock(pthread_mutex_t *mu)
{
#if defined(__GLIBC__)
    const int *word = &mu->__data.__lock;
    uint64_t t = now_ns(), until = t + SPIN_NS;
    for (uint64_t backoff = 200;; backoff = backoff < BACKOFF_MAX_NS ? backoff * 2 : backoff) {
        if (__atomic_load_n(word, __ATOMIC_RELAXED) == 0) {
            int rc = pthread_mutex_trylock(mu);
            if (rc != EBUSY) return rc;
        }
        uint64_t next = t + backoff;
        do {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            t = now_ns();
        } while (t < next);
        if (t > until) return EBUSY;
    }
#else
    return pthread_mutex_trylock(mu);
#endif
}

int mmkv_os_lock(mmkv_os_map *m, void *lockmem, int timeout_ms)
{
    pthread_mutex_t *mu = lockmem;
    int rc = pthread_mutex_trylock(mu);
    if (rc == EBUSY && timeout_ms > 0) rc = spin_lock(mu);
    if (rc == EBUSY && timeout_ms > 0) {
        {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += timeout_ms / 1000;
            ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            rc = pthread_mutex_clocklock(mu, CLOCK_MONOTONIC, &ts);
        }
    }
    switch (rc) {
    case 0:
        return MMKV_OS_LOCKED;
    case EOWNERDEAD:
        return MMKV_OS_OWNERDEAD;
    case EBUSY:
    case ETIMEDOUT:
        return MMKV_OS_TIMEOUT;
    case EDEADLK:
        return MMKV_OS_DEADLOCK;
    default:
        snprintf(m->err, sizeof m->err, "the lock failed: %s", strerror(rc));
        return MMKV_OS_ERROR;
    }
}

void mmkv_os_lock_repaired(mmkv_os_map *m, void *lockmem)
{
    (void)m;
    pthread_mutex_consistent((pthread_mutex_t *)lockmem);
}

void mmkv_os_unlock(mmkv_os_map *m, void *lockmem)
{
    (void)m;
    pthread_mutex_unlock((pthread_mutex_t *)lockmem);
}

/* Under AddressSanitizer big buffers come from its heap, which checks
** every access; an anonymous mapping would not be checked. */
#if defined(__SANITIZE_ADDRESS__)
#define MMKV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MMKV_ASAN 1
#endif
#endif

#ifndef MMKV_ASAN
#define HUGE_PAGE ((size_t)2 << 20)

/* n rounded up to whole huge pages (0 if that overflows). */
static size_t huge_round(size_t n)
{
    return n > SIZE_MAX - HUGE_PAGE ? 0 : (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}
#endif

void *mmkv_os_big_alloc(size_t n)
{
#ifdef MMKV_ASAN
    return calloc(1, n);
#else
    /* Maps one huge page more than needed and cuts it to a range that
    ** starts and ends on a 2 MiB boundary: the kernel backs with huge pages
    ** only whole aligned extents, and each 4 KiB page of an unaligned head
    ** or tail would cost a fault of its own. */
    size_t size = huge_round(n);
    if (size == 0 || size > SIZE_MAX - HUGE_PAGE) return NULL;
    unsigned char *p = mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    unsigned char *a = (unsigned char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p) munmap(p, (size_t)(a - p));
    if (p + size + HUGE_PAGE > a + size) munmap(a + size, (size_t)(p + size + HUGE_PAGE - (a + size)));
#ifdef MADV_HUGEPAGE
    madvise(a, size, MADV_HUGEPAGE); /* a hint: failure changes nothing */
#endif
    return a;
#endif
}

void mmkv_os_big_prefault(void *p, size_t n)
{
#if defined(MADV_POPULATE_WRITE) && !defined(MMKV_ASAN)
    /* Linux 5.14 on; older kernels refuse, and the pages fault in as they
    ** are written. */
    madvise(p, huge_round(n), MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)n;
#endif
}

void mmkv_os_big_free(void *p, size_t n)
{
#ifdef MMKV_ASAN
    (void)n;
    free(p);
#else
    if (p) munmap(p, huge_round(n));
#endif
}

uint64_t mmkv_os_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t mmkv_os_random(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 16);
    }
    return r;
}
#endif /* !_WIN32 */
