/* chart.c - ticks, labels, smoothing and cell rasterisation (see chart.h). */
#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int chart_init(chart_t *c, int w, int h, int glyphs) {
  memset(c, 0, sizeof *c);
  if (w < 1) w = 1;
  if (h < 1) h = 1;
  c->w = w, c->h = h, c->glyphs = glyphs;
  c->dots = calloc((size_t)w * h, 1);
  c->color = calloc((size_t)w * h, 1);
  if (c->dots && c->color) return 0;
  chart_free(c);
  return -1;
}

void chart_free(chart_t *c) {
  free(c->dots), free(c->color);
  c->dots = c->color = NULL;
}

void chart_frame(chart_t *c, double x0, double x1, double y0, double y1, int logy) {
  c->x0 = x0, c->x1 = x1, c->logy = logy;
  c->y0 = logy ? log10(y0) : y0, c->y1 = logy ? log10(y1) : y1;
  memset(c->dots, 0, (size_t)c->w * c->h);
  memset(c->color, 0, (size_t)c->w * c->h);
}

/* the bit of dot (dx, dy) inside a braille cell */
static const uint8_t dotbit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};

static void plot_dot(chart_t *c, long px, long py, int color) {
  if (px < 0 || py < 0 || px >= 2L * c->w || py >= 4L * c->h) return;
  size_t i = (size_t)(py / 4) * c->w + (size_t)(px / 2);
  c->dots[i] |= dotbit[py % 4][px % 2];
  c->color[i] = (uint8_t)color;
}

/* data -> dot coordinates; 0 if the point is a gap */
static int to_dots(const chart_t *c, double x, double y, double *px, double *py) {
  if (c->logy) y = y > 0 ? log10(y) : NAN;
  if (!isfinite(x) || !isfinite(y)) return 0;
  double W = 2.0 * c->w - 1, H = 4.0 * c->h - 1;
  double dx = c->x1 - c->x0, dy = c->y1 - c->y0;
  *px = dx > 0 ? (x - c->x0) / dx * W : W / 2;
  *py = dy > 0 ? (1 - (y - c->y0) / dy) * H : H / 2;
  /* far outside: clamp so the line's slope stays right without huge loops */
  const double lim = 1e6;
  *px = fmax(-lim, fmin(lim, *px)), *py = fmax(-lim, fmin(lim, *py));
  return 1;
}

static void segment(chart_t *c, long x0, long y0, long x1, long y1, int color) {
  long dx = labs(x1 - x0), dy = -labs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  long err = dx + dy, W = 2L * c->w, H = 4L * c->h;
  for (;;) {
    plot_dot(c, x0, y0, color);
    if (x0 == x1 && y0 == y1) break;
    /* both ends far off the grid on the same side: nothing left to draw */
    if ((x0 < 0 && x1 < 0) || (x0 >= W && x1 >= W) || (y0 < 0 && y1 < 0) || (y0 >= H && y1 >= H))
      break;
    long e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

void chart_line(chart_t *c, const double *x, const double *y, int n, int color) {
  double px, py, qx = 0, qy = 0;
  int have = 0;
  for (int i = 0; i < n; i++) {
    if (!to_dots(c, x[i], y[i], &px, &py)) {
      have = 0;
      continue;
    }
    if (have)
      segment(c, lround(qx), lround(qy), lround(px), lround(py), color);
    else
      plot_dot(c, lround(px), lround(py), color);
    qx = px, qy = py, have = 1;
  }
}

const char *chart_cell(const chart_t *c, int col, int row, char buf[5]) {
  uint8_t m = c->dots[(size_t)row * c->w + col];
  if (!m) return strcpy(buf, " ");
  if (c->glyphs == CHART_BRAILLE) { /* U+2800 + m, as UTF-8 */
    unsigned cp = 0x2800u + m;
    buf[0] = (char)(0xE0 | (cp >> 12)), buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[2] = (char)(0x80 | (cp & 0x3F)), buf[3] = 0;
    return buf;
  }
  int top = (m & 0x09) != 0, mid = (m & 0x36) != 0, bot = (m & 0xC0) != 0;
  buf[0] = top + mid + bot == 3 ? '|' : top + mid + bot == 2 ? ':' : top ? '\'' : mid ? '-' : '.';
  buf[1] = 0;
  return buf;
}

int chart_range(const double *y, int n, int logy, double *lo, double *hi) {
  double a = INFINITY, b = -INFINITY;
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (!isfinite(y[i]) || (logy && y[i] <= 0)) continue;
    a = fmin(a, y[i]), b = fmax(b, y[i]), k++;
  }
  if (!k) return 0;
  if (a == b) { /* constant: a range around the value */
    double d = logy ? 0 : (a == 0 ? 1 : fabs(a) * 0.1);
    if (logy)
      a /= 2, b *= 2;
    else
      a -= d, b += d;
  }
  *lo = a, *hi = b;
  return k;
}

static double nice_step(double raw) {
  double mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

int chart_ticks(double lo, double hi, int logy, int max, double *out) {
  if (max < 1 || !isfinite(lo) || !isfinite(hi) || hi < lo) return 0;
  if (logy && lo > 0) {
    int d0 = (int)ceil(log10(lo) - 1e-9), d1 = (int)floor(log10(hi) + 1e-9);
    if (d1 - d0 >= 1) { /* at least two decades: powers of ten, thinned to fit */
      int every = (d1 - d0) / max + 1, n = 0;
      for (int d = d0; d <= d1 && n < max; d += every) out[n++] = pow(10, d);
      return n;
    }
  }
  if (hi == lo) {
    out[0] = lo;
    return 1;
  }
  double step = nice_step((hi - lo) / max);
  for (;;) {
    double first = ceil(lo / step - 1e-9) * step;
    int n = 0;
    for (double v = first; v <= hi + step * 1e-9 && n <= max; v = first + n * step) {
      if (n < max) out[n] = fabs(v) < step * 1e-9 ? 0 : v;
      n++;
    }
    if (n <= max) return n;
    step = nice_step(step * 1.01);
  }
}

double chart_tick_spacing(const double *t, int n, int i) {
  if (n < 2) return 0;
  if (t[0] > 0 && t[1] / t[0] >= 9.99) return t[i]; /* powers of ten: each its own */
  return t[1] - t[0];
}

const char *chart_fmt(double v, double spacing, char *buf, size_t n) {
  if (!isfinite(v)) {
    snprintf(buf, n, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    return buf;
  }
  if (v == 0) {
    snprintf(buf, n, "0");
    return buf;
  }
  spacing = fabs(spacing) > 0 ? fabs(spacing) : fabs(v);
  double a = fmax(fabs(v), spacing);
  static const struct {
    double scale;
    char suffix;
  } big[] = {{1e12, 'T'}, {1e9, 'G'}, {1e6, 'M'}, {1e3, 'k'}};
  if (a >= 1e4 && a < 1e15) {
    for (int i = 0; i < 4; i++)
      if (a >= big[i].scale * (i == 3 ? 10 : 1)) {
        int d = (int)ceil(-log10(spacing / big[i].scale) - 1e-9);
        d = d < 0 ? 0 : d > 2 ? 2 : d;
        snprintf(buf, n, "%.*f%c", d, v / big[i].scale, big[i].suffix);
        return buf;
      }
  }
  if (a >= 1e15 || a < 1e-3) { /* scientific, short */
    snprintf(buf, n, "%.1e", v);
    char *e = strchr(buf, 'e'); /* 1.0e-05 -> 1e-05 */
    if (e && e - buf >= 2 && e[-1] == '0' && e[-2] == '.') memmove(e - 2, e, strlen(e) + 1);
    return buf;
  }
  int d = (int)ceil(-log10(spacing) - 1e-9);
  d = d < 0 ? 0 : d > 4 ? 4 : d;
  snprintf(buf, n, "%.*f", d, v);
  return buf;
}

void chart_ema(const double *y, int n, double w, double *out) {
  double last = 0;
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (!isfinite(y[i]) || w <= 0) {
      out[i] = y[i];
      continue;
    }
    last = last * w + (1 - w) * y[i];
    k++;
    out[i] = last / (1 - pow(w, k));
  }
}
