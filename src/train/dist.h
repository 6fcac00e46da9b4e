/* dist.h — the data-parallel communication layer of the trainer (internal).
 *
 * A run on W processes ("ranks") is one run: every rank holds the whole model, takes its share of the
 * micro-batches of each optimizer step, and all ranks apply the same update. The trainer talks to the other
 * ranks through ft__dist, a small table of point-to-point and collective operations. Two implementations:
 *
 *   single   (dist.c)      one process: rank 0 of 1; every operation is a copy or nothing. The library,
 *                          the tests and a `finetune train` started without mpirun use it.
 *   mpi      (dist_mpi.c)  Open MPI, linked into the finetune program only when the build found MPI
 *                          (FT_HAVE_MPI); installed by `finetune train` when it runs under mpirun.
 *
 * ft__dist_get() returns the one in use (single until ft__dist_set installs another); it is process-wide
 * and set once, before any trainer exists. Buffers are host memory; sizes are bytes and may be large (the
 * implementations split what MPI's int counts cannot carry). Every collective must be called by every
 * rank, in the same order. An operation that fails returns a negative status (the MPI implementation
 * aborts the job instead: MPI_ERRORS_ARE_FATAL, so a dead peer ends every rank; see README "Several
 * processes").
 *
 * Exactness. Nothing here adds floats behind the caller's back: the gradient sum (dist_grad.c) is a fixed
 * chain of point-to-point messages in rank order, so the result never depends on the algorithm an MPI
 * library picks for MPI_Allreduce. */
#ifndef FT_TRAIN_DIST_H
#define FT_TRAIN_DIST_H
#include "finetune/model.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ft__dist {
    const char *name;      /* "single", "mpi" */
    int rank, world;       /* this process, of world (rank 0 writes the run directory) */
    void *user;
    /* buf[bytes] of root := root's, on every rank */
    int  (*bcast)(void *user, void *buf, size_t bytes, int root);
    /* all[world * bytes] := every rank's mine[bytes], in rank order */
    int  (*allgather)(void *user, const void *mine, size_t bytes, void *all);
    /* non-blocking point to point (bytes < 2^31); *req: a handle for wait (0 .. 63 in flight per rank) */
    int  (*isend)(void *user, const void *buf, size_t bytes, int to, int *req);
    int  (*irecv)(void *user, void *buf, size_t bytes, int from, int *req);
    int  (*wait)(void *user, int req);
} ft__dist;

const ft__dist *ft__dist_get(void);
/* dist_mpi.c, in the finetune program of a build with MPI (FT_HAVE_MPI): under mpirun, initialises MPI and
 * installs it (returns the rank count), else does nothing (returns 0). stop: MPI_Finalize, or after a
 * failure (status != 0) MPI_Abort, which ends every rank. */
int  ft__dist_mpi_start(void);
void ft__dist_mpi_stop(int status);
/* d must outlive every trainer; NULL restores the single-process one */
void ft__dist_set(const ft__dist *d);

/* ---- helpers over the table (dist.c) ---- */
/* blocking send / receive of any size (split into pieces below 2^30 bytes) */
int ft__dist_send(const ft__dist *d, const void *buf, size_t bytes, int to);
int ft__dist_recv(const ft__dist *d, void *buf, size_t bytes, int from);
/* every rank's status: the first negative one in rank order (its message, "rank N: ...", when it is not
 * this rank's), else FT_OK. Makes a failure on one rank (an unwritable --out on rank 0) fail every rank
 * at the same point instead of leaving the others waiting in the next collective. */
int ft__dist_agree(const ft__dist *d, int rc);
/* 1 after ft__dist_agree returned a failure: every rank knows it and stops (no rank is left waiting) */
int ft__dist_agreed_failure(void);
/* 1 if any rank's flag is set (a stop request: every rank stops at the same step) */
int ft__dist_any(const ft__dist *d, int flag);
/* rows[n][width] doubles, of which this rank filled the rows of its share (ft__shard_rows(n, rank, world)):
 * afterwards every rank holds every row. */
int ft__dist_gather_rows(const ft__dist *d, double *rows, int64_t n, int width);

/* ---- the gradient of a step over the ranks (dist_grad.c) ----
 * The micro-batches of an optimizer step are numbered j = 0 .. M-1 (M = --grad-accum x ranks). Their
 * gradients are summed left to right, exactly as one process with --grad-accum M sums them:
 *     S_0 = g_0,   S_j = S_{j-1} + g_j         (elementwise, each g_j computed from zeroed buffers)
 * Rank r computes g_j for j = i*W + r in round i = 0 .. M/W - 1 and adds the running sum it receives from
 * the rank before it (rank W-1 of the previous round for rank 0): a chain in rank order, pipelined in
 * pieces of 1 MiB. After the last round rank W-1 holds S_{M-1}, which goes to every rank (broadcast), or
 * with a sharded optimizer each parameter's part only to the rank that owns it (ft__zero_plan). */
typedef struct ft__grad_sync {
    const ft__dist *d;
    ft_param *params;       /* [n_params] the trainer's (grads of the trainable ones) */
    int n_params;
    int rounds;             /* micro-batches per rank and step: M / W */
    float *acc;             /* [grad floats] the running sum between rounds (rounds > 1), else NULL */
    float *piece[2];        /* [FT__PIECE] receive buffers */
    const int *owner;       /* [n_params] ZeRO: the rank updating each parameter; NULL: every rank */
    struct ft__reqs { int *r; int n, cap; } pending;   /* rank W-1: sends of acc still in flight */
    double comm_s;          /* seconds spent waiting for or moving gradients, parameters (statistics) */
    int64_t comm_bytes;     /* bytes this rank sent */
} ft__grad_sync;
#define FT__PIECE (1 << 18)   /* floats per message: 1 MiB */

int  ft__grad_sync_init(ft__grad_sync *g, const ft__dist *d, ft_param *params, int n_params, int rounds, const int *owner);
void ft__grad_sync_free(ft__grad_sync *g);
/* after the backward of round `round` (has: this rank had a micro-batch in it; its gradient is in the
 * params' grad buffers, else they are ignored): adds this rank's part to the running sum. After the
 * last round every rank holds the step's gradient in its grad buffers (ZeRO: of the params it owns). */
int  ft__grad_sync_round(ft__grad_sync *g, int round, int has);
/* ZeRO: the params' values from their owners to every rank (after the optimizer step) */
int  ft__params_sync_from_owners(ft__grad_sync *g);
/* every trainable parameter's values := rank 0's (start of a run, after a resume) */
int  ft__params_bcast(const ft__dist *d, ft_param *params, int n_params);
/* the global L2 norm of the gradients, as ft__params_grad_norm on one process, from each owner's sums of
 * squares (owner NULL: every rank computes it alone) */
int  ft__grad_sync_norm(ft__grad_sync *g, double *norm);

/* ---- ZeRO-1: which rank updates which parameter ---- */
/* owner[n_params]: the trainable params cut into `world` runs of consecutive whole parameters with about
 * the same number of elements (a parameter is never split: its optimizer state stays in one piece) */
void ft__zero_plan(const ft_param *params, int n_params, int world, int *owner);
#endif
