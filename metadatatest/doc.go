// Package metadatatest checks metadata.yaml, Netdata's integration metadata
// for audit.plugin, and the alert file health.d/audit.conf against what the
// built plugin really does: its charts and dimensions, its options and
// their defaults. metadata.yaml is also validated against Netdata's
// integration schema (../shared/netdata-schemas beside the repository).
package metadatatest
