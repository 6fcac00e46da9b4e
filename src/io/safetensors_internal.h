/* safetensors_internal.h — the ft_safetensors handle shared by the reader files.
 *
 * safetensors.c        one file: header parsing and validation, lookup, typed reads, close
 * safetensors_open.c   path resolution: file, model directory, sharded index.json
 * safetensors_write.c  the writer (needs nothing from here)
 *
 * A handle holds one read-only map per file (a shard is mapped once however many tensors it
 * holds), the entries in file order then header order, an open-addressing hash table over the
 * entry names, and the "__metadata__" string pairs (first file that sets a key wins). */
#ifndef FT_IO_SAFETENSORS_INTERNAL_H
#define FT_IO_SAFETENSORS_INTERNAL_H
#include <stdint.h>

#include "finetune/fileio.h"
#include "finetune/safetensors.h"
#include "core/strindex.h"

/* Largest header accepted (same limit as the reference implementation). */
#define FT_ST_MAX_HEADER 100000000ull

struct ft_safetensors {
    char        *path;      /* what was opened: file, index.json or directory (for messages) */
    int          n_files;
    char       **files;     /* [n_files] path of each mapped file; entry->file points here */
    ft_mmap     *maps;      /* [n_files] */
    int          n, cap;
    ft_st_entry *entries;   /* [n]; entries[i].name is malloc'd and owned here */
    uint32_t    *slots;     /* [slot_mask + 1] entry index + 1, 0 = empty; NULL until built */
    uint32_t     slot_mask;
    int          n_meta, cap_meta; /* cap_meta counts char* slots */
    char       **meta;      /* [2 * n_meta] key, value, key, value ... (owned) */
    ft__strindex meta_index; /* metadata key -> pair number (a header may hold a million keys) */
};

/* Not yet in the public header (see the report): integer tensors as int32. */
int ft_st_read_i32(const ft_safetensors *st, const char *name, const int64_t *expect_shape, int ndim, int32_t *dst);

/* Maps `path`, validates its header and appends its tensors and metadata to st. On failure the
 * message names the file and, where known, the tensor; st stays valid for ft_st_close. */
int ft__st_add_file(ft_safetensors *st, const char *path);
/* Adds a metadata pair unless the key is already present. */
int ft__st_add_meta(ft_safetensors *st, const char *key, const char *value);
/* Builds the name lookup table over all entries (idempotent). Duplicate names are FT_ERR_FORMAT. */
int ft__st_build_lookup(ft_safetensors *st);
#endif
