/* chat.h — chat templates: a conversation -> the exact text a chat model was trained on.
 *
 * Instruction-tuned models expect a conversation laid out in their own format. ChatML (Qwen2, SmolLM2):
 *
 *     <|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n
 *
 * Llama-3: "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>...", Llama-2 and
 * Mistral: "<s>[INST] Hi [/INST]", Zephyr: "<|user|>\nHi</s>\n<|assistant|>\n". Hugging Face models ship
 * that layout as a Jinja2 program, `chat_template` in tokenizer_config.json (or chat_template.jinja), and
 * transformers renders it with jinja2 (trim_blocks=True, lstrip_blocks=True) in apply_chat_template().
 * A model prompted in any other layout answers worse, and training text must use the same layout.
 *
 * This module contains a small Jinja2 interpreter that renders those templates byte-for-byte like
 * transformers' apply_chat_template(messages, tokenize=False, add_generation_prompt=...). A template is
 * parsed once into a tree (ft_chat_template_*), then rendered many times (ft_chat_render): a render
 * allocates nothing that outlives it and never modifies the template, so one template can be rendered
 * from several threads at once.
 *
 * The template sees: messages (a list of {"role", "content"} dicts), add_generation_prompt (bool),
 * bos_token / eos_token (strings, undefined when NULL), tools = none, documents = none, and any extra
 * variables set with ft_chat_template_set_string / _set_json (e.g. date_string for Llama-3.1).
 *
 * Supported Jinja2: text, {{ expr }}, {% if/elif/else %}, {% for x in xs [if cond] %} ... {% else %}
 * (loop.index/index0/revindex/first/last/length/previtem/nextitem/cycle, tuple targets, break/continue),
 * {% set x = ... %}, {% set ns.attr = ... %}, {% set x %}...{% endset %}, {% macro %}, {% raw %},
 * {# comments #}, whitespace control ({%- -%} {{- -}} {%+ +%}), transformers' {% generation %};
 * literals (strings with Python escapes, ints, floats, true/false/none, lists, tuples, dicts), attribute,
 * item and slice access, + - * / // % ** ~, comparisons, and/or/not, in / not in, "a if c else b";
 * filters trim length count upper lower capitalize title tojson default first last join replace string
 * list items select reject selectattr rejectattr map reverse unique int float abs safe escape indent
 * (and `strip`, an alias of trim that jinja2 itself lacks); tests defined undefined none string number
 * integer float boolean true false mapping iterable sequence callable sameas eq ne lt le gt ge in odd
 * even divisibleby lower upper; functions raise_exception strftime_now namespace dict range; str methods
 * strip lstrip rstrip split rsplit startswith endswith upper lower title capitalize replace find count
 * join, list methods count index, dict methods items keys values get. Unknown tags, filters and tests fail
 * at parse time with FT_ERR_UNSUPPORTED and the line/column. Strings are UTF-8; len/index/slice count
 * characters, as in Python. Nesting deeper than 500 levels is refused (no stack exhaustion on hostile input).
 * Known differences from jinja2, none of which affects a real chat template: filters that return generators
 * there (select, map, reverse, ...) return lists here (same once iterated, joined or passed to |list); ints
 * are 64-bit (overflow is an error); '%' string formatting, \N{...} escapes and recursive loops are refused.
 *
 * Example:
 *     ft_chat_template *t;
 *     int rc = ft_chat_template_load(&t, "models/Qwen2-0.5B-Instruct");
 *     if (rc == FT_ERR_NOT_FOUND) rc = ft_chat_template_builtin(&t, "chatml", NULL, NULL);
 *     if (rc < 0) { fprintf(stderr, "%s\n", ft_last_error()); return rc; }
 *     ft_chat_msg msgs[] = {{"system", "You are terse."}, {"user", "Hi"}};
 *     char *text; size_t len;
 *     if (ft_chat_render(t, msgs, 2, 1, &text, &len) < 0) fprintf(stderr, "%s\n", ft_last_error());
 *     else { fwrite(text, 1, len, stdout); free(text); }
 *     ft_chat_template_free(t);
 *
 * Training (loss on assistant turns only): ft_chat_render_spans returns the rendered conversation and, per
 * assistant message, the byte range the model should learn to produce: its content plus the end-of-turn
 * text the template writes after it ("<|im_end|>", "<|eot_id|>", "</s>"). The tokenizer then maps byte
 * ranges to token masks. Errors raised by the template (raise_exception, e.g. roles that do not alternate)
 * come back as FT_ERR_INVALID with the template's message in ft_last_error(). */
#ifndef FINETUNE_CHAT_H
#define FINETUNE_CHAT_H
#include <stddef.h>

typedef struct ft_chat_template ft_chat_template;

/* One message. role: "system", "user", "assistant", ... content: UTF-8, NULL = key absent (transformers
 * drops None-valued keys). The strings are only read during the call. */
typedef struct ft_chat_msg {
    const char *role;
    const char *content;
} ft_chat_msg;

/* A byte range [start, end) of rendered text; message = index of the message it belongs to (-1 unknown). */
typedef struct ft_span {
    size_t start, end;
    int    message;
} ft_span;

/* Parses a Jinja2 chat template. bos_token / eos_token are copied; NULL leaves the variable undefined
 * (rendered as "", an error when used with +). Syntax errors: FT_ERR_FORMAT; valid Jinja2 outside the
 * subset: FT_ERR_UNSUPPORTED; both with "line L, column C" in ft_last_error(). */
int ft_chat_template_from_string(ft_chat_template **out, const char *source, const char *bos_token,
                                 const char *eos_token);

/* A built-in template by name: "chatml", "llama2", "llama3", "llama3.1", "mistral", "zephyr", "alpaca".
 * The sources equal what those model families ship in tokenizer_config.json (alpaca: the Stanford Alpaca
 * prompt format written as a template). NULL tokens take the family's defaults ("<s>"/"</s>", Llama-3's
 * "<|begin_of_text|>"/"<|eot_id|>", ChatML's eos "<|im_end|>"). Unknown name: FT_ERR_NOT_FOUND. */
int ft_chat_template_builtin(ft_chat_template **out, const char *name, const char *bos_token, const char *eos_token);
/* The source of a built-in template (static storage), NULL if unknown. */
const char *ft_chat_builtin_source(const char *name);
/* The i-th built-in name (0-based), NULL past the end. */
const char *ft_chat_builtin_name(int i);

/* The end-of-turn markers of the common templates ("<|im_end|>", "<|eot_id|>", "<|end|>"): stop strings for
 * generating one assistant turn when the tokenizer's EOS is another token. *out points to static storage;
 * returns the count. */
int ft_chat_turn_stops(const char *const **out);

/* Loads a model directory's template: chat_template.jinja if present, else "chat_template" in
 * tokenizer_config.json (a string, or a list of {"name", "template"} from which "default" is taken),
 * else chat_template.json. bos_token / eos_token come from tokenizer_config.json (strings or
 * {"content": ...} objects), else special_tokens_map.json. FT_ERR_NOT_FOUND when the directory has no
 * template: the caller then picks a builtin for the model type. */
int ft_chat_template_load(ft_chat_template **out, const char *model_dir);

/* Extra top-level variables for the template (copied). set_json takes a JSON value ("true", "[...]",
 * "\"26 Jul 2024\""); integral JSON numbers become ints. Setting bos_token / eos_token overrides the
 * tokens; "messages" and "add_generation_prompt" are reserved (FT_ERR_INVALID). Not thread-safe against
 * concurrent renders of the same template. */
int ft_chat_template_set_string(ft_chat_template *t, const char *name, const char *value);
int ft_chat_template_set_json(ft_chat_template *t, const char *name, const char *json);

/* The template source as given (after JSON decoding), and the tokens (NULL if unset). Owned by t. */
const char *ft_chat_template_source(const ft_chat_template *t);
const char *ft_chat_template_bos(const ft_chat_template *t);
const char *ft_chat_template_eos(const ft_chat_template *t);

/* Renders n messages. add_generation_prompt != 0 appends the assistant header (e.g.
 * "<|im_start|>assistant\n") so the model continues as the assistant. *out is malloc'd and
 * NUL-terminated (caller frees), *len its length in bytes. On failure *out is NULL. */
int ft_chat_render(const ft_chat_template *t, const ft_chat_msg *msgs, int n, int add_generation_prompt,
                   char **out, size_t *len);

/* ft_chat_render plus, for each assistant message, the span training should learn (*spans malloc'd,
 * caller frees; *nspans entries, in message order).
 * If the template has {% generation %} blocks, those ranges are used (as transformers'
 * return_assistant_tokens_mask does). Otherwise spans come from progressive rendering: for assistant
 * message i, A = render(messages[0..i), add_generation_prompt=1) and B = render(messages[0..i]); the span
 * is B minus its prefix A, without trailing whitespace after the content (so "<|im_end|>\n" gives
 * "...<|im_end|>"). This needs A to be a prefix of B and B a prefix of the whole conversation; templates
 * that rewrite earlier turns (e.g. Mistral v0.3 moving the system prompt into the last user turn) fail
 * with FT_ERR_UNSUPPORTED naming the message and the first differing byte. */
int ft_chat_render_spans(const ft_chat_template *t, const ft_chat_msg *msgs, int n, int add_generation_prompt,
                         char **out, size_t *len, ft_span **spans, int *nspans);

/* The budget of one render. A template comes from a model directory or a request, so it is a program
 * from an untrusted source: every render runs under these limits, and one that would pass any of them
 * stops with FT_ERR_RANGE and "chat template: line L, column C: template exceeds its budget (...)"
 * instead of looping, exhausting memory or the stack. The defaults (ft_chat_default_budget) are far
 * above what real templates use: Llama-3.1's template over 12 messages takes 431 operations. */
typedef struct ft_chat_budget {
    long long max_ops;     /* expressions evaluated, statements run, loop iterations, items a filter or
                              method walks (10,000,000, about a second) */
    size_t    max_output;  /* bytes of rendered text, and of any one text built while rendering (64 MiB) */
    size_t    max_memory;  /* bytes of values built while rendering: strings, lists, dicts (128 MiB) */
    int       max_depth;   /* nesting of macro calls (64); printed, compared or serialised values nest at
                              most 100 levels (a namespace may hold itself: {% set ns.n = ns %}{{ ns }}) */
} ft_chat_budget;
ft_chat_budget ft_chat_default_budget(void);
/* Sets t's budget (NULL or 0 fields: the defaults). Not thread-safe against concurrent renders of t. */
void ft_chat_template_set_budget(ft_chat_template *t, const ft_chat_budget *b);

void ft_chat_template_free(ft_chat_template *t);
#endif
