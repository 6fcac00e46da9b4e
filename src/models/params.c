/* params.c — the parameter table both model families share: planning a parameter into the weights arena
 * (ft__param_plan), the gradient buffers of a parameter array (ft_params_zero_grad; the decoders' lazy
 * zeroing, ft__params_zero_grad_lazy, and ft_params_settle_grads), and freezing by patterns
 * (ft__params_apply_patterns: the family only says which parameters one pattern names). */
#include "model_internal.h"
#include "finetune/status.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

void ft__param_plan(ft_param *p, ft_arena *plan, const char *name, int64_t rows, int64_t cols, int decay) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->t.dtype = FT_F32;
    p->t.ndim = cols > 0 ? 2 : 1;
    p->t.shape[0] = rows;
    if (cols > 0) p->t.shape[1] = cols;
    p->decay = decay;
    p->trainable = 1;
    p->t.data = (void *)(uintptr_t)plan->used;   /* an offset until the arena exists */
    ft_arena_alloc(plan, ft_tensor_nbytes(&p->t));
}

/* ------------------------------------------------------------ clearing gradients */

static _Atomic int g_zero_mode = FT__GRAD_ZERO_ASSIGN;
void ft__grad_zero_mode_set(int mode) { atomic_store(&g_zero_mode, mode); }
int ft__grad_zero_mode_get(void) { return atomic_load(&g_zero_mode); }

/* Below this many bytes one memset: the buffer may stay in the caches for the backward that adds into it,
 * and a parallel region costs more than it saves. Above, every OpenMP thread clears its own slice with
 * streaming stores (the writes go straight to memory, no read for ownership), so that no core idles while
 * one memsets: GPT-2 124M's 475 MiB on 2 cores, 5.5 ms against 9.5 ms for one memset when issue 16 measured
 * it; ~6 ms both, within the noise, on the AMD EPYC of BENCHMARKS.md (glibc's memset streams too). After an
 * assigning zero_grad only ~1 MiB is left to clear (below the threshold); the encoders' zero_grad and a
 * backend without the assigning product clear everything here. */
#define ZERO_PAR_MIN ((size_t)4 << 20)

static void zero_slice(char *p, size_t n) {
#ifdef __AVX512F__
    size_t head = (size_t)(-(uintptr_t)p & 63);
    if (head > n) head = n;
    memset(p, 0, head);
    p += head;
    n -= head;
    __m512i z = _mm512_setzero_si512();
    size_t k = 0;
    for (; k + 64 <= n; k += 64) _mm512_stream_si512((__m512i *)(p + k), z);
    memset(p + k, 0, n - k);
    _mm_sfence();
#else
    memset(p, 0, n);
#endif
}

static void zero_bytes(void *p, size_t n) {
    if (n < ZERO_PAR_MIN || omp_get_max_threads() < 2) { memset(p, 0, n); return; }
#pragma omp parallel
    {
        size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
        size_t per = (n / nt + 63) & ~(size_t)63, a = t * per < n ? t * per : n, b = a + per < n ? a + per : n;
        zero_slice((char *)p + a, b - a);
    }
}

void ft_params_settle_grads(ft_param *params, int n) {
    for (int i = 0; i < n; i++)
        if (params[i].grad_pending) {
            if (params[i].grad) zero_bytes(params[i].grad, ft_tensor_nbytes(&params[i].t));
            params[i].grad_pending = 0;
        }
}

int ft_params_zero_grad(ft_param *params, int n, ft_arena *grads, int *ready, const ft_backend *be) {
    for (int i = 0; i < n; i++) params[i].grad_pending = 0;
    if (!*ready) {
        ft_arena plan;
        ft_arena_plan(&plan);
        for (int i = 0; i < n; i++)
            if (params[i].trainable) ft_arena_alloc(&plan, ft_tensor_nbytes(&params[i].t));
        FT_TRY(ft_arena_init_on(grads, plan.used, be));
        for (int i = 0; i < n; i++)
            params[i].grad = params[i].trainable ? ft_arena_alloc(grads, ft_tensor_nbytes(&params[i].t)) : NULL;
        *ready = 1;
        return FT_OK;   /* the backend's allocation is zero-filled */
    }
    if (ft__grad_zero_mode_get() == FT__GRAD_ZERO_MEMSET1) memset(grads->base, 0, grads->used);
    else zero_bytes(grads->base, grads->used);
    return FT_OK;
}

int ft__params_zero_grad_lazy(ft_param *params, int n, ft_arena *grads, int *ready, const ft_backend *be) {
    if (!*ready || ft__grad_zero_mode_get() != FT__GRAD_ZERO_ASSIGN) return ft_params_zero_grad(params, n, grads, ready, be);
    /* the other gradients are cleared in runs: consecutive buffers of the arena (64-byte alignment gaps
     * between them, which nothing reads, cleared too) between two pending ones */
    char *run = NULL, *end = NULL;
    for (int i = 0; i < n; i++) {
        ft_param *p = &params[i];
        if (!p->grad) continue;
        char *g = (char *)p->grad;
        if (p->linear) {
            p->grad_pending = 1;
            continue;
        }
        if (run && (g < end || g - end >= FT_ALIGN)) { zero_bytes(run, (size_t)(end - run)); run = NULL; }
        if (!run) run = g;
        end = g + ft_tensor_nbytes(&p->t);
        p->grad_pending = 0;
    }
    if (run) zero_bytes(run, (size_t)(end - run));
    return FT_OK;
}

/* ------------------------------------------------------------ freezing by patterns */

int ft__pattern_layers(const char *pat, int *a, int *b) {
    if (strncmp(pat, "layers:", 7)) return 0;
    char extra;
    int n = sscanf(pat + 7, "%d-%d%c", a, b, &extra);
    if (n == 1) *b = *a;
    return n < 1 || n > 2 || *a < 0 || *b < *a ? -1 : 1;
}

int ft__params_apply_patterns(ft_param *params, int n, const char *patterns, int freeze_matching,
                              int (*match)(const void *model, int i, const char *pat), const void *model, const char *kinds) {
    if (!patterns) return ft_error(FT_ERR_INVALID, "no freeze patterns");
    char buf[1024];
    if (strlen(patterns) >= sizeof buf) return ft_error(FT_ERR_INVALID, "freeze patterns longer than %zu bytes", sizeof buf - 1);
    snprintf(buf, sizeof buf, "%s", patterns);
    int *hit = calloc((size_t)(n > 0 ? n : 1), sizeof *hit);
    if (!hit) return ft_error(FT_ERR_NOMEM, "out of memory");
    char *save = NULL;
    int total = 0, rc = FT_OK;
    for (char *p = strtok_r(buf, ",", &save); p && rc == FT_OK; p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ') p++;
        size_t len = strlen(p);
        while (len && p[len - 1] == ' ') p[--len] = 0;
        int k = 0;
        for (int i = 0; i < n; i++) {
            int mt = match(model, i, p);
            if (mt < 0) { rc = ft_error(FT_ERR_INVALID, "bad layer range '%s' (use layers:A-B or layers:A, 0-based)", p); break; }
            if (mt) { hit[i] = 1; k++; }
        }
        if (rc == FT_OK && k == 0)
            rc = ft_error(FT_ERR_NOT_FOUND, "pattern '%s' matches no parameter (use %s, layers:A-B, or a glob on HF names)", p, kinds);
        total += k;
    }
    if (rc == FT_OK)
        for (int i = 0; i < n; i++)
            if (freeze_matching ? hit[i] : !hit[i]) params[i].trainable = 0;
    free(hit);
    return rc < 0 ? rc : total;
}
