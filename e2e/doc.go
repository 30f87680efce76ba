// Package e2e holds the end-to-end tests: the built audit.plugin under real,
// throwaway Netdata agents (internal/netdatatest) on the real kernel
// (internal/kerneltest): alerts, lead times, stalls, streaming, the status
// Function, the dashboard, the soak. It has no code of its own.
package e2e
