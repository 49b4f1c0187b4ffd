/*
** vtab_array.c -- "array": a trivial in-process virtual table over a C array.
**
**   CREATE VIRTUAL TABLE temp.kv USING array;
**
** The floor of SQLite's virtual-table machinery for the benchmark: the same
** schema as `mmap` (key TEXT PRIMARY KEY NOT NULL, value, WITHOUT ROWID), the
** same `key = ?` plan, but the entries live in this process's heap, nothing
** is locked and nothing is copied on the way out (SQLITE_STATIC).  Whatever
** a key lookup through `mmap` costs above this table is the store's own
** cost.
**
** "array_txn" is the same table with transaction methods that do nothing
** (xBegin, xSync, xCommit, xRollback): SQLite's own cost of a virtual table
** that takes part in transactions, as `mmap` must, without any work of a
** store behind it.
**
** "array_lock" (CREATE VIRTUAL TABLE temp.kv USING array_lock(NAME)) adds
** what every write of a store shared between processes must do on top:
** xBegin takes the store's own process-shared lock (src/os.h: on Linux the
** robust mutex, recovered if its holder dies) in the header of a small
** named mapping NAME (as written, without quotes), and xCommit adds one to
** a counter in the next line of that header and lets the lock go.  The entries stay in the C array; no
** lookup, record or log in shared memory.  An `mmap` write cannot cost less.
**
** One closed cursor is kept for the next statement, so a lookup allocates
** nothing.  Storage: a C array of pointers, open addressing with linear probing
** (deletion by backward shift, no tombstones); each pointer leads to one
** block holding the key and the value, so a lookup touches two places in
** memory, as a lookup in the mapping does (its index slot and its record).
*/
#include "bench.h"
#include "os.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* One entry: the key's bytes, then the value's bytes, in one block. */
typedef struct arr_entry {
    int klen, vlen;
    int vtype; /* SQLITE_INTEGER, _FLOAT, _TEXT, _BLOB or _NULL */
    sqlite3_int64 i;
    double r;
    char data[]; /* klen key bytes, NUL, vlen value bytes */
} arr_entry;

typedef struct arr_table {
    sqlite3_vtab base;
    sqlite3 *db;
    arr_entry **slot;         /* the array: NULL = empty */
    size_t nslot;             /* a power of two */
    size_t n;                 /* entries */
    struct arr_cursor *spare; /* a closed cursor kept for the next xOpen */
    mmkv_os_map *m;           /* array_lock: the mapping of the lock, else NULL */
    unsigned char *shared;    /* its base: the lock, then a line of counters */
    int locked;               /* array_lock: xBegin took the lock */
} arr_table;

typedef struct arr_cursor {
    sqlite3_vtab_cursor base;
    size_t at, end; /* slots [at, end); a lookup makes it one slot */
} arr_cursor;

/* Returns a hash of n bytes at p (multiply and fold, 8 bytes at a time). */
static uint64_t arr_hash(const void *p, int n)
{
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    for (; n >= 8; n -= 8, s += 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xC2B2AE3D27D4EB4Full;
        h ^= h >> 29;
    }
    while (n-- > 0)
        h = (h ^ *s++) * 0x100000001B3ull;
    return h ^ (h >> 32);
}

/* Returns the slot of key k: where it is, or the empty slot where it would go. */
static size_t arr_find(const arr_table *t, const void *k, int kn)
{
    size_t mask = t->nslot - 1, i = arr_hash(k, kn) & mask;
    for (;; i = (i + 1) & mask) {
        const arr_entry *e = t->slot[i];
        if (!e || (e->klen == kn && memcmp(e->data, k, (size_t)kn) == 0)) return i;
    }
}

/* Rebuilds the array with twice the slots.  Returns SQLITE_OK or NOMEM. */
static int arr_grow(arr_table *t)
{
    size_t n = t->nslot ? t->nslot * 2 : 1024, old_n = t->nslot;
    arr_entry **old = t->slot;
    t->slot = calloc(n, sizeof *t->slot);
    if (!t->slot) {
        t->slot = old;
        return SQLITE_NOMEM;
    }
    t->nslot = n;
    for (size_t i = 0; i < old_n; i++)
        if (old[i]) t->slot[arr_find(t, old[i]->data, old[i]->klen)] = old[i];
    free(old);
    return SQLITE_OK;
}

/* Empties slot i, shifting the following run back. */
static void arr_unslot(arr_table *t, size_t i)
{
    size_t mask = t->nslot - 1;
    for (size_t j = (i + 1) & mask; t->slot[j]; j = (j + 1) & mask) {
        size_t home = arr_hash(t->slot[j]->data, t->slot[j]->klen) & mask;
        /* The entry at j may move to i if its home is not in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            t->slot[i] = t->slot[j];
            i = j;
        }
    }
    t->slot[i] = NULL;
}

/* Returns the bytes of a key value without a copy: for TEXT,
** sqlite3_value_blob gives the text as it is (sqlite3_value_text would first
** make a NUL-terminated copy of a string bound with an explicit length). */
static const char *arr_key(sqlite3_value *k, int *n)
{
    if (sqlite3_value_type(k) == SQLITE_NULL) return NULL;
    const char *p = sqlite3_value_blob(k);
    *n = sqlite3_value_bytes(k);
    return p ? p : "";
}

/* Makes a new entry block for key kp (kn bytes) and value v; NULL if out of memory. */
static arr_entry *arr_entry_new(const char *kp, int kn, sqlite3_value *v)
{
    int type = sqlite3_value_type(v);
    const void *vp = type == SQLITE_TEXT   ? (const void *)sqlite3_value_text(v)
                     : type == SQLITE_BLOB ? sqlite3_value_blob(v)
                                           : NULL;
    int vn = vp ? sqlite3_value_bytes(v) : 0;
    arr_entry *e = malloc(sizeof *e + (size_t)kn + 1 + (size_t)vn);
    if (!e) return NULL;
    e->klen = kn;
    e->vlen = vn;
    e->vtype = type;
    e->i = type == SQLITE_INTEGER ? sqlite3_value_int64(v) : 0;
    e->r = type == SQLITE_FLOAT ? sqlite3_value_double(v) : 0;
    memcpy(e->data, kp, (size_t)kn);
    e->data[kn] = 0;
    if (vn) memcpy(e->data + kn + 1, vp, (size_t)vn);
    return e;
}

/* Inserts or (if replace) replaces key k with value v. */
static int arr_put(arr_table *t, sqlite3_value *k, sqlite3_value *v, int replace)
{
    int kn;
    const char *kp = arr_key(k, &kn);
    if (!kp) return SQLITE_CONSTRAINT_NOTNULL;
    if ((t->n + 1) * 4 > t->nslot * 3 && arr_grow(t)) return SQLITE_NOMEM;
    size_t i = arr_find(t, kp, kn);
    if (t->slot[i] && !replace) return SQLITE_CONSTRAINT_PRIMARYKEY;
    arr_entry *e = arr_entry_new(kp, kn, v);
    if (!e) return SQLITE_NOMEM;
    if (t->slot[i])
        free(t->slot[i]);
    else
        t->n++;
    t->slot[i] = e;
    return SQLITE_OK;
}

/* Deletes key k if present. */
static void arr_del(arr_table *t, sqlite3_value *k)
{
    int kn;
    const char *kp = arr_key(k, &kn);
    if (!kp) return;
    size_t i = arr_find(t, kp, kn);
    if (!t->slot[i]) return;
    free(t->slot[i]);
    arr_unslot(t, i);
    t->n--;
}

static int arrConnect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                      char **err)
{
    (void)aux, (void)argc, (void)argv, (void)err;
    int rc = sqlite3_declare_vtab(
        db, "CREATE TABLE x(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
    if (rc == SQLITE_OK) rc = sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    if (rc != SQLITE_OK) return rc;
    arr_table *t = calloc(1, sizeof *t);
    if (!t || arr_grow(t)) {
        free(t);
        return SQLITE_NOMEM;
    }
    t->db = db;
    *out = &t->base;
    return SQLITE_OK;
}

static int arrDisconnect(sqlite3_vtab *vt)
{
    arr_table *t = (arr_table *)vt;
    if (t->m) {
        if (t->locked) mmkv_os_unlock(t->m, t->shared);
        mmkv_os_close(t->m, 0);
    }
    for (size_t i = 0; i < t->nslot; i++)
        free(t->slot[i]);
    free(t->slot);
    free(t->spare);
    free(t);
    return SQLITE_OK;
}

/* Plan 1: `key = ?` (one probe); plan 0: every row. */
static int arrBestIndex(sqlite3_vtab *vt, sqlite3_index_info *info)
{
    arr_table *t = (arr_table *)vt;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (!c->usable || c->iColumn != 0 || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
        info->aConstraintUsage[i].argvIndex = 1;
        info->aConstraintUsage[i].omit = 1;
        info->idxNum = 1;
        info->estimatedCost = 1.0;
        info->estimatedRows = 1;
        info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
        return SQLITE_OK;
    }
    info->idxNum = 0;
    info->estimatedCost = 10.0 + (double)t->n;
    info->estimatedRows = (sqlite3_int64)t->n + 1;
    return SQLITE_OK;
}

/* xOpen: reuses the spare cursor if there is one (no malloc per statement). */
static int arrOpen(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
    arr_table *t = (arr_table *)vt;
    arr_cursor *c = t->spare ? t->spare : malloc(sizeof *c);
    if (!c) return SQLITE_NOMEM;
    t->spare = NULL;
    memset(c, 0, sizeof *c);
    *out = &c->base;
    return SQLITE_OK;
}

static int arrClose(sqlite3_vtab_cursor *cur)
{
    arr_table *t = (arr_table *)cur->pVtab;
    if (t->spare)
        free(cur);
    else
        t->spare = (arr_cursor *)cur;
    return SQLITE_OK;
}

/* Moves the cursor to the first occupied slot at or after c->at. */
static void arr_skip_empty(arr_cursor *c)
{
    const arr_table *t = (const arr_table *)c->base.pVtab;
    while (c->at < c->end && !t->slot[c->at])
        c->at++;
}

static int arrFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr, int argc,
                     sqlite3_value **argv)
{
    arr_cursor *c = (arr_cursor *)cur;
    arr_table *t = (arr_table *)cur->pVtab;
    (void)idxStr;
    c->at = 0;
    c->end = t->nslot;
    if (idxNum == 1 && argc == 1) {
        int kn;
        const char *k = arr_key(argv[0], &kn);
        c->at = k ? arr_find(t, k, kn) : 0;
        c->end = k && t->slot[c->at] ? c->at + 1 : 0;
    }
    arr_skip_empty(c);
    return SQLITE_OK;
}

static int arrNext(sqlite3_vtab_cursor *cur)
{
    arr_cursor *c = (arr_cursor *)cur;
    c->at++;
    arr_skip_empty(c);
    return SQLITE_OK;
}

static int arrEof(sqlite3_vtab_cursor *cur)
{
    const arr_cursor *c = (const arr_cursor *)cur;
    return c->at >= c->end;
}

/* Hands out the entry's bytes without a copy (SQLITE_STATIC). */
static int arrColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    const arr_cursor *c = (const arr_cursor *)cur;
    const arr_entry *e = ((arr_table *)cur->pVtab)->slot[c->at];
    const char *v = e->data + e->klen + 1;
    if (col == 0) {
        sqlite3_result_text(ctx, e->data, e->klen, SQLITE_STATIC);
        return SQLITE_OK;
    }
    switch (e->vtype) {
    case SQLITE_INTEGER:
        sqlite3_result_int64(ctx, e->i);
        break;
    case SQLITE_FLOAT:
        sqlite3_result_double(ctx, e->r);
        break;
    case SQLITE_TEXT:
        sqlite3_result_text(ctx, v, e->vlen, SQLITE_STATIC);
        break;
    case SQLITE_BLOB:
        sqlite3_result_blob(ctx, v, e->vlen, SQLITE_STATIC);
        break;
    default:
        sqlite3_result_null(ctx);
        break;
    }
    return SQLITE_OK;
}

static int arrRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = (sqlite3_int64)((arr_cursor *)cur)->at;
    return SQLITE_OK;
}

/* argc 1: delete argv[0]; argv[0] NULL: insert; else update (key may change). */
static int arrUpdate(sqlite3_vtab *vt, int argc, sqlite3_value **argv, sqlite3_int64 *rowid)
{
    arr_table *t = (arr_table *)vt;
    (void)rowid;
    if (argc == 1) {
        arr_del(t, argv[0]);
        return SQLITE_OK;
    }
    if (sqlite3_value_type(argv[0]) != SQLITE_NULL) arr_del(t, argv[0]);
    return arr_put(t, argv[2], argv[3], sqlite3_vtab_on_conflict(t->db) == SQLITE_REPLACE);
}

static const sqlite3_module array_module = {
    0,             /* iVersion */
    arrConnect,    /* xCreate */
    arrConnect,    /* xConnect */
    arrBestIndex,  /* xBestIndex */
    arrDisconnect, /* xDisconnect */
    arrDisconnect, /* xDestroy */
    arrOpen,       /* xOpen */
    arrClose,      /* xClose */
    arrFilter,     /* xFilter */
    arrNext,       /* xNext */
    arrEof,        /* xEof */
    arrColumn,     /* xColumn */
    arrRowid,      /* xRowid */
    arrUpdate,     /* xUpdate */
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
#if SQLITE_VERSION_NUMBER >= 3044000
    NULL,
#endif
};

/* The transaction methods of "array_txn": nothing to do. */
static int arrTxn(sqlite3_vtab *vt)
{
    (void)vt;
    return SQLITE_OK;
}

/* xCreate/xConnect of "array_lock": the array, and the mapping named by
** the first argument (made, with its lock, if it does not exist). */
static int arrLockConnect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                          sqlite3_vtab **out, char **err)
{
    char e[256];
    int created = 0, sole = 0;
    mmkv_os_map *m;
    if (argc < 4) {
        *err = sqlite3_mprintf("array_lock needs the name of a mapping");
        return SQLITE_ERROR;
    }
    if (mmkv_os_open(argv[3], 0, MMKV_OS_CREATE, 1u << 16, 0600, 5000, &m, &created, &sole, e,
                     sizeof e)) {
        *err = sqlite3_mprintf("array_lock: %s", e);
        return SQLITE_ERROR;
    }
    unsigned char *base = mmkv_os_base(m);
    /* A lock word left by earlier users is reset when no one else has it open. */
    int bad = (created || sole) && mmkv_os_lock_init(m, base);
    if (created && !bad) memset(base + MMKV_OS_LOCK_BYTES, 0, 64);
    if (bad) *err = sqlite3_mprintf("array_lock: %s", mmkv_os_errmsg(m));
    mmkv_os_open_done(m);
    int rc = bad ? SQLITE_ERROR : arrConnect(db, aux, argc, argv, out, err);
    if (rc != SQLITE_OK) {
        mmkv_os_close(m, bad);
        return rc;
    }
    arr_table *t = (arr_table *)*out;
    t->m = m;
    t->shared = base;
    return SQLITE_OK;
}

static int arrLockBegin(sqlite3_vtab *vt)
{
    arr_table *t = (arr_table *)vt;
    int r = mmkv_os_lock(t->m, t->shared, 5000);
    if (r == MMKV_OS_OWNERDEAD) mmkv_os_lock_repaired(t->m, t->shared);
    if (r == MMKV_OS_LOCKED || r == MMKV_OS_OWNERDEAD) {
        t->locked = 1;
        return SQLITE_OK;
    }
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = sqlite3_mprintf("array_lock: %s", r == MMKV_OS_TIMEOUT    ? "the lock timed out"
                                                    : r == MMKV_OS_DEADLOCK ? "the lock is held here"
                                                                            : mmkv_os_errmsg(t->m));
    return r == MMKV_OS_TIMEOUT ? SQLITE_BUSY : SQLITE_ERROR;
}

/* Commit: one more commit in the shared counters, then the lock goes. */
static int arrLockCommit(sqlite3_vtab *vt)
{
    arr_table *t = (arr_table *)vt;
    uint64_t *commits = (uint64_t *)(void *)(t->shared + MMKV_OS_LOCK_BYTES);
    if (t->locked) {
        (*commits)++; /* under the lock; its release orders it */
        mmkv_os_unlock(t->m, t->shared);
        t->locked = 0;
    }
    return SQLITE_OK;
}

static int arrLockRollback(sqlite3_vtab *vt)
{
    arr_table *t = (arr_table *)vt;
    if (t->locked) mmkv_os_unlock(t->m, t->shared);
    t->locked = 0;
    return SQLITE_OK;
}

/* Registers the modules "array", "array_txn" and "array_lock" with
** connection db. */
int array_vtab_register(sqlite3 *db)
{
    static sqlite3_module with_txn, with_lock; /* made once (one thread) */
    if (!with_txn.xCreate) {
        with_txn = array_module;
        with_txn.xBegin = with_txn.xSync = with_txn.xCommit = with_txn.xRollback = arrTxn;
        with_lock = with_txn;
        with_lock.xCreate = with_lock.xConnect = arrLockConnect;
        with_lock.xBegin = arrLockBegin;
        with_lock.xCommit = arrLockCommit;
        with_lock.xRollback = arrLockRollback;
    }
    int rc = sqlite3_create_module(db, "array", &array_module, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_create_module(db, "array_txn", &with_txn, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_create_module(db, "array_lock", &with_lock, NULL);
    return rc;
}
