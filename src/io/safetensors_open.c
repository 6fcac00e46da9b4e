/* safetensors_open.c — ft_st_open: a single file, a sharded index.json, or a model directory.
 *
 * Directory resolution, first match wins:
 *   1. <dir>/model.safetensors
 *   2. <dir>/model.safetensors.index.json
 *   3. exactly one *.safetensors.index.json, else exactly one *.safetensors (adapter_model.safetensors, ...)
 *   4. PyTorch pickle weights (pytorch_model.bin, *.bin, *.pt, *.pth): FT_ERR_UNSUPPORTED with the
 *      command that converts them
 *   5. nothing: FT_ERR_NOT_FOUND naming the directory and what was looked for.
 * An index maps tensor -> shard file ("weight_map"); every shard is mapped once, and every tensor the
 * index lists must be in the shard it names. */
#include "io/safetensors_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* A shard name from an index must stay inside the index's directory. */
static int shard_name_ok(const char *s) {
    if (!*s || s[0] == '/') return 0;
    for (const char *p = s; *p;) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!q) break;
        p = q + 1;
    }
    return 1;
}

static int open_index(ft_safetensors *st, const char *index_path) {
    char *text = NULL;
    size_t len = 0;
    FT_TRY(ft_file_read_all(index_path, &text, &len));
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return ft_error(FT_ERR_FORMAT, "%s: not valid JSON", index_path);

    int rc = FT_OK;
    const char **shards = NULL; /* unique shard names, in order of first appearance */
    int n_shards = 0;
    char dir[4096], full[4096];
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(wm)) {
        rc = ft_error(FT_ERR_FORMAT, "%s: no \"weight_map\" object (expected {\"weight_map\": {tensor: shard file}})", index_path);
        goto done;
    }
    if (!wm->child) { rc = ft_error(FT_ERR_FORMAT, "%s: \"weight_map\" is empty", index_path); goto done; }

    snprintf(dir, sizeof dir, "%s", index_path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[slash == dir ? 1 : 0] = 0;
    else snprintf(dir, sizeof dir, ".");

    int count = 0;
    for (const cJSON *x = wm->child; x; x = x->next) count++;
    shards = malloc((size_t)count * sizeof *shards);
    if (!shards) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", index_path); goto done; }
    for (const cJSON *x = wm->child; x; x = x->next) {
        if (!cJSON_IsString(x) || !shard_name_ok(x->valuestring)) {
            rc = ft_error(FT_ERR_FORMAT, "%s: tensor '%s': shard must be a file name inside the index's directory", index_path, x->string);
            goto done;
        }
        int k = 0;
        while (k < n_shards && strcmp(shards[k], x->valuestring) != 0) k++;
        if (k < n_shards) continue;
        shards[n_shards++] = x->valuestring;
        if ((rc = ft_path_join(full, sizeof full, dir, x->valuestring)) < 0) goto done;
        if (!ft_path_exists(full)) {
            rc = ft_error(FT_ERR_NOT_FOUND, "%s: shard %s (listed for tensor '%s') is missing: no file %s",
                          index_path, x->valuestring, x->string, full);
            goto done;
        }
        if ((rc = ft__st_add_file(st, full)) < 0) goto done;
    }
    if ((rc = ft__st_build_lookup(st)) < 0) goto done;

    for (const cJSON *x = wm->child; x; x = x->next) {
        const ft_st_entry *e = ft_st_find(st, x->string);
        if ((rc = ft_path_join(full, sizeof full, dir, x->valuestring)) < 0) goto done;
        if (!e) {
            rc = ft_error(FT_ERR_FORMAT, "%s: tensor '%s' is listed in the index but shard %s does not contain it",
                          index_path, x->string, full);
            goto done;
        }
        if (strcmp(e->file, full) != 0) {
            rc = ft_error(FT_ERR_FORMAT, "%s: the index puts tensor '%s' in %s but it is in %s",
                          index_path, x->string, full, e->file);
            goto done;
        }
    }
    if (st->n != count)
        FT_LOGD("%s: the shards hold %d tensors, the index lists %d", index_path, st->n, count);

    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (cJSON_IsObject(meta))
        for (const cJSON *x = meta->child; x; x = x->next)
            if (cJSON_IsString(x) && (rc = ft__st_add_meta(st, x->string, x->valuestring)) < 0) goto done;
done:
    free(shards);
    cJSON_Delete(root);
    return rc;
}

/* Pickle files the Trainer writes next to weights, and .bin files that are not weights either. */
static int is_trainer_state(const char *n) {
    return strcmp(n, "training_args.bin") == 0 || strcmp(n, "optimizer.pt") == 0 || strcmp(n, "scheduler.pt") == 0 ||
           strcmp(n, "optimizer.bin") == 0 || strcmp(n, "tokenizer.bin") == 0 ||   /* finetune checkpoints, llama2.c tokenizers */
           strcmp(n, "scaler.pt") == 0 || strncmp(n, "rng_state", 9) == 0;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct dir_scan {
    char  *index, *single;   /* the only *.safetensors.index.json / *.safetensors, if exactly one */
    int    n_index, n_single;
    char **pickles;          /* sorted names of pickle weight files */
    int    n_pickles;
} dir_scan;

static void dir_scan_free(dir_scan *d) {
    free(d->index);
    free(d->single);
    for (int i = 0; i < d->n_pickles; i++) free(d->pickles[i]);
    free(d->pickles);
}

static int scan_dir(dir_scan *d, const char *dir) {
    memset(d, 0, sizeof *d);
    DIR *dp = opendir(dir);
    if (!dp) return ft_error(FT_ERR_IO, "%s: cannot list the directory", dir);
    int rc = FT_OK, cap = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        const char *n = de->d_name;
        char **slot = NULL;
        if (ends_with(n, ".safetensors.index.json")) { d->n_index++; slot = &d->index; }
        else if (ends_with(n, ".safetensors")) { d->n_single++; slot = &d->single; }
        else if ((ends_with(n, ".bin") || ends_with(n, ".pt") || ends_with(n, ".pth")) && !is_trainer_state(n)) {
            if (d->n_pickles == cap) {
                cap = cap ? cap * 2 : 8;
                char **p = realloc(d->pickles, (size_t)cap * sizeof *p);
                if (!p) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", dir); break; }
                d->pickles = p;
            }
            slot = &d->pickles[d->n_pickles++];
            *slot = NULL;
        }
        if (!slot) continue;
        free(*slot);
        *slot = malloc(strlen(n) + 1);
        if (!*slot) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", dir); break; }
        memcpy(*slot, n, strlen(n) + 1);
    }
    closedir(dp);
    if (d->n_pickles > 1) qsort(d->pickles, (size_t)d->n_pickles, sizeof *d->pickles, name_cmp);
    return rc;
}

static int open_dir(ft_safetensors *st, const char *dir) {
    char p[4096];
    FT_TRY(ft_path_join(p, sizeof p, dir, "model.safetensors"));
    if (ft_path_exists(p)) return ft__st_add_file(st, p);
    FT_TRY(ft_path_join(p, sizeof p, dir, "model.safetensors.index.json"));
    if (ft_path_exists(p)) return open_index(st, p);

    dir_scan d;
    int rc = scan_dir(&d, dir);
    if (rc < 0) { dir_scan_free(&d); return rc; }
    if (d.n_index == 1) {
        if ((rc = ft_path_join(p, sizeof p, dir, d.index)) == FT_OK) rc = open_index(st, p);
    } else if (d.n_index > 1) {
        rc = ft_error(FT_ERR_INVALID, "%s: %d *.safetensors.index.json files and no model.safetensors.index.json; open one of them directly",
                      dir, d.n_index);
    } else if (d.n_single == 1) {
        if ((rc = ft_path_join(p, sizeof p, dir, d.single)) == FT_OK) rc = ft__st_add_file(st, p);
    } else if (d.n_single > 1) {
        rc = ft_error(FT_ERR_INVALID, "%s: %d *.safetensors files but no model.safetensors or index.json; open one of them directly",
                      dir, d.n_single);
    } else if (d.n_pickles > 0) {
        rc = ft_error(FT_ERR_UNSUPPORTED,
                      "%s: found only PyTorch pickle weights (%s%s), which finetune does not load; it reads safetensors. "
                      "Convert once with transformers (writes model.safetensors, sharded with an index if large):\n"
                      "  python3 -c \"from transformers import AutoModelForCausalLM as M; "
                      "M.from_pretrained('%s').save_pretrained('%s-safetensors', safe_serialization=True)\"\n"
                      "(transformers >= 5 always writes safetensors and ignores safe_serialization), then copy the tokenizer "
                      "files if needed and open %s-safetensors",
                      dir, d.pickles[0], d.n_pickles > 1 ? ", ..." : "", dir, dir, dir);
    } else {
        rc = ft_error(FT_ERR_NOT_FOUND,
                      "%s: no model weights found: looked for model.safetensors, model.safetensors.index.json, "
                      "*.safetensors and *.safetensors.index.json", dir);
    }
    dir_scan_free(&d);
    return rc;
}

int ft_st_open(ft_safetensors **out, const char *path) {
    *out = NULL;
    if (!path || !*path) return ft_error(FT_ERR_INVALID, "ft_st_open: empty path");
    if (!ft_path_exists(path)) return ft_error(FT_ERR_NOT_FOUND, "%s: no such file or directory", path);
    ft_safetensors *st = calloc(1, sizeof *st);
    char *copy = malloc(strlen(path) + 1);
    if (!st || !copy) { free(st); free(copy); return ft_error(FT_ERR_NOMEM, "%s: out of memory", path); }
    memcpy(copy, path, strlen(path) + 1);
    st->path = copy;
    int rc;
    if (ft_path_is_dir(path)) rc = open_dir(st, path);
    else if (ends_with(path, ".json")) rc = open_index(st, path);
    else rc = ft__st_add_file(st, path);
    if (rc == FT_OK) rc = ft__st_build_lookup(st);
    if (rc < 0) { ft_st_close(st); return rc; }
    *out = st;
    return FT_OK;
}
