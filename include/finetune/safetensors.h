/* safetensors.h — read and write Hugging Face safetensors files.
 *
 * Reading: ft_st_open maps one file, or a whole model directory (model.safetensors, or the
 * shards listed in model.safetensors.index.json), read-only with mmap. Entries point into the
 * maps; they stay valid until ft_st_close. Every malformed input is reported with the file name
 * and, where known, the tensor name: truncated header, header length past the end of the file,
 * invalid JSON, data_offsets out of order / out of bounds / inconsistent with shape*dtype,
 * unknown dtype, index.json naming a missing shard.
 *
 * Writing: ft_st_write writes one file atomically (temp + fsync + rename). Tensors are laid out
 * in the order given; the header is deterministic (keys in that order, "__metadata__" first,
 * padded with spaces to a multiple of 8 bytes), so equal inputs give byte-identical files.
 *
 *   ft_safetensors *st;
 *   if (ft_st_open(&st, "models/gpt2") < 0) fprintf(stderr, "%s\n", ft_last_error());
 *   float *w = ...; int64_t shape[2] = {768, 2304};
 *   rc = ft_st_read_f32(st, "h.0.attn.c_attn.weight", shape, 2, w);   // upcasts F16/BF16
 *   ft_st_close(st);
 */
#ifndef FINETUNE_SAFETENSORS_H
#define FINETUNE_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/tensor.h"

#define FT_ST_MAX_DIMS 8

typedef struct ft_st_entry {
    const char *name;
    ft_dtype    dtype;      /* F32, F16, BF16, I32, I64, I8, U8 (others: FT_ERR_DTYPE at open) */
    int         ndim;
    int64_t     shape[FT_ST_MAX_DIMS];
    const void *data;       /* into the mmap, little-endian, nbytes long */
    size_t      nbytes;
    const char *file;       /* path of the file holding it */
} ft_st_entry;

typedef struct ft_safetensors ft_safetensors;

/* path: a .safetensors file, a model.safetensors.index.json, or a directory: tried in the order
 * model.safetensors, model.safetensors.index.json, else the only *.safetensors.index.json or
 * *.safetensors in the directory.
 * A directory with only pytorch_model.bin (or *.bin / *.pt) gets FT_ERR_UNSUPPORTED with a
 * message that says how to convert it to safetensors. */
int  ft_st_open(ft_safetensors **out, const char *path);
void ft_st_close(ft_safetensors *st);

int                ft_st_count(const ft_safetensors *st);
const ft_st_entry *ft_st_at(const ft_safetensors *st, int i);
/* NULL if absent (no error recorded). */
const ft_st_entry *ft_st_find(const ft_safetensors *st, const char *name);
/* The "__metadata__" object's value for key, or NULL. */
const char        *ft_st_metadata(const ft_safetensors *st, const char *key);

/* Copies tensor `name` into dst as f32 (F32 copied, F16/BF16 upcast). expect_shape/ndim is the
 * shape the caller needs: FT_ERR_NOT_FOUND (missing tensor), FT_ERR_SHAPE (got vs expected, both
 * printed) or FT_ERR_DTYPE (integer dtype) name the file and the tensor. */
int ft_st_read_f32(const ft_safetensors *st, const char *name, const int64_t *expect_shape, int ndim, float *dst);

/* Copies integer tensor `name` into dst as int32: I32 copied, I64 narrowed (FT_ERR_RANGE names the
 * first element outside int32), I8/U8 widened; F32/F16/BF16 are FT_ERR_DTYPE. Shape and not-found
 * rules as ft_st_read_f32. Used to load reference token ids. */
int ft_st_read_i32(const ft_safetensors *st, const char *name, const int64_t *expect_shape, int ndim, int32_t *dst);

/* Drops the resident pages of an entry's data from this process (madvise DONTNEED on the whole pages
 * inside it): after a tensor has been converted (e.g. quantized), its file-backed pages stop counting
 * in the resident set. Reading the entry again faults them back in. */
void ft_st_release(const ft_st_entry *e);

/* Writing. */
typedef struct ft_st_tensor {
    const char *name;
    ft_dtype    dtype;
    int         ndim;
    int64_t     shape[FT_ST_MAX_DIMS];
    const void *data;       /* numel * dtype size bytes */
} ft_st_tensor;

/* metadata: NULL or n_meta pairs {key0, value0, key1, value1, ...} of strings. */
int ft_st_write(const char *path, const ft_st_tensor *t, int n, const char *const *metadata, int n_meta);
#endif
