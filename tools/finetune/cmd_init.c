/* cmd_init.c — `finetune init`: a randomly initialised model of any supported architecture,
 * written as a Hugging Face directory with a tokenizer (for from-scratch baselines, benchmarks). */
#include "cli.h"
#include "finetune/checkpoint.h"
#include "finetune/fileio.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

int ft_cmd_init(int argc, char **argv) {
    ft_opt opts[] = {
        {"config", 1, "HF config.json giving the architecture and shape (required)", NULL},
        {"tokenizer", 1, "tokenizer directory or file to copy into the model (tokenizer.json, tok512.bin, ...)", NULL},
        {"out", 1, "output directory (required)", NULL},
        {"seed", 1, "random seed (default 1234)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts, "usage: finetune init --config config.json [--tokenizer FILE_OR_DIR] --out DIR [--seed S]");
    if (prc) return prc == 1 ? 0 : prc;
    const char *cfg_path = ft_opt_str(opts, "config", NULL), *out = ft_opt_str(opts, "out", NULL);
    const char *tok_path = ft_opt_str(opts, "tokenizer", NULL);
    long seed;
    if (ft_opt_int(opts, "seed", 1234, &seed)) return 2;
    if (!cfg_path || !out) { fprintf(stderr, "finetune init: --config and --out are required (see --help)\n"); return 2; }
    char *text;
    int rc = ft_file_read_all(cfg_path, &text, NULL);
    if (rc < 0) return ft_cli_fail("init", rc);
    ft_model_config cfg;
    rc = ft_model_config_from_json(&cfg, text, cfg_path);
    free(text);
    if (rc < 0) return ft_cli_fail("init", rc);
    ft_model *m;
    if ((rc = ft_model_create_random(&m, &cfg, (uint64_t)seed, ft_backend_cpu())) < 0) return ft_cli_fail("init", rc);
    if (tok_path) {
        if (ft_path_is_dir(tok_path)) {
            if ((rc = ft_mkdirs(out)) == FT_OK && (rc = ft_copy_tokenizer_files(tok_path, out)) == 0)
                rc = ft_error(FT_ERR_NOT_FOUND, "%s: no tokenizer files found (tokenizer.json, vocab.json + merges.txt, tokenizer.bin, ...)", tok_path);
            if (rc > 0) rc = FT_OK;
        } else if ((rc = ft_mkdirs(out)) == FT_OK) {
            char *dup = strdup(tok_path), dst[4096];
            ft_mmap mm;
            rc = ft_path_join(dst, sizeof dst, out, basename(dup));
            if (rc == FT_OK && (rc = ft_file_map(&mm, tok_path)) == FT_OK) {
                rc = ft_file_write_atomic(dst, mm.data ? mm.data : "", mm.size);
                ft_file_unmap(&mm);
            }
            free(dup);
        }
        ft_tokenizer *tok;
        if (rc == FT_OK && (rc = ft_tokenizer_load(&tok, out)) == FT_OK) {
            int tv = ft_tokenizer_vocab_size(tok);
            if (tv > cfg.vocab_size)
                rc = ft_error(FT_ERR_SHAPE, "the tokenizer has %d tokens but the config's vocab_size is %d", tv, cfg.vocab_size);
            ft_tokenizer_free(tok);
        }
    }
    if (rc == FT_OK) rc = ft_model_save(m, out);
    if (rc == FT_OK)
        fprintf(stderr, "finetune init: %s, %.2fM parameters (seed %ld) -> %s\n", cfg.model_type,
                (double)ft_model_param_count(m) / 1e6, seed, out);
    ft_model_free(m);
    return rc < 0 ? ft_cli_fail("init", rc) : 0;
}
