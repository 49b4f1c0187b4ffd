/*
** mmkv.h -- the public C API of the mapped key/value store.
**
** A store is a named shared-memory mapping or a memory-mapped file that
** holds key/value entries.  Several processes open the same store and see
** one live set of entries; every change happens under a process-shared lock
** that lives in the mapping, and a process that dies holding the lock never
** blocks the others: the next one to take the lock undoes the dead one's
** unfinished transaction.
**
** Keys are TEXT or BLOB byte strings (a TEXT key and a BLOB key with the same
** bytes are different keys).  Values are NULL, 64-bit integers, doubles,
** TEXT or BLOB.  This API knows nothing of SQLite; src/vtab.c adapts it.
**
** Every function returns one of the MMKV_ codes below; a handle keeps the
** message of its last error, read with mmkv_errmsg().
**
** Typical use:
**
**     mmkv_options o = mmkv_default_options();
**     o.name = "alpha";
**     mmkv *s;
**     if (mmkv_open(&o, &s, NULL) == MMKV_OK) {
**         mmkv_key k = mmkv_text_key("foo");
**         mmkv_value v = {.type = MMKV_TEXT, .p = "hello", .n = 5};
**         mmkv_put(s, &k, &v, MMKV_PUT_REPLACE);
**         mmkv_close(s);
**     }
*/
#ifndef MMKV_H
#define MMKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Result codes. */
enum {
    MMKV_OK = 0,
    MMKV_NOTFOUND, /* no entry with that key; mmkv_unlink: no such mapping */
    MMKV_EXISTS,   /* insert of a key that is already present */
    MMKV_BUSY,     /* the lock could not be had within the timeout */
    MMKV_FULL,     /* the mapping has no room for the change */
    MMKV_TOOBIG,   /* a key or value larger than the documented limits */
    MMKV_READONLY, /* a write through a handle opened read-only */
    MMKV_CORRUPT,  /* the mapping's contents are damaged */
    MMKV_FORMAT,   /* not a mapping of ours, or another format version */
    MMKV_CANTOPEN, /* no such mapping/file, it exists already, or no access */
    MMKV_INVALID,  /* a bad argument (name, size, mode, misuse) */
    MMKV_NOMEM,    /* out of process memory */
    MMKV_IOERR     /* the operating system refused (see the message) */
};

/* Value types.  MMKV_TEXT and MMKV_BLOB are also the two key types. */
enum { MMKV_NULL = 0, MMKV_INT = 1, MMKV_REAL = 2, MMKV_TEXT = 3, MMKV_BLOB = 4 };

/* How mmkv_open treats an existing or missing mapping. */
enum {
    MMKV_MODE_CREATE = 0, /* open it if it exists, else create it */
    MMKV_MODE_OPEN,       /* it must exist */
    MMKV_MODE_NEW,        /* it must not exist yet */
    MMKV_MODE_READONLY    /* it must exist; every write fails MMKV_READONLY */
};

/* Limits. */
#define MMKV_MIN_SIZE ((uint64_t)64 * 1024)
#define MMKV_MAX_SIZE ((uint64_t)16 * 1024 * 1024 * 1024)
#define MMKV_DEFAULT_SIZE ((uint64_t)1024 * 1024)
#define MMKV_MAX_KEY 65535u
#define MMKV_MAX_VALUE 1000000000u
#define MMKV_MAX_NAME 64
#define MMKV_FORMAT_VERSION 2

/* Where and how to open a store.  Exactly one of name and file is set. */
typedef struct mmkv_options {
    const char *name; /* shared-memory name: 1-64 of [A-Za-z0-9._-], no leading '.' */
    const char *file; /* path of a file that backs the mapping */
    uint64_t size;    /* capacity in bytes when the mapping is created */
    int mode;         /* MMKV_MODE_* */
    int timeout_ms;   /* how long to wait for the lock; 0 = do not wait */
    unsigned perms;   /* permission bits of a created mapping or file */
    unsigned parts;   /* parts of a created mapping (1-64, 0 = 1); see below */
} mmkv_options;

/* Parts.  A mapping created with parts = S > 1 is S stores of size/S bytes
** (at least MMKV_MIN_SIZE each), each with its own lock; a key's part
** follows from its hash.  A lookup, a put or a delete outside a transaction
** locks only its key's part, so writers of different parts run at once; a
** transaction (mmkv_begin) locks every part in ascending order and commits
** on all of them atomically; mmkv_begin_deferred starts one that locks one
** part for as long as it can.  Scans and mmkv_stat lock every part.  A part
** can be full (MMKV_FULL) while others have room.  Opening an existing
** mapping takes its parts from it (o->parts is then ignored). */

/* A key: type MMKV_TEXT or MMKV_BLOB, n bytes at p (NUL bytes allowed). */
typedef struct mmkv_key {
    int type;
    const void *p;
    uint32_t n;
} mmkv_key;

/* A value.  i holds MMKV_INT, r MMKV_REAL; p and n hold TEXT and BLOB. */
typedef struct mmkv_value {
    int type;
    int64_t i;
    double r;
    const void *p;
    uint32_t n;
} mmkv_value;

/* Figures returned by mmkv_stat. */
typedef struct mmkv_stats {
    uint64_t entries;  /* committed entries (and this handle's pending ones) */
    uint64_t capacity; /* bytes of the mapping */
    uint64_t used;     /* bytes taken by the header, entries, index and pending */
    uint64_t kv_bytes; /* bytes of keys and values of the entries */
    uint64_t slots;    /* slots of the hash index */
    uint32_t format;   /* format version of the mapping: 2, or 3 when split into parts */
    uint32_t parts;    /* parts of the mapping (1 in format 2) */
} mmkv_stats;

typedef struct mmkv mmkv;

/* Flags of mmkv_put. */
#define MMKV_PUT_INSERT 0  /* fail with MMKV_EXISTS if the key is present */
#define MMKV_PUT_REPLACE 1 /* insert, or replace the present value */

/* Returns options with every field at its default (no name, no file, 1 MiB,
** MMKV_MODE_CREATE, 5000 ms, 0600). */
mmkv_options mmkv_default_options(void);

/* Returns a TEXT key for the NUL-terminated string s (which it borrows). */
mmkv_key mmkv_text_key(const char *s);

/* Checks a shared-memory name against the naming rule.  Returns MMKV_OK or
** MMKV_INVALID. */
int mmkv_check_name(const char *name);

/* Opens (or creates, per o->mode) a store and stores a new handle in *out.
** On failure *out is NULL and, if errmsg is not NULL, *errmsg receives a
** message the caller frees with free().  Errors: MMKV_INVALID, MMKV_CANTOPEN,
** MMKV_FORMAT, MMKV_CORRUPT, MMKV_BUSY, MMKV_NOMEM, MMKV_IOERR. */
int mmkv_open(const mmkv_options *o, mmkv **out, char **errmsg);

/* Closes a handle; an open transaction is rolled back first. */
void mmkv_close(mmkv *s);

/* Removes the named shared-memory mapping.  Returns MMKV_OK if it existed,
** MMKV_NOTFOUND if not, MMKV_INVALID for a bad name, MMKV_IOERR otherwise.
** Processes that have it open keep using it until they close it. */
int mmkv_unlink(const char *name);

/* The message of the handle's last error ("" after success).  The string
** belongs to the handle and lives until its next call. */
const char *mmkv_errmsg(mmkv *s);

/* A short English name for a result code, e.g. "busy". */
const char *mmkv_strerror(int rc);

/* Starts a write transaction: takes the lock and holds it until
** mmkv_commit or mmkv_rollback.  Errors: MMKV_BUSY, MMKV_CORRUPT,
** MMKV_READONLY, MMKV_INVALID (already in a transaction). */
int mmkv_begin(mmkv *s);

/* Starts a write transaction as mmkv_begin does, for a caller whose
** transactions mostly use keys of one part of a split mapping (an SQL
** statement outside BEGIN).  It takes no part yet: while its gets, puts
** and deletes are of keys of one part, it holds that part alone, so
** writers of other parts go on at once.  Its first other call (a scan,
** mmkv_stat, or a call on a key of another part) first takes every part in
** ascending order: if a part below the one it holds is busy, its changes
** are undone, every part is taken, and the changes are done again.  If
** every part is not had within the timeout, that call fails with MMKV_BUSY
** and the transaction goes on unchanged.  The whole transaction is rolled
** back instead if what it did cannot stand after that wait: another writer
** changed a key it had read (a get, or a put or delete that found the key
** there or not there and changed nothing; after mmkv_rollback_to undid
** changes, any commit in its part counts), or took a key it inserted or
** deleted (MMKV_BUSY); the part filled up (MMKV_FULL); another writer took
** the part and kept it past the timeout (MMKV_BUSY); or another error.  Its message then begins "the transaction
** was rolled back", and every later call on it, mmkv_commit too, returns
** the same error until mmkv_commit or mmkv_rollback ends it.  A transaction
** that must not fail that way starts with mmkv_begin.  In a mapping of one
** part it is mmkv_begin. */
int mmkv_begin_deferred(mmkv *s);

/* Makes the transaction's changes visible to all and releases the lock. */
int mmkv_commit(mmkv *s);

/* Undoes the transaction's changes and releases the lock. */
int mmkv_rollback(mmkv *s);

/* Returns a mark of the transaction's progress, for mmkv_rollback_to. */
size_t mmkv_mark(mmkv *s);

/* Undoes the changes of the transaction made after mark; the transaction
** stays open. */
int mmkv_rollback_to(mmkv *s, size_t mark);

/* Non-zero while the handle has a write transaction open. */
int mmkv_in_transaction(mmkv *s);

/* Looks up key.  On MMKV_OK, *v describes the value; its bytes (TEXT, BLOB)
** are copied into *buf (grown with realloc; the caller frees it) and
** v->p points into it.  With v NULL, only says whether the key is there
** (buf and bufsz are not used).  Errors: MMKV_NOTFOUND, MMKV_BUSY,
** MMKV_CORRUPT, MMKV_NOMEM. */
int mmkv_get(mmkv *s, const mmkv_key *key, mmkv_value *v, void **buf, size_t *bufsz);

/* As mmkv_get, but the value's bytes go to byte `at` of *buf, followed by a
** NUL; the `at` bytes before them are kept when *buf grows.  A caller can
** so build a record of its own around the value without a second copy. */
int mmkv_get_at(mmkv *s, const mmkv_key *key, mmkv_value *v, void **buf, size_t *bufsz,
                size_t at);

/* Inserts or replaces (flags MMKV_PUT_*).  Outside a transaction the change
** is committed at once.  Errors: MMKV_EXISTS, MMKV_FULL, MMKV_TOOBIG,
** MMKV_READONLY, MMKV_BUSY, MMKV_CORRUPT, MMKV_NOMEM.  On error nothing
** changed. */
int mmkv_put(mmkv *s, const mmkv_key *key, const mmkv_value *v, int flags);

/* Deletes key.  Errors: MMKV_NOTFOUND, MMKV_READONLY, MMKV_BUSY,
** MMKV_CORRUPT, MMKV_NOMEM. */
int mmkv_del(mmkv *s, const mmkv_key *key);

/* Calls fn(ctx, key, value) for every entry, under the lock, as of one
** moment.  The pointers are valid only during the call.  A non-zero return
** from fn stops the scan and is returned. */
typedef int (*mmkv_scan_fn)(void *ctx, const mmkv_key *key, const mmkv_value *v);
int mmkv_scan(mmkv *s, mmkv_scan_fn fn, void *ctx);

/* Fills *st with the store's figures (taken under the lock). */
int mmkv_stat(mmkv *s, mmkv_stats *st);

/* The number of entries as last seen, without the lock: a planner's
** estimate, never an error. */
uint64_t mmkv_estimate(mmkv *s);

/* Checks the whole mapping.  *report receives "ok" or one line per problem
** (caller frees with free()).  Returns MMKV_OK if the report was made. */
int mmkv_check(mmkv *s, char **report);

/* Writes a file-backed mapping to its file now (no-op for shared memory). */
int mmkv_flush(mmkv *s);

/* Describes where the store lives: "name" or "file", and the name or path. */
const char *mmkv_location(mmkv *s, int *is_file);

#ifdef __cplusplus
}
#endif
#endif
