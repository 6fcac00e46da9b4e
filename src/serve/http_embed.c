/* http_embed.c — POST /v1/embeddings: sentence embeddings of an encoder (mean of the last hidden states
 * over the real tokens, L2-normalised: ft_engine_embed), in OpenAI's shape, as floats or as base64 of the
 * little-endian float32 bytes (what the openai Python client asks for by default). */
#include "serve/http_internal.h"
#include "core/json_util.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* standard base64 (RFC 4648, with padding) of n bytes */
static void base64(ft__sb *b, const unsigned char *p, size_t n) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    ft__sb_reserve(b, (n + 2) / 3 * 4);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        char q[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], i + 1 < n ? tbl[(v >> 6) & 63] : '=', i + 2 < n ? tbl[v & 63] : '='};
        ft__sb_put(b, q, 4);
    }
}

ft__mhd_result ft__http_embeddings(ft__http_req *r, const cJSON *body) {
    ft__jerr err = {{0}, NULL};
    const char *model = NULL, *format = NULL, *user = NULL;
    char name[128];
    static const char *const known[] = {"model", "input", "encoding_format", "dimensions", "user", NULL};
    if (ft__jv_known(body, known, 0, &err) < 0) return ft__http_error(r, 400, "unknown_parameter", err.param, "%s", err.msg);
    if (ft__jv_str(body, "model", 1, 1, &model, &err) < 0 || ft__jv_str(body, "encoding_format", 0, 0, &format, &err) < 0 ||
        ft__jv_str(body, "user", 0, 0, &user, &err) < 0)
        return ft__http_error(r, 400, "invalid_value", err.param, "%s", err.msg);
    snprintf(name, sizeof name, "%s", model);
    int b64 = 0;
    if (format && strcmp(format, "base64") == 0) b64 = 1;
    else if (format && strcmp(format, "float") != 0)
        return ft__http_error(r, 400, "invalid_value", "encoding_format", "'encoding_format' must be \"float\" or \"base64\", got '%.40s'", format);
    ft_engine_entry *e = NULL;
    if (!ft__name_valid(name) || ft_engine_find(r->s->e, name, &e) != FT_OK)
        return ft__http_error(r, 404, "model_not_found", "model", "The model '%.200s' does not exist", name);
    int kind = e->kind;
    ft_engine_entries_free(e, 1);
    ft__http_note_model(r, name);
    if (kind != FT_ENGINE_ENCODER)
        return ft__http_error(r, 400, "invalid_model", "model", "The model '%s' is a text generator: embeddings need an encoder model", name);

    const cJSON *in = cJSON_GetObjectItemCaseSensitive(body, "input");
    if (!in || cJSON_IsNull(in)) return ft__http_error(r, 400, "invalid_value", "input", "'input' is required");
    const char **texts = NULL;
    int n = 0;
    if (cJSON_IsString(in)) {
        texts = malloc(sizeof *texts);
        if (texts) texts[n++] = in->valuestring;
    } else if (cJSON_IsArray(in)) {
        int k = cJSON_GetArraySize(in);
        if (k == 0) return ft__http_error(r, 400, "invalid_value", "input", "'input' must not be an empty list");
        if (k > 2048) return ft__http_error(r, 400, "invalid_value", "input", "'input' may hold at most 2048 texts");
        texts = malloc(sizeof *texts * (size_t)k);
        for (const cJSON *c = in->child; c && texts; c = c->next) {
            if (!cJSON_IsString(c)) {
                free(texts);
                if (cJSON_IsNumber(c) || cJSON_IsArray(c))
                    return ft__http_error(r, 400, "unsupported_parameter", "input", "token-id inputs are not supported: send text");
                return ft__http_error(r, 400, "invalid_value", "input", "'input' must be a string or a list of strings, got a list holding %s",
                                      ft__json_type_name(c));
            }
            texts[n++] = c->valuestring;
        }
    } else
        return ft__http_error(r, 400, "invalid_value", "input", "'input' must be a string or a list of strings, got %s", ft__json_type_name(in));
    if (!texts) return ft__http_error(r, 500, "internal_error", NULL, "out of memory");
    for (int i = 0; i < n; i++)
        if (!texts[i][0]) { free(texts); return ft__http_error(r, 400, "invalid_value", "input", "'input' texts must not be empty (text %d is)", i); }

    long dims_asked;
    if (ft__jv_int(body, "dimensions", 1, 1 << 20, 0, &dims_asked, &err) < 0) {
        free(texts);
        return ft__http_error(r, 400, "invalid_value", "dimensions", "%s", err.msg);
    }
    float *vec = NULL;
    int dim = 0;
    int *ntok = calloc((size_t)n, sizeof *ntok);
    int rc = ntok ? ft_engine_embed(r->s->e, name, texts, n, &vec, &dim, ntok) : ft_error(FT_ERR_NOMEM, "out of memory");
    free(texts);
    if (rc < 0) { free(ntok); return ft__http_engine_error(r, rc, "input"); }
    if (dims_asked && dims_asked != dim) {
        free(vec);
        free(ntok);
        return ft__http_error(r, 400, "invalid_value", "dimensions", "'dimensions' must be %d for this model (no truncation)", dim);
    }
    long tokens = 0;
    for (int i = 0; i < n; i++) tokens += ntok[i];
    free(ntok);
    r->prompt_tokens = tokens;

    /* floats written with %.9g (exact float32 round trip), base64 as the client decodes it */
    ft__sb b = {0};
    ft__sb_puts(&b, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < n; i++) {
        ft__sb_printf(&b, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "", i);
        const float *v = vec + (size_t)i * (size_t)dim;
        if (b64) {
            ft__sb_putc(&b, '"');
            base64(&b, (const unsigned char *)v, sizeof(float) * (size_t)dim);
            ft__sb_putc(&b, '"');
        } else {
            ft__sb_putc(&b, '[');
            for (int k = 0; k < dim; k++) ft__sb_printf(&b, k ? ",%.9g" : "%.9g", isfinite(v[k]) ? (double)v[k] : 0.0);
            ft__sb_putc(&b, ']');
        }
        ft__sb_putc(&b, '}');
    }
    ft__sb_puts(&b, "],\"model\":");
    ft__sb_put_json(&b, name, strlen(name), 0);
    ft__sb_printf(&b, ",\"usage\":{\"prompt_tokens\":%ld,\"total_tokens\":%ld}}", tokens, tokens);
    free(vec);
    if (b.err) { ft__sb_free(&b); return ft__http_error(r, 500, "internal_error", NULL, "out of memory"); }
    ft__mhd_result res = ft__http_send_text(r, 200, "application/json", b.p, b.n);
    ft__sb_free(&b);
    return res;
}
