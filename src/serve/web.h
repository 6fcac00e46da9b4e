/* web.h — the page served at GET / (src/serve/web/index.html), embedded at build time (internal).
 *
 * The Makefile turns index.html into $(BUILD)/gen/web_index.c with `xxd -i` (Debian's xxd package); the
 * bytes are followed by a NUL that ft__web_index_html_len does not count. Read-only, static lifetime. */
#ifndef FT_SERVE_WEB_H
#define FT_SERVE_WEB_H
#include <stddef.h>

extern const unsigned char ft__web_index_html[];   /* [ft__web_index_html_len + 1] UTF-8 HTML, NUL-terminated */
extern const size_t ft__web_index_html_len;
#endif
