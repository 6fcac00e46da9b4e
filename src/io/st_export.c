/* st_export.c — ft_export_safetensors: a (merged) model as a Hugging Face directory in f32 / f16 / bf16,
 * sharded the way transformers' save_pretrained does above max_shard_bytes:
 *   model.safetensors                                   when everything fits in one shard
 *   model-00001-of-0000N.safetensors ... + model.safetensors.index.json
 *       {"metadata": {"total_size": BYTES}, "weight_map": {"<tensor>": "<shard file>", ...}}
 * Tensors go into shards in the model's order; a shard is closed when the next tensor would take it
 * past the limit (a tensor larger than the limit gets a shard of its own). Names and layouts are those
 * of ft_model_save (GPT-2's Conv1D weights transposed back). config.json gets "torch_dtype" of the
 * dtype; tokenizer files are copied. Every file is written atomically. */
#include "core/json_util.h"
#include "finetune/checkpoint.h"
#include "finetune/export.h"
#include "finetune/fileio.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"
#include "finetune/tensor.h"
#include "core/strbuf.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_SHARD 5000000000ULL   /* transformers' "5GB" */

typedef struct {
    char    name[128];
    int     param, transpose, ndim;
    int64_t row0, rows, cols;             /* the piece in the internal [rows, cols] matrix */
    int64_t shape[2];
    uint64_t bytes;
    int     shard;
} piece;

/* the piece's values in dtype, in the checkpoint's layout (malloc'd) */
static void *piece_data(ft_model *m, const piece *pc, ft_dtype dtype) {
    const ft_param *p = ft_model_param(m, pc->param);
    const float *src = (const float *)p->t.data + pc->row0 * pc->cols;
    int64_t n = pc->rows * pc->cols;
    size_t es = ft_dtype_size(dtype);
    uint8_t *out = malloc((size_t)n * es);
    if (!out) return NULL;
    for (int64_t k = 0; k < n; k++) {
        /* element k of the output: transposed pieces are stored [cols, rows] */
        int64_t idx = k;
        if (pc->transpose) { int64_t c = k / pc->rows, r = k % pc->rows; idx = r * pc->cols + c; }
        float v = src[idx];
        if (dtype == FT_F32) memcpy(out + 4 * k, &v, 4);
        else { uint16_t h = dtype == FT_F16 ? ft_f32_to_f16(v) : ft_f32_to_bf16(v); memcpy(out + 2 * k, &h, 2); }
    }
    return out;
}

static int write_shard(ft_model *m, const piece *pcs, int n, int shard, ft_dtype dtype, const char *path) {
    int cnt = 0;
    for (int i = 0; i < n; i++) cnt += pcs[i].shard == shard;
    ft_st_tensor *t = calloc((size_t)(cnt ? cnt : 1), sizeof *t);
    void **bufs = calloc((size_t)(cnt ? cnt : 1), sizeof *bufs);
    int rc = t && bufs ? FT_OK : ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
    int k = 0;
    for (int i = 0; rc == FT_OK && i < n; i++) {
        if (pcs[i].shard != shard) continue;
        bufs[k] = piece_data(m, &pcs[i], dtype);
        if (!bufs[k]) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory for %s", path, pcs[i].name); break; }
        t[k].name = pcs[i].name;
        t[k].dtype = dtype;
        t[k].data = bufs[k];
        t[k].ndim = pcs[i].ndim;
        t[k].shape[0] = pcs[i].shape[0];
        t[k].shape[1] = pcs[i].shape[1];
        k++;
    }
    static const char *meta[] = {"format", "pt"};
    if (rc == FT_OK) rc = ft_st_write(path, t, k, meta, 1);
    for (int i = 0; bufs && i < k; i++) free(bufs[i]);
    free(bufs);
    free(t);
    return rc;
}

static int set_torch_dtype(const char *dir, ft_dtype dtype) {
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, dir, "config.json"));
    char *text;
    size_t len;
    FT_TRY(ft_file_read_all(path, &text, &len));
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) return ft_error(FT_ERR_FORMAT, "%s: not valid JSON", path);
    const char *name = dtype == FT_F16 ? "float16" : dtype == FT_BF16 ? "bfloat16" : "float32";
    cJSON_DeleteItemFromObjectCaseSensitive(j, "torch_dtype");
    cJSON_AddStringToObject(j, "torch_dtype", name);
    int rc = ft__json_write_file(j, path);
    cJSON_Delete(j);
    return rc;
}

int ft_export_safetensors(const ft_model *cm, const char *tokenizer_dir, const char *out_dir, ft_dtype dtype,
                          uint64_t max_shard_bytes, ft_export_summary *summary) {
    ft_model *m = (ft_model *)cm;   /* read only */
    if (dtype != FT_F32 && dtype != FT_F16 && dtype != FT_BF16)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: safetensors export dtype %s is not supported (f32, f16, bf16)", out_dir, ft_dtype_name(dtype));
    if (!max_shard_bytes) max_shard_bytes = DEFAULT_MAX_SHARD;
    int np = ft_model_num_params(m), n = 0;
    piece *pcs = calloc((size_t)np * 3 + 1, sizeof *pcs);
    if (!pcs) return ft_error(FT_ERR_NOMEM, "%s: out of memory", out_dir);
    int rc = FT_OK;
    uint64_t total = 0, cur = 0;
    int shard = 0;
    for (int i = 0; rc == FT_OK && i < np; i++) {
        const ft_param *p = ft_model_param(m, i);
        if (p->qdesc) { rc = ft_error(FT_ERR_UNSUPPORTED, "%s is stored quantized in memory; load the model in f32 to export it", p->name); break; }
        ft_hf_piece hp[3];
        int k = ft_model_hf_pieces(m, i, hp);
        for (int j = 0; j < k; j++, n++) {
            piece *pc = &pcs[n];
            _Static_assert(sizeof pc->name == sizeof hp[j].name, "piece names are HF piece names");
            memcpy(pc->name, hp[j].name, sizeof pc->name);
            pc->param = i;
            pc->row0 = hp[j].row0;
            pc->rows = hp[j].rows;
            pc->cols = p->t.ndim == 2 ? p->t.shape[1] : 1;
            pc->transpose = hp[j].transpose && p->t.ndim == 2;
            pc->ndim = p->t.ndim == 2 ? 2 : 1;
            pc->shape[0] = pc->transpose ? pc->cols : pc->rows;
            pc->shape[1] = pc->ndim == 2 ? (pc->transpose ? pc->rows : pc->cols) : 0;
            pc->bytes = (uint64_t)(pc->rows * pc->cols) * ft_dtype_size(dtype);
            if (cur > 0 && cur + pc->bytes > max_shard_bytes) { shard++; cur = 0; }
            pc->shard = shard;
            cur += pc->bytes;
            total += pc->bytes;
        }
    }
    int n_shards = shard + 1;
    if (rc == FT_OK && !ft_path_exists(out_dir)) rc = ft_mkdirs(out_dir);
    char path[4096], fname[64];
    ft__sb idx = {0};
    if (rc == FT_OK && n_shards > 1) ft__sb_printf(&idx, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n", (unsigned long long)total);
    for (int s = 0; rc == FT_OK && s < n_shards; s++) {
        if (n_shards == 1) snprintf(fname, sizeof fname, "model.safetensors");
        else snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        rc = ft_path_join(path, sizeof path, out_dir, fname);
        if (rc == FT_OK) rc = write_shard(m, pcs, n, s, dtype, path);
    }
    if (rc == FT_OK && n_shards > 1) {
        /* weight_map sorted by name, as transformers writes it */
        int *order = malloc((size_t)n * sizeof *order);
        if (!order) rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", out_dir);
        for (int i = 0; rc == FT_OK && i < n; i++) order[i] = i;
        for (int i = 1; rc == FT_OK && i < n; i++)
            for (int j = i; j > 0 && strcmp(pcs[order[j - 1]].name, pcs[order[j]].name) > 0; j--) {
                int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
            }
        for (int i = 0; rc == FT_OK && i < n; i++) {
            const piece *pc = &pcs[order[i]];
            ft__sb_puts(&idx, "    ");
            ft__sb_put_json(&idx, pc->name, strlen(pc->name), 0);
            ft__sb_printf(&idx, ": \"model-%05d-of-%05d.safetensors\"%s\n", pc->shard + 1, n_shards, i + 1 < n ? "," : "");
        }
        free(order);
        ft__sb_puts(&idx, "  }\n}\n");
        if (rc == FT_OK && idx.err) rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", out_dir);
        if (rc == FT_OK) rc = ft_path_join(path, sizeof path, out_dir, "model.safetensors.index.json");
        if (rc == FT_OK) rc = ft_file_write_atomic(path, idx.p, idx.n);
    }
    ft__sb_free(&idx);
    if (rc == FT_OK) rc = ft_model_config_save(ft_model_get_config(m), out_dir);
    if (rc == FT_OK) rc = set_torch_dtype(out_dir, dtype);
    if (rc == FT_OK && tokenizer_dir && ft_copy_tokenizer_files(tokenizer_dir, out_dir) < 0) rc = FT_ERR_IO;
    if (rc == FT_OK && summary) {
        memset(summary, 0, sizeof *summary);
        summary->n_tensors = n;
        summary->data_bytes = total;
        summary->n_shards = n_shards;
    }
    free(pcs);
    return rc;
}
