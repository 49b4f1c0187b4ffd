/*
** test_store_posix.c -- the store's unit tests that need POSIX: fork() (a
** second process that reads during a transaction, one that rewrites values
** while this one reads, one that dies holding the lock) and file mode bits.
** Linux only (tests/unit.cmake); tests/win/test_os_win.c and test_proc_win.c
** cover the same ground with Windows processes.
**
** The helpers and fixtures are test_store.c's: it is included here with its
** tests and main left out (MMKV_TEST_STORE_HELPERS_ONLY), so the helpers
** this file does not use are unused functions, hence the pragma.
*/
#define MMKV_TEST_STORE_HELPERS_ONLY
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_store.c"

#include <sys/wait.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Transactions seen from other processes                              */
/* ------------------------------------------------------------------ */

/* The same across processes: a child with timeout 0 during the parent's
** transaction must not see its changes; a child after commit must. */
static void test_store_other_process_sees_committed_data_only_after_commit(void **state)
{
    fixture *f = *state;
    mmkv_key n = mmkv_text_key("n");
    mmkv_value one = v_int(1);
    assert_int_equal(mmkv_begin(f->s), MMKV_OK);
    put_ok(f->s, &n, &one, MMKV_PUT_INSERT);
    for (int round = 0; round < 2; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            mmkv_options o = mmkv_default_options();
            mmkv *s;
            mmkv_value got;
            void *buf = NULL;
            size_t bufsz = 0;
            o.name = f->name;
            o.mode = MMKV_MODE_OPEN;
            o.timeout_ms = 0;
            if (mmkv_open(&o, &s, NULL) != MMKV_OK) _exit(10);
            int rc = mmkv_get(s, &n, &got, &buf, &bufsz);
            if (rc == MMKV_OK && (got.type != MMKV_INT || got.i != 1)) _exit(11);
            mmkv_close(s);
            _exit(rc == MMKV_OK ? 0 : rc == MMKV_NOTFOUND || rc == MMKV_BUSY ? 1 : 12);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), round == 0 ? 1 : 0);
        if (round == 0) assert_int_equal(mmkv_commit(f->s), MMKV_OK);
    }
}

/* Asserts that a child's wait status says it exited with 0. */
static void expect_exited_ok(int status)
{
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* The byte a torn-read test fills a value of n bytes with. */
static unsigned char fill_byte(uint32_t n)
{
    return (unsigned char)(n % 251 + 1);
}

/* Body of the writer of the torn-read test: 40,000 replaces and deletes of
** 8 keys with values of 1..3000 bytes, every byte fill_byte(length). */
static void torn_writer(const char *name)
{
    mmkv *s;
    char kb[32];
    static unsigned char vb[3000];
    mmkv_options o = mmkv_default_options();
    o.name = name;
    o.mode = MMKV_MODE_OPEN;
    if (mmkv_open(&o, &s, NULL) != MMKV_OK) _exit(10);
    rng_state = 4711;
    for (int op = 0; op < 40000; op++) {
        mmkv_key k = numbered_key(kb, sizeof kb, (int)rnd_below(8));
        uint32_t n = 1 + rnd_below(3000);
        memset(vb, fill_byte(n), n);
        mmkv_value v = v_blob(vb, n);
        int rc = rnd_below(10) == 0 ? mmkv_del(s, &k) : mmkv_put(s, &k, &v, MMKV_PUT_REPLACE);
        if (rc != MMKV_OK && rc != MMKV_NOTFOUND) _exit(11);
    }
    mmkv_close(s);
    _exit(0);
}

/* Gets from this process while another process rewrites the same keys: a
** value read is always one that was written whole, never a torn mix. */
static void test_store_reads_never_see_a_torn_value_while_another_process_writes(void **state)
{
    fixture *f = *state;
    char kb[32];
    void *buf = NULL;
    size_t bufsz = 0;
    long reads = 0;
    int status = 0;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) torn_writer(f->name);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        for (int i = 0; i < 8; i++) {
            mmkv_key k = numbered_key(kb, sizeof kb, i);
            mmkv_value got;
            int rc = mmkv_get(f->s, &k, &got, &buf, &bufsz);
            if (rc == MMKV_NOTFOUND) continue;
            if (rc != MMKV_OK) fail_msg("get = %d: %s", rc, mmkv_errmsg(f->s));
            assert_int_equal(got.type, MMKV_BLOB);
            assert_in_range(got.n, 1, 3000);
            const unsigned char *p = got.p;
            for (uint32_t j = 0; j < got.n; j++)
                if (p[j] != fill_byte(got.n))
                    fail_msg("torn value: byte %u of %u is %u", j, got.n, p[j]);
            reads++;
        }
    }
    expect_exited_ok(status);
    assert_true(reads > 100);
    free(buf);
    expect_check_ok(f->s);
}

/* The value the linearizability test writes as version `ver` of key `key`:
** 8 bytes of version, then 40 bytes that depend on both. */
#define LIN_KEYS 4
#define LIN_VALUE 48
#define LIN_DOOMED ((uint64_t)1 << 62) /* versions written only to be rolled back */
static void lin_value(unsigned char *vb, int key, uint64_t ver)
{
    memcpy(vb, &ver, 8);
    for (int j = 8; j < LIN_VALUE; j++) vb[j] = (unsigned char)(key * 37 + ver * 11 + (uint64_t)j);
}

/* Body of the writer of the linearizability test: for `ms` milliseconds,
** replaces the keys with ever higher versions, one per transaction or two
** in one; rolls back every fifth change (a doomed version); and now and
** then deletes a key and puts it back (changes to the index's shape).
** Every value has the same size, so freed blocks are reused at once. */
static void lin_writer(const char *name, int ms)
{
    mmkv *s;
    char kb[32];
    unsigned char vb[LIN_VALUE];
    mmkv_options o = mmkv_default_options();
    o.name = name;
    o.mode = MMKV_MODE_OPEN;
    if (mmkv_open(&o, &s, NULL) != MMKV_OK) _exit(10);
    rng_state = 99;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t ver = 0;
    for (long op = 0;; op++) {
        if (op % 256 == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > ms) break;
        }
        int key = (int)rnd_below(LIN_KEYS), what = (int)rnd_below(20);
        mmkv_key k = numbered_key(kb, sizeof kb, key);
        int rc = MMKV_OK;
        if (what < 4) { /* doomed: never to be seen */
            lin_value(vb, key, ++ver | LIN_DOOMED);
            mmkv_value v = v_blob(vb, LIN_VALUE);
            if (mmkv_begin(s) || mmkv_put(s, &k, &v, MMKV_PUT_REPLACE) || mmkv_rollback(s))
                _exit(11);
        } else if (what == 4) { /* delete and put back, in two transactions */
            rc = mmkv_del(s, &k);
            if (rc != MMKV_OK && rc != MMKV_NOTFOUND) _exit(12);
            lin_value(vb, key, ++ver);
            mmkv_value v = v_blob(vb, LIN_VALUE);
            if (mmkv_put(s, &k, &v, MMKV_PUT_REPLACE)) _exit(13);
        } else if (what < 8) { /* two keys in one transaction */
            mmkv_key k2 = numbered_key(kb + 16, sizeof kb - 16, (key + 1) % LIN_KEYS);
            unsigned char vb2[LIN_VALUE];
            lin_value(vb, key, ++ver);
            lin_value(vb2, (key + 1) % LIN_KEYS, ++ver);
            mmkv_value v = v_blob(vb, LIN_VALUE), v2 = v_blob(vb2, LIN_VALUE);
            if (mmkv_begin(s) || mmkv_put(s, &k, &v, MMKV_PUT_REPLACE) ||
                mmkv_put(s, &k2, &v2, MMKV_PUT_REPLACE) || mmkv_commit(s))
                _exit(14);
        } else {
            lin_value(vb, key, ++ver);
            mmkv_value v = v_blob(vb, LIN_VALUE);
            if (mmkv_put(s, &k, &v, MMKV_PUT_REPLACE)) _exit(15);
        }
    }
    mmkv_close(s);
    _exit(0);
}

/* Lookups without the lock while another process writes: every value read
** was committed (never a rolled-back version), is whole and belongs to its
** key, and a key's versions never go backwards from one read to the next
** (no read returns a value older than one an earlier read returned). */
static void test_store_lock_free_reads_are_committed_whole_and_in_order(void **state)
{
    fixture *f = *state;
    char kb[32];
    unsigned char want[LIN_VALUE];
    void *buf = NULL;
    size_t bufsz = 0;
    uint64_t last[LIN_KEYS] = {0};
    long found = 0;
    int status = 0;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) lin_writer(f->name, 700);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        for (int key = 0; key < LIN_KEYS; key++) {
            mmkv_key k = numbered_key(kb, sizeof kb, key);
            mmkv_value got;
            int rc = mmkv_get(f->s, &k, &got, &buf, &bufsz);
            if (rc == MMKV_NOTFOUND) continue;
            if (rc != MMKV_OK) fail_msg("get = %d: %s", rc, mmkv_errmsg(f->s));
            assert_int_equal(got.type, MMKV_BLOB);
            assert_int_equal(got.n, LIN_VALUE);
            uint64_t ver;
            memcpy(&ver, got.p, 8);
            if (ver & LIN_DOOMED) fail_msg("key %d: read a rolled-back version", key);
            lin_value(want, key, ver);
            if (memcmp(got.p, want, LIN_VALUE) != 0)
                fail_msg("key %d: version %llu read torn or foreign", key, (unsigned long long)ver);
            if (ver < last[key])
                fail_msg("key %d: version %llu read after %llu", key, (unsigned long long)ver,
                         (unsigned long long)last[key]);
            last[key] = ver;
            found++;
        }
    }
    expect_exited_ok(status);
    assert_true(found > 1000);
    free(buf);
    expect_check_ok(f->s);
}

/* Forks a child that opens `name`, begins, changes every entry (replace,
** delete, insert) and dies holding the lock; waits for it. */
static void die_in_transaction(const char *name, int nkeys)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        mmkv *s;
        char kb[32];
        mmkv_options o = mmkv_default_options();
        o.name = name;
        o.mode = MMKV_MODE_OPEN;
        if (mmkv_open(&o, &s, NULL) != MMKV_OK || mmkv_begin(s) != MMKV_OK) _exit(10);
        for (int i = 0; i < nkeys + 50; i++) {
            mmkv_key k = numbered_key(kb, sizeof kb, i);
            mmkv_value v = v_text("doomed", 6);
            int rc = i % 2 && i < nkeys ? mmkv_del(s, &k) : mmkv_put(s, &k, &v, MMKV_PUT_REPLACE);
            if (rc != MMKV_OK) _exit(11);
        }
        _exit(0); /* no commit, no close: the lock is held */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    expect_exited_ok(status);
}

/* The next locker undoes a dead process's transaction: first with this
** handle open throughout, then with no handle open when it died. */
static void test_store_transaction_of_a_process_that_died_is_rolled_back(void **state)
{
    fixture *f = *state;
    fill_mixed(f->s, 60);
    snapshot s0 = take_snapshot(f->s);
    die_in_transaction(f->name, 60);
    snapshot s1 = take_snapshot(f->s);
    expect_same_snapshot(&s0, &s1);
    assert_int_equal(entries_of(f->s), 60);
    expect_check_ok(f->s);
    mmkv_close(f->s);
    f->s = NULL;
    die_in_transaction(f->name, 60);
    f->s = open_ok_ex(f->name, NULL, SIZE_1M, MMKV_MODE_OPEN, 0);
    snapshot s2 = take_snapshot(f->s);
    expect_same_snapshot(&s0, &s2);
    expect_check_ok(f->s);
    mmkv_key k = mmkv_text_key("after");
    mmkv_value v = v_int(1);
    put_ok(f->s, &k, &v, MMKV_PUT_INSERT);
    assert_int_equal(entries_of(f->s), 61);
    free_snapshot(&s0);
    free_snapshot(&s1);
    free_snapshot(&s2);
}

/* ------------------------------------------------------------------ */
/* File mode bits                                                      */
/* ------------------------------------------------------------------ */

static void test_store_file_store_gets_the_perms_asked_for(void **state)
{
    fixture *f = *state;
    mmkv_options o = mmkv_default_options();
    mmkv *s;
    struct stat st;
    o.file = f->file;
    o.size = SIZE_64K;
    o.perms = 0640;
    assert_int_equal(mmkv_open(&o, &s, NULL), MMKV_OK);
    mmkv_close(s);
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
}

/* ------------------------------------------------------------------ */

int main(void)
{
    const struct CMUnitTest tests[] = {
        TS(test_store_other_process_sees_committed_data_only_after_commit),
        TS(test_store_reads_never_see_a_torn_value_while_another_process_writes),
        TS(test_store_lock_free_reads_are_committed_whole_and_in_order),
        TS(test_store_transaction_of_a_process_that_died_is_rolled_back),
        T(test_store_file_store_gets_the_perms_asked_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
