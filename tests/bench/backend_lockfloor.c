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
**
** "lock-floor16" is the same for a mapping split into BENCH_PARTS parts:
** each part a region with a lock, counters, a pool and slots of its own,
** and a key's part picked from key digits its slot does not use.  Two of
** its writers take the same lock about once in BENCH_PARTS writes, but
** still find the lines of a part last written by the other process about
** half of the time: what they get against one alone is what any store of
** that many parts, where every writer's keys fall in every part, can get.
*/
#include "bench.h"
#include "os.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LF_BYTES (4u << 20) /* the mapping, one part's region of it at a time */
#define LF_SLOTS 65536u     /* index slots (8 bytes each), at 4096 */
#define LF_RECS 16384u      /* record lines (64 bytes each), after the slots */
#define LF_SLOT_OFF 4096u
#define LF_REC_OFF(parts) (LF_SLOT_OFF + 8u * (LF_SLOTS / (parts)))
#define LF_REGION(parts) (LF_REC_OFF(parts) + 64u * (LF_RECS / (parts)))
_Static_assert(LF_REGION(1) <= LF_BYTES && LF_REGION(BENCH_PARTS) * BENCH_PARTS <= LF_BYTES,
               "the layout fits the mapping");

/* Header of a region: the lock at 0, counters at 64, the pool's head at 128. */
struct lf_hdr {
    unsigned char lock[MMKV_OS_LOCK_BYTES];
    uint64_t writes, bytes, pad1[6];
    uint64_t next_rec, pad2[7];
};

struct bench_db {
    mmkv_os_map *m;
    unsigned char *base;
    unsigned parts;
};

static void lf_name(const bench_cfg *c, unsigned parts, char *out, size_t n)
{
    snprintf(out, n, "bench-%s-lock%u", c->tag, parts);
}

/* Opens (create: makes) the mapping of `parts` parts; 0 or -1. */
static int lf_connect(const bench_cfg *c, unsigned parts, int create, struct bench_db **out)
{
    char name[96], err[256];
    int created = 0, sole = 0;
    struct bench_db *d = calloc(1, sizeof *d);
    if (!d) return -1;
    d->parts = parts;
    lf_name(c, parts, name, sizeof name);
    if (mmkv_os_open(name, 0, create ? MMKV_OS_CREATE : 0, LF_BYTES, 0600, 5000, &d->m, &created,
                     &sole, err, sizeof err)) {
        fprintf(stderr, "bench: lock-floor: %s\n", err);
        free(d);
        return -1;
    }
    d->base = mmkv_os_base(d->m);
    int bad = parts > 1 && mmkv_os_set_parts(d->m, parts, LF_REGION(parts));
    for (unsigned i = 0; created && !bad && i < parts; i++)
        bad = mmkv_os_lock_init(d->m, d->base + (size_t)i * LF_REGION(parts));
    mmkv_os_open_done(d->m);
    if (bad) {
        fprintf(stderr, "bench: lock-floor: %s\n", mmkv_os_errmsg(d->m));
        mmkv_os_close(d->m, 1);
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

static int lf_create_parts(const bench_cfg *c, unsigned parts, bench_db **out)
{
    char name[96], path[160];
    lf_name(c, parts, name, sizeof name);
    mmkv_os_unlink(name);
    snprintf(path, sizeof path, "/dev/shm/sqlite-mmap.%s", name);
    cleanup_register(path);
    return lf_connect(c, parts, 1, out);
}

static int lf_create(const bench_cfg *c, bench_db **out)
{
    return lf_create_parts(c, 1, out);
}

static int lf_open(const bench_cfg *c, bench_db **out)
{
    return lf_connect(c, 1, 0, out);
}

static int lfp_create(const bench_cfg *c, bench_db **out)
{
    return lf_create_parts(c, BENCH_PARTS, out);
}

static int lfp_open(const bench_cfg *c, bench_db **out)
{
    return lf_connect(c, BENCH_PARTS, 0, out);
}

static void lf_close(bench_db *d)
{
    mmkv_os_close(d->m, 0);
    free(d);
}

static void lf_destroy_parts(const bench_cfg *c, unsigned parts)
{
    char name[96];
    lf_name(c, parts, name, sizeof name);
    mmkv_os_unlink(name);
}

static void lf_destroy(const bench_cfg *c)
{
    lf_destroy_parts(c, 1);
}

static void lfp_destroy(const bench_cfg *c)
{
    lf_destroy_parts(c, BENCH_PARTS);
}

/* The value of n hex digits of the key from digit i. */
static uint64_t lf_digits(const char *key, int i, int n)
{
    char d[9] = {0};
    memcpy(d, key + i, (size_t)n);
    return strtoull(d, NULL, 16);
}

/* The region of the key's part: digits 8 and 9 pick it. */
static unsigned char *lf_region(bench_db *d, const char *key)
{
    unsigned i = d->parts > 1 ? (unsigned)(lf_digits(key, 8, 2) % d->parts) : 0;
    return d->base + (size_t)i * LF_REGION(d->parts);
}

/* The key's slot in its part: its first 8 hex digits. */
static uint64_t *lf_slot(bench_db *d, unsigned char *region, const char *key)
{
    uint64_t n = LF_SLOTS / d->parts;
    return (uint64_t *)(void *)(region + LF_SLOT_OFF + 8 * (lf_digits(key, 0, 8) % n));
}

static int lf_get(bench_db *d, const char *key, uint64_t *sink)
{
    *sink += __atomic_load_n(lf_slot(d, lf_region(d, key), key), __ATOMIC_RELAXED);
    return 0;
}

/* One write: the part's lock, then the four lines. */
static int lf_write(bench_db *d, const char *key, const void *val, uint32_t vlen)
{
    unsigned char *region = lf_region(d, key);
    struct lf_hdr *h = (struct lf_hdr *)(void *)region;
    int r = mmkv_os_lock(d->m, h->lock, 10000);
    if (r != MMKV_OS_LOCKED && r != MMKV_OS_OWNERDEAD) return -1;
    if (r == MMKV_OS_OWNERDEAD) mmkv_os_lock_repaired(d->m, h->lock);
    h->writes++;
    h->bytes += KEY_LEN + vlen;
    uint64_t rec = h->next_rec++ % (LF_RECS / d->parts);
    unsigned char *p = region + LF_REC_OFF(d->parts) + 64 * rec;
    memcpy(p, key, KEY_LEN);
    memcpy(p + KEY_LEN, val, vlen < 48 ? vlen : 48);
    __atomic_store_n(lf_slot(d, region, key), rec + 1, __ATOMIC_RELAXED);
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
                               1, NULL};

const backend be_lock_floorp = {BENCH_PARTS_NAME("lock-floor"),
                                "the same on a mapping in " BENCH_PARTS_STR
                                " parts, a lock and four lines each (multi-process runs only)",
                                1,
                                0,
                                NULL,
                                lfp_create,
                                lfp_open,
                                lf_close,
                                lfp_destroy,
                                lf_get,
                                lf_write,
                                lf_del,
                                lf_nothing,
                                lf_nothing,
                                lf_scan,
                                NULL,
                                NULL,
                                1, NULL};
