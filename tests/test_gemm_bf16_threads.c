/* test_gemm_bf16_threads.c — the bf16 GEMM called from several threads at once (gemm_bf16.h: "any number
 * of threads may call at once"). The CPU GEMM keeps its packing workspace between calls in one shared slot
 * (taken and given back atomically, the larger kept); here 6 threads run products of different sizes (so
 * their workspaces differ and displace each other) while one of them also trims the slot, and every result
 * must be the reference's bits. Built and run by `make SANITIZE=thread test` (ThreadSanitizer) as well as
 * by the plain `make test`; the products are small enough to run single-threaded inside (libgomp, not
 * instrumented, would be reported falsely with a team of threads). */
#include "testutil.h"

#include "finetune/gemm_bf16.h"
#include "finetune/rng.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 6
#define ITERS 40

typedef struct job {
    int id, bad;
} job;

static void *run(void *arg) {
    job *j = (job *)arg;
    ft_rng r;
    ft_rng_seed(&r, 100 + (uint64_t)j->id);
    for (int it = 0; it < ITERS; it++) {
        int M = 1 + (int)(ft_rng_u32(&r) % 40), N = 1 + (int)(ft_rng_u32(&r) % 70), K = 1 + (int)(ft_rng_u32(&r) % 90);
        int ta = (int)(ft_rng_u32(&r) & 1), tb = (int)(ft_rng_u32(&r) & 1), acc = (int)(ft_rng_u32(&r) & 1);
        size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
        float *A = malloc(na * sizeof(float)), *B = malloc(nb * sizeof(float)), *bias = malloc((size_t)N * sizeof(float));
        float *C0 = malloc(nc * sizeof(float)), *C1 = malloc(nc * sizeof(float));
        if (!A || !B || !bias || !C0 || !C1) { j->bad++; free(A); free(B); free(bias); free(C0); free(C1); break; }
        for (size_t i = 0; i < na; i++) A[i] = ft_rng_normal(&r);
        for (size_t i = 0; i < nb; i++) B[i] = ft_rng_normal(&r);
        for (int i = 0; i < N; i++) bias[i] = ft_rng_normal(&r);
        for (size_t i = 0; i < nc; i++) C0[i] = ft_rng_normal(&r);
        memcpy(C1, C0, nc * sizeof(float));
        ft_ref_gemm_bf16(C0, N, A, ta ? M : K, ta, B, tb ? K : N, tb, M, N, K, acc, bias);
        ft_cpu_gemm_bf16(C1, N, A, ta ? M : K, ta, B, tb ? K : N, tb, M, N, K, acc, bias);
        j->bad += memcmp(C0, C1, nc * sizeof(float)) != 0;
        if (j->id == 0 && it % 8 == 7) ft_gemm_bf16_trim();
        free(A); free(B); free(bias); free(C0); free(C1);
    }
    return NULL;
}

static void test_concurrent_calls(void **state) {
    (void)state;
    if (ft_bf16_isa_get() == FT_BF16_ISA_SCALAR) skip(); /* the scalar path keeps no workspace */
    pthread_t th[NTHREADS];
    job jobs[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        jobs[i] = (job){.id = i};
        assert_int_equal(pthread_create(&th[i], NULL, run, &jobs[i]), 0);
    }
    int bad = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        bad += jobs[i].bad;
    }
    ft_gemm_bf16_trim();
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
