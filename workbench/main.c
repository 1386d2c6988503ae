/* main.c - the `lathe` command: argv -> subcommand.
 *
 * Data goes to stdout, everything else to stderr. Exit statuses (man page,
 * EXIT STATUS): 0 ok, 1 run failed, 2 usage, 3 recipe or config, 4 store,
 * 5 plugin, 6 diverged, 130/143 stopped by SIGINT/SIGTERM after a checkpoint.
 * Only this file calls exit().
 */
#include <cblas.h>
#include <curses.h>
#include <lmdb.h>
#include <lua.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "../lua/l_lathe.h"
#include "../storage/dataset.h"
#include "../ui/dashboard.h"
#include "../ui/headless.h"
#include "../ui/plot.h"
#include "error.h"
#include "nn/nn.h"
#include "registry.h"
#include "cluster.h"
#include "run.h"

extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);

typedef struct opts {
  const char *store;
  int headless, json, csv, jsonl, threads, workers;
  long long seed;
  int have_seed;
  const char *metric, *name, *schema, *out;
  const char *smooth, *xaxis, *band, *title, *size; /* lathe plot */
  int logy, recipe;                                 /* show --recipe */
  long long from_ckpt;                              /* resume --from-checkpoint */
  int have_from;
  int mpi;     /* --mpi: ranks of an Open MPI job (workbench/cluster.h) */
  int dp;      /* --data-parallel: every run sharded over the ranks */
  char **sets; /* --set; lathe plot's --label, --vline and --hline share the array sizes */
  int nsets;
  char **labels, **vlines, **hlines;
  int nlabels, nvlines, nhlines;
  char **args; /* positional */
  int nargs;
} opts_t;

static int usage_err(const char *cmd, const char *fmt, const char *arg) {
  fprintf(stderr, "lathe%s%s: ", cmd ? " " : "", cmd ? cmd : "");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see `lathe %s --help`)\n", cmd ? cmd : "help");
  return 2;
}

/* ---- commands ---- */

/* Every command: its name (and alias), what runs it, the options it takes
 * (an option given to a command it does not belong to is refused with that
 * command's usage, never ignored), and its help, examples first. One table
 * drives dispatch, `lathe help` and the option check. */
static int cmd_run(opts_t *o);
static int cmd_check(opts_t *o);
static int cmd_resume(opts_t *o);
static int cmd_watch(opts_t *o);
static int cmd_plot(opts_t *o);
static int cmd_runs(opts_t *o);
static int cmd_show(opts_t *o);
static int cmd_metrics(opts_t *o);
static int cmd_compare(opts_t *o);
static int cmd_rm(opts_t *o);
static int cmd_plugins(opts_t *o);
static int cmd_data(opts_t *o);
static int cmd_store(opts_t *o);
static int cmd_doctor(opts_t *o);

static const struct command {
  const char *name, *alias;
  int (*fn)(opts_t *); /* NULL: help and version, answered before parsing */
  const char *opts;    /* the options it takes, space-separated and space-padded */
  const char *summary, *help;
} cmds[] = {
    {"run", NULL, cmd_run,
     " --store --headless --set --seed --threads --workers --mpi --data-parallel ", "run a recipe",
     "examples:\n"
     "  lathe run share/recipes/hlgauss_cartpole.lua\n"
     "  lathe run my.lua --headless --seed 3 --set lr=3e-4 --set dqn.batch_size=64\n"
     "usage: lathe run RECIPE.lua [--store PATH] [--headless] [--set KEY=VALUE]...\n"
     "                            [--seed N] [--threads N] [--workers N]\n"
     "                            [--mpi [--data-parallel]]\n"
     "  --store PATH     the store (default ./lathe.lmdb, or $LATHE_STORE)\n"
     "  --headless       JSON lines on stdout (the default when stdout is not a terminal)\n"
     "  --set KEY=VALUE  override a config key of every run (PLUGIN.KEY for one plugin)\n"
     "                   or a recipe option read with lathe.opt(KEY, default)\n"
     "  --seed N         add N to the seed of every run\n"
     "  --threads N      numeric threads: OpenBLAS's and the nn core's parallel loops;\n"
     "                   default: all cores\n"
     "  --workers N      runs stepped in parallel (default 1); for sweeps of small\n"
     "                   networks, --threads 1 --workers <cores> is fastest\n"
     "  --mpi            one rank of an Open MPI job (mpirun -np N lathe run R --mpi):\n"
     "                   rank 0 runs the recipe and owns the store, the other ranks\n"
     "                   step its runs, --workers at a time each\n"
     "  --data-parallel  with --mpi: one run at a time, each step's batch split over\n"
     "                   every rank and the gradients summed (sft, pref, rm, rrm;\n"
     "                   other plugins step on rank 0 alone); the batch must divide\n"
     "                   by the number of ranks\n"},
    {"resume", NULL, cmd_resume,
     " --store --headless --threads --workers --from-checkpoint --mpi --data-parallel ",
     "continue interrupted or crashed runs",
     "examples:\n"
     "  lathe resume 12\n"
     "  lathe resume 3 4 5 --threads 1 --workers 2\n"
     "usage: lathe resume RUN... [--store PATH] [--headless] [--threads N] [--workers N]\n"
     "                           [--mpi [--data-parallel]]\n"
     "       lathe resume RUN --from-checkpoint STEP\n"
     "  Continues each RUN from its newest checkpoint; the result is bit-identical to\n"
     "  a run never stopped (same thread count). A checkpoint whose checksum does not\n"
     "  match is refused; --from-checkpoint continues from an older one (`lathe show\n"
     "  RUN` lists them), dropping the metrics and checkpoints after it.\n"},
    {"watch", NULL, cmd_watch, " --store ",
     "the live dashboard on the runs of a store another process writes",
     "examples:\n"
     "  lathe run big.lua --headless > big.jsonl &   # then, in another terminal:\n"
     "  lathe watch\n"
     "  lathe watch 3 4 5 --store runs.lmdb\n"
     "usage: lathe watch [RUN...] [--store PATH]\n"
     "  Opens the store read-only and follows RUN... (default: the running runs, or\n"
     "  the newest run, and the runs created while it watches). Finished runs are\n"
     "  shown whole. Keys: ? help, q quit, arrows select, s smooth, x x-axis, l log-y,\n"
     "  / filter, + - overlay. Pausing and checkpointing belong to `lathe run`.\n"},
    {"plot", NULL, cmd_plot,
     " --store --logy --smooth --x --band --title --size --label --vline --hline --metric "
     "--output ",
     "write a metric of several runs as an SVG figure",
     "examples:\n"
     "  lathe plot 3 -o loss.svg --metric loss\n"
     "  lathe plot 1,2,3 4,5,6 --metric eval/episodic_return --smooth 0.6 -o cmp.svg\n"
     "  lathe plot 1-5 6-10 --metric eval/normalized_score --label CQL --label Cal-QL \\\n"
     "             --vline 100000:online -o calql.svg\n"
     "  lathe plot 4-6 7-9 --metric eval/return --hline -3.2592:optimal -o 20q.svg\n"
     "usage: lathe plot RUNS... --metric NAME -o FILE.svg [--smooth W] [--x step|time|METRIC]\n"
     "                  [--logy] [--band std|sem|minmax|none] [--title T] [--label L]...\n"
     "                  [--vline X[:LABEL]]... [--hline Y[:LABEL]]... [--size WxH]\n"
     "                  [--store PATH]\n"
     "  Each RUNS is one run (3), or a group (1,2,3 or 1-3): its mean is drawn with a\n"
     "  shaded band (default: one standard deviation across the group's runs).\n"
     "  Legend labels default to the config keys that differ between the series.\n"
     "  --smooth is TensorBoard's EMA weight in [0, 1); a single run also shows its\n"
     "  raw curve faintly. --x METRIC plots against another metric logged at the\n"
     "  same steps (--x eval/kl --metric eval/reward: reward against KL).\n"
     "  --vline marks an x position (a phase boundary), --hline a reference level\n"
     "  (an optimum, a baseline's score), kept inside the y range.\n"},
    {"runs", "ls", cmd_runs, " --store --json ", "list runs with their main metric's last and best",
     "examples:\n"
     "  lathe runs\n"
     "  lathe runs --json | jq .\n"
     "usage: lathe runs [--store PATH] [--json]\n"
     "  Columns: id, recipe, plugin, status, step, time since the run's record was\n"
     "  last updated, the main metric's last value and its best as value@step\n"
     "  (higher or lower being better as the plugin declares).\n"},
    {"show", NULL, cmd_show, " --store --json --recipe ",
     "print a run's config, status, last and best, checkpoints and latest metrics",
     "examples:\n"
     "  lathe show 3\n"
     "  lathe show 3 --recipe > again.lua   # the recipe that started it, as stored\n"
     "usage: lathe show RUN [--store PATH] [--json | --recipe]\n"},
    {"metrics", NULL, cmd_metrics, " --store --csv --jsonl --metric ",
     "export the curves of one or more runs",
     "examples:\n"
     "  lathe metrics 3 --csv > run3.csv\n"
     "  lathe metrics 3 --metric loss\n"
     "  lathe metrics 1-5 7 --metric eval/reward --jsonl > sweep.jsonl\n"
     "usage: lathe metrics RUNS... [--csv|--jsonl] [--metric NAME] [--store PATH]\n"
     "  RUNS: 3, 1,2,3 or 1-5. Default output: CSV with columns metric,step,value,time\n"
     "  (run,metric,step,value,time for several runs: long format); --jsonl gives one\n"
     "  object per point with its run. Values are the shortest text that reads back\n"
     "  exactly. Every run and metric is checked before anything is printed.\n"},
    {"compare", NULL, cmd_compare, " --store --json --metric ",
     "what differs between runs, and how each did",
     "examples:\n"
     "  lathe compare 3 7\n"
     "  lathe compare 1 2 3 --metric eval/kl --json\n"
     "usage: lathe compare RUN RUN... [--metric NAME] [--json] [--store PATH]\n"
     "  The config keys whose values differ, then the main metric (and --metric)\n"
     "  per run: last value, best value, and the mean over the last 10% of steps.\n"},
    {"rm", NULL, cmd_rm, " --store ", "delete runs with their metrics and checkpoints",
     "examples:\n"
     "  lathe rm 3 4\n"
     "usage: lathe rm RUN... [--store PATH]\n"},
    {"plugins", NULL, cmd_plugins, " ", "list plugins, or show one plugin's options",
     "examples:\n"
     "  lathe plugins\n"
     "  lathe plugins dqn\n"
     "  LATHE_PLUGIN_PATH=$PWD/hello.so lathe plugins hello\n"
     "usage: lathe plugins [NAME]\n"
     "  Kinds: algorithm (runs), environment, task, generator, textenv (turn-based,\n"
     "  text in and out). Your own plugin is a shared object built against lathe.h\n"
     "  (plugin API 6.3; one built for 6.0 to 6.2 loads too), declared by\n"
     "  LATHE_PLUGIN_PATH or lathe.register{}: see\n"
     "  share/examples/hello.c. A plugin that breaks its kind's rules is refused\n"
     "  with the rule it breaks.\n"},
    {"data", NULL, cmd_data, " --store --set --name --schema ", "manage datasets in the store",
     "examples:\n"
     "  lathe data import pairs.jsonl --name hh --schema prefs\n"
     "  lathe data ls\n"
     "  lathe data export hh > hh.jsonl\n"
     "  lathe data rm hh\n"
     "  lathe data generate mazedata umaze-noisy --set maze=umaze --set noise=0.4\n"
     "  lathe data generate prefworld world-flip --set set=flip --set pairs=1000\n"
     "usage: lathe data ls|import|export|rm|generate ... [--store PATH]\n"
     "  import FILE.jsonl[.gz] --name NAME --schema SCHEMA\n"
     "      schemas: prefs (prompt, chosen, rejected; HH-RLHF's lines, whose chosen and\n"
     "      rejected are whole transcripts, get the shared prefix through the last\n"
     "      \"Assistant:\" turn as prompt; PandaLM's instruction, input, response1,\n"
     "      response2 and annotator votes become prompt, chosen, rejected and label;\n"
     "      an optional label is P(chosen wins), 0.5 a tie), sft (prompt, response),\n"
     "      math (question, solution, answer; GSM8K's question and answer ending in\n"
     "      \"#### N\" become question, solution (no <<...>> annotations) and N;\n"
     "      MATH's problem becomes question), text (text), transitions (obs, action, reward,\n"
     "      next_obs, terminated, truncated; one transition a line, a trajectory's\n"
     "      lines in order; D4RL's names observations, actions, rewards,\n"
     "      next_observations, terminals, timeouts are taken too, flags as 0/1),\n"
     "      any. A FILE not named .jsonl may hold one JSON array of records. The\n"
     "      import is atomic: a bad line fails it whole with FILE:LINE and the\n"
     "      field at fault.\n"
     "  generate PLUGIN NAME [--set KEY=VALUE]...\n"
     "      run a generator plugin (`lathe plugins` lists them; `lathe plugins\n"
     "      mazedata` its options) and store what it makes as NAME, atomically.\n"},
    {"store", NULL, cmd_store, " --store ",
     "check a store for damage, or back it up while runs write",
     "examples:\n"
     "  lathe store check\n"
     "  lathe store backup /backups/lathe-2026-12-03 --store runs.lmdb\n"
     "usage: lathe store check|backup [DEST] [--store PATH]\n"
     "  check   walks every table: run records, metric points, checkpoints (each\n"
     "          checksum verified), datasets (manifests, record counts, JSON);\n"
     "          prints each damaged entry; exit 0 if clean, 4 if damaged.\n"
     "  backup  a consistent compacted copy in the new folder DEST (LMDB's copy\n"
     "          with compaction), taken while other processes write.\n"},
    {"check", NULL, cmd_check, " --set --seed ",
     "validate a recipe and every config in it without running",
     "examples:\n"
     "  lathe check share/recipes/hlgauss_cartpole.lua\n"
     "usage: lathe check RECIPE.lua [--set KEY=VALUE]...\n"
     "  Runs the recipe with every run validated (each key, and the plugin's\n"
     "  rules across keys) but not started: each reads as done with zero\n"
     "  results, print() prints nothing, no file or store is written.\n"},
    {"doctor", NULL, cmd_doctor, " --store ",
     "print versions and environment facts for bug reports",
     "examples:\n"
     "  lathe doctor\n"
     "usage: lathe doctor [--store PATH]\n"},
    {"help", NULL, NULL, " ", "show help for a command",
     "examples:\n"
     "  lathe help plot\n"
     "usage: lathe help [COMMAND]\n"},
    {"version", NULL, NULL, " ", "print the version", "usage: lathe version\n"},
};
#define NCMDS (int)(sizeof cmds / sizeof *cmds)

/* The command named (or aliased) name, NULL if none. */
static const struct command *command(const char *name) {
  for (int i = 0; i < NCMDS; i++)
    if (!strcmp(cmds[i].name, name) || (cmds[i].alias && !strcmp(cmds[i].alias, name)))
      return &cmds[i];
  return NULL;
}

static void short_usage(FILE *f) {
  fprintf(f,
          "lathe %s - RL post-training workbench\n\n"
          "examples:\n"
          "  lathe run share/recipes/hlgauss_cartpole.lua\n"
          "  lathe runs\n\n"
          "commands:\n",
          LATHE_VERSION);
  for (int i = 0; i < NCMDS; i++) fprintf(f, "  %-9s %s\n", cmds[i].name, cmds[i].summary);
  fprintf(f, "\n`lathe COMMAND --help` for one command, `man lathe` for everything.\n");
}

/* "no command" with the nearest command, exit status 2. */
static int no_command(const char *name) {
  const char *names[NCMDS];
  for (int i = 0; i < NCMDS; i++) names[i] = cmds[i].name;
  const char *near = lathe_nearest(name, names, NCMDS);
  fprintf(stderr, "lathe: no command '%s'", name);
  if (near) fprintf(stderr, "; did you mean '%s'?", near);
  fprintf(stderr, " (see `lathe help`)\n");
  return 2;
}

static int cmd_help(const char *name) {
  if (!name) {
    short_usage(stdout);
    return 0;
  }
  if (!strcmp(name, "--help") || !strcmp(name, "-h")) name = "help";
  const struct command *c = command(name);
  if (!c) return no_command(name);
  printf("lathe %s - %s\n\n%s", c->name, c->summary, c->help);
  return 0;
}

/* ---- argument parsing ---- */

/* Every option (which commands take it: their entries in cmds[]). */
enum {
  O_STORE,
  O_HEADLESS,
  O_JSON,
  O_CSV,
  O_JSONL,
  O_LOGY,
  O_SMOOTH,
  O_X,
  O_BAND,
  O_TITLE,
  O_SIZE,
  O_LABEL,
  O_VLINE,
  O_HLINE,
  O_SET,
  O_SEED,
  O_THREADS,
  O_WORKERS,
  O_METRIC,
  O_NAME,
  O_SCHEMA,
  O_OUT,
  O_RECIPE,
  O_FROM,
  O_MPI,
  O_DP,
  NOPTS
};
static const struct {
  const char *name, *alias;
  int value; /* takes a value */
} options[NOPTS] = {
    [O_STORE] = {"--store", "-s", 1},     [O_HEADLESS] = {"--headless", NULL, 0},
    [O_JSON] = {"--json", NULL, 0},       [O_CSV] = {"--csv", NULL, 0},
    [O_JSONL] = {"--jsonl", NULL, 0},     [O_LOGY] = {"--logy", NULL, 0},
    [O_SMOOTH] = {"--smooth", NULL, 1},   [O_X] = {"--x", NULL, 1},
    [O_BAND] = {"--band", NULL, 1},       [O_TITLE] = {"--title", NULL, 1},
    [O_SIZE] = {"--size", NULL, 1},       [O_LABEL] = {"--label", NULL, 1},
    [O_VLINE] = {"--vline", NULL, 1},     [O_HLINE] = {"--hline", NULL, 1},
    [O_SET] = {"--set", NULL, 1},         [O_SEED] = {"--seed", NULL, 1},
    [O_THREADS] = {"--threads", NULL, 1}, [O_WORKERS] = {"--workers", NULL, 1},
    [O_METRIC] = {"--metric", NULL, 1},   [O_NAME] = {"--name", NULL, 1},
    [O_SCHEMA] = {"--schema", NULL, 1},   [O_OUT] = {"--output", "-o", 1},
    [O_RECIPE] = {"--recipe", NULL, 0},   [O_FROM] = {"--from-checkpoint", NULL, 1},
    [O_MPI] = {"--mpi", NULL, 0},         [O_DP] = {"--data-parallel", NULL, 0},
};

static int takes(int opt, const char *cmd) {
  char w[40];
  snprintf(w, sizeof w, " %s ", options[opt].name);
  return strstr(command(cmd)->opts, w) != NULL;
}

static int parse(const char *cmd, int argc, char **argv, opts_t *o) {
  memset(o, 0, sizeof *o);
  o->store = getenv("LATHE_STORE");
  if (!o->store || !*o->store) o->store = "lathe.lmdb";
  const char *th = getenv("LATHE_THREADS"), *wk = getenv("LATHE_WORKERS");
  if (th) o->threads = atoi(th);
  if (wk) o->workers = atoi(wk);
  o->sets = calloc(argc + 1, sizeof *o->sets);
  o->labels = calloc(argc + 1, sizeof *o->labels);
  o->vlines = calloc(argc + 1, sizeof *o->vlines);
  o->hlines = calloc(argc + 1, sizeof *o->hlines);
  o->args = calloc(argc + 1, sizeof *o->args);
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *val = NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      cmd_help(cmd);
      return 1;
    }
    if (a[0] != '-' || !a[1]) {
      o->args[o->nargs++] = (char *)a;
      continue;
    }
    int k = -1;
    size_t alen = strcspn(a, "=");
    for (int j = 0; j < NOPTS && k < 0; j++) {
      const char *names[2] = {options[j].name, options[j].alias};
      for (int m = 0; m < 2 && k < 0; m++)
        if (names[m] && strlen(names[m]) == alen && !strncmp(a, names[m], alen)) k = j;
    }
    if (k < 0) { /* the nearest of this command's options */
      const char *mine[NOPTS];
      int n = 0;
      for (int j = 0; j < NOPTS; j++)
        if (takes(j, cmd)) mine[n++] = options[j].name;
      char word[64];
      snprintf(word, sizeof word, "%.*s", (int)alen, a);
      const char *near = n ? lathe_nearest(word, mine, n) : NULL;
      fprintf(stderr, "lathe %s: unknown option '%s'", cmd, word);
      if (near) fprintf(stderr, " (did you mean '%s'?)", near);
      fprintf(stderr, " (see `lathe %s --help`)\n", cmd);
      return 2;
    }
    if (!takes(k, cmd))
      return usage_err(cmd, "option %s does not apply to this command", options[k].name);
    if (options[k].value) {
      if (a[alen] == '=')
        val = a + alen + 1;
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return usage_err(cmd, "option %s needs a value", options[k].name);
    } else if (a[alen] == '=')
      return usage_err(cmd, "option %s takes no value", options[k].name);
    char *end;
    switch (k) {
    case O_STORE:
      o->store = val;
      break;
    case O_HEADLESS:
      o->headless = 1;
      break;
    case O_JSON:
      o->json = 1;
      break;
    case O_CSV:
      o->csv = 1;
      break;
    case O_JSONL:
      o->jsonl = 1;
      break;
    case O_LOGY:
      o->logy = 1;
      break;
    case O_SMOOTH:
      o->smooth = val;
      break;
    case O_X:
      o->xaxis = val;
      break;
    case O_BAND:
      o->band = val;
      break;
    case O_TITLE:
      o->title = val;
      break;
    case O_SIZE:
      o->size = val;
      break;
    case O_LABEL:
      o->labels[o->nlabels++] = (char *)val;
      break;
    case O_VLINE:
      o->vlines[o->nvlines++] = (char *)val;
      break;
    case O_HLINE:
      o->hlines[o->nhlines++] = (char *)val;
      break;
    case O_METRIC:
      o->metric = val;
      break;
    case O_NAME:
      o->name = val;
      break;
    case O_SCHEMA:
      o->schema = val;
      break;
    case O_OUT:
      o->out = val;
      break;
    case O_RECIPE:
      o->recipe = 1;
      break;
    case O_MPI:
      o->mpi = 1;
      break;
    case O_DP:
      o->dp = 1;
      break;
    case O_FROM:
      o->from_ckpt = strtoll(val, &end, 10);
      if (*end || o->from_ckpt < 0 || !*val)
        return usage_err(cmd, "--from-checkpoint wants a step (a non-negative integer), got '%s'",
                         val);
      o->have_from = 1;
      break;
    case O_SET:
      if (!strchr(val, '=') || val[0] == '=')
        return usage_err(cmd, "--set wants KEY=VALUE, got '%s'", val);
      o->sets[o->nsets++] = (char *)val;
      break;
    case O_SEED:
      o->seed = strtoll(val, &end, 10), o->have_seed = 1;
      if (*end || !*val || o->seed < 0)
        return usage_err(cmd, "--seed wants a non-negative integer, got '%s'", val);
      break;
    case O_THREADS:
      o->threads = (int)strtol(val, &end, 10);
      if (*end || o->threads < 1 || o->threads > 1024)
        return usage_err(cmd, "--threads wants an integer >= 1, got '%s'", val);
      break;
    case O_WORKERS:
      o->workers = (int)strtol(val, &end, 10);
      if (*end || o->workers < 1 || o->workers > LATHE_MAX_WORKERS)
        return usage_err(cmd, "--workers wants an integer from 1 to 64, got '%s'", val);
      break;
    }
  }
  if (o->dp && !o->mpi) return usage_err(cmd, "%s", "--data-parallel goes with --mpi");
  if (o->dp && o->workers > 1)
    return usage_err(cmd, "%s", "--data-parallel steps one run at a time: no --workers");
  return 0;
}

static void free_opts(opts_t *o) {
  free(o->sets);
  free(o->labels);
  free(o->vlines), free(o->hlines);
  free(o->args);
}

static int fail(int code) {
  const char *m = lathe_lasterr();
  fprintf(stderr, "lathe: %s\n", m[0] ? m : lathe_strerror(code));
  return lathe_exit_code(code);
}

static int open_store(const opts_t *o, int readonly, lathe_store_t **st) {
  int rc = lathe_store_open(o->store, readonly, st);
  return rc ? fail(rc) : 0;
}

static int parse_run_id(const char *cmd, const char *s, uint32_t *id) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*end || v <= 0 || v > 0xffffffffL) return usage_err(cmd, "'%s' is not a run id", s);
  *id = (uint32_t)v;
  return 0;
}

/* ---- run / resume / check ---- */

static int session_exit(lathe_session_t *s, int rc) {
  if (rc == LATHE_EINTR) return s->signal == SIGTERM ? 143 : 130;
  return rc ? fail(rc) : 0;
}

static void session_output(lathe_session_t *s, const opts_t *o) {
  s->json_out = o->headless || !isatty(STDOUT_FILENO);
  s->progress = isatty(STDERR_FILENO);
  s->on_event = lathe_headless_event;
}

/* The dashboard, when stdout and stdin are a terminal and --headless is not
 * given. Returns 1 if it is up. */
static int dashboard(lathe_session_t *s, const opts_t *o, const char *title) {
  if (o->headless || !lathe_dash_possible()) return 0;
  if (!lathe_dash_attach(s, title)) return 1;
  lathe_clearerr(); /* no terminal UI: plain output it is */
  return 0;
}

/* --mpi: start MPI. On a worker rank, serve rank 0's runs until it says
 * quit, then return 1 with *code the exit status; on rank 0 (or without
 * --mpi) return 0 and the command goes on. */
static int mpi_rank(opts_t *o, int *code) {
  if (!o->mpi) return 0;
  int rank, size, workers = o->workers ? o->workers : 1;
  o->headless = 1; /* mpirun gives ranks a pty of its own: never a user's terminal */
  if (o->dp) workers = 1;
  lathe_cluster_set_mode(workers, o->dp);
  int rc = lathe_cluster_init(&rank, &size);
  if (rc) return *code = fail(rc), 1;
  if (rank == 0) return 0;
  rc = lathe_declare_builtins();
  if (!rc) rc = lathe_cluster_serve(o->threads > 0 ? o->threads : 0, workers);
  *code = rc ? fail(rc) : 0;
  return 1;
}

static int run_or_check(opts_t *o, int check) {
  const char *cmd = check ? "check" : "run";
  if (o->nargs != 1) return usage_err(cmd, "%s", "wants exactly one RECIPE.lua");
  int code;
  if (!check && mpi_rank(o, &code)) return code;
  int rc = lathe_declare_builtins();
  if (rc) return fail(rc);
  lathe_store_t *st = NULL;
  if (!check && (rc = open_store(o, 0, &st))) return rc;
  lathe_session_t s = {0};
  s.threads = o->threads, s.workers = o->workers;
  s.seed_offset = o->have_seed ? (uint64_t)o->seed : 0;
  s.check_only = check;
  s.sets = o->sets, s.nsets = o->nsets;
  s.set_used = calloc(o->nsets + 1, sizeof *s.set_used);
  if (check)
    s.json_out = 0, s.progress = 0;
  else
    session_output(&s, o);
  if ((rc = lathe_session_init(&s, st))) {
    lathe_store_close(st);
    free(s.set_used);
    return fail(rc);
  }
  if (check || !dashboard(&s, o, o->args[0])) lathe_headless_start(&s);
  rc = lathe_recipe_run(&s, o->args[0]);
  lathe_dash_detach(&s);
  int exit_code = session_exit(&s, rc);
  if (check && !rc) fprintf(stderr, "lathe: %s: ok (%d runs checked)\n", o->args[0], s.nruns);
  lathe_session_close(&s);
  free(s.set_used);
  lathe_store_close(st);
  return exit_code;
}

static void resume_end(lathe_session_t *s, lathe_run_t *r) {
  if (lathe_session_active(s) == 0) uv_stop(&s->loop);
}

static int cmd_run(opts_t *o) {
  return run_or_check(o, 0);
}

static int cmd_check(opts_t *o) {
  return run_or_check(o, 1);
}

static int cmd_resume(opts_t *o) {
  if (o->nargs < 1) return usage_err("resume", "%s", "wants at least one RUN");
  if (o->have_from && o->nargs != 1)
    return usage_err("resume", "%s", "--from-checkpoint goes with exactly one RUN");
  uint32_t ids[o->nargs];
  int rc;
  for (int i = 0; i < o->nargs; i++)
    if ((rc = parse_run_id("resume", o->args[i], &ids[i]))) return rc;
  if (mpi_rank(o, &rc)) return rc;
  if ((rc = lathe_declare_builtins())) return fail(rc);
  lathe_store_t *st;
  if ((rc = open_store(o, 0, &st))) return rc;
  lathe_session_t s = {0};
  s.threads = o->threads, s.workers = o->workers;
  session_output(&s, o);
  s.on_end = resume_end;
  lathe_run_t *runs[o->nargs];
  int n = 0;
  if (!(rc = lathe_session_init(&s, st))) {
    for (int i = 0; i < o->nargs && !rc; i++) {
      rc = lathe_run_reopen(&s, ids[i], &runs[n]);
      if (rc == LATHE_EUSAGE && o->nargs > 1) { /* a finished run among several: skip it */
        fprintf(stderr, "lathe: %s; skipping it\n", lathe_lasterr());
        rc = 0;
        continue;
      }
      if (!rc && o->have_from) runs[n]->from_ckpt = o->from_ckpt;
      if (!rc) rc = lathe_run_start(runs[n++]);
    }
    if (rc) lathe_session_stop_all(&s); /* the ones already going checkpoint and stop */
    char title[64];
    snprintf(title, sizeof title, "resume %s%s", o->args[0], o->nargs > 1 ? " ..." : "");
    if (!n || !dashboard(&s, o, title)) lathe_headless_start(&s);
    if (n) uv_run(&s.loop, UV_RUN_DEFAULT);
    lathe_dash_detach(&s);
  }
  /* every run has ended (the loop stops only then): read their outcomes
   * before the session frees them */
  if (!rc && s.signal) rc = LATHE_EINTR;
  for (int i = 0; i < n && !rc; i++) rc = lathe_run_outcome(runs[i]);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", lathe_lasterr());
  lathe_session_close(&s);
  if (rc) lathe_seterr(rc, "%s", msg);
  int code = session_exit(&s, rc);
  lathe_store_close(st);
  return code;
}

static int cmd_watch(opts_t *o) {
  uint32_t ids[o->nargs + 1];
  int rc;
  for (int i = 0; i < o->nargs; i++)
    if ((rc = parse_run_id("watch", o->args[i], &ids[i]))) return rc;
  if (!lathe_dash_possible())
    return usage_err("watch", "%s",
                     "needs a terminal on stdin and stdout; `lathe show` and `lathe metrics` "
                     "print the same numbers");
  lathe_store_t *st;
  if ((rc = open_store(o, 1, &st))) return rc;
  rc = lathe_dash_watch(st, ids, o->nargs);
  lathe_store_close(st);
  return rc ? fail(rc) : 0;
}

/* "3", "1,2,3", "1-5", "1-3,7" -> run ids; returns the count, or -1. */
static int parse_group(const char *arg, uint32_t *ids, int max) {
  int n = 0;
  const char *p = arg;
  while (*p) {
    char *end;
    long a = strtol(p, &end, 10), b = a;
    if (end == p || a <= 0) return -1;
    if (*end == '-') {
      p = end + 1;
      b = strtol(p, &end, 10);
      if (end == p || b < a || b - a > 100000) return -1;
    }
    for (long v = a; v <= b; v++) {
      if (n == max) return -1;
      ids[n++] = (uint32_t)v;
    }
    if (*end == ',')
      end++;
    else if (*end)
      return -1;
    p = end;
  }
  return n;
}

static int cmd_plot(opts_t *o) {
  if (o->nargs < 1) return usage_err("plot", "%s", "wants at least one RUN (or group 1,2,3)");
  if (!o->metric) return usage_err("plot", "%s", "wants --metric NAME");
  if (!o->out) return usage_err("plot", "%s", "wants -o FILE.svg");
  if (o->nlabels && o->nlabels != o->nargs)
    return usage_err("plot", "%s", "wants one --label per series (or none)");
  lathe_plot_opts_t po = {
      .metric = o->metric, .out = o->out, .title = o->title, .band = o->band, .logy = o->logy};
  if (o->smooth) {
    char *end;
    po.smooth = strtod(o->smooth, &end);
    if (*end || !(po.smooth >= 0 && po.smooth < 1))
      return usage_err("plot", "--smooth wants a weight in [0, 1), got '%s'", o->smooth);
  }
  po.xtime = o->xaxis && !strcmp(o->xaxis, "time");
  if (o->xaxis && strcmp(o->xaxis, "step") && !po.xtime) po.xmetric = o->xaxis;
  if (o->size && (sscanf(o->size, "%dx%d", &po.width, &po.height) != 2 || po.width < 200 ||
                  po.height < 150 || po.width > 10000 || po.height > 10000))
    return usage_err("plot", "--size wants WxH pixels (at least 200x150), got '%s'", o->size);
  double vx[o->nvlines + 1], hy[o->nhlines + 1];
  const char *vl[o->nvlines + 1], *hl[o->nhlines + 1];
  for (int k = 0; k < 2; k++) { /* --vline X[:LABEL], --hline Y[:LABEL] */
    char **in = k ? o->hlines : o->vlines;
    double *at = k ? hy : vx;
    const char **lab = k ? hl : vl;
    for (int i = 0; i < (k ? o->nhlines : o->nvlines); i++) {
      char *end;
      at[i] = strtod(in[i], &end);
      if (end == in[i] || (*end && *end != ':') || !isfinite(at[i]))
        return usage_err("plot",
                         k ? "--hline wants Y or Y:LABEL, got '%s'"
                           : "--vline wants X or X:LABEL, got '%s'",
                         in[i]);
      lab[i] = *end == ':' ? end + 1 : NULL;
    }
  }
  po.vlines = vx, po.vlabels = vl, po.nvlines = o->nvlines;
  po.hlines = hy, po.hlabels = hl, po.nhlines = o->nhlines;
  lathe_plot_series_t series[o->nargs];
  uint32_t *ids = calloc((size_t)o->nargs * 1024, sizeof *ids);
  if (!ids) return fail(lathe_seterr(LATHE_ENOMEM, "out of memory"));
  int rc = 0;
  for (int i = 0; i < o->nargs && !rc; i++) {
    int k = parse_group(o->args[i], ids + (size_t)i * 1024, 1024);
    if (k < 1) rc = usage_err("plot", "'%s' is not a run, a list 1,2,3 or a range 1-5", o->args[i]);
    series[i] = (lathe_plot_series_t){o->nlabels ? o->labels[i] : NULL, ids + (size_t)i * 1024, k};
  }
  lathe_store_t *st = NULL;
  if (!rc && !(rc = open_store(o, 1, &st))) {
    rc = lathe_plot(st, series, o->nargs, &po);
    if (!rc) fprintf(stderr, "wrote %s\n", o->out);
    rc = rc ? fail(rc) : 0;
  }
  lathe_store_close(st);
  free(ids);
  return rc;
}

/* ---- runs / show / metrics / compare / rm ---- */

/* The shortest text that reads back as exactly v (%.17g at most). */
static const char *num(double v, char *buf, size_t n) {
  if (!isfinite(v)) {
    snprintf(buf, n, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    return buf;
  }
  for (int p = 1; p <= 17; p++) {
    snprintf(buf, n, "%.*g", p, v);
    if (strtod(buf, NULL) == v) break;
  }
  return buf;
}

/* A JSON value as text: numbers in their shortest round-trip form. */
static const char *jtext(json_object *v, char *buf, size_t n) {
  if (!v) return "null";
  if (json_object_is_type(v, json_type_double)) return num(json_object_get_double(v), buf, n);
  return json_object_get_string(v);
}

typedef struct {
  lathe_store_t *st;
  MDB_txn *txn;
  int json;
  json_object *all;
} list_args;

/* Time since t as 42s, 17m, 5h or 3d. */
static const char *since(double t, char *buf, size_t n) {
  double d = lathe_now() - t;
  if (d < 120)
    snprintf(buf, n, "%.0fs", d);
  else if (d < 7200)
    snprintf(buf, n, "%.0fm", d / 60);
  else if (d < 172800)
    snprintf(buf, n, "%.0fh", d / 3600);
  else
    snprintf(buf, n, "%.0fd", d / 86400);
  return buf;
}

static const char *jstr(json_object *o, const char *k) {
  json_object *v;
  return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "";
}

/* The main metric's last value and its best (with the step) from a run record:
 * "0.93" and "0.95@1200", or "-". */
static void last_best(json_object *o, char *last, char *best, size_t n) {
  json_object *v, *sum, *b;
  const char *mm = jstr(o, "main_metric");
  snprintf(last, n, "-"), snprintf(best, n, "-");
  if (*mm && json_object_object_get_ex(o, "summary", &sum) &&
      json_object_object_get_ex(sum, mm, &v) && v)
    snprintf(last, n, "%.4g", json_object_get_double(v));
  if (json_object_object_get_ex(o, "best", &b) && json_object_object_get_ex(b, "value", &v))
    snprintf(best, n, "%.4g@%s", json_object_get_double(v), jstr(b, "step"));
}

static int list_cb(uint32_t id, const char *json, size_t n, void *arg) {
  list_args *a = arg;
  json_tokener *tok = json_tokener_new();
  json_object *o = tok ? json_tokener_parse_ex(tok, json, (int)n) : NULL, *v;
  json_tokener_free(tok);
  if (!o || !json_object_is_type(o, json_type_object)) {
    fprintf(stderr, "lathe: run %u: corrupt record\n", id);
    json_object_put(o);
    return 0;
  }
  if (a->json) {
    json_object_array_add(a->all, o);
    return 0;
  }
  char buf[32], last[48], best[64];
  last_best(o, last, best, sizeof last);
  const char *recipe = jstr(o, "recipe"), *slash = strrchr(recipe, '/');
  json_object_object_get_ex(o, "updated", &v);
  printf("%-5u %-22.22s %-8.8s %-11s %9s %7s  %-10s %-16s %s\n", id, slash ? slash + 1 : recipe,
         jstr(o, "plugin"), jstr(o, "status"), jstr(o, "step"),
         since(json_object_get_double(v), buf, sizeof buf), last, best, jstr(o, "main_metric"));
  json_object_put(o);
  return 0;
}

static int list_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  return lathe_store_run_each(st, txn, list_cb, arg);
}

static int cmd_runs(opts_t *o) {
  if (o->nargs) return usage_err("runs", "takes no arguments, got '%s'", o->args[0]);
  lathe_store_t *st;
  int rc = open_store(o, 1, &st);
  if (rc) return rc;
  list_args a = {st, NULL, o->json, json_object_new_array()};
  if (!o->json)
    printf("%-5s %-22s %-8s %-11s %9s %7s  %-10s %-16s %s\n", "ID", "RECIPE", "PLUGIN", "STATUS",
           "STEP", "UPDATED", "LAST", "BEST@STEP", "MAIN METRIC");
  rc = lathe_store_read(st, list_txn, &a);
  if (o->json && !rc)
    printf("%s\n", json_object_to_json_string_ext(a.all, JSON_C_TO_STRING_PRETTY));
  json_object_put(a.all);
  lathe_store_close(st);
  return rc ? fail(rc) : 0;
}

typedef struct {
  uint32_t id;
  json_object *out;
  lathe_store_t *st;
  MDB_txn *txn;
  int recipe; /* --recipe: fetch the recipe's text */
  char *text; /* malloc'd recipe text */
  size_t ntext;
} show_args;

static int ckpt_cb(uint64_t step, size_t bytes, void *arg) {
  show_args *a = arg;
  json_object *c = json_object_new_object();
  json_object_object_add(c, "step", json_object_new_int64((int64_t)step));
  json_object_object_add(c, "bytes", json_object_new_int64((int64_t)bytes));
  json_object_array_add(json_object_object_get(a->out, "checkpoints"), c);
  return 0;
}

static int last_point(uint64_t step, double value, double time, void *arg) {
  double *p = arg;
  p[0] = (double)step, p[1] = value, p[2] = 1;
  return 0;
}

static int name_cb(const char *name, void *arg) {
  show_args *a = arg;
  double p[3] = {0, 0, 0};
  lathe_store_metric_each(a->st, a->txn, a->id, name, last_point, p);
  json_object *m = json_object_new_object();
  json_object_object_add(m, "step", json_object_new_int64((int64_t)p[0]));
  json_object_object_add(m, "value", isfinite(p[1]) ? json_object_new_double(p[1]) : NULL);
  json_object_object_add(json_object_object_get(a->out, "metrics"), name, m);
  return 0;
}

static int show_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  show_args *a = arg;
  char *rec;
  int rc = lathe_store_run_get(st, txn, a->id, &rec);
  if (rc) return rc;
  a->out = json_tokener_parse(rec);
  free(rec);
  if (!a->out || !json_object_is_type(a->out, json_type_object))
    return lathe_seterr(LATHE_ESTORE, "run %u: corrupt record", a->id);
  if (a->recipe) {
    char key[64];
    MDB_val v;
    snprintf(key, sizeof key, "user/recipe/%.16s", jstr(a->out, "recipe_hash"));
    if ((rc = lathe_store_meta_get(st, txn, key, &v)))
      return rc == LATHE_ENOTFOUND
                 ? lathe_seterr(rc,
                                "run %u: no recipe text stored (run by an older lathe, or "
                                "not from a recipe)",
                                a->id)
                 : rc;
    if (!(a->text = malloc(v.mv_size + 1))) return lathe_seterr(LATHE_ENOMEM, "out of memory");
    memcpy(a->text, v.mv_data, v.mv_size), a->ntext = v.mv_size;
    return 0;
  }
  a->st = st, a->txn = txn;
  json_object_object_add(a->out, "checkpoints", json_object_new_array());
  json_object_object_add(a->out, "metrics", json_object_new_object());
  if ((rc = lathe_store_ckpt_each(st, txn, a->id, ckpt_cb, a))) return rc;
  /* a hash of the newest checkpoint: equal hashes mean equal complete states */
  uint64_t step;
  MDB_val v;
  if (!lathe_store_ckpt_latest(st, txn, a->id, &step, &v)) {
    char h[17];
    lathe_hash_hex(v.mv_data, v.mv_size, h);
    json_object_object_add(a->out, "ckpt_hash", json_object_new_string(h));
  }
  lathe_clearerr();
  return lathe_store_metric_names(st, txn, a->id, name_cb, a);
}

/* Read run id's record with its checkpoints and latest metrics (or, recipe,
 * its recipe's text). */
static int load_show(lathe_store_t *st, uint32_t id, int recipe, show_args *a) {
  *a = (show_args){id, NULL};
  a->recipe = recipe;
  int rc = lathe_store_read(st, show_txn, a);
  if (rc) json_object_put(a->out), a->out = NULL, free(a->text), a->text = NULL;
  return rc;
}

static int cmd_show(opts_t *o) {
  uint32_t id = 0;
  if (o->nargs != 1) return usage_err("show", "%s", "wants exactly one RUN");
  int rc = parse_run_id("show", o->args[0], &id);
  if (rc) return rc;
  lathe_store_t *st;
  if ((rc = open_store(o, 1, &st))) return rc;
  show_args a;
  rc = load_show(st, id, o->recipe, &a);
  lathe_store_close(st);
  if (rc) return fail(rc);
  if (o->recipe) {
    fwrite(a.text, 1, a.ntext, stdout);
  } else if (o->json) {
    printf("%s\n", json_object_to_json_string_ext(a.out, JSON_C_TO_STRING_PRETTY));
  } else {
    json_object *v, *cfg = NULL, *met = json_object_object_get(a.out, "metrics");
    char nb[40], last[48], best[64];
    int w = 22; /* the key column: as wide as the longest key */
    if (json_object_object_get_ex(a.out, "config", &cfg)) {
      json_object_object_foreach(cfg, k1, x1) w = (int)strlen(k1) > w ? (int)strlen(k1) : w;
    }
    json_object_object_foreach(met, k2, x2) w = (int)strlen(k2) > w ? (int)strlen(k2) : w;
    printf("run %u  %s %s  (%s)\n", id, jstr(a.out, "plugin"), jstr(a.out, "plugin_version"),
           jstr(a.out, "status"));
    printf("recipe      %s (hash %s; `lathe show %u --recipe` prints it)\n", jstr(a.out, "recipe"),
           jstr(a.out, "recipe_hash"), id);
    printf("step        %s of %s\n", jstr(a.out, "step"), jstr(a.out, "total"));
    printf("seed        %s   threads %s   host %s\n", jstr(a.out, "seed"), jstr(a.out, "threads"),
           jstr(a.out, "host"));
    if (*jstr(a.out, "main_metric")) {
      last_best(a.out, last, best, sizeof last);
      printf("main        %s: last %s, best %s (value@step)\n", jstr(a.out, "main_metric"), last,
             best);
    }
    if (*jstr(a.out, "error")) printf("error       %s\n", jstr(a.out, "error"));
    printf("config\n");
    if (cfg) {
      json_object_object_foreach(cfg, k3, x3)
          printf("  %-*s %s\n", w, k3, jtext(x3, nb, sizeof nb));
    }
    printf("checkpoints");
    json_object *ck = json_object_object_get(a.out, "checkpoints");
    for (size_t i = 0; i < json_object_array_length(ck); i++)
      printf(" %s", jstr(json_object_array_get_idx(ck, i), "step"));
    if (*jstr(a.out, "best_ckpt")) printf("  (best: %s)", jstr(a.out, "best_ckpt"));
    if (*jstr(a.out, "ckpt_hash")) printf("  (newest hash %s)", jstr(a.out, "ckpt_hash"));
    printf("\nmetrics (latest)\n");
    json_object_object_foreach(met, k4, x4) {
      json_object_object_get_ex(x4, "value", &v);
      printf("  %-*s %-22s step %s\n", w, k4, jtext(v, nb, sizeof nb), jstr(x4, "step"));
    }
  }
  json_object_put(a.out);
  free(a.text);
  return 0;
}

/* ---- metrics: curves of one or more runs ---- */

typedef struct {
  uint32_t id;
  const char *only, *cur;
  int jsonl, many; /* many: a run column in CSV */
  int found;
  char names[4096]; /* the run's metric names, for a message */
} export_args;

static int print_point(uint64_t step, double value, double time, void *arg) {
  export_args *a = arg;
  char nb[40];
  if (a->jsonl) {
    printf("{\"run\":%u,\"metric\":\"%s\",\"step\":%llu,\"value\":%s,\"time\":%.3f}\n", a->id,
           a->cur, (unsigned long long)step, isfinite(value) ? num(value, nb, sizeof nb) : "null",
           time);
  } else if (a->many)
    printf("%u,%s,%llu,%s,%.3f\n", a->id, a->cur, (unsigned long long)step,
           num(value, nb, sizeof nb), time);
  else
    printf("%s,%llu,%s,%.3f\n", a->cur, (unsigned long long)step, num(value, nb, sizeof nb), time);
  return 0;
}

typedef struct {
  export_args *ea;
  lathe_store_t *st;
  MDB_txn *txn;
  int print; /* 0: check the run and metric only */
} export_ctx;

static int export_name(const char *name, void *arg) {
  export_ctx *c = arg;
  export_args *e = c->ea;
  size_t len = strlen(e->names);
  if (len + strlen(name) + 3 < sizeof e->names)
    snprintf(e->names + len, sizeof e->names - len, "%s%s", len ? ", " : "", name);
  if (e->only && strcmp(e->only, name)) return 0;
  e->found = 1;
  e->cur = name;
  return c->print ? lathe_store_metric_each(c->st, c->txn, e->id, name, print_point, e) : 0;
}

static int export_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  export_ctx *c = arg;
  char *rec;
  int rc = lathe_store_run_get(st, txn, c->ea->id, &rec);
  if (rc) return rc;
  free(rec);
  c->st = st, c->txn = txn, c->ea->found = 0, c->ea->names[0] = 0;
  if ((rc = lathe_store_metric_names(st, txn, c->ea->id, export_name, c))) return rc;
  if (c->ea->only && !c->ea->found)
    return lathe_seterr(LATHE_ENOTFOUND, "run %u has no metric '%s' (it has: %s)", c->ea->id,
                        c->ea->only, c->ea->names[0] ? c->ea->names : "none");
  return 0;
}

static int cmd_metrics(opts_t *o) {
  if (o->nargs < 1) return usage_err("metrics", "%s", "wants at least one RUN (3, 1,2,3 or 1-5)");
  int cap = 4096, n = 0;
  uint32_t *ids = malloc(cap * sizeof *ids);
  if (!ids) return fail(lathe_seterr(LATHE_ENOMEM, "out of memory"));
  for (int i = 0; i < o->nargs; i++) {
    int k = parse_group(o->args[i], ids + n, cap - n);
    if (k < 1) {
      free(ids);
      return usage_err("metrics", "'%s' is not a run, a list 1,2,3 or a range 1-5", o->args[i]);
    }
    n += k;
  }
  lathe_store_t *st;
  int rc = open_store(o, 1, &st);
  if (rc) {
    free(ids);
    return rc;
  }
  export_args ea = {0};
  ea.only = o->metric, ea.jsonl = o->jsonl, ea.many = n > 1;
  export_ctx c = {&ea};
  /* every run and the metric are checked before a byte goes to stdout */
  for (int i = 0; i < n && !rc; i++) ea.id = ids[i], rc = lathe_store_read(st, export_txn, &c);
  if (!rc && !o->jsonl) printf(n > 1 ? "run,metric,step,value,time\n" : "metric,step,value,time\n");
  c.print = 1;
  for (int i = 0; i < n && !rc; i++) ea.id = ids[i], rc = lathe_store_read(st, export_txn, &c);
  lathe_store_close(st);
  free(ids);
  return rc ? fail(rc) : 0;
}

/* ---- compare: what differs between runs, and how they did ---- */

/* One metric of one run: its finite points in step order (one cursor walk),
 * then last, best and the mean over the last 10% of steps. */
typedef struct {
  const char *name;
  int lower; /* lower is better */
  uint64_t *step;
  double *v;
  int n, cap;
} cmp_metric;

static int cmp_point(uint64_t step, double value, double time, void *arg) {
  cmp_metric *m = arg;
  if (!isfinite(value)) return 0;
  if (m->n == m->cap) {
    int cap = m->cap ? 2 * m->cap : 256;
    uint64_t *s = realloc(m->step, cap * sizeof *s);
    if (s) m->step = s;
    double *v = realloc(m->v, cap * sizeof *v);
    if (v) m->v = v;
    if (!s || !v) return lathe_seterr(LATHE_ENOMEM, "out of memory");
    m->cap = cap;
  }
  m->step[m->n] = step, m->v[m->n++] = value;
  return 0;
}

typedef struct {
  uint32_t id;
  cmp_metric *m;
} cmp_args;

static int cmp_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  cmp_args *a = arg;
  return lathe_store_metric_each(st, txn, a->id, a->m->name, cmp_point, a->m);
}

/* {"run", "last", "best", "tail_mean"} of m's points (nulls when it has none). */
static json_object *cmp_summary(uint32_t id, const cmp_metric *m) {
  json_object *e = json_object_new_object();
  json_object_object_add(e, "run", json_object_new_int64(id));
  double best = m->n ? m->v[0] : 0, sum = 0;
  int cnt = 0;
  for (int i = 0; i < m->n; i++) {
    if (m->lower ? m->v[i] < best : m->v[i] > best) best = m->v[i];
    if (m->step[i] * 10 >= m->step[m->n - 1] * 9) sum += m->v[i], cnt++; /* steps ascend */
  }
  json_object_object_add(e, "last", m->n ? json_object_new_double(m->v[m->n - 1]) : NULL);
  json_object_object_add(e, "best", m->n ? json_object_new_double(best) : NULL);
  json_object_object_add(e, "tail_mean", cnt ? json_object_new_double(sum / cnt) : NULL);
  return e;
}

static int cmd_compare(opts_t *o) {
  if (o->nargs < 2) return usage_err("compare", "%s", "wants two or more RUNs");
  int n = o->nargs;
  uint32_t ids[n];
  for (int i = 0; i < n; i++) {
    int rc = parse_run_id("compare", o->args[i], &ids[i]);
    if (rc) return rc;
  }
  lathe_store_t *st;
  int rc = open_store(o, 1, &st);
  if (rc) return rc;
  show_args sa[n];
  int loaded = 0;
  for (; loaded < n && !rc; loaded++) rc = load_show(st, ids[loaded], 0, &sa[loaded]);
  if (rc) loaded--;
  const char *metrics[2] = {NULL, o->metric};
  json_object *all = json_object_new_object();
  if (!rc) {
    metrics[0] = jstr(sa[0].out, "main_metric");
    int lower = json_object_object_get(sa[0].out, "best") &&
                !strcmp(jstr(json_object_object_get(sa[0].out, "best"), "goal"), "min");
    /* the config keys that differ (or exist in only some runs) */
    json_object *diff = json_object_new_object();
    json_object *keys = json_object_new_object();
    json_object_object_add(keys, "plugin", NULL);
    for (int i = 0; i < n; i++) {
      json_object_object_foreach(json_object_object_get(sa[i].out, "config"), k, x)
          json_object_object_add(keys, k, NULL);
    }
    char nb[40];
    json_object_object_foreach(keys, k, unused) {
      (void)unused;
      const char *first = NULL;
      int differs = 0;
      char vals[n][48];
      for (int i = 0; i < n; i++) {
        json_object *cfg = json_object_object_get(sa[i].out, "config"), *x = NULL;
        int has = !strcmp(k, "plugin") ? (x = json_object_object_get(sa[i].out, "plugin")) != NULL
                                       : json_object_object_get_ex(cfg, k, &x);
        snprintf(vals[i], sizeof vals[i], "%s", has ? jtext(x, nb, sizeof nb) : "(absent)");
        if (!first)
          first = vals[i];
        else if (strcmp(first, vals[i]))
          differs = 1;
      }
      if (!differs) continue;
      json_object *arr = json_object_new_array();
      for (int i = 0; i < n; i++) json_object_array_add(arr, json_object_new_string(vals[i]));
      json_object_object_add(diff, k, arr);
    }
    json_object_put(keys);
    json_object_object_add(all, "config_differs", diff);
    json_object *res = json_object_new_object();
    for (int j = 0; j < 2; j++) {
      if (!metrics[j] || !*metrics[j] || (j == 1 && metrics[0] && !strcmp(metrics[0], metrics[1])))
        continue;
      json_object *per = json_object_new_array();
      for (int i = 0; i < n && !rc; i++) {
        cmp_metric m = {metrics[j], j == 0 ? lower : 0};
        cmp_args ca = {ids[i], &m};
        rc = lathe_store_read(st, cmp_txn, &ca);
        json_object_array_add(per, cmp_summary(ids[i], &m));
        free(m.step), free(m.v);
      }
      json_object_object_add(res, metrics[j], per);
    }
    json_object_object_add(all, "metrics", res);
    if (!rc && o->json) {
      printf("%s\n", json_object_to_json_string_ext(all, JSON_C_TO_STRING_PRETTY));
    } else if (!rc) {
      int w = 8;
      json_object_object_foreach(diff, kd, xd) w = (int)strlen(kd) > w ? (int)strlen(kd) : w;
      json_object_object_foreach(res, k2, x2) w =
          (int)strlen(k2) + 8 > w ? (int)strlen(k2) + 8 : w; /* " last10%" */
      printf("%-*s", w, "run");
      for (int i = 0; i < n; i++) printf("  %20u", ids[i]);
      printf("\n");
      if (!json_object_object_length(diff)) printf("(configs are identical)\n");
      json_object_object_foreach(diff, k3, arr) {
        printf("%-*s", w, k3);
        for (int i = 0; i < n; i++)
          printf("  %20.20s", json_object_get_string(json_object_array_get_idx(arr, i)));
        printf("\n");
      }
      json_object_object_foreach(res, mk, per) {
        const char *what[3] = {"last", "best", "tail_mean"};
        const char *label[3] = {"last", "best", "last10%"};
        for (int q = 0; q < 3; q++) {
          char lab[200];
          snprintf(lab, sizeof lab, "%s %s", mk, label[q]);
          printf("%-*s", w, lab);
          for (int i = 0; i < n; i++) {
            json_object *v = json_object_object_get(json_object_array_get_idx(per, i), what[q]);
            printf("  %20s", v ? num(json_object_get_double(v), nb, sizeof nb) : "-");
          }
          printf("\n");
        }
      }
    }
  }
  json_object_put(all);
  for (int i = 0; i < loaded; i++) json_object_put(sa[i].out);
  lathe_store_close(st);
  return rc ? fail(rc) : 0;
}

static int rm_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  return lathe_store_run_del(st, txn, *(uint32_t *)arg);
}

static int cmd_rm(opts_t *o) {
  if (o->nargs < 1) return usage_err("rm", "%s", "wants at least one RUN");
  uint32_t ids[o->nargs];
  for (int i = 0; i < o->nargs; i++) {
    int rc = parse_run_id("rm", o->args[i], &ids[i]);
    if (rc) return rc;
  }
  lathe_store_t *st;
  int rc = open_store(o, 0, &st);
  if (rc) return rc;
  for (int i = 0; i < o->nargs && !rc; i++)
    if (!(rc = lathe_store_write(st, rm_txn, &ids[i]))) fprintf(stderr, "removed run %u\n", ids[i]);
  lathe_store_close(st);
  return rc ? fail(rc) : 0;
}

/* ---- plugins ---- */

static int cmd_plugins(opts_t *o) {
  int rc = lathe_declare_builtins();
  if (rc) return fail(rc);
  if (o->nargs == 0) {
    printf("%-14s %-12s %-8s %s\n", "NAME", "KIND", "VERSION", "DESCRIPTION");
    for (int i = 0; i < lathe_registry_count(); i++) {
      const lathe_plugin_t *p;
      if (lathe_registry_get(lathe_registry_name(i), &p)) {
        fprintf(stderr, "lathe: %s\n", lathe_lasterr());
        rc = LATHE_EPLUGIN;
        continue;
      }
      printf("%-14s %-12s %-8s %s\n", p->name, lathe_kind_name(p->kind),
             p->version ? p->version : "", p->doc ? p->doc : "");
    }
    return rc ? lathe_exit_code(rc) : 0;
  }
  const lathe_plugin_t *p;
  if ((rc = lathe_registry_get(o->args[0], &p))) return fail(rc);
  printf("%s %s (%s, built for plugin API %d.%d): %s\n\n", p->name, p->version ? p->version : "",
         lathe_kind_name(p->kind), p->major, p->minor, p->doc ? p->doc : "");
  int kw = 20, dw = 12; /* columns as wide as the longest key and default */
  for (const lathe_opt_t *x = p->opts; x && x->key; x++) {
    kw = (int)strlen(x->key) > kw ? (int)strlen(x->key) : kw;
    dw = (int)strlen(x->def) > dw ? (int)strlen(x->def) : dw;
  }
  printf("%-*s %-7s %-*s %-16s %s\n", kw, "KEY", "TYPE", dw, "DEFAULT", "RANGE", "DESCRIPTION");
  for (const lathe_opt_t *x = p->opts; x && x->key; x++) {
    char range[64] = "";
    if (x->type == LATHE_STR && x->choices)
      snprintf(range, sizeof range, "%s", x->choices);
    else if ((x->type == LATHE_INT || x->type == LATHE_NUM) && x->min <= x->max)
      snprintf(range, sizeof range, "[%g, %g]", x->min, x->max);
    printf("%-*s %-7s %-*s %-16s %s\n", kw, x->key, lathe_type_name(x->type), dw, x->def, range,
           x->doc ? x->doc : "");
  }
  printf("\nEvery run also takes: seed, ckpt_every, ckpt_keep, max_steps (see `man lathe`).\n");
  return 0;
}

/* ---- data ---- */

static int ds_list_cb(const char *name, const char *manifest, void *arg) {
  json_object *m = json_tokener_parse(manifest);
  printf("%-24s %-12s %8s  %s\n", name, jstr(m, "schema"), jstr(m, "count"), jstr(m, "source"));
  json_object_put(m);
  return 0;
}
static int ds_list_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  return lathe_store_ds_each(st, txn, ds_list_cb, arg);
}
static int ds_rm_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  return lathe_store_ds_del(st, txn, arg);
}

static int cmd_data(opts_t *o) {
  if (o->nargs < 1) return usage_err("data", "%s", "wants ls, import, export, rm or generate");
  const char *sub = o->args[0];
  lathe_store_t *st;
  int rc;
  if (!strcmp(sub, "ls")) {
    if ((rc = open_store(o, 1, &st))) return rc;
    printf("%-24s %-12s %8s  %s\n", "NAME", "SCHEMA", "RECORDS", "SOURCE");
    rc = lathe_store_read(st, ds_list_txn, NULL);
  } else if (!strcmp(sub, "import")) {
    if (o->nargs != 2 || !o->name || !o->schema)
      return usage_err("data", "%s", "import wants FILE --name NAME --schema SCHEMA");
    if (!lathe_schema_known(o->schema))
      return usage_err("data", "unknown schema '%s' (prefs, sft, math, text, transitions, any)",
                       o->schema);
    if ((rc = open_store(o, 0, &st))) return rc;
    int64_t n;
    rc = lathe_dataset_import(st, o->args[1], o->name, o->schema, &n);
    if (!rc)
      fprintf(stderr, "imported %lld records as '%s' (%s)\n", (long long)n, o->name, o->schema);
  } else if (!strcmp(sub, "export")) {
    if (o->nargs != 2) return usage_err("data", "%s", "export wants NAME");
    if ((rc = open_store(o, 1, &st))) return rc;
    rc = lathe_dataset_export(st, o->args[1], stdout);
  } else if (!strcmp(sub, "generate")) {
    if (o->nargs != 3) return usage_err("data", "%s", "generate wants PLUGIN NAME");
    if ((rc = lathe_declare_builtins())) return fail(rc);
    if ((rc = open_store(o, 0, &st))) return rc;
    int64_t n;
    rc = lathe_dataset_generate(st, o->args[1], (const char *const *)o->sets, o->nsets, o->args[2],
                                &n);
    if (!rc) fprintf(stderr, "generated %lld records as '%s'\n", (long long)n, o->args[2]);
  } else if (!strcmp(sub, "rm")) {
    if (o->nargs != 2) return usage_err("data", "%s", "rm wants NAME");
    if ((rc = open_store(o, 0, &st))) return rc;
    rc = lathe_store_write(st, ds_rm_txn, o->args[1]);
  } else {
    const char *subs[] = {"ls", "import", "export", "rm", "generate"};
    const char *near = lathe_nearest(sub, subs, 5);
    fprintf(stderr, "lathe data: no subcommand '%s'%s%s%s\n", sub, near ? " (did you mean '" : "",
            near ? near : "", near ? "'?)" : "");
    return 2;
  }
  lathe_store_close(st);
  if (rc == LATHE_EUSAGE) return fail(rc);
  return rc ? fail(rc == LATHE_EDATA || rc == LATHE_EIO ? LATHE_EUSAGE : rc) : 0;
}

/* ---- doctor ---- */

/* ---- store ---- */

static void print_damage(const char *what, void *arg) {
  printf("damaged: %s\n", what);
}

static int cmd_store(opts_t *o) {
  const char *sub = o->nargs ? o->args[0] : "";
  if (strcmp(sub, "check") && strcmp(sub, "backup"))
    return usage_err("store", "wants check or backup, got '%s'", sub);
  if (!strcmp(sub, "backup") && o->nargs != 2)
    return usage_err("store", "%s", "backup wants exactly one DEST folder");
  if (!strcmp(sub, "check") && o->nargs != 1)
    return usage_err("store", "%s", "check takes no arguments");
  lathe_store_t *st;
  int rc = open_store(o, 1, &st);
  if (rc) return rc;
  if (!strcmp(sub, "backup")) {
    rc = lathe_store_backup(st, o->args[1]);
    if (!rc) fprintf(stderr, "backed up %s to %s\n", o->store, o->args[1]);
    lathe_store_close(st);
    return rc ? fail(rc) : 0;
  }
  long n = 0;
  rc = lathe_store_check(st, lathe_ckpt_ok, print_damage, NULL, &n);
  lathe_store_close(st);
  if (rc) return fail(rc);
  if (n) {
    fprintf(stderr, "lathe: store %s: %ld damaged entr%s\n", o->store, n, n == 1 ? "y" : "ies");
    return 4;
  }
  fprintf(stderr, "store %s: clean\n", o->store);
  return 0;
}

static int cmd_doctor(opts_t *o) {
  struct utsname u;
  uname(&u);
  char cwd[4096] = "";
  if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
  printf("lathe       %s (plugin API %d.%d, nn ABI %d, store format %u)\n", LATHE_VERSION,
         LATHE_API_MAJOR, LATHE_API_MINOR, nn_abi_version(), LATHE_STORE_FORMAT);
  printf("system      %s %s %s, %ld cores\n", u.sysname, u.release, u.machine,
         sysconf(_SC_NPROCESSORS_ONLN));
  printf("lua         %s\n", LUA_RELEASE);
  printf("libuv       %s\n", uv_version_string());
  printf("lmdb        %s\n", mdb_version(NULL, NULL, NULL));
  printf("ncurses     %s\n", curses_version());
  printf("json-c      %s\n", json_c_version());
  printf("openblas    %s (core %s, %d threads)\n", openblas_get_config(), openblas_get_corename(),
         openblas_get_num_threads());
  const char *fell = getenv("LATHE_BLAS_FALLBACK");
  if (fell && *fell)
    printf("openblas    it chose %s kernels on this CPU, which it does not know; lathe set "
           "OPENBLAS_CORETYPE=%s\n",
           fell, openblas_get_corename());
  const char *env[] = {"OPENBLAS_NUM_THREADS",
                       "OPENBLAS_CORETYPE",
                       "OPENBLAS_THREAD_TIMEOUT",
                       "LATHE_STORE",
                       "LATHE_THREADS",
                       "LATHE_PLUGIN_PATH",
                       "TERM",
                       "LANG",
                       "NO_COLOR"};
  for (size_t i = 0; i < sizeof env / sizeof *env; i++)
    if (getenv(env[i])) printf("env         %s=%s\n", env[i], getenv(env[i]));
  char why[512] = "";
  const char *mpi = lathe_cluster_probe(why, sizeof why);
  printf("mpi         %s\n", mpi ? mpi : why);
  printf("plugins     %s\n", lathe_plugin_dir());
  printf("share       %s\n", lathe_share_dir());
  printf("store       %s%s%s (%s)\n", o->store[0] == '/' ? "" : cwd, o->store[0] == '/' ? "" : "/",
         o->store, access(o->store, F_OK) ? "does not exist yet" : lathe_store_fs_name(o->store));
  const char *term = getenv("TERM");
  const char *lang = getenv("LC_ALL") ? getenv("LC_ALL") : getenv("LANG");
  printf("terminal    stdout %s, TERM=%s, UTF-8 %s, colour %s\n",
         isatty(STDOUT_FILENO) ? "is a tty" : "is not a tty", term ? term : "(unset)",
         lang && (strstr(lang, "UTF-8") || strstr(lang, "utf8")) ? "yes" : "no",
         getenv("NO_COLOR") && *getenv("NO_COLOR") ? "off (NO_COLOR)" : "on");
  return 0;
}

/* ---- main ---- */

/* The last line of defence against a damaged store: LMDB trusts its pages, so
 * a read past the end of a cut data file faults with SIGBUS and a damaged page
 * may fault with SIGSEGV. A fault inside a store's map says so and exits 4;
 * any other goes on to the handler that was there before (a sanitizer's) or
 * to the default action. */
static struct sigaction prev_fault[3]; /* SIGBUS, SIGSEGV, SIGFPE */

static void on_fault(int sig, siginfo_t *info, void *ctx) {
  if (lathe_store_fault_is_damage(info->si_addr, ctx)) {
    static const char msg[] = "lathe: store damaged: a read in its data file faulted; run `lathe "
                              "store check` (exit 4)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(4);
  }
  struct sigaction *p = &prev_fault[sig == SIGSEGV ? 1 : sig == SIGFPE ? 2 : 0];
  if (p->sa_flags & SA_SIGINFO && p->sa_sigaction) {
    p->sa_sigaction(sig, info, ctx);
    return;
  }
  if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN && p->sa_handler) {
    p->sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL); /* returning re-runs the faulting access, now fatal as usual */
}

static void store_damaged(const char *what) {
  fprintf(stderr, "lathe: store damaged: LMDB: %s; run `lathe store check` (exit 4)\n", what);
  _exit(4);
}

static void fault_handlers(void) {
  lathe_store_on_damage = store_damaged;
  int sigs[3] = {SIGBUS, SIGSEGV, SIGFPE}; /* LMDB divides by a page size a damaged meta gives */
  for (int i = 0; i < 3; i++) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(sigs[i], &sa, &prev_fault[i]);
  }
}

int main(int argc, char **argv) {
  const char *core = nn_blas_better_core();
  if (core) { /* OpenBLAS fell back to old kernels on a CPU it does not know: run again with
                 better ones (doctor says so); go on as is if that fails */
    setenv("LATHE_BLAS_FALLBACK", openblas_get_corename(), 1);
    setenv("OPENBLAS_CORETYPE", core, 1);
    execv("/proc/self/exe", argv);
  }
  nn_blas_setup(); /* OpenBLAS's idle threads poll 2^18 cycles, not 2^28 (nn.h) */
  signal(SIGPIPE, SIG_IGN);
  fault_handlers();
  signal(SIGXFSZ, SIG_IGN); /* a file-size limit shows up as EFBIG, handled as disk full */
  if (argc < 2) {
    short_usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return cmd_help(NULL);
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("lathe %s\n", LATHE_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "help")) return cmd_help(argc > 2 ? argv[2] : NULL);
  const struct command *c = command(cmd);
  if (!c) return no_command(cmd);
  opts_t o;
  int rc = parse(cmd, argc - 2, argv + 2, &o);
  if (rc) {
    free_opts(&o);
    return rc == 1 ? 0 : rc;
  }
  rc = c->fn(&o);
  lathe_cluster_finalize(); /* --mpi: the worker ranks told to quit, MPI ended */
  free_opts(&o);
  return rc;
}
