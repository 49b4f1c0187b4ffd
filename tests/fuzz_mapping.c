/*
** fuzz_mapping.c -- a libFuzzer target that lays hostile bytes in a mapping.
**
** The input is a recipe (all numbers little-endian):
**
**   byte 0         setup: bits 0-2 template (0-5; 6 and 7: a split one,
**                  number 6 + 2 * (bits 5-6) + bit 0), bits 3-4 open mode
**                  (create, create, open, readonly), bits 5-7 all set: the
**                  file is cut 8 bytes short (of 64K; a split one, of its
**                  size)
**   then commands, each an opcode byte (mod 20; mod 22 on a split
**   template) and its operands:
**     0 PATCH off16 len8 bytes   write len%32+1 bytes at off (split: off24,
**                                mod the file's size)
**     1 FIELD idx8 u64           write a header field (idx 0-16) or a
**                                free-list head (idx 17-255, 32 bits);
**                                split: FIELD part8 idx8 u64, in the header
**                                of part part8 % parts
**     2,3 PUT key value flags8   4 DEL key      5,6 GET key     7 SCAN
**     8 BEGIN  9 COMMIT  10 ROLLBACK  11 MARK  12 ROLLBACK_TO idx8
**     13 CHECK  14 STAT  15 REOPEN
**     16 H2_GET key  17 H2_PUT key value flags8  18 H2_SCAN  19 H2_CHECK
**     split only: 20 DEFER (mmkv_begin_deferred)  21 HOLD part8
**   key:   one byte; bit 7 blob, bit 6 long (100-2400 bytes), bits 0-5 id
**          (id 63: the empty key)
**   value: type8 (mod 5: NULL, INT, REAL, TEXT, BLOB); INT and REAL: u64;
**          TEXT and BLOB: len8 (0-199 bytes, or (len-199)*450) and fill8
**
** Templates are file-backed stores made through mmkv_open: 0 empty,
** 1 filled, 2 filled with free blocks, 3 caught in the middle of a
** transaction (recovery rolls it back), 4 the same at its commit point
** (recovery finishes it), 5 full and 68K.  The split ones are 256K in 4
** parts of 64K: 6 empty, 7 filled with free blocks, then caught in a
** commit across parts (store_commit_hook copies the mapping) 8 before its
** commit point (rolled back), 9 at it (finished), 10 after parts 1 and 2
** committed (3 and 4 finished), 11 every part full; or in 2 parts of 128K:
** 12 filled, 13 at the commit point.  Each run writes one to the file.
** Patches before the first other command change the file before the store
** opens it; later ones change the live mapping under the open handle (a
** stray writer), except the parts' lock words.  H2_ commands use a second
** handle on the same file; REOPEN closes and opens the first.  DEFER
** begins a deferred transaction (which PUT, DEL and GET keep on the part
** of their first key, and anything else escalates); HOLD makes a third handle take part
** part8 % parts alone and keep it (a writer of that part elsewhere), or
** let it go if it holds it: deferred transactions then meet busy parts.
**
** Nothing may crash, hang or trip ASan/UBSan, and every result code must be
** one that mmkv.h documents.  While no byte has been patched the store must
** also be right: a model of the fuzzer's keys checks every PUT, DEL, GET,
** SCAN, STAT, transaction, savepoint and second-handle read, and
** mmkv_check must say "ok".  On a split mapping it also knows which parts
** the handle and the third one hold (mmkv.h's rules for transactions,
** deferred ones and busy parts), so it predicts each MMKV_BUSY, and the
** parts the handles have locked must be those.  Any disagreement aborts
** (a finding).
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
#define SPLIT_BYTES (256u * 1024) /* the split templates */
#define NKEYS 256                 /* key codes: one byte */
#define NMARKS 8                  /* savepoint marks kept by the model */
#define NPLAIN 6                  /* templates in one part */
#define NTEMPLATES 14             /* prepared images: NPLAIN, then the split ones */

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

static unsigned get24(reader *in)
{
    unsigned lo = get16(in);
    return lo | get8(in) << 16;
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
    unsigned parts;   /* 1, or the parts of a split template */
    size_t region;    /* bytes of each part */
} image;

static char file_path[256], dir_path[64];
static int file_fd = -1;
static image templates[NTEMPLATES];

/* Opens the fuzz file as a store of `size` bytes in `parts` parts (both
** only used when it is created) with the given mode. */
static int open_store(mmkv **out, int mode, uint64_t size, unsigned parts)
{
    mmkv_options o = mmkv_default_options();
    o.file = file_path;
    o.size = size;
    o.mode = mode;
    o.timeout_ms = 0;
    o.parts = parts;
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

/* Returns the committed entries of s. */
static uint64_t entries_of(mmkv *s)
{
    mmkv_stats st;
    REQUIRE(mmkv_stat(s, &st) == MMKV_OK);
    return st.entries;
}

/* Copies the mapping of s and its geometry into template t (not its
** entries, which the caller sets). */
static void copy_mapping(mmkv *s, image *t)
{
    t->size = (size_t)s->cap;
    t->bytes = malloc(t->size);
    REQUIRE(t->bytes);
    memcpy(t->bytes, s->base, t->size);
    t->parts = (unsigned)s->nparts;
    t->region = s->nparts > 1 ? (size_t)s->part[0]->cap : t->size;
}

/* Copies the mapping of s into template t. */
static void snapshot(mmkv *s, image *t)
{
    copy_mapping(s, t);
    t->entries = entries_of(s);
}

/* Starts a fresh store file of `size` bytes in `parts` parts and opens it.
** Its parts' hash seeds, random when made, are set to fixed ones while the
** store is empty (and it is opened again to route by them), so that a
** recipe does the same in every process: which part a key lives in, where
** its slot is. */
static mmkv *fresh_store(uint64_t size, unsigned parts)
{
    mmkv *s = NULL;
    unlink(file_path);
    REQUIRE(open_store(&s, MMKV_MODE_NEW, size, parts) == MMKV_OK);
    for (int i = 0; i < s->nparts; i++)
        (s->nparts > 1 ? s->part[i] : s)->hdr->seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    mmkv_close(s);
    REQUIRE(open_store(&s, MMKV_MODE_OPEN, size, parts) == MMKV_OK);
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

/* Puts entries of 900 bytes until `misses` puts in a row found no room
** (in a split store, until every part is full). */
static void fill_up(mmkv *s, unsigned misses)
{
    for (unsigned i = 0, miss = 0; miss < misses; i++)
        miss = put_template_entry(s, i, 900) == MMKV_OK ? 0 : miss + 1;
}

/* The changes of the transaction the templates are caught in: replaces,
** deletes and inserts (in every part of a split store). */
static void template_changes(mmkv *s)
{
    for (unsigned i = 0; i < 60; i += 4)
        put_template_entry(s, i, 40 + i);
    for (unsigned i = 1; i < 60; i += 9)
        del_template_entry(s, i);
    for (unsigned i = 60; i < 70; i++)
        put_template_entry(s, i, 10);
}

/* Where the commit hook copies the mapping: handle, step, template. */
static struct {
    mmkv *s;
    int step;
    image *t;
} catch_at;

/* store_commit_hook: copies the mapping at the chosen step of a commit
** across parts, the state a writer that died there leaves. */
static void catch_commit(int step)
{
    if (step == catch_at.step && !catch_at.t->bytes) copy_mapping(catch_at.s, catch_at.t);
}

/* Makes template t: a split store of `parts` parts filled, caught at step
** `step` of the commit of template_changes. */
static void make_caught(image *t, unsigned parts, int step)
{
    mmkv *s = fresh_store(SPLIT_BYTES, parts);
    fill_store(s, 60, 1);
    uint64_t before = entries_of(s);
    REQUIRE(mmkv_begin(s) == MMKV_OK);
    template_changes(s);
    catch_at.s = s;
    catch_at.step = step;
    catch_at.t = t;
    store_commit_hook = catch_commit;
    REQUIRE(mmkv_commit(s) == MMKV_OK);
    store_commit_hook = NULL;
    REQUIRE(t->bytes != NULL); /* the commit went through the step */
    t->entries = step < XSTEP_POINT ? before : entries_of(s);
    mmkv_close(s);
}

/* Makes the split templates 6-13 (see the top of the file). */
static void make_split_templates(void)
{
    mmkv *s = fresh_store(SPLIT_BYTES, 4);
    snapshot(s, &templates[6]); /* empty */
    fill_store(s, 60, 1);
    snapshot(s, &templates[7]); /* filled, with free blocks */
    mmkv_close(s);
    make_caught(&templates[8], 4, XSTEP_MARKED); /* before the commit point */
    make_caught(&templates[9], 4, XSTEP_POINT);
    make_caught(&templates[10], 4, XSTEP_PART + 1); /* parts 0 and 1 done */
    s = fresh_store(SPLIT_BYTES, 4);
    fill_up(s, 32);
    snapshot(s, &templates[11]); /* every part full */
    mmkv_close(s);
    s = fresh_store(SPLIT_BYTES, 2);
    fill_store(s, 40, 0);
    snapshot(s, &templates[12]); /* 2 parts, filled */
    mmkv_close(s);
    make_caught(&templates[13], 2, XSTEP_POINT);
}

/* Makes the templates (see the top of the file). */
static void make_templates(void)
{
    mmkv *s = fresh_store(MAP_BYTES, 1);
    snapshot(s, &templates[0]); /* empty */
    fill_store(s, 40, 0);
    snapshot(s, &templates[1]); /* filled */
    fill_store(s, 60, 1);
    snapshot(s, &templates[2]); /* filled, with free blocks */
    uint64_t before = templates[2].entries;
    REQUIRE(mmkv_begin(s) == MMKV_OK);
    template_changes(s);
    snapshot(s, &templates[4]); /* at the commit point (committing set below) */
    snapshot(s, &templates[3]); /* in the middle of a transaction: rolled back */
    templates[3].entries = before;
    ((struct mmkv_hdr *)(void *)templates[4].bytes)->committing = 1;
    mmkv_rollback(s);
    mmkv_close(s);
    s = fresh_store(BIG_BYTES, 1);
    for (unsigned i = 0; put_template_entry(s, i, 900) == MMKV_OK; i++)
        ;
    snapshot(s, &templates[5]); /* full, and 68K */
    mmkv_close(s);
    make_split_templates();
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
    mmkv *s3;     /* a third one, that only holds parts (HOLD) */
    int mode;     /* the handle's open mode */
    int opened;   /* the first command other than a patch has come */
    int trusted;  /* nothing was patched: the model must hold */
    int split;    /* a split template: the longer recipe */
    unsigned char image[SPLIT_BYTES];
    size_t size;
    unsigned parts; /* the template's parts and their size */
    size_t region;
    uint64_t holds;        /* parts (bit i: part i) the handle holds, as the model says */
    uint64_t held3;        /* parts the third handle holds */
    int read;              /* the deferred transaction read the one part it holds */
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

/* The parts of the handle's mapping, as bits. */
static uint64_t all_parts(const run *r)
{
    int n = r->s ? r->s->nparts : 1;
    return n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
}

/* The bit of the part that holds key k in the handle's mapping (parts.c
** routes a key by the low 32 bits of its hash with part 0's seed). */
static uint64_t part_bit(const run *r, const mmkv_key *k)
{
    if (!r->s || r->s->nparts < 2) return 1;
    uint32_t h = (uint32_t)key_hash(r->s->route_seed, k);
    return (uint64_t)1 << ((((uint64_t)h * (uint32_t)r->s->nparts) >> 32) & 63);
}

/* The number of the part of key k, for the trace. */
static int part_no(const run *r, const mmkv_key *k)
{
    return __builtin_ctzll(part_bit(r, k));
}

/* Says whether a call of the handle gets the parts it needs (`need`: a
** part's bit, or 0 for every part), by mmkv.h's rules: outside a
** transaction, a call takes them for its time; in a deferred one, a call
** on a key (need set) takes its part if the transaction holds none yet or
** holds that one, and any other call takes every part.  The only other
** holder is the third handle; a part it holds makes the call fail
** MMKV_BUSY with nothing changed (the transaction keeps what it did, and
** the part it held, except that a part with no changes in it and not read,
** held when a part below it is busy, is let go: with nothing to undo, do
** again or keep as it was read, the transaction just waits for every part
** in order).  Updates the parts the handle holds. */
static int model_takes(run *r, uint64_t need)
{
    uint64_t all = all_parts(r);
    if (!mmkv_in_transaction(r->s)) return !(r->held3 & (need ? need : all));
    if (r->holds == all) return 1;
    if (need && (r->holds == 0 || r->holds == need)) {
        if (r->held3 & need) return 0;
        r->holds = need;
        return 1;
    }
    if (r->held3) {
        uint64_t below = r->holds ? r->holds - 1 : 0; /* the bits under the one part held */
        if (r->holds && r->s->nx == 0 && !r->read && (r->held3 & below)) r->holds = 0;
        return 0;
    }
    r->holds = all;
    return 1;
}

/* A call of the handle read what the part its deferred transaction holds
** has (a get, or a put or delete that changed nothing). */
static void note_read(run *r)
{
    if (mmkv_in_transaction(r->s) && r->holds != all_parts(r)) r->read = 1;
}

/* Returns the parts handle h has locked, as bits. */
static uint64_t locked_parts(const mmkv *h)
{
    uint64_t bits = 0;
    for (int i = 0; h && h->nparts > 1 && i < h->nparts && i < 64; i++)
        bits |= (uint64_t)(h->part[i]->locked != 0) << i;
    return bits;
}

/* Checks that the handles of a split mapping hold the parts the model says
** they hold. */
static void check_holds(const run *r)
{
    if (!r->s || r->s->nparts < 2) return;
    uint64_t has = locked_parts(r->s), has3 = locked_parts(r->s3);
    if (has != r->holds || (r->s3 && has3 != r->held3))
        fprintf(stderr, "fuzz_mapping: parts locked %llx and %llx, the model says %llx and %llx\n",
                (unsigned long long)has, (unsigned long long)has3, (unsigned long long)r->holds,
                (unsigned long long)r->held3);
    REQUIRE(has == r->holds && (!r->s3 || has3 == r->held3));
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
    r->holds = 0;
    r->read = 0;
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
    int rc = open_store(&r->s, r->mode, MAP_BYTES, 0);
    trace("open (mode %d, %zu bytes): %s", r->mode, r->size, mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (r->trusted) REQUIRE(rc == MMKV_OK);
    return rc;
}

/* Says whether byte `at` of the mapping is in the lock word of a part of
** handle h, which no one but the lock's code may touch. */
static int in_lock(const mmkv *h, size_t at)
{
    for (int i = 0; h && i < h->nparts; i++) {
        size_t start = h->nparts > 1 ? (size_t)(h->part[i]->base - h->base) : 0;
        start += offsetof(struct mmkv_hdr, lock);
        if (at >= start && at < start + MMKV_OS_LOCK_BYTES) return 1;
    }
    return 0;
}

/* Applies a patch: to the image before opening, to the mapping after
** (skipping the lock words of every handle's parts). */
static void apply_patch(run *r, size_t off, const unsigned char *p, size_t n)
{
    r->trusted = 0;
    for (size_t i = 0; i < n && off + i < r->size; i++) {
        size_t at = off + i;
        if (!r->opened)
            r->image[at] = p[i];
        else if (r->s && at < r->s->cap && !in_lock(r->s, at) && !in_lock(r->s2, at) &&
                 !in_lock(r->s3, at))
            r->s->base[at] = p[i];
    }
}

/* PATCH off16 len bytes (split: off24). */
static void cmd_patch(run *r, reader *in)
{
    unsigned char bytes[32];
    size_t off = r->split ? get24(in) % r->size : get16(in), n = get8(in) % 32 + 1;
    for (size_t i = 0; i < n; i++)
        bytes[i] = (unsigned char)get8(in);
    trace("patch %zu bytes at %zu%s", n, off, r->opened ? " (live)" : "");
    apply_patch(r, off, bytes, n);
}

/* FIELD (part) idx u64: one header field (or a free-list head), of part 0
** or (split) of the part the recipe names. */
static void cmd_field(run *r, reader *in)
{
    static const struct {
        size_t off, n;
    } fields[] = {
        {offsetof(struct mmkv_hdr, version), 8},   {offsetof(struct mmkv_hdr, capacity), 8},
        {offsetof(struct mmkv_hdr, seed), 8},      {offsetof(struct mmkv_hdr, heap_top), 8},
        {offsetof(struct mmkv_hdr, table_off), 8}, {offsetof(struct mmkv_hdr, entries), 8},
        {offsetof(struct mmkv_hdr, used), 8},      {offsetof(struct mmkv_hdr, kv_bytes), 8},
        {offsetof(struct mmkv_hdr, dirty), 8},     {offsetof(struct mmkv_hdr, committing), 8},
        {offsetof(struct mmkv_hdr, seq), 8},       {offsetof(struct mmkv_hdr, hdr_size), 8},
        {offsetof(struct mmkv_hdr, parts), 4},     {offsetof(struct mmkv_hdr, part_no), 4},
        {offsetof(struct mmkv_hdr, region), 8},    {offsetof(struct mmkv_hdr, xtxn), 8},
        {offsetof(struct mmkv_hdr, xcommit), 8}};
    size_t base = r->split ? get8(in) % r->parts * r->region : 0;
    unsigned idx = get8(in);
    uint64_t v = get64(in);
    size_t nf = sizeof fields / sizeof fields[0];
    size_t off =
        idx < nf ? fields[idx].off : offsetof(struct mmkv_hdr, free_head) + 4 * (idx % NCLASS);
    trace("field at %zu = %llx%s", base + off, (unsigned long long)v, r->opened ? " (live)" : "");
    apply_patch(r, base + off, (const unsigned char *)&v, idx < nf ? fields[idx].n : 4);
}

/* The model's part of a PUT that succeeded: the views it changed.  A
** second-handle put is committed at once; the first handle's transaction,
** which did not hold the key's part, sees it too, and so do its marks. */
static void model_put(run *r, unsigned c, const mval *m, int second)
{
    if (second) {
        r->committed[c] = r->cur[c] = *m;
        for (int i = 0; i < r->nmarks; i++)
            r->mark_state[i][c] = *m;
    } else {
        r->cur[c] = *m;
        if (!mmkv_in_transaction(r->s)) r->committed[c] = *m;
    }
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
    trace("%sput %02x (part %d) type %d n %u flags %d: %s", second ? "h2 " : "", c, part_no(r, &k),
          r->v.type, r->v.n, flags, mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (!r->trusted) return;
    uint64_t part = part_bit(r, &k);
    const mval *view = second ? r->committed : r->cur;
    if (!second && r->mode == MMKV_MODE_READONLY) {
        REQUIRE(rc == MMKV_READONLY);
    } else if (second ? ((r->holds | r->held3) & part) != 0
                      : !model_takes(r, part)) {
        REQUIRE(rc == MMKV_BUSY);
    } else if (view[c].present && flags == MMKV_PUT_INSERT) {
        REQUIRE(rc == MMKV_EXISTS);
        if (!second) note_read(r);
    } else {
        REQUIRE(rc == MMKV_OK || rc == MMKV_FULL);
        if (rc == MMKV_OK) model_put(r, c, &m, second);
    }
}

/* DEL key. */
static void cmd_del(run *r, reader *in)
{
    unsigned c;
    mmkv_key k = read_key(in, &c);
    if (!r->s) return;
    int rc = mmkv_del(r->s, &k);
    trace("del %02x (part %d): %s", c, part_no(r, &k), mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (!r->trusted) return;
    if (r->mode == MMKV_MODE_READONLY) {
        REQUIRE(rc == MMKV_READONLY);
        return;
    }
    if (!model_takes(r, part_bit(r, &k))) {
        REQUIRE(rc == MMKV_BUSY);
        return;
    }
    REQUIRE(rc == (r->cur[c].present ? MMKV_OK : MMKV_NOTFOUND));
    if (rc == MMKV_NOTFOUND) note_read(r);
    r->cur[c].present = 0;
    if (!mmkv_in_transaction(r->s)) r->committed[c].present = 0;
}

/* GET key, on s or on the second handle (which sees only committed data,
** or is busy where a part is held). */
static void cmd_get(run *r, reader *in, int second)
{
    unsigned c;
    mmkv_key k = read_key(in, &c);
    mmkv *h = second ? r->s2 : r->s;
    if (!h) return;
    int rc = mmkv_get(h, &k, &r->v, &r->buf, &r->bufsz);
    trace("%sget %02x (part %d): %s", second ? "h2 " : "", c, part_no(r, &k), mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (rc == MMKV_OK) REQUIRE(r->v.type >= MMKV_NULL && r->v.type <= MMKV_BLOB);
    if (!r->trusted) return;
    const mval *m = second ? &r->committed[c] : &r->cur[c];
    if (second && rc == MMKV_BUSY) {
        REQUIRE(r->s && ((r->holds | r->held3) & part_bit(r, &k)));
        return;
    }
    if (!second && mmkv_in_transaction(h)) {
        if (!model_takes(r, part_bit(r, &k))) {
            REQUIRE(rc == MMKV_BUSY);
            return;
        }
        note_read(r);
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

/* Says whether a call that needs every part (scan, stat, check) must fail
** MMKV_BUSY: on s2, while any part is held; on s, as model_takes says. */
static int all_busy(run *r, int second)
{
    return second ? (r->holds | r->held3) != 0 : !model_takes(r, 0);
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
    if (all_busy(r, second)) {
        REQUIRE(rc == MMKV_BUSY);
        return;
    }
    REQUIRE(rc == MMKV_OK);
    REQUIRE(t.fuzz == model_count(t.view) && t.other == r->base_entries);
}

/* The transaction commands. */
enum { TXN_BEGIN, TXN_COMMIT, TXN_ROLLBACK, TXN_DEFER };

/* BEGIN, COMMIT, ROLLBACK or DEFER (mmkv_begin_deferred). */
static void cmd_txn(run *r, int which)
{
    static const char *const names[] = {"begin", "commit", "rollback", "begin deferred"};
    if (!r->s) return;
    int was = mmkv_in_transaction(r->s), rc;
    if (which == TXN_BEGIN)
        rc = mmkv_begin(r->s);
    else if (which == TXN_DEFER)
        rc = mmkv_begin_deferred(r->s);
    else
        rc = which == TXN_COMMIT ? mmkv_commit(r->s) : mmkv_rollback(r->s);
    trace("%s: %s", names[which], mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (!r->trusted) return;
    if (which == TXN_BEGIN || which == TXN_DEFER) {
        int lazy = which == TXN_DEFER && r->s->nparts > 1; /* takes no part yet */
        REQUIRE(rc == (was                             ? MMKV_INVALID
                       : r->mode == MMKV_MODE_READONLY ? MMKV_READONLY
                       : r->held3 && !lazy             ? MMKV_BUSY
                                                       : MMKV_OK));
        if (!was) drop_marks(r, 0);
        if (rc == MMKV_OK) r->holds = lazy ? 0 : all_parts(r);
        if (rc == MMKV_OK) r->read = 0;
    } else {
        REQUIRE(rc == (was ? MMKV_OK : MMKV_INVALID));
        if (was) model_end(r, which == TXN_COMMIT);
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
    /* A deferred transaction on one part that undoes changes keeps it (it
    ** can no longer check what they saw, key by key, after letting go). */
    int undoes = mmkv_in_transaction(r->s) && r->holds != all_parts(r) && r->s->nx > r->marks[i];
    int rc = mmkv_rollback_to(r->s, r->marks[i]);
    trace("rollback to mark %u (%zu): %s", i, r->marks[i], mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (!r->trusted) return;
    REQUIRE(rc == MMKV_OK);
    if (undoes) r->read = 1;
    memcpy(r->cur, r->mark_state[i], sizeof r->cur);
    drop_marks(r, (int)i + 1);
}

/* CHECK: never crashes; "ok" while nothing was patched (or busy while a
** part it needs is held). */
static void cmd_check(run *r, int second)
{
    char *report = NULL;
    mmkv *h = second ? r->s2 : r->s;
    if (!h) return;
    int rc = mmkv_check(h, &report);
    trace("%scheck: %s: %s", second ? "h2 " : "", mmkv_strerror(rc), report ? report : "");
    REQUIRE(valid_rc(rc));
    if (r->trusted && all_busy(r, second)) {
        REQUIRE(rc == MMKV_BUSY);
    } else if (r->trusted) {
        if (rc != MMKV_OK || strcmp(report, "ok") != 0)
            fprintf(stderr, "fuzz_mapping: check says: %s\n", report ? report : "(none)");
        REQUIRE(rc == MMKV_OK && strcmp(report, "ok") == 0);
    }
    free(report);
}

/* STAT: the entry count is the template's plus the model's. */
static void cmd_stat(run *r)
{
    mmkv_stats st = {0};
    if (!r->s) return;
    int rc = mmkv_stat(r->s, &st);
    trace("stat: %s, %llu entries", mmkv_strerror(rc), (unsigned long long)st.entries);
    REQUIRE(valid_rc(rc));
    (void)mmkv_estimate(r->s);
    (void)mmkv_location(r->s, NULL);
    REQUIRE(mmkv_flush(r->s) == MMKV_OK);
    if (!r->trusted) return;
    if (all_busy(r, 0)) {
        REQUIRE(rc == MMKV_BUSY);
        return;
    }
    REQUIRE(rc == MMKV_OK && st.entries == r->base_entries + model_count(r->cur));
    REQUIRE(st.capacity == r->size && st.used <= st.capacity);
    REQUIRE(st.parts == r->parts && st.format == (r->parts > 1 ? 3u : 2u));
}

/* REOPEN: closes the handle (an open transaction rolls back) and opens it
** again. */
static void cmd_reopen(run *r)
{
    if (!r->s) return;
    if (mmkv_in_transaction(r->s)) {
        model_end(r, 0);
        mmkv_rollback(r->s);
    }
    REQUIRE(locked_parts(r->s) == 0 && !r->s->locked); /* see finish_run */
    mmkv_close(r->s);
    r->s = NULL;
    int rc = open_store(&r->s, r->mode, MAP_BYTES, 0);
    trace("reopen: %s", mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (r->trusted) REQUIRE(rc == MMKV_OK);
}

/* Opens the second (or, third set, the third) handle on first use. */
static void need_other(run *r, int third)
{
    mmkv **h = third ? &r->s3 : &r->s2;
    if (*h || !r->s) return;
    int rc = open_store(h, MMKV_MODE_OPEN, MAP_BYTES, 0);
    trace("h%d open: %s", third ? 3 : 2, mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (r->trusted) REQUIRE(rc == MMKV_OK);
}

/* Returns the handle of the third handle's part i (itself if it has one
** part). */
static mmkv *held_part(run *r, unsigned i)
{
    return r->s3->nparts > 1 ? r->s3->part[i] : r->s3;
}

/* HOLD part: the third handle takes the part alone (a transaction of that
** part with no changes) and keeps it, or lets it go if it holds it. */
static void cmd_hold(run *r, reader *in)
{
    unsigned i = get8(in);
    if (!r->s3) return;
    i %= (unsigned)r->s3->nparts;
    mmkv *p = held_part(r, i);
    uint64_t bit = (uint64_t)1 << (i & 63);
    int had = p->in_txn, rc = had ? part_rollback(p) : part_begin(p);
    trace("hold part %u: %s: %s", i, had ? "let go" : "take", mmkv_strerror(rc));
    REQUIRE(valid_rc(rc));
    if (had) r->held3 &= ~bit;
    if (!had && rc == MMKV_OK) r->held3 |= bit;
    if (r->trusted) REQUIRE(rc == (had || !(r->holds & bit) ? MMKV_OK : MMKV_BUSY));
}

/* Lets go of every part the third handle holds. */
static void release_holds(run *r)
{
    for (unsigned i = 0; r->s3 && i < (unsigned)r->s3->nparts; i++)
        if (held_part(r, i)->in_txn) part_rollback(held_part(r, i));
    r->held3 = 0;
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
    CMD_DEFER, /* split templates only */
    CMD_HOLD,
    NCMDS
};
#define NCMDS_PLAIN CMD_DEFER

/* Runs one command of the recipe. */
static void run_command(run *r, reader *in)
{
    unsigned op = get8(in) % (r->split ? NCMDS : NCMDS_PLAIN);
    if (op > CMD_FIELD && !r->opened) open_main(r);
    if (op >= CMD_H2_GET && op <= CMD_H2_CHECK) need_other(r, 0);
    if (op == CMD_HOLD) need_other(r, 1);
    if (op == CMD_PATCH) cmd_patch(r, in);
    if (op == CMD_FIELD) cmd_field(r, in);
    if (op == CMD_PUT || op == CMD_PUT_TOO) cmd_put(r, in, 0);
    if (op == CMD_DEL) cmd_del(r, in);
    if (op == CMD_GET || op == CMD_GET_TOO) cmd_get(r, in, 0);
    if (op == CMD_SCAN) cmd_scan(r, 0);
    if (op == CMD_BEGIN || op == CMD_COMMIT || op == CMD_ROLLBACK)
        cmd_txn(r, (int)(op - CMD_BEGIN));
    if (op == CMD_DEFER) cmd_txn(r, TXN_DEFER);
    if (op == CMD_MARK) cmd_mark(r);
    if (op == CMD_ROLLBACK_TO) cmd_rollback_to(r, in);
    if (op == CMD_CHECK) cmd_check(r, 0);
    if (op == CMD_STAT) cmd_stat(r);
    if (op == CMD_REOPEN) cmd_reopen(r);
    if (op == CMD_H2_GET) cmd_get(r, in, 1);
    if (op == CMD_H2_PUT) cmd_put(r, in, 1);
    if (op == CMD_H2_SCAN) cmd_scan(r, 1);
    if (op == CMD_H2_CHECK) cmd_check(r, 1);
    if (op == CMD_HOLD) cmd_hold(r, in);
    if (r->trusted) check_holds(r);
}

/* Returns the template that the setup byte names. */
static unsigned template_of(unsigned setup)
{
    unsigned low = setup & 7;
    return low < NPLAIN ? low : NPLAIN + ((setup >> 5) & 3) * 2 + (low & 1);
}

/* Sets the run up from the first byte: template, file size, open mode. */
static void start_run(run *r, unsigned setup)
{
    static const int modes[] = {MMKV_MODE_CREATE, MMKV_MODE_CREATE, MMKV_MODE_OPEN,
                                MMKV_MODE_READONLY};
    const image *t = &templates[template_of(setup)];
    r->mode = modes[(setup >> 3) & 3];
    r->trusted = 1;
    r->split = t->parts > 1;
    r->size = t->size;
    r->parts = t->parts;
    r->region = t->region;
    r->base_entries = t->entries;
    memcpy(r->image, t->bytes, t->size);
    if ((setup >> 5) == 7) {
        r->size = r->split ? t->size - 8 : MAP_BYTES - 8; /* too short for its header */
        r->trusted = 0;
    }
}

/* Ends a run: a last check and close. */
static void finish_run(run *r)
{
    if (!r->opened) open_main(r);
    release_holds(r);
    cmd_check(r, 0);
    /* Nothing may stay locked once the handles' transactions end: a lock
    ** left held in a mapping that is then unmapped would stay on this
    ** thread's list of robust mutexes. */
    mmkv *hs[3] = {r->s, r->s2, r->s3};
    for (int i = 0; i < 3; i++) {
        if (hs[i] && mmkv_in_transaction(hs[i])) mmkv_rollback(hs[i]);
        REQUIRE(!hs[i] || (locked_parts(hs[i]) == 0 && !hs[i]->locked));
    }
    mmkv_close(r->s3);
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
    trace("-- template %u, mode %d, %zu bytes", template_of(setup), r.mode, r.size);
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
