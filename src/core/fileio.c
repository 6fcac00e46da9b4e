/* fileio.c — see fileio.h. */
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens path for reading, refusing what is not a regular file: a directory, a FIFO (whose open and
 * reads would block until a writer comes), a device or a socket. O_NONBLOCK keeps the open itself from
 * blocking on a FIFO; it is cleared again for the regular file. */
int ft_file_open_regular(const char *path, int *fd_out, size_t *size) {
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return ft_error(errno == ENOENT ? FT_ERR_NOT_FOUND : FT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return ft_error(FT_ERR_IO, "%s: cannot stat: %s", path, strerror(errno)); }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        const char *what = S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                         : S_ISSOCK(st.st_mode) ? "a socket" : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "not a regular file";
        return ft_error(FT_ERR_IO, "%s: is %s; expected a regular file", path, what);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    if (size) *size = (size_t)st.st_size;
    return FT_OK;
}

int ft_file_read_all(const char *path, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    int fd;
    size_t n = 0;
    FT_TRY(ft_file_open_regular(path, &fd, &n));
    char *buf = n < SIZE_MAX ? malloc(n + 1) : NULL;
    if (!buf) { close(fd); return ft_error(FT_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n); }
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { int e = errno; free(buf); close(fd); return ft_error(FT_ERR_IO, "%s: read failed: %s", path, strerror(e)); }
        if (k == 0) break;   /* shrank meanwhile */
        got += (size_t)k;
    }
    close(fd);
    if (got != n) { free(buf); return ft_error(FT_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, n); }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return FT_OK;
}

int ft_file_map(ft_mmap *m, const char *path) {
    m->data = NULL; m->size = 0;
    int fd;
    size_t size = 0;
    FT_TRY(ft_file_open_regular(path, &fd, &size));
    m->size = size;
    if (m->size > 0) {
        void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) { close(fd); return ft_error(FT_ERR_IO, "%s: mmap failed: %s", path, strerror(errno)); }
        m->data = p;
    }
    close(fd);
    return FT_OK;
}

void ft_file_unmap(ft_mmap *m) {
    if (m->data) munmap(m->data, m->size);
    m->data = NULL; m->size = 0;
}

int ft_path_exists(const char *path) { struct stat st; return stat(path, &st) == 0; }
int ft_path_is_dir(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISDIR(st.st_mode); }

int ft_path_join(char *buf, size_t cap, const char *dir, const char *name) {
    size_t dl = strlen(dir);
    int n = (dl > 0 && dir[dl - 1] == '/') ? snprintf(buf, cap, "%s%s", dir, name) : snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return ft_error(FT_ERR_RANGE, "path too long: %s/%s", dir, name);
    return FT_OK;
}

int ft_mkdirs(const char *path) {
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp) return ft_error(FT_ERR_INVALID, "bad directory path '%s'", path);
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == 0) {
            char c = tmp[i];
            tmp[i] = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return ft_error(FT_ERR_IO, "%s: cannot create directory: %s", tmp, strerror(errno));
            tmp[i] = c;
        }
    }
    if (!ft_path_is_dir(path)) return ft_error(FT_ERR_IO, "%s: exists and is not a directory", path);
    return FT_OK;
}

int ft_atomic_open(ft_atomic_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    if (snprintf(f->path, sizeof f->path, "%s", path) >= (int)sizeof f->path ||
        snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof f->tmp)
        return ft_error(FT_ERR_RANGE, "path too long: %s", path);
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) return ft_error(FT_ERR_IO, "%s: cannot create: %s", f->tmp, strerror(errno));
    return FT_OK;
}

int ft_atomic_write(ft_atomic_file *f, const void *data, size_t n) {
    if (f->failed) return FT_ERR_IO;
    if (n && fwrite(data, 1, n, f->fp) != n) {
        f->failed = 1;
        return ft_error(FT_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    }
    return FT_OK;
}

static void fsync_dir_of(const char *path) {
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    int fd = open(dirname(d), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) { fsync(fd); close(fd); }
}

int ft_atomic_commit(ft_atomic_file *f) {
    if (!f->fp) return ft_error(FT_ERR_INVALID, "%s: not open", f->path);
    int rc = FT_OK;
    if (f->failed) rc = FT_ERR_IO;
    if (rc == FT_OK && fflush(f->fp) != 0) rc = ft_error(FT_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    if (rc == FT_OK && fsync(fileno(f->fp)) != 0) rc = ft_error(FT_ERR_IO, "%s: fsync failed: %s", f->path, strerror(errno));
    if (fclose(f->fp) != 0 && rc == FT_OK) rc = ft_error(FT_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
    f->fp = NULL;
    if (rc == FT_OK && rename(f->tmp, f->path) != 0) rc = ft_error(FT_ERR_IO, "%s: rename failed: %s", f->path, strerror(errno));
    if (rc != FT_OK) { unlink(f->tmp); return rc; }
    fsync_dir_of(f->path);
    f->tmp[0] = 0;
    return FT_OK;
}

void ft_atomic_abort(ft_atomic_file *f) {
    if (f->fp) { fclose(f->fp); f->fp = NULL; }
    if (f->tmp[0]) { unlink(f->tmp); f->tmp[0] = 0; }
}

int ft_file_write_atomic(const char *path, const void *data, size_t n) {
    ft_atomic_file f;
    FT_TRY(ft_atomic_open(&f, path));
    int rc = ft_atomic_write(&f, data, n);
    if (rc != FT_OK) { ft_atomic_abort(&f); return rc; }
    return ft_atomic_commit(&f);
}
