/* train_clean.c — `finetune train --clean STEPS`: the data is cleaned as `finetune data clean` would (dataquality.h)
 * before training. The training file gets every step; the validation and test files only the text steps (lower,
 * html, punct, space, urls, mentions, hashtags, stopwords, stem), so that they look like the training text without
 * losing records. The cleaned copies and their JSONL logs are written to RUN_DIR/clean/ (train.<ext>,
 * train.log.jsonl, val.<ext>, ...) and the config points at them, so config.json and --resume use the same data. */
#include "cli.h"
#include "finetune/dataquality.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "finetune/train.h"

#include <stdio.h>
#include <string.h>

/* cleans *path (in place of the config's string) into RUN_DIR/clean/<name><ext> */
static int clean_one(ft_train_config *cfg, char *path, size_t cap, const char *name, int text_only) {
    ft_dq_clean_options o = ft_dq_clean_default_options();
    int steps[FT_DQ_STEPS * 2], n = 0;
    FT_TRY(ft_dq_steps_parse(cfg->clean, steps, FT_DQ_STEPS * 2, &n));
    for (int k = 0; k < n; k++)
        if (!text_only || steps[k] < FT_DQ_STEP_NEARDUP) o.steps[o.nsteps++] = steps[k];
    if (o.nsteps == 0) return FT_OK;
    o.stopwords_dir = ft_default_stopwords_dir();
    if (ft_path_is_dir(path)) return ft_error(FT_ERR_INVALID, "--clean: %s is a directory; clean a file (finetune data clean)", path);
    char dir[1200], out[1300], log[1300];
    snprintf(dir, sizeof dir, "%s/clean", cfg->out);
    FT_TRY(ft_mkdirs(dir));
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    const char *ext = dot && (!slash || dot > slash) ? dot : ".txt";
    snprintf(out, sizeof out, "%s/%s%s", dir, name, ext);
    snprintf(log, sizeof log, "%s/%s.log.jsonl", dir, name);
    /* the columns the trainer reads, when the file has them; otherwise the automatic choice */
    ft_dq_table_options to = ft_dq_table_default_options();
    to.text_columns = cfg->text_column[0] ? cfg->text_column : NULL;
    to.label_column = cfg->label_column[0] ? cfg->label_column : NULL;
    ft_dq_clean_stats st;
    int rc = ft_dq_clean_file(path, out, log, &to, &o, &st);
    if (rc == FT_ERR_NOT_FOUND) {
        to = ft_dq_table_default_options();
        rc = ft_dq_clean_file(path, out, log, &to, &o, &st);
    }
    FT_TRY(rc);
    fprintf(stderr, "clean (%s): %s -> %s: ", cfg->clean, path, out);
    ft_dq_clean_stats_print(&st, stderr);
    if (snprintf(path, cap, "%s", out) >= (int)cap) return ft_error(FT_ERR_RANGE, "--clean: path too long: %s", out);
    return FT_OK;
}

int ft_cli_train_clean(ft_train_config *cfg) {
    FT_TRY(clean_one(cfg, cfg->data, sizeof cfg->data, "train", 0));
    if (cfg->val_data[0]) FT_TRY(clean_one(cfg, cfg->val_data, sizeof cfg->val_data, "val", 1));
    if (cfg->test_data[0]) FT_TRY(clean_one(cfg, cfg->test_data, sizeof cfg->test_data, "test", 1));
    return FT_OK;
}
