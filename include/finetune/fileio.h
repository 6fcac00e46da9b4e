/* fileio.h — checked file I/O: whole-file reads, read-only mmap, atomic writes.
 * Every failure records a message naming the path and the OS reason (ft_last_error). */
#ifndef FINETUNE_FILEIO_H
#define FINETUNE_FILEIO_H
#include <stddef.h>
#include <stdio.h>

/* Opens a regular file read-only (*fd, close it after use; *size its size when size is not NULL). A
 * directory, FIFO, socket or device is refused at once with FT_ERR_IO "<path>: is a FIFO (named pipe);
 * expected a regular file" (a FIFO would block for ever). */
int ft_file_open_regular(const char *path, int *fd, size_t *size);

/* Reads a whole regular file into a malloc'd, NUL-terminated buffer (*out, caller frees). */
int ft_file_read_all(const char *path, char **out, size_t *len);

/* A read-only memory map of a whole regular file. data is NULL for an empty file. */
typedef struct ft_mmap { void *data; size_t size; } ft_mmap;
int  ft_file_map(ft_mmap *m, const char *path);
void ft_file_unmap(ft_mmap *m);

int ft_path_exists(const char *path);  /* 1 if it exists (file or directory) */
int ft_path_is_dir(const char *path);
/* Joins dir and name with '/' into buf (cap bytes). Returns FT_ERR_RANGE if it does not fit. */
int ft_path_join(char *buf, size_t cap, const char *dir, const char *name);
/* mkdir -p */
int ft_mkdirs(const char *path);

/* Atomic write: data goes to "<path>.tmp.<pid>", is fsync'ed, renamed over `path`, and the
 * directory is fsync'ed. Readers see the old file or the new one, never a half-written one. */
typedef struct ft_atomic_file {
    FILE *fp;
    char  path[4096];
    char  tmp[4096];
    int   failed;     /* set by ft_atomic_write on a short write */
} ft_atomic_file;
int  ft_atomic_open(ft_atomic_file *f, const char *path);
int  ft_atomic_write(ft_atomic_file *f, const void *data, size_t n);
int  ft_atomic_commit(ft_atomic_file *f);  /* flush, fsync, rename; on failure removes tmp */
void ft_atomic_abort(ft_atomic_file *f);   /* removes tmp; safe after commit (no-op) */
int  ft_file_write_atomic(const char *path, const void *data, size_t n);
#endif
