/* cli.c — option parsing and shared helpers for the subcommands. */
#include "cli.h"
#include "finetune/status.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/model.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void print_usage(const ft_opt *opts, const char *usage) {
    fprintf(stdout, "%s\n\noptions:\n", usage);
    for (const ft_opt *o = opts; o->name; o++)
        fprintf(stdout, "  --%-18s %s\n", o->name, o->help ? o->help : "");
}

int ft_parse_opts(int argc, char **argv, ft_opt *opts, const char *usage) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { print_usage(opts, usage); return 1; }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "finetune %s: unexpected argument '%s' (options start with --; see --help)\n", argv[0], a);
            return 2;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        ft_opt *o = NULL;
        for (ft_opt *p = opts; p->name; p++)
            if (strlen(p->name) == nl && strncmp(p->name, name, nl) == 0) { o = p; break; }
        if (!o) {
            fprintf(stderr, "finetune %s: unknown option '%.*s' (see --help)\n", argv[0], (int)nl + 2, a);
            return 2;
        }
        if (o->has_value == FT_OPT_OPTIONAL_VALUE) {  /* --name, --name=V, or --name V when V is not an option */
            if (eq) o->value = eq + 1;
            else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) o->value = argv[++i];
            else o->value = "";
        } else if (o->has_value) {
            if (eq) o->value = eq + 1;
            else if (i + 1 < argc) o->value = argv[++i];
            else { fprintf(stderr, "finetune %s: option --%s needs a value\n", argv[0], o->name); return 2; }
        } else {
            if (eq) { fprintf(stderr, "finetune %s: option --%s takes no value\n", argv[0], o->name); return 2; }
            o->value = "1";
        }
    }
    return 0;
}

static const ft_opt *find(const ft_opt *opts, const char *name) {
    for (const ft_opt *p = opts; p->name; p++) if (strcmp(p->name, name) == 0) return p;
    return NULL;
}

const char *ft_opt_str(const ft_opt *opts, const char *name, const char *def) {
    const ft_opt *o = find(opts, name);
    return o && o->value ? o->value : def;
}

int ft_opt_flag(const ft_opt *opts, const char *name) { const ft_opt *o = find(opts, name); return o && o->value; }

int ft_opt_int(const ft_opt *opts, const char *name, long def, long *out) {
    const char *s = ft_opt_str(opts, name, NULL);
    if (!s) { *out = def; return 0; }
    char *end; errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) { fprintf(stderr, "finetune: --%s: expected an integer, got '%s'\n", name, s); return -1; }
    *out = v;
    return 0;
}

int ft_opt_float(const ft_opt *opts, const char *name, double def, double *out) {
    const char *s = ft_opt_str(opts, name, NULL);
    if (!s) { *out = def; return 0; }
    char *end; errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) { fprintf(stderr, "finetune: --%s: expected a number, got '%s'\n", name, s); return -1; }
    *out = v;
    return 0;
}

/* <repo>/<rel> found from $FINETUNE_HOME or upwards from the executable */
const char *ft_cli_repo_path(const char *rel, char *buf, size_t cap) {
    const char *home = getenv("FINETUNE_HOME");
    if (home && *home) { snprintf(buf, cap, "%s/%s", home, rel); return buf; }
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 3; up++) {
            char *s = strrchr(exe, '/');
            if (!s) break;
            *s = 0;
            snprintf(buf, cap, "%s/%s", exe, rel);
            if (ft_path_exists(buf)) return buf;
        }
    }
    snprintf(buf, cap, "%s", rel);
    return buf;
}

const char *ft_default_data_path(void) {
    static char buf[PATH_MAX];
    return ft_cli_repo_path("data/fundialogues", buf, sizeof buf);
}

const char *ft_default_stopwords_dir(void) {
    static char buf[PATH_MAX];
    return ft_cli_repo_path("data/stopwords", buf, sizeof buf);
}

const char *ft_default_model_dir(void) {
    static char buf[PATH_MAX];
    const char *home = getenv("FINETUNE_HOME");
    if (home && *home) { snprintf(buf, sizeof buf, "%s/models/stories260K", home); return buf; }
    /* <repo>/build/finetune -> <repo>/models/stories260K */
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 3; up++) {
            char *s = strrchr(exe, '/');
            if (!s) break;
            *s = 0;
            snprintf(buf, sizeof buf, "%s/models/stories260K", exe);
            if (ft_path_is_dir(buf)) return buf;
        }
    }
    snprintf(buf, sizeof buf, "models/stories260K");
    return buf;
}

int ft_cli_fail(const char *cmd, int status) {
    const char *msg = ft_last_error();
    fprintf(stderr, "finetune %s: error: %s\n", cmd, msg && *msg ? msg : ft_strerror(status));
    return 1;
}

double ft_cli_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int ft_cli_argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* base_model_name_or_path of an adapter directory into buf; 0 if dir is not an adapter */
static int adapter_base(const char *dir, char *buf, size_t cap) {
    char path[4096], *text;
    if (ft_path_join(path, sizeof path, dir, "adapter_config.json") || !ft_path_exists(path)) return 0;
    if (ft_file_read_all(path, &text, NULL) < 0) return 0;
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *b = j ? cJSON_GetObjectItem(j, "base_model_name_or_path") : NULL;
    int ok = cJSON_IsString(b) && b->valuestring[0];
    if (ok) snprintf(buf, cap, "%s", b->valuestring);
    cJSON_Delete(j);
    return ok ? 1 : -1;
}

const char *ft_cli_tokenizer_dir(const char *dir, char *buf, size_t cap) {
    char tj[4096];
    if (ft_path_join(tj, sizeof tj, dir, "tokenizer.json") == FT_OK && ft_path_exists(tj)) return dir;
    if (adapter_base(dir, buf, cap) == 1) return buf;
    return dir;
}

int ft_cli_weights_precision(const ft_opt *opts, const char *cmd, ft_dtype *weights) {
    const char *p = ft_opt_str(opts, "precision", "f32");
    if (strcmp(p, "f32") == 0) *weights = FT_F32;
    else if (strcmp(p, "bf16") == 0) *weights = FT_BF16;
    else { fprintf(stderr, "finetune %s: --precision must be f32 or bf16, got '%s'\n", cmd, p); return 2; }
    return 0;
}

int ft_cli_load_model(struct ft_model **out, const char *dir, const char *adapter_dir, const ft_backend *be) {
    return ft_cli_load_model_as(out, dir, adapter_dir, be, FT_F32);
}

int ft_cli_load_model_as(struct ft_model **out, const char *dir, const char *adapter_dir, const ft_backend *be, ft_dtype weights) {
    char base[4096];
    int ab = adapter_base(dir, base, sizeof base);
    if (ab < 0) return ft_error(FT_ERR_FORMAT, "%s/adapter_config.json: no base_model_name_or_path; give the base with --model and this directory with --adapter", dir);
    if (ab == 1) {
        if (adapter_dir) return ft_error(FT_ERR_INVALID, "%s is an adapter directory; give its base model with --model", dir);
        adapter_dir = dir;
        dir = base;
    }
    FT_TRY(ft_model_load_quantized(out, dir, be, weights));
    if (adapter_dir) {
        int rc = ft_model_load_adapter(*out, adapter_dir);
        if (rc < 0) { ft_model_free(*out); *out = NULL; return rc; }
        fprintf(stderr, "finetune: LoRA adapter %s on %s (%d modules)\n", adapter_dir, dir, ft_model_lora_count(*out));
    }
    return FT_OK;
}
