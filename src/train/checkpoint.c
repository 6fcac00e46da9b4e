/* checkpoint.c — see checkpoint.h: the one save / restore path of every trainer task. */
#include "finetune/checkpoint.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "core/crc32c.h"
#include "core/json_util.h"
#include "core/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_MAGIC "FTOPT001"
#define MANIFEST "manifest.json"
#define MANIFEST_FORMAT "finetune-checkpoint-1"
#define MANIFEST_MAX_BYTES (1 << 20)
#define MANIFEST_MAX_FILES 1024

int ft_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? FT_OK : ft_error(FT_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return ft_error(FT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        struct dirent *e;
        int rc = FT_OK;
        while ((e = readdir(d)) && rc == FT_OK) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[4096];
            if (ft_path_join(sub, sizeof sub, path, e->d_name) == FT_OK) rc = ft_remove_tree(sub);
        }
        closedir(d);
        if (rc != FT_OK) return rc;
        if (rmdir(path) != 0) return ft_error(FT_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        return FT_OK;
    }
    if (unlink(path) != 0) return ft_error(FT_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return FT_OK;
}

static void fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) { fsync(fd); close(fd); }
}

int ft_copy_dir_files(const char *src, const char *dst) {
    FT_TRY(ft_mkdirs(dst));
    DIR *d = opendir(src);
    if (!d) return ft_error(FT_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
    struct dirent *e;
    int rc = FT_OK;
    while ((e = readdir(d)) && rc == FT_OK) {
        char a[4096], b[4096];
        if (e->d_name[0] == '.') continue;
        if (ft_path_join(a, sizeof a, src, e->d_name) || ft_path_join(b, sizeof b, dst, e->d_name)) { rc = FT_ERR_RANGE; break; }
        if (ft_path_is_dir(a)) continue;
        ft_mmap mm;
        if ((rc = ft_file_map(&mm, a)) != FT_OK) break;
        rc = ft_file_write_atomic(b, mm.data ? mm.data : "", mm.size);
        ft_file_unmap(&mm);
    }
    closedir(d);
    return rc;
}

int ft_copy_tokenizer_files(const char *src_dir, const char *dst_dir) {
    static const char *names[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                                  "merges.txt", "encoder.json", "vocab.bpe", "vocab.txt", "tokenizer.bin", "tok512.bin",
                                  "generation_config.json", "added_tokens.json", "chat_template.jinja"};
    int copied = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char a[4096], b[4096];
        if (ft_path_join(a, sizeof a, src_dir, names[i]) || ft_path_join(b, sizeof b, dst_dir, names[i])) return FT_ERR_RANGE;
        if (!ft_path_exists(a) || ft_path_is_dir(a)) continue;
        ft_mmap mm;
        FT_TRY(ft_file_map(&mm, a));
        int rc = ft_file_write_atomic(b, mm.data ? mm.data : "", mm.size);
        ft_file_unmap(&mm);
        if (rc < 0) return rc;
        copied++;
    }
    return copied;
}

/* ---- manifest: size and CRC-32C of every file ---- */

/* size and CRC-32C of a regular file, read through a map */
static int file_crc(const char *path, uint64_t *bytes, uint32_t *crc) {
    ft_mmap mm;
    FT_TRY(ft_file_map(&mm, path));
    *bytes = mm.size;
    *crc = 0;
    const unsigned char *p = mm.data;
    for (size_t off = 0; off < mm.size;) {   /* in 64 MiB pieces, each released after use */
        size_t k = mm.size - off < ((size_t)64 << 20) ? mm.size - off : (size_t)64 << 20;
        *crc = ft__crc32c(*crc, p + off, k);
        off += k;
    }
    ft_file_unmap(&mm);
    return FT_OK;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the sorted names of the regular files of dir (but the manifest and temporary files): *names malloc'd */
static int dir_files(const char *dir, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return ft_error(errno == ENOENT ? FT_ERR_NOT_FOUND : FT_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    int cap = 0, rc = FT_OK;
    for (struct dirent *e; (e = readdir(d)) && rc == FT_OK;) {
        char p[4400];
        if (e->d_name[0] == '.' || !strcmp(e->d_name, MANIFEST) || strstr(e->d_name, ".tmp.")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **q = cap <= MANIFEST_MAX_FILES ? realloc(*names, sizeof *q * (size_t)cap) : NULL;
            if (!q) { rc = ft_error(FT_ERR_NOMEM, "%s: too many files", dir); break; }
            *names = q;
        }
        if (!((*names)[*n] = strdup(e->d_name))) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        else (*n)++;
    }
    closedir(d);
    if (*n > 1) qsort(*names, (size_t)*n, sizeof **names, name_cmp);
    return rc;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* dir/manifest.json: the step, and the size and CRC-32C of every file in dir, written last */
static int write_manifest(const char *dir, int64_t step) {
    char **names;
    int n, rc = dir_files(dir, &names, &n);
    ft__sb b = {0};
    ft__sb_printf(&b, "{\"format\": \"%s\", \"step\": %lld, \"files\": [", MANIFEST_FORMAT, (long long)step);
    for (int i = 0; rc == FT_OK && i < n; i++) {
        char p[4400];
        uint64_t bytes;
        uint32_t crc;
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if ((rc = file_crc(p, &bytes, &crc)) < 0) break;
        ft__sb_printf(&b, "%s\n  {\"name\": ", i ? "," : "");
        ft__sb_put_json(&b, names[i], strlen(names[i]), 0);
        ft__sb_printf(&b, ", \"bytes\": %llu, \"crc32c\": \"%08x\"}", (unsigned long long)bytes, crc);
    }
    ft__sb_puts(&b, "]}\n");
    free_names(names, n);
    if (rc == FT_OK && b.err) rc = ft_error(FT_ERR_NOMEM, "%s: out of memory for the manifest", dir);
    char path[4400];
    snprintf(path, sizeof path, "%s/" MANIFEST, dir);
    if (rc == FT_OK) rc = ft_file_write_atomic(path, b.p, b.n);
    ft__sb_free(&b);
    return rc;
}

int ft_ckpt_verify(const char *ckpt_dir) {
    char path[4400];
    snprintf(path, sizeof path, "%s/" MANIFEST, ckpt_dir);
    if (!ft_path_exists(path)) return ft_error(FT_ERR_NOT_FOUND, "%s: no %s (a checkpoint of an older version: not verified)", ckpt_dir, MANIFEST);
    int fd;
    size_t size = 0;
    FT_TRY(ft_file_open_regular(path, &fd, &size));
    close(fd);
    if (size > MANIFEST_MAX_BYTES) return ft_error(FT_ERR_FORMAT, "%s: %zu bytes, more than a manifest holds", path, size);
    cJSON *j;
    FT_TRY(ft__json_parse_file(&j, path));
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(j, "files");
    int rc = FT_OK;
    if (strcmp(ft__json_str(j, "format", ""), MANIFEST_FORMAT) != 0 || !cJSON_IsArray(files))
        rc = ft_error(FT_ERR_FORMAT, "%s: not a checkpoint manifest (format \"%s\" expected, with a list of files)", path, MANIFEST_FORMAT);
    char **names = NULL;
    int n = 0, listed = 0;
    if (rc == FT_OK) rc = dir_files(ckpt_dir, &names, &n);
    for (const cJSON *f = rc == FT_OK ? files->child : NULL; f && rc == FT_OK; f = f->next, listed++) {
        const char *name = ft__json_str(f, "name", NULL), *want = ft__json_str(f, "crc32c", NULL);
        long long bytes = -1;
        if (ft__json_get_i64_in(f, "bytes", -1, 0, INT64_MAX, &bytes, path) < 0 || !name || !want || !*name || strchr(name, '/') ||
            name[0] == '.' || strlen(want) != 8 || bytes < 0) {
            rc = ft_error(FT_ERR_FORMAT, "%s: file entry %d is malformed (needs a plain \"name\", \"bytes\" and an 8-digit \"crc32c\")", path, listed);
            break;
        }
        char fp[4400];
        snprintf(fp, sizeof fp, "%s/%s", ckpt_dir, name);
        uint64_t got_bytes;
        uint32_t got_crc;
        if ((rc = file_crc(fp, &got_bytes, &got_crc)) < 0) {
            rc = ft_error_wrap(rc, "checkpoint %s: %s is listed in the manifest", ckpt_dir, name);
            break;
        }
        char got[16];
        snprintf(got, sizeof got, "%08x", got_crc);
        if (got_bytes != (uint64_t)bytes)
            rc = ft_error(FT_ERR_FORMAT, "checkpoint %s: %s has %llu bytes, the manifest says %lld (truncated or extended after it was written)",
                          ckpt_dir, name, (unsigned long long)got_bytes, bytes);
        else if (strcmp(got, want) != 0)
            rc = ft_error(FT_ERR_FORMAT, "checkpoint %s: %s has CRC-32C %s, the manifest says %s (its bytes changed after it was written)",
                          ckpt_dir, name, got, want);
    }
    /* every file of the directory must be in the manifest, and no more */
    for (int i = 0; rc == FT_OK && i < n; i++) {
        int found = 0;
        for (const cJSON *f = files->child; f && !found; f = f->next) found = !strcmp(ft__json_str(f, "name", ""), names[i]);
        if (!found) rc = ft_error(FT_ERR_FORMAT, "checkpoint %s: %s is not in the manifest (added after it was written)", ckpt_dir, names[i]);
    }
    if (rc == FT_OK && listed != n)
        rc = ft_error(FT_ERR_FORMAT, "checkpoint %s: the manifest lists %d files, the directory holds %d", ckpt_dir, listed, n);
    free_names(names, n);
    cJSON_Delete(j);
    return rc;
}

/* ---- the checkpoints of a run ---- */

static int list_ckpts(const char *ckdir, int64_t *steps, int cap) {
    DIR *d = opendir(ckdir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long s;
        char tail[8];
        if (sscanf(e->d_name, "step-%lld%7s", &s, tail) == 1 && n < cap) steps[n++] = s;
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* sort ascending */
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) { int64_t t = steps[j]; steps[j] = steps[j - 1]; steps[j - 1] = t; }
    return n;
}

int ft_ckpt_list(const char *run_dir, int64_t *steps, int cap) {
    char ckdir[4096];
    if (ft_path_join(ckdir, sizeof ckdir, run_dir, "checkpoints") < 0) return 0;
    return list_ckpts(ckdir, steps, cap);
}

int ft_ckpt_save_io(const char *run_dir, int64_t step, const ft_ckpt_io *io, ft_optimizer *o, const char *state_json, int keep) {
    char ckdir[4096], final_dir[4200], tmp_dir[4300], path[4400];
    FT_TRY(ft_path_join(ckdir, sizeof ckdir, run_dir, "checkpoints"));
    FT_TRY(ft_mkdirs(ckdir));
    snprintf(final_dir, sizeof final_dir, "%s/step-%08lld", ckdir, (long long)step);
    snprintf(tmp_dir, sizeof tmp_dir, "%s.tmp", final_dir);
    ft_remove_tree(tmp_dir);
    int rc = io->save(io->ctx, tmp_dir);
    if (rc == FT_OK) {
        size_t nb;
        void *state = ft_optim_state(o, &nb);
        int64_t t = ft_optim_steps(o);
        uint64_t n64 = nb;
        snprintf(path, sizeof path, "%s/optimizer.bin", tmp_dir);
        ft_atomic_file f;
        rc = ft_atomic_open(&f, path);
        if (rc == FT_OK) {
            ft_atomic_write(&f, CKPT_MAGIC, 8);
            ft_atomic_write(&f, &t, sizeof t);
            ft_atomic_write(&f, &n64, sizeof n64);
            ft_atomic_write(&f, state, nb);
            rc = ft_atomic_commit(&f);
            if (rc != FT_OK) ft_atomic_abort(&f);
        }
    }
    if (rc == FT_OK) {
        snprintf(path, sizeof path, "%s/state.json", tmp_dir);
        rc = ft_file_write_atomic(path, state_json, strlen(state_json));
    }
    if (rc == FT_OK) rc = write_manifest(tmp_dir, step);   /* last: it vouches for the files above */
    if (rc == FT_OK) {
        fsync_path(tmp_dir);
        ft_remove_tree(final_dir);
        if (rename(tmp_dir, final_dir) != 0) rc = ft_error(FT_ERR_IO, "%s: cannot rename checkpoint into place: %s", final_dir, strerror(errno));
        else fsync_path(ckdir);
    }
    if (rc != FT_OK) { int keep_rc = rc; ft_remove_tree(tmp_dir); return ft_error_wrap(keep_rc, "saving checkpoint step %lld", (long long)step); }
    int64_t steps[4096];
    int n = list_ckpts(ckdir, steps, 4096);
    for (int i = 0; i + keep < n; i++) {
        snprintf(path, sizeof path, "%s/step-%08lld", ckdir, (long long)steps[i]);
        ft_remove_tree(path);
    }
    return FT_OK;
}

int ft_ckpt_latest(const char *run_dir, char *path, size_t cap) {
    char ckdir[4096];
    FT_TRY(ft_path_join(ckdir, sizeof ckdir, run_dir, "checkpoints"));
    int64_t steps[4096];
    int n = list_ckpts(ckdir, steps, 4096);
    for (int i = n - 1; i >= 0; i--) {
        char st[4400];
        snprintf(path, cap, "%s/step-%08lld", ckdir, (long long)steps[i]);
        snprintf(st, sizeof st, "%s/state.json", path);
        if (ft_path_exists(st)) return FT_OK;
    }
    return ft_error(FT_ERR_NOT_FOUND, "%s: no checkpoint to resume from (looked in %s)", run_dir, ckdir);
}

int ft_ckpt_load_io(const char *ckpt_dir, const ft_ckpt_io *io, ft_optimizer *o, char **state_json) {
    *state_json = NULL;
    FT_TRY(io->load(io->ctx, ckpt_dir));
    char path[4200];
    snprintf(path, sizeof path, "%s/optimizer.bin", ckpt_dir);
    ft_mmap mm;
    FT_TRY(ft_file_map(&mm, path));
    size_t nb;
    void *state = ft_optim_state(o, &nb);
    int rc = FT_OK;
    uint64_t n64 = 0;
    int64_t t = 0;
    if (mm.size < 24 || memcmp(mm.data, CKPT_MAGIC, 8) != 0) rc = ft_error(FT_ERR_FORMAT, "%s: not a finetune optimizer state", path);
    else {
        memcpy(&t, (char *)mm.data + 8, 8);
        memcpy(&n64, (char *)mm.data + 16, 8);
        if (n64 != nb)
            rc = ft_error(FT_ERR_FORMAT, "%s: optimizer state has %llu bytes, this run needs %zu (different model or optimizer?)", path, (unsigned long long)n64, nb);
        else if (mm.size != 24 + nb)
            rc = ft_error(FT_ERR_FORMAT, "%s: the file has %zu bytes of state after its 24-byte header, its header announces %llu (truncated or padded)",
                          path, mm.size - 24, (unsigned long long)n64);
        else if (t < 0)
            rc = ft_error(FT_ERR_FORMAT, "%s: optimizer step count %lld is negative", path, (long long)t);
        else { memcpy(state, (char *)mm.data + 24, nb); ft_optim_set_steps(o, t); }
    }
    ft_file_unmap(&mm);
    if (rc != FT_OK) return rc;
    snprintf(path, sizeof path, "%s/state.json", ckpt_dir);
    return ft_file_read_all(path, state_json, NULL);
}
