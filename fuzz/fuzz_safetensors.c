/* fuzz_safetensors.c — the safetensors reader (header JSON, offsets, dtypes, shapes) on arbitrary bytes;
 * every tensor it accepts is read back as f32. */
#include "fuzz_util.h"
#include "finetune/safetensors.h"
#include "finetune/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    char path[64];
    int fd = ft_fuzz_file(data, size, path);
    if (fd < 0) return 0;
    ft_safetensors *st;
    if (ft_st_open(&st, path) == FT_OK) {
        for (int i = 0; i < ft_st_count(st); i++) {
            const ft_st_entry *e = ft_st_at(st, i);
            int64_t n = 1;
            for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
            if (n <= 0 || n > (1 << 20)) continue;
            float *dst = malloc(sizeof(float) * (size_t)n);
            if (dst) ft_st_read_f32(st, e->name, e->shape, e->ndim, dst);
            free(dst);
        }
        ft_st_metadata(st, "format");
        ft_st_close(st);
    }
    close(fd);
    return 0;
}
