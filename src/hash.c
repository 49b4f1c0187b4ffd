/*
** hash.c -- the key hash shared by every process that opens a mapping.
**
** 64-bit multiply-and-fold over 8-byte words, seeded per mapping so that
** keys chosen to collide in one mapping do not collide in another.  It must
** give the same result on every platform: words are read little-endian.
*/
#include "store_int.h"

#define K1 0x9E3779B97F4A7C15ull
#define K2 0xC2B2AE3D27D4EB4Full
#define K3 0x165667B19E3779F9ull

/* Returns the 128-bit product of a and b folded to 64 bits. */
static uint64_t fold_mul(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Reads n (<= 8) bytes at p as a little-endian integer. */
static uint64_t read_le(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Returns the hash of key k under seed.  The key type is part of it. */
uint64_t key_hash(uint64_t seed, const mmkv_key *k)
{
    const unsigned char *p = k->p;
    uint64_t n = k->n;
    uint64_t h = fold_mul(seed ^ K1, (n << 1 | (k->type == MMKV_BLOB)) ^ K2);
    while (n >= 8) {
        h = fold_mul(h ^ read_le(p, 8), K3);
        p += 8;
        n -= 8;
    }
    if (n) h = fold_mul(h ^ read_le(p, (unsigned)n) ^ K2, K3);
    return fold_mul(h, K1) ^ h;
}
