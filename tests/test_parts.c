/*
** test_parts.c -- the store split into parts (format 3, option parts):
** routing, transactions across parts, atomic commit across parts when the
** writer dies at each step of it, checks of a damaged part table.
** Linux only (fork); the helpers are test_store.c's, as in
** test_store_posix.c.
*/
#define MMKV_TEST_STORE_HELPERS_ONLY
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_store.c"

#include <pthread.h>
#include <sys/wait.h>

#define NPARTS 4
#define NKEYS 400

/* Opens (creating) a store of `parts` parts on f's name, or file if use_file. */
static mmkv *open_parts(fixture *f, int use_file, uint64_t size, unsigned parts, int timeout_ms)
{
    mmkv_options o = mmkv_default_options();
    mmkv *s = NULL;
    char *msg = NULL;
    if (use_file)
        o.file = f->file;
    else
        o.name = f->name;
    o.size = size;
    o.parts = parts;
    o.timeout_ms = timeout_ms;
    int rc = mmkv_open(&o, &s, &msg);
    if (rc != MMKV_OK) fail_msg("mmkv_open = %d: %s", rc, msg);
    return s;
}

/* Puts "k<i>" = value tag*1000000 + i for i in [0, n). */
static void put_numbered(mmkv *s, int n, int64_t tag)
{
    char kb[32];
    for (int i = 0; i < n; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int(tag * 1000000 + i);
        put_ok(s, &k, &v, MMKV_PUT_REPLACE);
    }
}

/* Asserts that "k<i>" = tag*1000000 + i for every i in [0, n). */
static void expect_numbered(mmkv *s, int n, int64_t tag)
{
    char kb[32];
    for (int i = 0; i < n; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_int(tag * 1000000 + i);
        expect_entry(s, &k, &v);
    }
}

/* Returns the entries of part i, from its header. */
static uint64_t part_entries(mmkv *s, int i)
{
    return s->part[i]->hdr->entries;
}

static void test_parts_a_split_store_keeps_every_key_and_spreads_them(void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 1000);
    put_numbered(s, NKEYS, 1);
    mmkv_stats st;
    assert_int_equal(mmkv_stat(s, &st), MMKV_OK);
    assert_int_equal(st.format, MMKV_FORMAT_PARTS);
    assert_int_equal(st.capacity, SIZE_1M);
    assert_int_equal(st.entries, NKEYS);
    assert_int_equal(mmkv_estimate(s), NKEYS);
    uint64_t sum = 0;
    for (int i = 0; i < NPARTS; i++) {
        /* 400 keys in 4 parts: each part gets about 100; none is empty. */
        assert_true(part_entries(s, i) > 40);
        sum += part_entries(s, i);
    }
    assert_int_equal(sum, NKEYS);
    expect_check_ok(s);
    /* Another handle, opened without asking for parts, finds the same. */
    mmkv *t = open_ok(f->name, SIZE_64K, MMKV_MODE_OPEN);
    expect_numbered(t, NKEYS, 1);
    char kb[32];
    mmkv_key k = numbered_key(kb, sizeof kb, 7);
    assert_int_equal(mmkv_del(t, &k), MMKV_OK);
    expect_missing(s, &k);
    assert_int_equal(mmkv_del(s, &k), MMKV_NOTFOUND);
    mmkv_value v = v_int(5);
    assert_int_equal(mmkv_put(t, &k, &v, MMKV_PUT_INSERT), MMKV_OK);
    assert_int_equal(mmkv_put(s, &k, &v, MMKV_PUT_INSERT), MMKV_EXISTS);
    expect_entry(s, &k, &v);
    mmkv_close(t);
    mmkv_close(s);
}

static void test_parts_bad_part_counts_are_refused(void **state)
{
    fixture *f = *state;
    mmkv_options o = mmkv_default_options();
    mmkv *s;
    char *msg = NULL;
    o.name = f->name;
    o.parts = 65;
    assert_int_equal(mmkv_open(&o, &s, &msg), MMKV_INVALID);
    assert_non_null(strstr(msg, "parts 65 is out of range"));
    free(msg);
    o.parts = 32; /* 1 MiB in 32 parts: 32 KiB each */
    assert_int_equal(mmkv_open(&o, &s, &msg), MMKV_INVALID);
    assert_non_null(strstr(msg, "minimum of 64K a part"));
    free(msg);
    assert_int_equal(mmkv_unlink(f->name), MMKV_NOTFOUND); /* nothing was created */
    o.parts = 0; /* 0 and 1: one part, format 2 */
    assert_int_equal(mmkv_open(&o, &s, NULL), MMKV_OK);
    mmkv_stats st;
    assert_int_equal(mmkv_stat(s, &st), MMKV_OK);
    assert_int_equal(st.format, MMKV_FORMAT_VERSION);
    mmkv_close(s);
}

static void test_parts_a_transaction_commits_and_rolls_back_across_parts(void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 1000);
    put_numbered(s, NKEYS, 1);
    assert_int_equal(mmkv_begin(s), MMKV_OK);
    put_numbered(s, NKEYS, 2);
    expect_numbered(s, NKEYS, 2); /* its own changes, in every part */
    assert_int_equal(mmkv_rollback(s), MMKV_OK);
    expect_numbered(s, NKEYS, 1);
    assert_int_equal(mmkv_begin(s), MMKV_OK);
    put_numbered(s, NKEYS, 3);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    expect_numbered(s, NKEYS, 3);
    assert_int_equal(s->hdr->xcommit, 1); /* one number per commit that changed several parts */
    for (int i = 0; i < NPARTS; i++) assert_int_equal(s->part[i]->hdr->xtxn, 0);
    expect_check_ok(s);
    mmkv_close(s);
}

static void test_parts_rollback_to_a_mark_undoes_the_later_changes_of_every_part(void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 1000);
    char kb[32];
    put_numbered(s, 50, 1);
    assert_int_equal(mmkv_begin(s), MMKV_OK);
    put_numbered(s, 10, 2);
    size_t mark = mmkv_mark(s);
    put_numbered(s, 50, 3);
    for (int i = 0; i < 50; i += 2) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        assert_int_equal(mmkv_del(s, &k), MMKV_OK);
    }
    mmkv_key extra = numbered_key(kb, sizeof kb, 999);
    mmkv_value v = v_int(9);
    put_ok(s, &extra, &v, MMKV_PUT_INSERT);
    assert_int_equal(mmkv_rollback_to(s, mark), MMKV_OK);
    expect_numbered(s, 10, 2);
    for (int i = 10; i < 50; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value w = v_int(1000000 + i);
        expect_entry(s, &k, &w);
    }
    extra = numbered_key(kb, sizeof kb, 999);
    expect_missing(s, &extra);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    expect_numbered(s, 10, 2);
    assert_int_equal(entries_of(s), 50);
    expect_check_ok(s);
    mmkv_close(s);
}

/* Counts the scanned entries and sums their values. */
static int count_entry(void *ctx, const mmkv_key *k, const mmkv_value *v)
{
    int64_t *acc = ctx;
    (void)k;
    acc[0]++;
    acc[1] += v->i;
    return 0;
}

static void test_parts_a_scan_sees_every_part_and_the_transactions_own_changes(void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 1000);
    put_numbered(s, NKEYS, 0);
    int64_t acc[2] = {0, 0};
    assert_int_equal(mmkv_scan(s, count_entry, acc), MMKV_OK);
    assert_int_equal(acc[0], NKEYS);
    assert_int_equal(acc[1], (int64_t)NKEYS * (NKEYS - 1) / 2);
    assert_int_equal(mmkv_begin(s), MMKV_OK);
    char kb[32];
    mmkv_key k = numbered_key(kb, sizeof kb, 5000);
    mmkv_value v = v_int(1);
    put_ok(s, &k, &v, MMKV_PUT_INSERT);
    acc[0] = acc[1] = 0;
    assert_int_equal(mmkv_scan(s, count_entry, acc), MMKV_OK);
    assert_int_equal(acc[0], NKEYS + 1);
    assert_int_equal(mmkv_in_transaction(s), 1); /* the scan kept the parts */
    assert_int_equal(mmkv_rollback(s), MMKV_OK);
    /* After a scan outside a transaction every part is free again. */
    assert_int_equal(mmkv_scan(s, count_entry, acc), MMKV_OK);
    for (int i = 0; i < NPARTS; i++) assert_int_equal(s->part[i]->locked, 0);
    mmkv_close(s);
}

static void test_parts_a_transaction_holds_every_part_and_single_writes_take_one(void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 0);
    mmkv *t = open_parts(f, 0, SIZE_1M, NPARTS, 0);
    char kb[32];
    mmkv_key k = numbered_key(kb, sizeof kb, 1);
    mmkv_value v = v_int(1);
    assert_int_equal(mmkv_begin(s), MMKV_OK);
    assert_int_equal(mmkv_put(t, &k, &v, MMKV_PUT_REPLACE), MMKV_BUSY);
    assert_non_null(strstr(mmkv_errmsg(t), "the lock of mapping"));
    assert_int_equal(mmkv_begin(t), MMKV_BUSY);
    assert_int_equal(mmkv_in_transaction(t), 0);
    assert_int_equal(mmkv_rollback(s), MMKV_OK);
    /* A single write holds only its key's part while it runs: here, held
    ** by hand, another key's part stays free for the other handle. */
    uint32_t pk = (uint32_t)(((uint64_t)(uint32_t)key_hash(s->route_seed, &k) * NPARTS) >> 32);
    assert_int_equal(store_lock(s->part[pk]), MMKV_OK);
    assert_int_equal(mmkv_put(t, &k, &v, MMKV_PUT_REPLACE), MMKV_BUSY);
    int other = 0;
    for (int i = 2; i < 200 && !other; i++) {
        mmkv_key o = numbered_key(kb, sizeof kb, i);
        uint32_t po = (uint32_t)(((uint64_t)(uint32_t)key_hash(s->route_seed, &o) * NPARTS) >> 32);
        if (po != pk) {
            assert_int_equal(mmkv_put(t, &o, &v, MMKV_PUT_REPLACE), MMKV_OK);
            other = 1;
        }
    }
    assert_true(other);
    store_unlock(s->part[pk]);
    k = numbered_key(kb, sizeof kb, 1);
    assert_int_equal(mmkv_put(t, &k, &v, MMKV_PUT_REPLACE), MMKV_OK);
    mmkv_close(t);
    mmkv_close(s);
}

static int stop_at;
static void exit_at_step(int step)
{
    if (step == stop_at) _exit(0);
}

/* A child changes every key of every part in one transaction and dies at
** commit step `step`; the survivor must find all of it or none of it. */
static void die_during_commit(fixture *f, int step, int64_t want)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        mmkv_options o = mmkv_default_options();
        mmkv *s;
        o.name = f->name;
        o.mode = MMKV_MODE_OPEN;
        if (mmkv_open(&o, &s, NULL) != MMKV_OK) _exit(10);
        if (mmkv_begin(s) != MMKV_OK) _exit(11);
        char kb[32];
        for (int i = 0; i < NKEYS; i++) {
            mmkv_key k = numbered_key(kb, sizeof kb, i);
            mmkv_value v = v_int(2000000 + i);
            if (mmkv_put(s, &k, &v, MMKV_PUT_REPLACE) != MMKV_OK) _exit(12);
        }
        stop_at = step;
        store_commit_hook = exit_at_step;
        mmkv_commit(s);
        _exit(13); /* the hook did not stop it */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 1000);
    expect_numbered(s, NKEYS, want);
    assert_int_equal(entries_of(s), NKEYS);
    expect_check_ok(s);
    for (int i = 0; i < NPARTS; i++) {
        assert_int_equal(s->part[i]->hdr->dirty, 0);
        assert_int_equal(s->part[i]->hdr->xtxn, 0);
    }
    /* Back to the first values for the next round. */
    put_numbered(s, NKEYS, 1);
    mmkv_close(s);
}

static void test_parts_a_writer_dying_in_a_commit_across_parts_leaves_all_or_nothing(void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 1000);
    put_numbered(s, NKEYS, 1);
    mmkv_close(s);
    die_during_commit(f, XSTEP_MARKED, 1); /* before the commit point: undone */
    die_during_commit(f, XSTEP_POINT, 2);  /* after it: finished */
    for (int i = 0; i < NPARTS - 1; i++) die_during_commit(f, XSTEP_PART + i, 2);
}

/* Creates a file store in parts, closes it, changes `n` bytes at `at` to
** `bytes`, and expects every open to refuse it and change nothing. */
static void damage_and_expect_refused(fixture *f, uint64_t at, const void *bytes, size_t n)
{
    mmkv *s = open_parts(f, 1, SIZE_1M, NPARTS, 1000);
    put_numbered(s, 50, 1);
    mmkv_close(s);
    size_t len;
    unsigned char *b = read_all(f->file, &len);
    memcpy(b + at, bytes, n);
    write_all(f->file, b, len);
    free(b);
    expect_rejected(NULL, f->file, MMKV_CORRUPT, MMKV_CORRUPT);
    unlink(f->file);
}

static void test_parts_a_damaged_part_table_is_refused_not_crashed(void **state)
{
    fixture *f = *state;
    const uint64_t region = SIZE_1M / NPARTS;
    uint32_t u32;
    uint64_t u64;
    u32 = 1;
    damage_and_expect_refused(f, offsetof(struct mmkv_hdr, parts), &u32, 4);
    u32 = 65;
    damage_and_expect_refused(f, offsetof(struct mmkv_hdr, parts), &u32, 4);
    u32 = 8; /* 8 parts of a quarter each do not fit */
    damage_and_expect_refused(f, offsetof(struct mmkv_hdr, parts), &u32, 4);
    u64 = region + 8;
    damage_and_expect_refused(f, offsetof(struct mmkv_hdr, region), &u64, 8);
    u64 = region * 2;
    damage_and_expect_refused(f, offsetof(struct mmkv_hdr, region), &u64, 8);
    u32 = 1; /* part 3 claims to be part 2 */
    damage_and_expect_refused(f, 2 * region + offsetof(struct mmkv_hdr, part_no), &u32, 4);
    u64 = 0; /* part 4 lost its magic */
    damage_and_expect_refused(f, 3 * region + offsetof(struct mmkv_hdr, magic), &u64, 8);
    u64 = region / 2; /* part 2 says it is smaller */
    damage_and_expect_refused(f, region + offsetof(struct mmkv_hdr, capacity), &u64, 8);
}

static void test_parts_a_full_part_says_so_and_changes_nothing(void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, 4 * SIZE_64K, NPARTS, 1000);
    static unsigned char big[4000];
    char kb[32];
    int i, rc = MMKV_OK;
    for (i = 0; i < 1000 && rc == MMKV_OK; i++) {
        mmkv_key k = numbered_key(kb, sizeof kb, i);
        mmkv_value v = v_blob(big, sizeof big);
        rc = mmkv_put(s, &k, &v, MMKV_PUT_INSERT);
    }
    assert_int_equal(rc, MMKV_FULL);
    assert_non_null(strstr(mmkv_errmsg(s), "is full: the key's part"));
    mmkv_key k = numbered_key(kb, sizeof kb, i - 1);
    expect_missing(s, &k);
    assert_int_equal(entries_of(s), (uint64_t)(i - 1));
    expect_check_ok(s);
    mmkv_close(s);
}

/* Returns the part of key k in s. */
static int part_of(mmkv *s, const mmkv_key *k)
{
    return (int)(((uint64_t)(uint32_t)key_hash(s->route_seed, k) * (uint32_t)s->nparts) >> 32);
}

/* Returns how many parts s holds locked. */
static int parts_locked(mmkv *s)
{
    int n = 0;
    for (int i = 0; i < s->nparts; i++) n += s->part[i]->locked;
    return n;
}

/* Finds n keys "k<i>" of part want, from i = *next on; their texts go to
** names (24 bytes each). */
static void keys_of_part(mmkv *s, int want, int n, char (*names)[24], mmkv_key *keys)
{
    for (int i = 0, found = 0; found < n; i++) {
        mmkv_key k = numbered_key(names[found], 24, i);
        if (part_of(s, &k) == want) keys[found++] = k;
    }
}

static void test_parts_a_deferred_transaction_holds_one_part_while_it_uses_keys_of_it(
    void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 1000);
    mmkv *t = open_parts(f, 0, SIZE_1M, NPARTS, 0);
    char names[4][24], other_name[24];
    mmkv_key k[3], other;
    keys_of_part(s, 1, 3, names, k);
    keys_of_part(s, 2, 1, &other_name, &other);
    mmkv_value v1 = v_int(1), v2 = v_int(2);
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    assert_int_equal(mmkv_in_transaction(s), 1);
    assert_int_equal(parts_locked(s), 0);
    put_ok(s, &k[0], &v1, MMKV_PUT_REPLACE);
    put_ok(s, &k[1], &v1, MMKV_PUT_REPLACE);
    assert_int_equal(parts_locked(s), 1);
    assert_int_equal(s->part[1]->locked, 1);
    /* Another handle writes another part meanwhile, not this one. */
    assert_int_equal(mmkv_put(t, &other, &v2, MMKV_PUT_REPLACE), MMKV_OK);
    assert_int_equal(mmkv_put(t, &k[2], &v2, MMKV_PUT_REPLACE), MMKV_BUSY);
    /* A read of a key of the same part keeps to it; one of another part
    ** needs every part. */
    expect_entry(s, &k[0], &v1);
    expect_missing(s, &k[2]);
    assert_int_equal(parts_locked(s), 1);
    assert_int_equal(mmkv_put(t, &other, &v1, MMKV_PUT_REPLACE), MMKV_OK);
    expect_entry(s, &other, &v1);
    assert_int_equal(parts_locked(s), NPARTS);
    assert_int_equal(mmkv_put(t, &other, &v2, MMKV_PUT_REPLACE), MMKV_BUSY);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    assert_int_equal(parts_locked(s), 0);
    expect_entry(t, &k[0], &v1);
    expect_entry(t, &k[1], &v1);
    expect_entry(t, &other, &v1);
    /* Rolled back while it holds one part: nothing stays. */
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    put_ok(s, &k[2], &v1, MMKV_PUT_REPLACE);
    assert_int_equal(mmkv_rollback(s), MMKV_OK);
    expect_missing(t, &k[2]);
    /* Deletes and inserts without replace (the reads and writes of an SQL
    ** UPDATE or DELETE by key) keep to one part too; a key of a second
    ** part takes every part first. */
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    assert_int_equal(mmkv_del(s, &k[1]), MMKV_OK);
    assert_int_equal(mmkv_del(s, &k[1]), MMKV_NOTFOUND);
    assert_int_equal(parts_locked(s), 1);
    assert_int_equal(mmkv_put(t, &other, &v2, MMKV_PUT_REPLACE), MMKV_OK);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    expect_missing(t, &k[1]);
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    assert_int_equal(mmkv_put(s, &k[1], &v2, MMKV_PUT_INSERT), MMKV_OK);
    assert_int_equal(mmkv_put(s, &k[0], &v2, MMKV_PUT_INSERT), MMKV_EXISTS);
    assert_int_equal(parts_locked(s), 1);
    assert_int_equal(mmkv_put(t, &k[1], &v1, MMKV_PUT_REPLACE), MMKV_BUSY);
    assert_int_equal(mmkv_rollback(s), MMKV_OK);
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    put_ok(s, &k[1], &v2, MMKV_PUT_REPLACE);
    put_ok(s, &other, &v2, MMKV_PUT_REPLACE);
    assert_int_equal(parts_locked(s), NPARTS);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    expect_entry(t, &k[1], &v2);
    expect_check_ok(t);
    mmkv_close(t);
    mmkv_close(s);
}

/* A thread that holds part 0 of its own handle for hold_ms; if fill_part
** is not negative, after 100 ms it fills that part with 2000-byte blobs
** until it is full (the other thread has released it by then). */
struct holder {
    mmkv *u;
    volatile int taken;
    int hold_ms, fill_part;
    volatile int *until; /* if set, holds on (up to 10 s) until *until is not -1 */
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void *hold_part0(void *arg)
{
    struct holder *h = arg;
    if (store_lock(h->u->part[0]) != MMKV_OK) return NULL;
    __atomic_store_n(&h->taken, 1, __ATOMIC_SEQ_CST);
    if (h->fill_part >= 0) {
        static unsigned char blob[2000];
        char kb[24];
        sleep_ms(100);
        for (int i = 0, rc = MMKV_OK; rc != MMKV_FULL && i < 100000; i++) {
            mmkv_key k = numbered_key(kb, sizeof kb, 500000 + i);
            mmkv_value v = v_blob(blob, sizeof blob);
            if (part_of(h->u, &k) == h->fill_part) rc = mmkv_put(h->u, &k, &v, MMKV_PUT_REPLACE);
        }
        sleep_ms(h->hold_ms > 100 ? h->hold_ms - 100 : 0);
    } else {
        sleep_ms(h->hold_ms); /* the other thread's escalation waits for this */
        for (int i = 0; h->until && i < 10000 && __atomic_load_n(h->until, __ATOMIC_SEQ_CST) == -1;
             i++)
            sleep_ms(1);
    }
    store_unlock(h->u->part[0]);
    return NULL;
}

/* Starts a holder thread and waits until it holds part 0. */
static void start_holder(pthread_t *th, struct holder *h)
{
    assert_int_equal(pthread_create(th, NULL, hold_part0, h), 0);
    while (!__atomic_load_n(&h->taken, __ATOMIC_SEQ_CST)) sched_yield();
}

static void test_parts_a_deferred_transaction_redoes_its_puts_when_a_lower_part_is_busy(
    void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 2000);
    mmkv *u = open_parts(f, 0, SIZE_1M, NPARTS, 2000);
    char names[4][24];
    mmkv_key k[4];
    keys_of_part(s, NPARTS - 1, 4, names, k);
    mmkv_value v1 = v_int(1), v2 = v_int(2), v3 = v_text("three", 5), v4 = v_int(4),
               v0 = v_int(0);
    put_ok(s, &k[0], &v0, MMKV_PUT_REPLACE);
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    put_ok(s, &k[0], &v1, MMKV_PUT_REPLACE);
    put_ok(s, &k[1], &v2, MMKV_PUT_REPLACE);
    size_t mark = mmkv_mark(s);
    put_ok(s, &k[2], &v3, MMKV_PUT_REPLACE);
    put_ok(s, &k[0], &v4, MMKV_PUT_REPLACE);
    assert_int_equal(parts_locked(s), 1);
    struct holder h = {u, 0, 200, -1, NULL};
    pthread_t th;
    start_holder(&th, &h);
    /* The read of a key of part 0, which the thread holds: the puts are
    ** undone, every part is waited for in order, and the puts are done
    ** again. */
    char other_name[24];
    mmkv_key other;
    keys_of_part(s, 0, 1, &other_name, &other);
    expect_missing(s, &other);
    assert_int_equal(parts_locked(s), NPARTS);
    assert_int_equal(pthread_join(th, NULL), 0);
    expect_entry(s, &k[0], &v4);
    expect_entry(s, &k[1], &v2);
    expect_entry(s, &k[2], &v3);
    /* The mark taken before the escalation still means the same point. */
    assert_int_equal(mmkv_rollback_to(s, mark), MMKV_OK);
    expect_entry(s, &k[0], &v1);
    expect_entry(s, &k[1], &v2);
    expect_missing(s, &k[2]);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    expect_entry(u, &k[0], &v1);
    expect_entry(u, &k[1], &v2);
    expect_missing(u, &k[2]);
    assert_int_equal(entries_of(u), 2);
    expect_check_ok(u);
    mmkv_close(u);
    mmkv_close(s);
}

/* A deferred transaction holding the top part, whose escalation meets part
** 0 held by another thread for hold_ms while (if fill) that thread fills
** the top part.  Returns the handle s, its keys in k (names in names). */
static mmkv *escalate_against_holder(fixture *f, int timeout_ms, int hold_ms, int fill, mmkv **u,
                                     char (*names)[24], mmkv_key *k, mmkv_key *other,
                                     char *other_name, int want)
{
    mmkv *s = open_parts(f, 0, 4 * SIZE_64K, NPARTS, timeout_ms);
    *u = open_parts(f, 0, 4 * SIZE_64K, NPARTS, 3000);
    keys_of_part(s, NPARTS - 1, 2, names, k);
    keys_of_part(s, 0, 1, (char(*)[24])other_name, other);
    static unsigned char big[2000];
    mmkv_value v1 = v_int(1), vb = v_blob(big, sizeof big);
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    put_ok(s, &k[0], &v1, MMKV_PUT_REPLACE);
    put_ok(s, &k[1], &vb, MMKV_PUT_REPLACE);
    struct holder h = {*u, 0, hold_ms, fill ? NPARTS - 1 : -1, NULL};
    pthread_t th;
    start_holder(&th, &h);
    assert_int_equal(mmkv_get(s, other, NULL, NULL, NULL), want);
    assert_int_equal(pthread_join(th, NULL), 0);
    return s;
}

/* Not every part in time: the call fails with MMKV_BUSY and changes
** nothing; the transaction goes on with its puts. */
static void test_parts_a_deferred_transaction_that_cannot_take_every_part_keeps_its_puts(
    void **state)
{
    fixture *f = *state;
    mmkv *u, *s;
    char names[2][24], other_name[24];
    mmkv_key k[2], other;
    s = escalate_against_holder(f, 200, 500, 0, &u, names, k, &other, other_name, MMKV_BUSY);
    assert_non_null(strstr(mmkv_errmsg(s), "timed out after 200 ms"));
    assert_int_equal(mmkv_in_transaction(s), 1);
    assert_int_equal(parts_locked(s), 1);
    assert_int_equal(mmkv_get(s, &other, NULL, NULL, NULL), MMKV_NOTFOUND);
    assert_int_equal(parts_locked(s), NPARTS);
    mmkv_value v1 = v_int(1);
    expect_entry(s, &k[0], &v1);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    expect_entry(u, &k[0], &v1);
    assert_int_equal(mmkv_get(u, &k[1], NULL, NULL, NULL), MMKV_OK);
    expect_check_ok(u);
    mmkv_close(u);
    mmkv_close(s);
}

/* The part filled up while the puts were undone: they cannot be done
** again, so the transaction fails as a whole; every later call says so,
** its commit too, and none of its puts is found. */
static void test_parts_a_deferred_transaction_that_cannot_redo_its_puts_fails_whole(void **state)
{
    fixture *f = *state;
    mmkv *u, *s;
    char names[2][24], other_name[24];
    mmkv_key k[2], other;
    s = escalate_against_holder(f, 3000, 300, 1, &u, names, k, &other, other_name, MMKV_FULL);
    assert_non_null(strstr(mmkv_errmsg(s), "the transaction was rolled back"));
    mmkv_value v1 = v_int(1);
    assert_int_equal(mmkv_get(s, &other, NULL, NULL, NULL), MMKV_FULL);
    assert_int_equal(mmkv_put(s, &other, &v1, MMKV_PUT_REPLACE), MMKV_FULL);
    assert_int_equal(mmkv_rollback_to(s, 0), MMKV_FULL);
    assert_int_equal(mmkv_commit(s), MMKV_FULL);
    assert_int_equal(mmkv_in_transaction(s), 0);
    assert_int_equal(parts_locked(s), 0);
    expect_missing(u, &k[0]);
    expect_missing(u, &k[1]);
    expect_missing(u, &other);
    /* The handle works again. */
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    put_ok(s, &other, &v1, MMKV_PUT_REPLACE);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    expect_entry(u, &other, &v1);
    expect_check_ok(u);
    mmkv_close(u);
    mmkv_close(s);
}

/* A thread that takes part `part` of its handle as soon as it is free and
** keeps it for 800 ms. */
struct grabber {
    mmkv *w;
    int part;
};

static void *grab_part(void *arg)
{
    struct grabber *g = arg;
    if (store_lock(g->w->part[g->part]) != MMKV_OK) return NULL;
    sleep_ms(800);
    store_unlock(g->w->part[g->part]);
    return NULL;
}

/* Not every part in time, and then not even the transaction's own part
** (another writer took it when the puts were undone, and kept it): the
** puts cannot be put back, so the transaction fails whole and says so. */
static void test_parts_a_deferred_transaction_that_loses_its_own_part_fails_whole(void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 200);
    mmkv *u = open_parts(f, 0, SIZE_1M, NPARTS, 3000);
    mmkv *w = open_parts(f, 0, SIZE_1M, NPARTS, 3000);
    char names[1][24], other_name[24];
    mmkv_key k[1], other;
    keys_of_part(s, NPARTS - 1, 1, names, k);
    keys_of_part(s, 0, 1, (char(*)[24])other_name, &other);
    mmkv_value v1 = v_int(1);
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    put_ok(s, &k[0], &v1, MMKV_PUT_REPLACE);
    struct holder h = {u, 0, 500, -1, NULL};
    pthread_t th, tg;
    start_holder(&th, &h);
    struct grabber g = {w, NPARTS - 1};
    assert_int_equal(pthread_create(&tg, NULL, grab_part, &g), 0); /* waits for s's part */
    assert_int_equal(mmkv_get(s, &other, NULL, NULL, NULL), MMKV_BUSY);
    assert_non_null(strstr(mmkv_errmsg(s), "the transaction was rolled back"));
    assert_int_equal(parts_locked(s), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(pthread_join(tg, NULL), 0);
    assert_int_equal(mmkv_put(s, &other, &v1, MMKV_PUT_REPLACE), MMKV_BUSY);
    assert_int_equal(mmkv_commit(s), MMKV_BUSY);
    assert_int_equal(mmkv_in_transaction(s), 0);
    expect_missing(u, &k[0]);
    expect_missing(u, &other);
    expect_check_ok(u);
    mmkv_close(w);
    mmkv_close(u);
    mmkv_close(s);
}

/* A thread that puts k = v through its own handle (waiting for the part,
** which another handle holds when it starts). */
struct putter {
    mmkv *w;
    mmkv_key k;
    mmkv_value v;
    int rc;
};

static void *put_key(void *arg)
{
    struct putter *p = arg;
    __atomic_store_n(&p->rc, mmkv_put(p->w, &p->k, &p->v, MMKV_PUT_REPLACE), __ATOMIC_SEQ_CST);
    return NULL;
}

/* A deferred transaction that read keys of the part it holds (gets, a
** delete of a missing key) and deleted and inserted some, meets part 0
** busy: it undoes its changes, waits for every part, finds the keys it
** read as it read them, and does its changes again. */
static void test_parts_a_deferred_transaction_that_read_its_part_redoes_its_changes_if_unchanged(
    void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 2000);
    mmkv *u = open_parts(f, 0, SIZE_1M, NPARTS, 2000);
    char names[4][24], other_name[24];
    mmkv_key k[4], other;
    keys_of_part(s, NPARTS - 1, 4, names, k);
    keys_of_part(s, 0, 1, &other_name, &other);
    mmkv_value v1 = v_int(1), v2 = v_int(2), v3 = v_text("three", 5);
    put_ok(s, &k[0], &v1, MMKV_PUT_REPLACE);
    put_ok(s, &k[1], &v1, MMKV_PUT_REPLACE);
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    expect_entry(s, &k[0], &v1);
    put_ok(s, &k[0], &v2, MMKV_PUT_REPLACE);             /* UPDATE k0 */
    assert_int_equal(mmkv_del(s, &k[1]), MMKV_OK);        /* DELETE k1 */
    assert_int_equal(mmkv_del(s, &k[3]), MMKV_NOTFOUND); /* DELETE of nothing */
    put_ok(s, &k[2], &v3, MMKV_PUT_INSERT);               /* INSERT k2 */
    size_t mark = mmkv_mark(s);
    assert_int_equal(parts_locked(s), 1);
    struct holder h = {u, 0, 200, -1, NULL};
    pthread_t th;
    start_holder(&th, &h);
    expect_missing(s, &other); /* needs part 0: undo, wait, redo */
    assert_int_equal(parts_locked(s), NPARTS);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(mmkv_mark(s), mark);
    expect_entry(s, &k[0], &v2);
    expect_missing(s, &k[1]);
    expect_entry(s, &k[2], &v3);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    expect_entry(u, &k[0], &v2);
    expect_missing(u, &k[1]);
    expect_entry(u, &k[2], &v3);
    expect_missing(u, &k[3]);
    assert_int_equal(entries_of(u), 2);
    expect_check_ok(u);
    mmkv_close(u);
    mmkv_close(s);
}

/* The same, but while the transaction waits for part 0 another writer
** (a thread, whose put waits for the transaction's part) changes its part:
**   CHANGE_OTHER: another key of the part than the one it read: its read
**     still holds, so it does its changes again and commits;
**   CHANGE_READ: the key it read: it cannot be what its caller saw;
**   ADD_INSERTED: adds the key it inserted (it had read nothing).
** The last two fail whole with MMKV_BUSY, say why, and leave only the other
** writer's change. */
enum { CHANGE_OTHER, CHANGE_READ, ADD_INSERTED };

static void deferred_transaction_meets_a_writer(fixture *f, int what)
{
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 2000);
    mmkv *u = open_parts(f, 0, SIZE_1M, NPARTS, 2000);
    mmkv *w = open_parts(f, 0, SIZE_1M, NPARTS, 3000);
    char names[2][24], other_name[24];
    mmkv_key k[2], other;
    keys_of_part(s, NPARTS - 1, 2, names, k);
    keys_of_part(s, 0, 1, &other_name, &other);
    mmkv_value v1 = v_int(1), v2 = v_int(2), v7 = v_int(7);
    if (what != ADD_INSERTED) put_ok(s, &k[0], &v1, MMKV_PUT_REPLACE);
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    if (what != ADD_INSERTED) {
        expect_entry(s, &k[0], &v1); /* UPDATE k0 SET value = 2 */
        put_ok(s, &k[0], &v2, MMKV_PUT_REPLACE);
    } else {
        put_ok(s, &k[0], &v2, MMKV_PUT_INSERT);
    }
    struct putter p = {w, what == CHANGE_OTHER ? k[1] : k[0], v7, -1};
    struct holder h = {u, 0, 300, -1, &p.rc};
    pthread_t th, tw;
    start_holder(&th, &h);
    assert_int_equal(pthread_create(&tw, NULL, put_key, &p), 0); /* waits for s's part */
    int rc = mmkv_get(s, &other, NULL, NULL, NULL);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(pthread_join(tw, NULL), 0);
    assert_int_equal(p.rc, MMKV_OK);
    if (what == CHANGE_OTHER) {
        assert_int_equal(rc, MMKV_NOTFOUND);
        assert_int_equal(mmkv_commit(s), MMKV_OK);
        expect_entry(u, &k[0], &v2);
        expect_entry(u, &k[1], &v7);
    } else {
        assert_int_equal(rc, MMKV_BUSY);
        assert_non_null(strstr(mmkv_errmsg(s), "the transaction was rolled back"));
        assert_non_null(strstr(mmkv_errmsg(s),
                               what == CHANGE_READ ? "another writer changed a key of part 4"
                                                   : "another writer added a key of part 4"));
        assert_int_equal(parts_locked(s), 0);
        assert_int_equal(mmkv_commit(s), MMKV_BUSY);
        expect_entry(u, &k[0], &v7);
        if (what == CHANGE_READ) expect_missing(u, &k[1]);
    }
    assert_int_equal(mmkv_in_transaction(s), 0);
    assert_int_equal(entries_of(u), what == CHANGE_OTHER ? 2 : 1);
    expect_check_ok(u);
    mmkv_close(w);
    mmkv_close(u);
    mmkv_close(s);
}

static void test_parts_a_deferred_transaction_redoes_its_changes_if_another_key_changed_meanwhile(
    void **state)
{
    deferred_transaction_meets_a_writer(*state, CHANGE_OTHER);
}

static void test_parts_a_deferred_transaction_whose_read_changed_meanwhile_fails_whole(void **state)
{
    deferred_transaction_meets_a_writer(*state, CHANGE_READ);
}

static void test_parts_a_deferred_transaction_whose_insert_was_taken_meanwhile_fails_whole(
    void **state)
{
    deferred_transaction_meets_a_writer(*state, ADD_INSERTED);
}

/* What a deferred transaction keeps of its reads stays small: a key read
** again with no change between adds nothing, and past 1 MiB of keys and
** values it checks its whole part instead. */
static void test_parts_a_deferred_transaction_keeps_little_of_its_reads(void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, 4 * SIZE_1M, NPARTS, 2000);
    char names[2][24];
    mmkv_key k[2];
    keys_of_part(s, NPARTS - 1, 2, names, k);
    static unsigned char big[200000];
    mmkv_value v1 = v_int(1), vb = v_blob(big, sizeof big);
    put_ok(s, &k[0], &v1, MMKV_PUT_REPLACE);
    put_ok(s, &k[1], &vb, MMKV_PUT_REPLACE);
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    for (int i = 0; i < 100; i++) expect_entry(s, &k[0], &v1);
    assert_int_equal(s->nreads, 1);
    put_ok(s, &k[0], &v1, MMKV_PUT_REPLACE);
    assert_int_equal(mmkv_get(s, &k[0], NULL, NULL, NULL), MMKV_OK); /* its own: nothing */
    assert_int_equal(s->nreads, 1);
    for (int i = 0; i < 5; i++) {
        expect_entry(s, &k[1], &vb);
        expect_entry(s, &k[1], &vb);
        assert_int_equal(s->nreads, 2 + i);
        assert_int_equal(s->strict, 0);
        put_ok(s, &k[0], &v1, MMKV_PUT_REPLACE); /* a change between */
    }
    expect_entry(s, &k[1], &vb); /* the sixth copy would pass 1 MiB */
    assert_int_equal(s->strict, 1);
    assert_int_equal(s->nreads, 0);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    mmkv_close(s);
}

/* A deferred transaction that undid an insert with mmkv_rollback_to can
** no longer check what that insert saw key by key: after a wait, any
** commit of another writer in its part fails it. */
static void test_parts_a_deferred_transaction_that_rolled_back_to_a_mark_checks_its_whole_part(
    void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 2000);
    mmkv *u = open_parts(f, 0, SIZE_1M, NPARTS, 2000);
    mmkv *w = open_parts(f, 0, SIZE_1M, NPARTS, 3000);
    char names[3][24], other_name[24];
    mmkv_key k[3], other;
    keys_of_part(s, NPARTS - 1, 3, names, k);
    keys_of_part(s, 0, 1, &other_name, &other);
    mmkv_value v2 = v_int(2), v7 = v_int(7);
    assert_int_equal(mmkv_begin_deferred(s), MMKV_OK);
    size_t mark = mmkv_mark(s);
    put_ok(s, &k[0], &v2, MMKV_PUT_INSERT); /* saw k0 absent */
    assert_int_equal(mmkv_rollback_to(s, mark), MMKV_OK);
    put_ok(s, &k[1], &v2, MMKV_PUT_REPLACE);
    struct putter p = {w, k[2], v7, -1}; /* a key it never saw */
    struct holder h = {u, 0, 300, -1, &p.rc};
    pthread_t th, tw;
    start_holder(&th, &h);
    assert_int_equal(pthread_create(&tw, NULL, put_key, &p), 0);
    assert_int_equal(mmkv_get(s, &other, NULL, NULL, NULL), MMKV_BUSY);
    assert_non_null(strstr(mmkv_errmsg(s), "another writer changed part 4"));
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(pthread_join(tw, NULL), 0);
    assert_int_equal(mmkv_rollback(s), MMKV_OK);
    expect_entry(u, &k[2], &v7);
    expect_missing(u, &k[0]);
    expect_missing(u, &k[1]);
    expect_check_ok(u);
    mmkv_close(w);
    mmkv_close(u);
    mmkv_close(s);
}

/* A stray write of the "unfinished" marker into a mapping in use: an
** opener in create mode must not set it up again (that would reset its
** locks and its size under the handles that use it, one of which holds a
** part here) but refuse it as corrupt. */
static void test_parts_a_used_mapping_marked_unfinished_is_not_set_up_again(void **state)
{
    fixture *f = *state;
    mmkv *s = open_parts(f, 1, SIZE_1M, NPARTS, 1000);
    put_numbered(s, 50, 1);
    assert_int_equal(store_lock(s->part[2]), MMKV_OK);
    uint64_t magic, marker = MMKV_OS_UNFINISHED;
    memcpy(&magic, s->base, 8);
    memcpy(s->base, &marker, 8);
    mmkv *t = NULL;
    char *msg = NULL;
    assert_int_equal(try_open_ex(NULL, f->file, SIZE_64K, MMKV_MODE_CREATE, 1000, &t, &msg),
                     MMKV_CORRUPT);
    assert_non_null(strstr(msg, "marked unfinished while other handles use it"));
    free(msg);
    struct stat st;
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal((uint64_t)st.st_size, SIZE_1M); /* not cut to the opener's size */
    memcpy(s->base, &magic, 8);
    store_unlock(s->part[2]);
    expect_numbered(s, 50, 1);
    expect_check_ok(s);
    mmkv_close(s);
}

/* A child process waits here until the parent lets every child go at
** once (start_children), so that they run side by side. */
static void wait_for_start(int go[2])
{
    char byte;
    close(go[1]);
    if (read(go[0], &byte, 1) != 1) _exit(2);
    close(go[0]);
}

static void start_children(int go[2], int n)
{
    close(go[0]);
    for (int i = 0; i < n; i++) assert_int_equal(write(go[1], "g", 1), 1);
    close(go[1]);
}

/* Waits for the n child processes pid[] and asserts that each exited 0. */
static void expect_children_ok(const pid_t *pid, int n)
{
    for (int c = 0; c < n; c++) {
        int status = 0;
        assert_int_equal(waitpid(pid[c], &status, 0), pid[c]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
}

/* Two processes, started together, run deferred transactions that each
** replace a key of one part and then keys of others (the second takes
** every part, and at times finds a part below the first busy: undo, wait
** in order, redo), 20000 times each, in opposite part orders: both finish,
** no call fails, and every key holds its writer's last value. */
static void test_parts_two_processes_replacing_keys_of_parts_in_opposite_orders_both_finish(
    void **state)
{
    enum { ROUNDS = 20000 };
    fixture *f = *state;
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 5000);
    char names[4][4][24];
    mmkv_key k[4][4];
    for (int p = 0; p < NPARTS; p++) keys_of_part(s, p, 4, names[p], k[p]);
    pid_t pid[2];
    int go[2];
    assert_int_equal(pipe(go), 0);
    for (int c = 0; c < 2; c++) {
        pid[c] = fork();
        assert_true(pid[c] >= 0);
        if (pid[c] == 0) {
            mmkv *t = open_parts(f, 0, SIZE_1M, NPARTS, 5000);
            wait_for_start(go);
            /* child 0: part 3 then part 0; child 1: part 0 then part 3, its
            ** own keys (index c) in each */
            int first = c == 0 ? NPARTS - 1 : 0, second = c == 0 ? 0 : NPARTS - 1;
            for (int i = 1; i <= ROUNDS; i++) {
                mmkv_value v = v_int(i);
                if (mmkv_begin_deferred(t) || mmkv_put(t, &k[first][c], &v, MMKV_PUT_REPLACE) ||
                    mmkv_put(t, &k[1][c], &v, MMKV_PUT_REPLACE) ||
                    mmkv_put(t, &k[second][c + 2], &v, MMKV_PUT_REPLACE) || mmkv_commit(t)) {
                    fprintf(stderr, "child %d, round %d: %s\n", c, i, mmkv_errmsg(t));
                    _exit(1);
                }
            }
            mmkv_close(t);
            _exit(0);
        }
    }
    start_children(go, 2);
    expect_children_ok(pid, 2);
    mmkv_value last = v_int(ROUNDS);
    for (int c = 0; c < 2; c++) {
        int first = c == 0 ? NPARTS - 1 : 0, second = c == 0 ? 0 : NPARTS - 1;
        expect_entry(s, &k[first][c], &last);
        expect_entry(s, &k[1][c], &last);
        expect_entry(s, &k[second][c + 2], &last);
    }
    assert_int_equal(entries_of(s), 6);
    expect_check_ok(s);
    mmkv_close(s);
}

/* Two processes put and delete keys of their own outside any transaction,
** all at once (each call locks its key's part alone, after asking for the
** lines it will change: store_warm), on a mapping in one part and in
** NPARTS parts; values of one size, so blocks are reused at once: no
** change is lost, none lands on the other process's keys, and the mapping
** checks out. */
static void test_parts_two_processes_writing_outside_transactions_lose_nothing(void **state)
{
    fixture *f = *state;
    enum { PER = 200, ROUNDS = 40 };
    for (unsigned parts = 1; parts <= NPARTS; parts += NPARTS - 1) {
        mmkv *s = open_parts(f, 0, SIZE_1M, parts, 5000);
        pid_t pid[2];
        for (int c = 0; c < 2; c++) {
            pid[c] = fork();
            assert_true(pid[c] >= 0);
            if (pid[c] == 0) {
                mmkv *t = open_parts(f, 0, SIZE_1M, parts, 5000);
                char kb[32];
                for (int r = 1; r <= ROUNDS; r++)
                    for (int i = 0; i < PER; i++) {
                        mmkv_key k = numbered_key(kb, sizeof kb, c * PER + i);
                        mmkv_value v = v_int(r * 100000 + c * PER + i);
                        int rc = (i + r) % 7 ? MMKV_OK : mmkv_del(t, &k);
                        if (rc == MMKV_OK || rc == MMKV_NOTFOUND)
                            rc = mmkv_put(t, &k, &v, MMKV_PUT_REPLACE);
                        if (rc != MMKV_OK) {
                            fprintf(stderr, "child %d: %s\n", c, mmkv_errmsg(t));
                            _exit(1);
                        }
                    }
                mmkv_close(t);
                _exit(0);
            }
        }
        expect_children_ok(pid, 2);
        char kb[32];
        for (int i = 0; i < 2 * PER; i++) {
            mmkv_key k = numbered_key(kb, sizeof kb, i);
            mmkv_value v = v_int(ROUNDS * 100000 + i);
            expect_entry(s, &k, &v);
        }
        assert_int_equal(entries_of(s), 2 * PER);
        expect_check_ok(s);
        mmkv_close(s);
        assert_int_equal(mmkv_unlink(f->name), MMKV_OK);
    }
}

/* Adds 1 to the integer at key k (0 if missing) in the open transaction. */
static int add_one(mmkv *t, const mmkv_key *k)
{
    mmkv_value v;
    int rc = mmkv_get(t, k, &v, NULL, NULL);
    if (rc == MMKV_NOTFOUND) v = v_int(0);
    if (rc != MMKV_OK && rc != MMKV_NOTFOUND) return rc;
    if (v.type != MMKV_INT) return MMKV_CORRUPT;
    v.i++;
    return mmkv_put(t, k, &v, MMKV_PUT_REPLACE);
}

/* Two processes, started together, add 1 to shared counters, read and
** written in one transaction, 20000 times each: to a and b (b's part below
** a's) in deferred transactions, a then b or b then a, so the two processes
** meet in opposite orders (the one that holds a's part finds b's part busy
** for its 1 ms: undo, wait for every part, check its reads, redo), and in
** transactions that take every part at once; and to c alone (a's part
** only).  A transaction that fails (MMKV_BUSY: a read changed while it
** waited) is rolled back and run again.  No increment may be lost or
** counted twice: a and b end at 2 x 15000, c at 2 x 5000. */
static void test_parts_two_processes_adding_to_counters_across_parts_lose_nothing(void **state)
{
    fixture *f = *state;
    enum { N = 20000 };
    mmkv *s = open_parts(f, 0, SIZE_1M, NPARTS, 5000);
    int go[2];
    assert_int_equal(pipe(go), 0); /* both start together */
    char names[2][24], low_name[24];
    mmkv_key k[2], low;
    keys_of_part(s, NPARTS - 1, 2, names, k);
    keys_of_part(s, 0, 1, &low_name, &low);
    pid_t pid[2];
    for (int c = 0; c < 2; c++) {
        pid[c] = fork();
        assert_true(pid[c] >= 0);
        if (pid[c] != 0) continue;
        mmkv *t = open_parts(f, 0, SIZE_1M, NPARTS, 5000);
        long retries = 0;
        wait_for_start(go);
        for (int i = 0; i < N; i++) {
            for (;;) {
                int kind = i % 4;
                int rc = kind == 2 ? mmkv_begin(t) : mmkv_begin_deferred(t);
                const mmkv_key *first = kind == 1 ? &low : &k[kind == 3];
                if (rc == MMKV_OK) rc = add_one(t, first);
                if (rc == MMKV_OK && kind != 3) rc = add_one(t, kind == 1 ? &k[0] : &low);
                if (rc == MMKV_OK) rc = mmkv_commit(t);
                if (rc == MMKV_OK) break;
                if (mmkv_in_transaction(t)) mmkv_rollback(t);
                if (rc != MMKV_BUSY || ++retries > 10000) {
                    fprintf(stderr, "child %d: %s\n", c, mmkv_errmsg(t));
                    _exit(1);
                }
            }
        }
        printf("# child %d: %ld transactions run again\n", c, retries);
        fflush(stdout);
        mmkv_close(t);
        _exit(0);
    }
    start_children(go, 2);
    expect_children_ok(pid, 2);
    mmkv_value both = v_int(2 * (N - N / 4)), alone = v_int(2 * (N / 4));
    expect_entry(s, &k[0], &both);
    expect_entry(s, &low, &both);
    expect_entry(s, &k[1], &alone);
    expect_check_ok(s);
    mmkv_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_parts_a_split_store_keeps_every_key_and_spreads_them),
        T(test_parts_bad_part_counts_are_refused),
        T(test_parts_a_transaction_commits_and_rolls_back_across_parts),
        T(test_parts_rollback_to_a_mark_undoes_the_later_changes_of_every_part),
        T(test_parts_a_scan_sees_every_part_and_the_transactions_own_changes),
        T(test_parts_a_transaction_holds_every_part_and_single_writes_take_one),
        T(test_parts_a_writer_dying_in_a_commit_across_parts_leaves_all_or_nothing),
        T(test_parts_a_damaged_part_table_is_refused_not_crashed),
        T(test_parts_a_full_part_says_so_and_changes_nothing),
        T(test_parts_a_deferred_transaction_holds_one_part_while_it_uses_keys_of_it),
        T(test_parts_a_deferred_transaction_redoes_its_puts_when_a_lower_part_is_busy),
        T(test_parts_a_deferred_transaction_that_cannot_take_every_part_keeps_its_puts),
        T(test_parts_a_deferred_transaction_that_cannot_redo_its_puts_fails_whole),
        T(test_parts_a_deferred_transaction_that_read_its_part_redoes_its_changes_if_unchanged),
        T(test_parts_a_deferred_transaction_redoes_its_changes_if_another_key_changed_meanwhile),
        T(test_parts_a_deferred_transaction_whose_read_changed_meanwhile_fails_whole),
        T(test_parts_a_deferred_transaction_whose_insert_was_taken_meanwhile_fails_whole),
        T(test_parts_a_deferred_transaction_that_rolled_back_to_a_mark_checks_its_whole_part),
        T(test_parts_a_deferred_transaction_keeps_little_of_its_reads),
        T(test_parts_a_deferred_transaction_that_loses_its_own_part_fails_whole),
        T(test_parts_a_used_mapping_marked_unfinished_is_not_set_up_again),
        T(test_parts_two_processes_replacing_keys_of_parts_in_opposite_orders_both_finish),
        T(test_parts_two_processes_writing_outside_transactions_lose_nothing),
        T(test_parts_two_processes_adding_to_counters_across_parts_lose_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
