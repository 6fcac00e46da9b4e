/* run_lock.c — one run per directory: an advisory lock (flock) on RUN/lock, held for the run's life.
 *
 * The first run to take the lock owns the directory until it ends: a second `train` into it, or a
 * `--resume` of it, is refused with the holder's pid instead of interleaving with it (deleting its
 * temporary checkpoint, mixing one run's config.json with the other's weights). The kernel drops a
 * flock when its holder exits for any reason, kill -9 included, so a lock file left by a killed run is
 * not locked: the next run takes it over, nothing to clean up by hand. The file is never deleted (a lock
 * file unlinked while another process waits on it would let two holders in); it holds the holder's pid
 * while locked and is emptied on a clean release. */
#include "trainer_internal.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* the pid recorded in the lock file, 0 if none */
static long read_pid(int fd) {
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

int ft__run_lock(const char *run_dir, int *fd_out, long *stale_pid) {
    *fd_out = -1;
    if (stale_pid) *stale_pid = 0;
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, run_dir, "lock"));
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return ft_error(FT_ERR_IO, "%s: cannot create the run's lock file: %s", path, strerror(errno));
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        long pid = 0;
        /* the holder writes its pid right after locking: give it a moment when it has only just locked */
        for (int i = 0; e == EWOULDBLOCK && i < 100 && (pid = read_pid(fd)) <= 0; i++) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        close(fd);
        if (e != EWOULDBLOCK) return ft_error(FT_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
        if (pid > 0)
            return ft_error(FT_ERR_BUSY, "%s is in use by another run (pid %ld); wait for it to end, or choose another --out", run_dir, pid);
        return ft_error(FT_ERR_BUSY, "%s is in use by another run (its pid not written yet); wait for it to end, or choose another --out", run_dir);
    }
    /* ours: a pid still written there is the one of a run that was killed (a clean release empties the file) */
    long old = read_pid(fd);
    if (stale_pid && old > 0 && old != (long)getpid()) *stale_pid = old;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return ft_error(FT_ERR_IO, "%s: cannot write the lock file: %s", path, strerror(e));
    }
    *fd_out = fd;
    return FT_OK;
}

void ft__run_unlock(int fd) { ft__run_unlock_as(fd, 0); }

void ft__run_unlock_as(int fd, long pid) {
    if (fd < 0) return;
    /* only informative: the lock itself goes with the descriptor */
    if (ftruncate(fd, 0) != 0) {}
    if (pid > 0) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%ld\n", pid);
        if (pwrite(fd, buf, (size_t)n, 0) != n) {}
    }
    close(fd);   /* releases the flock */
}
