/* dist_grad.c — the gradient of an optimizer step summed over the ranks in a fixed order, the
 * parameters kept identical on every rank, and the ZeRO-1 split of the optimizer (dist.h).
 *
 * The chain (one step of M = R x W micro-batches, R rounds, W ranks; position p = i*W + r is micro-batch
 * j = p, computed by rank r in round i):
 *
 *   round i, rank r:  g := its micro-batch's gradient (zeroed buffers, one backward)
 *                     S_p := S_{p-1} + g   with S_{p-1} received from position p-1, piece by piece
 *                     S_p sent on to position p+1 (rank r+1; rank W-1 sends to rank 0 of round i+1)
 *
 * Float addition is commutative, so S_{p-1} + g in this order equals what one process computes when it
 * adds micro-batch j's gradient to its running sum: the bits are the same. One process (W = 1) runs the
 * same rounds with the running sum kept in `acc`. The last position (rank W-1, round R-1) holds the step's
 * gradient and broadcasts it (or sends each parameter's part to its ZeRO owner). */
#include "train/dist.h"
#include "trainer_internal.h"
#include "finetune/backend.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* pieces: each trainable param's grad cut into runs of at most FT__PIECE floats, in param order */
typedef struct piece_it {
    const ft__grad_sync *g;
    int p;            /* param */
    int64_t at, n;    /* floats [at, at + n) of param p's grad */
    int64_t flat;     /* offset of the piece in the concatenated grads (acc) */
} piece_it;

static int piece_next(piece_it *it) {
    const ft__grad_sync *g = it->g;
    if (it->p >= 0) {
        it->flat += it->n;
        it->at += it->n;
        if (it->at < ft_tensor_numel(&g->params[it->p].t)) {
            int64_t left = ft_tensor_numel(&g->params[it->p].t) - it->at;
            it->n = left < FT__PIECE ? left : FT__PIECE;
            return 1;
        }
    }
    for (it->p++; it->p < g->n_params && !g->params[it->p].grad; it->p++) {}
    if (it->p >= g->n_params) return 0;
    int64_t left = ft_tensor_numel(&g->params[it->p].t);
    it->at = 0;
    it->n = left < FT__PIECE ? left : FT__PIECE;
    return 1;
}
static piece_it pieces(const ft__grad_sync *g) { return (piece_it){g, -1, 0, 0, 0}; }

/* the floats of the trainable params (their grads may not exist yet) */
static int64_t grad_floats(const ft_param *params, int n) {
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        if (params[i].trainable) total += ft_tensor_numel(&params[i].t);
    return total;
}

int ft__grad_sync_init(ft__grad_sync *g, const ft__dist *d, ft_param *params, int n_params, int rounds, const int *owner) {
    memset(g, 0, sizeof *g);
    g->d = d;
    g->params = params;
    g->n_params = n_params;
    g->rounds = rounds;
    g->owner = owner;
    /* the running sum between rounds: one process keeps it; rank W-1 sends it on to rank 0 from a copy so
     * that it can zero its buffers for the next round while rank 0 still computes */
    int need_acc = rounds > 1 && (d->world == 1 || d->rank == d->world - 1);
    if (need_acc) {
        g->acc = malloc(sizeof(float) * (size_t)(grad_floats(params, n_params) + 1));
        if (!g->acc) return ft_error(FT_ERR_NOMEM, "out of memory (the gradient accumulation buffer)");
    }
    if (d->world > 1)
        for (int k = 0; k < 2; k++)
            if (!(g->piece[k] = malloc(sizeof(float) * FT__PIECE))) { ft__grad_sync_free(g); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    return FT_OK;
}

void ft__grad_sync_free(ft__grad_sync *g) {
    free(g->acc);
    free(g->pending.r);
    free(g->piece[0]);
    free(g->piece[1]);
    memset(g, 0, sizeof *g);
}

static void add_into(float *dst, const float *src, int64_t n) {
    /* dst := src + dst: the running sum first, as one process adds it */
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t k = 0; k < n; k++) dst[k] = src[k] + dst[k];
}

/* one process: the running sum in acc */
static int round_single(ft__grad_sync *g, int round, int has) {
    int last = round == g->rounds - 1;
    piece_it it = pieces(g);
    while (piece_next(&it)) {
        float *grad = g->params[it.p].grad + it.at, *acc = g->acc ? g->acc + it.flat : NULL;
        if (round > 0) {
            if (has) add_into(grad, acc, it.n);
            else memcpy(grad, acc, sizeof(float) * (size_t)it.n);
        }
        if (!last) memcpy(acc, grad, sizeof(float) * (size_t)it.n);
    }
    return FT_OK;
}

/* the requests in flight of one round */
typedef struct ft__reqs reqs;
static int reqs_push(reqs *q, int r) {
    if (q->n == q->cap) {
        int cap = q->cap ? 2 * q->cap : 64, *nr = realloc(q->r, sizeof *nr * (size_t)cap);
        if (!nr) return ft_error(FT_ERR_NOMEM, "out of memory");
        q->r = nr;
        q->cap = cap;
    }
    q->r[q->n++] = r;
    return FT_OK;
}
static int reqs_wait(const ft__dist *d, reqs *q) {
    int rc = FT_OK;
    for (int i = 0; i < q->n; i++) {
        int w = d->wait(d->user, q->r[i]);
        if (rc == FT_OK) rc = w;
    }
    q->n = 0;
    return rc;
}

int ft__grad_sync_round(ft__grad_sync *g, int round, int has) {
    const ft__dist *d = g->d;
    double t0 = ft__now_mono();
    if (d->world == 1) return round_single(g, round, has);
    int W = d->world, r = d->rank, R = g->rounds;
    int pos = round * W + r, last_pos = R * W - 1;
    int from = r == 0 ? W - 1 : r - 1, to = r == W - 1 ? 0 : r + 1;
    int has_in = pos > 0, has_out = pos < last_pos, via_acc = r == W - 1;
    int rc = FT_OK;
    reqs sends = {0};
    /* the sends of acc from the previous round must be done before acc is written again */
    if (via_acc && has_out) rc = reqs_wait(d, &g->pending);
    /* double-buffered receive: piece k+1 is on its way while piece k is added */
    piece_it it = pieces(g), nx;
    int more = piece_next(&it), k = 0, rq[2] = {-1, -1};
    if (more && has_in && rc == FT_OK) rc = d->irecv(d->user, g->piece[0], sizeof(float) * (size_t)it.n, from, &rq[0]);
    while (more && rc == FT_OK) {
        nx = it;
        int nmore = piece_next(&nx);
        if (nmore && has_in) rc = d->irecv(d->user, g->piece[(k + 1) & 1], sizeof(float) * (size_t)nx.n, from, &rq[(k + 1) & 1]);
        float *grad = g->params[it.p].grad + it.at;
        if (rc == FT_OK && has_in) {
            rc = d->wait(d->user, rq[k & 1]);
            if (rc == FT_OK) {
                if (has) add_into(grad, g->piece[k & 1], it.n);
                else memcpy(grad, g->piece[k & 1], sizeof(float) * (size_t)it.n);
            }
        }
        if (rc == FT_OK && has_out) {
            const float *src = grad;
            if (via_acc) { memcpy(g->acc + it.flat, grad, sizeof(float) * (size_t)it.n); src = g->acc + it.flat; }
            int q;
            rc = d->isend(d->user, src, sizeof(float) * (size_t)it.n, to, &q);
            if (rc == FT_OK) rc = reqs_push(via_acc ? &g->pending : &sends, q);
            g->comm_bytes += (int64_t)sizeof(float) * it.n;
        }
        it = nx;
        more = nmore;
        k++;
    }
    int wrc = reqs_wait(d, &sends);
    if (rc == FT_OK) rc = wrc;
    free(sends.r);
    /* the step's gradient from the last position to every rank (or to each parameter's owner) */
    if (rc == FT_OK && round == R - 1) {
        int root = W - 1;
        reqs q = {0};
        for (int p = 0; rc == FT_OK && p < g->n_params; p++) {
            ft_param *pp = &g->params[p];
            if (!pp->grad) continue;
            size_t bytes = sizeof(float) * (size_t)ft_tensor_numel(&pp->t);
            if (!g->owner) {
                rc = d->bcast(d->user, pp->grad, bytes, root);
                if (r == root) g->comm_bytes += (int64_t)bytes * (W - 1);
                continue;
            }
            int o = g->owner[p], h;
            if (o == root) continue;
            if (r == root) {
                rc = d->isend(d->user, pp->grad, bytes, o, &h);
                if (rc == FT_OK) rc = reqs_push(&q, h);
                g->comm_bytes += (int64_t)bytes;
            } else if (r == o) {
                rc = d->irecv(d->user, pp->grad, bytes, root, &h);
                if (rc == FT_OK) rc = reqs_push(&q, h);
            }
        }
        wrc = reqs_wait(d, &q);
        if (rc == FT_OK) rc = wrc;
        free(q.r);
        /* nothing of acc is in flight after the step */
        wrc = reqs_wait(d, &g->pending);
        if (rc == FT_OK) rc = wrc;
    }
    g->comm_s += ft__now_mono() - t0;
    return rc;
}

int ft__params_sync_from_owners(ft__grad_sync *g) {
    const ft__dist *d = g->d;
    if (d->world == 1 || !g->owner) return FT_OK;
    double t0 = ft__now_mono();
    int rc = FT_OK;
    for (int p = 0; rc == FT_OK && p < g->n_params; p++) {
        ft_param *pp = &g->params[p];
        if (!pp->grad) continue;
        size_t bytes = ft_tensor_nbytes(&pp->t);
        rc = d->bcast(d->user, pp->t.data, bytes, g->owner[p]);
        if (d->rank == g->owner[p]) g->comm_bytes += (int64_t)bytes * (d->world - 1);
    }
    g->comm_s += ft__now_mono() - t0;
    return rc;
}

int ft__params_bcast(const ft__dist *d, ft_param *params, int n_params) {
    if (d->world == 1) return FT_OK;
    for (int p = 0; p < n_params; p++)
        if (params[p].trainable && params[p].t.dtype == FT_F32) FT_TRY(d->bcast(d->user, params[p].t.data, ft_tensor_nbytes(&params[p].t), 0));
    return FT_OK;
}

int ft__grad_sync_norm(ft__grad_sync *g, double *norm) {
    const ft__dist *d = g->d;
    if (d->world == 1 || !g->owner) { *norm = ft__params_grad_norm(g->params, g->n_params); return FT_OK; }
    /* each owner's sums of squares, per parameter; then added in parameter order as one process does */
    const ft_backend *be = ft_backend_cpu();
    int n = g->n_params, W = d->world;
    double *mine = calloc((size_t)n + 1, sizeof *mine), *all = calloc((size_t)W * (size_t)(n + 1), sizeof *all);
    if (!mine || !all) { free(mine); free(all); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    for (int p = 0; p < n; p++)
        if (g->params[p].grad && g->owner[p] == d->rank)
            mine[p] = be->sumsq(be->ctx, g->params[p].grad, (size_t)ft_tensor_numel(&g->params[p].t));
    int rc = d->allgather(d->user, mine, sizeof(double) * (size_t)(n + 1), all);
    double total = 0;
    for (int p = 0; p < n; p++)
        if (g->params[p].grad) total += all[(size_t)g->owner[p] * (size_t)(n + 1) + (size_t)p];
    free(mine);
    free(all);
    *norm = sqrt(total);
    return rc;
}

void ft__zero_plan(const ft_param *params, int n_params, int world, int *owner) {
    int64_t total = grad_floats(params, n_params), before = 0;
    for (int p = 0; p < n_params; p++) {
        owner[p] = 0;
        if (!params[p].trainable) continue;
        /* the rank whose equal share holds the parameter's middle element */
        int64_t mid = before + ft_tensor_numel(&params[p].t) / 2;
        int o = total > 0 ? (int)(mid * world / total) : 0;
        owner[p] = o < world ? o : world - 1;
        before += ft_tensor_numel(&params[p].t);
    }
}
