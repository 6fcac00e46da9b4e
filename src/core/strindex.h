/* strindex.h — an index from strings to int ids: open addressing, grows as keys arrive (internal).
 *
 * For tables whose keys come from a file (GGUF metadata and tensor names, safetensors metadata,
 * tokenizer vocabularies): a duplicate check or a lookup by name costs O(1) instead of a scan, so a header
 * with a million keys is parsed in linear time rather than a quadratic one.
 *
 *     ft__strindex x = {0};
 *     for (int i = 0; i < n; i++) {
 *         int prev;
 *         if (ft__strindex_put(&x, names[i], i, &prev) < 0) ...;   // FT_ERR_NOMEM
 *         if (prev >= 0) ... names[i] duplicates names[prev] ...
 *     }
 *     int id = ft__strindex_get(&x, "blk.0.attn_q.weight");          // -1 when absent
 *     ft__strindex_free(&x);
 *
 * Ownership: the index stores the key pointers, not copies: each key must stay valid and unchanged while
 * the index lives. Not thread-safe for writers; concurrent ft__strindex_get calls are fine. */
#ifndef FT_CORE_STRINDEX_H
#define FT_CORE_STRINDEX_H
#include <stddef.h>
#include <stdint.h>

typedef struct ft__strindex {
    const char **keys;  /* [mask + 1] NULL = empty slot */
    int         *ids;   /* [mask + 1] */
    uint32_t     mask;  /* capacity - 1 (a power of two); 0 before the first put */
    int          n;     /* keys stored */
} ft__strindex;

/* Stores key -> id unless key is present. *prev: the id already stored under key (nothing changes), or -1
 * when key was added. Returns FT_OK or FT_ERR_NOMEM (no message recorded: the caller names the table). */
int  ft__strindex_put(ft__strindex *x, const char *key, int id, int *prev);
/* The id stored under key, -1 when absent (or x empty). */
int  ft__strindex_get(const ft__strindex *x, const char *key);
void ft__strindex_free(ft__strindex *x);
#endif
