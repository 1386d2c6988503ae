/* chart.h - curves as pictures, without a terminal: tick placement, tick
 * labels, TensorBoard's smoothing, and the rasterisation of series into a grid
 * of character cells. The dashboard draws these grids with ncurses; the SVG
 * plots (plot.c) use the same ticks, labels and smoothing.
 *
 * A chart's cells hold dots: braille cells have 2 x 4 dots each (U+2800 block,
 * so a 60 x 15 cell chart resolves 120 x 60 points); ASCII cells use the same
 * dot grid and show it with ' . - : | glyphs when the locale is not UTF-8.
 * Non-finite values (NaN, +-inf) are gaps: they break the line and never
 * widen the range. Ownership: a chart owns its two arrays (chart_free).
 */
#ifndef LATHE_CHART_H
#define LATHE_CHART_H

#include <stddef.h>
#include <stdint.h>

enum { CHART_BRAILLE, CHART_ASCII };

typedef struct chart {
  int w, h, glyphs;      /* size in cells; CHART_BRAILLE or CHART_ASCII */
  double x0, x1, y0, y1; /* the data ranges mapped onto the grid */
  int logy;              /* y mapped through log10 (y0, y1 > 0) */
  uint8_t *dots;         /* w*h dot masks, row-major */
  uint8_t *color;        /* w*h: the series (1-based) that drew last in the cell; 0: none */
} chart_t;

/* Allocate a w x h cell chart. Returns 0, or -1 when out of memory. */
int chart_init(chart_t *c, int w, int h, int glyphs);
void chart_free(chart_t *c);
/* Set the ranges and clear every dot. */
void chart_frame(chart_t *c, double x0, double x1, double y0, double y1, int logy);
/* Draw the polyline through (x[i], y[i]) in series `color` (1..255); a point
 * whose x or y is not finite (or y <= 0 on a log axis) breaks the line; a lone
 * finite point between gaps is drawn as a dot. Dots outside the ranges are
 * dropped. */
void chart_line(chart_t *c, const double *x, const double *y, int n, int color);
/* The UTF-8 text of cell (col, row) into buf (at most 4 bytes + NUL): a
 * braille pattern, an ASCII glyph, or " " when empty. Returns buf. */
const char *chart_cell(const chart_t *c, int col, int row, char buf[5]);

/* The finite range of y[0..n) (only y > 0 when logy) into lo, hi. A constant
 * series gets a range around its value; returns the number of values used
 * (0: no finite value, lo and hi untouched). */
int chart_range(const double *y, int n, int logy, double *lo, double *hi);
/* Up to max ticks at "nice" values (1, 2, 5 x 10^k; powers of ten on a log
 * axis) inside [lo, hi]. Returns how many were written to out. */
int chart_ticks(double lo, double hi, int logy, int max, double *out);
/* A short label for v (at most 8 characters) given the tick spacing: "0.25",
 * "1.5k", "2M", "1e-05", "-3". Returns buf. */
const char *chart_fmt(double v, double spacing, char *buf, size_t n);
/* The spacing to format tick t[i] of n from chart_ticks with: the distance
 * between ticks, or the tick itself for powers of ten (log scale). */
double chart_tick_spacing(const double *t, int n, int i);
/* TensorBoard's debiased exponential moving average with weight w in [0, 1):
 * s = w*s + (1-w)*y over the finite values, out = s / (1 - w^k) after k of
 * them; non-finite values pass through unchanged. out may alias y. */
void chart_ema(const double *y, int n, double w, double *out);

#endif
