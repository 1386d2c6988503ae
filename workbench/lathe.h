/* lathe.h - the one public header for lathe plugins.
 *
 * A plugin is a shared object that exports one function,
 *
 *     const lathe_plugin_t *lathe_plugin_entry(int host_major, int host_minor);
 *
 * returning a static descriptor, or NULL when it cannot serve that API
 * (LATHE_PLUGIN_ENTRY(desc) writes it). The host dlopen()s built-in plugins
 * through exactly this path, so a user's own plugin is no different from ours.
 * Build one with (see share/examples/):
 *
 *     cc -shared -fPIC -I$PREFIX/include/lathe my.c -o my.so
 *
 * A plugin that uses the nn core (nn/nn.h) links the one copy every process
 * shares, -L$PREFIX/lib/lathe -llathe-nn, and sets nn_abi = NN_ABI.
 *
 * One shared object may hold several plugins: the host first looks for
 * lathe_plugin_entry_NAME (NAME as registered), then for lathe_plugin_entry.
 *
 * Versions. The API is MAJOR.MINOR. A minor version only appends: services at
 * the end of lathe_host_t, hooks at the end of an interface struct. A plugin
 * built against an older minor of the same major keeps loading; a plugin
 * may build against an older minor on purpose (-DLATHE_API_TARGET=N hides
 * what came later, and its descriptor then says N). A plugin never reads a
 * host service newer than host->minor; the host never reads a descriptor
 * field newer than the plugin's minor. A new major breaks every plugin.
 *
 * Kinds. Every plugin has the common base (name, kind, options, create,
 * destroy, save/load, validate) and exactly one interface of its kind:
 *  - algorithm: trains; the host calls step() again and again on a worker
 *    thread until it returns LATHE_DONE. Requires step, save and load.
 *  - environment: Gymnasium semantics (reset(seed), then step(action) ->
 *    obs, reward, terminated, truncated), driven by an algorithm or lathe.env.
 *    Requires spaces, reset, set_state, step, save and load.
 *  - task: scores language policies (prompts, reward, reference). A pure
 *    function of its config: save and load are NULL.
 *  - generator: produces a dataset record by record for `lathe data
 *    generate`; a pure function of its config: save and load are NULL.
 *  - text environment (6.2): turn-based, the observation is text (the
 *    dialogue so far) and the action one utterance; reward, terminated and
 *    truncated per turn, as environments. Requires reset, step, save and
 *    load.
 * The registry refuses a descriptor that breaks these rules, at load.
 *
 * Ownership. The descriptor, its interface and option table are static and
 * owned by the plugin. An instance (void *self) is created by create(), owned
 * by the host, and released by destroy(). When create() fails after setting
 * *self, the host calls destroy(*self): destroy must accept a partly built
 * instance (calloc'd fields, NULL pointers). Strings and pointers handed to a
 * plugin by the host are borrowed for the duration of the call unless stated.
 *
 * Threads. All hooks of one instance are called from one thread, never
 * concurrently. Host services may be called from that thread only.
 *
 * Errors. Functions return 0 (LATHE_OK) on success and a negative lathe error
 * code on failure, after calling host->fail() with a one-line message naming
 * what is wrong.
 *
 * Caveats. save() must capture everything that influences later steps
 * (parameters, optimizer moments, RNG states, replay buffers, environment
 * states, counters), so a run resumed from a checkpoint is bit-identical to
 * one never stopped.
 */
#ifndef LATHE_H
#define LATHE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LATHE_API_MAJOR 6
#define LATHE_API_MINOR 3
#ifndef LATHE_API_TARGET /* the minor a plugin builds against (see Versions) */
#define LATHE_API_TARGET LATHE_API_MINOR
#endif
#define LATHE_VERSION "0.2.0"

/* The most dimensions a box space may have (obs and actions); checked when an
 * environment is created, so callers may size buffers with it. */
#define LATHE_SPACE_MAX 64

#define LATHE_NO_SEED UINT64_MAX

/* step() results */
#define LATHE_CONTINUE 0
#define LATHE_DONE     1

/* Errors: negative, in a band clear of LMDB's and of negated errno values. */
#define LATHE_ERRNO_MAP(X)                                                                         \
  X(OK, 0, "success")                                                                              \
  X(EUSAGE, -32000, "usage error")                                                                 \
  X(ECONFIG, -32001, "invalid configuration")                                                      \
  X(ERECIPE, -32002, "recipe error")                                                               \
  X(ESTORE, -32003, "store error")                                                                 \
  X(ENOPLUGIN, -32004, "no such plugin")                                                           \
  X(EAPIVER, -32005, "plugin API version mismatch")                                                \
  X(EPLUGIN, -32006, "plugin error")                                                               \
  X(ENAN, -32007, "training diverged (non-finite value)")                                          \
  X(ESHAPE, -32008, "shape mismatch")                                                              \
  X(ECKPT, -32009, "bad checkpoint")                                                               \
  X(EDATA, -32010, "bad data")                                                                     \
  X(ENOMEM, -32011, "out of memory")                                                               \
  X(EIO, -32012, "input/output error")                                                             \
  X(ENOTFOUND, -32013, "not found")                                                                \
  X(EINTR, -32014, "interrupted")                                                                  \
  X(ERUN, -32015, "run failed")

enum {
#define LATHE_ERR_ENUM(name, code, text) LATHE_##name = (code),
  LATHE_ERRNO_MAP(LATHE_ERR_ENUM)
#undef LATHE_ERR_ENUM
};

/* ---- byte buffers (checkpoint payloads) ---------------------------------- */

/* A growable byte buffer. The writer owns p (free with free()). A reader views
 * bytes it does not own: p/n stay valid only while the host says so. */
typedef struct lathe_buf {
  uint8_t *p;
  size_t n, cap, off; /* off: read cursor */
  int err;            /* sticky: set on overflow or short read */
} lathe_buf_t;

/* Append n bytes. Sets b->err on allocation failure. */
static inline void lathe_buf_put(lathe_buf_t *b, const void *src, size_t n) {
  if (b->err) return;
  if (n > SIZE_MAX / 2 - b->n) {
    b->err = LATHE_ENOMEM;
    return;
  }
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n) cap *= 2;
    uint8_t *p = (uint8_t *)realloc(b->p, cap);
    if (!p) {
      b->err = LATHE_ENOMEM;
      return;
    }
    b->p = p, b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, src, n);
  b->n += n;
}
/* Bytes left to read at the cursor. */
static inline size_t lathe_buf_left(const lathe_buf_t *b) {
  return b->off <= b->n ? b->n - b->off : 0;
}
/* Read n bytes at the cursor into dst. Sets b->err (and zero-fills) if short;
 * safe for any n (no overflow in the bounds check). */
static inline void lathe_buf_get(lathe_buf_t *b, void *dst, size_t n) {
  if (b->err || n > lathe_buf_left(b)) {
    b->err = LATHE_ECKPT;
    memset(dst, 0, n);
    return;
  }
  memcpy(dst, b->p + b->off, n);
  b->off += n;
}
static inline void lathe_buf_free(lathe_buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}
#define LATHE_PUT(b, v) lathe_buf_put((b), &(v), sizeof(v))
#define LATHE_GET(b, v) lathe_buf_get((b), &(v), sizeof(v))

/* ---- configuration schema ------------------------------------------------ */

typedef enum { LATHE_INT, LATHE_NUM, LATHE_BOOL, LATHE_STR } lathe_type_t;

/* One option of a plugin's config. def is the default written as text
 * ("0.99", "true", "hl_gauss"); min/max bound INT and NUM (ignored when
 * min > max); choices, for STR, is a '|'-separated list or NULL for free text. */
typedef struct lathe_opt {
  const char *key;
  lathe_type_t type;
  const char *def;
  double min, max;
  const char *choices;
  const char *doc;
} lathe_opt_t;

typedef struct lathe_ctx lathe_ctx_t; /* the host's per-run context, opaque */
struct lathe_plugin;

/* Host services, passed to every call. */
typedef struct lathe_host {
  int major, minor; /* the host's API version */
  /* Resolved config values (already validated against the schema). */
  int64_t (*cfg_int)(lathe_ctx_t *, const char *key);
  double (*cfg_num)(lathe_ctx_t *, const char *key);
  const char *(*cfg_str)(lathe_ctx_t *, const char *key); /* valid for the run */
  /* The run's seed and numeric thread count. */
  uint64_t (*seed)(lathe_ctx_t *);
  /* Record metric NAME = v at the host's current step. NaN/Inf are recorded
   * as-is; the host's guard decides whether the run diverged. */
  void (*metric)(lathe_ctx_t *, const char *name, double v);
  /* Tell the host the total number of steps when known (for ETA), 0 if not. */
  void (*set_total)(lathe_ctx_t *, int64_t total);
  /* A log line for the run's event pane and headless stream. */
  void (*log)(lathe_ctx_t *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
  /* Report a failure: one line, naming what is wrong. Returns code. */
  int (*fail)(lathe_ctx_t *, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
  /* Datasets in the store: number of records of NAME (negative error if none),
   * and record i as compact JSON text (malloc'd; caller frees). */
  int64_t (*dataset_count)(lathe_ctx_t *, const char *name);
  char *(*dataset_get)(lathe_ctx_t *, const char *name, int64_t i);
  /* Create an instance of another registered plugin (e.g. an environment) with
   * config given as "key=value" strings. Destroy with plugin_destroy. */
  int (*plugin_create)(lathe_ctx_t *, const char *name, const char *const *kv, int nkv,
                       const struct lathe_plugin **plugin, void **self);
  void (*plugin_destroy)(lathe_ctx_t *, const struct lathe_plugin *plugin, void *self);
  /* The newest checkpoint of another run in the store: what its plugin's save
   * wrote, appended to out; plugin receives that run's plugin name. For runs
   * that start from another (DPO from an SFT model). Sets the message and
   * returns LATHE_ENOTFOUND for a missing run or checkpoint. */
  int (*run_checkpoint)(lathe_ctx_t *, uint32_t run, lathe_buf_t *out, char plugin[64]);
  /* Write dataset NAME from n records (each one JSON object as text) in one
   * transaction, schema-checked, its source "run ID"; refuses a name that
   * exists (LATHE_EUSAGE) and leaves the store unchanged on any failure. For
   * what a run builds and wants inspectable with `lathe data` (RRM's
   * augmented set). */
  int (*dataset_create)(lathe_ctx_t *, const char *name, const char *schema,
                        const char *const *records, int64_t n);
  /* This run's id in the store (0 outside a stored run). */
  uint32_t (*run_id)(lathe_ctx_t *);
#if LATHE_API_TARGET >= 1
  /* 6.1: 1 once the run was asked to stop (Ctrl-C, `lathe.stop`, the
   * dashboard), 0 otherwise. A step that runs long (an evaluation of many
   * episodes) may return early where its save() can resume from; the host
   * then checkpoints and stops. Always 0 outside a run. */
  int (*stopping)(lathe_ctx_t *);
#endif
#if LATHE_API_TARGET >= 3
  /* 6.3: data parallelism (`lathe run --mpi --data-parallel`, for algorithms
   * whose interface sets data_parallel). Every shard of a run runs the same
   * plugin from the same state and calls the same hooks; shard k computes its
   * share of each batch. Only shard 0's metrics, logs, checkpoints and
   * datasets reach the store. Returns this shard's index in [0, *count);
   * 0 of 1 outside a data-parallel run. */
  int (*shard)(lathe_ctx_t *, int *count);
  /* Sum x[0..n) element-wise over the run's shards, in place, in a fixed
   * order (((x0 + x1) + x2) ...), so a run repeats bit for bit; every shard
   * gets the same bytes. Every shard makes the same calls with the same n.
   * Returns 0 (at once with one shard) or a negative code to return from
   * step (LATHE_EINTR: shard 0 ended the run). */
  int (*allreduce)(lathe_ctx_t *, float *x, size_t n);
#endif
} lathe_host_t;

/* host->plugin_create with the options written as one list, "key=value,key=value"
 * (a config string such as pref's task_args or calql's env_config): at most 32
 * options in 1023 bytes, LATHE_ECONFIG beyond. */
static inline int lathe_plugin_create_list(const lathe_host_t *h, lathe_ctx_t *ctx,
                                           const char *name, const char *list,
                                           const struct lathe_plugin **plugin, void **self) {
  char buf[1024], *kv[32];
  int n = 0;
  size_t len = list ? strlen(list) : 0;
  if (len >= sizeof buf)
    return h->fail(ctx, LATHE_ECONFIG, "options for %s: longer than 1023 bytes", name);
  memcpy(buf, list ? list : "", len + 1);
  for (char *p = buf; *p;) {
    char *comma = strchr(p, ',');
    if (comma) *comma = 0;
    if (*p) {
      if (n == 32) return h->fail(ctx, LATHE_ECONFIG, "options for %s: more than 32", name);
      kv[n++] = p;
    }
    if (!comma) break;
    p = comma + 1;
  }
  return h->plugin_create(ctx, name, (const char *const *)kv, n, plugin, self);
}

/* What a task asks of a language policy. Tokens are ids in [0, vocab); a
 * response is at most max_response tokens and ends with eos (counted in it)
 * unless eos is -1 (fixed-length responses). */
typedef struct lathe_task_spec {
  int vocab, prompt_len, max_response, eos;
} lathe_task_spec_t;

/* What an environment says of itself beyond its spaces (info). */
typedef struct lathe_env_info {
  /* D4RL's reference returns, measured once with scripted policies: a normalised
   * score is 100 (return - ref_random) / (ref_expert - ref_random). */
  double ref_random, ref_expert;
  int goal; /* 1: terminated means the goal was reached (a success) */
} lathe_env_info_t;

/* A space: "discrete" with n values, or "box" with n floats in [low, high]
 * (n <= LATHE_SPACE_MAX). */
typedef struct lathe_space {
  int discrete; /* 1: integers 0..n-1; 0: box */
  int n;        /* discrete: number of values; box: dimension */
  float low[LATHE_SPACE_MAX], high[LATHE_SPACE_MAX];
} lathe_space_t;

typedef enum {
  LATHE_ALGORITHM = 1,
  LATHE_ENVIRONMENT = 2,
  LATHE_TASK = 3,
  LATHE_GENERATOR = 4,
  LATHE_TEXTENV = 5 /* 6.2 */
} lathe_kind_t;

/* "algorithm", "environment", "task", "generator", "textenv"; "?" for
 * anything else. */
static inline const char *lathe_kind_name(lathe_kind_t k) {
  return k == LATHE_ALGORITHM     ? "algorithm"
         : k == LATHE_ENVIRONMENT ? "environment"
         : k == LATHE_TASK        ? "task"
         : k == LATHE_GENERATOR   ? "generator"
         : k == LATHE_TEXTENV     ? "textenv"
                                  : "?";
}

/* ---- one interface per kind ---------------------------------------------- */

typedef struct lathe_algorithm {
  /* One bounded unit of work (an env step plus an update, a batch...).
   * Returns LATHE_CONTINUE, LATHE_DONE, or a negative error. */
  int (*step)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx);
  const char *main_metric; /* shown by `lathe runs`, may be NULL */
  /* 1 if a lower main_metric is better (a loss); 0: higher is better. Decides
   * the "best" that `lathe runs` shows and ckpt_keep_best keeps. */
  int main_lower_better;
#if LATHE_API_TARGET >= 3
  /* 6.3: 1 if step() splits its batch over h->shard() and sums its
   * gradients with h->allreduce(), so that a run's result does not depend on
   * the shard count beyond float rounding; 0: under --data-parallel its runs
   * step on rank 0 alone. The host reads it only from minor >= 3. */
  int data_parallel;
#endif
} lathe_algorithm_t;

/* Environment hooks receive the context of whoever drives the environment
 * (the algorithm's own, or the host's for lathe.env): for h->fail and h->log,
 * never for config (read it in create). obs holds obs.n floats. */
typedef struct lathe_env {
  int (*spaces)(void *self, lathe_space_t *obs, lathe_space_t *act);
  /* Start an episode. seed LATHE_NO_SEED keeps the environment's RNG stream
   * (Gymnasium's reset() without a seed); any other value reseeds it. */
  int (*reset)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, uint64_t seed, float *obs);
  /* Start an episode from an explicit state (the env's own state variables,
   * in its documented order); LATHE_ESHAPE if n is wrong. */
  int (*set_state)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const double *state, int n,
                   float *obs);
  /* action: act.discrete ? one float holding the integer : act.n floats. */
  int (*step)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const float *action, float *obs,
              double *reward, int *terminated, int *truncated);
  /* Optional (NULL: no reference returns, no goal). */
  int (*info)(void *self, lathe_env_info_t *info);
} lathe_env_t;

/* A task: prompts, a reward, and the distribution a reference policy is
 * pre-trained to match. Hooks get the caller's context as environments do. */
typedef struct lathe_task {
  int (*spec)(void *self, lathe_task_spec_t *spec);
  /* Prompt number i (prompt_len tokens); callers keep train and eval indices apart. */
  int (*prompt)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, uint64_t i, int *prompt);
  /* The task's reward for response resp (n tokens, the eos included if any). */
  double (*reward)(void *self, const int *prompt, const int *resp, int n);
  /* probs(vocab): the reference distribution of response token t given the
   * prompt and resp[0..t). */
  int (*reference)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const int *prompt,
                   const int *resp, int t, float *probs);
  /* Optional: 0 if a response may not enter offline preference data (a
   * skewed data distribution); NULL: every response may. */
  int (*offline_ok)(void *self, const int *prompt, const int *resp, int n);
} lathe_task_t;

/* A generator: the schema of the records it makes (see `lathe help data`),
 * and the next record appended to out as one JSON object; next returns
 * LATHE_CONTINUE, LATHE_DONE (no record written) or an error. */
typedef struct lathe_generator {
  const char *schema;
  int (*next)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, lathe_buf_t *out);
} lathe_generator_t;

#if LATHE_API_TARGET >= 2
/* What a text environment knows of its expected returns from a fresh
 * episode under discount gamma, each also undiscounted (NAN: unknown or
 * meaningless): the optimal policy's; `identify`, the best policy that
 * commits only once the answer is certain (twenty questions: ask until one
 * candidate is left, then guess); `blind`, a policy that needs no learning
 * (guessing through the candidates without asking). */
typedef struct lathe_textenv_info {
  double optimal, optimal_undiscounted, identify, identify_undiscounted;
  double blind, blind_undiscounted;
  int max_turns;     /* the turn limit (truncation), 0 if none */
  int max_utterance; /* bytes an utterance may have; longer ones are the env's to judge */
} lathe_textenv_info_t;

/* A turn-based text environment (6.2). Observations are NUL-terminated text
 * owned by the instance, valid until its next call. An utterance is any
 * bytes (utt, n): a malformed one is the game's to answer (an "invalid"
 * reply, the turn's reward), never an error; errors are for misuse (a step
 * after the episode ended, before any reset). */
typedef struct lathe_textenv {
  /* Start an episode; seed as lathe_env_t's reset. */
  int (*reset)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, uint64_t seed,
               const char **obs);
  int (*step)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const char *utt, size_t n,
              const char **obs, double *reward, int *terminated, int *truncated);
  /* Optional (NULL: nothing known): the values under discount gamma. */
  int (*info)(void *self, double gamma, lathe_textenv_info_t *info);
  /* Optional: start an episode from hidden state index i in [0, *count)
   * (the secret the game is about, e.g. the object), so a caller can
   * enumerate every episode; i < 0 only writes *count. */
  int (*set_hidden)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, int64_t i, int64_t *count,
                    const char **obs);
} lathe_textenv_t;
#endif

/* ---- the descriptor -------------------------------------------------------- */

typedef struct lathe_plugin {
  int major, minor;        /* the API built against: LATHE_API_MAJOR, LATHE_API_TARGET */
  const char *name;        /* registry name, e.g. "dqn" */
  lathe_kind_t kind;       /* which one interface below is set */
  const char *version;     /* the plugin's own version, e.g. "1.0.0" */
  const char *doc;         /* one line */
  const lathe_opt_t *opts; /* terminated by an entry with key == NULL */
  /* The nn library's NN_ABI the plugin was built against (nn.h), 0 if it
   * does not use it; refused at load unless it is the loaded library's. */
  int nn_abi;

  /* Create an instance from the validated config (see Ownership). */
  int (*create)(const lathe_host_t *h, lathe_ctx_t *ctx, void **self);
  void (*destroy)(void *self);
  /* Append the complete state to out / restore it from in (see Kinds). */
  int (*save)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, lathe_buf_t *out);
  int (*load)(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, lathe_buf_t *in);
  /* Optional: rules across config keys that the schema's per-key bounds
   * cannot say (v_min below v_max, a width divisible by heads). Called with
   * the resolved config by `lathe check` and before any instance is created.
   * Reads the config only; returns 0 or LATHE_ECONFIG via h->fail. */
  int (*validate)(const lathe_host_t *h, lathe_ctx_t *ctx);

  /* Exactly the one of kind is set. */
  const lathe_algorithm_t *algorithm;
  const lathe_env_t *env;
  const lathe_task_t *task;
  const lathe_generator_t *generator;
#if LATHE_API_TARGET >= 2
  const lathe_textenv_t *textenv; /* 6.2; the host reads it only from minor >= 2 */
#endif
} lathe_plugin_t;

typedef const lathe_plugin_t *(*lathe_plugin_entry_fn)(int host_major, int host_minor);

/* The entry point serving descriptor DESC to hosts of this major and a minor
 * at least the one built against. */
#define LATHE_PLUGIN_ENTRY_NAMED(FN, DESC)                                                         \
  const lathe_plugin_t *FN(int host_major, int host_minor) {                                       \
    return host_major == LATHE_API_MAJOR && host_minor >= LATHE_API_TARGET ? &(DESC) : NULL;       \
  }
#define LATHE_PLUGIN_ENTRY(DESC) LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry, DESC)

#endif
