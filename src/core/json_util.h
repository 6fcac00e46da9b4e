/* json_util.h — the one set of getters over cJSON objects (internal: not installed; names ft__json_*).
 *
 * Two kinds:
 *   lenient  ft__json_int / _num / _str / _bool: the value of `key` when o is an object holding it
 *            with the right type, else def. For configs where a missing or odd field means "default".
 *   strict   ft__json_get_int / _num / _str / _bool: absent key or JSON null gives def and FT_OK;
 *            a value of another type (or a non-integral / out-of-range number for _int) is an error
 *            FT_ERR_FORMAT whose message names `where` (a file, "config.json", ...) and the key:
 *            `config.json: "hidden_size" must be an integer, got a string`. *out is set either way
 *            (to def on error).
 * Strings returned point into the cJSON tree (valid while it lives). */
#ifndef FT_CORE_JSON_UTIL_H
#define FT_CORE_JSON_UTIL_H
#include <cjson/cJSON.h>

int         ft__json_int(const cJSON *o, const char *key, int def);   /* number truncated toward 0, saturated to int */
/* v itself (a number: truncated toward 0 and saturated to int, never undefined behaviour) or def */
int         ft__json_as_int(const cJSON *v, int def);
/* 1 when v is an integer in [0, limit) (*out set), else 0: for ids and indices a file gives */
int         ft__json_as_index(const cJSON *v, int limit, int *out);
double      ft__json_num(const cJSON *o, const char *key, double def);
const char *ft__json_str(const cJSON *o, const char *key, const char *def);
int         ft__json_bool(const cJSON *o, const char *key, int def);  /* true / false only */

int ft__json_get_int(const cJSON *o, const char *key, int def, int *out, const char *where);
int ft__json_get_num(const cJSON *o, const char *key, double def, double *out, const char *where);
int ft__json_get_str(const cJSON *o, const char *key, const char *def, const char **out, const char *where);
int ft__json_get_bool(const cJSON *o, const char *key, int def, int *out, const char *where);

/* Bounded strict getters, for the sizes and numbers a file decides (config.json, adapter_config.json,
 * state.json): absent key or null gives def (not checked) and FT_OK; anything else must be an integer in
 * [lo, hi] (_int_in, _i64_in) or a finite number in the interval from lo to hi (_real_in; bits of `open`:
 * FT__JSON_LO_OPEN excludes lo, FT__JSON_HI_OPEN excludes hi), else FT_ERR_FORMAT naming where, the key,
 * the value and the limit: `config.json: "num_hidden_layers" is 300000000; it must be an integer in
 * [1, 1024]`. *out is set either way (to def on error). */
enum { FT__JSON_CLOSED = 0, FT__JSON_LO_OPEN = 1, FT__JSON_HI_OPEN = 2 };
int ft__json_get_int_in(const cJSON *o, const char *key, int def, int lo, int hi, int *out, const char *where);
int ft__json_get_i64_in(const cJSON *o, const char *key, long long def, long long lo, long long hi, long long *out,
                        const char *where);
int ft__json_get_real_in(const cJSON *o, const char *key, double def, double lo, double hi, int open, double *out,
                         const char *where);

/* "a string", "a number", "a boolean", "null", "a list", "an object"; "nothing" for NULL */
const char *ft__json_type_name(const cJSON *v);

/* Reads and parses a JSON file into *out (the caller frees it with cJSON_Delete); a syntax error is
 * FT_ERR_FORMAT "<path>: invalid JSON at line L (byte B)". */
int ft__json_parse_file(cJSON **out, const char *path);
/* The other way: o printed (cJSON_Print, indented) with a final newline to path, atomically
 * (ft_file_write_atomic). o stays the caller's. */
int ft__json_write_file(const cJSON *o, const char *path);

/* A token entry as tokenizer_config.json writes it: "text" or {"content": "text", ...}; NULL otherwise. */
const char *ft__json_token_text(const cJSON *v);
#endif
