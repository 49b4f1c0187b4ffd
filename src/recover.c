/*
** recover.c -- rebuilding a mapping after a writer died, and checking one.
**
** Recovery needs only the block states.  If the dead writer had passed its
** commit point (header `committing`), its transaction is finished: NEW
** records become LIVE and DEAD ones FREE.  Otherwise it is undone: NEW
** records are freed and DEAD ones live again.  Then the index, the free
** lists and the header's figures are rebuilt from the LIVE records.  It is
** idempotent: a recoverer that dies too leaves work the next one redoes.
*/
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>

/* Walks the heap, settling each block of the unfinished transaction.
** Returns MMKV_OK or MMKV_CORRUPT. */
static int settle_blocks(struct mmkv *s, int forward)
{
    uint64_t off = HDR_SIZE, top = heap_limit(s);
    while (off < top) {
        uint64_t w = blk_word(s, off);
        uint32_t size = w_size(w);
        if (size < MIN_BLOCK || size % 8 || size > top - off) return store_corrupt(s, "block size");
        int st = w_state(w), to = st;
        if (st == BS_NEW) to = forward ? BS_LIVE : BS_FREE;
        if (st == BS_DEAD) to = forward ? BS_FREE : BS_LIVE;
        if (st == BS_GONE) to = BS_FREE;
        if (st == BS_TABLE && off != s->hdr->table_off) to = BS_FREE;
        if (st != BS_FREE && st != BS_LIVE && st != BS_NEW && st != BS_DEAD && st != BS_GONE &&
            st != BS_TABLE)
            return store_corrupt(s, "block state");
        if (to == BS_FREE && st != BS_FREE)
            blk_set_word(s, off, w_make(size, BS_FREE | (int)w_stamp(w), 0, 0));
        else if (to != st)
            blk_set_state(s, off, to);
        off += size;
    }
    return MMKV_OK;
}

/* Puts every LIVE record into the emptied index and recounts the header's
** figures.  Returns MMKV_OK or MMKV_CORRUPT. */
static int reindex(struct mmkv *s)
{
    struct mmkv_hdr *h = s->hdr;
    uint64_t *t = NULL, n = 0, off = HDR_SIZE;
    int rc = index_table(s, &t, &n);
    if (rc) return rc;
    memset(t, 0, n * 8);
    h->entries = 0;
    h->kv_bytes = 0;
    h->used = HDR_SIZE;
    uint64_t top = heap_limit(s);
    while (off < top) {
        uint64_t w = blk_word(s, off), slot;
        struct rec r, other;
        if (w_state(w) == BS_TABLE) h->used += w_size(w);
        if (w_state(w) == BS_LIVE) {
            rc = rec_decode(s, off, &r);
            if (rc) return rc;
            uint64_t hash = key_hash(h->seed, &r.key);
            rc = index_find(s, &r.key, hash, &slot, &other);
            if (rc == MMKV_OK) return store_corrupt(s, "duplicate key");
            if (rc != MMKV_NOTFOUND) return rc;
            if (h->entries >= n) return store_corrupt(s, "more entries than index slots");
            rc = index_insert(s, hash, off);
            if (rc) return rc;
            h->used += r.size;
            h->kv_bytes +=
                r.key.n + r.val.n + (r.val.type == MMKV_INT || r.val.type == MMKV_REAL ? 8 : 0);
        }
        off += w_size(w);
    }
    return MMKV_OK;
}

/* Says whether the dead writer's transaction had passed its commit point:
** its own (committing), or, for a part of a split mapping, that of the
** multi-part commit its changes belong to (xtxn), which passed it when part
** 0's xcommit took its number.  xcommit changes only while every part is
** held, so it is still while this part is. */
static int recover_forward(struct mmkv *s)
{
    if (s->hdr->committing) return 1;
    uint64_t x = s->hdr->xtxn;
    return x != 0 && s->xcommit && x == __atomic_load_n(s->xcommit, __ATOMIC_ACQUIRE);
}

/* Restores the committed state after a writer died (header dirty).
** Returns MMKV_OK or MMKV_CORRUPT. */
int store_recover(struct mmkv *s)
{
    store_publish(s); /* the index is about to be emptied and refilled */
    __atomic_store_n(&s->hdr->reshape, s->hdr->reshape + 1, __ATOMIC_RELAXED);
    int forward = recover_forward(s);
    int rc = settle_blocks(s, forward);
    if (rc == MMKV_OK) rc = reindex(s);
    if (rc == MMKV_OK) rc = heap_coalesce(s);
    if (rc) return rc;
    if (forward) store_count_commit(s->hdr);
    s->hdr->committing = 0;
    s->hdr->xtxn = 0;
    store_mark_clean(s->hdr);
    return MMKV_OK;
}

/* A growing report of problems. */
struct report {
    char *buf;
    size_t len, cap;
    int problems;
};

/* Appends one problem line (at most 100 lines are kept). */
static void problem(struct report *r, const char *fmt, unsigned long long a, unsigned long long b)
{
    char line[200];
    r->problems++;
    if (r->problems > 100) return;
    int n = snprintf(line, sizeof line, fmt, a, b);
    if (n < 0) return;
    if (r->len + (size_t)n + 2 > r->cap) {
        size_t cap = (r->cap + (size_t)n + 2) * 2;
        char *p = realloc(r->buf, cap);
        if (!p) return;
        r->buf = p;
        r->cap = cap;
    }
    if (r->len) r->buf[r->len++] = '\n';
    memcpy(r->buf + r->len, line, (size_t)n + 1);
    r->len += (size_t)n;
}

/* Figures gathered by one walk of the heap. */
struct tally {
    uint64_t live, pending, free_blocks, used, kv_bytes, tables;
};

/* Walks the heap checking each block.  Returns 0 if the walk reached the
** top, -1 if it had to stop. */
static int walk_heap(struct mmkv *s, struct report *r, struct tally *t)
{
    uint64_t off = HDR_SIZE, top = heap_limit(s);
    memset(t, 0, sizeof *t);
    t->used = HDR_SIZE;
    while (off < top) {
        uint64_t w = blk_word(s, off);
        uint32_t size = w_size(w);
        if (size < MIN_BLOCK || size % 8 || size > top - off) {
            problem(r, "block at offset %llu has a bad size %llu", off, size);
            return -1;
        }
        int st = w_state(w);
        struct rec rec;
        if (st == BS_FREE) {
            t->free_blocks++;
        } else if (st == BS_TABLE) {
            t->tables++;
            t->used += size;
        } else if (rec_decode(s, off, &rec) != MMKV_OK) {
            problem(r, "record at offset %llu is damaged (state %llu)", off, (unsigned)st);
        } else {
            t->used += size;
            if (st == BS_LIVE || st == BS_NEW) {
                t->live++;
                t->kv_bytes += rec.key.n + rec.val.n +
                               (rec.val.type == MMKV_INT || rec.val.type == MMKV_REAL ? 8 : 0);
            }
            if (st != BS_LIVE) t->pending++;
        }
        off += size;
    }
    return 0;
}

/* Checks every index slot: it must lead to a record of its hash that a
** lookup finds at that very slot. */
static void check_index(struct mmkv *s, struct report *r, uint64_t *count)
{
    uint64_t *t = NULL, n = 0;
    *count = 0;
    if (index_table(s, &t, &n) != MMKV_OK) {
        problem(r, "index block at offset %llu is damaged%.0llu", s->hdr->table_off, 0);
        return;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (!t[i]) continue;
        struct rec rec, found;
        uint64_t slot;
        (*count)++;
        if (rec_decode(s, (uint64_t)(uint32_t)t[i] * 8, &rec) != MMKV_OK) {
            problem(r, "index slot %llu points to a damaged record at %llu", i,
                    (uint64_t)(uint32_t)t[i] * 8);
            continue;
        }
        uint64_t h = key_hash(s->hdr->seed, &rec.key);
        if (index_find(s, &rec.key, h, &slot, &found) != MMKV_OK || slot != i)
            problem(r, "index slot %llu is not where its key's lookup leads (record %llu)", i,
                    rec.off);
        if (rec.state != BS_LIVE && rec.state != BS_NEW)
            problem(r, "index slot %llu points to a deleted record at %llu", i, rec.off);
    }
}

/* Checks the free lists: sound blocks, right class, no loops, all counted. */
static void check_free_lists(struct mmkv *s, struct report *r, uint64_t free_blocks)
{
    uint64_t seen = 0, top = heap_limit(s), limit = top / MIN_BLOCK + 1;
    for (unsigned c = 0; c < NCLASS; c++) {
        uint32_t u = s->hdr->free_head[c];
        while (u && seen <= limit) {
            uint64_t off = (uint64_t)u * 8;
            if (off < HDR_SIZE || off + 16 > top) {
                problem(r, "free list %llu leads outside the heap (%llu)", c, off);
                break;
            }
            uint64_t w = blk_word(s, off);
            unsigned want = w_size(w) <= SMALL_MAX ? w_size(w) / 8 - 2 : NCLASS - 1;
            if (w_state(w) != BS_FREE || want != c) {
                problem(r, "free list %llu holds a block that is not free or not its size (%llu)",
                        c, off);
                break;
            }
            seen++;
            memcpy(&u, s->base + off + 8, 4);
        }
    }
    if (seen > limit)
        problem(r, "a free list loops%.0llu%.0llu", 0, 0);
    else if (seen != free_blocks)
        problem(r, "free lists hold %llu blocks but the heap has %llu free", seen, free_blocks);
}

/* Checks the whole mapping; *out gets "ok" or the problems, one a line.
** Returns MMKV_OK or MMKV_NOMEM. */
int store_check(struct mmkv *s, char **out)
{
    struct report r = {0};
    struct tally t;
    uint64_t indexed;
    struct mmkv_hdr *h = s->hdr;
    if (walk_heap(s, &r, &t) == 0) {
        check_index(s, &r, &indexed);
        if (indexed != t.live)
            problem(&r, "index holds %llu entries but the heap has %llu", indexed, t.live);
        if (h->entries != t.live)
            problem(&r, "header counts %llu entries but the heap has %llu", h->entries, t.live);
        if (h->used != t.used)
            problem(&r, "header counts %llu bytes used but the heap has %llu", h->used, t.used);
        if (h->kv_bytes != t.kv_bytes)
            problem(&r, "header counts %llu key/value bytes, the heap has %llu", h->kv_bytes,
                    t.kv_bytes);
        if (t.tables != 1) problem(&r, "the heap has %llu index blocks%.0llu", t.tables, 0);
        if (t.pending && !s->in_txn)
            problem(&r, "%llu records of an unfinished transaction%.0llu", t.pending, 0);
        check_free_lists(s, &r, t.free_blocks);
    }
    if (r.problems > 100) problem(&r, "... %llu problems in all%.0llu", r.problems - 1, 0);
    if (!r.problems) {
        free(r.buf);
        r.buf = malloc(3);
        if (r.buf) memcpy(r.buf, "ok", 3);
    }
    *out = r.buf;
    return r.buf ? MMKV_OK : MMKV_NOMEM;
}
