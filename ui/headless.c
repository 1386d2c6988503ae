/* headless.c - JSON lines and plain progress (see headless.h). */
#include "headless.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../workbench/registry.h"

static void emit(json_object *o) {
  fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
        stdout);
  fputc('\n', stdout);
  fflush(stdout);
  json_object_put(o);
}

/* A JSON string of text with every invalid UTF-8 sequence replaced by U+FFFD,
 * so the stream stays valid whatever a recipe prints (sampled bytes...). */
static json_object *utf8_string(const char *text) {
  const unsigned char *s = (const unsigned char *)text;
  size_t n = strlen(text), w = 0;
  char *out = malloc(3 * n + 1);
  if (!out) return json_object_new_string("");
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    int ok = len > 0 && i + len <= n;
    for (int k = 1; ok && k < len; k++) ok = (s[i + k] & 0xC0) == 0x80;
    if (ok && len == 2) ok = c >= 0xC2; /* overlong */
    if (ok && len == 3) ok = !(c == 0xE0 && s[i + 1] < 0xA0) && !(c == 0xED && s[i + 1] >= 0xA0);
    if (ok && len == 4)
      ok = c <= 0xF4 && !(c == 0xF0 && s[i + 1] < 0x90) && !(c == 0xF4 && s[i + 1] >= 0x90);
    if (ok) {
      memcpy(out + w, s + i, len), w += len, i += len;
    } else {
      memcpy(out + w, "\xef\xbf\xbd", 3), w += 3, i++;
    }
  }
  json_object *o = json_object_new_string_len(out, (int)w);
  free(out);
  return o;
}

static json_object *base(lathe_session_t *s, const char *type, const lathe_event_t *ev) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "v", json_object_new_int(1));
  json_object_object_add(o, "type", json_object_new_string(type));
  if (ev) {
    json_object_object_add(o, "run", json_object_new_int64(ev->run));
    json_object_object_add(o, "step", json_object_new_int64((int64_t)ev->step));
  }
  json_object_object_add(o, "time", json_object_new_double(ev ? ev->time : lathe_now()));
  json_object_object_add(o, "elapsed",
                         json_object_new_double((ev ? ev->time : lathe_now()) - s->t0));
  return o;
}

static lathe_run_t *find_run(lathe_session_t *s, uint32_t id) {
  for (int i = 0; i < s->nruns; i++)
    if (s->runs[i]->id == id) return s->runs[i];
  return NULL;
}

static void progress_line(lathe_session_t *s, lathe_run_t *r) {
  double el = lathe_now() - r->view_t0;
  int64_t step = r->view_step;
  double rate = el > 0 ? (step - r->view_step0) / el : 0;
  char eta[32] = "";
  int64_t total = lathe_run_total(r);
  if (total > 0 && rate > 0) {
    double left = (total - step) / rate;
    snprintf(eta, sizeof eta, " ETA %dm%02ds", (int)(left / 60), (int)fmod(left, 60));
  }
  fprintf(stderr, "run %u %s step %lld", r->id, r->plugin->name, (long long)step);
  if (total > 0) fprintf(stderr, "/%lld", (long long)total);
  fprintf(stderr, " (%.0f/s%s)", rate, eta);
  const char *mm = lathe_main_metric(r->plugin);
  for (int i = 0, shown = 0; i < r->nview && shown < 4; i++)
    if (i < 3 || (mm && !strcmp(mm, r->view[i].name)))
      fprintf(stderr, " %s=%.4g", r->view[i].name, r->view[i].value), shown++;
  fputc('\n', stderr);
}

static void on_tick(uv_timer_t *t) {
  lathe_session_t *s = t->data;
  for (int i = 0; i < s->nruns; i++)
    if (lathe_run_active(s->runs[i]) && atomic_load(&s->runs[i]->status) == RUN_RUNNING)
      progress_line(s, s->runs[i]);
}

void lathe_headless_start(lathe_session_t *s) {
  if (!s->progress) return;
  uv_timer_start(&s->tick, on_tick, 1000, 1000);
  uv_unref((uv_handle_t *)&s->tick);
}

void lathe_headless_print(lathe_session_t *s, const char *text) {
  if (!s->json_out) {
    fputs(text, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    return;
  }
  json_object *o = base(s, "print", NULL);
  json_object_object_add(o, "text", utf8_string(text));
  emit(o);
}

void lathe_headless_event(lathe_session_t *s, const lathe_event_t *ev) {
  lathe_run_t *r = find_run(s, ev->run);
  if (s->progress && r) {
    if (ev->type == EV_LOG) fprintf(stderr, "run %u: %s\n", ev->run, ev->text);
    if (ev->type == EV_END)
      fprintf(stderr, "run %u %s: %s at step %llu%s%s\n", ev->run, r->plugin->name, ev->name,
              (unsigned long long)ev->step, ev->text ? ": " : "", ev->text ? ev->text : "");
  }
  if (!s->json_out) return;
  json_object *o, *rec = NULL, *v;
  switch (ev->type) {
  case EV_START:
    o = base(s, "start", ev);
    if (r) {
      json_object_object_add(o, "plugin", json_object_new_string(r->plugin->name));
      json_object_object_add(o, "config", lathe_cfg_json(&r->cfg));
      json_object_object_add(o, "seed", json_object_new_int64((int64_t)r->seed));
      json_object_object_add(o, "resumed", json_object_new_boolean(r->resume));
    }
    break;
  case EV_METRIC:
    o = base(s, "metric", ev);
    json_object_object_add(o, "name", json_object_new_string(ev->name));
    json_object_object_add(o, "value",
                           isfinite(ev->value) ? json_object_new_double(ev->value) : NULL);
    break;
  case EV_LOG:
    o = base(s, "log", ev);
    json_object_object_add(o, "text", utf8_string(ev->text ? ev->text : ""));
    break;
  case EV_CKPT:
    o = base(s, "ckpt", ev);
    break;
  case EV_END:
    o = base(s, "end", ev);
    json_object_object_add(o, "status", json_object_new_string(ev->name));
    if (r) {
      pthread_mutex_lock(&s->mu);
      rec = r->record ? json_tokener_parse(r->record) : NULL;
      pthread_mutex_unlock(&s->mu);
    }
    if (rec && json_object_object_get_ex(rec, "summary", &v))
      json_object_object_add(o, "summary", json_object_get(v));
    json_object_put(rec);
    if (ev->text) json_object_object_add(o, "error", json_object_new_string(ev->text));
    break;
  default:
    return;
  }
  emit(o);
}
