/*
** heap.c -- blocks, records and the free-space allocator of a mapping.
**
** Free blocks are kept on 128 singly linked lists in the header: one per
** exact size from 16 to 1024 bytes, and one for larger blocks (first fit,
** split).  When nothing fits, adjacent free blocks are merged in one walk
** of the heap and the search is tried again.  The lists are only a cache
** of the block states: recovery rebuilds them from the heap.
**
** Every function here runs under the lock, with the header's dirty flag set
** by the caller before it changes anything.
*/
#include "store_int.h"

/* Returns the word of the block at off (off already checked). */
uint64_t blk_word(const struct mmkv *s, uint64_t off)
{
    uint64_t w = 0;
    memcpy(&w, s->base + off, 8);
    return w;
}

/* Writes a block word as one 64-bit store, after the block's other bytes
** (a lock-free reader loads the word first). */
void blk_set_word(struct mmkv *s, uint64_t off, uint64_t w)
{
    __atomic_store_n((uint64_t *)(void *)(s->base + off), w, __ATOMIC_RELEASE);
}

/* Changes only the state of a block's word, keeping its stamp. */
void blk_set_state(struct mmkv *s, uint64_t off, int state)
{
    uint64_t w = blk_word(s, off);
    w = (w & ~((uint64_t)0xf0 << 32)) | ((uint64_t)state << 32);
    blk_set_word(s, off, w);
}

/* Makes the block at off a free block of `size` bytes, keeping the stamp
** of whatever word was there. */
static void set_free_word(struct mmkv *s, uint64_t off, uint32_t size)
{
    blk_set_word(s, off, w_make(size, BS_FREE | (int)w_stamp(blk_word(s, off)), 0, 0));
}

/* Returns the free-list class of a block size. */
static unsigned size_class(uint32_t size)
{
    return size <= SMALL_MAX ? size / 8 - 2 : NCLASS - 1;
}

/* Checks that off names a whole block inside the heap; returns its word in
** *w.  Returns MMKV_OK or MMKV_CORRUPT. */
static int blk_checked(struct mmkv *s, uint64_t off, uint64_t *w)
{
    uint64_t top = heap_limit(s);
    if (off < HDR_SIZE || off % 8 || off + 8 > top) return store_corrupt(s, "block offset");
    *w = blk_word(s, off);
    uint32_t size = w_size(*w);
    if (size < MIN_BLOCK || size % 8 || size > top - off) return store_corrupt(s, "block size");
    return MMKV_OK;
}

/* Returns the next-link of a free block. */
static uint32_t free_next(struct mmkv *s, uint64_t off)
{
    uint32_t u;
    memcpy(&u, s->base + off + 8, 4);
    return u;
}

static void set_free_next(struct mmkv *s, uint64_t off, uint32_t u)
{
    memcpy(s->base + off + 8, &u, 4);
}

/* Marks the block at off free and pushes it on its list. */
static void push_free(struct mmkv *s, uint64_t off, uint32_t size)
{
    unsigned c = size_class(size);
    set_free_next(s, off, s->hdr->free_head[c]);
    set_free_word(s, off, size);
    s->hdr->free_head[c] = (uint32_t)(off / 8);
}

/* Returns a block to the free lists.  Returns MMKV_OK, or MMKV_CORRUPT
** (leaving it as it is) if its word is not that of a sound block. */
int heap_free(struct mmkv *s, uint64_t off)
{
    uint64_t w = 0;
    int rc = blk_checked(s, off, &w);
    if (rc) return rc;
    s->hdr->used -= w_size(w);
    if (s->hdr->merged) s->hdr->merged = 0; /* its neighbours may be free */
    push_free(s, off, w_size(w));
    return MMKV_OK;
}

/* Pops the head of list c if it is a sound free block.  Returns MMKV_OK with
** *off set, MMKV_NOTFOUND if the list is empty, or MMKV_CORRUPT. */
static int pop_free(struct mmkv *s, unsigned c, uint64_t *off)
{
    uint32_t u = s->hdr->free_head[c];
    uint64_t w = 0;
    if (u == 0) return MMKV_NOTFOUND;
    int rc = blk_checked(s, (uint64_t)u * 8, &w);
    if (rc) return rc;
    if (w_state(w) != BS_FREE || size_class(w_size(w)) != c) return store_corrupt(s, "free list");
    *off = (uint64_t)u * 8;
    s->hdr->free_head[c] = free_next(s, *off);
    return MMKV_OK;
}

/* Cuts the free block at off (of size have) to `size` bytes, returning the
** rest, if big enough to be a block, to the free lists. */
static void split(struct mmkv *s, uint64_t off, uint32_t have, uint32_t size)
{
    if (have - size >= MIN_BLOCK) {
        push_free(s, off + size, have - size);
        set_free_word(s, off, size);
    }
}

/* First fit on the list of large blocks.  Returns MMKV_OK, MMKV_NOTFOUND or
** MMKV_CORRUPT. */
static int take_large(struct mmkv *s, uint32_t size, uint64_t *off)
{
    uint32_t *link = &s->hdr->free_head[NCLASS - 1];
    uint64_t limit = heap_limit(s) / MIN_BLOCK;
    while (*link && limit--) {
        uint64_t at = (uint64_t)*link * 8, w = 0;
        int rc = blk_checked(s, at, &w);
        if (rc) return rc;
        if (w_state(w) != BS_FREE || w_size(w) <= SMALL_MAX)
            return store_corrupt(s, "large free list");
        if (w_size(w) >= size && (w_size(w) == size || w_size(w) - size >= MIN_BLOCK)) {
            *link = free_next(s, at);
            split(s, at, w_size(w), size);
            *off = at;
            return MMKV_OK;
        }
        link = (uint32_t *)(void *)(s->base + at + 8);
    }
    return *link ? store_corrupt(s, "large free list loops") : MMKV_NOTFOUND;
}

/* Takes a block from a small list at least 16 bytes larger and splits it. */
static int take_split_small(struct mmkv *s, uint32_t size, uint64_t *off)
{
    for (uint32_t have = size + MIN_BLOCK; have <= SMALL_MAX; have += 8) {
        int rc = pop_free(s, size_class(have), off);
        if (rc == MMKV_NOTFOUND) continue;
        if (rc == MMKV_OK) split(s, *off, have, size);
        return rc;
    }
    return MMKV_NOTFOUND;
}

/* Lays a new block at the top of the heap if there is room. */
static int take_top(struct mmkv *s, uint32_t size, uint64_t *off)
{
    uint64_t top = heap_limit(s);
    if (top < HDR_SIZE) return store_corrupt(s, "heap top");
    if (size > s->cap - top) return MMKV_NOTFOUND;
    set_free_word(s, top, size);
    __atomic_store_n(&s->hdr->heap_top, top + size, __ATOMIC_RELAXED);
    *off = top;
    return MMKV_OK;
}

/* One attempt to find `size` bytes without merging. */
static int try_alloc(struct mmkv *s, uint32_t size, uint64_t *off)
{
    int rc = MMKV_NOTFOUND;
    if (size <= SMALL_MAX) rc = pop_free(s, size_class(size), off);
    if (rc == MMKV_NOTFOUND) rc = take_top(s, size, off);
    if (rc == MMKV_NOTFOUND) rc = take_large(s, size, off);
    if (rc == MMKV_NOTFOUND && size <= SMALL_MAX) rc = take_split_small(s, size, off);
    return rc;
}

/* Allocates a block of exactly `size` bytes (multiple of 8, >= 16).  The
** block's word says BS_FREE until the caller writes its own.  Returns
** MMKV_OK, MMKV_FULL or MMKV_CORRUPT. */
int heap_alloc(struct mmkv *s, uint32_t size, uint64_t *off)
{
    int rc = try_alloc(s, size, off);
    /* Merging helps only if a block was freed since the last merge and that
    ** many bytes are free at all; else a nearly full mapping would walk its
    ** whole heap on every failed allocation (and an index that cannot grow
    ** tries four sizes per insert). */
    if (rc == MMKV_NOTFOUND && !s->hdr->merged && s->hdr->used <= s->cap &&
        s->cap - s->hdr->used >= size) {
        rc = heap_coalesce(s);
        if (rc == MMKV_OK) rc = try_alloc(s, size, off);
    }
    if (rc == MMKV_NOTFOUND) return MMKV_FULL;
    if (rc == MMKV_OK) s->hdr->used += size;
    return rc;
}

/* Merges runs of adjacent free blocks, gives a free tail back to the top,
** and rebuilds every free list.  Offsets inside a merged block lose their
** stamps, so `reshape` changes first: lock-free readers then retry.
** Returns MMKV_OK or MMKV_CORRUPT. */
int heap_coalesce(struct mmkv *s)
{
    struct mmkv_hdr *h = s->hdr;
    uint64_t off = HDR_SIZE, w = 0, top = heap_limit(s);
    __atomic_store_n(&h->reshape, h->reshape + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    memset(h->free_head, 0, sizeof h->free_head);
    while (off < top) {
        int rc = blk_checked(s, off, &w);
        if (rc) return rc;
        uint64_t size = w_size(w);
        if (w_state(w) == BS_FREE) {
            uint64_t w2 = 0;
            while (off + size < top) {
                rc = blk_checked(s, off + size, &w2);
                if (rc) return rc;
                if (w_state(w2) != BS_FREE || size + w_size(w2) > MAX_BLOCK) break;
                size += w_size(w2);
            }
            if (off + size == top) {
                __atomic_store_n(&h->heap_top, off, __ATOMIC_RELAXED);
                break;
            }
            push_free(s, off, (uint32_t)size);
        }
        off += size;
    }
    h->merged = 1;
    return MMKV_OK;
}

/* Returns the block size a record of key k and value v needs. */
uint32_t rec_size(const mmkv_key *k, const mmkv_value *v)
{
    uint64_t n = 8 + (uint64_t)k->n;
    if (v->type == MMKV_INT || v->type == MMKV_REAL) n += 8;
    if (v->type == MMKV_TEXT || v->type == MMKV_BLOB) n += v->n;
    n = (n + 7) & ~(uint64_t)7;
    return n < MIN_BLOCK ? MIN_BLOCK : (uint32_t)n;
}

/* Writes a new record (state BS_NEW, the block's stamp plus one) for k and
** v into a fresh block and returns its offset.  Returns MMKV_OK, MMKV_FULL
** or MMKV_CORRUPT. */
int rec_write(struct mmkv *s, const mmkv_key *k, const mmkv_value *v, uint64_t *off)
{
    uint32_t size = rec_size(k, v), vlen = 0;
    int rc = heap_alloc(s, size, off);
    if (rc) return rc;
    unsigned char *p = s->base + *off + 8;
    if (k->n) memcpy(p, k->p, k->n);
    p += k->n;
    if (v->type == MMKV_INT) {
        memcpy(p, &v->i, 8);
        vlen = 8;
    } else if (v->type == MMKV_REAL) {
        memcpy(p, &v->r, 8);
        vlen = 8;
    } else if (v->type != MMKV_NULL) {
        if (v->n) memcpy(p, v->p, v->n);
        vlen = v->n;
    }
    unsigned pad = size - 8 - k->n - vlen;
    unsigned types = (k->type == MMKV_BLOB ? 1u : 0u) | ((unsigned)v->type << 1) | (pad << 4);
    unsigned stamp = (w_stamp(blk_word(s, *off)) + 1) % STAMP_MOD;
    blk_set_word(s, *off, w_make(size, BS_NEW | (int)stamp, types, k->n));
    return MMKV_OK;
}

/* Decodes the record block at off into *r, checking every field against
** the block's bounds.  Returns MMKV_OK or MMKV_CORRUPT. */
static int decode_fields(struct mmkv *s, uint64_t off, uint64_t w, struct rec *r);

int rec_decode(struct mmkv *s, uint64_t off, struct rec *r)
{
    uint64_t w = 0;
    int rc = blk_checked(s, off, &w);
    if (rc) return rc;
    return decode_fields(s, off, w, r);
}

/* The same with the block's word already loaded: off must be inside the
** heap; w is checked.  Returns MMKV_OK or MMKV_CORRUPT. */
int rec_decode_word(struct mmkv *s, uint64_t off, uint64_t w, struct rec *r)
{
    uint64_t top = heap_limit(s);
    if (w_size(w) < MIN_BLOCK || w_size(w) % 8 || off > top || w_size(w) > top - off)
        return store_corrupt(s, "block size");
    return decode_fields(s, off, w, r);
}

/* Decodes a record whose block (off, w) is known to lie inside the heap. */
static int decode_fields(struct mmkv *s, uint64_t off, uint64_t w, struct rec *r)
{
    unsigned types = (unsigned)(w >> 40) & 0xff;
    uint32_t klen = (uint32_t)(w >> 48), size = w_size(w);
    unsigned pad = types >> 4, vtype = (types >> 1) & 7;
    r->state = w_state(w);
    if (r->state != BS_LIVE && r->state != BS_NEW && r->state != BS_DEAD && r->state != BS_GONE)
        return store_corrupt(s, "record state");
    if ((uint64_t)klen + pad + 8 > size || vtype > MMKV_BLOB)
        return store_corrupt(s, "record lengths");
    uint32_t vlen = size - 8 - klen - pad;
    const unsigned char *p = s->base + off + 8;
    r->off = off;
    r->size = size;
    r->key.type = (types & 1) ? MMKV_BLOB : MMKV_TEXT;
    r->key.p = p;
    r->key.n = klen;
    memset(&r->val, 0, sizeof r->val);
    r->val.type = (int)vtype;
    if (vtype == MMKV_INT || vtype == MMKV_REAL) {
        if (vlen != 8) return store_corrupt(s, "number length");
        if (vtype == MMKV_INT)
            memcpy(&r->val.i, p + klen, 8);
        else
            memcpy(&r->val.r, p + klen, 8);
    } else if (vtype == MMKV_NULL) {
        if (vlen != 0) return store_corrupt(s, "null length");
    } else {
        r->val.p = p + klen;
        r->val.n = vlen;
    }
    return MMKV_OK;
}

/* Asks the CPU to fetch, for writing, the lines a change of the key of
** hash h (with this part's seed) will touch once it holds the lock: the
** lock and the counters, the key's home slot and the record it names, and
** for a put of a record of `size` bytes (0: a delete) the head of its free
** list and the block that head names.  Called before the lock is taken, so
** the fetches overlap one another and the wait for the lock, where inside
** the hold each would wait for the one before it (the lines a writer in
** another process changed last are a transfer between CPUs each).  It
** reads without the lock: every value read serves only as an address to
** prefetch, kept inside the mapping, and a prefetch never faults. */
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("prfchw"))) /* PREFETCHW; a no-op on CPUs without it */
#endif
void store_warm(struct mmkv *s, uint64_t h, uint32_t size)
{
    struct mmkv_hdr *hd = s->hdr;
    uint64_t cap = s->cap;
    __builtin_prefetch(hd->lock, 1);
    __builtin_prefetch(&hd->commits, 1);
    if (size >= MIN_BLOCK) {
        unsigned c = size_class(size);
        __builtin_prefetch(&hd->free_head[c], 1);
        uint64_t u = __atomic_load_n(&hd->free_head[c], __ATOMIC_RELAXED);
        if (u * 8 + MIN_BLOCK <= cap) __builtin_prefetch(s->base + u * 8, 1);
    }
    uint64_t toff = __atomic_load_n(&hd->table_off, __ATOMIC_RELAXED);
    if (toff < HDR_SIZE || toff % 8 || toff > cap - 8 - 8 * MIN_SLOTS) return;
    uint32_t tsize =
        w_size(__atomic_load_n((uint64_t *)(void *)(s->base + toff), __ATOMIC_RELAXED));
    if (tsize < 8 + 8 * MIN_SLOTS || tsize > cap - toff) return;
    uint64_t *slot =
        (uint64_t *)(void *)(s->base + toff + 8) + idx_home((uint32_t)(h >> 32), (tsize - 8) / 8);
    __builtin_prefetch(slot, 1);
    uint64_t roff = (uint64_t)(uint32_t)__atomic_load_n(slot, __ATOMIC_RELAXED) * 8;
    if (roff && roff + 64 <= cap) __builtin_prefetch(s->base + roff, 1);
}
