/* mathtext.h - what the math plugins (arith, stepvalue, stepneg) share:
 * final answers and their verifier, solutions as steps (one line a step),
 * and the exact line checker of the arith task.
 *
 * A math record is {question, solution, answer}: the policy sees
 * question + "\n" and writes the solution; its last line carries the final
 * answer after a marker ("ans=" in arith, "####" in GSM8K, \boxed{} in
 * MATH). The verifier compares the marked answer of a generated solution
 * with the record's answer after normalisation (numbers without commas,
 * '$', units or trailing zeros; other answers without spaces). A solution
 * without a marker has no answer and is wrong (GSM8K's strict match).
 * Header-only; included by the plugins and the tests. */
#ifndef LATHE_MATHTEXT_H
#define LATHE_MATHTEXT_H

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first number in s (digits with optional commas, sign and decimals) as
 * canonical text in out (no commas, no '+', no leading zeros, no trailing
 * fractional zeros, "-0" as "0"). Returns 0, or -1 when s has no number. */
static inline int mt_number(const char *s, char *out, size_t n) {
  const char *p = s;
  while (*p && !isdigit((unsigned char)*p)) p++;
  if (!*p || n < 2) return -1;
  int neg = p > s && p[-1] == '-';
  char buf[128];
  size_t k = 0, dot = 0;
  for (; *p && k + 2 < sizeof buf; p++) {
    if (isdigit((unsigned char)*p))
      buf[k++] = *p;
    else if (*p == ',' && isdigit((unsigned char)p[1]))
      continue;
    else if (*p == '.' && !dot && isdigit((unsigned char)p[1]))
      dot = k + 1, buf[k++] = '.';
    else
      break;
  }
  buf[k] = 0;
  if (dot) { /* trailing fractional zeros, then a bare dot */
    while (k > dot && buf[k - 1] == '0') buf[--k] = 0;
    if (buf[k - 1] == '.') buf[--k] = 0;
  }
  char *d = buf;
  while (d[0] == '0' && d[1] && d[1] != '.') d++;
  int zero = !strcmp(d, "0");
  int w = snprintf(out, n, "%s%s", neg && !zero ? "-" : "", d);
  return w > 0 && (size_t)w < n ? 0 : -1;
}

/* An answer as compared: a number if the text is one (up to '$', units,
 * '%' and spaces around it), else the text without spaces. */
static inline int mt_normalise(const char *s, size_t len, char *out, size_t n) {
  char buf[256];
  size_t k = 0;
  for (size_t i = 0; i < len && k + 1 < sizeof buf; i++)
    if (!isspace((unsigned char)s[i])) buf[k++] = s[i];
  buf[k] = 0;
  if (!k) return -1;
  /* numeric: at most '$' before, letters, '%' or '.' after the number */
  const char *p = buf;
  if (*p == '$') p++;
  if (*p == '-' || *p == '+') p++;
  if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) {
    const char *q = p;
    while (isdigit((unsigned char)*q) || *q == ',' || *q == '.') q++;
    int tail_ok = 1;
    for (const char *t = q; *t; t++)
      tail_ok &= isalpha((unsigned char)*t) || *t == '%' || *t == '.';
    if (tail_ok) return mt_number(buf, out, n);
  }
  if (k >= n) return -1;
  memcpy(out, buf, k + 1);
  return 0;
}

/* The final answer of a solution: after its last "####" (to the end of that
 * line), else inside its last \boxed{...}, else after its last "ans=".
 * Normalised into out; -1 when there is no marker or nothing after it. */
static inline int mt_final_answer(const char *text, char *out, size_t n) {
  const char *m = NULL, *p = text;
  while ((p = strstr(p, "####"))) m = p, p += 4;
  if (m) {
    m += 4;
    return mt_normalise(m, strcspn(m, "\n"), out, n);
  }
  for (p = text; (p = strstr(p, "\\boxed{")); p += 7) m = p;
  if (m) {
    const char *s = m + 7, *e = s;
    int depth = 1;
    for (; *e && depth; e++) depth += *e == '{' ? 1 : *e == '}' ? -1 : 0;
    if (depth) return -1;
    return mt_normalise(s, (size_t)(e - 1 - s), out, n);
  }
  for (p = text; (p = strstr(p, "ans=")); p += 4) m = p;
  if (m) {
    m += 4;
    return mt_normalise(m, strcspn(m, "\n"), out, n);
  }
  return -1;
}

/* The verifier: 1 if solution's final answer equals answer (both normalised). */
static inline int mt_verify(const char *solution, const char *answer) {
  char a[256], b[256];
  if (mt_final_answer(solution, a, sizeof a)) return 0;
  if (mt_normalise(answer, strlen(answer), b, sizeof b)) return 0;
  return !strcmp(a, b);
}

/* Steps: the lines of a solution. Writes the byte offset where each step
 * starts into start (room for max), returns the count (at least 1 for a
 * non-empty text; an empty text has 0). A trailing newline ends the last
 * step without starting another. */
static inline int mt_steps(const char *text, int *start, int max) {
  int n = 0;
  size_t len = strlen(text);
  for (size_t i = 0; i < len && n < max;) {
    start[n++] = (int)i;
    const char *nl = memchr(text + i, '\n', len - i);
    i = nl ? (size_t)(nl - text) + 1 : len;
  }
  return n;
}

/* ---- the arith task: chained modular arithmetic ----------------------------
 * question "a op1 c1 op2 c2 ..." written without spaces ("57+12*3-40"),
 * evaluated left to right mod `mod`; the solution has one line per operation,
 * "x op c=y" with x the previous line's y (the start value first), then
 * "ans=y". */

#define MT_ARITH_MAX 16

/* Parse a question into start, ops ('+', '-', '*') and constants. Returns
 * the number of operations (>= 1), or -1. */
static inline int mt_arith_parse(const char *q, int *start, char *ops, int *cs) {
  char *e;
  long v = strtol(q, &e, 10);
  if (e == q || v < 0) return -1;
  *start = (int)v;
  int k = 0;
  for (const char *p = e; *p && *p != '\n';) {
    if ((*p != '+' && *p != '-' && *p != '*') || k == MT_ARITH_MAX || !isdigit((unsigned char)p[1]))
      return -1;
    ops[k] = *p;
    cs[k++] = (int)strtol(p + 1, &e, 10);
    p = e;
  }
  return k ? k : -1;
}

static inline int mt_arith_apply(int x, char op, int c, int mod) {
  long r = op == '+' ? (long)x + c : op == '-' ? (long)x - c : (long)x * c;
  r %= mod;
  return (int)(r < 0 ? r + mod : r);
}

/* The first wrong line (1-based) of a solution to question q: a line that
 * is not "x op c=y" with the question's op and c, x the previous line's y
 * (the start value first) and y = x op c mod `mod`; the "ans=y" line must
 * repeat the last y and end the solution. 0 when every line is right, -1
 * when q is not an arith question. */
static inline int mt_arith_first_wrong(const char *q, const char *sol, int mod) {
  int start, cs[MT_ARITH_MAX], k;
  char ops[MT_ARITH_MAX];
  if ((k = mt_arith_parse(q, &start, ops, cs)) < 0) return -1;
  int prev = start, line = 0;
  const char *p = sol;
  for (; line <= k; line++) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    char buf[64];
    if (len >= sizeof buf) return line + 1;
    memcpy(buf, p, len), buf[len] = 0;
    if (line < k) {
      int x, c, y, used = 0;
      char op;
      if (sscanf(buf, "%d%c%d=%d%n", &x, &op, &c, &y, &used) != 4 || used != (int)len ||
          x != prev || op != ops[line] || c != cs[line] || y != mt_arith_apply(x, op, c, mod))
        return line + 1;
      /* a correct line continues from its own y; a spurious line is caught
       * above, and the line after it (x != the wrong y) counts after it */
      prev = y;
    } else {
      int y, used = 0;
      if (sscanf(buf, "ans=%d%n", &y, &used) != 1 || used != (int)len || y != prev) return line + 1;
      if (nl && nl[1]) return line + 2; /* text after the answer */
    }
    if (!nl && line < k) return line + 2; /* the solution stops early */
    p = nl ? nl + 1 : p + len;
  }
  return 0;
}

#endif
