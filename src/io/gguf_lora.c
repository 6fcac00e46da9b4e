/* gguf_lora.c — a PEFT LoRA adapter as a llama.cpp LoRA GGUF (export.h), the form of llama.cpp's
 * convert_lora_to_gguf.py: general.type "adapter", adapter.type "lora", adapter.lora.alpha, and per
 * adapted matrix W (llama.cpp name "blk.N.attn_q.weight") the tensors "W.lora_a" = A [r, in]
 * (ne {in, r}) and "W.lora_b" = B [out, r] (ne {r, out}), F32. llama.cpp computes
 * W x + (alpha / r) * B (A x); alpha is written as scale * r so rsLoRA's alpha / sqrt(r) comes out
 * the same. For the llama architecture B's rows are permuted like the base's q / k rows (the LoRA
 * output lands in llama.cpp's interleaved rope order), as convert_lora_to_gguf.py does. */
#include "io/gguf_export_internal.h"
#include "finetune/adapter.h"
#include "finetune/export.h"
#include "finetune/status.h"
#include "models/model_internal.h"
#include "quant/ggml_blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rows of B [rows, r]: row h*HS + r*HS/2 + i -> h*HS + 2i + r */
static float *permute_rows(const float *src, int64_t rows, int64_t hs, int64_t width) {
    float *dst = malloc((size_t)(rows * width) * sizeof(float));
    if (!dst) return NULL;
    for (int64_t h = 0; h < rows / hs; h++)
        for (int64_t i = 0; i < hs / 2; i++)
            for (int r = 0; r < 2; r++)
                memcpy(dst + (h * hs + 2 * i + r) * width, src + (h * hs + r * hs / 2 + i) * width, (size_t)width * sizeof(float));
    return dst;
}

int ft_export_lora_gguf(const ft_model *base, const char *adapter_dir, const char *path, ft_export_summary *summary) {
    ft_adapter *a;
    FT_TRY(ft_adapter_load(&a, base, adapter_dir));
    const ft_model_config *c = ft_model_get_config(base);
    const char *arch = ft__gguf_arch_name(c);
    int permute = strcmp(arch, "llama") == 0;
    ft_gguf_writer *w = NULL;
    int rc = ft_gguf_writer_create(&w);
    if (rc == FT_OK && a->n_mod == 0) rc = ft_error(FT_ERR_INVALID, "%s: the adapter has no LoRA modules", adapter_dir);
    float alpha = a->n_mod > 0 ? a->mods[0].scale * (float)a->mods[0].r : 0.0f;
    for (int k = 1; rc == FT_OK && k < a->n_mod; k++)
        if (a->mods[k].scale * (float)a->mods[k].r != alpha)
            rc = ft_error(FT_ERR_UNSUPPORTED, "%s: modules with different alpha / r (%s): a LoRA GGUF has one alpha", adapter_dir, a->mods[k].module);
    if (rc == FT_OK) rc = ft_gguf_writer_set_str(w, "general.architecture", arch);
    if (rc == FT_OK) rc = ft_gguf_writer_set_str(w, "general.type", "adapter");
    if (rc == FT_OK) rc = ft_gguf_writer_set_u32(w, "general.alignment", 32);
    if (rc == FT_OK) rc = ft_gguf_writer_set_str(w, "adapter.type", "lora");
    if (rc == FT_OK) rc = ft_gguf_writer_set_f32(w, "adapter.lora.alpha", alpha);
    ft_export_summary s;
    memset(&s, 0, sizeof s);
    for (int k = 0; rc == FT_OK && k < a->n_mod; k++) {
        const ft_adapter_module *md = &a->mods[k];
        char hf[200], gname[96], tname[128];
        snprintf(hf, sizeof hf, "%s.weight", md->module);
        if ((rc = ft__gguf_tensor_name(c->arch, hf, gname, sizeof gname)) < 0) break;
        int64_t ne_a[2] = {md->in, md->r}, ne_b[2] = {md->r, md->rows};
        snprintf(tname, sizeof tname, "%s.lora_a", gname);
        if ((rc = ft_gguf_writer_add_tensor(w, tname, FT_GGML_F32, 2, ne_a, md->A, 0)) < 0) break;
        const float *B = md->B;
        int own = 0;
        if (permute && (strstr(gname, ".attn_q.") || strstr(gname, ".attn_k."))) {
            if (md->rows % c->head_dim) { rc = ft_error(FT_ERR_SHAPE, "%s: %lld rows are not whole heads", tname, (long long)md->rows); break; }
            B = permute_rows(md->B, md->rows, c->head_dim, md->r);
            if (!B) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); break; }
            own = 1;
        }
        snprintf(tname, sizeof tname, "%s.lora_b", gname);
        if ((rc = ft_gguf_writer_add_tensor(w, tname, FT_GGML_F32, 2, ne_b, B, own)) < 0) break;
        s.n_f32 += 2;
    }
    if (rc == FT_OK) rc = ft_gguf_writer_write(w, path);
    if (rc == FT_OK) {
        s.n_tensors = ft_gguf_writer_n_tensors(w);
        s.data_bytes = ft_gguf_writer_data_bytes(w);
        if (summary) *summary = s;
    }
    ft_gguf_writer_free(w);
    ft_adapter_free(a);
    return rc;
}
