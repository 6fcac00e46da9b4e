/* fuzz_chat_template.c — the Jinja chat-template engine (lexer, parser, evaluator, built-ins) on an
 * arbitrary template, rendered over a fixed three-turn conversation, with and without the generation
 * prompt, plus the assistant spans training uses. */
#include "fuzz_util.h"
#include "finetune/chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    char *src = ft_fuzz_str(data, size);
    if (!src) return 0;
    ft_chat_template *t;
    if (ft_chat_template_from_string(&t, src, "<s>", "</s>") == FT_OK) {
        /* a tenth of the default budget: an input that spends all of it stays well inside libFuzzer's
         * per-input timeout under ASan/UBSan, and the limits are reached (and tested) more often */
        ft_chat_budget b = ft_chat_default_budget();
        b.max_ops /= 10;
        b.max_output /= 8;
        b.max_memory /= 8;
        ft_chat_template_set_budget(t, &b);
        ft_chat_msg msgs[3] = {{"system", "Be brief."}, {"user", "Hi there"}, {"assistant", "Hello!"}};
        char *out = NULL;
        size_t len;
        for (int g = 0; g < 2; g++)
            if (ft_chat_render(t, msgs, 3, g, &out, &len) == FT_OK) free(out);
        ft_span *spans = NULL;
        int nspans = 0;
        if (ft_chat_render_spans(t, msgs, 3, 0, &out, &len, &spans, &nspans) == FT_OK) { free(out); free(spans); }
        ft_chat_template_free(t);
    }
    free(src);
    return 0;
}
