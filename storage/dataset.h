/* dataset.h - datasets in the store: JSON Lines import and export with schema
 * checks, and writing records built in memory.
 *
 * Schemas (fields every record must have, with their JSON types):
 *   prefs        prompt, chosen, rejected: string
 *   sft          prompt, response: string
 *   math         question, answer: string
 *   text         text: string
 *   transitions  obs, next_obs: array of numbers; action: number or array of numbers;
 *                reward: number; terminated, truncated: bool (D4RL's names observations,
 *                actions, rewards, next_observations, terminals, timeouts are renamed,
 *                their flags may be 0/1)
 *   any          any JSON object
 * Extra fields are kept. Records are stored as compact JSON, indexed 0..count-1;
 * the manifest is {"name","schema","count","source","created","sha"}.
 */
#ifndef LATHE_DATASET_H
#define LATHE_DATASET_H

#include <json-c/json.h>
#include <stdio.h>

#include "../workbench/lathe.h"
#include "store.h"

/* 1 if schema is one of the names above. */
int lathe_schema_known(const char *schema);
const char *lathe_schema_list(void);
/* Check one record against schema; on failure set a message "field 'x' ..." (no location).
 * A prefs record without a prompt whose chosen and rejected are HH-RLHF transcripts is
 * rewritten in place: prompt = the shared prefix through its last "\n\nAssistant:". */
int lathe_schema_check(const char *schema, json_object *rec);
/* Import a JSON Lines file (plain or gzip; or, unless named .jsonl, one JSON
 * array of records, "file: record N: ..." on failure) atomically: every line is checked
 * first; any bad line fails the whole import with "file:line: ..." and leaves
 * the store unchanged. Refuses an existing name. With store NULL, only checks.
 * *count receives the number of records. */
int lathe_dataset_import(lathe_store_t *st, const char *file, const char *name, const char *schema,
                         int64_t *count);
/* Write records (an array of JSON objects, borrowed) as dataset name. */
int lathe_dataset_create(lathe_store_t *st, const char *name, const char *schema,
                         json_object *records, const char *source);
/* Next record for lathe_dataset_stream: append one JSON object to out and
 * return LATHE_CONTINUE, return LATHE_DONE when there are no more, or a
 * negative error (message set). out NULL means "start over from the first
 * record" (called before the first, and again when a full map makes the
 * transaction start anew). */
typedef int (*lathe_record_fn)(void *arg, lathe_buf_t *out);
/* Create dataset name from the records next makes (source names it in the
 * manifest, who in messages, e.g. "generator mazedata"): each record is
 * schema-checked and all are written in one transaction, so a failure leaves
 * the store unchanged. With st NULL, only runs and checks. *count receives
 * the number of records. */
int lathe_dataset_stream(lathe_store_t *st, const char *name, const char *schema,
                         const char *source, const char *who, lathe_record_fn next, void *arg,
                         int64_t *count);
/* Number of records of dataset name (from its manifest); LATHE_ENOTFOUND if none. */
int lathe_dataset_count(lathe_store_t *st, MDB_txn *txn, const char *name, int64_t *count);
/* Write every record of name to f as JSON Lines. */
int lathe_dataset_export(lathe_store_t *st, const char *name, FILE *f);

#endif
