/* The running process: builds sinks, pipeline, router and collector from a loaded config,
 * runs the collector's event loop on the calling thread until SIGTERM/SIGINT, then drains in
 * order (inputs -> rings -> workers -> sink queues -> destinations) within shutdown_timeout.
 * SIGHUP reopens file sinks. */
#ifndef SPILLWAY_APP_H
#define SPILLWAY_APP_H

struct config;

/* embedded: the config is the built-in default (scripts/default.lua is written if missing).
 * Returns the process exit code: 0 when everything in flight was delivered, 1 otherwise, 2 when
 * it could not start. */
int app_run(struct config *cfg, int embedded);

#endif
