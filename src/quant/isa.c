/* isa.c — picks the kernel table: the best the CPU has (AVX-512 F+BW, else AVX2+FMA, else scalar),
 * or the one named by FT_QUANT_ISA=scalar|avx2|avx512 in the environment, or ft_quant_isa_set. */
#include "quant/quant_internal.h"

#include "finetune/status.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int g_isa = -1;

ft_quant_isa ft_quant_isa_best(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return FT_QUANT_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return FT_QUANT_ISA_AVX2;
#endif
    return FT_QUANT_ISA_SCALAR;
}

const char *ft_quant_isa_name(ft_quant_isa isa) {
    switch (isa) {
    case FT_QUANT_ISA_SCALAR: return "scalar";
    case FT_QUANT_ISA_AVX2: return "avx2";
    case FT_QUANT_ISA_AVX512: return "avx512";
    }
    return "?";
}

int ft_quant_isa_set(ft_quant_isa isa) {
    if ((int)isa < FT_QUANT_ISA_SCALAR || (int)isa > FT_QUANT_ISA_AVX512)
        return ft_error(FT_ERR_INVALID, "quant: unknown instruction set %d", (int)isa);
    if (isa > ft_quant_isa_best())
        return ft_error(FT_ERR_UNSUPPORTED, "quant: this CPU lacks %s (best: %s)", ft_quant_isa_name(isa), ft_quant_isa_name(ft_quant_isa_best()));
    atomic_store(&g_isa, (int)isa);
    return FT_OK;
}

ft_quant_isa ft_quant_isa_get(void) {
    int v = atomic_load(&g_isa);
    if (v >= 0) return (ft_quant_isa)v;
    ft_quant_isa best = ft_quant_isa_best(), isa = best;
    const char *env = getenv("FT_QUANT_ISA");
    if (env && *env) {
        for (int i = FT_QUANT_ISA_SCALAR; i <= FT_QUANT_ISA_AVX512; i++)
            if (strcmp(env, ft_quant_isa_name((ft_quant_isa)i)) == 0 && i <= (int)best) isa = (ft_quant_isa)i;
    }
    int expected = -1;
    atomic_compare_exchange_strong(&g_isa, &expected, (int)isa);
    return (ft_quant_isa)atomic_load(&g_isa);
}

const ft_quant_kernels *ft__quant_kernels_get(void) {
    switch (ft_quant_isa_get()) {
    case FT_QUANT_ISA_AVX512: return &ft_quant_kernels_avx512;
    case FT_QUANT_ISA_AVX2: return &ft_quant_kernels_avx2;
    default: return &ft_quant_kernels_scalar;
    }
}
