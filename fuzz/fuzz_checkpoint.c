/* fuzz_checkpoint.c — a checkpoint's own files as they come back from disk: the input is read as state.json
 * (validated field by field against a run of 42 steps, 14 batches an epoch) and as manifest.json of a small
 * checkpoint directory (parsed and checked against its files: sizes, CRC-32C, every file listed). */
#include "fuzz_util.h"
#include "finetune/checkpoint.h"
#include "finetune/fileio.h"
#include "train/trainer_internal.h"

#include <cjson/cJSON.h>

static char g_dir[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    char *text = ft_fuzz_str(data, size);
    if (!text) return 0;
    /* state.json */
    cJSON *j = cJSON_ParseWithLength(text, size);
    ft__state_limits lim = {42, 14, 14, 0};
    ft__run_state st;
    ft__train_state_parse(j, &lim, 30, &st, "fuzz");
    ft__train_state_parse(j, &lim, -1, &st, "fuzz");
    cJSON_Delete(j);
    /* manifest.json of a directory holding state.json and optimizer.bin */
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/ft_fuzz_ckpt_%d", (int)getpid());
        if (ft_mkdirs(g_dir) != FT_OK) { g_dir[0] = 0; free(text); return 0; }
        char p[128];
        snprintf(p, sizeof p, "%s/state.json", g_dir);
        ft_file_write_atomic(p, "{\"step\": 30}\n", 13);
        snprintf(p, sizeof p, "%s/optimizer.bin", g_dir);
        ft_file_write_atomic(p, "FTOPT001", 8);
    }
    char p[128];
    snprintf(p, sizeof p, "%s/manifest.json", g_dir);
    if (ft_file_write_atomic(p, data, size) == FT_OK) ft_ckpt_verify(g_dir);
    free(text);
    return 0;
}
