/* trial_dir.c — the run directories of "train" trials when a promoted configuration continues
 * (scheduler.continue): does a trial's directory hold a checkpoint to go on from, the copy a continued
 * trial starts from, and the removal of checkpoints nothing needs any more ("cleanup").
 *
 * The copy leaves the parent's directory as it was: a continued trial that is killed and run again starts
 * from a fresh copy, and the parent can be continued again. Files under checkpoints/ are hard links (the
 * trainer writes a checkpoint into a temporary directory and renames it into place, and never changes
 * one afterwards, so sharing them is safe); everything else is copied, because the trainer rewrites files
 * such as metrics.jsonl (cut back to the checkpoint's position on resume) in place. */
#include "hpo_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "finetune/checkpoint.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

int ft__hpo_dir_has_checkpoint(const char *dir) {
    char path[4300];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!ft_path_exists(path)) return 0;
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    DIR *d = opendir(path);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        long long step;
        char tail[8];
        found = sscanf(e->d_name, "step-%lld%7s", &step, tail) == 1;
    }
    closedir(d);
    return found;
}

static int copy_file(const char *src, const char *dst, mode_t mode) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return ft_error(FT_ERR_IO, "%s: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 0777);
    if (out < 0) { close(in); return ft_error(FT_ERR_IO, "%s: %s", dst, strerror(errno)); }
    char buf[1 << 16];
    int rc = FT_OK;
    for (;;) {
        ssize_t got = read(in, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) { rc = ft_error(FT_ERR_IO, "%s: %s", src, strerror(errno)); break; }
        if (got == 0) break;
        for (ssize_t off = 0; off < got;) {
            ssize_t w = write(out, buf + off, (size_t)(got - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) { rc = ft_error(FT_ERR_IO, "%s: %s", dst, strerror(errno)); break; }
            off += w;
        }
        if (rc < 0) break;
    }
    close(in);
    if (close(out) != 0 && rc == FT_OK) rc = ft_error(FT_ERR_IO, "%s: %s", dst, strerror(errno));
    return rc;
}

/* copies the tree src into dst (made), hard-linking files when `link_files`; at depth 0 the run lock
 * and final/ are left out (the continued run writes its own) */
static int copy_tree(const char *src, const char *dst, int depth, int link_files) {
    if (depth > 8) return ft_error(FT_ERR_RANGE, "%s: directories nested too deep", src);
    if (mkdir(dst, 0755) != 0 && errno != EEXIST) return ft_error(FT_ERR_IO, "%s: %s", dst, strerror(errno));
    DIR *d = opendir(src);
    if (!d) return ft_error(FT_ERR_IO, "%s: %s", src, strerror(errno));
    int rc = FT_OK;
    struct dirent *e;
    while (rc == FT_OK && (e = readdir(d))) {
        const char *nm = e->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
        if (depth == 0 && (!strcmp(nm, "lock") || !strcmp(nm, "final"))) continue;
        if (strstr(nm, ".tmp")) continue;   /* a checkpoint being written when its run was killed */
        char a[4300], b[4300];
        snprintf(a, sizeof a, "%s/%s", src, nm);
        snprintf(b, sizeof b, "%s/%s", dst, nm);
        struct stat st;
        if (lstat(a, &st) != 0) { rc = ft_error(FT_ERR_IO, "%s: %s", a, strerror(errno)); break; }
        if (S_ISDIR(st.st_mode)) rc = copy_tree(a, b, depth + 1, link_files || (depth == 0 && !strcmp(nm, "checkpoints")));
        else if (S_ISREG(st.st_mode)) rc = link_files && link(a, b) == 0 ? FT_OK : copy_file(a, b, st.st_mode);
    }
    closedir(d);
    return rc;
}

int ft__hpo_dir_copy_for_continue(const char *src, const char *dst) {
    if (ft_path_exists(dst)) FT_TRY(ft_remove_tree(dst));
    int rc = copy_tree(src, dst, 0, 0);
    if (rc < 0) ft_remove_tree(dst);
    return rc;
}

int ft__hpo_dir_drop_checkpoints(const char *dir) {
    char path[4300];
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    if (!ft_path_exists(path)) return FT_OK;
    return ft_remove_tree(path);
}
