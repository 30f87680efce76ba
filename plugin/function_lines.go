package main

import (
	"bufio"
	"errors"
	"io"
)

// maxStdinLine bounds the memory one stdin line may take. A longer line is
// handed on cut to this length (its start names the command and the
// transaction) and the rest is read and dropped.
const maxStdinLine = 64 << 10

// readLines calls handle for each line of r, until handle reports true (QUIT),
// end of input or a read error. Lines of any length are read in bounded memory.
func readLines(r io.Reader, handle func(line []byte) bool) error {
	br := bufio.NewReaderSize(r, maxStdinLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			head := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			line = head
		}
		if len(line) > 0 && handle(line) {
			return nil
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
