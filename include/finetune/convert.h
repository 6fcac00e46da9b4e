/* convert.h — import foreign Llama checkpoints (llama2.c .bin, GGUF) and export them as a
 * Hugging Face Llama directory (config.json, model.safetensors, tokenizer.json, ...).
 *
 * Three layers, usable separately:
 *   1. ft_gguf_*: a bounds-checked GGUF v2/v3 reader (metadata of every value type, tensor
 *      infos, F32 / F16 / BF16 tensor data upcast to f32).
 *   2. ft_llama2c_load / ft_gguf_load_llama: read a checkpoint into an ft_llama_ckpt (config
 *      + f32 weights in the llama2.c / Meta layout, + the GGUF vocabulary when present).
 *   3. ft_llama_export_hf: write an ft_llama_ckpt and a tokenizer as a HF directory.
 * ft_convert_to_hf does all three, detecting the format by the file's magic.
 *
 *   if (ft_convert_to_hf("stories260K.bin", "tok512.bin", "models/stories260K", NULL, NULL) < 0)
 *       fprintf(stderr, "%s\n", ft_last_error());
 *
 * Rotary layout. llama2.c and GGUF (llama.cpp's LLAMA rope mode) rotate interleaved pairs
 * (2i, 2i+1) of each head; HF Llama rotates (i, i + HS/2) ("rotate_half"). The export reorders
 * the rows of q_proj and k_proj per head, row 2i+r -> r*HS/2 + i (r in {0,1}), which is the
 * permutation of HF's convert_llama_weights_to_hf.py; both sources then give byte-identical
 * model.safetensors. */
#ifndef FINETUNE_CONVERT_H
#define FINETUNE_CONVERT_H
#include "finetune/ggml_types.h"
#include <stddef.h>
#include <stdint.h>
#include "finetune/tokenizer.h"

/* ------------------------------------------------------------------------------------------
 * GGUF reader. The file is memory-mapped for the handle's lifetime; strings returned point
 * into the handle (NUL-terminated copies) and stay valid until ft_gguf_close.
 * ------------------------------------------------------------------------------------------ */
typedef enum ft_gguf_type {
    FT_GGUF_UINT8 = 0, FT_GGUF_INT8 = 1, FT_GGUF_UINT16 = 2, FT_GGUF_INT16 = 3,
    FT_GGUF_UINT32 = 4, FT_GGUF_INT32 = 5, FT_GGUF_FLOAT32 = 6, FT_GGUF_BOOL = 7,
    FT_GGUF_STRING = 8, FT_GGUF_ARRAY = 9, FT_GGUF_UINT64 = 10, FT_GGUF_INT64 = 11,
    FT_GGUF_FLOAT64 = 12,
} ft_gguf_type;

/* ggml tensor type ids: ggml_types.h (the others are only named in error messages). */

typedef struct ft_gguf_kv {
    const char  *key;
    ft_gguf_type type;
    /* scalars: */
    union { uint64_t u; int64_t i; double f; } v;   /* integers widened, bools 0/1, floats as double */
    const char  *str;          /* FT_GGUF_STRING: the value (NUL-terminated copy) */
    /* arrays: */
    ft_gguf_type arr_type;     /* element type */
    uint64_t     arr_n;        /* element count */
    const void  *arr_data;     /* first element in the map (raw little-endian; strings: len-prefixed) */
} ft_gguf_kv;

typedef struct ft_gguf_tensor {
    const char *name;
    int         n_dims;
    int64_t     ne[4];         /* ggml order: ne[0] is the innermost (contiguous) dimension */
    uint32_t    type;          /* ggml type id */
    uint64_t    offset;        /* from the start of the data section */
    size_t      nbytes;        /* 0 for types this reader cannot size */
    const void *data;          /* into the map; NULL if nbytes is 0 */
} ft_gguf_tensor;

typedef struct ft_gguf ft_gguf;

/* Opens and validates a GGUF file: magic, version (2 or 3), every key/value and tensor info in
 * bounds, alignment a power of two, tensor data inside the file. Errors name the file. */
int  ft_gguf_open(ft_gguf **out, const char *path);
void ft_gguf_close(ft_gguf *g);

const char *ft_gguf_path(const ft_gguf *g);
uint32_t    ft_gguf_version(const ft_gguf *g);
int         ft_gguf_n_kv(const ft_gguf *g);
const ft_gguf_kv *ft_gguf_kv_at(const ft_gguf *g, int i);
const ft_gguf_kv *ft_gguf_find_kv(const ft_gguf *g, const char *key);   /* NULL if absent */
int         ft_gguf_n_tensors(const ft_gguf *g);
const ft_gguf_tensor *ft_gguf_tensor_at(const ft_gguf *g, int i);
const ft_gguf_tensor *ft_gguf_find_tensor(const ft_gguf *g, const char *name); /* NULL if absent */
/* "F32", "F16", "Q4_0", ... or "type 123". */
const char *ft_ggml_type_name(uint32_t type);
const char *ft_gguf_type_name(ft_gguf_type type);

/* Typed metadata getters. FT_ERR_NOT_FOUND if absent (when required), FT_ERR_FORMAT for a value of
 * the wrong kind; both name the file and key. The *_opt forms return def when the key is absent. */
int ft_gguf_get_int(const ft_gguf *g, const char *key, int64_t *out);
int ft_gguf_get_int_opt(const ft_gguf *g, const char *key, int64_t def, int64_t *out);
int ft_gguf_get_float(const ft_gguf *g, const char *key, double *out);
int ft_gguf_get_float_opt(const ft_gguf *g, const char *key, double def, double *out);
int ft_gguf_get_str(const ft_gguf *g, const char *key, const char **out);
/* Array elements: strings (malloc'd array of pointers into the handle; caller frees the array
 * only), numbers as f32 / i32 (malloc'd, caller frees). */
int ft_gguf_get_str_array(const ft_gguf *g, const char *key, const char ***out, int64_t *n);
int ft_gguf_get_f32_array(const ft_gguf *g, const char *key, float **out, int64_t *n);
int ft_gguf_get_i32_array(const ft_gguf *g, const char *key, int32_t **out, int64_t *n);

/* Copies tensor `name` into dst as f32 (F32 copied, F16 / BF16 upcast, Q8_0 / Q4_0 / Q4_K dequantized
 * with ggml_quant.h's reference). ne/n_dims: the shape the caller expects in ggml order.
 * FT_ERR_NOT_FOUND (missing), FT_ERR_SHAPE (got vs expected), FT_ERR_UNSUPPORTED (another type, naming
 * the tensor and the type, e.g. "Q6_K"). */
int ft_gguf_read_f32(const ft_gguf *g, const char *name, const int64_t *ne, int n_dims, float *dst);

/* ------------------------------------------------------------------------------------------
 * A Llama checkpoint in memory: config + f32 weights, llama2.c layout (rope pairs interleaved).
 * Shapes use B/T/C/L/V letters: C = dim, KV = n_kv_heads * head_dim, H = hidden_dim.
 * ------------------------------------------------------------------------------------------ */
typedef struct ft_llama_ckpt {
    char  format[16];        /* "llama2.c" or "gguf" */
    int   dim;               /* C */
    int   hidden_dim;        /* H */
    int   n_layers;          /* L */
    int   n_heads;           /* NH */
    int   n_kv_heads;        /* NKV */
    int   vocab_size;        /* V */
    int   seq_len;           /* max positions (llama2.c seq_len, GGUF llama.context_length) */
    float norm_eps;          /* RMSNorm epsilon (1e-5 for llama2.c) */
    float rope_theta;        /* 10000 unless the GGUF says otherwise */
    int   tied;              /* 1: the classifier is the token embedding */

    float *token_embedding;  /* [V, C] */
    float *rms_att;          /* [L, C] */
    float *wq;               /* [L, C, C]   rows: head-major, interleaved rope pairs */
    float *wk;               /* [L, KV, C]  idem */
    float *wv;               /* [L, KV, C] */
    float *wo;               /* [L, C, C] */
    float *rms_ffn;          /* [L, C] */
    float *w1;               /* [L, H, C]   gate */
    float *w2;               /* [L, C, H]   down */
    float *w3;               /* [L, H, C]   up */
    float *rms_final;        /* [C] */
    float *wcls;             /* [V, C]; == token_embedding when tied */
    float *mem;              /* the one allocation all of the above point into */

    /* Vocabulary from GGUF metadata (n_tokens 0 for llama2.c): token strings (SentencePiece
     * spelling, "▁" for space), scores, token types (1 normal, 2 unknown, 3 control, 6 byte). */
    int     n_tokens;
    char  **tokens;
    float  *scores;
    int32_t *token_types;
    int     bos_id, eos_id, unk_id;   /* -1 if unknown */
} ft_llama_ckpt;

/* llama2.c checkpoint: legacy version-0 (7 int32 header, f32 weights, freq_cis skipped) or the
 * "ak42" headered version 1 (f32). Version 2 (int8) -> FT_ERR_UNSUPPORTED. The file size must
 * match the header exactly; errors name the file and what was expected vs found. */
int  ft_llama2c_load(ft_llama_ckpt *ck, const char *path);
/* A GGUF llama model (general.architecture "llama"), tensors F32/F16/BF16. An output.weight
 * byte-identical to token_embd.weight counts as tied (llama.cpp's llama2.c converter writes it). */
int  ft_gguf_load_llama(ft_llama_ckpt *ck, const char *path);
void ft_llama_ckpt_free(ft_llama_ckpt *ck);
/* Number of scalars in the weights (the classifier counted once when tied). */
int64_t ft_llama_ckpt_param_count(const ft_llama_ckpt *ck);

/* The q/k row permutation described at the top: dst[h*HS + r*HS/2 + i] = src[h*HS + 2i + r]
 * for rows of `cols` floats, n_heads heads of head_dim rows. dst and src must not overlap. */
void ft_rope_interleaved_to_half(float *dst, const float *src, int n_heads, int head_dim, int cols);

/* ------------------------------------------------------------------------------------------
 * Export.
 * ------------------------------------------------------------------------------------------ */
typedef struct ft_convert_opts {
    int context_length;   /* > 0: overrides max_position_embeddings / model_max_length (the
                           * llama2.c seq_len or GGUF llama.context_length otherwise) */
} ft_convert_opts;

typedef struct ft_convert_summary {
    char    format[16];
    int     dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, tied;
    int64_t n_params;
    int     n_tensors;    /* tensors written to model.safetensors */
} ft_convert_summary;

/* Writes out_dir/{config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
 * generation_config.json}, each atomically; creates out_dir if needed. tok may be NULL (no
 * tokenizer files). On failure, the files this call wrote are removed (and out_dir, if this call
 * created it and it is empty). summary may be NULL. */
int ft_llama_export_hf(const ft_llama_ckpt *ck, const ft_tokenizer *tok, const char *out_dir,
                       const ft_convert_opts *opts, ft_convert_summary *summary);

/* Builds the tokenizer of a GGUF checkpoint from its vocabulary (SentencePiece BPE with scores,
 * via a temporary llama2.c tokenizer.bin made in tmp_dir and removed). */
int ft_llama_ckpt_tokenizer(ft_tokenizer **out, const ft_llama_ckpt *ck, const char *tmp_dir);
/* The tokenizer of a GGUF model file from its SentencePiece vocabulary (tokenizer.ggml.model "llama":
 * tokens, scores, types, special ids), through a temporary file in $TMPDIR (or /tmp). FT_ERR_UNSUPPORTED
 * for other vocabularies (GPT-2 byte-level BPE). ft_tokenizer_load accepts a GGUF file through this. */
int ft_gguf_tokenizer(ft_tokenizer **out, const char *path);

/* Loads a tokenizer from a path: a model directory, a tokenizer.json, or a llama2.c
 * tokenizer.bin / tok512.bin file. */
int ft_convert_load_tokenizer(ft_tokenizer **out, const char *path);

/* src_path: llama2.c .bin or .gguf (detected by magic). tokenizer_path: NULL => from the GGUF
 * metadata, or for a .bin a tokenizer.bin / tok<V>.bin beside it (error if none). opts may be NULL. */
int ft_convert_to_hf(const char *src_path, const char *tokenizer_path, const char *out_dir,
                     const ft_convert_opts *opts, ft_convert_summary *summary);
#endif
