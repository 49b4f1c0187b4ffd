/*
** parts.c -- the public API over a mapping in one part or split into parts.
**
** A mapping in one part (format 2) is one store: every call goes straight
** to the part_* operation of txn.c, read.c and store.c.
**
** A mapping split into S parts (format 3, created with parts = S) is S
** equal regions, each a complete store with its own header, lock, free
** lists, index and heap.  A key lives in one part, picked by hash bits its
** part's index does not use (the low 32 of the hash with part 0's seed), so
** writers of different keys mostly take different locks and touch
** different lines.
**
**   - A lookup, or a change outside a transaction, takes its key's part.
**   - A transaction (mmkv_begin) takes every part, in ascending order, so
**     no two transactions can wait for each other; one deadline, the
**     handle's timeout from the first wait, bounds the waits for them all.  Its changes are logged
**     per part; a mark is the length of the whole's log of (part, that
**     part's log length), and rolling back to it undoes part by part.
**   - A scan or mmkv_stat takes every part in ascending order first, so it
**     sees one moment.
**   - Commit of a transaction that changed two parts or more is atomic
**     across them: each changed part's header gets the commit's number
**     (xtxn), then one store of that number into part 0's xcommit is the
**     commit point, then each part commits as a store in one part does.  A
**     part whose writer died is rolled forward if its xtxn equals part 0's
**     xcommit (recover.c), and back otherwise.  xcommit changes only while
**     every part is held, so a process recovering one part reads it still.
**   - A deferred transaction (mmkv_begin_deferred) holds one part while it
**     reads and changes keys of it, and takes every part at its first other
**     call (escalate).  If it then has to undo its changes, release its
**     part and take every part in order, it does them again after the
**     wait, in order: each insert and delete must succeed again, and
**     before each change the keys read before it (by a get, or a put or
**     delete that changed nothing) must be as they were read: absent,
**     present, or with the same value (mmkv_rollback_to, which undoes what
**     reads may have seen, makes that "no commit at all in the part").  If it does not get every part in
**     time, it does its changes again in their part alone and that call
**     fails with MMKV_BUSY, changing nothing.  If its changes cannot stand
**     (a key read or taken meanwhile, the part full, the part kept past
**     the timeout by another writer), it fails as
**     a whole: its parts are rolled back, and every later call but
**     mmkv_rollback returns the error, with a message that says so, so
**     nothing it reported done is lost unseen.
*/
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>

void (*store_commit_hook)(int step);

static void hook(int step)
{
    if (store_commit_hook) store_commit_hook(step);
}

/* Returns the number of the part that holds key k. */
static inline uint32_t route(const struct mmkv *s, const mmkv_key *k)
{
    uint32_t h = (uint32_t)key_hash(s->route_seed, k);
    return (uint32_t)(((uint64_t)h * (uint32_t)s->nparts) >> 32);
}

/* Copies a part's last message to the whole; returns rc. */
static int from_part(struct mmkv *s, struct mmkv *p, int rc)
{
    memcpy(s->err, p->err, sizeof s->err);
    return rc;
}

/* --- opening --- */

/* Makes the handle of part i, whose region is `region` bytes. */
static struct mmkv *new_part(struct mmkv *s, uint32_t i, uint64_t region)
{
    struct mmkv *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->os = s->os;
    p->base = s->base + (uint64_t)i * region;
    p->cap = region;
    p->hdr = (struct mmkv_hdr *)(void *)p->base;
    p->readonly = s->readonly;
    p->timeout_ms = s->timeout_ms;
    p->nparts = 1;
    p->xcommit = &s->hdr->xcommit;
    p->is_file = s->is_file;
    snprintf(p->where, sizeof p->where, "%.4096s (part %u)", s->where, i + 1);
    return p;
}

/* Makes the handles of n parts of region bytes each. */
static int make_parts(struct mmkv *s, uint32_t n, uint64_t region)
{
    s->part = calloc(n, sizeof *s->part);
    if (!s->part) return store_err(s, MMKV_NOMEM, "out of memory");
    s->nparts = (int)n;
    for (uint32_t i = 0; i < n; i++)
        if (!(s->part[i] = new_part(s, i, region))) return store_err(s, MMKV_NOMEM, "out of memory");
    return MMKV_OK;
}

void parts_free(struct mmkv *s)
{
    if (!s->part) return;
    for (int i = 0; i < s->nparts; i++) {
        if (s->part[i]) free(s->part[i]->ops);
        free(s->part[i]);
    }
    free(s->part);
    free(s->xops);
    free(s->reads);
    free(s->readkeys);
    s->part = NULL;
    s->nparts = 1;
}

int parts_create(struct mmkv *s, unsigned parts)
{
    uint64_t region = (s->cap / parts) & ~(uint64_t)4095;
    /* The options were checked against the size asked for; a mapping set up
    ** again where its creator died may keep the size it had (a Windows
    ** section cannot be resized). */
    if (region < MMKV_MIN_SIZE)
        return store_err(s, MMKV_INVALID,
                         "mapping %s has %llu bytes, less than the minimum of 64K a part for %u "
                         "parts",
                         s->where, (unsigned long long)s->cap, parts);
    int rc = make_parts(s, parts, region);
    if (rc == MMKV_OK && mmkv_os_set_parts(s->os, parts, region))
        rc = store_err(s, MMKV_IOERR, "%s", mmkv_os_errmsg(s->os));
    /* Part 0 last: its magic, written last, makes the mapping ours. */
    for (uint32_t i = parts; rc == MMKV_OK && i-- > 0;) {
        rc = store_init(s->part[i], parts, i, region);
        if (rc) from_part(s, s->part[i], rc);
    }
    s->route_seed = s->hdr->seed;
    return rc;
}

int parts_attach(struct mmkv *s, int sole)
{
    const struct mmkv_hdr *h = s->hdr;
    uint32_t n = h->parts;
    uint64_t region = h->region;
    if (h->hdr_size != HDR_SIZE || h->part_no != 0 || n < 2 || n > MAX_PARTS ||
        region < MMKV_MIN_SIZE || region % 4096 || region > s->cap / n || h->capacity != region)
        return store_err(s, MMKV_CORRUPT,
                         "mapping %s is corrupt: its header says %u parts of %llu bytes, in "
                         "%llu bytes",
                         s->where, n, (unsigned long long)region, (unsigned long long)s->cap);
    int rc = make_parts(s, n, region);
    if (rc == MMKV_OK && mmkv_os_set_parts(s->os, n, region))
        rc = store_err(s, MMKV_IOERR, "%s", mmkv_os_errmsg(s->os));
    for (uint32_t i = 0; rc == MMKV_OK && i < n; i++) {
        struct mmkv *p = s->part[i];
        rc = store_check_header(p);
        if (rc == MMKV_FORMAT) /* part 0 says the mapping is ours */
            return store_err(s, MMKV_CORRUPT,
                             "mapping %s is corrupt: part %u has no valid header", s->where, i + 1);
        if (rc) return from_part(s, p, rc);
        if (p->hdr->parts != n || p->hdr->part_no != i || p->hdr->region != region)
            return store_err(s, MMKV_CORRUPT, "mapping %s is corrupt: bad header of part %u",
                             s->where, i + 1);
    }
    /* Only once every part is known good: a refused mapping stays as it was. */
    for (uint32_t i = 0; rc == MMKV_OK && sole && i < n; i++)
        if (mmkv_os_lock_init(s->os, s->part[i]->hdr->lock))
            return store_err(s, MMKV_IOERR, "%s", mmkv_os_errmsg(s->os));
    s->route_seed = h->seed;
    return rc;
}

/* --- transactions --- */

int mmkv_in_transaction(mmkv *s)
{
    return s->in_txn;
}

size_t mmkv_mark(mmkv *s)
{
    return s->nparts > 1 ? s->nx : s->nops;
}

/* Milliseconds left until deadline (0 if passed). */
static int ms_left(uint64_t deadline)
{
    uint64_t now = mmkv_os_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* Takes part p's lock, in a transaction of p if txn, waiting at most ms.
** A timeout's message gives the whole's timeout, which the wait is part of. */
static int take_part(struct mmkv *s, struct mmkv *p, int txn, int ms)
{
    int wait = p->timeout_ms;
    p->timeout_ms = ms;
    int rc = txn ? part_begin(p) : store_lock(p);
    p->timeout_ms = wait;
    if (rc == MMKV_BUSY && strncmp(p->err, "timed out", 9) == 0)
        return store_err(s, rc, "timed out after %d ms waiting for the lock of mapping %s",
                         s->timeout_ms, p->where);
    return rc ? from_part(s, p, rc) : MMKV_OK;
}

/* Takes parts [from, to) in ascending order, each in a transaction if txn,
** by the deadline.  On failure gives back those it took and returns the
** error. */
static int take_range(struct mmkv *s, int from, int to, int txn, uint64_t deadline)
{
    for (int i = from; i < to; i++) {
        int rc = take_part(s, s->part[i], txn, ms_left(deadline));
        if (rc) {
            while (i-- > from)
                if (txn)
                    part_rollback(s->part[i]);
                else
                    store_unlock(s->part[i]);
            return rc;
        }
    }
    return MMKV_OK;
}

/* Takes every part, each in a transaction, within the handle's timeout. */
static int take_all(struct mmkv *s)
{
    return take_range(s, 0, s->nparts, 1, mmkv_os_now_ms() + (uint64_t)s->timeout_ms);
}

int mmkv_begin(mmkv *s)
{
    if (s->nparts == 1) return part_begin(s);
    if (s->in_txn) return store_err(s, MMKV_INVALID, "a transaction is already open");
    if (s->readonly) return store_err(s, MMKV_READONLY, "mapping %s is read-only", s->where);
    int rc = take_all(s);
    if (rc) return rc;
    s->in_txn = 1;
    s->nx = 0;
    s->err[0] = 0;
    return MMKV_OK;
}

/* Forgets what a deferred transaction saw of its part. */
static void forget_reads(struct mmkv *s)
{
    s->nreads = 0;
    s->nreadkeys = 0;
    s->strict = 0;
}

/* Appends n bytes at p to the whole's readkeys; returns their offset, or
** SIZE_MAX out of memory. */
static size_t keep_bytes(struct mmkv *s, const void *p, size_t n)
{
    if (s->capreadkeys - s->nreadkeys < n) {
        size_t cap = s->capreadkeys * 2 > s->nreadkeys + n ? s->capreadkeys * 2
                                                           : s->nreadkeys + n + 256;
        unsigned char *b = cap > s->nreadkeys ? realloc(s->readkeys, cap) : NULL;
        if (!b) return SIZE_MAX;
        s->readkeys = b;
        s->capreadkeys = cap;
    }
    size_t at = s->nreadkeys;
    if (n) memcpy(s->readkeys + at, p, n);
    s->nreadkeys += n;
    return at;
}

/* Bytes of keys and values a deferred transaction keeps to check its
** reads; past them it checks the whole part instead. */
#define READS_MAX_BYTES ((size_t)1 << 20)

/* Switches a deferred transaction to checking its whole part (strict):
** any commit of another writer there since it was taken fails it. */
static void check_whole_part(struct mmkv *s)
{
    forget_reads(s);
    s->strict = 1;
}

/* Notes what a call of the deferred transaction saw of key k in the part
** it holds (kind READ_*; v, the value it found, for READ_VALUE), to check
** it after a wait.  A read of the key its last read was of, with no change
** between, adds nothing.  Past READS_MAX_BYTES, or out of memory, the
** transaction checks the whole part instead. */
static void note_read(struct mmkv *s, const mmkv_key *k, int kind, const mmkv_value *v)
{
    if (s->strict || k->n > MMKV_MAX_KEY) return; /* no key that long is there */
    if (s->nreads) {
        const struct readrec *last = &s->reads[s->nreads - 1];
        if (last->pos == s->nx && last->keyn == k->n && last->keytype == k->type &&
            (k->n == 0 || memcmp(s->readkeys + last->keyat, k->p, k->n) == 0) &&
            (last->kind == kind || (last->kind == READ_VALUE && kind == READ_PRESENT)))
            return; /* the part held, with no change between: the same as then */
    }
    int bytes = kind == READ_VALUE && (v->type == MMKV_TEXT || v->type == MMKV_BLOB);
    if (s->nreadkeys + (s->nreads + 1) * sizeof(struct readrec) + k->n + (bytes ? v->n : 0) >
        READS_MAX_BYTES) {
        check_whole_part(s);
        return;
    }
    if (s->nreads == s->capreads) {
        size_t cap = s->capreads ? s->capreads * 2 : 16;
        struct readrec *r = realloc(s->reads, cap * sizeof *r);
        if (!r) {
            check_whole_part(s);
            return;
        }
        s->reads = r;
        s->capreads = cap;
    }
    struct readrec *r = &s->reads[s->nreads];
    r->pos = s->nx;
    r->keyn = k->n;
    r->keytype = (uint8_t)k->type;
    r->kind = (uint8_t)kind;
    r->val = kind == READ_VALUE ? *v : (mmkv_value){MMKV_NULL, 0, 0, NULL, 0};
    r->keyat = keep_bytes(s, k->p, k->n);
    r->valat = bytes ? keep_bytes(s, v->p, v->n) : 0;
    if (r->keyat == SIZE_MAX || r->valat == SIZE_MAX) {
        check_whole_part(s);
        return;
    }
    s->nreads++;
}

/* Checks, in part p (number h, taken again after a wait), that what read
** r saw is still so.  Returns MMKV_OK, MMKV_BUSY if another writer changed
** it, or the error of the lookup. */
static int check_read(struct mmkv *s, struct mmkv *p, int h, const struct readrec *r)
{
    mmkv_key k = {r->keytype, r->keyn ? (const void *)(s->readkeys + r->keyat) : "", r->keyn};
    const mmkv_value *was = &r->val;
    struct rec found;
    uint64_t slot;
    int rc = index_find(p, &k, key_hash(p->hdr->seed, &k), &slot, &found);
    if (rc != MMKV_OK && rc != MMKV_NOTFOUND) return from_part(s, p, rc);
    const mmkv_value *now = &found.val;
    int same = r->kind == READ_ABSENT ? rc == MMKV_NOTFOUND : rc == MMKV_OK;
    if (same && r->kind == READ_VALUE) {
        same = now->type == was->type;
        if (same && was->type == MMKV_INT) same = now->i == was->i;
        if (same && was->type == MMKV_REAL) same = memcmp(&now->r, &was->r, sizeof was->r) == 0;
        if (same && (was->type == MMKV_TEXT || was->type == MMKV_BLOB))
            same = now->n == was->n &&
                   (was->n == 0 || memcmp(now->p, s->readkeys + r->valat, was->n) == 0);
    }
    if (same) return MMKV_OK;
    return store_err(s, MMKV_BUSY,
                     "another writer changed a key of part %d of mapping %s that the "
                     "transaction had read, while the transaction waited for its other parts",
                     h + 1, s->where);
}

int mmkv_begin_deferred(mmkv *s)
{
    if (s->nparts == 1) return part_begin(s);
    if (s->in_txn) return store_err(s, MMKV_INVALID, "a transaction is already open");
    if (s->readonly) return store_err(s, MMKV_READONLY, "mapping %s is read-only", s->where);
    s->in_txn = 1;
    s->lazy = 1;
    s->held = -1;
    forget_reads(s);
    s->nx = 0;
    s->err[0] = 0;
    return MMKV_OK;
}

/* A change of a deferred transaction, kept to be done again: a put of
** k = v, or a delete of k (how: XOP_*). */
struct redo {
    mmkv_key k;
    mmkv_value v;
    uint32_t how;
};

/* Returns the offset of the record that change j of the deferred
** transaction laid in part h (a put's log's insert), or that it deleted (a
** delete's), or 0. */
static uint64_t change_record(const struct mmkv *s, const struct mmkv *h, size_t j)
{
    size_t end = j + 1 < s->nx ? s->xops[j + 1].before : h->nops;
    int kind = s->xops[j].how == XOP_DEL ? OP_DEL : OP_INS;
    uint64_t off = 0;
    for (size_t o = s->xops[j].before; o < end && o < h->nops; o++)
        if (h->ops[o].kind == kind) off = (uint64_t)h->ops[o].unit * 8;
    return off;
}

/* Copies the changes of the deferred transaction (all in part h) into one
** allocation, *out: an array of s->nx redo entries followed by their
** bytes.  The records are read twice, to size and to copy; the mapping is
** not trusted, so the second reading must fit the first one's room. */
static int save_changes(struct mmkv *s, struct mmkv *h, struct redo **out)
{
    size_t n = s->nx, room = 0, used = 0;
    struct redo *d = NULL;
    *out = NULL;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t j = 0; j < n; j++) {
            struct rec r;
            uint64_t off = change_record(s, h, j);
            int want = s->xops[j].how == XOP_DEL ? BS_DEAD : BS_NEW;
            if (!off || rec_decode(h, off, &r) != MMKV_OK ||
                (r.state != want && r.state != BS_GONE) || s->part[route(s, &r.key)] != h ||
                (pass == 1 && (size_t)r.key.n + r.val.n > room - used)) {
                free(d);
                return store_corrupt(s, "record of a deferred change");
            }
            if (pass == 0) {
                room += (size_t)r.key.n + r.val.n;
                continue;
            }
            char *at = (char *)(d + n) + used;
            d[j].k = r.key;
            d[j].v = r.val;
            d[j].how = s->xops[j].how;
            d[j].k.p = at;
            if (r.key.n) memcpy(at, r.key.p, r.key.n);
            used += r.key.n;
            if (r.val.type == MMKV_TEXT || r.val.type == MMKV_BLOB) {
                d[j].v.p = at + r.key.n;
                if (r.val.n) memcpy(at + r.key.n, r.val.p, r.val.n);
                used += r.val.n;
            }
        }
        if (pass == 0 && !(d = malloc(n * sizeof *d + room + 1)))
            return store_err(s, MMKV_NOMEM, "out of memory");
    }
    *out = d;
    return MMKV_OK;
}

/* Gives back the parts [from, to), which have no changes. */
static void give_back(struct mmkv *s, int from, int to)
{
    for (int i = from; i < to; i++) part_rollback(s->part[i]);
}

int mmkv_put(mmkv *s, const mmkv_key *k, const mmkv_value *v, int flags);

/* Fails a deferred transaction that undid its puts and could not do them
** again (rc, with the cause in s->err): every part it holds is rolled back,
** and from now on every call but mmkv_rollback returns rc. */
static int fail_txn(struct mmkv *s, int rc)
{
    char cause[sizeof s->failmsg - 80];
    snprintf(cause, sizeof cause, "%.500s", s->err);
    for (int i = 0; i < s->nparts; i++)
        if (s->part[i]->in_txn) part_rollback(s->part[i]);
    s->lazy = 2;
    s->held = -1;
    forget_reads(s);
    s->nx = 0;
    s->failed = rc;
    snprintf(s->failmsg, sizeof s->failmsg, "the transaction was rolled back: %s", cause);
    return store_err(s, rc, "%s", s->failmsg);
}

/* How long a deferred transaction tries a part below the one it holds
** before it undoes its changes to take the parts in order (ms). */
#define TRY_BELOW_MS 1

/* Takes part i for a deferred transaction that holds none, within the
** handle's timeout, and notes the part's commit count. */
static int take_held(struct mmkv *s, int i)
{
    struct mmkv *p = s->part[i];
    int rc = part_begin(p);
    if (rc) return from_part(s, p, rc);
    s->held = i;
    s->held_commits = p->hdr->commits;
    return MMKV_OK;
}

/* Turns a deferred transaction into one that holds every part, before a
** call that needs more than the part it holds.  Parts above the held one
** may be waited for (ascending order cannot deadlock); one below is only
** tried for TRY_BELOW_MS.  If one below stays busy, the held part's
** changes are saved and undone, the part released, every part taken in
** order and the changes done again.  That gives the outcome they had if
** nothing they depend on changed meanwhile: puts that replace depend on
** nothing; inserts and deletes must succeed again; and before each change,
** the keys read before it must be as they were read (check_read), or the
** transaction fails whole (it can no longer be what the caller saw).  One
** deadline, the handle's timeout, bounds the whole. */
static int escalate(struct mmkv *s)
{
    if (s->lazy == 2) return store_err(s, s->failed, "%s", s->failmsg);
    uint64_t deadline = mmkv_os_now_ms() + (uint64_t)s->timeout_ms;
    int h = s->held, rc = MMKV_OK, i;
    if (h < 0) {
        rc = take_range(s, 0, s->nparts, 1, deadline);
        if (rc == MMKV_OK) s->lazy = 0;
        return rc;
    }
    for (i = 0; i < h && rc == MMKV_OK; i++)
        rc = take_part(s, s->part[i], 1, TRY_BELOW_MS < s->timeout_ms ? TRY_BELOW_MS : s->timeout_ms);
    if (rc == MMKV_OK) {
        rc = take_range(s, h + 1, s->nparts, 1, deadline);
        if (rc == MMKV_OK) {
            s->lazy = 0;
            forget_reads(s);
            return MMKV_OK;
        }
        give_back(s, 0, h);
        return rc; /* still deferred, holding h and its changes */
    }
    give_back(s, 0, i - 1);
    if (rc != MMKV_BUSY) return rc;
    struct mmkv *ph = s->part[h];
    struct redo *d;
    size_t n = s->nx, nreads = s->nreads;
    int checks = s->nreads || s->strict;
    uint64_t seen = s->held_commits;
    if ((rc = save_changes(s, ph, &d)) != MMKV_OK) return rc; /* still deferred, holding h */
    rc = part_rollback(ph);
    if (rc) from_part(s, ph, rc);
    s->nx = 0;
    s->held = -1;
    int busy = 0;
    if (rc == MMKV_OK) rc = take_range(s, 0, s->nparts, 1, deadline);
    if (rc == MMKV_OK) {
        s->lazy = 0;
    } else if (rc == MMKV_BUSY) {
        /* Every part was not had in time: do the changes again in their
        ** part alone (waiting for it, within the timeout again, holds
        ** nothing) and fail this call only.  If the part itself is not had
        ** in time (another writer took it meanwhile and kept it), the
        ** transaction fails whole, and its message says so. */
        busy = 1;
        memcpy(s->failmsg, s->err, sizeof s->failmsg - 1);
        s->failmsg[sizeof s->failmsg - 1] = 0;
        rc = checks ? take_held(s, h) : MMKV_OK; /* reads are checked under their part */
    }
    if (rc == MMKV_OK && s->strict && ph->hdr->commits != seen)
        rc = store_err(s, MMKV_BUSY,
                       "another writer changed part %d of mapping %s, which the transaction had "
                       "read, while the transaction waited for its other parts",
                       h + 1, s->where);
    /* The changes again, in order, each read checked where it was made. */
    size_t r = 0;
    for (size_t j = 0; j <= n && rc == MMKV_OK; j++) {
        while (rc == MMKV_OK && !s->strict && r < nreads && s->reads[r].pos <= j)
            rc = check_read(s, ph, h, &s->reads[r++]);
        if (j == n || rc != MMKV_OK) break;
        rc = d[j].how == XOP_DEL      ? mmkv_del(s, &d[j].k)
             : d[j].how == XOP_INSERT ? mmkv_put(s, &d[j].k, &d[j].v, MMKV_PUT_INSERT)
                                      : mmkv_put(s, &d[j].k, &d[j].v, MMKV_PUT_REPLACE);
        if (rc == MMKV_NOTFOUND || rc == MMKV_EXISTS)
            rc = store_err(s, MMKV_BUSY,
                           "another writer %s a key of part %d of mapping %s that the transaction "
                           "had %s, while the transaction waited for its other parts",
                           rc == MMKV_EXISTS ? "added" : "deleted", h + 1, s->where,
                           rc == MMKV_EXISTS ? "added" : "deleted");
    }
    free(d);
    if (rc) return fail_txn(s, rc);
    if (!busy) forget_reads(s); /* it holds every part: nothing to check any more */
    return busy ? store_err(s, MMKV_BUSY, "%s", s->failmsg) : MMKV_OK;
}

/* Before a call of a deferred transaction on a key of part i: takes the
** part if the transaction holds none yet, or every part if it holds
** another. */
static int defer_to(struct mmkv *s, uint32_t i)
{
    if (s->lazy == 2) return store_err(s, s->failed, "%s", s->failmsg);
    if (s->held < 0) return take_held(s, (int)i);
    return s->held != (int)i ? escalate(s) : MMKV_OK;
}

/* Ends the whole's transaction after its parts have ended theirs. */
static void end_whole(struct mmkv *s)
{
    s->in_txn = 0;
    s->nx = 0;
    s->lazy = 0;
    s->held = -1;
    forget_reads(s);
}

int mmkv_commit(mmkv *s)
{
    if (s->nparts == 1) return part_commit(s);
    if (!s->in_txn) return store_err(s, MMKV_INVALID, "no transaction is open");
    int changed = 0, rc = MMKV_OK;
    if (s->lazy == 2) { /* failed: rolled back already */
        rc = store_err(s, s->failed, "%s", s->failmsg);
        end_whole(s);
        return rc;
    }
    if (s->lazy) { /* a deferred transaction holds one part or none */
        if (s->held >= 0 && (rc = part_commit(s->part[s->held])) != MMKV_OK)
            from_part(s, s->part[s->held], rc);
        end_whole(s);
        return rc;
    }
    for (int i = 0; i < s->nparts; i++) changed += s->part[i]->nops != 0;
    if (changed > 1) {
        uint64_t x = s->hdr->xcommit + 1;
        for (int i = 0; i < s->nparts; i++)
            if (s->part[i]->nops) __atomic_store_n(&s->part[i]->hdr->xtxn, x, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE); /* every xtxn before the commit point */
        hook(XSTEP_MARKED);
        __atomic_store_n(&s->hdr->xcommit, x, __ATOMIC_RELEASE); /* the commit point */
        hook(XSTEP_POINT);
    }
    for (int i = 0; i < s->nparts; i++) {
        int r = part_commit(s->part[i]);
        if (r && !rc) rc = from_part(s, s->part[i], r);
        if (changed > 1) hook(XSTEP_PART + i);
    }
    end_whole(s);
    return rc;
}

int mmkv_rollback(mmkv *s)
{
    if (s->nparts == 1) return part_rollback(s);
    if (!s->in_txn) return store_err(s, MMKV_INVALID, "no transaction is open");
    int rc = MMKV_OK;
    for (int i = 0; i < s->nparts; i++) {
        if (!s->part[i]->in_txn) continue; /* a deferred transaction's */
        int r = part_rollback(s->part[i]);
        if (r && !rc) rc = from_part(s, s->part[i], r);
    }
    end_whole(s);
    return rc;
}

int mmkv_rollback_to(mmkv *s, size_t mark)
{
    if (s->nparts == 1) return part_rollback_to(s, mark);
    if (!s->in_txn) return store_err(s, MMKV_INVALID, "no transaction is open");
    if (s->lazy == 2) return store_err(s, s->failed, "%s", s->failmsg);
    if (s->lazy == 1 && (s->nx > mark || (s->nreads && s->reads[s->nreads - 1].pos > mark))) {
        /* What the undone changes saw, and what was seen after them, can
        ** no longer be checked key by key. */
        check_whole_part(s);
    }
    while (s->nx > mark) {
        const struct xop *x = &s->xops[s->nx - 1];
        struct mmkv *p = s->part[x->part];
        int rc = part_rollback_to(p, x->before);
        if (rc) return from_part(s, p, rc);
        s->nx--;
    }
    return MMKV_OK;
}

/* Makes room in the whole's log for one more change. */
static int reserve_xops(struct mmkv *s)
{
    if (s->nx < s->capx) return MMKV_OK;
    size_t cap = s->capx ? s->capx * 2 : 64;
    struct xop *x = realloc(s->xops, cap * sizeof *x);
    if (!x) return store_err(s, MMKV_NOMEM, "out of memory");
    s->xops = x;
    s->capx = cap;
    return MMKV_OK;
}

/* Ends a change of key k made in part i whose log had `before` entries,
** by a call of kind how (XOP_*): in a transaction, the whole's log records
** it if the part logged anything.  A deferred transaction's call that
** changed nothing saw the key there (an insert) or not (a delete). */
static int change_done(struct mmkv *s, const mmkv_key *k, uint32_t i, uint32_t how, size_t before,
                       int rc)
{
    struct mmkv *p = s->part[i];
    if (s->in_txn && p->nops != before) {
        s->xops[s->nx].part = i;
        s->xops[s->nx].how = how;
        s->xops[s->nx].before = before;
        s->nx++;
    } else if (s->lazy == 1 && s->held == (int)i && (rc == MMKV_EXISTS || rc == MMKV_NOTFOUND)) {
        note_read(s, k, rc == MMKV_EXISTS ? READ_PRESENT : READ_ABSENT, NULL);
    }
    return rc ? from_part(s, p, rc) : rc;
}

/* Before a call that needs every part: a deferred transaction takes them. */
static inline int need_all(struct mmkv *s)
{
    return s->lazy ? escalate(s) : MMKV_OK;
}

int mmkv_put(mmkv *s, const mmkv_key *k, const mmkv_value *v, int flags)
{
    if (s->nparts == 1) return part_put(s, k, v, flags);
    if (s->lazy == 2) return store_err(s, s->failed, "%s", s->failmsg);
    int rc = s->in_txn ? reserve_xops(s) : MMKV_OK;
    if (rc) return rc;
    uint32_t i = route(s, k);
    if (s->lazy) {
        if ((rc = defer_to(s, i)) != MMKV_OK) return rc;
        if ((rc = reserve_xops(s)) != MMKV_OK) return rc; /* room again after a redo */
    }
    size_t before = s->part[i]->nops;
    uint32_t how = flags & MMKV_PUT_REPLACE ? XOP_REPLACE : XOP_INSERT;
    return change_done(s, k, i, how, before, part_put(s->part[i], k, v, flags));
}

int mmkv_del(mmkv *s, const mmkv_key *k)
{
    if (s->nparts == 1) return part_del(s, k);
    uint32_t i = route(s, k);
    int rc = s->lazy ? defer_to(s, i) : MMKV_OK;
    if (rc == MMKV_OK && s->in_txn) rc = reserve_xops(s);
    if (rc) return rc;
    size_t before = s->part[i]->nops;
    return change_done(s, k, i, XOP_DEL, before, part_del(s->part[i], k));
}

/* --- reads --- */

int mmkv_get(mmkv *s, const mmkv_key *k, mmkv_value *v, void **buf, size_t *bufsz)
{
    return mmkv_get_at(s, k, v, buf, bufsz, 0);
}

int mmkv_get_at(mmkv *s, const mmkv_key *k, mmkv_value *v, void **buf, size_t *bufsz, size_t at)
{
    if (s->nparts == 1) return part_get_at(s, k, v, buf, bufsz, at);
    uint32_t i = route(s, k);
    int rc = s->lazy ? defer_to(s, i) : MMKV_OK;
    if (rc) return rc;
    struct mmkv *p = s->part[i];
    rc = part_get_at(p, k, v, buf, bufsz, at);
    /* A deferred transaction's read of its part; what it finds of its own
    ** changes (a NEW record) comes back with them if they are done again. */
    if (s->lazy == 1 && s->held == (int)i && (rc == MMKV_OK || rc == MMKV_NOTFOUND) &&
        !(rc == MMKV_OK && p->hint_ok && p->hint_rec.state == BS_NEW))
        note_read(s, k, rc == MMKV_NOTFOUND ? READ_ABSENT : v ? READ_VALUE : READ_PRESENT, v);
    return rc && rc != MMKV_NOTFOUND ? from_part(s, p, rc) : rc;
}

/* Takes every part's lock (those a transaction holds are taken already),
** in ascending order, within the handle's timeout. */
static int lock_all(struct mmkv *s)
{
    return take_range(s, 0, s->nparts, 0, mmkv_os_now_ms() + (uint64_t)s->timeout_ms);
}

/* Releases every part that no transaction holds. */
static void unlock_all(struct mmkv *s)
{
    for (int i = 0; i < s->nparts; i++) store_unlock(s->part[i]);
}

int mmkv_scan(mmkv *s, mmkv_scan_fn fn, void *ctx)
{
    if (s->nparts == 1) return part_scan(s, fn, ctx);
    int rc = need_all(s);
    if (rc == MMKV_OK) rc = lock_all(s);
    /* Each part's scan releases its part when it ends; the parts after it
    ** are still held, so all of them show the moment lock_all took them. */
    for (int i = 0; rc == MMKV_OK && i < s->nparts; i++) {
        s->part[i]->err[0] = 0; /* a callback's error leaves none */
        rc = part_scan(s->part[i], fn, ctx);
        if (rc && s->part[i]->err[0]) from_part(s, s->part[i], rc);
    }
    if (rc) unlock_all(s);
    return rc;
}

int mmkv_stat(mmkv *s, mmkv_stats *st)
{
    if (s->nparts == 1) return part_stat(s, st);
    int rc = need_all(s);
    if (rc == MMKV_OK) rc = lock_all(s);
    if (rc) return rc;
    memset(st, 0, sizeof *st);
    for (int i = 0; i < s->nparts; i++) {
        mmkv_stats one;
        int r = part_stat(s->part[i], &one);
        if (r && !rc) rc = from_part(s, s->part[i], r);
        st->entries += one.entries;
        st->used += one.used;
        st->kv_bytes += one.kv_bytes;
        st->slots += one.slots;
    }
    st->capacity = s->cap;
    st->format = MMKV_FORMAT_PARTS;
    st->parts = (uint32_t)s->nparts;
    unlock_all(s);
    return rc;
}

uint64_t mmkv_estimate(mmkv *s)
{
    if (s->nparts == 1) return __atomic_load_n(&s->hdr->entries, __ATOMIC_RELAXED);
    uint64_t n = 0;
    for (int i = 0; i < s->nparts; i++)
        n += __atomic_load_n(&s->part[i]->hdr->entries, __ATOMIC_RELAXED);
    return n;
}

/* Appends report `one` of part i to *all (*len bytes so far), each of its
** lines prefixed with the part's number.  Returns MMKV_OK or MMKV_NOMEM. */
static int add_report(char **all, size_t *len, int i, const char *one)
{
    size_t lines = 1;
    for (const char *c = one; *c; c++) lines += *c == '\n';
    size_t cap = *len + strlen(one) + lines * 16 + 1;
    char *p = realloc(*all, cap);
    if (!p) return MMKV_NOMEM;
    *all = p;
    for (const char *line = one; line;) {
        const char *nl = strchr(line, '\n');
        int n = nl ? (int)(nl - line) : (int)strlen(line);
        *len += (size_t)snprintf(p + *len, cap - *len, "%spart %d: %.*s", *len ? "\n" : "", i + 1,
                                 n, line);
        line = nl ? nl + 1 : NULL;
    }
    return MMKV_OK;
}

int mmkv_check(mmkv *s, char **report)
{
    if (s->nparts == 1) return part_check(s, report);
    *report = NULL;
    int rc = need_all(s);
    if (rc) return rc;
    size_t len = 0;
    char *all = NULL;
    for (int i = 0; i < s->nparts; i++) {
        char *one = NULL;
        s->part[i]->err[0] = 0;
        rc = part_check(s->part[i], &one);
        if (rc == MMKV_OK && strcmp(one, "ok") != 0 && add_report(&all, &len, i, one))
            rc = store_err(s, MMKV_NOMEM, "out of memory");
        else if (rc)
            rc = s->part[i]->err[0] ? from_part(s, s->part[i], rc)
                                    : store_err(s, rc, "%s", mmkv_strerror(rc));
        free(one);
        if (rc) {
            free(all);
            return rc;
        }
    }
    if (!all && !(all = malloc(3))) return store_err(s, MMKV_NOMEM, "out of memory");
    if (!len) memcpy(all, "ok", 3);
    *report = all;
    return MMKV_OK;
}
