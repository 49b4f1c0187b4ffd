/*
** fuzz_mapping.c -- a libFuzzer target that lays hostile bytes in a mapping.
**
** The input is a recipe (all numbers little-endian):
**
**   byte 0         setup: bits 0-2 template (mod 6), bits 3-4 open mode
**                  (create, create, open, readonly), bits 5-7 all set: the
**                  file is cut 8 bytes short of 64K
**   then commands, each an opcode byte (mod 20) and its operands:
**     0 PATCH off16 len8 bytes   write len%32+1 bytes at off
**     1 FIELD idx8 u64           write a header field (idx 0-11) or a
**                                free-list head (idx 12-255, 32 bits)
**     2,3 PUT key value flags8   4 DEL key      5,6 GET key     7 SCAN
**     8 BEGIN  9 COMMIT  10 ROLLBACK  11 MARK  12 ROLLBACK_TO idx8
**     13 CHECK  14 STAT  15 REOPEN
**     16 H2_GET key  17 H2_PUT key value flags8  18 H2_SCAN  19 H2_CHECK
**   key:   one byte; bit 7 blob, bit 6 long (100-2400 bytes), bits 0-5 id
**          (id 63: the empty key)
**   value: type8 (mod 5: NULL, INT, REAL, TEXT, BLOB); INT and REAL: u64;
**          TEXT and BLOB: len8 (0-199 bytes, or (len-199)*450) and fill8
**
** Templates are file-backed stores made through mmkv_open: 0 empty,
** 1 filled, 2 filled with free blocks, 3 caught in the middle of a
** transaction (recovery rolls it back), 4 the same at its commit point
** (recovery finishes it), 5 full and 68K.  Each run writes one to the file.
** Patches before the first other command change the file before the store
** opens it; later ones change the live mapping under the open handle (a
** stray writer), except the lock word.  H2_ commands use a second handle on
** the same file; REOPEN closes and opens the first.
**
** Nothing may crash, hang or trip ASan/UBSan, and every result code must be
** one that mmkv.h documents.  While no byte has been patched the store must
** also be right: a model of the fuzzer's keys checks every PUT, DEL, GET,
** SCAN, STAT, transaction, savepoint and second-handle read, and
** mmkv_check must say "ok".  Any disagreement aborts (a finding).
**
** Each mapping gets a PROT_NONE guard page on either side (the linker
** option --wrap=mmap, see tests/diff.cmake), so a read past it faults.
**
** Built two ways (tests/diff.cmake): with clang -fsanitize=fuzzer as the
** fuzzer (tests/fuzz.sh runs it), and with FUZZ_REPLAY_MAIN as a plain
** program that runs every file, or every file of a directory, named on its
** command line once (CTest replays tests/fuzz_corpus/ that way).  With
** FUZZ_TRACE=1 in the environment each command and its result is printed.
*/
#define _GNU_SOURCE
#include "store_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAP_BYTES (64u * 1024)
#define BIG_BYTES (68u * 1024)
#define NKEYS 256    /* key codes: one byte */
#define NMARKS 8     /* savepoint marks kept by the model */
#define NTEMPLATES 6 /* prepared images */

/* Stops the run: the store did something it must not. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_mapping: %s:%d: requirement failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* With FUZZ_TRACE set in the environment, each command is printed. */
static int tracing;

static void trace(const char *fmt, ...)
{
    if (!tracing) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* Guard pages around the mapping (with -Wl,--wrap=mmap,--wrap=munmap) */

#ifdef FUZZ_GUARD_MMAP
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);

#define GUARD 4096u
static struct {
    char *user;
    size_t span;
} guarded[16];

/* Maps a file between two inaccessible pages, so that an access just
** outside it faults at once instead of touching a neighbouring mapping. */
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (addr || fd < 0) return __real_mmap(addr, len, prot, flags, fd, off);
    size_t span = ((len + GUARD - 1) & ~(size_t)(GUARD - 1)) + 2 * GUARD;
    char *r = __real_mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) return r;
    void *p = __real_mmap(r + GUARD, len, prot, flags | MAP_FIXED, fd, off);
    if (p == MAP_FAILED) {
        __real_munmap(r, span);
        return p;
    }
    for (int i = 0; i < 16; i++)
        if (!guarded[i].user) {
            guarded[i].user = p;
            guarded[i].span = span;
            break;
        }
    return p;
}

/* Unmaps a mapping made by __wrap_mmap together with its guard pages. */
int __wrap_munmap(void *addr, size_t len)
{
    for (int i = 0; i < 16; i++)
        if (guarded[i].user == addr) {
            guarded[i].user = NULL;
            return __real_munmap((char *)addr - GUARD, guarded[i].span);
        }
    return __real_munmap(addr, len);
}
#endif

/* ------------------------------------------------------------------ */
/* Reading the recipe                                                   */

typedef struct reader {
    const uint8_t *p;
    size_t n, at;
} reader;

/* Returns the next byte, or 0 past the end. */
static unsigned get8(reader *in)
{
    return in->at < in->n ? in->p[in->at++] : 0;
}

static unsigned get16(reader *in)
{
    unsigned lo = get8(in);
    return lo | get8(in) << 8;
}

static uint64_t get64(reader *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)get8(in) << (8 * i);
    return v;
}

/* ------------------------------------------------------------------ */
/* Keys and values of the recipe, and the model of what the store holds */

/* A value as the model keeps it: TEXT and BLOB are n copies of `fill`. */
typedef struct mval {
    int present;
    int type;
    uint64_t bits; /* the integer, or the real's bits */
    uint32_t n;
    uint8_t fill;
} mval;

static unsigned char key_buf[4096];
static unsigned char val_buf[32768];

/* Builds the key of code c: "fNN" (or a blob), a long key, or the empty one. */
static mmkv_key make_key(unsigned c)
{
    mmkv_key k = {c & 0x80 ? MMKV_BLOB : MMKV_TEXT, key_buf, 0};
    unsigned id = c & 0x3f;
    if (id == 0x3f) return k; /* the empty key */
    if (c & 0x40) {
        k.n = 100 + id * 37;
        memset(key_buf, 'a' + id % 26, k.n);
        key_buf[0] = 'F';
    } else {
        k.n = (uint32_t)snprintf((char *)key_buf, sizeof key_buf, "f%02u", id);
    }
    return k;
}

/* Reads a key code from the recipe (the two codes of each empty key made
** one) and returns its key. */
static mmkv_key read_key(reader *in, unsigned *code)
{
    unsigned c = get8(in);
    if ((c & 0x3f) == 0x3f) c &= ~0x40u;
    *code = c;
    return make_key(c);
}

/* Reads a value from the recipe into *v (bytes in val_buf) and *m. */
static void read_value(reader *in, mmkv_value *v, mval *m)
{
    memset(v, 0, sizeof *v);
    memset(m, 0, sizeof *m);
    m->present = 1;
    m->type = v->type = (int)(get8(in) % 5);
    if (v->type == MMKV_INT || v->type == MMKV_REAL) {
        m->bits = get64(in);
        memcpy(v->type == MMKV_INT ? (void *)&v->i : (void *)&v->r, &m->bits, 8);
    } else if (v->type != MMKV_NULL) {
        unsigned l = get8(in);
        m->n = v->n = l < 200 ? l : (l - 199) * 450;
        m->fill = (uint8_t)get8(in);
        memset(val_buf, m->fill, v->n);
        v->p = val_buf;
    }
}

/* Returns non-zero if the store's value v is the model's m. */
static int same_value(const mmkv_value *v, const mval *m)
{
    if (v->type != m->type) return 0;
    if (v->type == MMKV_INT || v->type == MMKV_REAL) {
        uint64_t bits;
        memcpy(&bits, v->type == MMKV_INT ? (const void *)&v->i : (const void *)&v->r, 8);
        return bits == m->bits;
    }
    if (v->type == MMKV_NULL) return 1;
    if (v->n != m->n) return 0;
    for (uint32_t i = 0; i < v->n; i++)
        if (((const uint8_t *)v->p)[i] != m->fill) return 0;
    return 1;
}

/* Returns the key code of a key made by make_key, or -1 for another key
** (a template's). */
static int key_code(const mmkv_key *k)
{
    int blob = k->type == MMKV_BLOB ? 0x80 : 0;
    const char *p = k->p;
    if (k->n == 0) return blob | 0x3f;
    if (k->n == 3 && p[0] == 'f' && p[1] >= '0' && p[1] <= '6' && p[2] >= '0' && p[2] <= '9' &&
        (p[1] - '0') * 10 + (p[2] - '0') < 0x3f)
        return blob | ((p[1] - '0') * 10 + (p[2] - '0'));
    if (k->n >= 100 && p[0] == 'F' && (k->n - 100) % 37 == 0)
        return blob | 0x40 | (k->n - 100) / 37;
    return -1;
}

/* ------------------------------------------------------------------ */
/* Templates: prepared mapping images                                   */

typedef struct image {
    unsigned char *bytes;
    size_t size;
    uint64_t entries; /* committed entries once opened (and recovered) */
} image;

static char file_path[256], dir_path[64];
static int file_fd = -1;
static image templates[NTEMPLATES];

/* Opens the fuzz file as a store of `size` bytes with the given mode. */
static int open_store(mmkv **out, int mode, uint64_t size)
{
    mmkv_options o = mmkv_default_options();
    o.file = file_path;
    o.size = size;
    o.mode = mode;
    o.timeout_ms = 0;
    char *msg = NULL;
    int rc = mmkv_open(&o, out, &msg);
    free(msg);
    return rc;
}

/* Puts template entry i (key "tNNN", values of every type). */
static int put_template_entry(mmkv *s, unsigned i, unsigned len)
{
    char key[16];
    snprintf(key, sizeof key, "t%03u", i);
    mmkv_key k = mmkv_text_key(key);
    mmkv_value v = {(int)(i % 5), (int64_t)i * 1000003, i / 7.0, val_buf, len};
    memset(val_buf, 'v', len);
    return mmkv_put(s, &k, &v, MMKV_PUT_REPLACE);
}

/* Deletes template entry i. */
static void del_template_entry(mmkv *s, unsigned i)
{
    char key[16];
    snprintf(key, sizeof key, "t%03u", i);
    mmkv_key k = mmkv_text_key(key);
    mmkv_del(s, &k);
}

/* Copies the mapping of s into template t. */
static void snapshot(mmkv *s, image *t)
{
    mmkv_stats st;
    t->size = (size_t)s->cap;
    t->bytes = malloc(t->size);
    REQUIRE(t->bytes);
    memcpy(t->bytes, s->base, t->size);
    REQUIRE(mmkv_stat(s, &st) == MMKV_OK);
    t->entries = st.entries;
}

/* Starts a fresh store file of `size` bytes and opens it. */
static mmkv *fresh_store(uint64_t size)
{
    mmkv *s = NULL;
    unlink(file_path);
    REQUIRE(open_store(&s, MMKV_MODE_NEW, size) == MMKV_OK);
    return s;
}

/* Fills a store with entries, replacing and deleting some for free blocks. */
static void fill_store(mmkv *s, unsigned n, int churn)
{
    for (unsigned i = 0; i < n; i++)
        REQUIRE(put_template_entry(s, i, (i * 37) % 300) == MMKV_OK);
    for (unsigned i = 0; churn && i < n; i += 3) {
        put_template_entry(s, i, (i * 53) % 700);
        if (i % 2) del_template_entry(s, i);
    }
}

/* Makes the six templates (see the top of the file). */
static void make_templates(void)
{
    mmkv *s = fresh_store(MAP_BYTES);
    snapshot(s, &templates[0]); /* empty */
    fill_store(s, 40, 0);
    snapshot(s, &templates[1]); /* filled */
    fill_store(s, 60, 1);
    snapshot(s, &templates[2]); /* filled, with free blocks */
    uint64_t before = templates[2].entries;
    REQUIRE(mmkv_begin(s) == MMKV_OK);
    for (unsigned i = 0; i < 60; i += 4)
        put_template_entry(s, i, 40 + i);
    for (unsigned i = 1; i < 60; i += 9)
        del_template_entry(s, i);
    for (unsigned i = 60; i < 70; i++)
        put_template_entry(s, i, 10);
    snapshot(s, &templates[4]); /* at the commit point (committing set below) */
    snapshot(s, &templates[3]); /* in the middle of a transaction: rolled back */
    templates[3].entries = before;
    ((struct mmkv_hdr *)(void *)templates[4].bytes)->committing = 1;
    mmkv_rollback(s);
    mmkv_close(s);
    s = fresh_store(BIG_BYTES);
    for (unsigned i = 0; put_template_entry(s, i, 900) == MMKV_OK; i++)
        ;
    snapshot(s, &templates[5]); /* full, and 68K */
    mmkv_close(s);
}

/* Removes the fuzz file and its directory. */
static void cleanup(void)
{
    if (file_fd >= 0) close(file_fd);
    unlink(file_path);
    rmdir(dir_path);
}

/* Makes the temporary directory, the file and the templates, once. */
static void setup_once(void)
{
    if (file_fd >= 0) return;
    tracing = getenv("FUZZ_TRACE") != NULL;
    snprintf(dir_path, sizeof dir_path, "/tmp/fuzz_mapping.XXXXXX");
    REQUIRE(mkdtemp(dir_path) != NULL);
    snprintf(file_path, sizeof file_path, "%s/map", dir_path);
    make_templates();
    file_fd = open(file_path, O_RDWR | O_CLOEXEC);
    REQUIRE(file_fd >= 0);
    atexit(cleanup);
}

/* ------------------------------------------------------------------ */
/* One run                                                              */

/* The state of one run: handles, patch bytes, and the model. */
typedef struct run {
    mmkv *s, *s2; /* the handle, and a second one on the same file */
    int mode;     /* the handle's open mode */
    int opened;   /* the first command other than a patch has come */
    int trusted;  /* nothing was patched: the model must hold */
    unsigned char image[BIG_BYTES];
    size_t size;
    uint64_t base_entries; /* the template's entries */
    mval cur[NKEYS];       /* the fuzzer's keys as the handle sees them */
    mval committed[NKEYS]; /* ... as committed */
    size_t marks[NMARKS];
    mval *mark_state[NMARKS];
    int nmarks;
    mmkv_value v;
    void *buf;
    size_t bufsz;
} run;

/* The result codes mmkv.h documents. */
static int valid_rc(int rc)
{
    return rc >= MMKV_OK && rc <= MMKV_IOERR;
}

/* Returns the model's count of present keys in m. */
static uint64_t model_count(const mval *m)
{
    uint64_t n = 0;
    for (int i = 0; i < NKEYS; i++)
        n += m[i].present != 0;
    return n;
}

/* Forgets the savepoint marks. */
static void drop_marks(run *r, int keep)
{
    while (r->nmarks > keep)
        free(r->mark_state[--r->nmarks]);
}

/* The transaction ended: committed (cur becomes committed) or not. */
static void model_end(run *r, int commit)
{
    if (commit)
        memcpy(r->committed, r->cur, sizeof r->cur);
    else
        memcpy(r->cur, r->committed, sizeof r->cur);
    drop_marks(r, 0);
}

/* Writes the template and the pre-open patches to the file.  (Sized, not
** truncated to 0 first: on ext4 that would make close() wait for a flush.) */
static void write_file(run *r)
{
    REQUIRE(ftruncate(file_fd, (off_t)r->size) == 0);
    REQUIRE(pwrite(file_fd, r->image, r->size, 0) == (ssize_t)r->size);
}

/* Opens the handle (after the pre-open patches).  Returns its result. */
static int open_main(run *r)
{
    r->opened = 1;
    write_file(r);
    int rc = open_store(&r->s, r->mode, MAP_BYTES);
    trace("open (mode %d, %zu bytes): %s", r->mode, r->size, mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (r->trusted) REQUIRE(rc == MMKV_OK);
    return rc;
}

/* Applies a patch: to the image before opening, to the mapping after
** (skipping the lock word, which no one but the lock's code may touch). */
static void apply_patch(run *r, size_t off, const unsigned char *p, size_t n)
{
    const size_t lock = offsetof(struct mmkv_hdr, lock), lock_end = lock + MMKV_OS_LOCK_BYTES;
    r->trusted = 0;
    for (size_t i = 0; i < n && off + i < r->size; i++) {
        size_t at = off + i;
        if (!r->opened)
            r->image[at] = p[i];
        else if (r->s && (at < lock || at >= lock_end))
            r->s->base[at] = p[i];
    }
}

/* PATCH off16 len bytes. */
static void cmd_patch(run *r, reader *in)
{
    unsigned char bytes[32];
    size_t off = get16(in), n = get8(in) % 32 + 1;
    for (size_t i = 0; i < n; i++)
        bytes[i] = (unsigned char)get8(in);
    trace("patch %zu bytes at %zu%s", n, off, r->opened ? " (live)" : "");
    apply_patch(r, off, bytes, n);
}

/* FIELD idx u64: one header field (or a free-list head). */
static void cmd_field(run *r, reader *in)
{
    static const size_t fields[] = {
        offsetof(struct mmkv_hdr, version),   offsetof(struct mmkv_hdr, capacity),
        offsetof(struct mmkv_hdr, seed),      offsetof(struct mmkv_hdr, heap_top),
        offsetof(struct mmkv_hdr, table_off), offsetof(struct mmkv_hdr, entries),
        offsetof(struct mmkv_hdr, used),      offsetof(struct mmkv_hdr, kv_bytes),
        offsetof(struct mmkv_hdr, dirty),     offsetof(struct mmkv_hdr, committing),
        offsetof(struct mmkv_hdr, seq),       offsetof(struct mmkv_hdr, hdr_size)};
    unsigned idx = get8(in);
    uint64_t v = get64(in);
    size_t nf = sizeof fields / sizeof fields[0];
    size_t off = idx < nf ? fields[idx] : offsetof(struct mmkv_hdr, free_head) + 4 * (idx % NCLASS);
    trace("field at %zu = %llx%s", off, (unsigned long long)v, r->opened ? " (live)" : "");
    apply_patch(r, off, (const unsigned char *)&v, idx < nf ? 8 : 4);
}

/* PUT key value flags, on handle s (second: s2, autocommit only). */
static void cmd_put(run *r, reader *in, int second)
{
    unsigned c;
    mmkv_key k = read_key(in, &c);
    mval m;
    read_value(in, &r->v, &m);
    int flags = get8(in) & 1;
    mmkv *h = second ? r->s2 : r->s;
    if (!h) return;
    int rc = mmkv_put(h, &k, &r->v, flags);
    trace("%sput %02x type %d n %u flags %d: %s", second ? "h2 " : "", c, r->v.type, r->v.n, flags,
          mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (!r->trusted) return;
    int busy = second && r->s && mmkv_in_transaction(r->s);
    mval *view = second ? r->committed : r->cur;
    if (busy) {
        REQUIRE(rc == MMKV_BUSY);
    } else if (!second && r->mode == MMKV_MODE_READONLY) {
        REQUIRE(rc == MMKV_READONLY);
    } else if (view[c].present && flags == MMKV_PUT_INSERT) {
        REQUIRE(rc == MMKV_EXISTS);
    } else {
        REQUIRE(rc == MMKV_OK || rc == MMKV_FULL);
        if (rc == MMKV_OK) view[c] = m;
        if (rc == MMKV_OK && second) r->cur[c] = m;
        if (rc == MMKV_OK && !mmkv_in_transaction(h)) r->committed[c] = m;
    }
}

/* DEL key. */
static void cmd_del(run *r, reader *in)
{
    unsigned c;
    mmkv_key k = read_key(in, &c);
    if (!r->s) return;
    int rc = mmkv_del(r->s, &k);
    trace("del %02x: %s", c, mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (!r->trusted) return;
    if (r->mode == MMKV_MODE_READONLY) {
        REQUIRE(rc == MMKV_READONLY);
        return;
    }
    REQUIRE(rc == (r->cur[c].present ? MMKV_OK : MMKV_NOTFOUND));
    r->cur[c].present = 0;
    if (!mmkv_in_transaction(r->s)) r->committed[c].present = 0;
}

/* GET key, on s or on the second handle (which sees only committed data). */
static void cmd_get(run *r, reader *in, int second)
{
    unsigned c;
    mmkv_key k = read_key(in, &c);
    mmkv *h = second ? r->s2 : r->s;
    if (!h) return;
    int rc = mmkv_get(h, &k, &r->v, &r->buf, &r->bufsz);
    trace("%sget %02x: %s", second ? "h2 " : "", c, mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (rc == MMKV_OK) REQUIRE(r->v.type >= MMKV_NULL && r->v.type <= MMKV_BLOB);
    if (!r->trusted) return;
    const mval *m = second ? &r->committed[c] : &r->cur[c];
    if (second && rc == MMKV_BUSY) {
        REQUIRE(r->s && mmkv_in_transaction(r->s));
        return;
    }
    REQUIRE(rc == (m->present ? MMKV_OK : MMKV_NOTFOUND));
    if (rc == MMKV_OK) REQUIRE(same_value(&r->v, m));
}

/* What a scan found. */
typedef struct tally {
    run *r;
    const mval *view;
    uint64_t fuzz, other;
} tally;

/* mmkv_scan callback: checks the fuzzer's keys against the model. */
static int scan_one(void *ctx, const mmkv_key *k, const mmkv_value *v)
{
    tally *t = ctx;
    REQUIRE(v->type >= MMKV_NULL && v->type <= MMKV_BLOB);
    REQUIRE(k->type == MMKV_TEXT || k->type == MMKV_BLOB);
    int c = key_code(k);
    if (c < 0) {
        t->other++;
        return 0;
    }
    t->fuzz++;
    if (t->r->trusted) REQUIRE(t->view[c].present && same_value(v, &t->view[c]));
    return 0;
}

/* SCAN on s or s2: every entry; the fuzzer's must be the model's. */
static void cmd_scan(run *r, int second)
{
    mmkv *h = second ? r->s2 : r->s;
    if (!h) return;
    tally t = {r, second ? r->committed : r->cur, 0, 0};
    int rc = mmkv_scan(h, scan_one, &t);
    trace("%sscan: %s, %llu keys of the fuzzer, %llu others", second ? "h2 " : "",
          mmkv_strerror(rc), (unsigned long long)t.fuzz, (unsigned long long)t.other);
    REQUIRE(valid_rc(rc));
    if (!r->trusted) return;
    if (second && r->s && mmkv_in_transaction(r->s)) {
        REQUIRE(rc == MMKV_BUSY);
        return;
    }
    REQUIRE(rc == MMKV_OK);
    REQUIRE(t.fuzz == model_count(t.view) && t.other == r->base_entries);
}

/* BEGIN, COMMIT or ROLLBACK (which = 0, 1, 2). */
static void cmd_txn(run *r, int which)
{
    if (!r->s) return;
    int was = mmkv_in_transaction(r->s), rc;
    if (which == 0)
        rc = mmkv_begin(r->s);
    else
        rc = which == 1 ? mmkv_commit(r->s) : mmkv_rollback(r->s);
    trace("%s: %s", which == 0 ? "begin" : which == 1 ? "commit" : "rollback", mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (!r->trusted) return;
    if (which == 0) {
        REQUIRE(rc == (was                             ? MMKV_INVALID
                       : r->mode == MMKV_MODE_READONLY ? MMKV_READONLY
                                                       : MMKV_OK));
        drop_marks(r, 0);
    } else {
        REQUIRE(rc == (was ? MMKV_OK : MMKV_INVALID));
        if (was) model_end(r, which == 1);
    }
}

/* MARK: remembers the transaction's progress and the model with it. */
static void cmd_mark(run *r)
{
    if (!r->s || !mmkv_in_transaction(r->s) || r->nmarks == NMARKS) return;
    mval *copy = malloc(sizeof r->cur);
    REQUIRE(copy);
    memcpy(copy, r->cur, sizeof r->cur);
    r->marks[r->nmarks] = mmkv_mark(r->s);
    trace("mark %d = %zu", r->nmarks, r->marks[r->nmarks]);
    r->mark_state[r->nmarks++] = copy;
}

/* ROLLBACK_TO idx: undoes back to a mark. */
static void cmd_rollback_to(run *r, reader *in)
{
    unsigned i = get8(in);
    if (!r->s || r->nmarks == 0) return;
    i %= (unsigned)r->nmarks;
    int rc = mmkv_rollback_to(r->s, r->marks[i]);
    trace("rollback to mark %u (%zu): %s", i, r->marks[i], mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (!r->trusted) return;
    REQUIRE(rc == MMKV_OK);
    memcpy(r->cur, r->mark_state[i], sizeof r->cur);
    drop_marks(r, (int)i + 1);
}

/* CHECK: never crashes; "ok" while nothing was patched. */
static void cmd_check(run *r, int second)
{
    char *report = NULL;
    mmkv *h = second ? r->s2 : r->s;
    if (!h) return;
    int rc = mmkv_check(h, &report);
    trace("%scheck: %s: %s", second ? "h2 " : "", mmkv_strerror(rc), report ? report : "");
    REQUIRE(valid_rc(rc));
    if (r->trusted && !(second && r->s && mmkv_in_transaction(r->s))) {
        if (rc != MMKV_OK || strcmp(report, "ok") != 0)
            fprintf(stderr, "fuzz_mapping: check says: %s\n", report ? report : "(none)");
        REQUIRE(rc == MMKV_OK && strcmp(report, "ok") == 0);
    }
    free(report);
}

/* STAT: the entry count is the template's plus the model's. */
static void cmd_stat(run *r)
{
    mmkv_stats st;
    if (!r->s) return;
    int rc = mmkv_stat(r->s, &st);
    trace("stat: %s, %llu entries", mmkv_strerror(rc), (unsigned long long)st.entries);
    REQUIRE(valid_rc(rc));
    (void)mmkv_estimate(r->s);
    (void)mmkv_location(r->s, NULL);
    REQUIRE(mmkv_flush(r->s) == MMKV_OK);
    if (!r->trusted) return;
    REQUIRE(rc == MMKV_OK && st.entries == r->base_entries + model_count(r->cur));
    REQUIRE(st.capacity == r->size && st.used <= st.capacity);
}

/* REOPEN: closes the handle (an open transaction rolls back) and opens it
** again. */
static void cmd_reopen(run *r)
{
    if (!r->s) return;
    if (mmkv_in_transaction(r->s)) model_end(r, 0);
    mmkv_close(r->s);
    r->s = NULL;
    int rc = open_store(&r->s, r->mode, MAP_BYTES);
    trace("reopen: %s", mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (r->trusted) REQUIRE(rc == MMKV_OK);
}

/* Opens the second handle on first use. */
static void need_second(run *r)
{
    if (r->s2 || !r->s) return;
    int rc = open_store(&r->s2, MMKV_MODE_OPEN, MAP_BYTES);
    trace("h2 open: %s", mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
}

/* The opcodes (see the top of the file). */
enum {
    CMD_PATCH,
    CMD_FIELD,
    CMD_PUT,
    CMD_PUT_TOO,
    CMD_DEL,
    CMD_GET,
    CMD_GET_TOO,
    CMD_SCAN,
    CMD_BEGIN,
    CMD_COMMIT,
    CMD_ROLLBACK,
    CMD_MARK,
    CMD_ROLLBACK_TO,
    CMD_CHECK,
    CMD_STAT,
    CMD_REOPEN,
    CMD_H2_GET,
    CMD_H2_PUT,
    CMD_H2_SCAN,
    CMD_H2_CHECK,
    NCMDS
};

/* Runs one command of the recipe. */
static void run_command(run *r, reader *in)
{
    unsigned op = get8(in) % NCMDS;
    if (op > CMD_FIELD && !r->opened) open_main(r);
    if (op >= CMD_H2_GET) need_second(r);
    if (op == CMD_PATCH) cmd_patch(r, in);
    if (op == CMD_FIELD) cmd_field(r, in);
    if (op == CMD_PUT || op == CMD_PUT_TOO) cmd_put(r, in, 0);
    if (op == CMD_DEL) cmd_del(r, in);
    if (op == CMD_GET || op == CMD_GET_TOO) cmd_get(r, in, 0);
    if (op == CMD_SCAN) cmd_scan(r, 0);
    if (op == CMD_BEGIN || op == CMD_COMMIT || op == CMD_ROLLBACK)
        cmd_txn(r, (int)(op - CMD_BEGIN));
    if (op == CMD_MARK) cmd_mark(r);
    if (op == CMD_ROLLBACK_TO) cmd_rollback_to(r, in);
    if (op == CMD_CHECK) cmd_check(r, 0);
    if (op == CMD_STAT) cmd_stat(r);
    if (op == CMD_REOPEN) cmd_reopen(r);
    if (op == CMD_H2_GET) cmd_get(r, in, 1);
    if (op == CMD_H2_PUT) cmd_put(r, in, 1);
    if (op == CMD_H2_SCAN) cmd_scan(r, 1);
    if (op == CMD_H2_CHECK) cmd_check(r, 1);
}

/* Sets the run up from the first byte: template, file size, open mode. */
static void start_run(run *r, unsigned setup)
{
    static const int modes[] = {MMKV_MODE_CREATE, MMKV_MODE_CREATE, MMKV_MODE_OPEN,
                                MMKV_MODE_READONLY};
    const image *t = &templates[setup % NTEMPLATES];
    r->mode = modes[(setup >> 3) & 3];
    r->trusted = 1;
    r->size = t->size;
    r->base_entries = t->entries;
    memcpy(r->image, t->bytes, t->size);
    if ((setup >> 5) == 7) {
        r->size = MAP_BYTES - 8; /* too short to be a mapping */
        r->trusted = 0;
    }
}

/* Ends a run: a last check and close. */
static void finish_run(run *r)
{
    if (!r->opened) open_main(r);
    cmd_check(r, 0);
    mmkv_close(r->s2);
    mmkv_close(r->s);
    drop_marks(r, 0);
    free(r->buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static run r;
    reader in = {data, size, 0};
    setup_once();
    memset(&r, 0, sizeof r);
    unsigned setup = get8(&in);
    start_run(&r, setup);
    trace("-- template %u, mode %d, %zu bytes", setup % NTEMPLATES, r.mode, r.size);
    while (in.at < in.n)
        run_command(&r, &in);
    finish_run(&r);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The replay program (no libFuzzer): runs each file once               */

#ifdef FUZZ_REPLAY_MAIN
/* Runs the input in one file.  Returns 0, or -1 if it cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    printf("%s\n", path); /* so that a crash names its input */
    fflush(stdout);
    static uint8_t data[1 << 20];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    LLVMFuzzerTestOneInput(data, n);
    return 0;
}

/* Runs every file of a directory (or the file itself).  Returns the
** number of inputs run, or -1. */
static int replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) return replay_file(path) == 0 ? 1 : -1;
    DIR *d = opendir(path);
    if (!d) return -1;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char sub[4096];
        if (e->d_name[0] == '.') continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (replay_file(sub) == 0) count++;
    }
    closedir(d);
    return count;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int n = replay_path(argv[i]);
        if (n < 0) {
            fprintf(stderr, "fuzz_mapping: cannot read %s\n", argv[i]);
            return 1;
        }
        total += n;
    }
    printf("fuzz_mapping: %d inputs replayed without a finding\n", total);
    return total > 0 ? 0 : 1;
}
#endif
