/* cmd_serve.c — `finetune serve`: models and adapters behind the HTTP server (server.h) until SIGTERM /
 * SIGINT, which drains the requests in flight and exits 0. The listener starts first (GET /health answers
 * "loading"), then the models load, then /health says "ok". */
#include "cli.h"
#include "finetune/backend.h"
#include "finetune/chat.h"
#include "finetune/fileio.h"
#include "finetune/server.h"
#include "finetune/serve.h"
#include "finetune/status.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 64

typedef struct serve_item { char name[128]; const char *dir; const char *base; char *buf; } serve_item;

/* --model / --adapter may repeat: collected here (ft_parse_opts keeps the last one only) */
static int collect(int argc, char **argv, const char *opt, const char **vals, int *n) {
    size_t ol = strlen(opt);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, opt, ol) != 0) continue;
        const char *v = NULL;
        if (a[2 + ol] == '=') v = a + 3 + ol;
        else if (a[2 + ol] == '\0' && i + 1 < argc) v = argv[++i];
        else continue;
        if (*n == MAX_ITEMS) { fprintf(stderr, "finetune serve: at most %d --%s options\n", MAX_ITEMS, opt); return -1; }
        vals[(*n)++] = v;
    }
    return 0;
}

/* "NAME=DIR" (or "DIR": the name is its last path component), adapters also "NAME=DIR@BASE" */
static int split_item(const char *v, int adapter, serve_item *it) {
    memset(it, 0, sizeof *it);
    it->buf = strdup(v);
    if (!it->buf) return -1;
    char *s = it->buf, *eq = strchr(s, '=');
    char *dir = eq ? eq + 1 : s;
    if (adapter) {
        char *at = strrchr(dir, '@');
        if (at) { *at = '\0'; it->base = at + 1; }
    }
    if (eq) {
        *eq = '\0';
        snprintf(it->name, sizeof it->name, "%s", s);
    } else {
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/') dir[--n] = '\0';
        const char *slash = strrchr(dir, '/');
        snprintf(it->name, sizeof it->name, "%s", slash ? slash + 1 : dir);
    }
    it->dir = dir;
    if (!*it->name || !*it->dir || (it->base && !*it->base)) return -1;
    return 0;
}

/* keys from a file: one per line; blank lines and lines starting with '#' skipped */
static int read_keys(const char *path, char **text, const char **keys, int *n) {
    size_t len;
    if (ft_file_read_all(path, text, &len) < 0) return -1;
    for (char *line = strtok(*text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        while (*line == ' ' || *line == '\t') line++;
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == ' ' || line[l - 1] == '\t')) line[--l] = '\0';
        if (!*line || *line == '#') continue;
        if (*n == MAX_ITEMS) break;
        keys[(*n)++] = line;
    }
    return 0;
}

int ft_cmd_serve(int argc, char **argv) {
    ft_opt opts[] = {
        {"model", 1, "NAME=DIR: a model directory (generator or encoder) served as NAME; repeat for more (default: the embedded stories260K as \"default\")", NULL},
        {"adapter", 1, "NAME=ADAPTER_DIR[@BASE]: a PEFT LoRA adapter served as NAME over model BASE (default: the one it fits); repeat for more", NULL},
        {"host", 1, "address to listen on (default 127.0.0.1; 0.0.0.0 or :: for every interface)", NULL},
        {"port", 1, "port (default 8080; 0 = any free port, printed)", NULL},
        {"api-key", 1, "require 'Authorization: Bearer KEY' on every route but /health", NULL},
        {"api-key-file", 1, "the same with keys read from a file (one per line)", NULL},
        {"parallel", 1, "sequences generated together per model (engine slots; default 8)", NULL},
        {"slot-tokens", 1, "KV-cache tokens per slot: the longest prompt + completion served (default: the model's context length); the cache holds parallel x slot-tokens per generator", NULL},
        {"quant", 1, "quantize base weights on load: int8 or nf4 (default: none, f32)", NULL},
        {"precision", 1, "f32 (default) or bf16: the generators' matmul weights rounded to bf16 at load (half the memory read per token; needs AVX-512)", NULL},
        {"chat-template", 1, "a built-in chat template (chatml, llama2, llama3, llama3.1, mistral, zephyr, alpaca) for generators whose directory has none (default: they chat in the plain 'User: ...\\nAssistant:' layout)", NULL},
        {"log-file", 1, "request log, one JSON line per request (default: stderr; 'none' = off)", NULL},
        {"log-sample", 1, "fraction of successful requests logged (default 1; errors always)", NULL},
        {"max-queue", 1, "requests waiting per model beyond the running ones before 503 (default 64)", NULL},
        {"rate-limit", 1, "requests/s per API key (or client address without keys), burst 2x; 429 beyond (default: off)", NULL},
        {"max-body", 1, "largest request body in bytes (default 1048576; 413 above)", NULL},
        {"max-connections", 1, "connections at once (default 256)", NULL},
        {"timeout", 1, "seconds an idle connection is kept (default 60)", NULL},
        {"drain-timeout", 1, "on SIGTERM / SIGINT, seconds to let running requests finish (default 30)", NULL},
        {"backend", 1, "cpu (default) or ref (scalar reference kernels)", NULL},
        {"threads", 1, "compute threads (default: all cores)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts,
        "usage: finetune serve [--model NAME=DIR ...] [--adapter NAME=DIR[@BASE] ...] [--host 127.0.0.1] [--port 8080]\n"
        "                      [--api-key KEY | --api-key-file F] [--parallel N] [--quant int8|nf4 | --precision bf16] [--log-file F]\n"
        "                      [--log-sample R] [--max-queue N] [--rate-limit R] [--chat-template NAME] [--backend cpu|ref] [--threads N]");
    if (prc) return prc == 1 ? 0 : prc;
    long port, parallel, max_queue, max_body, max_conn, timeout, threads, slot_tokens;
    double rate, sample, drain;
    if (ft_opt_int(opts, "port", 8080, &port) || ft_opt_int(opts, "parallel", 8, &parallel) || ft_opt_int(opts, "slot-tokens", 0, &slot_tokens) ||
        ft_opt_int(opts, "max-queue", 64, &max_queue) || ft_opt_int(opts, "max-body", 1 << 20, &max_body) ||
        ft_opt_int(opts, "max-connections", 256, &max_conn) || ft_opt_int(opts, "timeout", 60, &timeout) ||
        ft_opt_int(opts, "threads", 0, &threads) || ft_opt_float(opts, "rate-limit", 0, &rate) ||
        ft_opt_float(opts, "log-sample", 1, &sample) || ft_opt_float(opts, "drain-timeout", 30, &drain))
        return 2;
    if (port < 0 || port > 65535 || parallel < 1 || slot_tokens < 0 || slot_tokens > (1L << 24) || max_queue < 0 || max_body < 1 || max_conn < 1 || timeout < 1 ||
        rate < 0 || sample < 0 || sample > 1 || drain < 0) {
        fprintf(stderr, "finetune serve: invalid value: need 0 <= --port <= 65535, --parallel >= 1, --slot-tokens >= 0, --max-queue >= 0, "
                        "--max-body >= 1, --max-connections >= 1, --timeout >= 1, --rate-limit >= 0, 0 <= --log-sample <= 1, --drain-timeout >= 0\n");
        return 2;
    }
    const ft_backend *be = ft_backend_by_name(ft_opt_str(opts, "backend", "cpu"));
    if (!be) { fprintf(stderr, "finetune serve: unknown backend '%s' (cpu, ref)\n", ft_opt_str(opts, "backend", "")); return 2; }
    const char *quant = ft_opt_str(opts, "quant", NULL);
    ft_dtype q = FT_F32;
    if (quant && strcmp(quant, "int8") == 0) q = FT_Q8_ROW;
    else if (quant && strcmp(quant, "nf4") == 0) q = FT_NF4;
    else if (quant) { fprintf(stderr, "finetune serve: --quant must be int8 or nf4, got '%s'\n", quant); return 2; }
    ft_dtype weights;
    if (ft_cli_weights_precision(opts, "serve", &weights)) return 2;
    if (weights == FT_BF16 && quant) { fprintf(stderr, "finetune serve: --precision bf16 and --quant are two storages of the same weights: pick one\n"); return 2; }
    if (weights == FT_BF16) q = FT_BF16;
    const char *chat_template = ft_opt_str(opts, "chat-template", NULL);
    if (chat_template && !ft_chat_builtin_source(chat_template)) {
        fprintf(stderr, "finetune serve: unknown --chat-template '%s' (chatml, llama2, llama3, llama3.1, mistral, zephyr, alpaca)\n", chat_template);
        return 2;
    }
    if (ft_opt_str(opts, "api-key", NULL) && ft_opt_str(opts, "api-key-file", NULL)) {
        fprintf(stderr, "finetune serve: give --api-key or --api-key-file, not both\n");
        return 2;
    }
    if (threads > 0) ft_set_threads((int)threads);

    const char *model_vals[MAX_ITEMS], *adapter_vals[MAX_ITEMS], *keys[MAX_ITEMS];
    int n_models = 0, n_adapters = 0, n_keys = 0;
    if (collect(argc, argv, "model", model_vals, &n_models) < 0 || collect(argc, argv, "adapter", adapter_vals, &n_adapters) < 0)
        return 2;
    serve_item models[MAX_ITEMS], adapters[MAX_ITEMS];
    int status = 0;
    char *key_text = NULL;
    for (int i = 0; i < n_models; i++)
        if (split_item(model_vals[i], 0, &models[i]) < 0) {
            fprintf(stderr, "finetune serve: --model expects NAME=DIR, got '%s'\n", model_vals[i]);
            for (int k = 0; k <= i; k++) free(models[k].buf);
            return 2;
        }
    if (n_models == 0) {
        memset(&models[0], 0, sizeof models[0]);
        snprintf(models[0].name, sizeof models[0].name, "default");
        models[0].dir = ft_default_model_dir();
        n_models = 1;
    }
    for (int i = 0; i < n_adapters; i++)
        if (split_item(adapter_vals[i], 1, &adapters[i]) < 0) {
            fprintf(stderr, "finetune serve: --adapter expects NAME=DIR[@BASE], got '%s'\n", adapter_vals[i]);
            for (int k = 0; k < n_models; k++) free(models[k].buf);
            for (int k = 0; k <= i; k++) free(adapters[k].buf);
            return 2;
        }

    ft_engine *e = NULL;
    ft_server *srv = NULL;
    FILE *log = NULL;
    int own_log = 0;
    if (ft_opt_str(opts, "api-key", NULL)) keys[n_keys++] = ft_opt_str(opts, "api-key", NULL);
    else if (ft_opt_str(opts, "api-key-file", NULL)) {
        if (read_keys(ft_opt_str(opts, "api-key-file", NULL), &key_text, keys, &n_keys) < 0 || n_keys == 0) {
            if (n_keys == 0 && key_text) ft_error(FT_ERR_INVALID, "%s holds no key", ft_opt_str(opts, "api-key-file", NULL));
            status = ft_cli_fail("serve", FT_ERR_INVALID);
            goto done;
        }
    }
    const char *log_path = ft_opt_str(opts, "log-file", NULL);
    if (!log_path || strcmp(log_path, "-") == 0) log = stderr;
    else if (strcmp(log_path, "none") != 0) {
        log = fopen(log_path, "a");
        if (!log) { fprintf(stderr, "finetune serve: cannot open --log-file %s\n", log_path); status = 1; goto done; }
        own_log = 1;
    }

    /* the signals are taken by sigwait below: blocked before any thread starts, so every thread inherits the mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    ft_engine_params ep = ft_engine_default_params();
    ep.be = be;
    ep.quant = q;
    ep.n_slots = (int)parallel;
    ep.slot_tokens = (int)slot_tokens;
    ep.max_queue = (int)max_queue;
    ep.chat_template = chat_template;
    int rc = ft_engine_create(&e, &ep);
    if (rc < 0) { status = ft_cli_fail("serve", rc); goto done; }
    ft_server_params sp = ft_server_default_params();
    sp.host = ft_opt_str(opts, "host", "127.0.0.1");
    sp.port = (int)port;
    sp.api_keys = keys;
    sp.n_api_keys = n_keys;
    sp.max_body_bytes = (size_t)max_body;
    sp.max_connections = (int)max_conn;
    sp.timeout_s = (int)timeout;
    sp.rate_limit = rate;
    sp.log = log;
    sp.log_sample = sample;
    sp.start_loading = 1;
    rc = ft_server_start(&srv, e, &sp);
    if (rc < 0) { status = ft_cli_fail("serve", rc); goto done; }
    int bound = ft_server_port(srv);
    const char *host = sp.host;
    int v6 = strchr(host, ':') != NULL;
    const char *shown = strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : strcmp(host, "::") == 0 ? "[::1]" : host;
    fprintf(stderr, "finetune serve: listening on http://%s%s%s:%d (loading models...)\n", v6 && shown == host ? "[" : "",
            shown, v6 && shown == host ? "]" : "", bound);
    for (int i = 0; i < n_models && status == 0; i++) {
        rc = ft_engine_load_model(e, models[i].name, models[i].dir);
        if (rc < 0) { ft_error_wrap(rc, "--model %s=%s", models[i].name, models[i].dir); status = ft_cli_fail("serve", rc); }
    }
    for (int i = 0; i < n_adapters && status == 0; i++) {
        rc = ft_engine_load_adapter(e, adapters[i].name, adapters[i].base, adapters[i].dir);
        if (rc < 0) { ft_error_wrap(rc, "--adapter %s=%s", adapters[i].name, adapters[i].dir); status = ft_cli_fail("serve", rc); }
    }
    if (status) goto done;
    ft_server_set_ready(srv, 1);

    ft_engine_entry *list = NULL;
    int n_list = 0;
    const char *gen = NULL, *enc = NULL, *emb = NULL;
    if (ft_engine_list(e, &list, &n_list) == FT_OK) {
        fprintf(stderr, "finetune serve: ready; serving:\n");
        for (int i = 0; i < n_list; i++) {
            const ft_engine_entry *x = &list[i];
            if (x->is_adapter)
                fprintf(stderr, "  %-20s adapter over %s (%s)\n", x->name, x->base, x->dir);
            else
                fprintf(stderr, "  %-20s %s%s (%s)\n", x->name, x->kind == FT_ENGINE_ENCODER ? "encoder: " : "generator",
                        x->kind != FT_ENGINE_ENCODER ? ""
                        : x->embedding_only ? "embeddings only (no trained task head: /v1/embeddings)"
                                            : ft_encoder_task_name(x->task), x->dir);
            if (x->kind == FT_ENGINE_GENERATOR && !gen) gen = x->name;
            if (x->kind == FT_ENGINE_ENCODER && !x->embedding_only && !enc) enc = x->name;
            if (x->kind == FT_ENGINE_ENCODER && x->embedding_only && !emb) emb = x->name;
        }
        const char *auth = n_keys ? " -H 'Authorization: Bearer $KEY'" : "";
        char base_url[300];
        snprintf(base_url, sizeof base_url, "http://%s%s%s:%d", v6 && shown == host ? "[" : "", shown, v6 && shown == host ? "]" : "", bound);
        if (gen || enc || emb) fprintf(stderr, "try:\n");
        if (gen)
            fprintf(stderr, "  curl -s %s/v1/completions%s -H 'Content-Type: application/json' \\\n"
                            "       -d '{\"model\": \"%s\", \"prompt\": \"Once upon a time\", \"max_tokens\": 32}'\n",
                    base_url, auth, gen);
        if (enc)
            fprintf(stderr, "  curl -s %s/models/%s/predict%s -H 'Content-Type: application/json' -d '{\"text\": \"a gorgeous film\"}'\n",
                    base_url, enc, auth);
        if (emb)
            fprintf(stderr, "  curl -s %s/v1/embeddings%s -H 'Content-Type: application/json' -d '{\"model\": \"%s\", \"input\": \"a gorgeous film\"}'\n",
                    base_url, auth, emb);
        fprintf(stderr, "OpenAI clients: base_url=%s/v1   (stop with Ctrl-C or SIGTERM: running requests finish first)\n", base_url);
        ft_engine_entries_free(list, n_list);
    }

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {}
    fprintf(stderr, "finetune serve: %s: draining (up to %.0f s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT", drain);
    int cut = ft_server_stop(srv, drain);
    srv = NULL;
    if (cut > 0) fprintf(stderr, "finetune serve: %d requests were cut at the drain deadline\n", cut);
    fprintf(stderr, "finetune serve: stopped\n");
done:
    if (srv) ft_server_stop(srv, 0);
    ft_engine_free(e);
    if (own_log) fclose(log);
    free(key_text);
    for (int i = 0; i < n_models; i++) free(models[i].buf);
    for (int i = 0; i < n_adapters; i++) free(adapters[i].buf);
    return status;
}
