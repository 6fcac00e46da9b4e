/* http_adapters.c — LoRA adapters at run time, without a restart:
 *   GET    /v1/adapters           {"object": "list", "data": [{"id", "object": "adapter", "base", "path", "created", "kind"}]}
 *   POST   /v1/adapters           {"name", "path", "base"?} -> 201 and the adapter object (409 if the name is taken)
 *   DELETE /v1/adapters/{name}    {"id", "object": "adapter", "deleted": true}
 * Requests already running with an adapter finish with it (the engine reference-counts adapters); new
 * requests naming a deleted adapter get 404. Loading reads a directory on the server's disk: keep the
 * server behind an API key when it listens beyond loopback. */
#include "serve/http_internal.h"
#include "finetune/status.h"

#include <string.h>

static cJSON *adapter_object(const ft_engine_entry *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", e->name);
    cJSON_AddStringToObject(o, "object", "adapter");
    cJSON_AddStringToObject(o, "base", e->base);
    cJSON_AddStringToObject(o, "path", e->dir);
    cJSON_AddNumberToObject(o, "created", (double)e->created);
    cJSON_AddStringToObject(o, "kind", e->kind == FT_ENGINE_ENCODER ? "encoder" : "generator");
    return o;
}

ft__mhd_result ft__http_adapters_list(ft__http_req *r) { return ft__http_send_entry_list(r, 1, adapter_object); }

ft__mhd_result ft__http_adapters_load(ft__http_req *r, const cJSON *body) {
    ft__jerr err = {{0}, NULL};
    const char *name, *path, *base;
    static const char *const known[] = {"name", "path", "base", NULL};
    if (ft__jv_known(body, known, 0, &err) < 0) return ft__http_error(r, 400, "unknown_parameter", err.param, "%s", err.msg);
    if (ft__jv_str(body, "name", 1, 1, &name, &err) < 0 || ft__jv_str(body, "path", 1, 1, &path, &err) < 0 ||
        ft__jv_str(body, "base", 0, 1, &base, &err) < 0)
        return ft__http_error(r, 400, "invalid_value", err.param, "%s", err.msg);
    if (!ft__name_valid(name))
        return ft__http_error(r, 400, "invalid_value", "name", "'name' must be 1 to 127 characters of letters, digits, '.', '_', '-', ':'");
    if (base && !ft__name_valid(base))
        return ft__http_error(r, 404, "model_not_found", "base", "no base model '%.200s'", base);
    ft_engine_entry *e = NULL;
    if (ft_engine_find(r->s->e, name, &e) == FT_OK) {
        ft_engine_entries_free(e, 1);
        return ft__http_error(r, 409, "name_taken", "name", "a model or adapter named '%s' is already loaded (DELETE /v1/adapters/%s first)", name, name);
    }
    if (base) {
        if (ft_engine_find(r->s->e, base, &e) != FT_OK)
            return ft__http_error(r, 404, "model_not_found", "base", "no base model '%s'", base);
        int is_adapter = e->is_adapter;
        ft_engine_entries_free(e, 1);
        if (is_adapter) return ft__http_error(r, 400, "invalid_value", "base", "'%s' is an adapter: the base must be a model", base);
    }
    int rc = ft_engine_load_adapter(r->s->e, name, base, path);
    if (rc < 0) {
        if (rc == FT_ERR_BUSY) return ft__http_engine_error(r, rc, NULL);
        return ft__http_error(r, 400, "adapter_load_failed", "path", "cannot load adapter '%s' from %s: %s", name, path, ft_last_error());
    }
    ft__monitor_sync_names(r->s);   /* its name may label metrics now */
    if (ft_engine_find(r->s->e, name, &e) != FT_OK)
        return ft__http_error(r, 500, "internal_error", NULL, "adapter '%s' vanished after loading", name);
    snprintf(r->adapter, sizeof r->adapter, "%s", name);
    snprintf(r->model, sizeof r->model, "%s", e->base);
    cJSON *o = adapter_object(e);
    ft_engine_entries_free(e, 1);
    return ft__http_send_json(r, 201, o);
}

ft__mhd_result ft__http_adapters_delete(ft__http_req *r, const char *name) {
    ft_engine_entry *e = NULL;
    if (!ft__name_valid(name) || ft_engine_find(r->s->e, name, &e) != FT_OK)
        return ft__http_error(r, 404, "adapter_not_found", NULL, "no adapter '%.200s'", name);
    int is_adapter = e->is_adapter;
    char base[128];
    snprintf(base, sizeof base, "%s", e->base);
    ft_engine_entries_free(e, 1);
    if (!is_adapter) return ft__http_error(r, 400, "invalid_value", NULL, "'%s' is a base model, not an adapter (models are not unloaded at run time)", name);
    int rc = ft_engine_unload_adapter(r->s->e, name);
    if (rc == FT_ERR_NOT_FOUND) return ft__http_error(r, 404, "adapter_not_found", NULL, "no adapter '%s'", name);
    if (rc < 0) return ft__http_engine_error(r, rc, NULL);
    snprintf(r->adapter, sizeof r->adapter, "%s", name);
    snprintf(r->model, sizeof r->model, "%s", base);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", name);
    cJSON_AddStringToObject(o, "object", "adapter");
    cJSON_AddBoolToObject(o, "deleted", 1);
    return ft__http_send_json(r, 200, o);
}
