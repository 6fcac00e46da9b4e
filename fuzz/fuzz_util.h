/* fuzz_util.h — shared by the libFuzzer targets in fuzz/ (one per parser of untrusted input).
 * Each target defines LLVMFuzzerTestOneInput. `make fuzz` builds them with clang -fsanitize=fuzzer,address,undefined
 * and runs each on its seed corpus (fuzz/corpus/<name>/); `make test` builds the same sources with the
 * project's compiler, renames the entry point to ft_fuzz_<name> and replays every seed (tests/test_fuzz_seeds.c),
 * so the targets always compile and the seeds stay clean.
 * Parsers that read files get the input through an in-memory file (memfd): no disk, no name collisions. */
#ifndef FT_FUZZ_UTIL_H
#define FT_FUZZ_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "finetune/status.h"

/* data[0..n) as a file: returns its fd (close it after use) and its path in path[64], or -1 */
static inline int ft_fuzz_file(const uint8_t *data, size_t n, char path[64]) {
    int fd = memfd_create("ft_fuzz", 0);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w <= 0) { close(fd); return -1; }
        off += (size_t)w;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* data[0..n) as a NUL-terminated string (malloc'd; the caller frees) */
static inline char *ft_fuzz_str(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, data, n);
    s[n] = 0;
    return s;
}

/* library messages stay quiet while fuzzing */
static inline void ft_fuzz_quiet(void) { ft_log_set_level(FT_LOG_ERROR); }
#endif
