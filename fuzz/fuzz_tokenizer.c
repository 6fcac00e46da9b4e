/* fuzz_tokenizer.c — a tokenizer file of any format (HF tokenizer.json, llama2.c .bin, GPT-2 encoder.json,
 * WordPiece vocab.txt; detected from the content) loaded from arbitrary bytes, then used: encode and decode
 * a fixed mixed-script text. */
#include "fuzz_util.h"
#include "finetune/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    char path[64];
    int fd = ft_fuzz_file(data, size, path);
    if (fd < 0) return 0;
    ft_tokenizer *tok;
    if (ft_tokenizer_load(&tok, path) == FT_OK) {
        static const char text[] = "Hello, world! <|endoftext|> naïve café 東京 \xF0\x9F\x98\x80 12345\n\ttabs";
        int *ids = NULL, n = 0;
        if (ft_tokenizer_encode(tok, text, sizeof text - 1, FT_TOK_ADD_SPECIAL, &ids, &n) == FT_OK) {
            char *out = NULL;
            size_t len;
            if (ft_tokenizer_decode(tok, ids, n, 0, &out, &len) == FT_OK) free(out);
            free(ids);
        }
        ft_tokenizer_free(tok);
    }
    close(fd);
    return 0;
}
