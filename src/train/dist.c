/* dist.c — the single-process communication layer (rank 0 of 1) and the helpers every implementation
 * shares (dist.h). */
#include "train/dist.h"
#include "trainer_internal.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

static int single_bcast(void *u, void *buf, size_t bytes, int root) { return FT_OK; }
static int single_allgather(void *u, const void *mine, size_t bytes, void *all) {
    if (all != mine) memmove(all, mine, bytes);
    return FT_OK;
}
static int single_p2p(void *u, const void *buf, size_t bytes, int peer, int *req) {
    return ft_error(FT_ERR_INVALID, "one process has no peer to exchange messages with");
}
static int single_irecv(void *u, void *buf, size_t bytes, int peer, int *req) { return single_p2p(u, buf, bytes, peer, req); }
static int single_wait(void *u, int req) { return FT_OK; }

static const ft__dist k_single = {"single", 0, 1, NULL, single_bcast, single_allgather, single_p2p, single_irecv, single_wait};
static const ft__dist *g_dist = &k_single;

const ft__dist *ft__dist_get(void) { return g_dist; }
void ft__dist_set(const ft__dist *d) { g_dist = d ? d : &k_single; }

#define PIECE_BYTES ((size_t)1 << 30)

int ft__dist_send(const ft__dist *d, const void *buf, size_t bytes, int to) {
    for (size_t at = 0; at < bytes || (bytes == 0 && at == 0); at += PIECE_BYTES) {
        size_t n = bytes - at < PIECE_BYTES ? bytes - at : PIECE_BYTES;
        int req;
        FT_TRY(d->isend(d->user, (const char *)buf + at, n, to, &req));
        FT_TRY(d->wait(d->user, req));
        if (bytes == 0) break;
    }
    return FT_OK;
}

int ft__dist_recv(const ft__dist *d, void *buf, size_t bytes, int from) {
    for (size_t at = 0; at < bytes || (bytes == 0 && at == 0); at += PIECE_BYTES) {
        size_t n = bytes - at < PIECE_BYTES ? bytes - at : PIECE_BYTES;
        int req;
        FT_TRY(d->irecv(d->user, (char *)buf + at, n, from, &req));
        FT_TRY(d->wait(d->user, req));
        if (bytes == 0) break;
    }
    return FT_OK;
}

/* what each rank says in ft__dist_agree: its status and the start of its message */
typedef struct agree_msg {
    int rc;
    char text[500];
} agree_msg;

static int g_agreed_failure;
int ft__dist_agreed_failure(void) { return g_agreed_failure; }

int ft__dist_agree(const ft__dist *d, int rc) {
    if (d->world <= 1) return rc;
    agree_msg mine = {rc, ""}, *all = calloc((size_t)d->world, sizeof *all);
    if (!all) return ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc < 0) snprintf(mine.text, sizeof mine.text, "%s", ft_last_error());
    int grc = d->allgather(d->user, &mine, sizeof mine, all);
    if (grc < 0) { free(all); return grc; }
    for (int r = 0; r < d->world; r++) {
        if (all[r].rc >= 0) continue;
        g_agreed_failure = 1;
        int out = r == d->rank ? rc : ft_error(all[r].rc, "rank %d: %s", r, all[r].text);
        free(all);
        return out;
    }
    free(all);
    return rc;
}

int ft__dist_any(const ft__dist *d, int flag) {
    if (d->world <= 1) return flag != 0;
    int *all = calloc((size_t)d->world, sizeof *all);
    if (!all) return flag != 0;
    int mine = flag != 0, any = mine;
    if (d->allgather(d->user, &mine, sizeof mine, all) == FT_OK)
        for (int r = 0; r < d->world; r++) any |= all[r];
    free(all);
    return any;
}

int ft__dist_gather_rows(const ft__dist *d, double *rows, int64_t n, int width) {
    if (d->world <= 1 || n <= 0) return FT_OK;
    int64_t most = (n + d->world - 1) / d->world, first, count;
    size_t row = (size_t)width * sizeof(double), block = (size_t)most * row;
    char *mine = calloc(1, block ? block : 1), *all = calloc((size_t)d->world, block ? block : 1);
    int rc = mine && all ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    ft__shard_rows(n, d->rank, d->world, &first, &count);
    if (rc == FT_OK) {
        memcpy(mine, rows + first * width, (size_t)count * row);
        rc = d->allgather(d->user, mine, block, all);
    }
    for (int r = 0; rc == FT_OK && r < d->world; r++) {
        ft__shard_rows(n, r, d->world, &first, &count);
        memcpy(rows + first * width, all + (size_t)r * block, (size_t)count * row);
    }
    free(mine);
    free(all);
    return rc;
}
