/* plot.c - one metric of several runs as an SVG figure (see plot.h). */
#include "plot.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../workbench/error.h"
#include "chart.h"

/* matplotlib's tab10, the colours readers of papers know */
static const char *palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define NPAL 10

typedef struct {
  double *x, *y; /* x: step or seconds; y: the value (smoothed once read) */
  int n, cap;
} pts_t;

typedef struct {
  char label[160];
  double *x, *mid, *lo, *hi; /* mid line and band (lo == hi: no band) */
  int n;
  int runs;   /* how many runs the line is the mean of */
  int points; /* given points: markers and error bars, not a band */
} line_t;

/* An estimate of a label's width in px at font-size 12 (DejaVu Sans's mean
 * advance is about 0.6 em; wide glyphs counted wider), for the legend's layout. */
static double text_px(const char *s) {
  double w = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p & 0xc0) == 0x80) continue; /* UTF-8 continuation */
    w += strchr("mwMW@%", *p)        ? 10.5
         : strchr("il.,:;|!'1 ", *p) ? 4.0
         : *p >= 'A' && *p <= 'Z'    ? 8.2
                                     : 7.0;
  }
  return w;
}

/* Lay the legend out in rows by text width: x of each entry and its row. */
static int legend_layout(const line_t *L, int n, double x0, double width, double *lx, int *row) {
  double x = 0;
  int r = 0;
  for (int i = 0; i < n; i++) {
    double w = 24 + text_px(L[i].label) + 18;
    if (x > 0 && x + w > width) x = 0, r++;
    lx[i] = x0 + x, row[i] = r;
    x += w;
  }
  return n ? r + 1 : 0;
}

static int pts_add(pts_t *p, double x, double y) {
  if (p->n == p->cap) {
    int cap = p->cap ? 2 * p->cap : 256;
    double *nx = realloc(p->x, cap * sizeof *nx);
    if (!nx) return lathe_seterr(LATHE_ENOMEM, "out of memory");
    p->x = nx;
    double *ny = realloc(p->y, cap * sizeof *ny);
    if (!ny) return lathe_seterr(LATHE_ENOMEM, "out of memory");
    p->y = ny, p->cap = cap;
  }
  p->x[p->n] = x, p->y[p->n] = y, p->n++;
  return 0;
}

typedef struct {
  uint32_t id;
  const char *metric;
  pts_t steps, alt; /* the same points: x = step (y smoothed once read), and x =
                     * seconds since the first point or the x metric's value at
                     * the same step (y as read) */
  double t0;
  const char *xmetric;
  pts_t xs; /* the x metric's points */
  char *record;
  int names;
  char have[512];
} run_read;

static int point_cb(uint64_t step, double value, double time, void *arg) {
  run_read *r = arg;
  if (!r->steps.n) r->t0 = time;
  int rc = pts_add(&r->steps, (double)step, value);
  return rc ? rc : pts_add(&r->alt, time - r->t0, value);
}

static int xpoint_cb(uint64_t step, double value, double time, void *arg) {
  return pts_add(arg, (double)step, value);
}

static int name_list(const char *name, void *arg) {
  run_read *r = arg;
  size_t k = strlen(r->have);
  if (k < sizeof r->have - 80)
    snprintf(r->have + k, sizeof r->have - k, "%s%s", r->names++ ? ", " : "", name);
  return 0;
}

static int read_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  run_read *r = arg;
  int rc = lathe_store_run_get(st, txn, r->id, &r->record);
  if (rc == LATHE_ENOTFOUND) return lathe_seterr(LATHE_ENOTFOUND, "no run %u in the store", r->id);
  if (rc) return rc;
  if ((rc = lathe_store_metric_each(st, txn, r->id, r->metric, point_cb, r))) return rc;
  if (r->xmetric && (rc = lathe_store_metric_each(st, txn, r->id, r->xmetric, xpoint_cb, &r->xs)))
    return rc;
  const char *missing = !r->steps.n ? r->metric : r->xmetric && !r->xs.n ? r->xmetric : NULL;
  if (missing) {
    lathe_store_metric_names(st, txn, r->id, name_list, r);
    return lathe_seterr(LATHE_ENOTFOUND, "run %u has no metric '%s' (it has: %s)", r->id, missing,
                        r->names ? r->have : "none");
  }
  if (r->xmetric) /* x = the x metric at the same step, NaN where it has none */
    for (int i = 0, j = 0; i < r->steps.n; i++) {
      while (j < r->xs.n && r->xs.x[j] < r->steps.x[i]) j++;
      r->alt.x[i] = j < r->xs.n && r->xs.x[j] == r->steps.x[i] ? r->xs.y[j] : NAN;
    }
  return 0;
}

/* linear interpolation of (x, y) at u; NaN outside or across a gap */
static double interp(const double *x, const double *y, int n, double u) {
  int lo = 0, hi = n - 1;
  if (n == 0 || u < x[0] || u > x[n - 1]) return NAN;
  while (hi - lo > 1) {
    int m = (lo + hi) / 2;
    *(x[m] <= u ? &lo : &hi) = m;
  }
  if (x[hi] == x[lo]) return y[lo];
  double f = (u - x[lo]) / (x[hi] - x[lo]);
  return y[lo] + f * (y[hi] - y[lo]);
}

/* Mean and band of the group's runs at the first run's steps (the others
 * interpolated), over the steps all of them cover; x is the mean of the runs'
 * x at that step (the step itself, a time, or the x metric's value). */
static int aggregate(run_read *rr, int k, const lathe_plot_opts_t *o, line_t *L) {
  pts_t *p0 = &rr[0].steps;
  int alt = o->xtime || o->xmetric;
  double smin = -INFINITY, smax = INFINITY;
  for (int i = 0; i < k; i++)
    smin = fmax(smin, rr[i].steps.x[0]), smax = fmin(smax, rr[i].steps.x[rr[i].steps.n - 1]);
  L->x = malloc(p0->n * sizeof *L->x), L->mid = malloc(p0->n * sizeof *L->mid);
  L->lo = malloc(p0->n * sizeof *L->lo), L->hi = malloc(p0->n * sizeof *L->hi);
  if (!L->x || !L->mid || !L->lo || !L->hi) return lathe_seterr(LATHE_ENOMEM, "out of memory");
  const char *band = o->band ? o->band : "std";
  double v[k];
  L->n = 0, L->runs = k;
  for (int j = 0; j < p0->n; j++) {
    double u = p0->x[j];
    if (u < smin || u > smax) continue;
    int m = 0, mx = 0;
    double s = 0, xs = 0, lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < k; i++) {
      pts_t *p = &rr[i].steps;
      double y = i ? interp(p->x, p->y, p->n, u) : p0->y[j];
      double x = !alt ? u : i ? interp(p->x, rr[i].alt.x, p->n, u) : rr[0].alt.x[j];
      if (isfinite(y)) v[m++] = y, s += y, lo = fmin(lo, y), hi = fmax(hi, y);
      if (isfinite(x)) xs += x, mx++;
    }
    double mean = m ? s / m : NAN, var = 0;
    for (int i = 0; i < m; i++) var += (v[i] - mean) * (v[i] - mean);
    double sd = m > 1 ? sqrt(var / (m - 1)) : 0, w = 0;
    if (!strcmp(band, "std")) w = sd;
    if (!strcmp(band, "sem")) w = m > 1 ? sd / sqrt(m) : 0;
    L->x[L->n] = mx ? xs / mx : NAN, L->mid[L->n] = mean;
    L->lo[L->n] = strcmp(band, "minmax") ? mean - w : (m ? lo : NAN);
    L->hi[L->n] = strcmp(band, "minmax") ? mean + w : (m ? hi : NAN);
    if (k == 1 || !strcmp(band, "none")) L->lo[L->n] = L->hi[L->n] = mean;
    L->n++;
  }
  return 0;
}

/* What differs between the series' configs (first run of each), as labels. */
static void auto_labels(run_read **first, const lathe_plot_series_t *series, int n, line_t *L) {
  json_object *cfg[n], *rec[n];
  for (int i = 0; i < n; i++) {
    rec[i] = json_tokener_parse(first[i]->record);
    cfg[i] = NULL;
    if (rec[i]) json_object_object_get_ex(rec[i], "config", &cfg[i]);
  }
  for (int i = 0; i < n; i++) {
    if (series[i].label) {
      snprintf(L[i].label, sizeof L[i].label, "%s", series[i].label);
      continue;
    }
    char *p = L[i].label;
    size_t left = sizeof L[i].label;
    int keys = 0;
    if (n > 1 && cfg[i]) {
      json_object_object_foreach(cfg[i], key, val) {
        if (!strcmp(key, "seed") || keys >= 3) continue;
        int differs = 0;
        for (int j = 0; j < n && !differs; j++) {
          json_object *other = NULL;
          if (j == i || !cfg[j]) continue;
          json_object_object_get_ex(cfg[j], key, &other);
          differs = !other || strcmp(json_object_get_string(other), json_object_get_string(val));
        }
        if (!differs) continue;
        int w = snprintf(p, left, "%s%s=%s", keys ? " " : "", key, json_object_get_string(val));
        if (w < 0 || (size_t)w >= left) break;
        p += w, left -= w, keys++;
      }
    }
    if (keys && series[i].nruns > 1) snprintf(p, left, " (n=%d)", series[i].nruns);
    if (!keys) {
      int w = snprintf(p, left, "run%s", series[i].nruns > 1 ? "s" : "");
      for (int k = 0; k < series[i].nruns && w > 0 && (size_t)w < left; k++)
        w += snprintf(p + w, left - w, "%s%u", k ? "," : " ", series[i].runs[k]);
    }
  }
  for (int i = 0; i < n; i++) json_object_put(rec[i]);
}

static void xml_text(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '<')
      fputs("&lt;", f);
    else if (*s == '>')
      fputs("&gt;", f);
    else if (*s == '&')
      fputs("&amp;", f);
    else if (*s == '"')
      fputs("&quot;", f);
    else if ((unsigned char)*s >= 32 || *s == '\t')
      fputc(*s, f);
  }
}

typedef struct {
  double x0, x1, y0, y1; /* data ranges (y in log10 when logy) */
  double px, py, pw, ph; /* plot area in pixels */
  int logy, logx;
} frame_t;

static double fx(const frame_t *F, double x) {
  if (F->logx) x = x > 0 ? log10(x) : NAN;
  return F->px + (F->x1 > F->x0 ? (x - F->x0) / (F->x1 - F->x0) : 0.5) * F->pw;
}
static double fy(const frame_t *F, double y) {
  if (F->logy) y = y > 0 ? log10(y) : NAN;
  return F->py + F->ph - (F->y1 > F->y0 ? (y - F->y0) / (F->y1 - F->y0) : 0.5) * F->ph;
}

/* A polyline per finite stretch; at most a min and a max point per pixel
 * column, so a long noisy run stays small and keeps its spikes. */
static void polyline(FILE *f, const frame_t *F, const double *x, const double *y, int n,
                     const char *color, double width, double opacity) {
  int open = 0;
  long col = -1;
  double cmin = 0, cmax = 0, cminx = 0, cmaxx = 0;
  int have = 0;
#define FLUSH_COL()                                                                                \
  do {                                                                                             \
    if (have) {                                                                                    \
      if (cminx <= cmaxx)                                                                          \
        fprintf(f, "%.1f,%.1f %.1f,%.1f ", cminx, cmin, cmaxx, cmax);                              \
      else                                                                                         \
        fprintf(f, "%.1f,%.1f %.1f,%.1f ", cmaxx, cmax, cminx, cmin);                              \
    }                                                                                              \
    have = 0;                                                                                      \
  } while (0)
  for (int i = 0; i <= n; i++) {
    double sx = i < n ? fx(F, x[i]) : NAN, sy = i < n ? fy(F, y[i]) : NAN;
    if (!isfinite(sx) || !isfinite(sy)) {
      FLUSH_COL();
      if (open) fputs("\"/>\n", f);
      open = 0, col = -1;
      continue;
    }
    if (!open) {
      fprintf(f,
              "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-opacity=\"%.2f\" "
              "stroke-linejoin=\"round\" points=\"",
              color, width, opacity);
      open = 1;
    }
    if ((long)sx != col) {
      FLUSH_COL();
      col = (long)sx;
    }
    if (!have || sy < cmin) cmin = sy, cminx = sx;
    if (!have || sy > cmax) cmax = sy, cmaxx = sx;
    have = 1;
  }
#undef FLUSH_COL
}

static void band(FILE *f, const frame_t *F, const line_t *L, const char *color) {
  if (L->points) { /* error bars and markers */
    for (int k = 0; k < L->n; k++) {
      double x = fx(F, L->x[k]), y = fy(F, L->mid[k]), a = fy(F, L->lo[k]), b = fy(F, L->hi[k]);
      if (isfinite(x) && isfinite(a) && isfinite(b) && a != b)
        fprintf(f,
                "<path d=\"M%.1f,%.1f V%.1f M%.1f,%.1f H%.1f M%.1f,%.1f H%.1f\" stroke=\"%s\"/>\n",
                x, a, b, x - 4, a, x + 4, x - 4, b, x + 4, color);
      if (isfinite(x) && isfinite(y))
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", x, y, color);
    }
    return;
  }
  for (int i = 0; i < L->n;) { /* one polygon per finite stretch */
    int j = i;
    while (j < L->n && isfinite(fy(F, L->lo[j])) && isfinite(fy(F, L->hi[j]))) j++;
    if (j - i >= 2) {
      fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.2\" stroke=\"none\" points=\"", color);
      for (int k = i; k < j; k++) fprintf(f, "%.1f,%.1f ", fx(F, L->x[k]), fy(F, L->hi[k]));
      for (int k = j - 1; k >= i; k--) fprintf(f, "%.1f,%.1f ", fx(F, L->x[k]), fy(F, L->lo[k]));
      fputs("\"/>\n", f);
    }
    i = j + 1;
  }
}

/* The raw (unsmoothed) curve of a series that is one run, drawn faintly under
 * its smoothed line: x as plotted, y the values as read (alt.y is never smoothed). */
static int raw_curve(run_read *r, const lathe_plot_opts_t *o, const double **x, const double **y) {
  if (!r || !(o->smooth > 0)) return 0;
  *x = o->xtime || o->xmetric ? r->alt.x : r->steps.x, *y = r->alt.y;
  return r->alt.n;
}

/* Ticks of a log axis over [lo, hi] (lo > 0): 1, 2 and 5 times the powers of
 * ten inside it, or the powers alone when those are more than 7. */
static int log_ticks(double lo, double hi, double *out) {
  static const double m[3] = {1, 2, 5};
  for (int pass = 0; pass < 2; pass++) {
    int n = 0;
    for (int d = (int)floor(log10(lo)); d <= (int)ceil(log10(hi)) && n < 16; d++)
      for (int k = 0; k < (pass ? 1 : 3) && n < 16; k++) {
        double v = m[k] * pow(10, d);
        if (v >= lo && v <= hi) out[n++] = v;
      }
    if (n <= 7 || pass) return n;
  }
  return 0;
}

static int write_svg(FILE *f, line_t *L, int n, run_read **single, const lathe_plot_opts_t *o) {
  int W = o->width > 0 ? o->width : 640, H = o->height > 0 ? o->height : 400;
  /* what the shaded band is, when any line is a mean over several runs */
  const char *bk = o->band ? o->band : "std";
  int grouped = 0;
  for (int i = 0; i < n; i++) grouped |= L[i].runs > 1;
  char note[160] = "";
  if (grouped && strcmp(bk, "none"))
    snprintf(note, sizeof note,
             "line: mean over the runs of a group (n each in the legend); "
             "shaded: %s",
             !strcmp(bk, "std")   ? "\xc2\xb1"
                                    "1 standard deviation"
             : !strcmp(bk, "sem") ? "\xc2\xb1"
                                    "1 standard error of the mean"
                                  : "min to max");
  else if (grouped)
    snprintf(note, sizeof note, "line: mean over the runs of a group (n each in the legend)");
  for (int i = 0; i < n; i++)
    if (L[i].runs > 1) {
      size_t k = strlen(L[i].label);
      snprintf(L[i].label + k, sizeof L[i].label - k, " (n=%d)", L[i].runs);
    }
  frame_t F = {0};
  F.logy = o->logy, F.logx = o->logx;
  F.px = 70, F.pw = W - F.px - 24;
  double lx[n + 1];
  int lrow[n + 1];
  int legend_rows = legend_layout(L, n, F.px, F.pw, lx, lrow);
  double top = note[0] ? 54 : 40; /* the note sits under the title */
  F.py = top + 18.0 * legend_rows, F.ph = H - F.py - 50;
  /* ranges over every line and band */
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (int i = 0; i < n; i++) {
    double a, b;
    for (int k = 0; k < L[i].n; k++)
      if (!o->logx || L[i].x[k] > 0) xlo = fmin(xlo, L[i].x[k]), xhi = fmax(xhi, L[i].x[k]);
    if (chart_range(L[i].lo, L[i].n, o->logy, &a, &b)) ylo = fmin(ylo, a), yhi = fmax(yhi, b);
    if (chart_range(L[i].hi, L[i].n, o->logy, &a, &b)) ylo = fmin(ylo, a), yhi = fmax(yhi, b);
    const double *rx, *ry;
    int nr = raw_curve(single[i], o, &rx, &ry);
    if (nr && chart_range(ry, nr, o->logy, &a, &b)) ylo = fmin(ylo, a), yhi = fmax(yhi, b);
  }
  for (int i = 0; i < o->nhlines; i++) /* reference levels stay in view */
    if (isfinite(o->hlines[i]) && (!o->logy || o->hlines[i] > 0))
      ylo = fmin(ylo, o->hlines[i]), yhi = fmax(yhi, o->hlines[i]);
  if (!(ylo <= yhi))
    return lathe_seterr(LATHE_EDATA, "metric '%s' has no finite%s value to plot", o->metric,
                        o->logy ? " positive" : "");
  if (ylo == yhi) ylo -= 1, yhi += 1;
  if (!o->logy) { /* a little air above and below, as plotting libraries do */
    double pad = (yhi - ylo) * 0.04;
    ylo -= pad, yhi += pad;
  } else
    ylo /= 1.1, yhi *= 1.1;
  if (o->logx && !(xlo <= xhi))
    return lathe_seterr(LATHE_EDATA, "plot: no positive x to draw on a log scale");
  if (o->logx) xlo /= 1.25, xhi *= 1.25; /* room for the end markers */
  F.x0 = o->logx ? log10(xlo) : xlo, F.x1 = o->logx ? log10(xhi) : xhi,
  F.y0 = o->logy ? log10(ylo) : ylo, F.y1 = o->logy ? log10(yhi) : yhi;
  fprintf(f,
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
          "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
          "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
          W, H, W, H);
  fputs("<text x=\"", f);
  fprintf(f, "%.1f\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">", F.px + F.pw / 2);
  xml_text(f, o->title ? o->title : o->metric);
  fputs("</text>\n", f);
  if (note[0]) {
    fprintf(f, "<text x=\"%.1f\" y=\"38\" font-size=\"11\" fill=\"#555\" text-anchor=\"middle\">",
            F.px + F.pw / 2);
    xml_text(f, note);
    fputs("</text>\n", f);
  }
  /* grid and tick labels */
  double t[16];
  int nt = chart_ticks(ylo, yhi, o->logy, 7, t);
  double sp = nt > 1 ? t[1] - t[0] : yhi - ylo;
  char b[32];
  for (int i = 0; i < nt; i++) {
    double y = fy(&F, t[i]);
    fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e6e6e6\"/>\n", F.px,
            F.px + F.pw, y, y);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#333\">%s</text>\n",
            F.px - 6, y + 4, chart_fmt(t[i], chart_tick_spacing(t, nt, i), b, sizeof b));
  }
  nt = o->logx ? log_ticks(xlo, xhi, t) : chart_ticks(xlo, xhi, 0, 7, t);
  sp = nt > 1 ? t[1] - t[0] : xhi - xlo;
  for (int i = 0; i < nt; i++) {
    double x = fx(&F, t[i]);
    fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e6e6e6\"/>\n", x, x,
            F.py, F.py + F.ph);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#333\">%s</text>\n", x,
            F.py + F.ph + 18, chart_fmt(t[i], sp, b, sizeof b));
  }
  fprintf(f, "<path d=\"M%.1f,%.1f V%.1f H%.1f\" fill=\"none\" stroke=\"#222\"/>\n", F.px, F.py,
          F.py + F.ph, F.px + F.pw);
  fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", F.px + F.pw / 2, H - 12);
  xml_text(f, o->xlabel    ? o->xlabel
              : o->xmetric ? o->xmetric
              : o->xtime   ? "wall-clock time (s)"
                           : "step");
  fputs("</text>\n", f);
  fprintf(f, "<text transform=\"translate(16,%.1f) rotate(-90)\" text-anchor=\"middle\">",
          F.py + F.ph / 2);
  xml_text(f, o->metric);
  if (o->smooth > 0) fprintf(f, " (EMA %.3g)", o->smooth);
  fputs("</text>\n", f);
  /* marked x positions */
  for (int i = 0; i < o->nvlines; i++) {
    double x = fx(&F, o->vlines[i]);
    if (!(x >= F.px - 0.5 && x <= F.px + F.pw + 0.5)) { /* said, not silently dropped */
      fprintf(stderr,
              "lathe: plot: the line at x = %g is outside the data's x range [%g, %g]; "
              "not drawn\n",
              o->vlines[i], xlo, xhi);
      continue;
    }
    fprintf(f,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
            "stroke-dasharray=\"5,4\"/>\n",
            x, x, F.py, F.py + F.ph);
    if (o->vlabels && o->vlabels[i]) {
      int left = x + 4 + text_px(o->vlabels[i]) > W; /* near the right edge: label on the left */
      fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#555\"%s>",
              left ? x - 4 : x + 4, F.py + 12, left ? " text-anchor=\"end\"" : "");
      xml_text(f, o->vlabels[i]);
      fputs("</text>\n", f);
    }
  }
  for (int i = 0; i < o->nhlines; i++) { /* reference levels, labelled at the right */
    if (!isfinite(o->hlines[i]) || (o->logy && o->hlines[i] <= 0)) continue;
    double y = fy(&F, o->hlines[i]);
    fprintf(f,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
            "stroke-dasharray=\"2,3\"/>\n",
            F.px, F.px + F.pw, y, y);
    if (o->hlabels && o->hlabels[i]) {
      fprintf(f,
              "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#555\" "
              "text-anchor=\"end\">",
              F.px + F.pw - 4, y - 4);
      xml_text(f, o->hlabels[i]);
      fputs("</text>\n", f);
    }
  }
  /* bands, then raw curves, then lines, clipped to the plot area */
  fprintf(f,
          "<clipPath id=\"area\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
          "</clipPath>\n<g clip-path=\"url(#area)\">\n",
          F.px, F.py - 1, F.pw + 1, F.ph + 2);
  for (int i = 0; i < n; i++) band(f, &F, &L[i], palette[i % NPAL]);
  for (int i = 0; i < n; i++) {
    const double *rx, *ry;
    int nr = raw_curve(single[i], o, &rx, &ry);
    if (nr) polyline(f, &F, rx, ry, nr, palette[i % NPAL], 1, 0.25);
  }
  for (int i = 0; i < n; i++) polyline(f, &F, L[i].x, L[i].mid, L[i].n, palette[i % NPAL], 1.8, 1);
  fputs("</g>\n", f);
  /* legend: entries laid out by their text's width, in rows under the title */
  for (int i = 0; i < n; i++) {
    double ly = top + 18.0 * lrow[i];
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"18\" height=\"4\" fill=\"%s\"/>\n"
            "<text x=\"%.1f\" y=\"%.1f\">",
            lx[i], ly - 6, palette[i % NPAL], lx[i] + 24, ly);
    xml_text(f, L[i].label);
    fputs("</text>\n", f);
  }
  fputs("</svg>\n", f);
  return 0;
}

/* The figure written atomically: a temporary file renamed over o->out. */
static int write_file(line_t *L, int n, run_read **single, const lathe_plot_opts_t *o) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp%d", o->out, (int)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) return lathe_seterr(LATHE_EIO, "plot: cannot write %s: %s", o->out, strerror(errno));
  int rc = write_svg(f, L, n, single, o);
  if (fclose(f) && !rc) rc = lathe_seterr(LATHE_EIO, "plot: writing %s failed", o->out);
  if (!rc && rename(tmp, o->out))
    rc = lathe_seterr(LATHE_EIO, "plot: cannot write %s: %s", o->out, strerror(errno));
  if (rc) unlink(tmp);
  return rc;
}

int lathe_plot(lathe_store_t *st, const lathe_plot_series_t *series, int n,
               const lathe_plot_opts_t *o) {
  if (!o->metric || !*o->metric) return lathe_seterr(LATHE_EUSAGE, "plot: no metric given");
  if (!o->out || !*o->out) return lathe_seterr(LATHE_EUSAGE, "plot: no output file given");
  if (n < 1) return lathe_seterr(LATHE_EUSAGE, "plot: no runs given");
  if (!(o->smooth >= 0 && o->smooth < 1))
    return lathe_seterr(LATHE_EUSAGE, "plot: smoothing %g is outside [0, 1)", o->smooth);
  if (o->band && strcmp(o->band, "std") && strcmp(o->band, "sem") && strcmp(o->band, "minmax") &&
      strcmp(o->band, "none"))
    return lathe_seterr(LATHE_EUSAGE, "plot: band '%s' is not one of std, sem, minmax, none",
                        o->band);
  int total = 0;
  for (int i = 0; i < n; i++) {
    if (series[i].nruns < 1)
      return lathe_seterr(LATHE_EUSAGE, "plot: series %d has no runs", i + 1);
    total += series[i].nruns;
  }
  run_read *rr = calloc(total, sizeof *rr);
  line_t *L = calloc(n, sizeof *L);
  run_read **first = calloc(n, sizeof *first), **single = calloc(n, sizeof *single);
  int rc = rr && L && first && single ? 0 : lathe_seterr(LATHE_ENOMEM, "out of memory");
  for (int i = 0, k = 0; i < n && !rc; i++) {
    first[i] = &rr[k];
    for (int j = 0; j < series[i].nruns && !rc; j++, k++) {
      rr[k].id = series[i].runs[j], rr[k].metric = o->metric, rr[k].xmetric = o->xmetric;
      rc = lathe_store_read(st, read_txn, &rr[k]);
      if (!rc) chart_ema(rr[k].steps.y, rr[k].steps.n, o->smooth, rr[k].steps.y);
    }
    if (!rc) rc = aggregate(first[i], series[i].nruns, o, &L[i]);
    if (!rc && !L[i].n)
      rc = lathe_seterr(LATHE_EDATA, "plot: the runs of series %d share no x range", i + 1);
  }
  if (!rc) {
    auto_labels(first, series, n, L);
    for (int i = 0; i < n; i++) single[i] = series[i].nruns == 1 ? first[i] : NULL;
  }
  if (!rc) rc = write_file(L, n, single, o);
  for (int k = 0; k < total && rr; k++) {
    free(rr[k].steps.x), free(rr[k].steps.y), free(rr[k].alt.x), free(rr[k].alt.y);
    free(rr[k].xs.x), free(rr[k].xs.y);
    free(rr[k].record);
  }
  for (int i = 0; i < n && L; i++) {
    free(L[i].x), free(L[i].mid), free(L[i].lo), free(L[i].hi);
  }
  free(rr), free(L), free(first), free(single);
  return rc;
}

int lathe_plot_points(const lathe_plot_points_t *series, int n, const lathe_plot_opts_t *o) {
  if (!o->metric || !*o->metric) return lathe_seterr(LATHE_EUSAGE, "plot: no metric given");
  if (!o->out || !*o->out) return lathe_seterr(LATHE_EUSAGE, "plot: no output file given");
  if (n < 1) return lathe_seterr(LATHE_EUSAGE, "plot: no series given");
  line_t *L = calloc(n, sizeof *L);
  run_read **single = calloc(n, sizeof *single);
  int rc = L && single ? 0 : lathe_seterr(LATHE_ENOMEM, "out of memory");
  for (int i = 0; i < n && !rc; i++) {
    const lathe_plot_points_t *p = &series[i];
    if (p->n < 1) {
      rc = lathe_seterr(LATHE_EUSAGE, "plot: series %d has no points", i + 1);
      break;
    }
    snprintf(L[i].label, sizeof L[i].label, "%s", p->label ? p->label : "");
    L[i].n = p->n, L[i].runs = 1, L[i].points = 1;
    L[i].x = malloc(p->n * sizeof(double)), L[i].mid = malloc(p->n * sizeof(double));
    L[i].lo = malloc(p->n * sizeof(double)), L[i].hi = malloc(p->n * sizeof(double));
    if (!L[i].x || !L[i].mid || !L[i].lo || !L[i].hi) {
      rc = lathe_seterr(LATHE_ENOMEM, "out of memory");
      break;
    }
    for (int k = 0; k < p->n; k++) {
      L[i].x[k] = p->x[k], L[i].mid[k] = p->y[k];
      L[i].lo[k] = p->lo ? p->lo[k] : p->y[k], L[i].hi[k] = p->hi ? p->hi[k] : p->y[k];
    }
  }
  if (!rc) rc = write_file(L, n, single, o);
  for (int i = 0; i < n && L; i++) free(L[i].x), free(L[i].mid), free(L[i].lo), free(L[i].hi);
  free(L), free(single);
  return rc;
}
