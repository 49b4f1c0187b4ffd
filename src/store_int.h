/*
** store_int.h -- the on-mapping layout and the store's internal interfaces.
**
** Layout (all integers in the host's byte order; offsets are from the start
** of the mapping, so each process may map it at its own address):
**
**   [0, 4096)        header (struct mmkv_hdr), including the lock word
**   [4096, top)      the heap: a walkable sequence of blocks
**   [top, capacity)  never used yet
**
** Every block starts with one 64-bit word (see BLK_* below):
**   bits  0..31  size of the block in bytes (multiple of 8, at least 16)
**   bits 32..39  state (BS_*, high 4 bits) and stamp (low 4 bits)
**   bits 40..47  key type (bit 0: blob), value type (bits 1..3),
**                padding bytes at the end (bits 4..6)
**   bits 48..63  key length in bytes
** A record block holds the key bytes, then the value bytes (8 bytes for an
** integer or a real).  The index is itself a block (state BS_TABLE) of
** 64-bit slots: low 32 bits the record's offset / 8 (0 = empty), high 32
** bits the upper half of the key's hash.  A free block holds, after its
** word, the offset / 8 of the next free block of its size class.
**
** The stamp counts, modulo 16, the records laid at the block's offset: a
** lock-free reader that sees the same word before and after copying a
** record knows the block was not reused meanwhile (read.c).
**
** The heap is the truth: from the block states alone, the committed set of
** entries can always be rebuilt (recover.c).  A transaction never changes a
** live record in place; it adds NEW records and marks replaced or deleted
** ones DEAD, and its commit turns NEW into LIVE and DEAD into FREE.
*/
#ifndef MMKV_STORE_INT_H
#define MMKV_STORE_INT_H

#include "mmkv.h"
#include "os.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MMKV_MAGIC 0x70616d6d2d716c73ull /* "sql-mmap" little-endian */
#define HDR_SIZE 4096u
#define NCLASS 128 /* free lists: 0..126 exact sizes 16..1024, 127 larger */
#define SMALL_MAX 1024u
#define MIN_BLOCK 16u
#define MAX_BLOCK 0xFFFFFFF8u
#define MIN_SLOTS 64u
#define LOAD_NUM 9u /* the index grows past 9/10 full */
#define LOAD_DEN 10u
#define LOAD_FULL_PERCENT 97u /* ... or up to 97% when the heap has no room to grow it */

/* Block states. */
enum {
    BS_FREE = 0xA0,
    BS_LIVE = 0xB0,
    BS_NEW = 0xC0,
    BS_DEAD = 0xD0,
    BS_GONE = 0xE0,
    BS_TABLE = 0xF0
};
#define STAMP_MOD 16u

/* The header at offset 0.  Its first line holds what never or rarely
** changes; the second what lock-free readers check, changed only now and
** then; the third what every write changes; then the free lists and the
** lock.  Fields are read and written under the lock, except those of the
** first two lines, which lock-free readers load, and `entries`, read as a
** planner's estimate. */
struct mmkv_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_size;
    uint64_t capacity;   /* bytes of the mapping */
    uint64_t generation; /* changes when the mapping is resized (not yet) */
    uint64_t seed;       /* hash seed, random per mapping */
    uint64_t table_off;  /* offset of the index block */
    uint32_t parts;      /* format 3: the number of parts (0 in format 2) */
    uint32_t part_no;    /* format 3: which part this header heads */
    uint64_t region;     /* format 3: bytes of each part (0 in format 2) */
    /* offset 64 */
    uint64_t seq;      /* odd while the index's shape changes */
    uint64_t reshape;  /* counts merges of free blocks and recoveries */
    uint64_t epoch;    /* commits / EPOCH_COMMITS */
    uint64_t heap_top; /* end of the blocks laid so far */
    uint64_t reserved1[4];
    /* offset 128 */
    uint64_t commits;    /* number of committed write transactions */
    uint64_t entries;    /* entries reachable from the index */
    uint64_t used;       /* bytes of blocks not free, header included */
    uint64_t kv_bytes;   /* bytes of keys and values in the index */
    uint32_t dirty;      /* a writer has changed data and not yet finished */
    uint32_t committing; /* the writer has passed its commit point */
    uint32_t merged;     /* no two free blocks are neighbours (no block freed since a merge) */
    uint32_t reserved2;
    uint64_t xtxn;    /* format 3: number of the multi-part commit this part's changes belong to */
    uint64_t xcommit; /* format 3, part 0: number of the last multi-part commit that passed its point */
    /* offset 192 */
    uint32_t free_head[NCLASS];
    /* offset 704 */
    unsigned char lock[MMKV_OS_LOCK_BYTES];
};
#define EPOCH_COMMITS 8u /* STAMP_MOD / 2: see read.c */
#define MMKV_FORMAT_PARTS 3 /* the format of a mapping split into parts */
#define MAX_PARTS 64u

_Static_assert(sizeof(struct mmkv_hdr) <= HDR_SIZE, "header fits its page");
_Static_assert(offsetof(struct mmkv_hdr, seq) == 64 && offsetof(struct mmkv_hdr, commits) == 128 &&
                   offsetof(struct mmkv_hdr, free_head) == 192 &&
                   offsetof(struct mmkv_hdr, lock) == 704,
               "header layout of FORMAT.md");

/* One operation of the open transaction, for commit and rollback. */
struct txop {
    uint32_t unit; /* block offset / 8 */
    uint8_t kind;  /* OP_INS or OP_DEL */
};
enum { OP_INS = 1, OP_DEL = 2 };

/* A decoded record. */
struct rec {
    uint64_t off;  /* block offset */
    uint32_t size; /* block size */
    int state;
    mmkv_key key;   /* points into the mapping */
    mmkv_value val; /* p points into the mapping */
};

/* One change of a transaction over several parts: which part, that
** part's log length before it, and what call made it (parts.c). */
struct xop {
    uint32_t part;
    uint32_t how; /* XOP_* */
    size_t before;
};
enum { XOP_REPLACE, XOP_INSERT, XOP_DEL };

/* What a call of a deferred transaction saw of the part it holds, after
** `pos` changes of the transaction (parts.c): key absent, key present, or
** key with value val (its bytes, if any, at valat).  Keys and value bytes
** are kept in the whole's readkeys, from keyat and valat. */
struct readrec {
    size_t pos, keyat, valat;
    mmkv_value val; /* p not used */
    uint32_t keyn;
    uint8_t keytype, kind; /* READ_* */
};
enum { READ_ABSENT, READ_PRESENT, READ_VALUE };

/* A handle.  A mapping in one part is driven by one handle; a mapping split
** into parts has a handle for the whole (nparts > 1, part[] set, hdr the
** header of part 0) and one for each part, whose base, cap and hdr describe
** that part's region alone, so the store's code runs on it unchanged. */
struct mmkv {
    mmkv_os_map *os;
    unsigned char *base;
    uint64_t cap;
    struct mmkv_hdr *hdr;
    int readonly;
    int timeout_ms;
    int locked; /* this handle holds the lock */
    int in_txn; /* a write transaction is open */
    int quiet;   /* a lock-free attempt is running: errors leave no message */
    int hint_ok; /* the last locked lookup found a record, nothing changed since */
    uint64_t hint_slot;  /* its slot */
    struct rec hint_rec; /* and its record, as decoded then */
    struct txop *ops;
    size_t nops, capops;
    int nparts;              /* 1, or the number of parts of a split mapping */
    struct mmkv **part;      /* the whole's handles of its parts */
    uint64_t route_seed;     /* the whole's: part 0's seed, which picks a key's part */
    const uint64_t *xcommit; /* a part's: part 0's xcommit, NULL in format 2 */
    struct xop *xops;        /* the whole's: the changes of its open transaction */
    size_t nx, capx;
    int lazy;                /* the whole's: 1 while a deferred transaction holds at most part
                                `held`; 2 once it failed (see parts.c) */
    int held;                /* ... that part, or -1 for none yet */
    struct readrec *reads;   /* ... what its calls saw of that part, checked after a wait */
    size_t nreads, capreads;
    unsigned char *readkeys; /* ... the bytes of their keys and values */
    size_t nreadkeys, capreadkeys;
    int strict;              /* ... it saw what it cannot check key by key (its changes undone
                                by mmkv_rollback_to): the part must have no new commit at all */
    uint64_t held_commits;   /* ... that part's commit count when it was taken */
    int failed;              /* the error of a failed deferred transaction */
    char failmsg[600];       /* and its message */
    char where[4200]; /* "alpha" or the file path, for messages */
    int is_file;
    char err[4400];
};

/* Returns the end of the heap as far as any read may go: the header's
** heap_top, but never past the mapping and a multiple of 8 (the header may
** be damaged, even while this process holds the lock, or changing for a
** reader without it).  Every walk and bound uses this, never heap_top. */
static inline uint64_t heap_limit(const struct mmkv *s)
{
    uint64_t top = __atomic_load_n(&s->hdr->heap_top, __ATOMIC_RELAXED);
    return (top < s->cap ? top : s->cap) & ~(uint64_t)7;
}

/* --- block words (heap.c) --- */
uint64_t blk_word(const struct mmkv *s, uint64_t off);
void blk_set_word(struct mmkv *s, uint64_t off, uint64_t w);
static inline uint32_t w_size(uint64_t w)
{
    return (uint32_t)w;
}
static inline int w_state(uint64_t w)
{
    return (int)((w >> 32) & 0xf0);
}
static inline unsigned w_stamp(uint64_t w)
{
    return (unsigned)(w >> 32) & 0xf;
}
static inline uint64_t w_make(uint32_t size, int state, unsigned types, uint32_t klen)
{
    return (uint64_t)size | ((uint64_t)state << 32) | ((uint64_t)types << 40) |
           ((uint64_t)klen << 48);
}
void blk_set_state(struct mmkv *s, uint64_t off, int state);

/* Returns non-zero if the decoded record r has key k. */
static inline int rec_has_key(const struct rec *r, const mmkv_key *k)
{
    return r->key.type == k->type && r->key.n == k->n &&
           (k->n == 0 || memcmp(r->key.p, k->p, k->n) == 0);
}

/* --- the heap allocator (heap.c) --- */
int heap_alloc(struct mmkv *s, uint32_t size, uint64_t *off);
int heap_free(struct mmkv *s, uint64_t off);
int heap_coalesce(struct mmkv *s);
void store_warm(struct mmkv *s, uint64_t h, uint32_t size);
int rec_decode(struct mmkv *s, uint64_t off, struct rec *r);
int rec_decode_word(struct mmkv *s, uint64_t off, uint64_t w, struct rec *r);
uint32_t rec_size(const mmkv_key *k, const mmkv_value *v);
int rec_write(struct mmkv *s, const mmkv_key *k, const mmkv_value *v, uint64_t *off);

/* --- the hash index (index.c) --- */
uint64_t key_hash(uint64_t seed, const mmkv_key *k);
/* The home slot of hash half h32 in a table of n slots. */
static inline uint64_t idx_home(uint32_t h32, uint64_t n)
{
    return ((uint64_t)h32 * n) >> 32;
}
/* How far slot i is from its entry's home slot home_i. */
static inline uint64_t idx_dist(uint64_t i, uint64_t home_i, uint64_t n)
{
    return i >= home_i ? i - home_i : i + n - home_i;
}
static inline uint64_t idx_next(uint64_t i, uint64_t n)
{
    return i + 1 == n ? 0 : i + 1;
}
int index_find(struct mmkv *s, const mmkv_key *k, uint64_t h, uint64_t *slot, struct rec *r);
int index_insert(struct mmkv *s, uint64_t h, uint64_t rec_off);
int index_remove_at(struct mmkv *s, uint64_t slot);
void index_set_at(struct mmkv *s, uint64_t slot, uint64_t h, uint64_t rec_off);
int index_reserve(struct mmkv *s, uint64_t entries);
int index_table(struct mmkv *s, uint64_t **slots, uint64_t *n);
int index_create(struct mmkv *s, uint64_t n);

/* --- recovery and checks (recover.c) --- */
int store_recover(struct mmkv *s);
int store_check(struct mmkv *s, char **report);

/* --- errors (store.c) --- */
int store_err(struct mmkv *s, int rc, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int store_corrupt(struct mmkv *s, const char *what);
void store_mark_clean(struct mmkv_hdr *h);
void store_publish(struct mmkv *s);
void store_count_commit(struct mmkv_hdr *h);

/* --- one part's operations (txn.c, read.c, store.c), which parts.c runs
** on a whole mapping in format 2 or on each part of a split one --- */
int part_begin(struct mmkv *s);
int part_commit(struct mmkv *s);
int part_rollback(struct mmkv *s);
int part_rollback_to(struct mmkv *s, size_t mark);
int part_get_at(struct mmkv *s, const mmkv_key *k, mmkv_value *v, void **buf, size_t *bufsz,
                size_t at);
int part_put(struct mmkv *s, const mmkv_key *k, const mmkv_value *v, int flags);
int part_del(struct mmkv *s, const mmkv_key *k);
int part_scan(struct mmkv *s, mmkv_scan_fn fn, void *ctx);
int part_stat(struct mmkv *s, mmkv_stats *st);
int part_check(struct mmkv *s, char **report);

/* The steps of a commit across parts, for tests that stop a process at one
** of them (parts.c); NULL outside such tests. */
extern void (*store_commit_hook)(int step);
enum { XSTEP_MARKED = 1, XSTEP_POINT = 2, XSTEP_PART = 3 /* + the part's number, after its commit */ };

/* --- laying out and attaching stores (store.c, parts.c) --- */
int store_init(struct mmkv *s, uint32_t parts, uint32_t part_no, uint64_t region);
int store_check_header(struct mmkv *s);
int parts_create(struct mmkv *s, unsigned parts);
int parts_attach(struct mmkv *s, int sole);
void parts_free(struct mmkv *s);

/* --- the lock (store.c) and size limits (txn.c) --- */
int store_lock(struct mmkv *s);
void store_unlock(struct mmkv *s);
int store_check_sizes(struct mmkv *s, const mmkv_key *k, const mmkv_value *v);

#endif
