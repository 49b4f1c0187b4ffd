/*
** vtab.c -- the `mmap` virtual table: SQL rows over a mapped key/value store.
**
** USAGE
**   CREATE VIRTUAL TABLE temp.cfg USING mmap(name='alpha', size='1M');
**   INSERT INTO cfg VALUES ('foo', 'hello'), ('bar', 77);
**   SELECT value FROM cfg WHERE key = 'foo';
**
** Schema: key TEXT PRIMARY KEY NOT NULL, value -- WITHOUT ROWID.
** Keys take TEXT affinity (integers and reals are stored as their text,
** blobs stay blobs); values keep their storage class and bits.
**
** Plans (xBestIndex):
**   idxNum 0  full scan: every entry, copied under the lock as of one moment.
**   idxNum 1  key lookup: `key = ?`, with
**             the BINARY collation; one hash probe, at most one row.
**   idxNum 3  the same when the statement reads only the key (colUsed), as
**             DELETE ... WHERE key = ? does: the value is not copied.
**   idxNum 9, 11  plans 1 and 3 for `key IN (...)` (bit 8, PLAN_IN).
**   idxNum 6  full scan when the statement reads no value (count(*),
**             DELETE without a condition on the value): keys are copied,
**             values are not and read as NULL.  Keys always are: SQLite may
**             read the key without marking it in colUsed (the key a DELETE
**             passes to xUpdate, a RIGHT JOIN's record of matched rows).
** Nothing is ordered: ORDER BY is left to SQLite.
**
** Transactions: after xBegin, the first xFilter or xUpdate of the table
** takes the mapping's lock (mmkv_begin), and xCommit or xRollback releases
** it, so a statement or transaction that writes reads and changes the
** table alone, but holds the lock only from its first use of the table.
** On a mapping split into parts, a statement outside BEGIN whose first use
** is one key runs in a deferred transaction (mmkv_begin_deferred: the
** key's part alone while it can); one that starts with a scan or a key of
** an IN list takes every part at once.  Savepoints map onto store marks.
*/
#include "vtab.h"
SQLITE_EXTENSION_INIT3

#include "os.h"

#include <stdlib.h>
#include <string.h>

#define SCHEMA "CREATE TABLE x(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID"
#define SPARE_MAX 65536 /* bytes a kept cursor may hold on to */
#define BIG_ARENA ((size_t)4 << 20) /* scan arenas this big come from mmkv_os_big_alloc */

/* A cursor: the rows of one xFilter, packed one after another in a block
** of memory, its arena.  A row is a header, the key, then the value; each
** of the two is preceded by 8 bytes giving its distance from the block's
** start and followed by a NUL, and each is padded to a multiple of 8:
**     [mm_rowhdr][back][key bytes][0][pad][back][value bytes][0][pad]
** An integer or a real value takes 8 bytes.
**
** Text and blobs go to SQLite without a copy: every value mmColumn hands
** out holds a reference on its block, which SQLite drops by calling
** block_release when it no longer needs the value, and the cursor holds one
** while the block is its arena.  A block is refilled only when the cursor's
** reference is the last one; otherwise the cursor takes its second block,
** or a new one, and the last release frees the old.
**
** A scan's arena of BIG_ARENA bytes or more comes from mmkv_os_big_alloc
** (huge pages on Linux: filling a fresh 80 MB arena 4 KiB page by page
** spent a fifth of a 1M-row scan in page faults); any other from malloc,
** which the store may grow with realloc when a lookup copies a value. */
typedef struct mm_block {
    uint64_t refs; /* the cursor's reference and the values SQLite holds */
    uint64_t big;  /* bytes of a block from mmkv_os_big_alloc; 0: from malloc */
} mm_block;
#define BLOCK_HDR sizeof(mm_block) /* rows start after the header */

typedef struct mm_cursor {
    sqlite3_vtab_cursor base;
    void *arena;      /* the block of rows (malloc'd), or NULL */
    size_t used, cap; /* bytes of it in use (header included), its size */
    size_t at;        /* offset of the current row */
    void *other;      /* a second block for when SQLite holds values in the first */
    size_t other_cap;
} mm_cursor;

/* The header of a row in the arena. */
typedef struct mm_rowhdr {
    uint32_t vlen;        /* bytes of a TEXT or BLOB value */
    uint16_t klen;        /* bytes of the key */
    unsigned char ktype;  /* MMKV_TEXT or MMKV_BLOB */
    unsigned char vtype;  /* MMKV_* */
} mm_rowhdr;
_Static_assert(sizeof(mm_rowhdr) == 8, "row header is 8 bytes");
_Static_assert(BLOCK_HDR % 8 == 0, "rows are 8-byte aligned");
_Static_assert(MMKV_MAX_KEY <= 0xFFFF, "a key length fits the row header");

static void cursor_free(mm_cursor *c);

int mm_sqlite_code(int rc)
{
    switch (rc) {
    case MMKV_OK:
        return SQLITE_OK;
    case MMKV_EXISTS:
        return SQLITE_CONSTRAINT_PRIMARYKEY;
    case MMKV_BUSY:
        return SQLITE_BUSY;
    case MMKV_FULL:
        return SQLITE_FULL;
    case MMKV_TOOBIG:
        return SQLITE_TOOBIG;
    case MMKV_READONLY:
        return SQLITE_READONLY;
    case MMKV_CORRUPT:
        return SQLITE_CORRUPT;
    case MMKV_NOMEM:
        return SQLITE_NOMEM;
    case MMKV_IOERR:
        return SQLITE_IOERR;
    default:
        return SQLITE_ERROR;
    }
}

int mm_store_error(mm_vtab *t, int rc)
{
    sqlite3_free(t->base.zErrMsg);
    t->base.zErrMsg = sqlite3_mprintf("mmap: %s", mmkv_errmsg(t->store));
    return mm_sqlite_code(rc);
}

/* Sets a constraint message as an ordinary table words it. */
static int constraint_error(mm_vtab *t, int code, const char *kind)
{
    sqlite3_free(t->base.zErrMsg);
    t->base.zErrMsg = sqlite3_mprintf("%s constraint failed: %s.key", kind, t->table);
    return code;
}

/* Adds t to its connection's registry. */
static void registry_add(mm_registry *reg, mm_vtab *t)
{
    t->next = reg->first;
    reg->first = t;
}

/* Removes t from the registry. */
static void registry_remove(mm_registry *reg, mm_vtab *t)
{
    for (mm_vtab **p = &reg->first; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            return;
        }
}

/* Frees a table object and closes its store. */
static void vtab_free(mm_vtab *t)
{
    if (!t) return;
    mmkv_close(t->store);
    cursor_free(t->spare);
    sqlite3_free(t->schema);
    sqlite3_free(t->table);
    sqlite3_free(t->marks);
    sqlite3_free(t);
}

/* Parses the arguments, opens or creates the mapping and declares the
** schema.  A connect (is_create 0) re-attaches a table whose CREATE ran
** before, so mode='new' then means the mapping must exist. */
static int attach_table(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **err, int is_create)
{
    mmkv_options o;
    char *msg = NULL;
    int rc = mm_parse_args(argc, argv, &o, err);
    if (rc != SQLITE_OK) return rc;
    int declared_mode = o.mode;
    if (!is_create && o.mode == MMKV_MODE_NEW) o.mode = MMKV_MODE_OPEN;
    mm_vtab *t = sqlite3_malloc(sizeof *t);
    if (!t) {
        mm_free_options(&o);
        return SQLITE_NOMEM;
    }
    memset(t, 0, sizeof *t);
    t->db = db;
    t->mode = declared_mode;
    t->schema = sqlite3_mprintf("%s", argv[1]);
    t->table = sqlite3_mprintf("%s", argv[2]);
    int src = mmkv_open(&o, &t->store, &msg);
    mm_free_options(&o);
    if (src != MMKV_OK) {
        *err = sqlite3_mprintf("mmap: %s", msg ? msg : mmkv_strerror(src));
        free(msg);
        vtab_free(t);
        return mm_sqlite_code(src);
    }
    rc = t->schema && t->table ? sqlite3_declare_vtab(db, SCHEMA) : SQLITE_NOMEM;
    if (rc == SQLITE_OK) rc = sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    if (rc != SQLITE_OK) {
        vtab_free(t);
        return rc;
    }
    t->reg = aux;
    registry_add(aux, t);
    *out = &t->base;
    return SQLITE_OK;
}

/* xCreate: CREATE VIRTUAL TABLE ... USING mmap(...). */
static int mmCreate(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                    char **err)
{
    return attach_table(db, aux, argc, argv, out, err, 1);
}

/* xConnect: the table is declared already (a schema was loaded again). */
static int mmConnect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                     char **err)
{
    return attach_table(db, aux, argc, argv, out, err, 0);
}

/* xDisconnect and xDestroy: detach this connection; the mapping stays. */
static int mmDisconnect(sqlite3_vtab *vt)
{
    mm_vtab *t = (mm_vtab *)vt;
    registry_remove(t->reg, t);
    vtab_free(t);
    return SQLITE_OK;
}

/* Plans 1 and 3 (a key, with its value or not) with this bit: the key is
** one of an IN list, which SQLite looks up one by one. */
#define PLAN_IN 8

/* xBestIndex: a usable `key = ?` with BINARY collation makes plan 1. */
static int mmBestIndex(sqlite3_vtab *vt, sqlite3_index_info *info)
{
    mm_vtab *t = (mm_vtab *)vt;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (!c->usable || c->iColumn != 0 || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
        if (sqlite3_stricmp(sqlite3_vtab_collation(info, i), "BINARY") != 0) continue;
        info->aConstraintUsage[i].argvIndex = 1;
        info->aConstraintUsage[i].omit = 1;
        int key_only = !(info->colUsed & 2), in = sqlite3_vtab_in(info, i, -1);
        info->idxNum = (key_only ? 3 : 1) | (in ? PLAN_IN : 0);
        info->idxStr = key_only ? "key=? (key only)" : "key=?";
        info->estimatedCost = 1.0;
        info->estimatedRows = 1;
        info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
        return SQLITE_OK;
    }
    double n = (double)mmkv_estimate(t->store);
    int key_only = !(info->colUsed & 2);
    info->idxNum = key_only ? 6 : 0;
    if (key_only) info->idxStr = "scan (key only)";
    info->estimatedCost = 10.0 + 2.0 * n;
    info->estimatedRows = (sqlite3_int64)n + 1;
    return SQLITE_OK;
}

/* Drops one reference on block b (NULL is no block); the last frees it. */
static void block_drop(void *b)
{
    mm_block *k = b;
    if (!k || --k->refs) return;
    if (k->big)
        mmkv_os_big_free(k, (size_t)k->big);
    else
        free(k);
}

/* SQLite's destructor for a text or blob handed out by mmColumn: p points
** into a block, and the 8 bytes before it give p's distance from the
** block's start. */
static void block_release(void *p)
{
    uint64_t back;
    memcpy(&back, (unsigned char *)p - 8, 8);
    block_drop((unsigned char *)p - back);
}

/* Grows the cursor's arena to cap bytes (making it if there is none):
** to a big block from cap = BIG_ARENA on if `scan`, else with realloc.
** Only a block no value of SQLite's points into moves.  Returns 0 or -1. */
static int arena_grow(mm_cursor *c, size_t cap, int scan)
{
    mm_block *old = c->arena, *a = NULL;
    if (scan && cap >= BIG_ARENA && (a = mmkv_os_big_alloc(cap)) != NULL) {
        if (old) memcpy(a, old, c->used);
        a->big = cap;
        a->refs = 1;
        block_drop(old);
    } else if (old && old->big) {
        if ((a = malloc(cap)) == NULL) return -1;
        memcpy(a, old, c->used);
        a->big = 0;
        a->refs = 1;
        block_drop(old);
    } else {
        if ((a = realloc(old, cap)) == NULL) return -1;
        if (!old) {
            a->big = 0;
            a->refs = 1;
        }
    }
    c->arena = a;
    c->cap = cap;
    return 0;
}

/* Makes room for n more bytes in the cursor's arena (for a scan if
** `scan`).  Returns 0 or -1. */
static int arena_reserve(mm_cursor *c, size_t n, int scan)
{
    if (c->used + n <= c->cap) return 0;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->used + n)
        cap *= 2;
    return arena_grow(c, cap, scan);
}

/* Empties the cursor for a new xFilter.  If SQLite still holds values in
** the arena, the cursor switches to its second block when SQLite holds
** none there, and otherwise leaves both to SQLite and starts a new one. */
static void cursor_reset(mm_cursor *c)
{
    if (c->arena && ((mm_block *)c->arena)->refs > 1) {
        void *a = c->arena;
        size_t cap = c->cap;
        if (c->other && ((mm_block *)c->other)->refs == 1) {
            c->arena = c->other;
            c->cap = c->other_cap;
        } else {
            block_drop(c->other);
            c->arena = NULL;
            c->cap = 0;
        }
        c->other = a;
        c->other_cap = cap;
    }
    c->at = c->used = BLOCK_HDR;
}

/* Frees a cursor; its blocks live on while SQLite holds values in them. */
static void cursor_free(mm_cursor *c)
{
    if (!c) return;
    block_drop(c->arena);
    block_drop(c->other);
    sqlite3_free(c);
}

/* xOpen: reuses the table's spare cursor (and its blocks) if it has one,
** so a statement run again and again allocates nothing. */
static int mmOpen(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
    mm_vtab *t = (mm_vtab *)vt;
    mm_cursor *c = t->spare;
    t->spare = NULL;
    if (!c) {
        c = sqlite3_malloc(sizeof *c);
        if (!c) return SQLITE_NOMEM;
        memset(c, 0, sizeof *c);
    }
    memset(&c->base, 0, sizeof c->base);
    c->at = c->used = BLOCK_HDR;
    *out = &c->base;
    return SQLITE_OK;
}

/* xClose: keeps the cursor as the table's spare unless it holds much
** memory (a large scan) or a spare is kept already. */
static int mmClose(sqlite3_vtab_cursor *cur)
{
    mm_cursor *c = (mm_cursor *)cur;
    mm_vtab *t = (mm_vtab *)cur->pVtab;
    if (t->spare || c->cap + c->other_cap > SPARE_MAX) {
        cursor_free(c);
        return SQLITE_OK;
    }
    t->spare = c;
    return SQLITE_OK;
}

/* Rounds n up to a multiple of 8. */
static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Returns the bytes of a value's data in a row. */
static size_t value_bytes(int vtype, uint32_t vlen)
{
    if (vtype == MMKV_INT || vtype == MMKV_REAL) return 8;
    return vtype == MMKV_TEXT || vtype == MMKV_BLOB ? vlen : 0;
}

/* Offset of the value's back word from the row's start. */
static size_t value_back(size_t klen)
{
    return sizeof(mm_rowhdr) + 8 + pad8(klen + 1);
}

/* Returns the bytes a row with this header takes in the arena. */
static size_t row_size(const mm_rowhdr *h)
{
    return value_back(h->klen) + 8 + pad8(value_bytes(h->vtype, h->vlen) + 1);
}

/* Returns the header of the row for key k and value v. */
static mm_rowhdr row_header(const mmkv_key *k, const mmkv_value *v)
{
    mm_rowhdr h = {0, (uint16_t)k->n, (unsigned char)k->type, (unsigned char)v->type};
    if (v->type == MMKV_TEXT || v->type == MMKV_BLOB) h.vlen = v->n;
    return h;
}

/* Writes the row at offset `row` of the arena (the room is reserved):
** its header, the key, the back words and the value unless the store put
** its bytes in place already (in_place). */
static void write_row(mm_cursor *c, size_t row, const mmkv_key *k, const mmkv_value *v,
                      int in_place)
{
    unsigned char *p = (unsigned char *)c->arena + row;
    mm_rowhdr h = row_header(k, v);
    size_t vb = value_back(k->n);
    uint64_t kback = row + sizeof h + 8, vback = row + vb + 8;
    memcpy(p, &h, sizeof h);
    memcpy(p + sizeof h, &kback, 8);
    if (k->n) memcpy(p + sizeof h + 8, k->p, k->n);
    p[sizeof h + 8 + k->n] = 0;
    memcpy(p + vb, &vback, 8);
    unsigned char *vp = p + vb + 8;
    if (v->type == MMKV_INT) memcpy(vp, &v->i, 8);
    if (v->type == MMKV_REAL) memcpy(vp, &v->r, 8);
    if (!in_place && h.vlen && v->p) memcpy(vp, v->p, h.vlen);
    if (!in_place) vp[value_bytes(h.vtype, h.vlen)] = 0;
}

/* mmkv_scan callback: appends one row. */
static int add_row(void *ctx, const mmkv_key *k, const mmkv_value *v)
{
    mm_cursor *c = ctx;
    mm_rowhdr h = row_header(k, v);
    size_t n = row_size(&h);
    if (arena_reserve(c, n, 1)) return MMKV_NOMEM;
    write_row(c, c->used, k, v, 0);
    c->used += n;
    return MMKV_OK;
}

/* mmkv_scan callback of plan 6: appends the key's row, its value NULL. */
static int add_key_row(void *ctx, const mmkv_key *k, const mmkv_value *v)
{
    static const mmkv_value none = {MMKV_NULL, 0, 0, NULL, 0};
    (void)v;
    return add_row(ctx, k, &none);
}

/* Gets the UTF-8 bytes of a TEXT value without asking SQLite to add a
** terminating NUL (which costs a reallocation when the application bound
** the text with a length).  sqlite3_value_bytes first puts the value in
** UTF-8 if it is not; sqlite3_value_blob then returns those bytes. */
static void text_bytes(sqlite3_value *v, const void **p, uint32_t *n)
{
    *n = (uint32_t)sqlite3_value_bytes(v);
    *p = sqlite3_value_blob(v);
}

/* Converts an SQL value to a key with TEXT affinity, as an ordinary TEXT
** column would: numbers become their text, blobs stay blobs.  Returns 0 if
** the value is NULL (no key). */
static int value_to_key(sqlite3_value *v, mmkv_key *k)
{
    switch (sqlite3_value_type(v)) {
    case SQLITE_NULL:
        return 0;
    case SQLITE_BLOB:
        k->type = MMKV_BLOB;
        k->p = sqlite3_value_blob(v);
        k->n = (uint32_t)sqlite3_value_bytes(v);
        break;
    case SQLITE_TEXT:
        k->type = MMKV_TEXT;
        text_bytes(v, &k->p, &k->n);
        break;
    default:
        k->type = MMKV_TEXT;
        k->p = sqlite3_value_text(v);
        k->n = (uint32_t)sqlite3_value_bytes(v);
        break;
    }
    if (!k->p) k->p = "";
    return 1;
}

/* Looks one key up into the cursor.  The store copies the value's bytes
** straight into the row being built; with key_only, the value is not
** copied and reads as NULL (the statement does not use it). */
static int lookup(mm_vtab *t, mm_cursor *c, sqlite3_value *arg, int key_only)
{
    mmkv_value v = {MMKV_NULL, 0, 0, NULL, 0};
    mmkv_key k;
    if (!value_to_key(arg, &k) || k.n > MMKV_MAX_KEY) return SQLITE_OK; /* no such key */
    size_t row = c->used, voff = row + value_back(k.n) + 8;
    if (c->arena && ((mm_block *)c->arena)->big) {
        block_drop(c->arena); /* the store grows the buffer with realloc: use malloc's */
        c->arena = NULL;
        c->cap = 0;
    }
    if (arena_reserve(c, voff - row + 64, 0)) return SQLITE_NOMEM;
    void *buf = c->arena;
    size_t cap = c->cap;
    int rc = mmkv_get_at(t->store, &k, key_only ? NULL : &v, &buf, &cap, voff);
    c->arena = buf; /* the store may have grown it with realloc */
    c->cap = cap;
    if (rc == MMKV_NOTFOUND) return SQLITE_OK;
    if (rc != MMKV_OK) return mm_store_error(t, rc);
    mm_rowhdr h = row_header(&k, &v);
    size_t n = row_size(&h);
    if (arena_reserve(c, n, 0)) return SQLITE_NOMEM;
    write_row(c, row, &k, &v, v.type == MMKV_TEXT || v.type == MMKV_BLOB);
    c->used += n;
    return SQLITE_OK;
}

/* Sizes the cursor's buffers for a scan from the store's figures, so the
** copy does not grow them step by step, and faults a big buffer's pages
** in before the scan takes the lock (the figures may be stale; the buffers
** still grow if needed).  A row adds at most 40 bytes to its key and value
** (header, back words, NULs, padding), so that much is reserved even for
** key-only rows (pages never written cost nothing); what is faulted in
** for those is 64 bytes a row, a key under 32 bytes.
**
** The counts come from the mapping's header and may be damaged, so they
** are held to what the mapping can hold: an entry takes an index slot (the
** slot count is checked against the heap) and a block of at least 16
** bytes.  And no more than the mapping's size is faulted in ahead; past
** that, pages fault in as rows fill them. */
static void reserve_scan(mm_vtab *t, mm_cursor *c, int key_only)
{
    mmkv_stats st;
    if (mmkv_stat(t->store, &st) != MMKV_OK) return;
    uint64_t room = st.capacity > 4096 + 8 * st.slots ? (st.capacity - 4096 - 8 * st.slots) / 16 : 0;
    uint64_t entries = st.entries, kv = st.kv_bytes < st.capacity ? st.kv_bytes : st.capacity;
    if (entries > st.slots) entries = st.slots;
    if (entries > room) entries = room;
    uint64_t want = kv + 40 * entries + 4096, fill = key_only ? 64 * entries + 4096 : want;
    if (fill > want) fill = want;
    if (fill > st.capacity) fill = st.capacity;
    if (want > SIZE_MAX) return;
    size_t bytes = (size_t)want;
    if (bytes > c->cap && arena_grow(c, bytes, 1)) return; /* rows grow it later */
    mm_block *a = c->arena;
    if (a && a->big && fill > c->used) mmkv_os_big_prefault(a, (size_t)fill);
}

/* Opens the store transaction that xBegin asked for, which takes the lock.
** open_txn, below, calls it at the table's first read or change in a
** transaction that writes it, not before. */
static __attribute__((noinline)) int begin_txn(mm_vtab *t, int one_key)
{
    /* A statement outside BEGIN is the whole transaction: in a mapping split
    ** into parts it holds only its key's part while it reads and writes keys
    ** of that part (mmkv_begin_deferred).  One that starts by reading
    ** several keys (a scan, `key IN (...)`) takes every part at once. */
    int rc = sqlite3_get_autocommit(t->db) && one_key ? mmkv_begin_deferred(t->store)
                                                      : mmkv_begin(t->store);
    return rc == MMKV_OK ? SQLITE_OK : mm_store_error(t, rc);
}

/* The check of every read and change, kept inline (it is on every point
** lookup, insert and delete); one_key: the call is about one key, not the
** first of several. */
static inline __attribute__((always_inline)) int open_txn(mm_vtab *t, int one_key)
{
    if (!t->want_txn || mmkv_in_transaction(t->store)) return SQLITE_OK;
    return begin_txn(t, one_key);
}

/* xFilter: fills the cursor with the rows of plan idxNum. */
static int mmFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr, int argc,
                    sqlite3_value **argv)
{
    mm_cursor *c = (mm_cursor *)cur;
    mm_vtab *t = (mm_vtab *)cur->pVtab;
    int rc, plan = idxNum & ~PLAN_IN, one = (plan == 1 || plan == 3) && argc == 1;
    (void)idxStr;
    cursor_reset(c);
    if ((rc = open_txn(t, one && !(idxNum & PLAN_IN))) != SQLITE_OK) return rc;
    if (one) return lookup(t, c, argv[0], plan == 3);
    int key_only = idxNum == 6;
    reserve_scan(t, c, key_only);
    int src = mmkv_scan(t->store, key_only ? add_key_row : add_row, c);
    if (src == MMKV_NOMEM) return SQLITE_NOMEM; /* add_row's, with no message of the store's */
    return src == MMKV_OK ? SQLITE_OK : mm_store_error(t, src);
}

/* Returns the header of the cursor's current row. */
static mm_rowhdr row_at(const mm_cursor *c)
{
    mm_rowhdr h;
    memcpy(&h, (const unsigned char *)c->arena + c->at, sizeof h);
    return h;
}

static int mmNext(sqlite3_vtab_cursor *cur)
{
    mm_cursor *c = (mm_cursor *)cur;
    mm_rowhdr h = row_at(c);
    c->at += row_size(&h);
    return SQLITE_OK;
}

static int mmEof(sqlite3_vtab_cursor *cur)
{
    mm_cursor *c = (mm_cursor *)cur;
    return c->at >= c->used;
}

/* Hands SQLite the text or blob of n bytes at p, in the cursor's arena,
** without a copy: the value takes a reference on the arena (see
** mm_cursor).  Text with no NUL inside is passed with length -1, so SQLite
** knows it is terminated and sqlite3_column_text does not copy it. */
static void result_bytes(mm_cursor *c, sqlite3_context *ctx, int type, const unsigned char *p,
                         uint32_t n)
{
    if (n == 0) { /* "" stands for the empty value: a NULL pointer would read as NULL */
        if (type == MMKV_TEXT)
            sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
        else
            sqlite3_result_blob(ctx, "", 0, SQLITE_STATIC);
        return;
    }
    ((mm_block *)c->arena)->refs++;
    if (type == MMKV_TEXT)
        sqlite3_result_text(ctx, (const char *)p, strlen((const char *)p) == n ? -1 : (int)n,
                            block_release);
    else
        sqlite3_result_blob(ctx, p, (int)n, block_release);
}

static int mmColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    mm_cursor *c = (mm_cursor *)cur;
    mm_rowhdr h = row_at(c);
    const unsigned char *p = (const unsigned char *)c->arena + c->at;
    if (col == 0) {
        result_bytes(c, ctx, h.ktype, p + sizeof h + 8, h.klen);
        return SQLITE_OK;
    }
    p += value_back(h.klen) + 8;
    int64_t i;
    double r;
    switch (h.vtype) {
    case MMKV_INT:
        memcpy(&i, p, 8);
        sqlite3_result_int64(ctx, i);
        break;
    case MMKV_REAL:
        memcpy(&r, p, 8);
        sqlite3_result_double(ctx, r);
        break;
    case MMKV_TEXT:
    case MMKV_BLOB:
        result_bytes(c, ctx, h.vtype, p, h.vlen);
        break;
    default:
        sqlite3_result_null(ctx);
        break;
    }
    return SQLITE_OK;
}

static int mmRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = (sqlite3_int64)((mm_cursor *)cur)->at;
    return SQLITE_OK;
}

/* Converts an SQL value to a store value (bytes borrowed from the value). */
static void sql_to_value(sqlite3_value *sv, mmkv_value *v)
{
    memset(v, 0, sizeof *v);
    switch (sqlite3_value_type(sv)) {
    case SQLITE_INTEGER:
        v->type = MMKV_INT;
        v->i = sqlite3_value_int64(sv);
        break;
    case SQLITE_FLOAT:
        v->type = MMKV_REAL;
        v->r = sqlite3_value_double(sv);
        break;
    case SQLITE_TEXT:
        v->type = MMKV_TEXT;
        text_bytes(sv, &v->p, &v->n);
        break;
    case SQLITE_BLOB:
        v->type = MMKV_BLOB;
        v->p = sqlite3_value_blob(sv);
        v->n = (uint32_t)sqlite3_value_bytes(sv);
        break;
    default:
        v->type = MMKV_NULL;
        break;
    }
}

/* Returns non-zero if two keys are the same key. */
static int same_key(const mmkv_key *a, const mmkv_key *b)
{
    return a->type == b->type && a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

/* Checks whether key k is present.  Returns 1, 0, or -1 on error (*rc). */
static int key_present(mm_vtab *t, const mmkv_key *k, int *rc)
{
    int src = mmkv_get(t->store, k, NULL, NULL, NULL);
    if (src == MMKV_OK) return 1;
    if (src == MMKV_NOTFOUND) return 0;
    *rc = mm_store_error(t, src);
    return -1;
}

/* INSERT of key k, value v, honouring the statement's conflict mode. */
static int do_insert(mm_vtab *t, const mmkv_key *k, const mmkv_value *v, int replace)
{
    int rc = mmkv_put(t->store, k, v, replace ? MMKV_PUT_REPLACE : MMKV_PUT_INSERT);
    if (rc == MMKV_EXISTS) return constraint_error(t, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
    return rc == MMKV_OK ? SQLITE_OK : mm_store_error(t, rc);
}

/* UPDATE of the row with key ok to key nk and value v. */
static int do_update(mm_vtab *t, const mmkv_key *ok, const mmkv_key *nk, const mmkv_value *v,
                     int replace)
{
    int rc = SQLITE_OK;
    if (same_key(ok, nk)) {
        int src = mmkv_put(t->store, nk, v, MMKV_PUT_REPLACE);
        return src == MMKV_OK ? SQLITE_OK : mm_store_error(t, src);
    }
    int present = key_present(t, nk, &rc);
    if (present < 0) return rc;
    if (present && !replace) return constraint_error(t, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
    size_t mark = mmkv_mark(t->store);
    int src = mmkv_del(t->store, ok);
    if (src == MMKV_OK || src == MMKV_NOTFOUND) src = mmkv_put(t->store, nk, v, MMKV_PUT_REPLACE);
    if (src != MMKV_OK) {
        rc = mm_store_error(t, src);
        if (mmkv_in_transaction(t->store)) mmkv_rollback_to(t->store, mark);
        return rc;
    }
    return SQLITE_OK;
}

/* xUpdate: argc 1 deletes argv[0]; argv[0] NULL inserts; else updates.
** The arguments are converted before the transaction takes the lock, so
** that other processes' writers wait only for the store's own work; errors
** come in the order of an ordinary table's (the lock's first). */
static int mmUpdate(sqlite3_vtab *vt, int argc, sqlite3_value **argv, sqlite3_int64 *rowid)
{
    mm_vtab *t = (mm_vtab *)vt;
    mmkv_key k, old;
    mmkv_value v;
    (void)rowid;
    if (argc == 1) {
        int have = value_to_key(argv[0], &k);
        int orc = open_txn(t, 1);
        if (orc != SQLITE_OK || !have) return orc;
        int rc = mmkv_del(t->store, &k);
        return rc == MMKV_OK || rc == MMKV_NOTFOUND ? SQLITE_OK : mm_store_error(t, rc);
    }
    int have_new = value_to_key(argv[2], &k);
    int insert = sqlite3_value_type(argv[0]) == SQLITE_NULL;
    int have_old = !insert && value_to_key(argv[0], &old);
    sql_to_value(argv[3], &v);
    int replace = sqlite3_vtab_on_conflict(t->db) == SQLITE_REPLACE;
    int orc = open_txn(t, 1);
    if (orc != SQLITE_OK) return orc;
    if (!have_new) return constraint_error(t, SQLITE_CONSTRAINT_NOTNULL, "NOT NULL");
    if (insert) return do_insert(t, &k, &v, replace);
    return have_old ? do_update(t, &old, &k, &v, replace) : SQLITE_OK;
}

/* xBegin: the lock waits for the first use (open_txn). */
static int mmBegin(sqlite3_vtab *vt)
{
    mm_vtab *t = (mm_vtab *)vt;
    t->nmarks = 0;
    t->want_txn = 1;
    return SQLITE_OK;
}

static int mmSync(sqlite3_vtab *vt)
{
    (void)vt;
    return SQLITE_OK;
}

static int mmCommit(sqlite3_vtab *vt)
{
    mm_vtab *t = (mm_vtab *)vt;
    t->want_txn = 0;
    if (!mmkv_in_transaction(t->store)) return SQLITE_OK;
    int rc = mmkv_commit(t->store);
    return rc == MMKV_OK ? SQLITE_OK : mm_store_error(t, rc);
}

static int mmRollback(sqlite3_vtab *vt)
{
    mm_vtab *t = (mm_vtab *)vt;
    t->want_txn = 0;
    if (!mmkv_in_transaction(t->store)) return SQLITE_OK;
    int rc = mmkv_rollback(t->store);
    return rc == MMKV_OK ? SQLITE_OK : mm_store_error(t, rc);
}

/* xSavepoint: remembers where savepoint level n starts. */
static int mmSavepoint(sqlite3_vtab *vt, int n)
{
    mm_vtab *t = (mm_vtab *)vt;
    if (n < 0) return SQLITE_OK;
    if (n >= t->nmarks) {
        size_t *m = sqlite3_realloc64(t->marks, (size_t)(n + 1) * sizeof *m);
        if (!m) return SQLITE_NOMEM;
        for (int i = t->nmarks; i < n; i++)
            m[i] = mmkv_mark(t->store);
        t->marks = m;
    }
    t->marks[n] = mmkv_mark(t->store);
    t->nmarks = n + 1;
    return SQLITE_OK;
}

/* xRelease: forgets savepoint levels n and above. */
static int mmRelease(sqlite3_vtab *vt, int n)
{
    mm_vtab *t = (mm_vtab *)vt;
    if (n >= 0 && n < t->nmarks) t->nmarks = n;
    return SQLITE_OK;
}

/* xRollbackTo: undoes what was done since savepoint level n began.  Level
** -1 is a SAVEPOINT that opened the transaction: everything is undone and
** the transaction stays open. */
static int mmRollbackTo(sqlite3_vtab *vt, int n)
{
    mm_vtab *t = (mm_vtab *)vt;
    if (n >= t->nmarks || !mmkv_in_transaction(t->store)) return SQLITE_OK;
    int rc = mmkv_rollback_to(t->store, n < 0 ? 0 : t->marks[n]);
    t->nmarks = n < 0 ? 0 : n + 1;
    return rc == MMKV_OK ? SQLITE_OK : mm_store_error(t, rc);
}

static int mmRename(sqlite3_vtab *vt, const char *name)
{
    mm_vtab *t = (mm_vtab *)vt;
    char *copy = sqlite3_mprintf("%s", name);
    if (!copy) return SQLITE_NOMEM;
    sqlite3_free(t->table);
    t->table = copy;
    return SQLITE_OK;
}

const sqlite3_module mm_module = {
    3,            /* iVersion: savepoints and xShadowName */
    mmCreate,     /* xCreate */
    mmConnect,    /* xConnect */
    mmBestIndex,  /* xBestIndex */
    mmDisconnect, /* xDisconnect */
    mmDisconnect, /* xDestroy: detaches only; mmap_unlink removes */
    mmOpen,       /* xOpen */
    mmClose,      /* xClose */
    mmFilter,     /* xFilter */
    mmNext,       /* xNext */
    mmEof,        /* xEof */
    mmColumn,     /* xColumn */
    mmRowid,      /* xRowid: not used, the table is WITHOUT ROWID */
    mmUpdate,     /* xUpdate */
    mmBegin,      /* xBegin: the lock waits for the first use */
    mmSync,       /* xSync */
    mmCommit,     /* xCommit: publishes and releases the lock */
    mmRollback,   /* xRollback: undoes and releases the lock */
    NULL,         /* xFindFunction */
    mmRename,     /* xRename */
    mmSavepoint,  /* xSavepoint */
    mmRelease,    /* xRelease */
    mmRollbackTo, /* xRollbackTo */
    NULL,         /* xShadowName */
#if SQLITE_VERSION_NUMBER >= 3044000
    NULL, /* xIntegrity */
#endif
};
