/* dist_mpi.c — the communication layer over MPI (dist.h), built into the finetune program when the
 * build finds MPI (Makefile: FT_HAVE_MPI; not part of libfinetune.a, so the library and the programs
 * that link it need no MPI).
 *
 * `finetune train` calls ft__dist_mpi_start() first: under mpirun (Open MPI sets OMPI_COMM_WORLD_SIZE,
 * other launchers PMI_SIZE / PMIX_RANK) it initialises MPI and installs this layer; otherwise it does
 * nothing and the run is the single-process one, unchanged. Errors are fatal (MPI_ERRORS_ARE_FATAL): when
 * a rank dies, mpirun ends the others — see README "Several processes" for what that looks like.
 *
 * Only the operations of ft__dist are used: a broadcast, an allgather, non-blocking sends and receives of
 * bytes. No reduction is ever left to MPI: sums are made by the caller in a fixed order (dist_grad.c). */
#include "train/dist.h"
#include "finetune/status.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* requests in flight: handles are indices into a growing table, freed slots chained */
typedef struct mpi_state {
    MPI_Request *req;
    int n, cap;
    int *free_list, n_free;
} mpi_state;

static mpi_state g_state;
static ft__dist g_mpi;

/* MPI counts are ints: large buffers go in runs of at most 1 GiB */
#define RUN_BYTES ((size_t)1 << 30)

static int mpi_bcast(void *u, void *buf, size_t bytes, int root) {
    for (size_t at = 0; at < bytes; at += RUN_BYTES) {
        size_t n = bytes - at < RUN_BYTES ? bytes - at : RUN_BYTES;
        MPI_Bcast((char *)buf + at, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
    }
    return FT_OK;
}

static int mpi_allgather(void *u, const void *mine, size_t bytes, void *all) {
    if (bytes >= RUN_BYTES) return ft_error(FT_ERR_INVALID, "allgather of %zu bytes per rank (at most 1 GiB)", bytes);
    MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
    return FT_OK;
}

static int slot_take(mpi_state *s) {
    if (s->n_free) return s->free_list[--s->n_free];
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        MPI_Request *r = realloc(s->req, sizeof *r * (size_t)cap);
        int *f = realloc(s->free_list, sizeof *f * (size_t)cap);
        if (r) s->req = r;
        if (f) s->free_list = f;
        if (!r || !f) return ft_error(FT_ERR_NOMEM, "out of memory (MPI requests)");
        s->cap = cap;
    }
    return s->n++;
}

static int mpi_isend(void *u, const void *buf, size_t bytes, int to, int *req) {
    if (bytes >= ((size_t)1 << 31)) return ft_error(FT_ERR_INVALID, "message of %zu bytes (split it)", bytes);
    int h = slot_take(&g_state);
    if (h < 0) return h;
    MPI_Isend(buf, (int)bytes, MPI_BYTE, to, 0, MPI_COMM_WORLD, &g_state.req[h]);
    *req = h;
    return FT_OK;
}

static int mpi_irecv(void *u, void *buf, size_t bytes, int from, int *req) {
    if (bytes >= ((size_t)1 << 31)) return ft_error(FT_ERR_INVALID, "message of %zu bytes (split it)", bytes);
    int h = slot_take(&g_state);
    if (h < 0) return h;
    MPI_Irecv(buf, (int)bytes, MPI_BYTE, from, 0, MPI_COMM_WORLD, &g_state.req[h]);
    *req = h;
    return FT_OK;
}

/* Waiting politely: MPI_Wait spins at 100% of a core until the peer is ready. A rank waits for the chain
 * while the rank before it still computes its backward (seconds on a large model); spinning then takes a
 * core from that very rank when ranks share cores (more ranks than cores, other work on the machine). So:
 * spin for 2 ms (a message in flight completes within that), then test every 100 us, sleeping between. */
static int mpi_wait(void *u, int h) {
    if (h < 0 || h >= g_state.n) return ft_error(FT_ERR_INVALID, "no MPI request %d", h);
    int done = 0;
    double t0 = MPI_Wtime();
    while (!done) {
        MPI_Test(&g_state.req[h], &done, MPI_STATUS_IGNORE);
        if (!done && MPI_Wtime() - t0 > 0.002) nanosleep(&(struct timespec){0, 100000}, NULL);
    }
    g_state.free_list[g_state.n_free++] = h;
    return FT_OK;
}

static int launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

int ft__dist_mpi_start(void) {
    if (!launched_by_mpirun()) return 0;
    /* the collectives' own waits yield the core to others (unless the user's MCA settings say otherwise) */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    int provided;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    g_mpi = (ft__dist){"mpi", 0, 1, &g_state, mpi_bcast, mpi_allgather, mpi_isend, mpi_irecv, mpi_wait};
    MPI_Comm_rank(MPI_COMM_WORLD, &g_mpi.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_mpi.world);
    ft__dist_set(&g_mpi);
    return g_mpi.world;
}

void ft__dist_mpi_stop(int status) {
    if (ft__dist_get() != &g_mpi) return;
    /* a rank that failed takes every other rank down with it: they may be waiting for it in a collective */
    if (status != 0 && g_mpi.world > 1 && !ft__dist_agreed_failure()) {
        fprintf(stderr, "finetune train: rank %d of %d failed (exit status %d); ending every rank\n", g_mpi.rank, g_mpi.world, status);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
    ft__dist_set(NULL);
    MPI_Finalize();
    free(g_state.req);
    free(g_state.free_list);
    memset(&g_state, 0, sizeof g_state);
}
