package main

import (
	"os"
	"testing"

	"auditplugin/internal/testkit"
)

// TestMain removes the plugin binary the integration tests share.
func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }
