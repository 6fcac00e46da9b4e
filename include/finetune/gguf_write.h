/* gguf_write.h — a GGUF v3 writer: metadata of every value type (arrays included), tensor infos and
 * an aligned data section, written atomically (a temporary file, fsync, rename: readers see the old
 * file or the whole new one, never a part).
 *
 * Layout written (little-endian, the format llama.cpp and gguf-py read):
 *   "GGUF", u32 3, u64 n_tensors, u64 n_kv, the key/values in the order set, the tensor infos in
 *   the order added (name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset), zero padding to
 *   general.alignment (32 unless set), then each tensor's bytes, each padded to the alignment.
 * ne[] is ggml's order: ne[0] is the row length (a [rows, cols] row-major matrix is ne = {cols, rows}).
 *
 *   ft_gguf_writer *w;
 *   ft_gguf_writer_create(&w);
 *   ft_gguf_writer_set_str(w, "general.architecture", "llama");
 *   ft_gguf_writer_set_u32(w, "llama.block_count", 5);
 *   ft_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", toks, n);
 *   int64_t ne[2] = {64, 512};
 *   ft_gguf_writer_add_tensor(w, "token_embd.weight", FT_GGML_F32, 2, ne, emb, 0);   // borrowed
 *   if (ft_gguf_writer_write(w, "model.gguf") < 0) puts(ft_last_error());
 *   ft_gguf_writer_free(w);
 *
 * Ownership: every key, string and array is copied at the set call. Tensor data is borrowed (must stay
 * valid until ft_gguf_writer_write returns) unless `own` is 1: then the writer frees it (free()) in
 * ft_gguf_writer_free, also when the add call fails. Setting a key twice replaces its value in place;
 * a tensor name added twice is FT_ERR_INVALID. Not thread-safe: one writer per thread. */
#ifndef FINETUNE_GGUF_WRITE_H
#define FINETUNE_GGUF_WRITE_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/convert.h"    /* ft_gguf_type */

typedef struct ft_gguf_writer ft_gguf_writer;

int  ft_gguf_writer_create(ft_gguf_writer **out);
void ft_gguf_writer_free(ft_gguf_writer *w);

/* Scalars. A value that already exists under key is replaced (its type may change). */
int ft_gguf_writer_set_u8(ft_gguf_writer *w, const char *key, uint8_t v);
int ft_gguf_writer_set_i8(ft_gguf_writer *w, const char *key, int8_t v);
int ft_gguf_writer_set_u16(ft_gguf_writer *w, const char *key, uint16_t v);
int ft_gguf_writer_set_i16(ft_gguf_writer *w, const char *key, int16_t v);
int ft_gguf_writer_set_u32(ft_gguf_writer *w, const char *key, uint32_t v);
int ft_gguf_writer_set_i32(ft_gguf_writer *w, const char *key, int32_t v);
int ft_gguf_writer_set_u64(ft_gguf_writer *w, const char *key, uint64_t v);
int ft_gguf_writer_set_i64(ft_gguf_writer *w, const char *key, int64_t v);
int ft_gguf_writer_set_f32(ft_gguf_writer *w, const char *key, float v);
int ft_gguf_writer_set_f64(ft_gguf_writer *w, const char *key, double v);
int ft_gguf_writer_set_bool(ft_gguf_writer *w, const char *key, int v);
int ft_gguf_writer_set_str(ft_gguf_writer *w, const char *key, const char *v);
/* An array of n numbers or bools of elem_type (FT_GGUF_UINT8 .. FT_GGUF_FLOAT64 but not STRING or
 * ARRAY), data packed as that C type. */
int ft_gguf_writer_set_array(ft_gguf_writer *w, const char *key, ft_gguf_type elem_type, const void *data, uint64_t n);
/* An array of n strings (NUL-terminated; lens may be NULL, else the byte lengths, for strings with NULs). */
int ft_gguf_writer_set_str_array(ft_gguf_writer *w, const char *key, const char *const *strs, const size_t *lens, uint64_t n);

/* Adds a tensor of ggml type `type` (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K: gguf_quantize.h) and shape
 * ne[0..n_dims) (1..4 dims); data holds the tensor's bytes (ft_gguf_type_row_bytes(type, ne[0]) per row).
 * FT_ERR_INVALID for a duplicate name or bad shape, FT_ERR_UNSUPPORTED for another type. */
int ft_gguf_writer_add_tensor(ft_gguf_writer *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                              const void *data, int own);
int ft_gguf_writer_n_tensors(const ft_gguf_writer *w);
/* Sum of the tensors' data bytes (without padding). */
uint64_t ft_gguf_writer_data_bytes(const ft_gguf_writer *w);

/* Writes the file atomically. The alignment is the uint32 general.alignment if set (a power of two),
 * else 32. */
int ft_gguf_writer_write(ft_gguf_writer *w, const char *path);
#endif
