/*
** txn.c -- write transactions and the changes made in them.
**
** A transaction takes the mapping's lock at mmkv_begin and keeps it until
** mmkv_commit or mmkv_rollback.  Before its first change the header's dirty
** flag is set, and before its first change to the index's shape (a key
** added or removed, the table moved) seq is made odd; every change is
** logged in process memory (block offset, insert or delete) so that commit
** can publish and rollback undo it.  A change made outside a transaction
** runs in one of its own.
*/
#include "store_int.h"

#include <stdlib.h>

int part_begin(mmkv *s)
{
    if (s->in_txn) return store_err(s, MMKV_INVALID, "a transaction is already open");
    if (s->readonly) return store_err(s, MMKV_READONLY, "mapping %s is read-only", s->where);
    int rc = store_lock(s);
    if (rc) return rc;
    s->in_txn = 1;
    s->nops = 0;
    s->err[0] = 0;
    return MMKV_OK;
}

/* Marks the mapping as being changed, before the first change of a
** transaction: whoever takes the lock and finds it set runs recovery.
** Only lock holders read it, and a process that died has every store it
** made visible, so it needs no stronger order than a release fence gives.
** Lock-free readers check each record they read (read.c). */
static void mark_dirty(struct mmkv_hdr *h)
{
    __atomic_store_n(&h->dirty, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

/* Makes seq odd before the first change to the index's shape (slots
** filled, emptied or shifted, the table moved): from then until the
** transaction ends, lock-free readers retry or take the lock.  A slot
** pointed at a new record of the same key does not need it (read.c). */
void store_publish(struct mmkv *s)
{
    struct mmkv_hdr *h = s->hdr;
    if (h->seq & 1) return; /* readers retry until it is even again: no order needed */
    __atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE); /* before the stores it covers */
}

/* Counts a commit, and every EPOCH_COMMITS commits an epoch: lock-free
** readers watch the epoch, which changes seldom enough that its cache line
** mostly stays in theirs. */
void store_count_commit(struct mmkv_hdr *h)
{
    uint64_t c = h->commits + 1;
    h->commits = c;
    if (c % EPOCH_COMMITS == 0) __atomic_store_n(&h->epoch, c / EPOCH_COMMITS, __ATOMIC_RELEASE);
}

/* Marks the changes as finished: seq even again if it was made odd, then
** the dirty flag cleared.  Also used by recovery. */
void store_mark_clean(struct mmkv_hdr *h)
{
    if (h->seq & 1) __atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&h->dirty, 0, __ATOMIC_RELEASE);
}

/* Ends the transaction: marks the mapping clean and releases the lock. */
static void end_txn(struct mmkv *s)
{
    s->hint_ok = 0;
    if (s->hdr->xtxn) s->hdr->xtxn = 0; /* a part of a multi-part commit: before dirty is cleared */
    if (s->hdr->dirty) store_mark_clean(s->hdr);
    s->nops = 0;
    s->in_txn = 0;
    store_unlock(s);
}

/* Gives up a transaction that met damage: the lock is released with the
** dirty flag still set, so the next holder runs recovery (which finishes a
** commit that passed its commit point, or undoes the rest).  Returns
** MMKV_CORRUPT with the message already set. */
static int abandon_txn(struct mmkv *s)
{
    s->hint_ok = 0;
    s->nops = 0;
    s->in_txn = 0;
    s->locked = 0;
    mmkv_os_unlock(s->os, s->hdr->lock);
    return MMKV_CORRUPT;
}

int part_commit(mmkv *s)
{
    if (!s->in_txn) return store_err(s, MMKV_INVALID, "no transaction is open");
    struct mmkv_hdr *h = s->hdr;
    if (s->nops) {
        int damaged = 0;
        __atomic_store_n(&h->committing, 1, __ATOMIC_RELAXED);
        /* The commit point, ordered before its effects; this fence also
        ** orders the transaction's slot stores before the frees below (a
        ** freed block's link overwrites its first key bytes, which a
        ** lock-free reader must not see while a slot still leads to it). */
        __atomic_thread_fence(__ATOMIC_RELEASE);
        for (size_t i = 0; i < s->nops; i++) {
            uint64_t off = (uint64_t)s->ops[i].unit * 8;
            int st = w_state(blk_word(s, off));
            if (s->ops[i].kind == OP_INS && st == BS_NEW) blk_set_state(s, off, BS_LIVE);
            if (s->ops[i].kind == OP_DEL && (st == BS_DEAD || st == BS_GONE) && heap_free(s, off))
                damaged = 1;
        }
        if (damaged) return abandon_txn(s); /* recovery will finish the commit */
        store_count_commit(h);
        __atomic_store_n(&h->committing, 0, __ATOMIC_RELEASE);
    }
    end_txn(s);
    return MMKV_OK;
}

/* Returns the number of key and value bytes a record carries. */
static uint64_t rec_kv_bytes(const struct rec *r)
{
    uint64_t n = r->key.n + r->val.n;
    return n + (r->val.type == MMKV_INT || r->val.type == MMKV_REAL ? 8 : 0);
}

/* Undoes one logged operation.  Returns MMKV_OK or MMKV_CORRUPT. */
static int undo_op(struct mmkv *s, const struct txop *op)
{
    struct rec r, found;
    uint64_t off = (uint64_t)op->unit * 8, slot;
    int rc = rec_decode(s, off, &r);
    if (rc) return rc;
    uint64_t h = key_hash(s->hdr->seed, &r.key);
    if (op->kind == OP_INS) {
        rc = index_find(s, &r.key, h, &slot, &found);
        if (rc == MMKV_OK && found.off != off) rc = store_corrupt(s, "undo of an insert");
        if (rc == MMKV_OK) rc = index_remove_at(s, slot);
        if (rc) return rc == MMKV_NOTFOUND ? store_corrupt(s, "undo of an insert") : rc;
        s->hdr->kv_bytes -= rec_kv_bytes(&r);
        return heap_free(s, off);
    }
    blk_set_state(s, off, r.state == BS_GONE ? BS_NEW : BS_LIVE);
    s->hdr->kv_bytes += rec_kv_bytes(&r);
    return index_insert(s, h, off);
}

int part_rollback_to(mmkv *s, size_t mark)
{
    if (!s->in_txn) return store_err(s, MMKV_INVALID, "no transaction is open");
    s->hint_ok = 0;
    while (s->nops > mark) {
        int rc = undo_op(s, &s->ops[s->nops - 1]);
        if (rc) return rc;
        s->nops--;
    }
    return MMKV_OK;
}

int part_rollback(mmkv *s)
{
    if (!s->in_txn) return store_err(s, MMKV_INVALID, "no transaction is open");
    int rc = part_rollback_to(s, 0);
    if (rc) return abandon_txn(s);
    end_txn(s);
    return MMKV_OK;
}

/* Makes room in the operation log for two more entries. */
static int reserve_ops(struct mmkv *s)
{
    if (s->nops + 2 <= s->capops) return MMKV_OK;
    size_t cap = s->capops ? s->capops * 2 : 64;
    struct txop *p = realloc(s->ops, cap * sizeof *p);
    if (!p) return store_err(s, MMKV_NOMEM, "out of memory");
    s->ops = p;
    s->capops = cap;
    return MMKV_OK;
}

static void log_op(struct mmkv *s, uint64_t off, int kind)
{
    s->ops[s->nops].unit = (uint32_t)(off / 8);
    s->ops[s->nops].kind = (uint8_t)kind;
    s->nops++;
}

/* Starts one change: inside a transaction nothing to do; outside one, opens
** a transaction of its own (*autocommit set).  Marks the mapping dirty. */
static int change_begin(struct mmkv *s, int *autocommit)
{
    *autocommit = 0;
    s->hint_ok = 0;
    if (s->readonly) return store_err(s, MMKV_READONLY, "mapping %s is read-only", s->where);
    int rc = reserve_ops(s);
    if (rc) return rc;
    if (!s->in_txn) {
        rc = part_begin(s);
        if (rc) return rc;
        *autocommit = 1;
    }
    if (!s->hdr->dirty) mark_dirty(s->hdr);
    return MMKV_OK;
}

/* Ends one change begun by change_begin: an own transaction is committed
** if rc is MMKV_OK, else rolled back.  Returns rc. */
static int change_end(struct mmkv *s, int autocommit, int rc)
{
    if (!autocommit) return rc;
    if (rc == MMKV_OK) return part_commit(s);
    char keep[sizeof s->err];
    memcpy(keep, s->err, sizeof keep);
    part_rollback(s);
    memcpy(s->err, keep, sizeof keep);
    return rc;
}

/* Checks a key and value against the limits. */
int store_check_sizes(struct mmkv *s, const mmkv_key *k, const mmkv_value *v)
{
    if (k->type != MMKV_TEXT && k->type != MMKV_BLOB)
        return store_err(s, MMKV_INVALID, "a key is TEXT or BLOB");
    if (k->n > MMKV_MAX_KEY)
        return store_err(s, MMKV_TOOBIG, "key of %u bytes is longer than the limit of %u bytes",
                         k->n, MMKV_MAX_KEY);
    if (v && (v->type < MMKV_NULL || v->type > MMKV_BLOB))
        return store_err(s, MMKV_INVALID, "unknown value type %d", v->type);
    if (v && (v->type == MMKV_TEXT || v->type == MMKV_BLOB) && v->n > MMKV_MAX_VALUE)
        return store_err(s, MMKV_TOOBIG, "value of %u bytes is larger than the limit of %u bytes",
                         v->n, MMKV_MAX_VALUE);
    return MMKV_OK;
}

/* Reports that the mapping is full. */
static int full_err(struct mmkv *s)
{
    if (s->xcommit)
        return store_err(s, MMKV_FULL,
                         "mapping %s is full: the key's part has no room (%llu bytes, %llu entries)",
                         s->where, (unsigned long long)s->cap, (unsigned long long)s->hdr->entries);
    return store_err(s, MMKV_FULL, "mapping %s is full (capacity %llu bytes, %llu entries)",
                     s->where, (unsigned long long)s->cap, (unsigned long long)s->hdr->entries);
}

/* The body of mmkv_put, under the lock with the mapping dirty. */
static int put_locked(struct mmkv *s, const mmkv_key *k, const mmkv_value *v, uint64_t h,
                      int flags)
{
    struct rec old;
    uint64_t slot, off;
    int rc = index_find(s, k, h, &slot, &old);
    if (rc == MMKV_OK && !(flags & MMKV_PUT_REPLACE))
        return store_err(s, MMKV_EXISTS, "key exists already");
    if (rc != MMKV_OK && rc != MMKV_NOTFOUND) return rc;
    int found = rc == MMKV_OK;
    if (!found && (rc = index_reserve(s, s->hdr->entries + 1)) != MMKV_OK)
        return rc == MMKV_FULL ? full_err(s) : rc;
    rc = rec_write(s, k, v, &off);
    if (rc) return rc == MMKV_FULL ? full_err(s) : rc;
    struct rec nr;
    rec_decode(s, off, &nr);
    s->hdr->kv_bytes += rec_kv_bytes(&nr);
    if (found) {
        blk_set_state(s, old.off, old.state == BS_NEW ? BS_GONE : BS_DEAD);
        s->hdr->kv_bytes -= rec_kv_bytes(&old);
        log_op(s, old.off, OP_DEL);
        index_set_at(s, slot, h, off);
        log_op(s, off, OP_INS);
        return MMKV_OK;
    }
    log_op(s, off, OP_INS);
    return index_insert(s, h, off);
}

int part_put(mmkv *s, const mmkv_key *k, const mmkv_value *v, int flags)
{
    int autocommit, rc = store_check_sizes(s, k, v);
    if (rc) return rc;
    uint64_t h = key_hash(s->hdr->seed, k);
    if (!s->in_txn && !s->readonly) store_warm(s, h, rec_size(k, v));
    rc = change_begin(s, &autocommit);
    if (rc) return rc;
    size_t mark = s->nops;
    rc = put_locked(s, k, v, h, flags);
    if (rc && !autocommit && rc != MMKV_EXISTS && rc != MMKV_FULL) {
        int keep = rc;
        part_rollback_to(s, mark);
        rc = keep;
    }
    return change_end(s, autocommit, rc);
}

/* Finds k (hash h, or 0 if not computed yet) for a delete: where the
** transaction's last lookup found it, if that was k and nothing changed
** since (hint, taken before change_begin cleared it; the lock was held all
** along, so the record decoded then is the record now), else by a probe.
** Returns MMKV_OK, MMKV_NOTFOUND or MMKV_CORRUPT. */
static int find_for_delete(struct mmkv *s, const mmkv_key *k, uint64_t h, int hint,
                           uint64_t hslot, uint64_t *slot, struct rec *r)
{
    uint64_t *t = NULL, n = 0;
    if (hint && index_table(s, &t, &n) == MMKV_OK && hslot < n &&
        (uint32_t)t[hslot] == (uint32_t)(s->hint_rec.off / 8) && rec_has_key(&s->hint_rec, k)) {
        *slot = hslot;
        *r = s->hint_rec;
        return MMKV_OK;
    }
    return index_find(s, k, h ? h : key_hash(s->hdr->seed, k), slot, r);
}

int part_del(mmkv *s, const mmkv_key *k)
{
    int autocommit, rc = store_check_sizes(s, k, NULL);
    if (rc) return rc;
    int hint = s->hint_ok && s->locked;
    uint64_t hslot = s->hint_slot, h = 0;
    if (!s->in_txn && !s->readonly) store_warm(s, h = key_hash(s->hdr->seed, k), 0);
    rc = change_begin(s, &autocommit);
    if (rc) return rc;
    struct rec old;
    uint64_t slot;
    rc = find_for_delete(s, k, h, hint, hslot, &slot, &old);
    if (rc == MMKV_OK) rc = index_remove_at(s, slot);
    if (rc == MMKV_OK) {
        blk_set_state(s, old.off, old.state == BS_NEW ? BS_GONE : BS_DEAD);
        s->hdr->kv_bytes -= rec_kv_bytes(&old);
        log_op(s, old.off, OP_DEL);
    }
    if (rc == MMKV_NOTFOUND) store_err(s, MMKV_NOTFOUND, "no such key");
    return change_end(s, autocommit, rc);
}
