/* fuzz_llama2c.c — llama2.c checkpoints (legacy and "ak42" headers) and llama2.c tokenizer.bin files. */
#include "fuzz_util.h"
#include "finetune/convert.h"
#include "finetune/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    char path[64];
    int fd = ft_fuzz_file(data, size, path);
    if (fd < 0) return 0;
    ft_llama_ckpt ck;
    memset(&ck, 0, sizeof ck);
    if (ft_llama2c_load(&ck, path) == FT_OK) ft_llama_ckpt_free(&ck);
    ft_tokenizer *tok;
    if (ft_convert_load_tokenizer(&tok, path) == FT_OK) ft_tokenizer_free(tok);
    close(fd);
    return 0;
}
