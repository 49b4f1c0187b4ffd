/*
** read.c -- lookups and scans.
**
** A lookup first tries without the lock (get_once says how it knows what
** it read was committed and whole); only if writers keep getting in its
** way does it take the lock.  A scan always runs under the lock, so it
** sees one moment; it walks the heap, not the index.
*/
#include "store_int.h"

#include <stdlib.h>

/* Where a lookup puts the value's bytes: at byte `at` of *buf (*bufsz
** bytes, grown with realloc; the bytes before `at` are kept). */
struct out {
    void **buf;
    size_t *bufsz, at;
};

/* Copies a record's value into *v, its bytes into the caller's buffer. */
static int copy_value(struct mmkv *s, const struct rec *r, mmkv_value *v, const struct out *o)
{
    if (!v) return MMKV_OK; /* only whether the key is there */
    *v = r->val;
    if (r->val.type != MMKV_TEXT && r->val.type != MMKV_BLOB) return MMKV_OK;
    size_t need = o->at + (size_t)r->val.n + 1;
    if (need <= o->at) return store_err(s, MMKV_NOMEM, "out of memory");
    if (*o->bufsz < need) {
        size_t size = (need + 7) & ~(size_t)7; /* room for a caller's padding too */
        void *p = size >= need ? realloc(*o->buf, size) : NULL;
        if (!p) return store_err(s, MMKV_NOMEM, "out of memory");
        *o->buf = p;
        *o->bufsz = size;
    }
    char *dst = (char *)*o->buf + o->at;
    if (r->val.n) memcpy(dst, r->val.p, r->val.n);
    dst[r->val.n] = 0;
    v->p = dst;
    return MMKV_OK;
}

/* Tells the processor that this is a spin-wait loop. */
static void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Results of one lock-free attempt besides MMKV_OK and MMKV_NOTFOUND. */
enum { TRY_AGAIN = -1, USE_LOCK = -2 };

static uint64_t load64(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Returns non-zero if writers may have changed what an attempt that began
** by loading seq, reshape and epoch has read since. */
static int moved(const struct mmkv_hdr *h, uint64_t seq, uint64_t reshape, uint64_t epoch)
{
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return load64(&h->seq) != seq || load64(&h->reshape) != reshape ||
           load64(&h->epoch) - epoch > 1;
}

/* One lookup of k (hash hash) without the lock.
**
** What a writer changes without telling readers: a slot's offset when its
** key gets a new record (the new record is NEW until commit), block states
** (LIVE to DEAD to FREE at commit), and blocks freed by a commit, which a
** later transaction may reuse.  A record's bytes never change while its
** block holds it.  So a record found through slot i is kept only if, after
** its value was copied, slot i still holds the same entry and the block
** the same word: the word's stamp changes whenever the block is reused,
** and an epoch that moved by at most one (fewer than 2 * EPOCH_COMMITS =
** STAMP_MOD commits; each reuse of a block needs one) rules out a stamp
** that went all the way round.  Its state must be LIVE or DEAD
** (committed; DEAD means a transaction still open replaces it).
**
** Changes to the index's shape (keys added or removed, the table moved)
** make seq odd until their transaction ends, and merges of free blocks
** change `reshape`; an attempt that saw either is thrown away.
**
** Every offset is bounds-checked, so a read of a block being reused is
** harmless.  Returns MMKV_OK, MMKV_NOTFOUND or MMKV_NOMEM when the result
** holds, TRY_AGAIN, or USE_LOCK when the mapping looked damaged and no
** writer was at work (the locked lookup then says for certain).
**
** What this relies on, kept by the writers: every block freed other than
** at commit (an undone insert, the old index after a regrow) is freed
** after seq went odd; a new index table is only made by a regrow, which
** makes seq odd; a block only becomes part of a larger one by a merge,
** which changes reshape; and a commit's release fence orders the slot
** stores before it ahead of the frees it makes (a freed block's link
** overwrites its first key bytes). */
static int get_once(struct mmkv *s, const mmkv_key *k, uint64_t hash, mmkv_value *v,
                    const struct out *o)
{
    struct mmkv_hdr *h = s->hdr;
    uint64_t seq = load64(&h->seq);
    if (seq & 1) return TRY_AGAIN;
    uint64_t reshape = load64(&h->reshape), epoch = load64(&h->epoch);
    uint64_t *t = NULL, n = 0;
    if (index_table(s, &t, &n)) return moved(h, seq, reshape, epoch) ? TRY_AGAIN : USE_LOCK;
    uint32_t h32 = (uint32_t)(hash >> 32);
    uint64_t i = idx_home(h32, n), top = heap_limit(s);
    int rc = MMKV_NOTFOUND;
    for (uint64_t d = 0; d < n; d++, i = idx_next(i, n)) {
        uint64_t e = load64(&t[i]);
        if (e == 0 || idx_dist(i, idx_home((uint32_t)(e >> 32), n), n) < d) break;
        if ((uint32_t)(e >> 32) != h32) continue;
        uint64_t off = (uint64_t)(uint32_t)e * 8;
        if (off < HDR_SIZE || off + 8 > top) return TRY_AGAIN;
        const uint64_t *word = (const uint64_t *)(const void *)(s->base + off);
        uint64_t w = load64(word);
        struct rec r;
        if (rec_decode_word(s, off, w, &r))
            return load64(&t[i]) != e || moved(h, seq, reshape, epoch) ? TRY_AGAIN : USE_LOCK;
        int mine = rec_has_key(&r, k);
        if (mine) {
            if (r.state != BS_LIVE && r.state != BS_DEAD) return TRY_AGAIN;
            rc = copy_value(s, &r, v, o); /* only MMKV_NOMEM can fail */
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (load64(&t[i]) != e || load64(word) != w) return TRY_AGAIN;
        if (mine) break;
    }
    return moved(h, seq, reshape, epoch) ? TRY_AGAIN : rc;
}

/* Looks k up without the lock, trying again while writers get in the way.
** Returns the lookup's result, or -1 when it could not get one (the caller
** then takes the lock). */
static int get_optimistic(struct mmkv *s, const mmkv_key *k, mmkv_value *v, const struct out *o)
{
    uint64_t hash = key_hash(s->hdr->seed, k);
    int rc = -1;
    s->quiet = 1;
    for (int attempt = 0; attempt < 100; attempt++) {
        rc = get_once(s, k, hash, v, o);
        if (rc != TRY_AGAIN) break;
        spin_pause();
    }
    s->quiet = 0;
    if (rc == MMKV_NOMEM) return store_err(s, MMKV_NOMEM, "out of memory");
    return rc == TRY_AGAIN || rc == USE_LOCK ? -1 : rc;
}

int part_get_at(mmkv *s, const mmkv_key *k, mmkv_value *v, void **buf, size_t *bufsz, size_t at)
{
    const struct out o = {buf, bufsz, at};
    int rc = store_check_sizes(s, k, NULL);
    if (rc == MMKV_TOOBIG) return MMKV_NOTFOUND; /* no such key can exist */
    if (rc) return rc;
    if (!s->locked && (rc = get_optimistic(s, k, v, &o)) >= 0) return rc;
    rc = store_lock(s);
    if (rc) return rc;
    struct rec r;
    uint64_t slot;
    rc = index_find(s, k, key_hash(s->hdr->seed, k), &slot, &r);
    if (rc == MMKV_OK) rc = copy_value(s, &r, v, &o);
    if (rc == MMKV_OK && s->in_txn) {
        /* a delete of this key in the same transaction starts here (txn.c) */
        s->hint_ok = 1;
        s->hint_slot = slot;
        s->hint_rec = r;
    }
    store_unlock(s);
    return rc;
}

/* Calls fn for every entry, walking the heap in address order (the blocks
** a scan reads lie one after another, so the processor streams them in,
** where the index's order would send it to a random line per entry).
** Under the lock the entries are the LIVE records, and the NEW ones of
** this handle's own open transaction (DEAD ones are deleted by it). */
int part_scan(mmkv *s, mmkv_scan_fn fn, void *ctx)
{
    int rc = store_lock(s);
    if (rc) return rc;
    uint64_t off = HDR_SIZE, top = heap_limit(s);
    while (rc == MMKV_OK && off < top) {
        uint64_t w = blk_word(s, off);
        struct rec r;
        if (w_size(w) < MIN_BLOCK || w_size(w) % 8 || w_size(w) > top - off) {
            rc = store_corrupt(s, "block size");
            break;
        }
        if (w_state(w) == BS_LIVE || w_state(w) == BS_NEW) {
            rc = rec_decode_word(s, off, w, &r);
            if (rc == MMKV_OK) rc = fn(ctx, &r.key, &r.val);
        }
        off += w_size(w);
    }
    store_unlock(s);
    return rc;
}
