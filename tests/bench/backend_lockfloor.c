/*
** backend_lockfloor.c -- "lock-floor": the least any store with one lock
** for all writers can do, measured in the multi-process phase only.
**
** It takes the store's own process-shared lock (src/os.h: the robust mutex,
** with the same spin before sleeping) and, holding it, writes the cache
** lines that every write of a one-lock store writes as well: a line of
** counters, a free-list head, the next line of a shared pool of record
** space (the record a writer lays, as often as not where the other process
** freed one a moment ago) and the key's index slot.  Nothing else: no
** hashing of the value, no log, no commit protocol.  Lookups read the slot
** without the lock.
**
** What two writers get together against one alone here is what a store
** with one lock can get on this machine; the store's own ratio is compared
** with it (report.c).
*/
#include "bench.h"
#include "os.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LF_BYTES (4u << 20) /* the mapping */
#define LF_SLOTS 65536u     /* index slots (8 bytes each), at 4096 */
#define LF_RECS 16384u      /* record lines (64 bytes each), after the slots */
#define LF_SLOT_OFF 4096u
#define LF_REC_OFF (LF_SLOT_OFF + 8u * LF_SLOTS)
_Static_assert(LF_REC_OFF + 64u * LF_RECS <= LF_BYTES, "the layout fits the mapping");

/* Header: the lock at 0, counters at 64, the pool's head at 128. */
struct lf_hdr {
    unsigned char lock[MMKV_OS_LOCK_BYTES];
    uint64_t writes, bytes, pad1[6];
    uint64_t next_rec, pad2[7];
};

struct bench_db {
    mmkv_os_map *m;
    unsigned char *base;
};

static void lf_name(const bench_cfg *c, char *out, size_t n)
{
    snprintf(out, n, "bench-%s-lock", c->tag);
}

/* Opens (create: makes) the mapping; 0 or -1. */
static int lf_connect(const bench_cfg *c, int create, struct bench_db **out)
{
    char name[96], err[256];
    int created = 0, sole = 0;
    struct bench_db *d = calloc(1, sizeof *d);
    if (!d) return -1;
    lf_name(c, name, sizeof name);
    if (mmkv_os_open(name, 0, create ? MMKV_OS_CREATE : 0, LF_BYTES, 0600, 5000, &d->m, &created,
                     &sole, err, sizeof err)) {
        fprintf(stderr, "bench: lock-floor: %s\n", err);
        free(d);
        return -1;
    }
    d->base = mmkv_os_base(d->m);
    if (created && mmkv_os_lock_init(d->m, d->base)) {
        mmkv_os_open_done(d->m);
        mmkv_os_close(d->m, 1);
        free(d);
        return -1;
    }
    mmkv_os_open_done(d->m);
    *out = d;
    return 0;
}

static int lf_create(const bench_cfg *c, bench_db **out)
{
    char name[96], path[160];
    lf_name(c, name, sizeof name);
    mmkv_os_unlink(name);
    snprintf(path, sizeof path, "/dev/shm/sqlite-mmap.%s", name);
    cleanup_register(path);
    return lf_connect(c, 1, out);
}

static int lf_open(const bench_cfg *c, bench_db **out)
{
    return lf_connect(c, 0, out);
}

static void lf_close(bench_db *d)
{
    mmkv_os_close(d->m, 0);
    free(d);
}

static void lf_destroy(const bench_cfg *c)
{
    char name[96];
    lf_name(c, name, sizeof name);
    mmkv_os_unlink(name);
}

/* The key's slot: its first 8 hex digits. */
static uint64_t *lf_slot(bench_db *d, const char *key)
{
    uint64_t h = strtoull((char[9]){key[0], key[1], key[2], key[3], key[4], key[5], key[6],
                                    key[7], 0},
                          NULL, 16);
    return (uint64_t *)(void *)(d->base + LF_SLOT_OFF + 8 * (h % LF_SLOTS));
}

static int lf_get(bench_db *d, const char *key, uint64_t *sink)
{
    *sink += __atomic_load_n(lf_slot(d, key), __ATOMIC_RELAXED);
    return 0;
}

/* One write: the lock, then the four lines. */
static int lf_write(bench_db *d, const char *key, const void *val, uint32_t vlen)
{
    struct lf_hdr *h = (struct lf_hdr *)(void *)d->base;
    int r = mmkv_os_lock(d->m, h->lock, 10000);
    if (r != MMKV_OS_LOCKED && r != MMKV_OS_OWNERDEAD) return -1;
    if (r == MMKV_OS_OWNERDEAD) mmkv_os_lock_repaired(d->m, h->lock);
    h->writes++;
    h->bytes += KEY_LEN + vlen;
    uint64_t rec = h->next_rec++ % LF_RECS;
    unsigned char *p = d->base + LF_REC_OFF + 64 * rec;
    memcpy(p, key, KEY_LEN);
    memcpy(p + KEY_LEN, val, vlen < 48 ? vlen : 48);
    __atomic_store_n(lf_slot(d, key), rec + 1, __ATOMIC_RELAXED);
    mmkv_os_unlock(d->m, h->lock);
    return 0;
}

static int lf_del(bench_db *d, const char *key)
{
    return lf_write(d, key, "", 0);
}

static int lf_nothing(bench_db *d)
{
    (void)d;
    return 0;
}

static int64_t lf_scan(bench_db *d, uint64_t *sink)
{
    (void)d;
    (void)sink;
    return -1;
}

const backend be_lock_floor = {"lock-floor",
                               "one lock and the four lines every one-lock write writes "
                               "(multi-process runs only)",
                               1,
                               0,
                               NULL,
                               lf_create,
                               lf_open,
                               lf_close,
                               lf_destroy,
                               lf_get,
                               lf_write,
                               lf_del,
                               lf_nothing,
                               lf_nothing,
                               lf_scan,
                               NULL,
                               NULL,
                               1};
