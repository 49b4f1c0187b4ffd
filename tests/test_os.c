/*
** test_os.c -- cmocka unit tests of the platform layer (src/os.h).
**
** Covers: opening and creating named and file mappings (the created and
** sole flags, MMKV_OS_EXCL, sizes taken from an existing mapping, discard on
** close, permission bits), the init lock that serialises openers, the data
** lock (lock/unlock, timeouts of 0 and 200 ms against a holder in another
** process, a second lock in the same thread, an owner that dies holding it
** and the repair that follows), unlink, flush and the random source.
**
** The mappings made here are raw (no store header); the lock word is put at
** offset 0 of the mapping.  Child processes never call cmocka: they report
** through their exit status and a pipe.
*/
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmkv.h"
#include "os.h"

#define SIZE_64K (64u * 1024u)
#define SIZE_1M (1024u * 1024u)

/* Per-test state: a mapping name unique to this run, and a temp dir. */
typedef struct fixture {
    char name[64];
    char dir[64];
    char file[128];
} fixture;

static int name_counter;

/* Returns the monotonic clock in milliseconds. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes the /dev/shm path of mapping `name` into out. */
static void shm_file(const char *name, char *out, size_t n)
{
    snprintf(out, n, "/dev/shm/sqlite-mmap.%s", name);
}

/* Returns non-zero if the /dev/shm file of `name` exists. */
static int shm_exists(const char *name)
{
    char path[128];
    struct stat st;
    shm_file(name, path, sizeof path);
    return stat(path, &st) == 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->name, sizeof f->name, "ost-%ld-%d", (long)getpid(), ++name_counter);
    snprintf(f->dir, sizeof f->dir, "/tmp/mmkv-ost-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->file, sizeof f->file, "%s/map", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    mmkv_os_unlink(f->name);
    unlink(f->file);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Does what the store does last when it sets a new mapping up: replaces
** the unfinished marker at offset 0 with a word of its own. */
static void finish_setup(mmkv_os_map *m)
{
    uint64_t word = 0x1234;
    memcpy(mmkv_os_base(m), &word, 8);
}

/* Opens the named mapping with flags; asserts success; returns the map and
** fills *created and *sole.  A created mapping is finished (finish_setup);
** the init lock is released before returning. */
static mmkv_os_map *open_named(const char *name, int flags, uint64_t size, unsigned perms,
                               int *created, int *sole)
{
    mmkv_os_map *m = NULL;
    char err[256] = "";
    int c = -1, so = -1;
    int rc = mmkv_os_open(name, 0, flags, size, perms, 1000, &m, &c, &so, err, sizeof err);
    if (rc != MMKV_OK) fail_msg("mmkv_os_open(%s) = %d: %s", name, rc, err);
    assert_non_null(m);
    if (c) finish_setup(m);
    mmkv_os_open_done(m);
    if (created) *created = c;
    if (sole) *sole = so;
    return m;
}

/* Creates the named mapping of `size` bytes with an initialised lock at
** offset 0. */
static mmkv_os_map *create_with_lock(const char *name, uint64_t size)
{
    int created, sole;
    mmkv_os_map *m = open_named(name, MMKV_OS_CREATE | MMKV_OS_EXCL, size, 0600, &created, &sole);
    assert_true(created);
    assert_int_equal(mmkv_os_lock_init(m, mmkv_os_base(m)), 0);
    return m;
}

/* What a lock-holding child does once it has the lock. */
enum { CHILD_HOLD_UNTIL_TOLD, CHILD_DIE_HOLDING, CHILD_HOLD_100MS };

/* Body of a child: opens `name`, takes the lock, writes 'L' to `up`, then
** acts per `how`.  Exit status 0 on success, 10+ on a failure. */
static void child_lock_holder(const char *name, int how, int up, int down)
{
    mmkv_os_map *m;
    char err[256];
    int c, so, rc;
    char byte = 'L';
    if (mmkv_os_open(name, 0, 0, 0, 0600, 1000, &m, &c, &so, err, sizeof err) != MMKV_OK) _exit(10);
    mmkv_os_open_done(m);
    rc = mmkv_os_lock(m, mmkv_os_base(m), 2000);
    if (rc != MMKV_OS_LOCKED) _exit(11);
    if (write(up, &byte, 1) != 1) _exit(12);
    if (how == CHILD_DIE_HOLDING) _exit(0);
    if (how == CHILD_HOLD_100MS) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    } else if (read(down, &byte, 1) != 1) {
        _exit(13);
    }
    mmkv_os_unlock(m, mmkv_os_base(m));
    mmkv_os_close(m, 0);
    _exit(0);
}

/* A child process holding the lock of a mapping, and pipes to talk to it. */
typedef struct holder {
    pid_t pid;
    int up;   /* read end: the child writes 'L' once it holds the lock */
    int down; /* write end: the parent writes to let it go */
    int how;  /* CHILD_* */
} holder;

/* Forks a child that takes the lock of `name`; returns once it holds it. */
static holder start_holder(const char *name, int how)
{
    int up[2], down[2];
    holder h;
    char byte = 0;
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    h.pid = fork();
    assert_true(h.pid >= 0);
    if (h.pid == 0) {
        close(up[0]);
        close(down[1]);
        child_lock_holder(name, how, up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    h.up = up[0];
    h.down = down[1];
    h.how = how;
    assert_int_equal(read(h.up, &byte, 1), 1);
    assert_int_equal(byte, 'L');
    return h;
}

/* Lets the holder go (if it waits) and asserts it exited with status 0. */
static void finish_holder(holder *h)
{
    int status = 0;
    char byte = 'G';
    if (h->how == CHILD_HOLD_UNTIL_TOLD) assert_int_equal(write(h->down, &byte, 1), 1);
    assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(h->up);
    close(h->down);
}

/* Forks a child that tries the lock of `name` with timeout 0, unlocks if it
** got it, and exits with the mmkv_os_lock result (or 10+ on failure). */
static int lock_in_child(const char *name)
{
    int status = 0;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        mmkv_os_map *m;
        char err[256];
        int c, so;
        if (mmkv_os_open(name, 0, 0, 0, 0600, 1000, &m, &c, &so, err, sizeof err) != MMKV_OK)
            _exit(10);
        mmkv_os_open_done(m);
        int rc = mmkv_os_lock(m, mmkv_os_base(m), 0);
        if (rc == MMKV_OS_LOCKED || rc == MMKV_OS_OWNERDEAD) mmkv_os_unlock(m, mmkv_os_base(m));
        mmkv_os_close(m, 0);
        _exit(rc);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_os_create_sets_created_and_sole(void **state)
{
    fixture *f = *state;
    int created = -1, sole = -1;
    assert_false(shm_exists(f->name));
    mmkv_os_map *m = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0600, &created, &sole);
    assert_true(created);
    assert_true(sole);
    assert_true(shm_exists(f->name));
    assert_non_null(mmkv_os_base(m));
    mmkv_os_close(m, 0);
}

static void test_os_created_mapping_has_the_requested_size(void **state)
{
    fixture *f = *state;
    char path[128];
    struct stat st;
    mmkv_os_map *m = open_named(f->name, MMKV_OS_CREATE, 3 * SIZE_64K, 0600, NULL, NULL);
    assert_int_equal(mmkv_os_size(m), 3 * SIZE_64K);
    shm_file(f->name, path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 3 * SIZE_64K);
    /* Every byte of the mapping is addressable. */
    unsigned char *b = mmkv_os_base(m);
    b[0] = 1;
    b[3 * SIZE_64K - 1] = 2;
    assert_int_equal(b[3 * SIZE_64K - 1], 2);
    mmkv_os_close(m, 0);
}

static void test_os_open_of_existing_mapping_takes_its_size_from_it(void **state)
{
    fixture *f = *state;
    int created = -1, sole = -1;
    mmkv_os_map *m = open_named(f->name, MMKV_OS_CREATE, 2 * SIZE_64K, 0600, NULL, NULL);
    mmkv_os_close(m, 0);
    m = open_named(f->name, MMKV_OS_CREATE, SIZE_1M, 0600, &created, &sole);
    assert_false(created);
    assert_int_equal(mmkv_os_size(m), 2 * SIZE_64K);
    mmkv_os_close(m, 0);
    m = open_named(f->name, 0, SIZE_1M, 0600, &created, &sole);
    assert_false(created);
    assert_int_equal(mmkv_os_size(m), 2 * SIZE_64K);
    mmkv_os_close(m, 0);
}

static void test_os_second_handle_is_not_sole_while_the_first_is_open(void **state)
{
    fixture *f = *state;
    int created = -1, sole = -1;
    mmkv_os_map *a = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0600, &created, &sole);
    assert_true(sole);
    mmkv_os_map *b = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0600, &created, &sole);
    assert_false(created);
    assert_false(sole);
    mmkv_os_close(b, 0);
    /* `a` is still open, so a third handle is not alone either. */
    mmkv_os_map *c = open_named(f->name, 0, SIZE_64K, 0600, &created, &sole);
    assert_false(sole);
    mmkv_os_close(c, 0);
    mmkv_os_close(a, 0);
    c = open_named(f->name, 0, SIZE_64K, 0600, &created, &sole);
    assert_false(created);
    assert_true(sole);
    mmkv_os_close(c, 0);
}

/* A handle held by another process also makes an opener not sole. */
static void test_os_handle_in_another_process_makes_opener_not_sole(void **state)
{
    fixture *f = *state;
    int sole = -1;
    mmkv_os_map *m = create_with_lock(f->name, SIZE_64K);
    mmkv_os_close(m, 0);
    holder h = start_holder(f->name, CHILD_HOLD_UNTIL_TOLD);
    m = open_named(f->name, 0, 0, 0600, NULL, &sole);
    assert_false(sole);
    mmkv_os_close(m, 0);
    finish_holder(&h);
    m = open_named(f->name, 0, 0, 0600, NULL, &sole);
    assert_true(sole);
    mmkv_os_close(m, 0);
}

static void test_os_excl_on_existing_mapping_fails_with_cantopen(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0600, NULL, NULL);
    mmkv_os_map *m2 = (mmkv_os_map *)&m; /* any non-NULL value, to see it reset */
    char err[256] = "";
    int c, so;
    int rc = mmkv_os_open(f->name, 0, MMKV_OS_CREATE | MMKV_OS_EXCL, SIZE_64K, 0600, 1000, &m2, &c,
                          &so, err, sizeof err);
    assert_int_equal(rc, MMKV_CANTOPEN);
    assert_null(m2);
    assert_true(strlen(err) > 0);
    mmkv_os_close(m, 0);
}

static void test_os_open_without_create_of_missing_mapping_fails_with_cantopen(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = NULL;
    char err[256] = "";
    int c, so;
    int rc = mmkv_os_open(f->name, 0, 0, SIZE_64K, 0600, 1000, &m, &c, &so, err, sizeof err);
    assert_int_equal(rc, MMKV_CANTOPEN);
    assert_null(m);
    assert_non_null(strstr(err, f->name));
    assert_false(shm_exists(f->name));
}

static void test_os_bytes_written_through_one_handle_are_seen_by_another(void **state)
{
    fixture *f = *state;
    mmkv_os_map *a = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0600, NULL, NULL);
    mmkv_os_map *b = open_named(f->name, 0, 0, 0600, NULL, NULL);
    memcpy((char *)mmkv_os_base(a) + 1000, "shared", 6);
    assert_memory_equal((char *)mmkv_os_base(b) + 1000, "shared", 6);
    mmkv_os_close(b, 0);
    mmkv_os_close(a, 0);
}

static void test_os_open_without_create_opens_existing_mapping_with_its_size(void **state)
{
    fixture *f = *state;
    int created = -1;
    mmkv_os_map *a = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0600, NULL, NULL);
    memcpy((char *)mmkv_os_base(a) + 10, "hello", 5);
    mmkv_os_close(a, 0);
    mmkv_os_map *r = open_named(f->name, 0, 0, 0600, &created, NULL);
    assert_false(created);
    assert_int_equal(mmkv_os_size(r), SIZE_64K);
    assert_memory_equal((char *)mmkv_os_base(r) + 10, "hello", 5);
    mmkv_os_close(r, 0);
}

/* A creator that died before finishing leaves the marker: an opener
** without MMKV_OS_CREATE is told there is no such mapping, one with it
** gets created = 1 and sets it up again. */
static void test_os_unfinished_mapping_is_set_up_again_by_a_creating_opener(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = NULL, *m2 = NULL;
    char err[256] = "";
    int c = -1, so = -1;
    assert_int_equal(mmkv_os_open(f->name, 0, MMKV_OS_CREATE, SIZE_64K, 0600, 1000, &m, &c, &so,
                                  err, sizeof err),
                     MMKV_OK);
    assert_true(c);
    uint64_t first;
    memcpy(&first, mmkv_os_base(m), 8);
    assert_true(first == MMKV_OS_UNFINISHED);
    mmkv_os_open_done(m);
    mmkv_os_close(m, 0); /* as if the creator died here */
    assert_int_equal(mmkv_os_open(f->name, 0, 0, 0, 0600, 1000, &m2, &c, &so, err, sizeof err),
                     MMKV_CANTOPEN);
    assert_non_null(strstr(err, "no such mapping"));
    assert_int_equal(mmkv_os_open(f->name, 0, MMKV_OS_CREATE, 2 * SIZE_64K, 0600, 1000, &m2, &c,
                                  &so, err, sizeof err),
                     MMKV_OK);
    assert_true(c);
    assert_int_equal(mmkv_os_size(m2), 2 * SIZE_64K);
    mmkv_os_open_done(m2);
    mmkv_os_close(m2, 0);
}

/* While a handle is between mmkv_os_open and mmkv_os_open_done, another
** opener waits for it and gives up with MMKV_BUSY after its timeout. */
static void test_os_init_lock_keeps_a_second_opener_out_until_open_done(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = NULL;
    char err[256] = "";
    int c, so, status;
    int rc = mmkv_os_open(f->name, 0, MMKV_OS_CREATE, SIZE_64K, 0600, 1000, &m, &c, &so, err,
                          sizeof err);
    assert_int_equal(rc, MMKV_OK);
    finish_setup(m);
    for (int round = 0; round < 2; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            mmkv_os_map *m2;
            char e2[256];
            int c2, s2;
            int64_t t0 = now_ms();
            int r = mmkv_os_open(f->name, 0, 0, 0, 0600, 150, &m2, &c2, &s2, e2, sizeof e2);
            int64_t waited = now_ms() - t0;
            if (r == MMKV_OK) {
                mmkv_os_open_done(m2);
                mmkv_os_close(m2, 0);
                _exit(0);
            }
            _exit(r == MMKV_BUSY && waited >= 100 ? 1 : 2);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        /* Round 0: the init lock is held, so BUSY; round 1: released. */
        assert_int_equal(WEXITSTATUS(status), round == 0 ? 1 : 0);
        if (round == 0) mmkv_os_open_done(m);
    }
    mmkv_os_close(m, 0);
}

static void test_os_close_with_discard_removes_a_created_mapping(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0600, NULL, NULL);
    assert_true(shm_exists(f->name));
    mmkv_os_close(m, 1);
    assert_false(shm_exists(f->name));
}

static void test_os_close_with_discard_keeps_a_mapping_it_did_not_create(void **state)
{
    fixture *f = *state;
    mmkv_os_map *a = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0600, NULL, NULL);
    mmkv_os_close(a, 0);
    mmkv_os_map *b = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0600, NULL, NULL);
    mmkv_os_close(b, 1);
    assert_true(shm_exists(f->name));
}

static void test_os_lock_and_unlock_then_lock_again(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = create_with_lock(f->name, SIZE_64K);
    void *lk = mmkv_os_base(m);
    assert_int_equal(mmkv_os_lock(m, lk, 0), MMKV_OS_LOCKED);
    mmkv_os_unlock(m, lk);
    assert_int_equal(mmkv_os_lock(m, lk, 1000), MMKV_OS_LOCKED);
    mmkv_os_unlock(m, lk);
    /* Unlocked: another process gets it at once. */
    assert_int_equal(lock_in_child(f->name), MMKV_OS_LOCKED);
    mmkv_os_close(m, 0);
}

static void test_os_lock_held_by_this_thread_reports_deadlock(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = create_with_lock(f->name, SIZE_64K);
    void *lk = mmkv_os_base(m);
    assert_int_equal(mmkv_os_lock(m, lk, 0), MMKV_OS_LOCKED);
    assert_int_equal(mmkv_os_lock(m, lk, 100), MMKV_OS_DEADLOCK);
    mmkv_os_unlock(m, lk);
    mmkv_os_close(m, 0);
}

static void test_os_lock_with_zero_timeout_fails_while_another_process_holds_it(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = create_with_lock(f->name, SIZE_64K);
    holder h = start_holder(f->name, CHILD_HOLD_UNTIL_TOLD);
    int64_t t0 = now_ms();
    assert_int_equal(mmkv_os_lock(m, mmkv_os_base(m), 0), MMKV_OS_TIMEOUT);
    assert_true(now_ms() - t0 < 50);
    finish_holder(&h);
    assert_int_equal(mmkv_os_lock(m, mmkv_os_base(m), 0), MMKV_OS_LOCKED);
    mmkv_os_unlock(m, mmkv_os_base(m));
    mmkv_os_close(m, 0);
}

static void test_os_lock_with_200ms_timeout_waits_about_that_long(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = create_with_lock(f->name, SIZE_64K);
    holder h = start_holder(f->name, CHILD_HOLD_UNTIL_TOLD);
    int64_t t0 = now_ms();
    assert_int_equal(mmkv_os_lock(m, mmkv_os_base(m), 200), MMKV_OS_TIMEOUT);
    int64_t waited = now_ms() - t0;
    assert_in_range(waited, 190, 1000);
    finish_holder(&h);
    mmkv_os_close(m, 0);
}

static void test_os_lock_is_had_once_the_other_process_unlocks(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = create_with_lock(f->name, SIZE_64K);
    holder h = start_holder(f->name, CHILD_HOLD_100MS);
    int64_t t0 = now_ms();
    assert_int_equal(mmkv_os_lock(m, mmkv_os_base(m), 3000), MMKV_OS_LOCKED);
    assert_in_range(now_ms() - t0, 50, 2000);
    mmkv_os_unlock(m, mmkv_os_base(m));
    finish_holder(&h);
    mmkv_os_close(m, 0);
}

static void test_os_lock_after_owner_died_reports_ownerdead(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = create_with_lock(f->name, SIZE_64K);
    holder h = start_holder(f->name, CHILD_DIE_HOLDING);
    finish_holder(&h);
    assert_int_equal(mmkv_os_lock(m, mmkv_os_base(m), 1000), MMKV_OS_OWNERDEAD);
    mmkv_os_lock_repaired(m, mmkv_os_base(m));
    mmkv_os_unlock(m, mmkv_os_base(m));
    mmkv_os_close(m, 0);
}

/* After repair the lock is an ordinary one again, in this and other processes. */
static void test_os_lock_works_normally_after_repair(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = create_with_lock(f->name, SIZE_64K);
    void *lk = mmkv_os_base(m);
    holder h = start_holder(f->name, CHILD_DIE_HOLDING);
    finish_holder(&h);
    assert_int_equal(mmkv_os_lock(m, lk, 1000), MMKV_OS_OWNERDEAD);
    mmkv_os_lock_repaired(m, lk);
    /* While we hold it, another process cannot have it. */
    assert_int_equal(lock_in_child(f->name), MMKV_OS_TIMEOUT);
    mmkv_os_unlock(m, lk);
    assert_int_equal(mmkv_os_lock(m, lk, 0), MMKV_OS_LOCKED);
    mmkv_os_unlock(m, lk);
    assert_int_equal(lock_in_child(f->name), MMKV_OS_LOCKED);
    assert_int_equal(mmkv_os_lock(m, lk, 0), MMKV_OS_LOCKED);
    mmkv_os_unlock(m, lk);
    mmkv_os_close(m, 0);
}

static void test_os_unlink_returns_one_then_zero(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0600, NULL, NULL);
    mmkv_os_close(m, 0);
    assert_int_equal(mmkv_os_unlink(f->name), 1);
    assert_false(shm_exists(f->name));
    assert_int_equal(mmkv_os_unlink(f->name), 0);
}

/* Returns the permission bits of the /dev/shm file of `name`. */
static unsigned shm_perms(const char *name)
{
    char path[128];
    struct stat st;
    shm_file(name, path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

static void test_os_created_mapping_has_perms_0600_by_default(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0600, NULL, NULL);
    assert_int_equal(shm_perms(f->name), 0600);
    mmkv_os_close(m, 0);
}

/* The requested bits are given exactly, whatever the umask. */
static void test_os_created_mapping_has_the_perms_asked_for(void **state)
{
    fixture *f = *state;
    mode_t old = umask(077);
    mmkv_os_map *m = open_named(f->name, MMKV_OS_CREATE, SIZE_64K, 0640, NULL, NULL);
    umask(old);
    assert_int_equal(shm_perms(f->name), 0640);
    mmkv_os_close(m, 0);
}

static void test_os_file_mapping_is_created_with_size_and_perms(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = NULL;
    char err[256] = "";
    int created = -1, sole = -1;
    struct stat st;
    int rc = mmkv_os_open(f->file, 1, MMKV_OS_CREATE, 2 * SIZE_64K, 0600, 1000, &m, &created, &sole,
                          err, sizeof err);
    assert_int_equal(rc, MMKV_OK);
    mmkv_os_open_done(m);
    assert_true(created);
    assert_true(sole);
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(st.st_size, 2 * SIZE_64K);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(mmkv_os_size(m), 2 * SIZE_64K);
    mmkv_os_close(m, 0);
}

static void test_os_file_mapping_writes_reach_the_file_after_flush(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = NULL;
    char err[256] = "", buf[8] = "";
    int created, sole;
    assert_int_equal(mmkv_os_open(f->file, 1, MMKV_OS_CREATE, SIZE_64K, 0600, 1000, &m, &created,
                                  &sole, err, sizeof err),
                     MMKV_OK);
    mmkv_os_open_done(m);
    memcpy((char *)mmkv_os_base(m) + 5000, "persist", 7);
    assert_int_equal(mmkv_os_flush(m), 0);
    mmkv_os_close(m, 0);
    int fd = open(f->file, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, 7, 5000), 7);
    close(fd);
    assert_memory_equal(buf, "persist", 7);
}

static void test_os_file_mapping_of_existing_file_is_not_created(void **state)
{
    fixture *f = *state;
    mmkv_os_map *m = NULL;
    char err[256] = "";
    int created = -1, sole;
    int fd = open(f->file, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 3 * SIZE_64K), 0);
    close(fd);
    assert_int_equal(mmkv_os_open(f->file, 1, MMKV_OS_CREATE, SIZE_64K, 0600, 1000, &m, &created,
                                  &sole, err, sizeof err),
                     MMKV_OK);
    mmkv_os_open_done(m);
    assert_false(created);
    assert_int_equal(mmkv_os_size(m), 3 * SIZE_64K);
    mmkv_os_close(m, 1);
    /* Not created by us, so discard leaves it. */
    assert_int_equal(access(f->file, F_OK), 0);
}

static void test_os_random_returns_different_values(void **state)
{
    (void)state;
    uint64_t a = mmkv_os_random(), b = mmkv_os_random(), c = mmkv_os_random();
    assert_true(a != b || b != c);
    assert_int_not_equal(a | b | c, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_os_create_sets_created_and_sole),
        T(test_os_created_mapping_has_the_requested_size),
        T(test_os_open_of_existing_mapping_takes_its_size_from_it),
        T(test_os_second_handle_is_not_sole_while_the_first_is_open),
        T(test_os_handle_in_another_process_makes_opener_not_sole),
        T(test_os_excl_on_existing_mapping_fails_with_cantopen),
        T(test_os_open_without_create_of_missing_mapping_fails_with_cantopen),
        T(test_os_bytes_written_through_one_handle_are_seen_by_another),
        T(test_os_open_without_create_opens_existing_mapping_with_its_size),
        T(test_os_unfinished_mapping_is_set_up_again_by_a_creating_opener),
        T(test_os_init_lock_keeps_a_second_opener_out_until_open_done),
        T(test_os_close_with_discard_removes_a_created_mapping),
        T(test_os_close_with_discard_keeps_a_mapping_it_did_not_create),
        T(test_os_lock_and_unlock_then_lock_again),
        T(test_os_lock_held_by_this_thread_reports_deadlock),
        T(test_os_lock_with_zero_timeout_fails_while_another_process_holds_it),
        T(test_os_lock_with_200ms_timeout_waits_about_that_long),
        T(test_os_lock_is_had_once_the_other_process_unlocks),
        T(test_os_lock_after_owner_died_reports_ownerdead),
        T(test_os_lock_works_normally_after_repair),
        T(test_os_unlink_returns_one_then_zero),
        T(test_os_created_mapping_has_perms_0600_by_default),
        T(test_os_created_mapping_has_the_perms_asked_for),
        T(test_os_file_mapping_is_created_with_size_and_perms),
        T(test_os_file_mapping_writes_reach_the_file_after_flush),
        T(test_os_file_mapping_of_existing_file_is_not_created),
        T(test_os_random_returns_different_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
