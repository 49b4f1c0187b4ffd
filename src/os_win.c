/*
** os_win.c -- the platform contract (os.h) on Windows.
**
** A named mapping is a pagefile-backed section (a file-mapping object made
** with CreateFileMappingW(INVALID_HANDLE_VALUE, ...)) called
**     Local\sqlite-mmap.<name>
** in the session's namespace.  A name that starts with "Global." lives in the
** machine-wide namespace instead: Global\sqlite-mmap.<name> (making a
** section there needs the SeCreateGlobalPrivilege, which services and
** administrators have).  A file mapping is the file itself, opened with
** CreateFileW; UTF-8 paths are converted to UTF-16, so any file name works.
** Views are mapped with MapViewOfFile.
**
** Lifetime: a pagefile-backed section lives for as long as some process has
** a handle to it; it disappears with the last one (on Linux a named mapping
** lives until unlinked).  To come close, every process that opens a named
** mapping keeps one extra handle to it (the "hold", see hold_add) until it
** calls mmkv_os_unlink on that name or exits: within a process, closing
** every table and opening it again finds the same mapping, as on Linux (and
** SQLite does close and reopen virtual tables when it reloads a schema).
** mmkv_os_unlink drops this process's hold and returns 1 if the section
** existed; it disappears once no process holds it any more.  This module
** pins itself in memory while it holds sections, so that an unloaded and
** reloaded extension still finds its holds.
**
** Locks are named mutexes, never stored in the mapping:
**     <ns>\sqlite-mmap-lock.<name>   the data lock (WAIT_ABANDONED tells that
**                                     its holder died: MMKV_OS_OWNERDEAD)
**     <ns>\sqlite-mmap-init.<name>   held while a handle creates or checks
**                                     the header (the "init" lock of os.h)
** For a file mapping, <name> is the file's identity (volume serial number and
** file index), so every spelling of the path and every hard link meets the
** same locks, and the namespace is Global\ (files are seen by every session).
** Presence ("am I the only user?"): for a named mapping, whether this handle
** created the section; for a file, whether this handle created the named
** event Global\sqlite-mmap-file-users.<id>, which exists while any handle
** has the file open.  A named mapping also has the event
** <ns>\sqlite-mmap-users.<name>, which a handle joins when it has finished
** opening (mmkv_os_open_done): a section marked unfinished while that event
** exists is in use, and is refused as corrupt rather than set up again; one
** whose creator died before finishing (even a thread of a process that
** lives on and keeps the section) has no such user, and is set up again.
**
** The 64-byte lock slot in the mapping records which process and thread
** hold the mutex: Windows mutexes are recursive, and this is how a second
** connection of the same thread learns MMKV_OS_DEADLOCK instead of entering.
**
** Security: when perms grant nothing to group or others (the default 0600),
** new sections, files, mutexes and events get a protected DACL with one
** entry: full access for the current user.  Otherwise the default DACL of
** the process token applies.
*/
#ifdef _WIN32
#define _CRT_RAND_S /* rand_s in stdlib.h */
#include "os.h"
#include "mmkv.h"

#include <windows.h>
#include <sddl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* What the lock slot in the mapping holds while a handle has the lock. */
struct lock_owner {
    volatile LONG pid; /* process id of the holder, 0 if free */
    volatile LONG tid; /* thread id of the holder */
};

_Static_assert(sizeof(struct lock_owner) <= MMKV_OS_LOCK_BYTES, "owner fits its slot");

struct mmkv_os_map {
    HANDLE file;     /* file mappings: the file; else INVALID_HANDLE_VALUE */
    HANDLE section;  /* the file-mapping object */
    HANDLE lock;     /* the data lock (named mutex); of part 0 in a split mapping */
    HANDLE *plocks;  /* split mappings: the lock of each part (plocks[0] is lock) */
    unsigned nparts;
    uint64_t region; /* split mappings: bytes of each part */
    unsigned perms;  /* for the security of the parts' locks */
    wchar_t lock_name[160];
    HANDLE init;     /* the init lock (named mutex), while opening */
    HANDLE presence; /* the users event (a named mapping's: once opened) */
    wchar_t users_name[160]; /* named mappings: the event joined by mmkv_os_open_done */
    int init_held;   /* this handle holds the init lock */
    void *base;
    uint64_t size;
    int is_file;
    int created;     /* this handle created the section or file */
    wchar_t *wpath;  /* file mappings: the UTF-16 path */
    char what[4200]; /* the name or path, for messages */
    char err[4400];
};

/* Names of the kernel objects of one mapping. */
struct obj_names {
    wchar_t section[160]; /* named mappings only */
    wchar_t lock[160];
    wchar_t init[160];
    wchar_t users[160];
};

/* One hold: this process's extra handle to a named section. */
struct hold {
    char name[MMKV_MAX_NAME + 1];
    HANDLE section;
    struct hold *next;
};

static SRWLOCK holds_lock = SRWLOCK_INIT;
static struct hold *holds; /* guarded by holds_lock */

/* Keeps section (of the mapping `name`) alive until hold_drop(name) or the
** end of the process: adds a duplicate of its handle unless one is held. */
static void hold_add(const char *name, HANDLE section)
{
    AcquireSRWLockExclusive(&holds_lock);
    struct hold *h = holds;
    while (h && strcmp(h->name, name) != 0)
        h = h->next;
    if (!h && (h = calloc(1, sizeof *h)) != NULL) {
        HMODULE self;
        if (DuplicateHandle(GetCurrentProcess(), section, GetCurrentProcess(), &h->section, 0,
                            FALSE, DUPLICATE_SAME_ACCESS)) {
            snprintf(h->name, sizeof h->name, "%s", name);
            h->next = holds;
            holds = h;
            GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                   GET_MODULE_HANDLE_EX_FLAG_PIN,
                               (LPCWSTR)(void *)&hold_add, &self);
        } else {
            free(h);
        }
    }
    ReleaseSRWLockExclusive(&holds_lock);
}

/* Drops this process's hold on the mapping `name`.  Returns 1 if there was
** one. */
static int hold_drop(const char *name)
{
    int found = 0;
    AcquireSRWLockExclusive(&holds_lock);
    for (struct hold **pp = &holds; *pp; pp = &(*pp)->next) {
        struct hold *h = *pp;
        if (strcmp(h->name, name) != 0) continue;
        *pp = h->next;
        CloseHandle(h->section);
        free(h);
        found = 1;
        break;
    }
    ReleaseSRWLockExclusive(&holds_lock);
    return found;
}

/* Writes the system's text for error code e (no trailing newline) into
** out, prefixed by the code. */
static void win_strerror(DWORD e, char *out, size_t n)
{
    char msg[512];
    DWORD len = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, e,
                               0, msg, sizeof msg, NULL);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r' || msg[len - 1] == ' '))
        len--;
    msg[len] = 0;
    snprintf(out, n, "error %lu%s%s", (unsigned long)e, len ? ": " : "", msg);
}

/* Records "<what>: <text of GetLastError()>" in buf; returns rc. */
static int fail_with(char *buf, size_t n, int rc, const char *what)
{
    char sys[600];
    win_strerror(GetLastError(), sys, sizeof sys);
    snprintf(buf, n, "%s (%s)", what, sys);
    return rc;
}

/* Converts UTF-8 s to a malloc'd UTF-16 string; NULL if s is not valid
** UTF-8 or memory is short. */
static wchar_t *utf8_to_wide(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    if (n <= 0) return NULL;
    wchar_t *w = malloc((size_t)n * sizeof *w);
    if (w && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
        free(w);
        w = NULL;
    }
    return w;
}

/* The namespace of a named mapping: Global for "Global.*", else Local. */
static const wchar_t *name_space(const char *name)
{
    return strncmp(name, "Global.", 7) == 0 ? L"Global" : L"Local";
}

/* Fills the object names of the named mapping `name` (a valid name: ASCII,
** at most 64 characters). */
static void names_for_name(const char *name, struct obj_names *o)
{
    const wchar_t *ns = name_space(name);
    swprintf(o->section, 160, L"%ls\\sqlite-mmap.%hs", ns, name);
    swprintf(o->lock, 160, L"%ls\\sqlite-mmap-lock.%hs", ns, name);
    swprintf(o->init, 160, L"%ls\\sqlite-mmap-init.%hs", ns, name);
    swprintf(o->users, 160, L"%ls\\sqlite-mmap-users.%hs", ns, name);
}

/* Fills the object names of the open file h from its identity.  Returns 0,
** or -1 with GetLastError() set. */
static int names_for_file(HANDLE h, struct obj_names *o)
{
    BY_HANDLE_FILE_INFORMATION fi;
    if (!GetFileInformationByHandle(h, &fi)) return -1;
    wchar_t id[64];
    swprintf(id, 64, L"%08lx-%08lx%08lx", (unsigned long)fi.dwVolumeSerialNumber,
             (unsigned long)fi.nFileIndexHigh, (unsigned long)fi.nFileIndexLow);
    o->section[0] = 0;
    swprintf(o->lock, 160, L"Global\\sqlite-mmap-file-lock.%ls", id);
    swprintf(o->init, 160, L"Global\\sqlite-mmap-file-init.%ls", id);
    swprintf(o->users, 160, L"Global\\sqlite-mmap-file-users.%ls", id);
    return 0;
}

/* Builds owner-only security attributes into *sa (a protected DACL that
** grants the current user everything); the caller frees
** sa->lpSecurityDescriptor with LocalFree.  Returns 0, or -1 (then *sa
** describes the default DACL). */
static int owner_only_attributes(SECURITY_ATTRIBUTES *sa)
{
    union {
        TOKEN_USER user;
        char bytes[512];
    } info;
    HANDLE token = NULL;
    DWORD len = 0;
    wchar_t *sid = NULL;
    int rc = -1;
    sa->nLength = sizeof *sa;
    sa->lpSecurityDescriptor = NULL;
    sa->bInheritHandle = FALSE;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) return -1;
    if (GetTokenInformation(token, TokenUser, &info, sizeof info, &len) &&
        ConvertSidToStringSidW(info.user.User.Sid, &sid)) {
        wchar_t sddl[256];
        swprintf(sddl, 256, L"D:P(A;;GA;;;%ls)", sid);
        if (ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1,
                                                                 &sa->lpSecurityDescriptor, NULL))
            rc = 0;
        LocalFree(sid);
    }
    CloseHandle(token);
    return rc;
}

/* Returns the security attributes new objects get for perms: owner-only
** for modes that grant group and others nothing, else NULL (the default). */
static SECURITY_ATTRIBUTES *attributes_for(unsigned perms, SECURITY_ATTRIBUTES *sa)
{
    if (perms & 077) return NULL;
    if (owner_only_attributes(sa) != 0) return NULL;
    return sa;
}

/* Creates (or opens) the named mutex `name`.  Returns it or NULL. */
static HANDLE named_mutex(const wchar_t *name, SECURITY_ATTRIBUTES *sa)
{
    return CreateMutexW(sa, FALSE, name);
}

/* Waits for mutex h at most timeout_ms (<= 0: no wait).  Returns the
** WaitForSingleObject result. */
static DWORD wait_for(HANDLE h, int timeout_ms)
{
    return WaitForSingleObject(h, timeout_ms > 0 ? (DWORD)timeout_ms : 0);
}

/* Closes h unless it is NULL or INVALID_HANDLE_VALUE. */
static void close_handle(HANDLE h)
{
    if (h && h != INVALID_HANDLE_VALUE) CloseHandle(h);
}

/* Takes the init lock of the mapping (a mutex called name).  Returns
** MMKV_OK, MMKV_BUSY or MMKV_IOERR with err set. */
static int take_init_lock(struct mmkv_os_map *m, const wchar_t *name, SECURITY_ATTRIBUTES *sa,
                          int timeout_ms, char *err, int errsz)
{
    m->init = named_mutex(name, sa);
    if (!m->init) return fail_with(err, (size_t)errsz, MMKV_IOERR, "cannot create the init lock");
    DWORD r = wait_for(m->init, timeout_ms);
    if (r == WAIT_OBJECT_0 || r == WAIT_ABANDONED) {
        /* Abandoned: an opener died mid-way.  The header check of the
        ** caller finds anything it left half-made. */
        m->init_held = 1;
        return MMKV_OK;
    }
    if (r == WAIT_TIMEOUT) {
        snprintf(err, (size_t)errsz, "timed out after %d ms waiting for %s to be set up",
                 timeout_ms, m->what);
        return MMKV_BUSY;
    }
    return fail_with(err, (size_t)errsz, MMKV_IOERR, "cannot take the init lock");
}

/* Opens or creates the pagefile-backed section of a named mapping.  Sets
** m->section and m->created.  Returns MMKV_OK or an MMKV_ code with err. */
static int open_section(struct mmkv_os_map *m, const struct obj_names *o, int flags, uint64_t size,
                        SECURITY_ATTRIBUTES *sa, char *err, int errsz)
{
    if (flags & MMKV_OS_CREATE) {
        m->section = CreateFileMappingW(INVALID_HANDLE_VALUE, sa, PAGE_READWRITE,
                                        (DWORD)(size >> 32), (DWORD)size, o->section);
        DWORD e = GetLastError();
        if (!m->section) {
            SetLastError(e);
            int rc = e == ERROR_NOT_ENOUGH_MEMORY || e == ERROR_COMMITMENT_LIMIT ? MMKV_FULL
                                                                                 : MMKV_IOERR;
            char what[300];
            snprintf(what, sizeof what, "cannot create mapping %s of %llu bytes", m->what,
                     (unsigned long long)size);
            return fail_with(err, (size_t)errsz, rc, what);
        }
        m->created = e != ERROR_ALREADY_EXISTS;
        if (!m->created && (flags & MMKV_OS_EXCL)) {
            snprintf(err, (size_t)errsz, "mapping already exists: %s", m->what);
            return MMKV_CANTOPEN;
        }
        return MMKV_OK;
    }
    m->section = OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, o->section);
    if (m->section) return MMKV_OK;
    DWORD e = GetLastError();
    if (e == ERROR_FILE_NOT_FOUND) {
        snprintf(err, (size_t)errsz, "no such mapping: %s", m->what);
        return MMKV_CANTOPEN;
    }
    if (e == ERROR_ACCESS_DENIED) {
        snprintf(err, (size_t)errsz, "no permission to open %s read-write", m->what);
        return MMKV_CANTOPEN;
    }
    return fail_with(err, (size_t)errsz, MMKV_IOERR, "cannot open the mapping");
}

/* Maps an error of CreateFileW to an MMKV_ code and message in err. */
static int file_error(struct mmkv_os_map *m, DWORD e, char *err, int errsz)
{
    if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) {
        snprintf(err, (size_t)errsz, "no such mapping: %s", m->what);
        return MMKV_CANTOPEN;
    }
    if (e == ERROR_FILE_EXISTS || e == ERROR_ALREADY_EXISTS) {
        snprintf(err, (size_t)errsz, "mapping already exists: %s", m->what);
        return MMKV_CANTOPEN;
    }
    if (e == ERROR_ACCESS_DENIED) {
        snprintf(err, (size_t)errsz, "no permission to open %s read-write", m->what);
        return MMKV_CANTOPEN;
    }
    char what[4300];
    snprintf(what, sizeof what, "cannot open %s", m->what);
    SetLastError(e);
    return fail_with(err, (size_t)errsz, MMKV_IOERR, what);
}

/* Opens (maybe creating, with attributes sa) the file of a file mapping.
** Sets m->file and m->created.  Returns MMKV_OK or an MMKV_ code. */
static int open_file(struct mmkv_os_map *m, int flags, SECURITY_ATTRIBUTES *sa, char *err,
                     int errsz)
{
    const DWORD access = GENERIC_READ | GENERIC_WRITE;
    const DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
    for (int tries = 0; tries < 100; tries++) {
        m->file =
            CreateFileW(m->wpath, access, share, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
        if (m->file != INVALID_HANDLE_VALUE) {
            if (flags & MMKV_OS_EXCL) return file_error(m, ERROR_FILE_EXISTS, err, errsz);
            return MMKV_OK;
        }
        DWORD e = GetLastError();
        if (e != ERROR_FILE_NOT_FOUND || !(flags & MMKV_OS_CREATE))
            return file_error(m, e, err, errsz);
        m->file = CreateFileW(m->wpath, access, share, sa, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
        if (m->file != INVALID_HANDLE_VALUE) {
            m->created = 1;
            return MMKV_OK;
        }
        e = GetLastError();
        if (e != ERROR_FILE_EXISTS) return file_error(m, e, err, errsz);
    }
    return file_error(m, ERROR_FILE_EXISTS, err, errsz);
}

/* Checks that an existing mapping has a size we could have made.  Returns
** MMKV_OK or MMKV_FORMAT with err set. */
static int check_size(struct mmkv_os_map *m, uint64_t size, char *err, int errsz)
{
    if (size >= MMKV_MIN_SIZE && size <= MMKV_MAX_SIZE) return MMKV_OK;
    snprintf(err, (size_t)errsz, "not an mmap mapping: %s (size %llu bytes)", m->what,
             (unsigned long long)size);
    return MMKV_FORMAT;
}

/* Makes the file's section: a new (empty) file is grown to `size` bytes by
** CreateFileMappingW itself, an existing one keeps its size.  Sets m->size,
** m->section and *created.  Returns MMKV_OK or an MMKV_ code with err. */
/* Returns non-zero if the file (of fsize bytes) is empty or still holds the
** marker of a creation that did not finish (MMKV_OS_UNFINISHED in os.h). */
static int file_is_unfinished(HANDLE file, LONGLONG fsize)
{
    uint64_t first = 0;
    DWORD got = 0;
    OVERLAPPED at;
    if (fsize == 0) return 1;
    memset(&at, 0, sizeof at);
    return ReadFile(file, &first, 8, &got, &at) && got == 8 && first == MMKV_OS_UNFINISHED;
}

/* Decides what an unfinished mapping (its creator died, or it is empty)
** means.  Without MMKV_OS_CREATE it is missing.  With it, it is set up again
** (*created = 1) if no other handle uses it (sole: for a named section, no
** handle that finished opening it is left; for a file, no handle at all),
** and refused as corrupt if one does: the marker is then damage (or, for a
** file, its creator was a thread whose process still holds it), and setting
** the mapping up again would reset its lock slot and its size under its
** users (as in os_unix.c).  A finished one is opened (*created = 0).
** Returns MMKV_OK, or MMKV_CANTOPEN or MMKV_CORRUPT with err set. */
static int check_unfinished(struct mmkv_os_map *m, int unfinished, int flags, int sole,
                            int *created, char *err, int errsz)
{
    *created = 0;
    if (!unfinished) return MMKV_OK;
    if (!(flags & MMKV_OS_CREATE)) {
        snprintf(err, (size_t)errsz,
                 "no such mapping: %s (a process died while creating it; mode='create' sets it "
                 "up again)",
                 m->what);
        return MMKV_CANTOPEN;
    }
    if (!sole) {
        snprintf(err, (size_t)errsz,
                 "mapping %s is corrupt: it is marked unfinished while other handles use it",
                 m->what);
        return MMKV_CORRUPT;
    }
    *created = 1;
    return MMKV_OK;
}

/* Empties the file and writes the unfinished marker as its first 8 bytes,
** before CreateFileMappingW grows it: a creator that dies from here on
** leaves a file that the next opener recognises.  Returns an MMKV_ code. */
static int mark_file_unfinished(struct mmkv_os_map *m, char *err, int errsz)
{
    uint64_t marker = MMKV_OS_UNFINISHED;
    LARGE_INTEGER zero;
    OVERLAPPED at;
    DWORD put = 0;
    zero.QuadPart = 0;
    memset(&at, 0, sizeof at);
    if (!SetFilePointerEx(m->file, zero, NULL, FILE_BEGIN) || !SetEndOfFile(m->file) ||
        !WriteFile(m->file, &marker, 8, &put, &at) || put != 8)
        return fail_with(err, (size_t)errsz, MMKV_IOERR, "cannot start the new file");
    return MMKV_OK;
}

static int open_file_section(struct mmkv_os_map *m, int flags, uint64_t size, int sole,
                             int *created, char *err, int errsz)
{
    LARGE_INTEGER fsize;
    if (!GetFileSizeEx(m->file, &fsize))
        return fail_with(err, (size_t)errsz, MMKV_IOERR, "cannot read the size of the file");
    int rc = check_unfinished(m, file_is_unfinished(m->file, fsize.QuadPart), flags, sole,
                              created, err, errsz);
    if (rc) return rc;
    if (*created) {
        rc = mark_file_unfinished(m, err, errsz);
        if (rc) return rc;
    } else {
        size = (uint64_t)fsize.QuadPart;
        rc = check_size(m, size, err, errsz);
        if (rc) return rc;
    }
    m->size = size;
    m->section =
        CreateFileMappingW(m->file, NULL, PAGE_READWRITE, (DWORD)(size >> 32), (DWORD)size, NULL);
    if (m->section) return MMKV_OK;
    DWORD e = GetLastError();
    char what[4300];
    snprintf(what, sizeof what, "cannot map %s (%llu bytes)", m->what, (unsigned long long)size);
    SetLastError(e);
    return fail_with(err, (size_t)errsz, e == ERROR_DISK_FULL ? MMKV_FULL : MMKV_IOERR, what);
}

/* Maps the whole section.  For a named mapping opened (not created) here,
** its size is the size of the view, rounded to pages as every size the
** store asks for already is.  Returns MMKV_OK or an MMKV_ code with err. */
static int map_view(struct mmkv_os_map *m, char *err, int errsz)
{
    m->base = MapViewOfFile(m->section, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 0);
    if (!m->base) {
        DWORD e = GetLastError();
        char what[4300];
        snprintf(what, sizeof what, "cannot map %s", m->what);
        SetLastError(e);
        return fail_with(err, (size_t)errsz, e == ERROR_NOT_ENOUGH_MEMORY ? MMKV_NOMEM : MMKV_IOERR,
                         what);
    }
    if (m->size) return MMKV_OK;
    MEMORY_BASIC_INFORMATION mi;
    if (VirtualQuery(m->base, &mi, sizeof mi) != sizeof mi)
        return fail_with(err, (size_t)errsz, MMKV_IOERR, "cannot find the size of the view");
    m->size = (uint64_t)mi.RegionSize;
    return check_size(m, m->size, err, errsz);
}

/* Opens a named mapping with the init lock held.  Returns an MMKV_ code. */
static int open_named(struct mmkv_os_map *m, const char *name, int flags, uint64_t size,
                      SECURITY_ATTRIBUTES *sa, int timeout_ms, int *created, int *sole, char *err,
                      int errsz)
{
    struct obj_names o;
    names_for_name(name, &o);
    int rc = take_init_lock(m, o.init, sa, timeout_ms, err, errsz);
    if (rc == MMKV_OK) rc = open_section(m, &o, flags, size, sa, err, errsz);
    if (rc != MMKV_OK) return rc;
    /* Only the creator of a section can be alone with it: anyone else who
    ** had it open kept it alive. */
    *sole = m->created;
    m->size = m->created ? size : 0;
    rc = map_view(m, err, errsz);
    if (rc == MMKV_OK && m->created) {
        *(volatile uint64_t *)m->base = MMKV_OS_UNFINISHED;
        *created = 1;
    } else if (rc == MMKV_OK) {
        /* The section existed.  Marked unfinished, it is set up again only
        ** if no handle that finished opening it is still there (none has
        ** the users event open): its creator died mid-way. */
        int unfinished = *(volatile uint64_t *)m->base == MMKV_OS_UNFINISHED, in_use = 0;
        if (unfinished) {
            HANDLE users = OpenEventW(SYNCHRONIZE, FALSE, o.users);
            in_use = users != NULL || GetLastError() != ERROR_FILE_NOT_FOUND;
            close_handle(users);
        }
        rc = check_unfinished(m, unfinished, flags, !in_use, created, err, errsz);
    }
    wcscpy(m->users_name, o.users);
    if (rc == MMKV_OK && !(m->lock = named_mutex(o.lock, sa)))
        rc = fail_with(err, (size_t)errsz, MMKV_IOERR, "cannot create the lock");
    wcscpy(m->lock_name, o.lock);
    return rc;
}

/* Opens a file mapping with the init lock held.  Returns an MMKV_ code. */
static int open_file_mapping(struct mmkv_os_map *m, const char *path, int flags, uint64_t size,
                             SECURITY_ATTRIBUTES *sa, int timeout_ms, int *created, int *sole,
                             char *err, int errsz)
{
    struct obj_names o;
    m->wpath = utf8_to_wide(path);
    if (!m->wpath) {
        snprintf(err, (size_t)errsz, "cannot open %s: the path is not valid UTF-8", path);
        return MMKV_CANTOPEN;
    }
    int rc = open_file(m, flags, sa, err, errsz);
    if (rc != MMKV_OK) return rc;
    if (names_for_file(m->file, &o) != 0)
        return fail_with(err, (size_t)errsz, MMKV_IOERR, "cannot identify the file");
    rc = take_init_lock(m, o.init, sa, timeout_ms, err, errsz);
    if (rc != MMKV_OK) return rc;
    m->presence = CreateEventW(sa, TRUE, FALSE, o.users);
    if (!m->presence) return fail_with(err, (size_t)errsz, MMKV_IOERR, "cannot join the users");
    *sole = GetLastError() != ERROR_ALREADY_EXISTS;
    rc = open_file_section(m, flags, size, *sole, created, err, errsz);
    if (rc == MMKV_OK) rc = map_view(m, err, errsz);
    if (rc == MMKV_OK && !(m->lock = named_mutex(o.lock, sa)))
        rc = fail_with(err, (size_t)errsz, MMKV_IOERR, "cannot create the lock");
    wcscpy(m->lock_name, o.lock);
    return rc;
}

/* Opens or creates a named or file mapping (os.h); returns with the init
** lock held. */
int mmkv_os_open(const char *name, int is_file, int flags, uint64_t size, unsigned perms,
                 int timeout_ms, mmkv_os_map **out, int *created, int *sole, char *err, int errsz)
{
    struct mmkv_os_map *m = calloc(1, sizeof *m);
    SECURITY_ATTRIBUTES sa_buf;
    int rc;
    *out = NULL;
    *created = *sole = 0;
    if (!m) {
        snprintf(err, (size_t)errsz, "out of memory");
        return MMKV_NOMEM;
    }
    m->file = INVALID_HANDLE_VALUE;
    m->is_file = is_file;
    m->perms = perms;
    snprintf(m->what, sizeof m->what, "%s", name);
    SECURITY_ATTRIBUTES *sa = attributes_for(perms, &sa_buf);
    if (is_file)
        rc = open_file_mapping(m, name, flags, size, sa, timeout_ms, created, sole, err, errsz);
    else
        rc = open_named(m, name, flags, size, sa, timeout_ms, created, sole, err, errsz);
    if (sa) LocalFree(sa->lpSecurityDescriptor);
    if (rc != MMKV_OK) {
        mmkv_os_close(m, m->created);
        return rc;
    }
    if (!is_file) hold_add(name, m->section);
    *out = m;
    return MMKV_OK;
}

/* Joins a named mapping's users (see the top of this file), then releases
** the init lock (the mutex object goes with its last handle).  If the event
** cannot be made, this handle goes uncounted: a stray "unfinished" marker
** would then be set up again under it, as before that check existed. */
void mmkv_os_open_done(mmkv_os_map *m)
{
    if (!m->is_file && m->users_name[0] && !m->presence) {
        SECURITY_ATTRIBUTES sa_buf, *sa = attributes_for(m->perms, &sa_buf);
        m->presence = CreateEventW(sa, TRUE, FALSE, m->users_name);
        if (sa) LocalFree(sa->lpSecurityDescriptor);
    }
    if (m->init_held) ReleaseMutex(m->init);
    m->init_held = 0;
    CloseHandle(m->init);
    m->init = NULL;
}

/* Unmaps and closes every handle; see os.h for discard. */
void mmkv_os_close(mmkv_os_map *m, int discard)
{
    if (!m) return;
    if (m->base) UnmapViewOfFile(m->base);
    close_handle(m->section);
    close_handle(m->lock);
    for (unsigned i = 1; m->plocks && i < m->nparts; i++) close_handle(m->plocks[i]);
    free(m->plocks);
    close_handle(m->file);
    /* A discarded new section disappears with its last handle (the hold
    ** is dropped); a discarded new file is deleted. */
    if (discard && m->created && !m->is_file) hold_drop(m->what);
    if (discard && m->created && m->is_file) DeleteFileW(m->wpath);
    close_handle(m->presence);
    if (m->init_held) ReleaseMutex(m->init);
    close_handle(m->init);
    free(m->wpath);
    free(m);
}

/* The address of the view. */
void *mmkv_os_base(mmkv_os_map *m)
{
    return m->base;
}

/* The size of the mapping in bytes. */
uint64_t mmkv_os_size(mmkv_os_map *m)
{
    return m->size;
}

/* The message of the last failure of this map. */
const char *mmkv_os_errmsg(mmkv_os_map *m)
{
    return m->err;
}

/* Writes a file mapping's dirty pages and the file's buffers to disk. */
int mmkv_os_flush(mmkv_os_map *m)
{
    if (!m->is_file) return 0;
    if (!FlushViewOfFile(m->base, 0) || !FlushFileBuffers(m->file)) {
        char what[4300];
        snprintf(what, sizeof what, "flush of %s failed", m->what);
        fail_with(m->err, sizeof m->err, -1, what);
        return -1;
    }
    return 0;
}

/* Drops this process's hold on the section; it disappears once no handle
** is left.  Returns 1 if it existed (held here, or open elsewhere), 0 if
** not, -1 if that cannot be told. */
int mmkv_os_unlink(const char *name)
{
    struct obj_names o;
    names_for_name(name, &o);
    HANDLE h = OpenFileMappingW(FILE_MAP_READ, FALSE, o.section);
    DWORD e = h ? ERROR_SUCCESS : GetLastError();
    close_handle(h);
    if (hold_drop(name) || h || e == ERROR_ACCESS_DENIED) return 1;
    return e == ERROR_FILE_NOT_FOUND ? 0 : -1;
}

/* Gives each part of a split mapping a named mutex of its own: the
** mapping's lock name followed by "#part<i>" (part 0 keeps the lock). */
int mmkv_os_set_parts(mmkv_os_map *m, unsigned n, uint64_t region)
{
    SECURITY_ATTRIBUTES sa_buf;
    if (m->plocks) return 0;
    HANDLE *p = calloc(n, sizeof *p);
    if (!p) return fail_with(m->err, sizeof m->err, -1, "out of memory");
    SECURITY_ATTRIBUTES *sa = attributes_for(m->perms, &sa_buf);
    p[0] = m->lock;
    int rc = 0;
    for (unsigned i = 1; i < n && rc == 0; i++) {
        wchar_t name[200];
        swprintf(name, 200, L"%ls#part%u", m->lock_name, i); /* '#' is in no mapping name */
        if (!(p[i] = named_mutex(name, sa))) rc = fail_with(m->err, sizeof m->err, -1, "cannot create the lock of a part");
    }
    if (sa) LocalFree(sa->lpSecurityDescriptor);
    if (rc) {
        for (unsigned i = 1; i < n; i++) close_handle(p[i]);
        free(p);
        return rc;
    }
    m->plocks = p;
    m->nparts = n;
    m->region = region;
    return 0;
}

/* Returns the mutex of the lock word at lockmem: its part's. */
static HANDLE lock_of(mmkv_os_map *m, void *lockmem)
{
    if (!m->plocks) return m->lock;
    uint64_t i = (uint64_t)((char *)lockmem - (char *)m->base) / m->region;
    return i < m->nparts ? m->plocks[i] : m->lock;
}

/* Clears the lock slot (the holder record); the mutex itself is named. */
int mmkv_os_lock_init(mmkv_os_map *m, void *lockmem)
{
    (void)m;
    memset(lockmem, 0, MMKV_OS_LOCK_BYTES);
    return 0;
}

/* Records the calling thread as the lock's holder. */
static void set_owner(struct lock_owner *w)
{
    InterlockedExchange(&w->tid, (LONG)GetCurrentThreadId());
    InterlockedExchange(&w->pid, (LONG)GetCurrentProcessId());
}

/* Takes the named mutex within timeout_ms; abandoned means OWNERDEAD. */
int mmkv_os_lock(mmkv_os_map *m, void *lockmem, int timeout_ms)
{
    struct lock_owner *w = lockmem;
    HANDLE h = lock_of(m, lockmem);
    DWORD r = wait_for(h, timeout_ms);
    switch (r) {
    case WAIT_OBJECT_0:
        /* Held already by this thread (through another handle)?  The
        ** mutex let us in again; an error-checking lock must not. */
        if (w->pid == (LONG)GetCurrentProcessId() && w->tid == (LONG)GetCurrentThreadId()) {
            ReleaseMutex(h);
            return MMKV_OS_DEADLOCK;
        }
        set_owner(w);
        return MMKV_OS_LOCKED;
    case WAIT_ABANDONED:
        set_owner(w);
        return MMKV_OS_OWNERDEAD;
    case WAIT_TIMEOUT:
        return MMKV_OS_TIMEOUT;
    default:
        fail_with(m->err, sizeof m->err, 0, "the lock failed");
        return MMKV_OS_ERROR;
    }
}

/* Nothing to do on Windows (see the body). */
void mmkv_os_lock_repaired(mmkv_os_map *m, void *lockmem)
{
    /* An abandoned mutex is usable again as soon as it is taken. */
    (void)m;
    (void)lockmem;
}

/* Clears the holder record and releases the mutex. */
void mmkv_os_unlock(mmkv_os_map *m, void *lockmem)
{
    struct lock_owner *w = lockmem;
    InterlockedExchange(&w->pid, 0);
    InterlockedExchange(&w->tid, 0);
    ReleaseMutex(lock_of(m, lockmem));
}

/* Large pages on Windows need a privilege most users lack: plain
** committed pages. */
void *mmkv_os_big_alloc(size_t n)
{
    return VirtualAlloc(NULL, n, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
}

void mmkv_os_big_prefault(void *p, size_t n)
{
    (void)p;
    (void)n;
}

void mmkv_os_big_free(void *p, size_t n)
{
    (void)n;
    if (p) VirtualFree(p, 0, MEM_RELEASE);
}

uint64_t mmkv_os_now_ms(void)
{
    return (uint64_t)GetTickCount64();
}

/* 64 random bits from the CRT's rand_s (RtlGenRandom). */
uint64_t mmkv_os_random(void)
{
    unsigned int a = 0, b = 0;
    if (rand_s(&a) != 0 || rand_s(&b) != 0) {
        LARGE_INTEGER t;
        QueryPerformanceCounter(&t);
        return (uint64_t)t.QuadPart ^ ((uint64_t)GetCurrentProcessId() << 32);
    }
    return ((uint64_t)a << 32) | b;
}
#endif /* _WIN32 */
