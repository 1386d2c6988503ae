/* pref.c - preference and policy-gradient losses on sequence log-probabilities
 * (see nn.h, "Preference losses"). Double precision: these are a handful of
 * numbers per sequence, and the spec's test vectors are checked to 1e-6. */
#include <math.h>
#include <string.h>

#include "nn.h"

/* log sigmoid(x), stable for large |x| */
static double log_sigmoid(double x) {
  return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}
static double sigmoid(double x) {
  return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
}

int nn_pref_parse(const char *name) {
  static const char *names[] = {"dpo", "cdpo", "robust", "hinge", "ipo"};
  for (int i = 0; i < 5; i++)
    if (!strcmp(name, names[i])) return i;
  return -1;
}

double nn_pref_pair(const nn_pref_t *o, double pw, double pl, double rw, double rl, int nw, int nl,
                    double *dw, double *dl) {
  double b = o->beta, e = o->eps, dw_ = pw - rw, dl_ = pl - rl;
  double sw = 1, sl = 1;                      /* d h / d logpi(y_w), -d h / d logpi(y_l) */
  if (o->loss == NN_PREF_IPO && o->ipo_avg) { /* TRL: per-token averages, counts >= 1 */
    sw = 1.0 / (nw > 0 ? nw : 1), sl = 1.0 / (nl > 0 ? nl : 1);
  }
  double h = sw * dw_ - sl * dl_, loss, dh;
  switch (o->loss) {
  case NN_PREF_DPO:
    loss = -log_sigmoid(b * h), dh = -b * sigmoid(-b * h);
    break;
  case NN_PREF_CDPO:
    loss = -(1 - e) * log_sigmoid(b * h) - e * log_sigmoid(-b * h);
    dh = -b * (1 - e) * sigmoid(-b * h) + b * e * sigmoid(b * h);
    break;
  case NN_PREF_ROBUST:
    loss = (-(1 - e) * log_sigmoid(b * h) + e * log_sigmoid(-b * h)) / (1 - 2 * e);
    dh = (-b * (1 - e) * sigmoid(-b * h) - b * e * sigmoid(b * h)) / (1 - 2 * e);
    break;
  case NN_PREF_HINGE:
    loss = fmax(0, 1 - b * h), dh = 1 - b * h > 0 ? -b : 0;
    break;
  default: { /* IPO: the target margin is 1 / (2 tau), tau = beta */
    double m = h - 1 / (2 * b);
    loss = m * m, dh = 2 * m;
  }
  }
  if (dw) *dw = dh * sw;
  if (dl) *dl = -dh * sl;
  return loss;
}

void nn_pref_stats_add(nn_pref_stats_t *s, double beta, double pw, double pl, double rw,
                       double rl) {
  double c = beta * (pw - rw), r = beta * (pl - rl);
  s->chosen += c, s->rejected += r, s->margins += c - r, s->accuracies += c > r;
  s->logps_chosen += pw, s->logps_rejected += pl, s->pairs++;
}

double nn_bon_loss(double lp_best, double lp_worst, double lambda, double *gb, double *gw) {
  if (gb) *gb = -1;
  if (gw) *gw = lambda;
  return -lp_best + lambda * lp_worst;
}

double nn_rwr_weight(double r, double temp) {
  return exp(r / temp);
}

double nn_pg_reinforce_token(double lp, double lp_ref, double adv, double kl, double *grad) {
  if (grad) *grad = -adv + kl;
  return -(lp * adv - kl * (lp - lp_ref));
}

double nn_pg_ppo_token(double lp, double lp_old, double lp_ref, double adv, double clip, double kl,
                       double *grad) {
  double rho = exp(lp - lp_old), rc = fmin(fmax(rho, 1 - clip), 1 + clip);
  double a = -adv * rho, c = -adv * rc;
  /* the max picks the unclipped term unless clipping made it larger */
  int unclipped = a >= c;
  if (grad) *grad = (unclipped ? -adv * rho : 0) + kl;
  return (unclipped ? a : c) + kl * (lp - lp_ref);
}
