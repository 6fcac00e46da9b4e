/* fuzz_gguf.c — the GGUF reader (header, key/values, arrays, tensor table) and the llama model import
 * built on it, on arbitrary bytes. */
#include "fuzz_util.h"
#include "finetune/convert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    char path[64];
    int fd = ft_fuzz_file(data, size, path);
    if (fd < 0) return 0;
    ft_gguf *g;
    if (ft_gguf_open(&g, path) == FT_OK) {
        for (int i = 0; i < ft_gguf_n_kv(g); i++) {
            const ft_gguf_kv *kv = ft_gguf_kv_at(g, i);
            const char **strs;
            int64_t n;
            if (ft_gguf_get_str_array(g, kv->key, &strs, &n) == FT_OK) free(strs);
            float *f;
            if (ft_gguf_get_f32_array(g, kv->key, &f, &n) == FT_OK) free(f);
            int32_t *iv;
            if (ft_gguf_get_i32_array(g, kv->key, &iv, &n) == FT_OK) free(iv);
        }
        for (int i = 0; i < ft_gguf_n_tensors(g); i++) ft_gguf_find_tensor(g, ft_gguf_tensor_at(g, i)->name);
        ft_gguf_close(g);
    }
    ft_llama_ckpt ck;
    memset(&ck, 0, sizeof ck);
    if (ft_gguf_load_llama(&ck, path) == FT_OK) ft_llama_ckpt_free(&ck);
    close(fd);
    return 0;
}
