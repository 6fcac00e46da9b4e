/* testutil.h — shared helpers for the C tests (cmocka).
 * Fixtures live in tests/fixtures (override with FT_FIXTURES=dir). Parity helpers print one
 * line per tensor: name, element count, max abs error, max-norm relative error (max|a-b| / max|ref|),
 * L2 relative error (||a-b|| / ||ref||) and OK/FAIL. */
#ifndef FT_TESTUTIL_H
#define FT_TESTUTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* "tests/fixtures/<rel>" into a static thread-local buffer. */
const char *ft_fixture(const char *rel);
/* 1 if the fixture path exists; otherwise prints "SKIP: <why>" and returns 0. */
int ft_fixture_present(const char *rel);

/* A scratch directory for one test program: made in a cmocka group setup ("/tmp/<prefix>_XXXXXX" into
 * dir), removed with everything in it in the teardown. ft_test_path joins dir and name into one of four
 * rotating buffers (so two paths can be used in one call). */
int ft_test_tmpdir_make(char *dir, size_t cap, const char *prefix);
int ft_test_tmpdir_remove(const char *dir);
const char *ft_test_path(const char *dir, const char *name);

typedef struct ft_cmp {
    double max_abs;   /* max |got - ref| */
    double max_rel;   /* max |got - ref| / max |ref|  (max-norm relative error of the tensor) */
    double l2_rel;    /* ||got - ref||_2 / ||ref||_2  (the tensor's relative error) */
    double max_elem_rel; /* max |got-ref| / (|ref| + 1e-6 * max|ref|) element-wise, for information */
} ft_cmp;
ft_cmp ft_compare_f32(const float *got, const float *ref, size_t n);
/* Compares, prints the report line, returns 1 if max_rel <= tol. */
int ft_check_close_l2(const char *name, const float *got, const float *ref, size_t n, double tol);
/* Gradient parity against a float64 reference: OK when max_rel and l2_rel are <= tol, or when both are
 * no worse than 2x PyTorch's own float32 errors on the same tensor (torch_l2 / torch_max, < 0 if
 * unknown) — the float32 floor. The line also prints PyTorch's numbers. */
int ft_check_grad(const char *name, const float *got, const float *ref, size_t n, double tol, double torch_l2, double torch_max);
/* Reads l2.<key> and max.<key> from a fixture's f32_floor.safetensors (dir/f32_floor.safetensors);
 * -1 when absent. */
void ft_torch_f32_floor(const char *dir, const char *key, double *l2, double *mx);
int ft_check_close(const char *name, const float *got, const float *ref, size_t n, double tol);
#endif
