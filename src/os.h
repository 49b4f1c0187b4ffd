/*
** os.h -- the platform contract used by the store.
**
** Two implementations fill it: os_unix.c (POSIX shared memory, mmap, a
** robust process-shared mutex) and os_win.c (file mappings and a named
** mutex).  The store never includes an OS header; it sees only this.
**
** Opening is race-free between processes: mmkv_os_open returns with an
** "init" lock held, during which the caller creates or validates the header;
** mmkv_os_open_done releases it.  A mapping is "created" by an open in
** create mode that finds it empty, or unfinished (see MMKV_OS_UNFINISHED)
** with no handle left that finished opening it; unfinished while in use, it
** is refused as corrupt (MMKV_CORRUPT), and without create mode it is
** missing.  While open, every handle holds a shared
** "presence" lock, so an opener can tell that it is the only user (then any
** lock word left in the mapping by earlier processes is stale and may be
** reset, see *sole).
*/
#ifndef MMKV_OS_H
#define MMKV_OS_H

#include <stddef.h>
#include <stdint.h>

typedef struct mmkv_os_map mmkv_os_map;

/* The first 8 bytes of a mapping being created, until the store writes its
** magic there as the last step.  An opener in create mode that holds the
** init lock and finds this marker, with no handle left that finished
** opening the mapping, knows the creator died and sets the mapping up again
** (see above). */
#define MMKV_OS_UNFINISHED 0x6873696e69666e75ull /* "unfinish" */

/* Bytes reserved in the mapping header for the platform's lock word. */
#define MMKV_OS_LOCK_BYTES 64

/* Flags of mmkv_os_open. */
#define MMKV_OS_CREATE 1 /* create it if missing */
#define MMKV_OS_EXCL 2   /* fail if it exists */

/* Results of mmkv_os_lock. */
#define MMKV_OS_LOCKED 0    /* the lock is held */
#define MMKV_OS_OWNERDEAD 1 /* held; the previous holder died holding it */
#define MMKV_OS_TIMEOUT 2   /* not had within the timeout */
#define MMKV_OS_DEADLOCK 3  /* this thread holds it already */
#define MMKV_OS_ERROR 4     /* the OS refused; see mmkv_os_errmsg */

/* Opens or creates the mapping named by name (is_file = 0) or the file at
** path (is_file = 1).  A new mapping gets `size` bytes and permission bits
** perms.  On success returns 0 with *out set, the init lock held, *created
** non-zero if this call created it and *sole non-zero if no other handle has
** it open.  On failure returns an MMKV_ code and writes a message into
** err (errsz bytes).  timeout_ms bounds the wait for the init lock. */
int mmkv_os_open(const char *name, int is_file, int flags, uint64_t size, unsigned perms,
                 int timeout_ms, mmkv_os_map **out, int *created, int *sole, char *err, int errsz);

/* Releases the init lock taken by mmkv_os_open (on Windows, a named
** mapping's handle first joins its users: see os_win.c). */
void mmkv_os_open_done(mmkv_os_map *m);

/* Unmaps and closes.  A created mapping whose initialisation was not
** finished (discard non-zero) is removed again. */
void mmkv_os_close(mmkv_os_map *m, int discard);

/* The mapped base address and its size in bytes. */
void *mmkv_os_base(mmkv_os_map *m);
uint64_t mmkv_os_size(mmkv_os_map *m);

/* Writes a file mapping's dirty pages to the file.  Returns 0 or -1. */
int mmkv_os_flush(mmkv_os_map *m);

/* Removes a named mapping.  Returns 1 if it existed, 0 if not, -1 on error. */
int mmkv_os_unlink(const char *name);

/* Prepares the locks of a mapping split into n parts of region bytes each
** (each part's header has a lock word): on Windows, where a lock is a named
** mutex, one mutex per part.  Returns 0, or -1 (see mmkv_os_errmsg). */
int mmkv_os_set_parts(mmkv_os_map *m, unsigned n, uint64_t region);
/* Initialises the lock word at lockmem (MMKV_OS_LOCK_BYTES bytes in the
** mapping).  Only while no other process can use it.  Returns 0 or -1. */
int mmkv_os_lock_init(mmkv_os_map *m, void *lockmem);

/* Takes the lock, waiting at most timeout_ms (0: do not wait). */
int mmkv_os_lock(mmkv_os_map *m, void *lockmem, int timeout_ms);

/* After MMKV_OS_OWNERDEAD and repair: marks the lock usable again. */
void mmkv_os_lock_repaired(mmkv_os_map *m, void *lockmem);

/* Releases the lock. */
void mmkv_os_unlock(mmkv_os_map *m, void *lockmem);

/* A monotonic clock in milliseconds (for one deadline over several locks). */
uint64_t mmkv_os_now_ms(void);
/* 64 random bits for the hash seed of a new mapping. */
uint64_t mmkv_os_random(void);

/* Allocates n bytes of private memory (page-aligned, zeroed) for a large
** buffer that is filled and read in order, apart from the C heap.  On
** Linux it asks for transparent huge pages: filling it then takes one page
** fault per 2 MiB instead of one per 4 KiB, and fewer TLB misses; the hint
** stays with this memory, never with the heap of the program.  Returns
** NULL on failure. */
void *mmkv_os_big_alloc(size_t n);

/* Faults in the first n bytes of memory from mmkv_os_big_alloc now, where
** the OS can (Linux 5.14 on), so that filling them later takes no page
** fault: a scan sizes its buffer before it takes the lock, and the lock is
** then not held while the kernel clears pages.  Elsewhere nothing. */
void mmkv_os_big_prefault(void *p, size_t n);

/* Frees memory from mmkv_os_big_alloc (n as given to it). */
void mmkv_os_big_free(void *p, size_t n);

/* The message of the last OS failure of this map ("" if none). */
const char *mmkv_os_errmsg(mmkv_os_map *m);

#endif
