/* fuzz_data.c — the training-data readers (dialogue text, prompt-completion / chat / alpaca / ShareGPT JSON
 * and JSONL, plain text, DailyDialog, CSV/TSV with RFC 4180 quoting) and what follows them (cleaning,
 * rendering with loss masks, tokenizing with the real llama2.c tok512 tokenizer). The first input byte picks
 * the format; the rest is the file. */
#include "fuzz_util.h"
#include "finetune/data.h"
#include "finetune/tokenizer.h"

static ft_tokenizer *g_tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    if (size < 1) return 0;
    if (!g_tok && ft_tokenizer_load(&g_tok, "tests/fixtures/tokenizer/tok512.bin") != FT_OK) return 0;
    static const ft_data_format formats[] = {FT_DATA_AUTO, FT_DATA_DIALOGUE, FT_DATA_PROMPT_COMPLETION, FT_DATA_CHAT,
                                             FT_DATA_ALPACA, FT_DATA_SHAREGPT, FT_DATA_TEXT, FT_DATA_DAILYDIALOG, FT_DATA_CSV};
    ft_data_options o = ft_data_default_options();
    o.format = formats[data[0] % (sizeof formats / sizeof *formats)];
    o.seq_len = 64;
    o.max_warnings = 0;
    if (o.format == FT_DATA_CSV && (data[0] & 0x80)) { o.prompt_column = "prompt"; o.completion_column = "completion"; }
    char path[64];
    int fd = ft_fuzz_file(data + 1, size - 1, path);
    if (fd < 0) return 0;
    ft_dataset *ds;
    if (ft_dataset_load(&ds, path, g_tok, &o) == FT_OK) ft_dataset_free(ds);
    close(fd);
    return 0;
}
