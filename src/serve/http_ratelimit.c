/* http_ratelimit.c — token buckets by key (an API key's index or a client address): each bucket holds
 * up to `burst` tokens, refills at `rate` tokens per second, and a request takes one. Buckets live in an
 * open-addressing hash table; when it fills, buckets that have refilled completely (indistinguishable
 * from new ones) are dropped. The caller serialises calls (the server's lock). */
#include "serve/http_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FT__RL_CAP 8192   /* slots (power of two); at most 3/4 used */

typedef struct rl_bucket {
    char   key[96];       /* "" = empty slot */
    double tokens;
    double last;          /* monotonic seconds of the last refill */
} rl_bucket;

struct ft__rate_limiter {
    double rate, burst;
    int    used;
    rl_bucket *v;         /* [FT__RL_CAP] */
};

int ft__rate_limiter_create(ft__rate_limiter **out, double rate, double burst) {
    ft__rate_limiter *rl = calloc(1, sizeof *rl);
    if (!rl) return -1;
    rl->v = calloc(FT__RL_CAP, sizeof *rl->v);
    if (!rl->v) { free(rl); return -1; }
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    *out = rl;
    return 0;
}

void ft__rate_limiter_free(ft__rate_limiter *rl) {
    if (!rl) return;
    free(rl->v);
    free(rl);
}

static uint32_t hash_key(const char *s) {
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* rebuilds the table without the buckets that are full again */
static void sweep(ft__rate_limiter *rl, double now) {
    rl_bucket *old = rl->v;
    rl_bucket *v = calloc(FT__RL_CAP, sizeof *v);
    if (!v) { memset(old, 0, FT__RL_CAP * sizeof *old); rl->used = 0; return; }
    rl->v = v;
    rl->used = 0;
    for (int i = 0; i < FT__RL_CAP; i++) {
        rl_bucket *b = &old[i];
        if (!b->key[0] || b->tokens + (now - b->last) * rl->rate >= rl->burst) continue;
        uint32_t h = hash_key(b->key) & (FT__RL_CAP - 1);
        while (v[h].key[0]) h = (h + 1) & (FT__RL_CAP - 1);
        v[h] = *b;
        rl->used++;
    }
    free(old);
}

int ft__rate_limiter_take(ft__rate_limiter *rl, const char *key, double now) {
    if (!rl) return 0;
    uint32_t h = hash_key(key) & (FT__RL_CAP - 1);
    while (rl->v[h].key[0] && strcmp(rl->v[h].key, key) != 0) h = (h + 1) & (FT__RL_CAP - 1);
    rl_bucket *b = &rl->v[h];
    if (!b->key[0]) {
        if (rl->used >= FT__RL_CAP * 3 / 4) {
            sweep(rl, now);
            if (rl->used >= FT__RL_CAP * 3 / 4) { memset(rl->v, 0, FT__RL_CAP * sizeof *rl->v); rl->used = 0; }
            return ft__rate_limiter_take(rl, key, now);
        }
        size_t n = strlen(key);
        if (n >= sizeof b->key) n = sizeof b->key - 1;
        memcpy(b->key, key, n);
        b->key[n] = '\0';
        b->tokens = rl->burst;
        b->last = now;
        rl->used++;
    }
    b->tokens += (now - b->last) * rl->rate;
    if (b->tokens > rl->burst) b->tokens = rl->burst;
    b->last = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    int wait = (int)ceil((1.0 - b->tokens) / rl->rate);
    return wait < 1 ? 1 : wait;
}
