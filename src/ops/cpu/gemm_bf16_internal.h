/* gemm_bf16_internal.h — knobs of the CPU bf16 GEMM (cpu/gemm_bf16.c) for the tests, not installed. */
#ifndef FINETUNE_GEMM_BF16_INTERNAL_H
#define FINETUNE_GEMM_BF16_INTERNAL_H
#include <stddef.h>

/* bytes of packed A and B per chunk and K block above which the GEMM cuts K into shorter blocks and the
 * larger of M and N into chunks (default 16 MiB; 0 restores it). A tiny budget makes small products take
 * the paths of large ones (tests/test_gemm_bf16.c). Results do not depend on it. Not for concurrent use
 * with running GEMMs of other threads whose workspace it would change between the size and the use. */
void ft__gemm_bf16_set_pack_budget(size_t bytes);
#endif
