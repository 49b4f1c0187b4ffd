/*
** backend_lmdb.c -- LMDB (Debian's liblmdb) through its C API.
**
**   lmdb       one file on /dev/shm, MDB_NOSUBDIR|MDB_NOSYNC|MDB_WRITEMAP.
**              A lookup is a read transaction of its own (mdb_txn_renew,
**              mdb_get, mdb_txn_reset: how a process sees the latest data);
**              a put outside begin/commit is mdb_txn_begin, mdb_put,
**              mdb_txn_commit.
**   lmdb-1txn  the same store, lookups only, each chunk of 256 lookups in
**              one read transaction: mdb_get alone, LMDB's floor.
*/
#include "bench.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct bench_db {
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *rtxn; /* a reset read transaction, renewed per lookup */
    MDB_txn *wtxn; /* the open write transaction of begin() */
    int in_chunk;  /* lmdb-1txn: rtxn is live for a chunk of lookups */
};

/* Prints an LMDB error about what; returns -1. */
static int lm_fail(int rc, const char *what)
{
    fprintf(stderr, "bench: lmdb %s: %s\n", what, mdb_strerror(rc));
    return -1;
}

static void lm_path(const bench_cfg *c, char *out, size_t n)
{
    snprintf(out, n, "/dev/shm/bench-%s.lmdb", c->tag);
}

/* Room for n entries with several times the space B-tree pages need. */
static size_t lm_map_size(const bench_cfg *c)
{
    uint64_t per = KEY_LEN + c->vsize + 64;
    return (size_t)(per * c->n * 4 + ((uint64_t)256 << 20));
}

static void lm_close(struct bench_db *d)
{
    if (d->wtxn) mdb_txn_abort(d->wtxn);
    if (d->rtxn) mdb_txn_abort(d->rtxn);
    if (d->env) mdb_env_close(d->env);
    free(d);
}

/* Opens the environment and the main database; leaves a reset read txn. */
static int lm_open(const bench_cfg *c, struct bench_db **out)
{
    char path[128];
    MDB_txn *t;
    struct bench_db *d = calloc(1, sizeof *d);
    int rc;
    *out = NULL;
    if (!d) return -1;
    lm_path(c, path, sizeof path);
    if ((rc = mdb_env_create(&d->env)) || (rc = mdb_env_set_mapsize(d->env, lm_map_size(c))) ||
        (rc = mdb_env_set_maxreaders(d->env, 64)) ||
        (rc = mdb_env_open(d->env, path, MDB_NOSUBDIR | MDB_NOSYNC | MDB_WRITEMAP, 0600)))
        goto fail;
    if ((rc = mdb_txn_begin(d->env, NULL, 0, &t))) goto fail;
    if ((rc = mdb_dbi_open(t, NULL, 0, &d->dbi)) || (rc = mdb_txn_commit(t))) goto fail;
    if ((rc = mdb_txn_begin(d->env, NULL, MDB_RDONLY, &d->rtxn))) goto fail;
    mdb_txn_reset(d->rtxn);
    *out = d;
    return 0;
fail:
    lm_fail(rc, path);
    lm_close(d);
    return -1;
}

static void lm_destroy(const bench_cfg *c)
{
    char path[128], lock[140];
    lm_path(c, path, sizeof path);
    snprintf(lock, sizeof lock, "%s-lock", path);
    unlink(path);
    unlink(lock);
}

static int lm_create(const bench_cfg *c, struct bench_db **out)
{
    char path[128], lock[140];
    lm_destroy(c);
    lm_path(c, path, sizeof path);
    snprintf(lock, sizeof lock, "%s-lock", path);
    cleanup_register(path);
    cleanup_register(lock);
    return lm_open(c, out);
}

/* mdb_get in d->rtxn; renews and resets it unless a chunk keeps it live. */
static int lm_get(struct bench_db *d, const char *key, uint64_t *sink)
{
    MDB_val k = {KEY_LEN, (void *)key}, v;
    int rc = d->in_chunk ? 0 : mdb_txn_renew(d->rtxn);
    if (rc) return lm_fail(rc, "renew");
    rc = mdb_get(d->rtxn, d->dbi, &k, &v);
    if (rc == 0) *sink += v.mv_size + (v.mv_size ? ((const unsigned char *)v.mv_data)[0] : 0);
    if (!d->in_chunk) mdb_txn_reset(d->rtxn);
    if (rc == 0) return 0;
    return rc == MDB_NOTFOUND ? 1 : lm_fail(rc, "get");
}

/* Keeps one read transaction across a chunk of lookups (lmdb-1txn). */
static void lm_read_chunk(struct bench_db *d, int start)
{
    if (start && mdb_txn_renew(d->rtxn) == 0) d->in_chunk = 1;
    if (!start && d->in_chunk) {
        mdb_txn_reset(d->rtxn);
        d->in_chunk = 0;
    }
}

static int lm_begin(struct bench_db *d)
{
    int rc = mdb_txn_begin(d->env, NULL, 0, &d->wtxn);
    return rc ? lm_fail(rc, "begin") : 0;
}

static int lm_commit(struct bench_db *d)
{
    int rc = mdb_txn_commit(d->wtxn);
    d->wtxn = NULL;
    return rc ? lm_fail(rc, "commit") : 0;
}

/* Runs one change in d->wtxn, or in a transaction of its own. */
static int lm_change(struct bench_db *d, const char *key, const void *val, uint32_t vlen)
{
    MDB_val k = {KEY_LEN, (void *)key}, v = {vlen, (void *)val};
    int own = d->wtxn == NULL;
    if (own && lm_begin(d)) return -1;
    int rc = val ? mdb_put(d->wtxn, d->dbi, &k, &v, 0) : mdb_del(d->wtxn, d->dbi, &k, NULL);
    if (rc && rc != MDB_NOTFOUND) {
        if (own) {
            mdb_txn_abort(d->wtxn);
            d->wtxn = NULL;
        }
        return lm_fail(rc, val ? "put" : "del");
    }
    return own ? lm_commit(d) : 0;
}

static int lm_put(struct bench_db *d, const char *key, const void *val, uint32_t vlen)
{
    return lm_change(d, key, val ? val : "", vlen);
}

static int lm_del(struct bench_db *d, const char *key)
{
    return lm_change(d, key, NULL, 0);
}

/* Reads the value of key and replaces it, in one write transaction. */
static int lm_update(struct bench_db *d, const char *key, const void *val, uint32_t vlen)
{
    MDB_val k = {KEY_LEN, (void *)key}, old, v = {vlen, (void *)val};
    if (lm_begin(d)) return -1;
    int rc = mdb_get(d->wtxn, d->dbi, &k, &old);
    if (rc == 0) rc = mdb_put(d->wtxn, d->dbi, &k, &v, 0);
    if (rc == 0) return lm_commit(d);
    mdb_txn_abort(d->wtxn);
    d->wtxn = NULL;
    return lm_fail(rc, "update");
}

/* Walks every entry with a cursor in one read transaction. */
static int64_t lm_scan(struct bench_db *d, uint64_t *sink)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int64_t rows = 0;
    int rc = mdb_txn_renew(d->rtxn);
    if (rc) return lm_fail(rc, "renew");
    if ((rc = mdb_cursor_open(d->rtxn, d->dbi, &cur))) {
        mdb_txn_reset(d->rtxn);
        return lm_fail(rc, "cursor");
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        *sink += ((const unsigned char *)k.mv_data)[0] + v.mv_size +
                 (v.mv_size ? ((const unsigned char *)v.mv_data)[0] : 0);
        rows++;
    }
    mdb_cursor_close(cur);
    mdb_txn_reset(d->rtxn);
    return rc == MDB_NOTFOUND ? rows : lm_fail(rc, "scan");
}

/* Bytes of the B-tree's pages (last page number + 1 times page size). */
static int lm_space(struct bench_db *d, uint64_t *used, uint64_t *entries)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_info(d->env, &info);
    if (!rc) rc = mdb_env_stat(d->env, &st);
    if (rc) return lm_fail(rc, "stat");
    *used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    *entries = st.ms_entries;
    return 0;
}

const backend be_lmdb = {
    "lmdb",     "LMDB C API, NOSYNC|WRITEMAP on /dev/shm, a read txn per lookup",
    1,          0,
    NULL,       lm_create,
    lm_open,    lm_close,
    lm_destroy, lm_get,
    lm_put,     lm_del,
    lm_begin,   lm_commit,
    lm_scan,    NULL,
    lm_space, 0, lm_update};

const backend be_lmdb_1txn = {
    "lmdb-1txn", "LMDB mdb_get alone, 256 lookups per read txn (lookups only)",
    1,           1,
    "lmdb",      lm_create,
    lm_open,     lm_close,
    lm_destroy,  lm_get,
    lm_put,      lm_del,
    lm_begin,    lm_commit,
    lm_scan,     lm_read_chunk,
    NULL, 0, NULL};
