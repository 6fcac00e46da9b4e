/* http_client.h — a minimal HTTP/1.1 client over plain sockets for the tests of `finetune serve`
 * (test_serve_http, test_serve_http_threads): one request per connection (Connection: close), chunked
 * bodies decoded, Server-Sent Events read incrementally. Loopback only; every call is thread-safe (no shared
 * state). Strings returned are malloc'd; the caller frees them. */
#ifndef FT_TEST_HTTP_CLIENT_H
#define FT_TEST_HTTP_CLIENT_H
#include <stddef.h>

typedef struct ft_test_http_resp {
    int    status;
    char  *head;      /* status line and headers */
    char  *body;      /* decoded body, NUL-terminated */
    size_t body_len;
} ft_test_http_resp;
void ft_test_http_resp_free(ft_test_http_resp *r);

/* A connection to 127.0.0.1:port (receive timeout 120 s), or -1. */
int  ft_test_http_connect(int port);
int  ft_test_http_send_all(int fd, const char *p, size_t n);
/* Sends METHOD path with extra header lines (each ending "\r\n", may be NULL) and a JSON body (NULL: none). */
int  ft_test_http_send(int fd, const char *method, const char *path, const char *headers, const char *body, size_t blen);
/* Reads to EOF into *raw (NUL-terminated). */
int  ft_test_http_read_all(int fd, char **raw, size_t *n);
/* Reads until `needle` has arrived or EOF; appends to prev (freed) and returns the whole text. */
char *ft_test_http_read_until(int fd, const char *needle, char *prev);
/* Splits raw response bytes into head and (de-chunked) body; -1 when it is not an HTTP response. */
int  ft_test_http_parse(char *raw, size_t n, ft_test_http_resp *out);
/* One request on a fresh connection; 0, or -1 when the connection failed or nothing valid came back. */
int  ft_test_http_do(int port, const char *method, const char *path, const char *headers, const char *body, ft_test_http_resp *out);
/* The value of header `name` in head (case-insensitive) copied into buf, or NULL. */
const char *ft_test_http_header(const char *head, const char *name, char *buf, size_t cap);
/* The concatenated choices[0] "text" (completions) or "delta.content" (chat) of the "data: {...}" events of an
 * SSE body. */
char *ft_test_http_sse_text(const char *raw);
#endif
