/* explain_html.c — the attribution page of `finetune explain --html` (explain.h): self-contained (inline CSS and
 * script, no network). Tokens are coloured by score (red positive, blue negative, opacity |score| / max |score|),
 * a table lists them in order, and the attention probabilities [L, NH, T, T] go into the page as JSON, drawn as a
 * query x key grid for the layer and head chosen in two selects. */
#include "finetune/explain.h"
#include "core/strbuf.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put_html(ft__sb *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': ft__sb_puts(b, "&lt;"); break;
        case '>': ft__sb_puts(b, "&gt;"); break;
        case '&': ft__sb_puts(b, "&amp;"); break;
        case '"': ft__sb_puts(b, "&quot;"); break;
        default: ft__sb_putc(b, *s);
        }
    }
}

/* background of a score: red (positive) / blue (negative), alpha |s| / mx */
static void put_color(ft__sb *b, double s, double mx) {
    if (isnan(s) || mx <= 0) { ft__sb_puts(b, "transparent"); return; }
    double a = fabs(s) / mx;
    if (s >= 0) ft__sb_printf(b, "rgba(220,40,40,%.3f)", a);
    else ft__sb_printf(b, "rgba(40,90,220,%.3f)", a);
}

static const char *PAGE_CSS =
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}"
    ".toks{font-size:1.4em;line-height:2.2em}.tok{padding:.15em .3em;margin:0 .1em;border-radius:.3em;border:1px solid #ddd}"
    ".special{color:#888}table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #eee;text-align:left}"
    "td.num{text-align:right;font-family:monospace}#att td{width:2.2em;height:2.2em;padding:0;text-align:center;font-size:.7em;border:1px solid #fff}"
    "#att th{font-weight:normal;font-size:.8em}.legend{color:#666;font-size:.9em}";

/* the attention grid: rows = queries, columns = keys, cell shade = probability */
static const char *PAGE_JS =
    "function drawAtt(){var l=+document.getElementById('layer').value,h=+document.getElementById('head').value;"
    "var T=TOKS.length,base=(l*NH+h)*T*T,s='<tr><th>query \\\\ key</th>';"
    "for(var j=0;j<T;j++)s+='<th>'+esc(TOKS[j])+'</th>';s+='</tr>';"
    "for(var t=0;t<T;t++){s+='<tr><th>'+esc(TOKS[t])+'</th>';for(var j=0;j<T;j++){var p=ATT[base+t*T+j];"
    "s+='<td title=\"'+p.toFixed(4)+'\" style=\"background:rgba(120,40,160,'+p.toFixed(3)+');color:'+(p>.5?'#fff':'#333')+'\">'"
    "+(p*100).toFixed(0)+'</td>';}s+='</tr>';}document.getElementById('att').innerHTML=s;}"
    "function esc(x){return x.replace(/&/g,'&amp;').replace(/</g,'&lt;').replace(/>/g,'&gt;');}";

int ft_explain_html(const ft_explain_page *p, char **html) {
    if (!p || !html || p->T < 0 || (p->T > 0 && (!p->tokens || !p->scores)))
        return ft_error(FT_ERR_INVALID, "explain html: no page");
    *html = NULL;
    ft__sb b = {0};
    double mx = 0;
    for (int t = 0; t < p->T; t++)
        if (!isnan(p->scores[t]) && fabs(p->scores[t]) > mx) mx = fabs(p->scores[t]);
    ft__sb_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    put_html(&b, p->title ? p->title : "finetune explain");
    ft__sb_printf(&b, "</title><style>%s</style></head><body>\n<h1>", PAGE_CSS);
    put_html(&b, p->title ? p->title : "finetune explain");
    ft__sb_puts(&b, "</h1>\n<p>");
    put_html(&b, p->subtitle ? p->subtitle : "");
    ft__sb_puts(&b, "</p>\n<div class=\"toks\">");
    for (int t = 0; t < p->T; t++) {
        ft__sb_puts(&b, isnan(p->scores[t]) ? "<span class=\"tok special\"" : "<span class=\"tok\"");
        ft__sb_puts(&b, " style=\"background:");
        put_color(&b, p->scores[t], mx);
        if (!isnan(p->scores[t])) ft__sb_printf(&b, "\" title=\"%+.6g", p->scores[t]);
        ft__sb_puts(&b, "\">");
        put_html(&b, p->tokens[t]);
        ft__sb_puts(&b, "</span>");
    }
    ft__sb_puts(&b, "</div>\n<p class=\"legend\">red: towards the explained output, blue: against it; "
                    "opacity: |score| / max |score|. Grey tokens have no score: special tokens (never masked) and a decoder's continuation.</p>\n"
                    "<h2>Scores in order</h2>\n<table><tr><th>#</th><th>token</th><th>score</th></tr>\n");
    for (int t = 0; t < p->T; t++) {
        ft__sb_printf(&b, "<tr><td>%d</td><td>", t);
        put_html(&b, p->tokens[t]);
        if (isnan(p->scores[t])) ft__sb_puts(&b, "</td><td class=\"num\">special</td></tr>\n");
        else ft__sb_printf(&b, "</td><td class=\"num\">%+.6f</td></tr>\n", p->scores[t]);
    }
    ft__sb_puts(&b, "</table>\n");
    if (p->att && p->L > 0 && p->NH > 0) {
        ft__sb_puts(&b, "<h2>Attention</h2>\n<p>layer <select id=\"layer\" onchange=\"drawAtt()\">");
        for (int l = 0; l < p->L; l++) ft__sb_printf(&b, "<option value=\"%d\">%d</option>", l, l);
        ft__sb_puts(&b, "</select> head <select id=\"head\" onchange=\"drawAtt()\">");
        for (int h = 0; h < p->NH; h++) ft__sb_printf(&b, "<option value=\"%d\">%d</option>", h, h);
        ft__sb_puts(&b, "</select> (cells: attention probability of the row's query on the column's key, in %)</p>\n"
                        "<table id=\"att\"></table>\n<script>\nvar TOKS=[");
        for (int t = 0; t < p->T; t++) {
            if (t) ft__sb_putc(&b, ',');
            /* JSON strings inside a script: escape '<' so a token cannot close the script element */
            const char *s = p->tokens[t];
            ft__sb_putc(&b, '"');
            for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch == '"' || ch == '\\') ft__sb_printf(&b, "\\%c", ch);
                else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') ft__sb_printf(&b, "\\u%04x", ch);
                else ft__sb_putc(&b, (char)ch);
            }
            ft__sb_putc(&b, '"');
        }
        ft__sb_printf(&b, "];\nvar NH=%d;\nvar ATT=[", p->NH);
        size_t n = (size_t)p->L * p->NH * p->T * p->T;
        for (size_t i = 0; i < n; i++) ft__sb_printf(&b, i ? ",%.4g" : "%.4g", (double)p->att[i]);
        ft__sb_printf(&b, "];\n%s\ndrawAtt();\n</script>\n", PAGE_JS);
    }
    ft__sb_puts(&b, "</body></html>\n");
    if (b.err) { int err = b.err; ft__sb_free(&b); return ft_error(err, "explain html: out of memory"); }
    *html = ft__sb_take(&b, NULL);
    return FT_OK;
}
