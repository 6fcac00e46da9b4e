/* test_serve_monitor.c — the monitoring layer of `finetune serve` over real sockets, through the Python scripts of
 * tests/serve/ (standard library only):
 *   monitor_check.py   GET /metrics counters, histograms and labels against the requests sent; the exposition
 *                      format; drift detection firing on the classifier (gauges and the {"event":"drift"} log
 *                      line); GET / without a key, /metrics with one
 *   hostile.py         2,000 malformed or hostile requests (the short version of `make serve-hostile`, which
 *                      sends 10,000 to an AddressSanitizer build): every one a 4xx or a closed connection,
 *                      valid requests answered throughout, exit 0 after SIGTERM
 *   web_check.py       the page at / in headless Chromium (skipped with a message when Chromium is absent)
 * The server is $BUILD/finetune (BUILD from the environment, default build). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *bin(void) {
    static char b[512];
    const char *d = getenv("BUILD");
    snprintf(b, sizeof b, "%s/finetune", d && *d ? d : "build");
    return b;
}

static int have_python(void) {
    char *out = NULL;
    int rc = ft_test_run("python3 -c 'import json, socket, urllib.request' 2>&1", &out);
    free(out);
    if (rc != 0) printf("SKIP: python3 is not available\n");
    return rc == 0;
}

static void run_script(const char *what, const char *args) {
    if (!have_python()) return;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 tests/serve/%s --bin '%s' %s 2>&1", what, bin(), args);
    char *out = NULL;
    int rc = ft_test_run(cmd, &out);
    printf("%s", out);
    if (rc != 0) printf("  %s exited with %d\n", cmd, rc);
    free(out);
    assert_int_equal(rc, 0);
}

static void test_metrics_and_drift(void **st) {
    (void)st;
    run_script("monitor_check.py", "");
}

static void test_hostile_requests(void **st) {
    (void)st;
    run_script("hostile.py", "--n 2000 --model stories=models/stories260K --model cls=tests/fixtures/train_encoder/tiny_bert "
                             "--classifier cls");
}

static void test_web_page_in_chromium(void **st) {
    (void)st;
    char shot[512];
    const char *d = getenv("BUILD");
    snprintf(shot, sizeof shot, "--model stories=models/stories260K --model cls=tests/fixtures/train_encoder/tiny_bert "
             "--screenshot %s/tests/web_check.png", d && *d ? d : "build");
    run_script("web_check.py", shot);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_and_drift),
        cmocka_unit_test(test_hostile_requests),
        cmocka_unit_test(test_web_page_in_chromium),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
