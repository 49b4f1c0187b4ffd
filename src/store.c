/*
** store.c -- opening a mapping, errors, the lock discipline, and the store's
** figures and checks.  Transactions and changes are in txn.c, lookups and
** scans in read.c.
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
    if (s->quiet) return rc; /* a lock-free attempt: what it met may be a writer's work */
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
    o.parts = 1;
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
    if (o->parts > MAX_PARTS)
        return store_err(s, MMKV_INVALID, "parts %u is out of range: 1 to %u", o->parts, MAX_PARTS);
    if (o->parts > 1 && o->size / o->parts < MMKV_MIN_SIZE)
        return store_err(s, MMKV_INVALID,
                         "size %llu in %u parts is less than the minimum of 64K a part",
                         (unsigned long long)o->size, o->parts);
    return MMKV_OK;
}

/* Lays out a new store in s's region: header, lock and an empty index.
** parts, part_no and region are 0 for a mapping in one part (format 2).
** The magic is written last, so a half-made store is never taken for ours. */
int store_init(struct mmkv *s, uint32_t parts, uint32_t part_no, uint64_t region)
{
    struct mmkv_hdr *h = s->hdr;
    memset((char *)h + 8, 0, HDR_SIZE - 8); /* the magic field keeps the os marker */
    h->version = parts ? MMKV_FORMAT_PARTS : MMKV_FORMAT_VERSION;
    h->hdr_size = HDR_SIZE;
    h->capacity = s->cap;
    h->seed = mmkv_os_random();
    h->parts = parts;
    h->part_no = part_no;
    h->region = region;
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
int store_check_header(struct mmkv *s)
{
    struct mmkv_hdr *h = s->hdr;
    if (h->magic != MMKV_MAGIC)
        return store_err(s, MMKV_FORMAT, "not an mmap mapping: %s", s->where);
    if (h->version != (s->xcommit ? MMKV_FORMAT_PARTS : MMKV_FORMAT_VERSION))
        return store_err(s, MMKV_FORMAT,
                         "mapping %s has format version %u; this build reads %u and %u",
                         s->where, h->version, MMKV_FORMAT_VERSION, MMKV_FORMAT_PARTS);
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
    int rc = store_check_header(s);
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
static int attach(struct mmkv *s, int created, int sole, unsigned parts)
{
    s->base = mmkv_os_base(s->os);
    s->cap = mmkv_os_size(s->os);
    s->hdr = (struct mmkv_hdr *)(void *)s->base;
    s->nparts = 1;
    if (created) return parts > 1 ? parts_create(s, parts) : store_init(s, 0, 0, 0);
    if (s->hdr->magic == MMKV_MAGIC && s->hdr->version == MMKV_FORMAT_PARTS)
        return parts_attach(s, sole);
    int rc = store_check_header(s);
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
        rc = attach(s, created, sole, o->parts);
        mmkv_os_open_done(s->os);
    }
    if (rc != MMKV_OK) {
        give_msg(errmsg, s->err);
        parts_free(s);
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
    parts_free(s);
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
int store_lock(struct mmkv *s)
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
void store_unlock(struct mmkv *s)
{
    if (!s->locked || s->in_txn) return;
    s->locked = 0;
    mmkv_os_unlock(s->os, s->hdr->lock);
}

int part_stat(mmkv *s, mmkv_stats *st)
{
    int rc = store_lock(s);
    if (rc) return rc;
    uint64_t *t = NULL, n = 0;
    rc = index_table(s, &t, &n);
    st->entries = s->hdr->entries;
    st->capacity = s->cap;
    st->used = s->hdr->used;
    st->kv_bytes = s->hdr->kv_bytes;
    st->slots = rc == MMKV_OK ? n : 0;
    st->format = s->hdr->version;
    st->parts = 1;
    store_unlock(s);
    return rc;
}

int part_check(mmkv *s, char **report)
{
    *report = NULL;
    int rc = store_lock(s);
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
    store_unlock(s);
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
