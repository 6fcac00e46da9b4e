/* http_client.c — see http_client.h. */
#include "http_client.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

void ft_test_http_resp_free(ft_test_http_resp *r) {
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

int ft_test_http_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { close(fd); return -1; }
    struct timeval tv = {120, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

int ft_test_http_send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int ft_test_http_send(int fd, const char *method, const char *path, const char *headers, const char *body, size_t blen) {
    size_t cap = strlen(method) + strlen(path) + (headers ? strlen(headers) : 0) + 256;
    char *head = malloc(cap);
    if (!head) return -1;
    int n = snprintf(head, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method, path,
                     headers ? headers : "");
    if (body) n += snprintf(head + n, cap - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    n += snprintf(head + n, cap - (size_t)n, "\r\n");
    int rc = ft_test_http_send_all(fd, head, (size_t)n);
    free(head);
    if (rc < 0) return -1;
    return body ? ft_test_http_send_all(fd, body, blen) : 0;
}

const char *ft_test_http_header(const char *head, const char *name, char *buf, size_t cap) {
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ') h++;
            size_t k = strcspn(h, "\r\n");
            if (k >= cap) k = cap - 1;
            memcpy(buf, h, k);
            buf[k] = '\0';
            return buf;
        }
    }
    return NULL;
}

int ft_test_http_parse(char *raw, size_t n, ft_test_http_resp *out) {
    memset(out, 0, sizeof *out);
    char *sep = strstr(raw, "\r\n\r\n");
    if (!sep || sscanf(raw, "HTTP/1.%*d %d", &out->status) != 1) return -1;
    size_t hl = (size_t)(sep - raw);
    out->head = strndup(raw, hl);
    const char *b = sep + 4;
    size_t bl = n - hl - 4;
    char te[64];
    if (ft_test_http_header(out->head, "Transfer-Encoding", te, sizeof te) && strstr(te, "chunked")) {
        out->body = malloc(bl + 1);
        size_t o = 0;
        const char *p = b, *end = b + bl;
        while (p < end) {
            char *e;
            unsigned long k = strtoul(p, &e, 16);
            const char *data = strstr(e, "\r\n");
            if (!data || k == 0) break;
            data += 2;
            if (data + k > end) k = (unsigned long)(end - data);
            memcpy(out->body + o, data, k);
            o += k;
            p = data + k + 2;
        }
        out->body[o] = '\0';
        out->body_len = o;
    } else {
        out->body = strndup(b, bl);
        out->body_len = bl;
    }
    return 0;
}

int ft_test_http_read_all(int fd, char **raw, size_t *n) {
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + len, cap - len - 1, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    *raw = buf;
    *n = len;
    return 0;
}

char *ft_test_http_read_until(int fd, const char *needle, char *prev) {
    size_t len = prev ? strlen(prev) : 0, cap = len + 65536;
    char *buf = malloc(cap);
    if (prev) { memcpy(buf, prev, len); free(prev); }
    buf[len] = '\0';
    while (!(needle && strstr(buf, needle))) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + len, cap - len - 1, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        len += (size_t)k;
        buf[len] = '\0';
    }
    return buf;
}

int ft_test_http_do(int port, const char *method, const char *path, const char *headers, const char *body, ft_test_http_resp *out) {
    memset(out, 0, sizeof *out);
    int fd = ft_test_http_connect(port);
    if (fd < 0) return -1;
    if (ft_test_http_send(fd, method, path, headers, body, body ? strlen(body) : 0) < 0) { close(fd); return -1; }
    char *raw;
    size_t n;
    ft_test_http_read_all(fd, &raw, &n);
    close(fd);
    int rc = ft_test_http_parse(raw, n, out);
    free(raw);
    return rc;
}

char *ft_test_http_sse_text(const char *raw) {
    size_t cap = 1024, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (const char *p = strstr(raw, "data: "); p; p = strstr(p + 6, "data: ")) {
        const char *e = strstr(p, "\n\n");
        if (!e) break;
        char *line = strndup(p + 6, (size_t)(e - p - 6));
        cJSON *j = cJSON_Parse(line);
        free(line);
        cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
        cJSON *t = cJSON_GetObjectItem(c, "text");
        if (!cJSON_IsString(t)) t = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "delta"), "content");
        if (cJSON_IsString(t)) {
            size_t k = strlen(t->valuestring);
            if (len + k + 1 > cap) { while (len + k + 1 > cap) cap *= 2; out = realloc(out, cap); }
            memcpy(out + len, t->valuestring, k + 1);
            len += k;
        }
        cJSON_Delete(j);
    }
    return out;
}
