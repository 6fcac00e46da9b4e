/* cmd_init.c — `finetune init`: a randomly initialised model of any supported architecture,
 * written as a Hugging Face directory with a tokenizer (for from-scratch baselines, benchmarks). */
#include "cli.h"
#include "finetune/checkpoint.h"
#include "finetune/fileio.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <dirent.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* copies the file src to dir/name (atomically) */
static int copy_file(const char *src, const char *dir, const char *name) {
    char dst[4096];
    FT_TRY(ft_path_join(dst, sizeof dst, dir, name));
    ft_mmap mm;
    FT_TRY(ft_file_map(&mm, src));
    int rc = ft_file_write_atomic(dst, mm.data ? mm.data : "", mm.size);
    ft_file_unmap(&mm);
    return rc;
}

/* The other half of a GPT-2 style pair (vocabulary <-> merges) next to path: the first file of the
 * directory, by name, whose content is of kind want. 1 if found (into out), else 0. */
static int find_companion(const char *path, ft_tokenizer_file_kind want, char *out, size_t cap) {
    char *dup = strdup(path);
    if (!dup) return 0;
    const char *dir = dirname(dup);
    struct stat self;
    int found = 0, have_self = stat(path, &self) == 0;
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        char cand[4096];
        struct stat st;
        ft_tokenizer_file_kind k;
        if (!found && names[i]->d_name[0] != '.' && ft_path_join(cand, sizeof cand, dir, names[i]->d_name) == FT_OK &&
            stat(cand, &st) == 0 && S_ISREG(st.st_mode) && !(have_self && st.st_ino == self.st_ino && st.st_dev == self.st_dev)) {
            if (ft_tokenizer_detect_file(cand, &k) == FT_OK && k == want) { snprintf(out, cap, "%s", cand); found = 1; }
            ft_error_clear();
        }
        free(names[i]);
    }
    if (n >= 0) free(names);
    free(dup);
    return found;
}

/* --tokenizer FILE: its format from its content, copied into out under the name the loaders look for
 * (a BPE vocabulary or merges file brings its other half, found by content in the same directory) */
static int copy_tokenizer_file(const char *path, const char *out) {
    ft_tokenizer_file_kind k;
    FT_TRY(ft_tokenizer_detect_file(path, &k));
    FT_TRY(ft_mkdirs(out));
    if (k == FT_TOKFILE_BPE_VOCAB || k == FT_TOKFILE_BPE_MERGES) {
        ft_tokenizer_file_kind want = k == FT_TOKFILE_BPE_VOCAB ? FT_TOKFILE_BPE_MERGES : FT_TOKFILE_BPE_VOCAB;
        char other[4096];
        if (!find_companion(path, want, other, sizeof other))
            return ft_error(FT_ERR_NOT_FOUND, "%s: a %s, which needs its %s: no such file (by content, any name) next to it",
                            path, ft_tokenizer_file_kind_name(k), ft_tokenizer_file_kind_name(want));
        fprintf(stderr, "finetune init: %s: %s -> %s/%s\n", other, ft_tokenizer_file_kind_name(want), out, ft_tokenizer_file_canonical_name(want));
        FT_TRY(copy_file(other, out, ft_tokenizer_file_canonical_name(want)));
    }
    fprintf(stderr, "finetune init: %s: %s -> %s/%s\n", path, ft_tokenizer_file_kind_name(k), out, ft_tokenizer_file_canonical_name(k));
    return copy_file(path, out, ft_tokenizer_file_canonical_name(k));
}

int ft_cmd_init(int argc, char **argv) {
    ft_opt opts[] = {
        {"config", 1, "HF config.json giving the architecture and shape (required)", NULL},
        {"tokenizer", 1, "tokenizer directory, or a file of any name whose format is recognised by content: HF tokenizer.json, llama2.c .bin, WordPiece vocab.txt, GPT-2 encoder.json / vocab.bpe (with the other half next to it)", NULL},
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
        } else rc = copy_tokenizer_file(tok_path, out);
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
