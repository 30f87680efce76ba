package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxCommandLine is the longest stdin line handed to a handler. Netdata
// sends short commands (QUIT; FUNCTION calls with their parameters);
// anything longer is read and discarded chunk by chunk, never held whole.
const maxCommandLine = 64 << 10

// readCommands reads Netdata's lines from stdin until it ends, or until
// handle returns true (QUIT). Each line goes to handle without its line
// ending; a line longer than maxCommandLine is not handled: tooLong gets
// its first maxCommandLine bytes (enough to name a Function call and its
// transaction) and its length. Reading never stops on a long line, so
// Netdata's writes to our stdin never block on a full pipe.
func readCommands(r io.Reader, handle func(line []byte) (stop bool), tooLong func(head []byte, n int64)) {
	if r == nil {
		return
	}
	br := bufio.NewReaderSize(r, 4096)
	var line []byte // the line so far, while it fits
	var n int64     // its length so far
	for {
		chunk, err := br.ReadSlice('\n')
		if keep := maxCommandLine + 1 - int64(len(line)); keep > 0 { // +1: the newline
			line = append(line, chunk[:min(int64(len(chunk)), keep)]...)
		}
		n += int64(len(chunk))
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		// A full line, or the last one before the end of input.
		length := n
		if err == nil {
			length-- // the newline
		}
		switch {
		case n == 0:
		case length > maxCommandLine:
			if tooLong != nil {
				tooLong(line[:maxCommandLine], length)
			}
		default:
			if handle(bytes.TrimRight(line, "\r\n")) {
				return
			}
		}
		if err != nil {
			return // end of input: some Netdata versions give no stdin
		}
		line, n = line[:0], 0
		if cap(line) > 4*4096 {
			line = nil // do not keep a big buffer for the plugin's lifetime
		}
	}
}

// watchStdin reads Netdata's commands until QUIT or the end of stdin. The
// Function server handles every line (calls, payloads, cancels) and tells
// QUIT (Netdata 2.x at shutdown) apart.
func (p *plugin) watchStdin(stdin io.Reader, quit func()) {
	readCommands(stdin,
		func(line []byte) bool {
			if p.funcs.handleLine(line) {
				p.log.printf("netdata said QUIT; exiting")
				quit()
				return true
			}
			return false
		},
		func(head []byte, n int64) {
			p.log.printf("ignored a %d-byte line on stdin: longer than %d bytes", n, maxCommandLine)
			p.funcs.tooLong(head)
		})
}
