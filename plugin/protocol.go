package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
)

// protocol writes Netdata's plugins.d text protocol. Lines collect in a
// buffer and Flush sends them in one write, so Netdata never sees half a cycle.
type protocol struct {
	out io.Writer
	buf bytes.Buffer
}

func newProtocol(out io.Writer) *protocol { return &protocol{out: out} }

// CHART type.id name title units family context charttype priority update_every options plugin module
func (p *protocol) Chart(c chart, updateEvery int) error {
	for _, f := range []string{c.id, c.title, c.units, c.family, c.kind} {
		if err := checkField(f); err != nil {
			return fmt.Errorf("CHART %s: %w", c.id, err)
		}
	}
	fmt.Fprintf(&p.buf, "CHART %s '' '%s' '%s' '%s' %s %s %d %d '' 'audit.plugin' 'status'\n",
		c.fullID(), c.title, c.units, c.family, c.context(), c.kind, c.priority, updateEvery)
	return nil
}

// DIMENSION id name algorithm multiplier divisor options
func (p *protocol) Dimension(d dim) error {
	if err := checkID(d.id); err != nil {
		return fmt.Errorf("DIMENSION: %w", err)
	}
	if err := checkID(d.name); err != nil {
		return fmt.Errorf("DIMENSION %s: %w", d.id, err)
	}
	alg, div := d.algorithm, d.div
	if alg == "" {
		alg = "absolute"
	}
	if div == 0 {
		div = 1
	}
	fmt.Fprintf(&p.buf, "DIMENSION %s %s %s 1 %d ''\n", d.id, d.name, alg, div)
	return nil
}

// BEGIN type.id [microseconds since the last BEGIN]; the first one of a
// chart carries no interval, so pass since 0.
func (p *protocol) Begin(id string, since time.Duration) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("BEGIN: %w", err)
	}
	if since <= 0 {
		fmt.Fprintf(&p.buf, "BEGIN %s\n", id)
	} else {
		fmt.Fprintf(&p.buf, "BEGIN %s %d\n", id, since.Microseconds())
	}
	return nil
}

// SET id = value
func (p *protocol) Set(id string, v int64) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("SET: %w", err)
	}
	fmt.Fprintf(&p.buf, "SET %s = %d\n", id, v)
	return nil
}

// SetEmpty records a gap: "SET id =" with no value.
func (p *protocol) SetEmpty(id string) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("SET: %w", err)
	}
	fmt.Fprintf(&p.buf, "SET %s =\n", id)
	return nil
}

func (p *protocol) End() error {
	p.buf.WriteString("END\n")
	return nil
}

// Disable tells Netdata not to start the plugin again until it restarts.
func (p *protocol) Disable() error {
	p.buf.WriteString("DISABLE\n")
	return nil
}

// Flush writes everything buffered in one write.
func (p *protocol) Flush() error {
	if p.buf.Len() == 0 {
		return nil
	}
	_, err := p.out.Write(p.buf.Bytes())
	p.buf.Reset()
	if err != nil {
		return fmt.Errorf("write to netdata: %w", err)
	}
	return nil
}

func checkID(s string) error {
	if s == "" || strings.ContainsAny(s, " \t\n'\"") {
		return fmt.Errorf("invalid id %q", s)
	}
	return nil
}

// checkField allows spaces (the field is quoted) but nothing that ends the quote or the line.
func checkField(s string) error {
	if s == "" || strings.ContainsAny(s, "\n'\"") {
		return fmt.Errorf("invalid field %q", s)
	}
	return nil
}
