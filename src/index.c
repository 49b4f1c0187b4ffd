/*
** index.c -- the hash index: an open-addressing table of 64-bit slots.
**
** A slot holds (upper 32 bits of the key's hash) << 32 | (record offset / 8);
** 0 is empty.  Lookups start at the hash's home slot, h32 * n >> 32, and
** probe forward (Robin Hood order: a probe stops as soon as it meets an
** entry nearer its own home than the probe is to the key's, so misses stay
** short even at 90% load).  Deletion shifts the following run back, so
** there are no tombstones.  The table grows by doubling inside the heap; if
** the heap cannot hold twice the table, it takes the largest step that fits,
** and when no step fits it is filled up to 97% before the mapping is full.
*/
#include "store_int.h"

/* Stores one slot as a single 64-bit store (lock-free readers load it). */
static void set_slot(uint64_t *t, uint64_t i, uint64_t e)
{
    __atomic_store_n(&t[i], e, __ATOMIC_RELAXED);
}

/* Finds the index block: *slots and *n.  Returns MMKV_OK or MMKV_CORRUPT. */
int index_table(struct mmkv *s, uint64_t **slots, uint64_t *n)
{
    uint64_t off = __atomic_load_n(&s->hdr->table_off, __ATOMIC_RELAXED), top = heap_limit(s);
    if (off < HDR_SIZE || off % 8 || off + 8 > top) return store_corrupt(s, "index offset");
    uint64_t w = blk_word(s, off);
    if (w_state(w) != BS_TABLE || w_size(w) > top - off || w_size(w) < 8 + 8 * MIN_SLOTS ||
        w_size(w) % 8)
        return store_corrupt(s, "index block");
    *slots = (uint64_t *)(void *)(s->base + off + 8);
    *n = (w_size(w) - 8) / 8;
    return MMKV_OK;
}

/* Looks up k (hash h).  On MMKV_OK, *slot is its slot and *r its record.
** Returns MMKV_OK, MMKV_NOTFOUND or MMKV_CORRUPT. */
int index_find(struct mmkv *s, const mmkv_key *k, uint64_t h, uint64_t *slot, struct rec *r)
{
    uint64_t *t = NULL, n = 0;
    int rc = index_table(s, &t, &n);
    if (rc) return rc;
    uint32_t h32 = (uint32_t)(h >> 32);
    uint64_t i = idx_home(h32, n);
    for (uint64_t d = 0; d < n; d++) {
        uint64_t e = t[i];
        if (e == 0 || idx_dist(i, idx_home((uint32_t)(e >> 32), n), n) < d) return MMKV_NOTFOUND;
        if ((uint32_t)(e >> 32) == h32) {
            rc = rec_decode(s, (uint64_t)(uint32_t)e * 8, r);
            if (rc) return rc;
            if (rec_has_key(r, k)) {
                *slot = i;
                return MMKV_OK;
            }
        }
        i = idx_next(i, n);
    }
    return MMKV_NOTFOUND;
}

/* Places entry e in table t of n slots (the key must be absent).
** Returns MMKV_OK, or MMKV_CORRUPT if the table has no empty slot. */
static int place(uint64_t *t, uint64_t n, uint64_t e)
{
    uint64_t i = idx_home((uint32_t)(e >> 32), n), d = 0;
    for (uint64_t step = 0; step < n; step++, d++) {
        uint64_t cur = t[i];
        if (cur == 0) {
            set_slot(t, i, e);
            return MMKV_OK;
        }
        uint64_t cd = idx_dist(i, idx_home((uint32_t)(cur >> 32), n), n);
        if (cd < d) {
            set_slot(t, i, e);
            e = cur;
            d = cd;
        }
        i = idx_next(i, n);
    }
    return MMKV_CORRUPT;
}

/* Adds the record at rec_off (hash h) to the index.  The caller made room
** with index_reserve.  Returns MMKV_OK or MMKV_CORRUPT. */
int index_insert(struct mmkv *s, uint64_t h, uint64_t rec_off)
{
    uint64_t *t = NULL, n = 0;
    int rc = index_table(s, &t, &n);
    if (rc) return rc;
    store_publish(s);
    if (place(t, n, (h >> 32 << 32) | (rec_off / 8))) return store_corrupt(s, "index is full");
    s->hdr->entries++;
    return MMKV_OK;
}

/* Points slot i at a new record of the same key.  The index keeps its
** shape, so seq stays as it is: a lock-free reader that reaches the new
** record finds it NEW and retries, and one that copied the old record
** sees the slot changed (read.c). */
void index_set_at(struct mmkv *s, uint64_t slot, uint64_t h, uint64_t rec_off)
{
    uint64_t *t = NULL, n = 0;
    if (index_table(s, &t, &n) != MMKV_OK || slot >= n) return;
    __atomic_store_n(&t[slot], (h >> 32 << 32) | (rec_off / 8), __ATOMIC_RELEASE);
}

/* Empties slot i and shifts the run after it back.  Returns MMKV_OK or
** MMKV_CORRUPT. */
int index_remove_at(struct mmkv *s, uint64_t i)
{
    uint64_t *t = NULL, n = 0;
    int rc = index_table(s, &t, &n);
    if (rc) return rc;
    if (i >= n) return store_corrupt(s, "index slot");
    store_publish(s);
    for (uint64_t step = 0; step < n; step++) {
        uint64_t j = idx_next(i, n), e = t[j];
        if (e == 0 || idx_dist(j, idx_home((uint32_t)(e >> 32), n), n) == 0) break;
        set_slot(t, i, e);
        i = j;
    }
    set_slot(t, i, 0);
    s->hdr->entries--;
    return MMKV_OK;
}

/* Allocates an empty index block of n slots.  Returns MMKV_OK, MMKV_FULL or
** MMKV_CORRUPT. */
static int new_table(struct mmkv *s, uint64_t n, uint64_t *off)
{
    if (n > (MAX_BLOCK - 8) / 8) return MMKV_FULL;
    uint32_t size = (uint32_t)(8 + 8 * n);
    int rc = heap_alloc(s, size, off);
    if (rc) return rc;
    memset(s->base + *off + 8, 0, size - 8);
    blk_set_word(s, *off, w_make(size, BS_TABLE, 0, 0));
    return MMKV_OK;
}

/* Makes the index a fresh, empty table of n slots (for a new mapping). */
int index_create(struct mmkv *s, uint64_t n)
{
    uint64_t off;
    int rc = new_table(s, n, &off);
    if (rc == MMKV_OK) __atomic_store_n(&s->hdr->table_off, off, __ATOMIC_RELAXED);
    return rc;
}

/* Moves every entry of the current table into a new one of m slots. */
static int regrow(struct mmkv *s, uint64_t *t, uint64_t n, uint64_t m)
{
    uint64_t off, old = s->hdr->table_off;
    int rc = new_table(s, m, &off);
    if (rc) return rc;
    uint64_t *nt = (uint64_t *)(void *)(s->base + off + 8);
    for (uint64_t i = 0; i < n; i++)
        if (t[i] && place(nt, m, t[i])) return store_corrupt(s, "index regrow");
    store_publish(s);
    __atomic_store_n(&s->hdr->table_off, off, __ATOMIC_RELAXED);
    return heap_free(s, old);
}

/* Makes sure the index can hold `want` entries within its load limit,
** growing it if needed.  Returns MMKV_OK, MMKV_FULL or MMKV_CORRUPT. */
int index_reserve(struct mmkv *s, uint64_t want)
{
    uint64_t *t = NULL, n = 0;
    int rc = index_table(s, &t, &n);
    if (rc) return rc;
    if (want * LOAD_DEN <= n * LOAD_NUM) return MMKV_OK;
    uint64_t least = want * LOAD_DEN / LOAD_NUM + 1;
    for (unsigned shift = 0; shift < 4; shift++) {
        uint64_t m = n + (n >> shift);
        if (m < least) break;
        rc = regrow(s, t, n, m);
        if (rc != MMKV_FULL) return rc;
    }
    /* The heap has no room for a larger index: fill this one further
    ** rather than refuse entries whose records would still fit. */
    return want * 100 <= n * LOAD_FULL_PERCENT ? MMKV_OK : MMKV_FULL;
}
