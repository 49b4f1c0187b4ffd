/*
** test_os_win.c -- cmocka tests of the Windows platform layer (src/os_win.c),
** through the store's API (src/mmkv.h) and direct looks at the kernel
** objects: section names and namespaces, lifetime, the named-mutex lock
** (timeout, owner death, same-thread re-entry), UTF-16 file paths, one lock
** for every spelling of a file, and owner-only security.
**
** Tests that need a second process run this program again as
**     test_os_win --child ROLE ARGS...
** (roles in child_main below).  Each test uses mapping names unique to this
** run and a fresh temporary directory, and removes them at the end.
*/
#include "mmkv.h"
#include "os.h"
#include "winproc.h"

#include <aclapi.h>
#include <sddl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SIZE_64K (64 * 1024)

/* --- helpers --- */

/* Opens the store `name` (mode, size) and returns its code; *out is the
** handle on success. */
static int open_named(const char *name, int mode, uint64_t size, unsigned perms, mmkv **out)
{
    mmkv_options o = mmkv_default_options();
    o.name = name;
    o.mode = mode;
    o.size = size;
    o.perms = perms;
    o.timeout_ms = 2000;
    char *err = NULL;
    int rc = mmkv_open(&o, out, &err);
    free(err);
    return rc;
}

/* Opens the file store at path (UTF-8) like open_named. */
static int open_file(const char *path, int mode, mmkv **out)
{
    mmkv_options o = mmkv_default_options();
    o.file = path;
    o.mode = mode;
    o.size = SIZE_64K;
    o.timeout_ms = 2000;
    char *err = NULL;
    int rc = mmkv_open(&o, out, &err);
    free(err);
    return rc;
}

/* Puts the text value v under the text key k. */
static int put_text(mmkv *s, const char *k, const char *v)
{
    mmkv_key key = mmkv_text_key(k);
    mmkv_value val = {.type = MMKV_TEXT, .p = v, .n = (uint32_t)strlen(v)};
    return mmkv_put(s, &key, &val, MMKV_PUT_REPLACE);
}

/* Puts the integer value v under the text key k. */
static int put_int(mmkv *s, const char *k, int64_t v)
{
    mmkv_key key = mmkv_text_key(k);
    mmkv_value val = {.type = MMKV_INT, .i = v};
    return mmkv_put(s, &key, &val, MMKV_PUT_REPLACE);
}

/* Returns the integer under k, or -1 when it is missing or not one. */
static int64_t get_int(mmkv *s, const char *k)
{
    mmkv_key key = mmkv_text_key(k);
    mmkv_value v;
    void *buf = NULL;
    size_t n = 0;
    int rc = mmkv_get(s, &key, &v, &buf, &n);
    free(buf);
    return rc == MMKV_OK && v.type == MMKV_INT ? v.i : -1;
}

/* Returns 1 if the text under k equals want. */
static int text_is(mmkv *s, const char *k, const char *want)
{
    mmkv_key key = mmkv_text_key(k);
    mmkv_value v;
    void *buf = NULL;
    size_t n = 0;
    int ok = mmkv_get(s, &key, &v, &buf, &n) == MMKV_OK && v.type == MMKV_TEXT &&
             v.n == strlen(want) && memcmp(v.p, want, v.n) == 0;
    free(buf);
    return ok;
}

/* Asserts that the whole mapping checks out. */
static void assert_check_ok(mmkv *s)
{
    char *report = NULL;
    assert_int_equal(mmkv_check(s, &report), MMKV_OK);
    assert_string_equal(report, "ok");
    free(report);
}

/* Returns 1 if a section called wname exists. */
static int section_exists(const wchar_t *wname)
{
    HANDLE h = OpenFileMappingW(FILE_MAP_READ, FALSE, wname);
    if (h) CloseHandle(h);
    return h != NULL;
}

/* Returns 1 if the security descriptor sd has a protected DACL with exactly
** one entry: access allowed to the current user. */
static int is_owner_only(PSECURITY_DESCRIPTOR sd, PACL dacl)
{
    SECURITY_DESCRIPTOR_CONTROL ctl;
    DWORD rev;
    if (!sd || !dacl || !GetSecurityDescriptorControl(sd, &ctl, &rev)) return 0;
    if (!(ctl & SE_DACL_PROTECTED) || dacl->AceCount != 1) return 0;
    ACCESS_ALLOWED_ACE *ace;
    if (!GetAce(dacl, 0, (void **)&ace) || ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE) return 0;
    union {
        TOKEN_USER user;
        char bytes[512];
    } info;
    HANDLE token;
    DWORD len;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) return 0;
    int ok = GetTokenInformation(token, TokenUser, &info, sizeof info, &len) &&
             EqualSid((PSID)&ace->SidStart, info.user.User.Sid);
    CloseHandle(token);
    return ok;
}

/* Returns 1 if the named section wname is owner-only (see is_owner_only). */
static int section_is_owner_only(const wchar_t *wname)
{
    HANDLE h = OpenFileMappingW(READ_CONTROL | FILE_MAP_READ, FALSE, wname);
    if (!h) return 0;
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL;
    int ok = GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl,
                             NULL, &sd) == ERROR_SUCCESS &&
             is_owner_only(sd, dacl);
    LocalFree(sd);
    CloseHandle(h);
    return ok;
}

/* Fills wname with L"Local\\sqlite-mmap.<name>". */
static void local_section_name(const char *name, wchar_t *wname, size_t n)
{
    swprintf(wname, n, L"Local\\sqlite-mmap.%hs", name);
}

/* --- tests --- */

/* A named mapping is the section Local\sqlite-mmap.<name>. */
static void test_named_mapping_is_a_section_in_the_session_namespace(void **state)
{
    (void)state;
    char name[64];
    wchar_t wname[128];
    mmkv *s;
    wp_unique_name(name, sizeof name, "osw");
    local_section_name(name, wname, 128);
    assert_false(section_exists(wname));
    assert_int_equal(open_named(name, MMKV_MODE_NEW, SIZE_64K, 0600, &s), MMKV_OK);
    assert_true(section_exists(wname));
    mmkv_close(s);
    assert_int_equal(mmkv_unlink(name), MMKV_OK);
    assert_false(section_exists(wname));
}

/* A name starting with "Global." is the section Global\sqlite-mmap.<name>. */
static void test_name_starting_with_Global_uses_the_global_namespace(void **state)
{
    (void)state;
    char name[64], tail[48];
    wchar_t wname[128];
    mmkv *s;
    wp_unique_name(tail, sizeof tail, "osw");
    snprintf(name, sizeof name, "Global.%s", tail);
    swprintf(wname, 128, L"Global\\sqlite-mmap.%hs", name);
    assert_int_equal(open_named(name, MMKV_MODE_NEW, SIZE_64K, 0600, &s), MMKV_OK);
    assert_true(section_exists(wname));
    mmkv_close(s);
    assert_int_equal(mmkv_unlink(name), MMKV_OK);
    assert_false(section_exists(wname));
}

/* Opening an existing section takes its size, not the one asked for. */
static void test_open_takes_the_size_of_the_existing_section(void **state)
{
    (void)state;
    char name[64];
    mmkv *a, *b;
    mmkv_stats st;
    wp_unique_name(name, sizeof name, "osw");
    assert_int_equal(open_named(name, MMKV_MODE_NEW, 3 * SIZE_64K, 0600, &a), MMKV_OK);
    assert_int_equal(open_named(name, MMKV_MODE_CREATE, 16 * SIZE_64K, 0600, &b), MMKV_OK);
    assert_int_equal(mmkv_stat(b, &st), MMKV_OK);
    assert_int_equal(st.capacity, 3 * SIZE_64K);
    assert_int_equal(put_text(a, "seen", "by both"), MMKV_OK);
    assert_true(text_is(b, "seen", "by both"));
    mmkv_close(b);
    mmkv_close(a);
    mmkv_unlink(name);
}

/* The process holds a named mapping after its last handle closes, until it
** unlinks the name; then mode=open fails and unlink says it is gone. */
static void test_process_holds_a_mapping_until_it_unlinks_it(void **state)
{
    (void)state;
    char name[64];
    mmkv *s;
    wp_unique_name(name, sizeof name, "osw");
    assert_int_equal(open_named(name, MMKV_MODE_NEW, SIZE_64K, 0600, &s), MMKV_OK);
    assert_int_equal(put_text(s, "k", "kept"), MMKV_OK);
    mmkv_close(s);
    assert_int_equal(open_named(name, MMKV_MODE_OPEN, SIZE_64K, 0600, &s), MMKV_OK);
    assert_true(text_is(s, "k", "kept"));
    mmkv_close(s);
    assert_int_equal(mmkv_unlink(name), MMKV_OK);
    assert_int_equal(open_named(name, MMKV_MODE_OPEN, SIZE_64K, 0600, &s), MMKV_CANTOPEN);
    assert_int_equal(mmkv_unlink(name), MMKV_NOTFOUND);
}

/* Opens the named mapping once the child spawned with "create-put-wait"
** has created it and put from=child, trying for up to 10 s.  Returns
** MMKV_OK with *s open, or the last open's result. */
static int open_when_child_has_put(const char *name, mmkv **s)
{
    int rc = MMKV_CANTOPEN;
    for (int i = 0; i < 500 && rc != MMKV_OK; i++) {
        rc = open_named(name, MMKV_MODE_OPEN, SIZE_64K, 0600, s);
        if (rc == MMKV_OK && !text_is(*s, "from", "child")) {
            mmkv_close(*s);
            rc = MMKV_CANTOPEN;
        }
        if (rc != MMKV_OK) Sleep(20);
    }
    return rc;
}

/* A mapping that only an exited process held is gone (on Linux it would
** stay until unlinked); while that process runs, others share it. */
static void test_mapping_disappears_when_the_last_process_holding_it_exits(void **state)
{
    (void)state;
    char name[64], go[80];
    mmkv *s;
    wp_unique_name(name, sizeof name, "osw");
    snprintf(go, sizeof go, "%s.go", name);
    HANDLE ev = wp_event(go);
    HANDLE child = wp_spawn("create-put-wait %s %s", name, go);
    assert_non_null(child);
    assert_int_equal(open_when_child_has_put(name, &s), MMKV_OK);
    mmkv_close(s);
    assert_int_equal(mmkv_unlink(name), MMKV_OK); /* drops this process's hold */
    SetEvent(ev);
    assert_int_equal(wp_wait(child, 30000), 0);
    CloseHandle(ev);
    assert_int_equal(open_named(name, MMKV_MODE_OPEN, SIZE_64K, 0600, &s), MMKV_CANTOPEN);
    assert_int_equal(mmkv_unlink(name), MMKV_NOTFOUND);
}

/* Unlink while another process holds the mapping returns OK, and that
** process's hold keeps it alive. */
static void test_unlink_cannot_remove_a_mapping_another_process_holds(void **state)
{
    (void)state;
    char name[64], go[80];
    mmkv *s;
    wp_unique_name(name, sizeof name, "osw");
    snprintf(go, sizeof go, "%s.go", name);
    HANDLE ev = wp_event(go);
    HANDLE child = wp_spawn("create-put-wait %s %s", name, go);
    assert_non_null(child);
    assert_int_equal(open_when_child_has_put(name, &s), MMKV_OK);
    mmkv_close(s);
    assert_int_equal(mmkv_unlink(name), MMKV_OK);
    assert_int_equal(open_named(name, MMKV_MODE_OPEN, SIZE_64K, 0600, &s), MMKV_OK);
    assert_true(text_is(s, "from", "child"));
    mmkv_close(s);
    mmkv_unlink(name);
    SetEvent(ev);
    assert_int_equal(wp_wait(child, 30000), 0);
    CloseHandle(ev);
}

/* A child in a job from wp_job_new ends as soon as the job's last handle
** is closed (the child itself would wait 60 s for GO).  wp_spawn puts
** every child in such a job, held until the test program ends, so a test
** that fails while children run does not leave them behind. */
static void test_children_end_when_their_job_is_closed(void **state)
{
    (void)state;
    char name[64], go[80], args[200];
    mmkv *s;
    wp_unique_name(name, sizeof name, "osw");
    snprintf(go, sizeof go, "%s.go", name);
    snprintf(args, sizeof args, "create-put-wait %s %s", name, go);
    HANDLE ev = wp_event(go);
    HANDLE job = wp_job_new();
    assert_non_null(job);
    HANDLE child = wp_spawn_in(job, args);
    assert_non_null(child);
    assert_int_equal(open_when_child_has_put(name, &s), MMKV_OK);
    mmkv_close(s);
    assert_int_equal(WaitForSingleObject(child, 0), WAIT_TIMEOUT); /* waiting for GO */
    double t0 = wp_now_ms();
    CloseHandle(job);
    assert_int_equal(WaitForSingleObject(child, 10000), WAIT_OBJECT_0);
    print_message("child ended %.0f ms after its job was closed\n", wp_now_ms() - t0);
    CloseHandle(child);
    CloseHandle(ev);
    mmkv_unlink(name);
}

/* Windows mutexes are recursive; a second handle of the same thread must
** still be refused (as the error-checking mutex does on Linux). */
static void test_second_handle_of_the_same_thread_is_refused_the_lock(void **state)
{
    (void)state;
    char name[64];
    mmkv *a, *b;
    wp_unique_name(name, sizeof name, "osw");
    assert_int_equal(open_named(name, MMKV_MODE_NEW, SIZE_64K, 0600, &a), MMKV_OK);
    assert_int_equal(open_named(name, MMKV_MODE_OPEN, SIZE_64K, 0600, &b), MMKV_OK);
    assert_int_equal(mmkv_begin(a), MMKV_OK);
    assert_int_equal(mmkv_begin(b), MMKV_BUSY);
    assert_non_null(strstr(mmkv_errmsg(b), "this thread"));
    assert_int_equal(mmkv_commit(a), MMKV_OK);
    assert_int_equal(mmkv_begin(b), MMKV_OK);
    assert_int_equal(mmkv_commit(b), MMKV_OK);
    mmkv_close(b);
    mmkv_close(a);
    mmkv_unlink(name);
}

/* While another process holds the lock, a wait ends after the timeout with
** MMKV_BUSY; once it lets go, the lock is had. */
static void test_lock_held_by_another_process_times_out_then_is_had(void **state)
{
    (void)state;
    char name[64], held[80], go[80];
    mmkv *s;
    wp_unique_name(name, sizeof name, "osw");
    snprintf(held, sizeof held, "%s.held", name);
    snprintf(go, sizeof go, "%s.go", name);
    HANDLE ev_held = wp_event(held), ev_go = wp_event(go);
    assert_int_equal(open_named(name, MMKV_MODE_NEW, SIZE_64K, 0600, &s), MMKV_OK);
    HANDLE child = wp_spawn("lock-wait %s %s %s", name, held, go);
    assert_non_null(child);
    assert_int_equal(WaitForSingleObject(ev_held, 30000), WAIT_OBJECT_0);
    mmkv_options o = mmkv_default_options();
    mmkv *t;
    o.name = name;
    o.mode = MMKV_MODE_OPEN;
    o.timeout_ms = 300;
    assert_int_equal(mmkv_open(&o, &t, NULL), MMKV_OK);
    double t0 = wp_now_ms();
    assert_int_equal(mmkv_begin(t), MMKV_BUSY);
    double waited = wp_now_ms() - t0;
    assert_true(waited >= 250);
    assert_non_null(strstr(mmkv_errmsg(t), name));
    assert_non_null(strstr(mmkv_errmsg(t), "lock"));
    SetEvent(ev_go);
    assert_int_equal(wp_wait(child, 30000), 0);
    assert_int_equal(mmkv_begin(t), MMKV_OK);
    assert_int_equal(get_int(t, "n"), 1);
    assert_int_equal(mmkv_commit(t), MMKV_OK);
    mmkv_close(t);
    mmkv_close(s);
    mmkv_unlink(name);
    CloseHandle(ev_held);
    CloseHandle(ev_go);
}

/* A process that exits holding the lock abandons the mutex: the next one
** gets the lock and finds the dead one's transaction undone. */
static void test_process_that_exits_holding_the_lock_is_rolled_back(void **state)
{
    (void)state;
    char name[64];
    mmkv *s;
    wp_unique_name(name, sizeof name, "osw");
    assert_int_equal(open_named(name, MMKV_MODE_NEW, SIZE_64K, 0600, &s), MMKV_OK);
    assert_int_equal(put_int(s, "n", 7), MMKV_OK);
    HANDLE child = wp_spawn("change-and-exit %s", name);
    assert_int_equal(wp_wait(child, 30000), 0);
    assert_int_equal(mmkv_begin(s), MMKV_OK);
    assert_int_equal(get_int(s, "n"), 7);
    assert_int_equal(get_int(s, "added"), -1);
    assert_int_equal(put_int(s, "n", 8), MMKV_OK);
    assert_int_equal(mmkv_commit(s), MMKV_OK);
    assert_check_ok(s);
    mmkv_close(s);
    mmkv_unlink(name);
}

/* Writers killed (TerminateProcess) at random moments inside transactions
** never block the others, and every transaction is all or nothing: the
** total of two keys that each transaction moves one unit between stays. */
static void test_writers_killed_mid_transaction_never_block_or_tear(void **state)
{
    (void)state;
    char name[64], started[80];
    mmkv *s;
    uint64_t seed = GetTickCount64();
    wp_unique_name(name, sizeof name, "osw");
    assert_int_equal(open_named(name, MMKV_MODE_NEW, SIZE_64K, 0600, &s), MMKV_OK);
    assert_int_equal(put_int(s, "a", 1000), MMKV_OK);
    assert_int_equal(put_int(s, "b", 0), MMKV_OK);
    for (int round = 0; round < 12; round++) {
        snprintf(started, sizeof started, "%s.s%d", name, round);
        HANDLE ev = wp_event(started);
        HANDLE child = wp_spawn("move-forever %s %s", name, started);
        assert_non_null(child);
        assert_int_equal(WaitForSingleObject(ev, 30000), WAIT_OBJECT_0);
        Sleep(wp_pick(&seed, 30));
        TerminateProcess(child, 9);
        WaitForSingleObject(child, 10000);
        CloseHandle(child);
        CloseHandle(ev);
        assert_int_equal(mmkv_begin(s), MMKV_OK);
        int64_t a = get_int(s, "a"), b = get_int(s, "b");
        assert_int_equal(a + b, 1000);
        assert_int_equal(mmkv_commit(s), MMKV_OK);
    }
    assert_check_ok(s);
    mmkv_close(s);
    mmkv_unlink(name);
}

/* A file path with non-ASCII characters (UTF-8 in, UTF-16 to Windows). */
static void test_file_path_with_non_ascii_characters_works(void **state)
{
    (void)state;
    char dir[MAX_PATH], path[MAX_PATH + 64];
    wchar_t wpath[MAX_PATH + 64];
    mmkv *s;
    assert_int_equal(wp_make_temp_dir(dir, sizeof dir), 0);
    snprintf(path, sizeof path,
             "%s\\donn\xc3\xa9"
             "es-\xe6\x97\xa5\xe6\x9c\xac-\xc3\x9f.mmap",
             dir);
    assert_int_equal(open_file(path, MMKV_MODE_NEW, &s), MMKV_OK);
    assert_int_equal(put_text(s, "k", "v"), MMKV_OK);
    assert_int_equal(mmkv_flush(s), MMKV_OK);
    mmkv_close(s);
    MultiByteToWideChar(CP_UTF8, 0, path, -1, wpath, MAX_PATH + 64);
    assert_true(wcsstr(wpath, L"donn\u00e9es-\u65e5\u672c-\u00df.mmap") != NULL);
    assert_int_not_equal(GetFileAttributesW(wpath), INVALID_FILE_ATTRIBUTES);
    assert_int_equal(open_file(path, MMKV_MODE_OPEN, &s), MMKV_OK);
    assert_true(text_is(s, "k", "v"));
    mmkv_close(s);
    wp_remove_dir(dir);
}

/* Two spellings of one file (other case, other slashes) meet the same
** lock: the lock is named after the file's identity, not its path. */
static void test_two_spellings_of_one_file_share_one_lock(void **state)
{
    (void)state;
    char dir[MAX_PATH], path[MAX_PATH + 32], other[MAX_PATH + 32];
    mmkv *a, *b;
    assert_int_equal(wp_make_temp_dir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s\\shared.mmap", dir);
    snprintf(other, sizeof other, "%s", path);
    for (char *p = other; *p; p++) {
        if (*p == '\\') *p = '/';
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    }
    assert_int_equal(open_file(path, MMKV_MODE_NEW, &a), MMKV_OK);
    assert_int_equal(open_file(other, MMKV_MODE_OPEN, &b), MMKV_OK);
    assert_int_equal(mmkv_begin(a), MMKV_OK);
    assert_int_equal(mmkv_begin(b), MMKV_BUSY);
    assert_int_equal(mmkv_commit(a), MMKV_OK);
    mmkv_close(b);
    mmkv_close(a);
    wp_remove_dir(dir);
}

/* With the default perms (0600) a new section gets an owner-only DACL;
** perms that grant others leave the default DACL. */
static void test_new_sections_are_owner_only_unless_perms_grant_others(void **state)
{
    (void)state;
    char name[64], shared[64];
    wchar_t wname[128], wshared[128];
    mmkv *s, *t;
    wp_unique_name(name, sizeof name, "osw");
    wp_unique_name(shared, sizeof shared, "osw");
    local_section_name(name, wname, 128);
    local_section_name(shared, wshared, 128);
    assert_int_equal(open_named(name, MMKV_MODE_NEW, SIZE_64K, 0600, &s), MMKV_OK);
    assert_int_equal(open_named(shared, MMKV_MODE_NEW, SIZE_64K, 0666, &t), MMKV_OK);
    assert_true(section_is_owner_only(wname));
    assert_false(section_is_owner_only(wshared));
    mmkv_close(t);
    mmkv_close(s);
    mmkv_unlink(name);
    mmkv_unlink(shared);
}

/* A new file mapping with the default perms is owner-only as well.  Wine
** keeps no security descriptors for files (it derives one from the Unix
** mode bits), so there this test is skipped. */
static void test_new_file_is_owner_only_by_default(void **state)
{
    (void)state;
    if (wp_under_wine()) {
        print_message("skipped: Wine does not store the DACL of a file\n");
        skip();
    }
    char dir[MAX_PATH], path[MAX_PATH + 32];
    wchar_t wpath[MAX_PATH + 32];
    mmkv *s;
    assert_int_equal(wp_make_temp_dir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s\\owner.mmap", dir);
    assert_int_equal(open_file(path, MMKV_MODE_NEW, &s), MMKV_OK);
    mmkv_close(s);
    MultiByteToWideChar(CP_UTF8, 0, path, -1, wpath, MAX_PATH + 32);
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL;
    assert_int_equal(GetNamedSecurityInfoW(wpath, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL,
                                           NULL, &dacl, NULL, &sd),
                     ERROR_SUCCESS);
    assert_true(is_owner_only(sd, dacl));
    LocalFree(sd);
    wp_remove_dir(dir);
}

/* A file that a creator left unfinished (the marker of os.h in its first
** bytes, as after a crash mid-way) is missing for mode=open and set up
** again by mode=create. */
static void test_file_left_unfinished_by_a_dead_creator_is_set_up_again(void **state)
{
    (void)state;
    char dir[MAX_PATH], path[MAX_PATH + 32];
    mmkv *s;
    assert_int_equal(wp_make_temp_dir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s\\unfinished.mmap", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t marker = 0x6873696e69666e75ull; /* "unfinish" */
    fwrite(&marker, 8, 1, f);
    for (int i = 0; i < SIZE_64K - 8; i++)
        fputc(0, f);
    fclose(f);
    mmkv_options o = mmkv_default_options();
    char *err = NULL;
    o.file = path;
    o.mode = MMKV_MODE_OPEN;
    assert_int_equal(mmkv_open(&o, &s, &err), MMKV_CANTOPEN);
    assert_non_null(strstr(err, "no such mapping"));
    free(err);
    assert_int_equal(open_file(path, MMKV_MODE_CREATE, &s), MMKV_OK);
    assert_int_equal(put_text(s, "k", "v"), MMKV_OK);
    assert_check_ok(s);
    mmkv_close(s);
    assert_int_equal(open_file(path, MMKV_MODE_OPEN, &s), MMKV_OK);
    assert_true(text_is(s, "k", "v"));
    mmkv_close(s);
    wp_remove_dir(dir);
}

/* Writes the "unfinished" marker (os.h) over the first 8 bytes of the view
** at *first, as a stray writer could, and returns what was there. */
static uint64_t mark_unfinished(volatile uint64_t *first)
{
    uint64_t was = *first;
    *first = 0x6873696e69666e75ull; /* "unfinish" */
    return was;
}

/* Opens o in create mode and expects it refused as corrupt, the mapping
** being in use. */
static void expect_refused_as_marked_in_use(mmkv_options *o)
{
    mmkv *t = NULL;
    char *err = NULL;
    o->mode = MMKV_MODE_CREATE;
    o->size = SIZE_64K;
    o->timeout_ms = 2000;
    assert_int_equal(mmkv_open(o, &t, &err), MMKV_CORRUPT);
    assert_null(t);
    assert_non_null(err);
    assert_non_null(strstr(err, "marked unfinished while other handles use it"));
    free(err);
}

/* A stray write of the "unfinished" marker into a mapping in use, a named
** section and then a file: an opener in create mode refuses it as corrupt
** rather than setting it up again under the handle that uses it (which
** would reset it and cut it to the opener's size); with the word put back,
** the mapping has its size and its entries. */
static void test_mapping_in_use_marked_unfinished_is_refused_not_set_up_again(void **state)
{
    (void)state;
    char name[64], dir[MAX_PATH], path[MAX_PATH + 32];
    wchar_t wname[128];
    mmkv *s, *u;
    mmkv_stats st;
    wp_unique_name(name, sizeof name, "osw");
    local_section_name(name, wname, 128);
    assert_int_equal(open_named(name, MMKV_MODE_NEW, 4 * SIZE_64K, 0600, &s), MMKV_OK);
    assert_int_equal(put_text(s, "k", "v"), MMKV_OK);
    HANDLE sec = OpenFileMappingW(FILE_MAP_WRITE, FALSE, wname);
    assert_non_null(sec);
    volatile uint64_t *first = MapViewOfFile(sec, FILE_MAP_WRITE, 0, 0, 8);
    assert_non_null(first);
    uint64_t magic = mark_unfinished(first);
    mmkv_options o = mmkv_default_options();
    o.name = name;
    expect_refused_as_marked_in_use(&o);
    *first = magic;
    UnmapViewOfFile((void *)first);
    CloseHandle(sec);
    assert_int_equal(open_named(name, MMKV_MODE_OPEN, SIZE_64K, 0600, &u), MMKV_OK);
    assert_int_equal(mmkv_stat(u, &st), MMKV_OK);
    assert_int_equal(st.capacity, 4 * SIZE_64K);
    assert_true(text_is(u, "k", "v"));
    assert_check_ok(u);
    mmkv_close(u);
    mmkv_close(s);
    assert_int_equal(mmkv_unlink(name), MMKV_OK);
    assert_false(section_exists(wname)); /* the refused opener kept no handle */

    assert_int_equal(wp_make_temp_dir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s\\in-use.mmap", dir);
    o = mmkv_default_options();
    o.file = path;
    o.mode = MMKV_MODE_NEW;
    o.size = 4 * SIZE_64K;
    assert_int_equal(mmkv_open(&o, &s, NULL), MMKV_OK);
    assert_int_equal(put_text(s, "k", "w"), MMKV_OK);
    HANDLE file = CreateFileA(path, GENERIC_READ | GENERIC_WRITE,
                              FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                              OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    assert_true(file != INVALID_HANDLE_VALUE);
    sec = CreateFileMappingW(file, NULL, PAGE_READWRITE, 0, 0, NULL);
    assert_non_null(sec);
    first = MapViewOfFile(sec, FILE_MAP_WRITE, 0, 0, 8);
    assert_non_null(first);
    magic = mark_unfinished(first);
    o = mmkv_default_options();
    o.file = path;
    expect_refused_as_marked_in_use(&o);
    *first = magic;
    UnmapViewOfFile((void *)first);
    CloseHandle(sec);
    LARGE_INTEGER size;
    assert_true(GetFileSizeEx(file, &size));
    assert_int_equal(size.QuadPart, 4 * SIZE_64K); /* unchanged */
    CloseHandle(file);
    assert_true(text_is(s, "k", "w"));
    assert_check_ok(s);
    mmkv_close(s);
    wp_remove_dir(dir);
}

/* A thread that dies while it creates a named mapping: it opens it (the
** init lock held, the section marked unfinished) and exits, its handles
** left to its process, which lives on. */
static DWORD WINAPI die_creating(LPVOID name)
{
    mmkv_os_map *m;
    int created, sole;
    char err[256];
    if (mmkv_os_open(name, 0, MMKV_OS_CREATE, SIZE_64K, 0600, 2000, &m, &created, &sole, err,
                     sizeof err) == MMKV_OK &&
        created)
        ExitThread(0);
    return 1;
}

/* The mapping that thread left is missing for mode=open and set up again by
** mode=create, although the section lives on (its process keeps it): no
** handle finished opening it, so none uses it.  The section keeps the size
** it was made with (it cannot be resized): parts that would not fit it are
** refused, and the mapping stays unfinished for the next opener. */
static void test_mapping_left_unfinished_by_a_dead_thread_is_set_up_again(void **state)
{
    (void)state;
    char name[64];
    mmkv *s;
    DWORD code = 1;
    wp_unique_name(name, sizeof name, "osw");
    HANDLE t = CreateThread(NULL, 0, die_creating, name, 0, NULL);
    assert_non_null(t);
    assert_int_equal(WaitForSingleObject(t, 30000), WAIT_OBJECT_0);
    assert_true(GetExitCodeThread(t, &code));
    assert_int_equal(code, 0);
    CloseHandle(t);
    assert_int_equal(open_named(name, MMKV_MODE_OPEN, SIZE_64K, 0600, &s), MMKV_CANTOPEN);
    mmkv_options o = mmkv_default_options();
    char *err = NULL;
    o.name = name;
    o.mode = MMKV_MODE_CREATE;
    o.size = 4 * SIZE_64K;
    o.parts = 4;
    o.timeout_ms = 2000;
    assert_int_equal(mmkv_open(&o, &s, &err), MMKV_INVALID);
    assert_non_null(strstr(err, "less than the minimum of 64K a part for 4 parts"));
    free(err);
    assert_int_equal(open_named(name, MMKV_MODE_CREATE, 4 * SIZE_64K, 0600, &s), MMKV_OK);
    mmkv_stats st;
    assert_int_equal(mmkv_stat(s, &st), MMKV_OK);
    assert_int_equal(st.capacity, SIZE_64K);
    assert_int_equal(put_text(s, "k", "v"), MMKV_OK);
    assert_true(text_is(s, "k", "v"));
    assert_check_ok(s);
    mmkv_close(s);
    assert_int_equal(mmkv_unlink(name), MMKV_OK);
}

/* --- child roles --- */

/* Opens the existing store `name` for a child; exits 10 on failure. */
static mmkv *child_open(const char *name)
{
    mmkv *s;
    int rc = open_named(name, MMKV_MODE_CREATE, SIZE_64K, 0600, &s);
    if (rc != MMKV_OK) {
        fprintf(stderr, "child: cannot open %s: %s\n", name, mmkv_strerror(rc));
        ExitProcess(10);
    }
    return s;
}

/* create-put-wait NAME GO: creates NAME, puts from=child, waits for GO. */
static int role_create_put_wait(char **argv)
{
    mmkv *s = child_open(argv[0]);
    if (put_text(s, "from", "child") != MMKV_OK) return 11;
    HANDLE go = wp_event(argv[1]);
    if (WaitForSingleObject(go, 60000) != WAIT_OBJECT_0) return 12;
    mmkv_close(s);
    return 0;
}

/* lock-wait NAME HELD GO: takes the lock, sets n=1, signals HELD, waits
** for GO, commits. */
static int role_lock_wait(char **argv)
{
    mmkv *s = child_open(argv[0]);
    if (mmkv_begin(s) != MMKV_OK || put_int(s, "n", 1) != MMKV_OK) return 11;
    SetEvent(wp_event(argv[1]));
    if (WaitForSingleObject(wp_event(argv[2]), 60000) != WAIT_OBJECT_0) return 12;
    return mmkv_commit(s) == MMKV_OK ? 0 : 13;
}

/* change-and-exit NAME: changes n and adds a key inside a transaction,
** then exits without committing or closing (the lock is abandoned). */
static int role_change_and_exit(char **argv)
{
    mmkv *s = child_open(argv[0]);
    if (mmkv_begin(s) != MMKV_OK || put_int(s, "n", 99) != MMKV_OK ||
        put_int(s, "added", 1) != MMKV_OK)
        return 11;
    ExitProcess(0);
}

/* move-forever NAME STARTED: moves one unit from a to b (or back) in
** transactions, forever; signals STARTED after the first. */
static int role_move_forever(char **argv)
{
    mmkv *s = child_open(argv[0]);
    HANDLE started = wp_event(argv[1]);
    for (uint64_t i = 0;; i++) {
        if (mmkv_begin(s) != MMKV_OK) return 11;
        int64_t a = get_int(s, "a"), b = get_int(s, "b");
        int64_t d = a > 0 ? 1 : -1;
        if (put_int(s, "a", a - d) != MMKV_OK || put_int(s, "b", b + d) != MMKV_OK) return 12;
        if (mmkv_commit(s) != MMKV_OK) return 13;
        if (i == 0) SetEvent(started);
    }
}

/* Runs the child role named argv[0]; returns its exit code. */
static int child_main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int nargs;
        int (*fn)(char **argv);
    } roles[] = {{"create-put-wait", 2, role_create_put_wait},
                 {"lock-wait", 3, role_lock_wait},
                 {"change-and-exit", 1, role_change_and_exit},
                 {"move-forever", 2, role_move_forever}};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(argv[0], roles[i].name) == 0 && argc - 1 == roles[i].nargs)
            return roles[i].fn(argv + 1);
    fprintf(stderr, "unknown child role %s\n", argv[0]);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--child") == 0) return child_main(argc - 2, argv + 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_mapping_is_a_section_in_the_session_namespace),
        cmocka_unit_test(test_name_starting_with_Global_uses_the_global_namespace),
        cmocka_unit_test(test_open_takes_the_size_of_the_existing_section),
        cmocka_unit_test(test_process_holds_a_mapping_until_it_unlinks_it),
        cmocka_unit_test(test_mapping_disappears_when_the_last_process_holding_it_exits),
        cmocka_unit_test(test_unlink_cannot_remove_a_mapping_another_process_holds),
        cmocka_unit_test(test_children_end_when_their_job_is_closed),
        cmocka_unit_test(test_second_handle_of_the_same_thread_is_refused_the_lock),
        cmocka_unit_test(test_lock_held_by_another_process_times_out_then_is_had),
        cmocka_unit_test(test_process_that_exits_holding_the_lock_is_rolled_back),
        cmocka_unit_test(test_writers_killed_mid_transaction_never_block_or_tear),
        cmocka_unit_test(test_file_path_with_non_ascii_characters_works),
        cmocka_unit_test(test_two_spellings_of_one_file_share_one_lock),
        cmocka_unit_test(test_new_sections_are_owner_only_unless_perms_grant_others),
        cmocka_unit_test(test_new_file_is_owner_only_by_default),
        cmocka_unit_test(test_file_left_unfinished_by_a_dead_creator_is_set_up_again),
        cmocka_unit_test(test_mapping_in_use_marked_unfinished_is_refused_not_set_up_again),
        cmocka_unit_test(test_mapping_left_unfinished_by_a_dead_thread_is_set_up_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
