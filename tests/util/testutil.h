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

#include "finetune/encoder.h"
#include "finetune/hpo.h"
#include "finetune/safetensors.h"

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

/* Reference tensors from a fixture's safetensors file (any shape, read whole; F16/BF16 upcast).
 * ft_test_read_f32: tensor `name` as floats in a malloc'd buffer the caller frees, *n (when n is not
 * NULL) its element count; NULL when st holds no such tensor. A tensor that is there but cannot be
 * read fails the test.
 * ft_test_read_i32: the same for token ids / labels: *rows = shape[0], *cols = shape[1] (1 for a 1-D
 * tensor); NULL when absent (rows and cols are then left alone). */
float *ft_test_read_f32(const ft_safetensors *st, const char *name, size_t *n);
int *ft_test_read_i32(const ft_safetensors *st, const char *name, int *rows, int *cols);

/* Gradient parity of every parameter of encoder m against st's "grad.<param name>" tensors (after its
 * forward + backward): ft_check_close at tol, or 1e-6 absolute where the reference is zero (the key bias:
 * softmax ignores a per-row constant, so its reference is round-off). Prints a line per tensor and
 * "  <compared> of <references> gradients compared, <failures> failures"; returns the failures, plus 1
 * when a reference gradient has no parameter. */
int ft_test_check_encoder_grads(ft_encoder_model *m, const ft_safetensors *st, double tol);

/* Runs shell command `cmd` (popen), captures its standard output (append 2>&1 to the command for stderr
 * too) into a malloc'd NUL-terminated *out the caller frees; returns its exit status (-1 if it did not
 * exit normally). */
int ft_test_run(const char *cmd, char **out);
/* Runs `$BUILD/finetune ARGS 2>&1` (BUILD from the environment, default "build") with ARGS from fmt; *out as
 * ft_test_run; prints the command, exit status and output when it fails. */
int ft_test_finetune(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* CPU time in seconds (user + system): of this process, all its threads (ft_test_cpu_seconds), and of its
 * children that have been waited for, grandchildren included (ft_test_children_cpu_seconds, e.g. around an
 * ft_test_run). Time bounds in tests use these rather than the wall clock: a process waiting for a core on a
 * loaded machine (load 18 on 2 cores) does not accumulate CPU time, so the bound still catches what it is
 * there for (a quadratic loop, a whole 50 MB tokenized) without failing on load. */
double ft_test_cpu_seconds(void);
double ft_test_children_cpu_seconds(void);
/* 1 when both files exist and hold the same bytes. */
int ft_test_files_equal(const char *a, const char *b);
/* Writes a PEFT LoRA adapter directory out_dir for the decoder in model_dir: rank r, alpha 2r, modules
 * `targets` (lora.h names, "all-linear"), A as PEFT initialises it from seed and B filled with a
 * deterministic pattern in [-scale, scale] (not PEFT's zeros, so that the adapter changes the output). */
int ft_test_make_lora_dir(const char *model_dir, const char *out_dir, const char *targets, int r, uint64_t seed, float scale);
/* Fills the LoRA matrices of encoder m (after ft_encoder_add_lora) with a deterministic pattern in [-0.3, 0.3];
 * head != 0: also shifts the trainable task-head tensors (what the adapter saves as modules_to_save) by up to
 * 0.5, so that the adapter carries a head of its own. */
void ft_test_randomize_encoder_lora(ft_encoder_model *m, unsigned seed, int head);
/* Loads sweep `name` of the database db_path (ft_hpo_sweep_load: *s and *t[*n] for the caller, freed with
 * ft_hpo_spec_free / ft_hpo_trials_free), asserting that it loads (the error printed when not) and that the
 * database passes ft_hpo_db_check. */
void ft_test_hpo_load(const char *db_path, const char *name, ft_hpo_spec **s, ft_hpo_trial **t, int *n);

#endif
