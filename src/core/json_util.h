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

int         ft__json_int(const cJSON *o, const char *key, int def);   /* number truncated toward 0 */
double      ft__json_num(const cJSON *o, const char *key, double def);
const char *ft__json_str(const cJSON *o, const char *key, const char *def);
int         ft__json_bool(const cJSON *o, const char *key, int def);  /* true / false only */

int ft__json_get_int(const cJSON *o, const char *key, int def, int *out, const char *where);
int ft__json_get_num(const cJSON *o, const char *key, double def, double *out, const char *where);
int ft__json_get_str(const cJSON *o, const char *key, const char *def, const char **out, const char *where);
int ft__json_get_bool(const cJSON *o, const char *key, int def, int *out, const char *where);

/* "a string", "a number", "a boolean", "null", "a list", "an object"; "nothing" for NULL */
const char *ft__json_type_name(const cJSON *v);

/* Reads and parses a JSON file into *out (the caller frees it with cJSON_Delete); a syntax error is
 * FT_ERR_FORMAT "<path>: invalid JSON at line L (byte B)". */
int ft__json_parse_file(cJSON **out, const char *path);

/* A token entry as tokenizer_config.json writes it: "text" or {"content": "text", ...}; NULL otherwise. */
const char *ft__json_token_text(const cJSON *v);
#endif
