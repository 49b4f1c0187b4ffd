/*
** store.c -- opening a mapping, the lock discipline, transactions, and the
** operations of the public API (mmkv.h).
**
** Lock discipline: every read takes the mapping's lock for the time of one
** lookup or scan and copies what it returns; a write transaction takes it
** at mmkv_begin (or, outside one, for the time of one change) and keeps it
** until commit or rollback.  Before the first change of a transaction the
** header's `dirty` flag is set; whoever takes the lock and finds it set
** knows the last writer died mid-way and runs recovery (recover.c).
*/
#include "store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const rc_names[] = {
    "ok",       "not found",   "exists",           "busy",
    "full",     "too big",     "read-only",        "corrupt",
    "format",   "cannot open", "invalid argument", "out of memory",
    "I/O error"};

const char *mmkv_strerror(int rc)
{
    if (rc < 0 || rc >= (int)(sizeof rc_names / sizeof rc_names[0])) return "unknown error";
    return rc_names[rc];
}

/* Records a formatted message as the handle's last error; returns rc. */
int store_err(struct mmkv *s, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* Records that the mapping is damaged (what names the part); returns
** MMKV_CORRUPT. */
int store_corrupt(struct mmkv *s, const char *what)
{
    return store_err(s, MMKV_CORRUPT, "mapping %s is corrupt: bad %s", s->where, what);
}

const char *mmkv_errmsg(mmkv *s)
{
    return s ? s->err : "no handle";
}

mmkv_options mmkv_default_options(void)
{
    mmkv_options o;
    memset(&o, 0, sizeof o);
    o.size = MMKV_DEFAULT_SIZE;
    o.mode = MMKV_MODE_CREATE;
    o.timeout_ms = 5000;
    o.perms = 0600;
    return o;
}

mmkv_key mmkv_text_key(const char *str)
{
    mmkv_key k = {MMKV_TEXT, str, (uint32_t)strlen(str)};
    return k;
}

int mmkv_check_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > MMKV_MAX_NAME || name[0] == '.') return MMKV_INVALID;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok) return MMKV_INVALID;
    }
    return MMKV_OK;
}

/* Checks the options; returns MMKV_OK or MMKV_INVALID with the message. */
static int check_options(struct mmkv *s, const mmkv_options *o)
{
    if (!o->name == !o->file)
        return store_err(s, MMKV_INVALID, "give exactly one of name= and file=");
    if (o->name && mmkv_check_name(o->name))
        return store_err(s, MMKV_INVALID,
                         "invalid name '%s': a name is 1-64 characters of A-Z a-z 0-9 . _ - "
                         "and does not start with '.'",
                         o->name);
    if (o->file && !o->file[0]) return store_err(s, MMKV_INVALID, "empty file name");
    if (o->size < MMKV_MIN_SIZE || o->size > MMKV_MAX_SIZE)
        return store_err(s, MMKV_INVALID,
                         "size %llu is out of range: the minimum is 64K, "
                         "the maximum 16G",
                         (unsigned long long)o->size);
    if (o->mode < MMKV_MODE_CREATE || o->mode > MMKV_MODE_READONLY)
        return store_err(s, MMKV_INVALID, "unknown mode %d", o->mode);
    if (o->timeout_ms < 0) return store_err(s, MMKV_INVALID, "negative timeout");
    if (o->perms > 0777) return store_err(s, MMKV_INVALID, "perms %o is not a mode", o->perms);
    return MMKV_OK;
}

/* Lays out a new mapping: header, lock and an empty index.  The magic is
** written last, so a half-made mapping is never taken for ours. */
static int init_mapping(struct mmkv *s)
{
    struct mmkv_hdr *h = s->hdr;
    memset((char *)h + 8, 0, HDR_SIZE - 8); /* the magic field keeps the os marker */
    h->version = MMKV_FORMAT_VERSION;
    h->hdr_size = HDR_SIZE;
    h->capacity = s->cap;
    h->seed = mmkv_os_random();
    h->heap_top = HDR_SIZE;
    h->used = HDR_SIZE;
    if (mmkv_os_lock_init(s->os, h->lock))
        return store_err(s, MMKV_IOERR, "%s", mmkv_os_errmsg(s->os));
    uint64_t slots = s->cap / 2048 < MIN_SLOTS ? MIN_SLOTS : s->cap / 2048;
    if (index_create(s, slots)) return store_err(s, MMKV_FULL, "no room for the index");
    __atomic_store_n(&h->magic, MMKV_MAGIC, __ATOMIC_SEQ_CST);
    return MMKV_OK;
}

/* Checks the fixed part of an existing header.  Returns MMKV_OK, MMKV_FORMAT
** or MMKV_CORRUPT; nothing is written. */
static int check_header(struct mmkv *s)
{
    struct mmkv_hdr *h = s->hdr;
    if (h->magic != MMKV_MAGIC)
        return store_err(s, MMKV_FORMAT, "not an mmap mapping: %s", s->where);
    if (h->version != MMKV_FORMAT_VERSION)
        return store_err(s, MMKV_FORMAT, "mapping %s has format version %u; this build reads %u",
                         s->where, h->version, MMKV_FORMAT_VERSION);
    if (h->hdr_size != HDR_SIZE || h->capacity != s->cap)
        return store_err(s, MMKV_CORRUPT,
                         "mapping %s is corrupt: its header says %llu bytes but it has %llu",
                         s->where, (unsigned long long)h->capacity, (unsigned long long)s->cap);
    return MMKV_OK;
}

/* Checks the parts of the header that writers change (under the lock). */
static int check_live_header(struct mmkv *s)
{
    struct mmkv_hdr *h = s->hdr;
    int rc = check_header(s);
    if (rc == MMKV_FORMAT)
        return store_err(s, MMKV_CORRUPT, "mapping %s is corrupt: its magic or version changed",
                         s->where);
    if (rc) return rc;
    if (h->heap_top < HDR_SIZE || h->heap_top > s->cap || h->heap_top % 8)
        return store_corrupt(s, "heap top");
    return MMKV_OK;
}

/* Copies where the store lives into the handle, for messages. */
static void set_where(struct mmkv *s, const mmkv_options *o)
{
    s->is_file = o->file != NULL;
    snprintf(s->where, sizeof s->where, "%s", o->file ? o->file : o->name);
}

/* Attaches the handle to the mapping it opened, creating or checking the
** header while the init lock is held. */
static int attach(struct mmkv *s, int created, int sole)
{
    s->base = mmkv_os_base(s->os);
    s->cap = mmkv_os_size(s->os);
    s->hdr = (struct mmkv_hdr *)(void *)s->base;
    if (created) return init_mapping(s);
    int rc = check_header(s);
    if (rc == MMKV_OK && sole && mmkv_os_lock_init(s->os, s->hdr->lock))
        rc = store_err(s, MMKV_IOERR, "%s", mmkv_os_errmsg(s->os));
    return rc;
}

/* Hands a message to the caller of mmkv_open. */
static void give_msg(char **errmsg, const char *msg)
{
    if (!errmsg) return;
    size_t n = strlen(msg) + 1;
    *errmsg = malloc(n);
    if (*errmsg) memcpy(*errmsg, msg, n);
}

int mmkv_open(const mmkv_options *o, mmkv **out, char **errmsg)
{
    static const int os_flags[] = {MMKV_OS_CREATE, 0, MMKV_OS_CREATE | MMKV_OS_EXCL, 0};
    struct mmkv *s = calloc(1, sizeof *s);
    int created = 0, sole = 0, rc;
    *out = NULL;
    if (errmsg) *errmsg = NULL;
    if (!s) {
        give_msg(errmsg, "out of memory");
        return MMKV_NOMEM;
    }
    rc = check_options(s, o);
    if (rc == MMKV_OK) {
        set_where(s, o);
        s->readonly = o->mode == MMKV_MODE_READONLY;
        s->timeout_ms = o->timeout_ms;
        uint64_t size = (o->size + 4095) & ~(uint64_t)4095;
        rc = mmkv_os_open(o->file ? o->file : o->name, o->file != NULL, os_flags[o->mode], size,
                          o->perms, o->timeout_ms, &s->os, &created, &sole, s->err,
                          (int)sizeof s->err);
    }
    if (rc == MMKV_OK) {
        rc = attach(s, created, sole);
        mmkv_os_open_done(s->os);
    }
    if (rc != MMKV_OK) {
        give_msg(errmsg, s->err);
        mmkv_os_close(s->os, created);
        free(s);
        return rc;
    }
    *out = s;
    return MMKV_OK;
}

void mmkv_close(mmkv *s)
{
    if (!s) return;
    if (s->in_txn) mmkv_rollback(s);
    mmkv_os_close(s->os, 0);
    free(s->ops);
    free(s);
}

int mmkv_unlink(const char *name)
{
    if (mmkv_check_name(name)) return MMKV_INVALID;
    int r = mmkv_os_unlink(name);
    return r == 1 ? MMKV_OK : r == 0 ? MMKV_NOTFOUND : MMKV_IOERR;
}

/* Takes the lock (unless this handle holds it), repairing after a dead
** writer.  Returns MMKV_OK, MMKV_BUSY, MMKV_CORRUPT, MMKV_FORMAT or
** MMKV_IOERR. */
static int lock_store(struct mmkv *s)
{
    if (s->locked) return MMKV_OK;
    int r = mmkv_os_lock(s->os, s->hdr->lock, s->timeout_ms);
    if (r == MMKV_OS_TIMEOUT)
        return store_err(s, MMKV_BUSY, "timed out after %d ms waiting for the lock of mapping %s",
                         s->timeout_ms, s->where);
    if (r == MMKV_OS_DEADLOCK)
        return store_err(s, MMKV_BUSY,
                         "the lock of mapping %s is held by another connection of this thread",
                         s->where);
    if (r == MMKV_OS_ERROR)
        return store_err(s, MMKV_IOERR, "mapping %s: %s", s->where, mmkv_os_errmsg(s->os));
    int rc = check_live_header(s);
    if (rc == MMKV_OK && s->hdr->dirty) rc = store_recover(s);
    if (r == MMKV_OS_OWNERDEAD) mmkv_os_lock_repaired(s->os, s->hdr->lock);
    if (rc != MMKV_OK) {
        mmkv_os_unlock(s->os, s->hdr->lock);
        return rc;
    }
    s->locked = 1;
    return MMKV_OK;
}

/* Releases the lock unless a write transaction keeps it. */
static void unlock_store(struct mmkv *s)
{
    if (!s->locked || s->in_txn) return;
    s->locked = 0;
    mmkv_os_unlock(s->os, s->hdr->lock);
}

int mmkv_begin(mmkv *s)
{
    if (s->in_txn) return store_err(s, MMKV_INVALID, "a transaction is already open");
    if (s->readonly) return store_err(s, MMKV_READONLY, "mapping %s is read-only", s->where);
    int rc = lock_store(s);
    if (rc) return rc;
    s->in_txn = 1;
    s->nops = 0;
    s->err[0] = 0;
    return MMKV_OK;
}

int mmkv_in_transaction(mmkv *s)
{
    return s->in_txn;
}

size_t mmkv_mark(mmkv *s)
{
    return s->nops;
}

/* Marks the mapping as being changed, before the first change of a
** transaction: dirty for recovery, an odd seq for lock-free readers. */
static void mark_dirty(struct mmkv_hdr *h)
{
    __atomic_store_n(&h->dirty, 1, __ATOMIC_SEQ_CST);
    if (!(h->seq & 1)) __atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Marks the changes as finished: seq even again (and different), then the
** dirty flag cleared.  Also used by recovery. */
void store_mark_clean(struct mmkv_hdr *h)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(&h->seq, (h->seq | 1) + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&h->dirty, 0, __ATOMIC_SEQ_CST);
}

/* Ends the transaction: marks the mapping clean and releases the lock. */
static void end_txn(struct mmkv *s)
{
    if (s->hdr->dirty) store_mark_clean(s->hdr);
    s->nops = 0;
    s->in_txn = 0;
    unlock_store(s);
}

int mmkv_commit(mmkv *s)
{
    if (!s->in_txn) return store_err(s, MMKV_INVALID, "no transaction is open");
    struct mmkv_hdr *h = s->hdr;
    if (s->nops) {
        __atomic_store_n(&h->committing, 1, __ATOMIC_SEQ_CST);
        for (size_t i = 0; i < s->nops; i++) {
            uint64_t off = (uint64_t)s->ops[i].unit * 8;
            int st = w_state(blk_word(s, off));
            if (s->ops[i].kind == OP_INS && st == BS_NEW) blk_set_state(s, off, BS_LIVE);
            if (s->ops[i].kind == OP_DEL && (st == BS_DEAD || st == BS_GONE)) heap_free(s, off);
        }
        h->commits++;
        __atomic_store_n(&h->committing, 0, __ATOMIC_SEQ_CST);
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
        heap_free(s, off);
        return MMKV_OK;
    }
    blk_set_state(s, off, r.state == BS_GONE ? BS_NEW : BS_LIVE);
    s->hdr->kv_bytes += rec_kv_bytes(&r);
    return index_insert(s, h, off);
}

int mmkv_rollback_to(mmkv *s, size_t mark)
{
    if (!s->in_txn) return store_err(s, MMKV_INVALID, "no transaction is open");
    while (s->nops > mark) {
        int rc = undo_op(s, &s->ops[s->nops - 1]);
        if (rc) return rc;
        s->nops--;
    }
    return MMKV_OK;
}

int mmkv_rollback(mmkv *s)
{
    if (!s->in_txn) return store_err(s, MMKV_INVALID, "no transaction is open");
    int rc = mmkv_rollback_to(s, 0);
    if (rc) {
        /* The undo met damage: leave the dirty flag so that recovery runs. */
        s->nops = 0;
        s->in_txn = 0;
        s->locked = 0;
        mmkv_os_unlock(s->os, s->hdr->lock);
        return rc;
    }
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
    if (s->readonly) return store_err(s, MMKV_READONLY, "mapping %s is read-only", s->where);
    int rc = reserve_ops(s);
    if (rc) return rc;
    if (!s->in_txn) {
        rc = mmkv_begin(s);
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
    if (rc == MMKV_OK) return mmkv_commit(s);
    char keep[sizeof s->err];
    memcpy(keep, s->err, sizeof keep);
    mmkv_rollback(s);
    memcpy(s->err, keep, sizeof keep);
    return rc;
}

/* Checks a key and value against the limits. */
static int check_sizes(struct mmkv *s, const mmkv_key *k, const mmkv_value *v)
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
    return store_err(s, MMKV_FULL, "mapping %s is full (capacity %llu bytes, %llu entries)",
                     s->where, (unsigned long long)s->cap, (unsigned long long)s->hdr->entries);
}

/* The body of mmkv_put, under the lock with the mapping dirty. */
static int put_locked(struct mmkv *s, const mmkv_key *k, const mmkv_value *v, int flags)
{
    struct rec old;
    uint64_t slot, off, h = key_hash(s->hdr->seed, k);
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

int mmkv_put(mmkv *s, const mmkv_key *k, const mmkv_value *v, int flags)
{
    int autocommit, rc = check_sizes(s, k, v);
    if (rc) return rc;
    rc = change_begin(s, &autocommit);
    if (rc) return rc;
    size_t mark = s->nops;
    rc = put_locked(s, k, v, flags);
    if (rc && !autocommit && rc != MMKV_EXISTS && rc != MMKV_FULL) {
        int keep = rc;
        mmkv_rollback_to(s, mark);
        rc = keep;
    }
    return change_end(s, autocommit, rc);
}

int mmkv_del(mmkv *s, const mmkv_key *k)
{
    int autocommit, rc = check_sizes(s, k, NULL);
    if (rc) return rc;
    rc = change_begin(s, &autocommit);
    if (rc) return rc;
    struct rec old;
    uint64_t slot, h = key_hash(s->hdr->seed, k);
    rc = index_find(s, k, h, &slot, &old);
    if (rc == MMKV_OK) rc = index_remove_at(s, slot);
    if (rc == MMKV_OK) {
        blk_set_state(s, old.off, old.state == BS_NEW ? BS_GONE : BS_DEAD);
        s->hdr->kv_bytes -= rec_kv_bytes(&old);
        log_op(s, old.off, OP_DEL);
    }
    if (rc == MMKV_NOTFOUND) store_err(s, MMKV_NOTFOUND, "no such key");
    return change_end(s, autocommit, rc);
}

/* Copies a record's value into *v, its bytes into the caller's buffer. */
static int copy_value(struct mmkv *s, const struct rec *r, mmkv_value *v, void **buf, size_t *bufsz)
{
    *v = r->val;
    if (r->val.type != MMKV_TEXT && r->val.type != MMKV_BLOB) return MMKV_OK;
    if (*bufsz < (size_t)r->val.n + 1) {
        void *p = realloc(*buf, (size_t)r->val.n + 1);
        if (!p) return store_err(s, MMKV_NOMEM, "out of memory");
        *buf = p;
        *bufsz = (size_t)r->val.n + 1;
    }
    if (r->val.n) memcpy(*buf, r->val.p, r->val.n);
    ((char *)*buf)[r->val.n] = 0;
    v->p = *buf;
    return MMKV_OK;
}

/* Tells the processor that this is a spin-wait loop. */
static void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Looks k up without the lock: reads between two loads of seq and keeps the
** result only if seq was even and unchanged, so no writer was at work.
** Every offset is bounds-checked, so a torn read is harmless; it is thrown
** away.  Returns the lookup's result, or -1 when writers kept it from
** succeeding (the caller then takes the lock). */
static int get_optimistic(struct mmkv *s, const mmkv_key *k, mmkv_value *v, void **buf,
                          size_t *bufsz)
{
    struct mmkv_hdr *h = s->hdr;
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t seq = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
        if (seq & 1) {
            spin_pause();
            continue;
        }
        struct rec r;
        uint64_t slot;
        int rc = index_find(s, k, key_hash(h->seed, k), &slot, &r);
        if (rc == MMKV_OK) rc = copy_value(s, &r, v, buf, bufsz);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&h->seq, __ATOMIC_RELAXED) == seq) return rc;
    }
    return -1;
}

int mmkv_get(mmkv *s, const mmkv_key *k, mmkv_value *v, void **buf, size_t *bufsz)
{
    int rc = check_sizes(s, k, NULL);
    if (rc == MMKV_TOOBIG) return MMKV_NOTFOUND; /* no such key can exist */
    if (rc) return rc;
    if (!s->locked && (rc = get_optimistic(s, k, v, buf, bufsz)) >= 0) return rc;
    rc = lock_store(s);
    if (rc) return rc;
    struct rec r;
    uint64_t slot;
    rc = index_find(s, k, key_hash(s->hdr->seed, k), &slot, &r);
    if (rc == MMKV_OK) rc = copy_value(s, &r, v, buf, bufsz);
    unlock_store(s);
    return rc;
}

int mmkv_scan(mmkv *s, mmkv_scan_fn fn, void *ctx)
{
    int rc = lock_store(s);
    if (rc) return rc;
    uint64_t *t = NULL, n = 0;
    rc = index_table(s, &t, &n);
    for (uint64_t i = 0; rc == MMKV_OK && i < n; i++) {
        struct rec r;
        if (!t[i]) continue;
        rc = rec_decode(s, (uint64_t)(uint32_t)t[i] * 8, &r);
        if (rc == MMKV_OK) rc = fn(ctx, &r.key, &r.val);
    }
    unlock_store(s);
    return rc;
}

int mmkv_stat(mmkv *s, mmkv_stats *st)
{
    int rc = lock_store(s);
    if (rc) return rc;
    uint64_t *t = NULL, n = 0;
    rc = index_table(s, &t, &n);
    st->entries = s->hdr->entries;
    st->capacity = s->cap;
    st->used = s->hdr->used;
    st->kv_bytes = s->hdr->kv_bytes;
    st->slots = rc == MMKV_OK ? n : 0;
    st->format = s->hdr->version;
    unlock_store(s);
    return rc;
}

uint64_t mmkv_estimate(mmkv *s)
{
    return __atomic_load_n(&s->hdr->entries, __ATOMIC_RELAXED);
}

int mmkv_check(mmkv *s, char **report)
{
    *report = NULL;
    int rc = lock_store(s);
    if (rc == MMKV_CORRUPT || rc == MMKV_FORMAT) {
        /* A header too damaged to lock through is the report itself. */
        size_t n = strlen(s->err) + 1;
        *report = malloc(n);
        if (!*report) return MMKV_NOMEM;
        memcpy(*report, s->err, n);
        return MMKV_OK;
    }
    if (rc) return rc;
    rc = store_check(s, report);
    unlock_store(s);
    return rc;
}

int mmkv_flush(mmkv *s)
{
    if (mmkv_os_flush(s->os)) return store_err(s, MMKV_IOERR, "%s", mmkv_os_errmsg(s->os));
    return MMKV_OK;
}

const char *mmkv_location(mmkv *s, int *is_file)
{
    if (is_file) *is_file = s->is_file;
    return s->where;
}
