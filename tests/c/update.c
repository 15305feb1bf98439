/*
 * The C ABI (ffi/include/wavecast.h) used as a C application uses it. The
 * end-to-end test tests/e2e/ffi.rs compiles this with `cc` against
 * libwavecast_ffi and runs one step at a time against nginx:
 *
 *   update init ROOT URL PUBKEY   open, or initialize on NOT_INITIALIZED and open
 *   update check ROOT             print the check's JSON
 *   update install ROOT           install with a progress line per callback
 *   update cancel ROOT            install on a second thread, cancelled from this
 *                                 one as soon as downloading starts
 *   update stage ROOT             stage with progress
 *   update apply ROOT             apply what is staged
 *   update launched ROOT          count a launch (applies a staged release first)
 *   update confirm ROOT           confirm the current release
 *
 * Results go to stdout, one line each ("check {...}", "progress PHASE DONE
 * TOTAL", ...); a failure prints the library's message on stderr and exits 1.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wavecast.h"

static const char *phase_name(WavecastPhase phase) {
  switch (phase) {
  case WAVECAST_PHASE_CHECKING: return "checking";
  case WAVECAST_PHASE_DOWNLOADING: return "downloading";
  case WAVECAST_PHASE_ASSEMBLING: return "assembling";
  case WAVECAST_PHASE_SWITCHING: return "switching";
  }
  return "unknown";
}

/* Prints the last error with its causes and hint, and exits 1. */
static void fail(const char *what, WavecastStatus status) {
  char *message = wavecast_last_error_message();
  fprintf(stderr, "%s failed (status %d)\nerror: %s\n", what, (int)status,
          message ? message : "(no message)");
  wavecast_string_free(message);
  exit(1);
}

/* Prints "LABEL JSON" and frees the document. */
static void print_json(const char *label, char *json) {
  printf("%s %s\n", label, json);
  fflush(stdout);
  wavecast_string_free(json);
}

static void print_progress(void *user_data, WavecastPhase phase, uint64_t done,
                           uint64_t total) {
  (void)user_data;
  printf("progress %s %llu %llu\n", phase_name(phase), (unsigned long long)done,
         (unsigned long long)total);
  fflush(stdout);
}

static WavecastUpdater *open_root(const char *root) {
  WavecastUpdater *updater = NULL;
  WavecastStatus status = wavecast_open(root, &updater);
  if (status != WAVECAST_STATUS_OK) fail("wavecast_open", status);
  return updater;
}

/* The cancel scenario: the install thread's first "downloading" callback tells
 * the main thread and waits until it has called wavecast_cancel, so the cancel
 * lands while the download runs, whatever the machine's speed. */
struct cancel_test {
  WavecastUpdater *updater;
  pthread_mutex_t mutex;
  pthread_cond_t changed;
  int downloading;
  int finished; /* the install returned: never wait for it to download */
  int cancelled;
  WavecastStatus status;
};

static void wait_for_cancel(void *user_data, WavecastPhase phase, uint64_t done,
                            uint64_t total) {
  struct cancel_test *test = user_data;
  print_progress(NULL, phase, done, total);
  if (phase != WAVECAST_PHASE_DOWNLOADING) return;
  pthread_mutex_lock(&test->mutex);
  test->downloading = 1;
  pthread_cond_broadcast(&test->changed);
  while (!test->cancelled) pthread_cond_wait(&test->changed, &test->mutex);
  pthread_mutex_unlock(&test->mutex);
}

static void *install_thread(void *argument) {
  struct cancel_test *test = argument;
  char *json = NULL;
  test->status = wavecast_install(test->updater, wait_for_cancel, test, &json);
  wavecast_string_free(json);
  pthread_mutex_lock(&test->mutex);
  test->finished = 1;
  pthread_cond_broadcast(&test->changed);
  pthread_mutex_unlock(&test->mutex);
  return NULL;
}

static int cancel(const char *root) {
  struct cancel_test test = {.updater = open_root(root)};
  pthread_mutex_init(&test.mutex, NULL);
  pthread_cond_init(&test.changed, NULL);
  pthread_t thread;
  if (pthread_create(&thread, NULL, install_thread, &test) != 0) {
    fprintf(stderr, "pthread_create failed\n");
    return 1;
  }
  pthread_mutex_lock(&test.mutex);
  while (!test.downloading && !test.finished) pthread_cond_wait(&test.changed, &test.mutex);
  pthread_mutex_unlock(&test.mutex);
  WavecastStatus status = wavecast_cancel(test.updater);
  if (status != WAVECAST_STATUS_OK) fail("wavecast_cancel", status);
  pthread_mutex_lock(&test.mutex);
  test.cancelled = 1;
  pthread_cond_broadcast(&test.changed);
  pthread_mutex_unlock(&test.mutex);
  pthread_join(thread, NULL);
  if (test.status != WAVECAST_STATUS_CANCELLED) fail("wavecast_install", test.status);
  printf("cancelled\n");
  /* The cancel stays in effect on this handle: the next install stops at once. */
  char *json = NULL;
  status = wavecast_install(test.updater, NULL, NULL, &json);
  printf("again %s\n", status == WAVECAST_STATUS_CANCELLED ? "cancelled" : "not cancelled");
  wavecast_string_free(json);
  wavecast_free(test.updater);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: update init ROOT URL PUBKEY | update COMMAND ROOT\n");
    return 2;
  }
  const char *command = argv[1], *root = argv[2];
  if (strcmp(command, "cancel") == 0) return cancel(root);

  WavecastUpdater *updater = NULL;
  WavecastStatus status;
  char *json = NULL;
  if (strcmp(command, "init") == 0 && argc == 5) {
    status = wavecast_open(root, &updater);
    if (status == WAVECAST_STATUS_NOT_INITIALIZED) {
      printf("not initialized\n");
      status = wavecast_init(root, argv[3], argv[4]);
      if (status != WAVECAST_STATUS_OK) fail("wavecast_init", status);
      status = wavecast_open(root, &updater);
    }
    if (status != WAVECAST_STATUS_OK) fail("wavecast_open", status);
    printf("opened\n");
  } else if (strcmp(command, "check") == 0) {
    updater = open_root(root);
    status = wavecast_check(updater, &json);
    if (status != WAVECAST_STATUS_OK) fail("wavecast_check", status);
    print_json("check", json);
  } else if (strcmp(command, "install") == 0 || strcmp(command, "stage") == 0) {
    int install = strcmp(command, "install") == 0;
    updater = open_root(root);
    status = wavecast_check(updater, &json);
    if (status != WAVECAST_STATUS_OK) fail("wavecast_check", status);
    print_json("check", json);
    /* Installs (or stages) what that check decided. */
    status = install ? wavecast_install(updater, print_progress, NULL, &json)
                     : wavecast_stage(updater, print_progress, NULL, &json);
    if (status == WAVECAST_STATUS_NOTHING) {
      printf("nothing to %s\n", command);
    } else if (status != WAVECAST_STATUS_OK) {
      fail(command, status);
    } else {
      print_json(install ? "installed" : "staged", json);
    }
  } else if (strcmp(command, "apply") == 0) {
    updater = open_root(root);
    status = wavecast_apply(updater, &json);
    if (status == WAVECAST_STATUS_NOTHING) {
      printf("nothing to apply\n");
    } else if (status != WAVECAST_STATUS_OK) {
      fail("wavecast_apply", status);
    } else {
      print_json("applied", json);
    }
  } else if (strcmp(command, "launched") == 0) {
    updater = open_root(root);
    status = wavecast_launched(updater, &json);
    if (status != WAVECAST_STATUS_OK) fail("wavecast_launched", status);
    print_json("launched", json);
  } else if (strcmp(command, "confirm") == 0) {
    updater = open_root(root);
    status = wavecast_confirm(updater);
    if (status != WAVECAST_STATUS_OK) fail("wavecast_confirm", status);
    printf("confirmed\n");
  } else {
    fprintf(stderr, "unknown command %s\n", command);
    return 2;
  }
  wavecast_free(updater);
  return 0;
}
