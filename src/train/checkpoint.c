/* checkpoint.c — see checkpoint.h: the one save / restore path of every trainer task. */
#include "finetune/checkpoint.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_MAGIC "FTOPT001"

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
        if (n64 != nb || mm.size != 24 + nb)
            rc = ft_error(FT_ERR_FORMAT, "%s: optimizer state has %llu bytes, this run needs %zu (different model or optimizer?)", path, (unsigned long long)n64, nb);
        else { memcpy(state, (char *)mm.data + 24, nb); ft_optim_set_steps(o, t); }
    }
    ft_file_unmap(&mm);
    if (rc != FT_OK) return rc;
    snprintf(path, sizeof path, "%s/state.json", ckpt_dir);
    return ft_file_read_all(path, state_json, NULL);
}
