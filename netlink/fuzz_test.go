package netlink

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"
	"time"

	"auditplugin/netlink/nltest"
)

// goldenSeeds are the captured datagrams (see testdata/README).
func goldenSeeds(f *testing.F) (reply, eperm, econnrefused []byte) {
	return golden(f, "audit_get_reply.bin"), golden(f, "audit_get_eperm.bin"), golden(f, "audit_get_econnrefused.bin")
}

func FuzzParseStatus(f *testing.F) {
	reply, _, _ := goldenSeeds(f)
	f.Add(reply[headerSize:])
	for _, n := range []int{0, 31, 32, 40, 44, 48, 56} {
		f.Add(words(n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseStatus(b)
		if len(b) < minStatusSize {
			if !errors.Is(err, errMalformed) || s != (Status{}) {
				t.Fatalf("parseStatus(%d bytes) = %+v, %v; want errMalformed", len(b), s, err)
			}
			return
		}
		if err != nil || s.ReplyBytes != len(b) {
			t.Fatalf("parseStatus(%d bytes) = %+v, %v", len(b), s, err)
		}
		// Each field is the native-endian word at its index, if the kernel sent it.
		fields := []struct {
			got  uint32
			sent Field // 0: always sent
		}{
			{s.Mask, 0}, {uint32(s.Enabled), 0}, {uint32(s.Failure), 0}, {s.PID, 0}, {s.RateLimit, 0},
			{s.BacklogLimit, 0}, {s.Lost, 0}, {s.Backlog, 0}, {s.FeatureBitmap, FieldFeatureBitmap},
			{s.BacklogWaitTime, FieldBacklogWaitTime}, {s.BacklogWaitTimeActual, FieldBacklogWaitTimeActual},
			{s.BacklogMaxDepth, FieldBacklogMaxDepth},
		}
		// Fields come in kernel generations: 3.14 added two at once, so a
		// 36-byte reply (no kernel sends one) has only the core.
		sentFrom := []int{8: size314, 9: size314, 10: size59, 11: sizeMaxDepth}
		for i, fl := range fields {
			present := 4*(i+1) <= len(b) && len(b) >= sentFrom[i]
			if fl.sent != 0 && s.Has(fl.sent) != present {
				t.Errorf("%d bytes: Has(%04b) = %v, want %v", len(b), fl.sent, !present, present)
			}
			want := uint32(0)
			if present {
				want = binary.NativeEndian.Uint32(b[4*i:])
			}
			if fl.got != want {
				t.Errorf("%d bytes: field %d = %d, want %d", len(b), i, fl.got, want)
			}
		}
	})
}

func FuzzParseMessages(f *testing.F) {
	reply, eperm, econnrefused := goldenSeeds(f)
	f.Add(reply)
	f.Add(eperm)
	f.Add(econnrefused)
	f.Add(nltest.Datagram(eperm, reply, econnrefused))
	f.Add(reply[:59])
	f.Add(reply[:15])
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := parseMessages(b)
		if err != nil && !errors.Is(err, errMalformed) {
			t.Fatalf("error %v is not errMalformed", err)
		}
		// Re-encoding each message must give back the datagram's bytes at
		// its offset; without an error the messages cover the datagram.
		off := 0
		for i, m := range msgs {
			if m.Header.Len < headerSize || int(m.Header.Len) != headerSize+len(m.Data) || off+int(m.Header.Len) > len(b) {
				t.Fatalf("message %d: Len %d, %d data bytes, offset %d in %d bytes", i, m.Header.Len, len(m.Data), off, len(b))
			}
			enc := header(m.Header.Len, m.Header.Type, m.Header.Seq)
			binary.NativeEndian.PutUint16(enc[6:], m.Header.Flags)
			binary.NativeEndian.PutUint32(enc[12:], m.Header.Pid)
			if got := string(b[off : off+int(m.Header.Len)]); got != string(enc)+string(m.Data) {
				t.Fatalf("message %d does not match the datagram at offset %d", i, off)
			}
			off += align4(int(m.Header.Len))
		}
		if err == nil && off < len(b) {
			t.Fatalf("no error, but bytes %d..%d were not parsed", off, len(b))
		}
	})
}

// FuzzClientDispatch feeds arbitrary datagrams to a Client as the kernel's
// answer to query 1, followed by a marker reply. The client must not panic,
// must answer query 1 with exactly the first message in the datagram that
// answers seq 1 (or the marker), and must never hand a reply to a query that
// did not ask for it: seq-2 messages in the datagram arrive before query 2
// exists, so query 2 must get its own marker.
func FuzzClientDispatch(f *testing.F) {
	reply, eperm, econnrefused := goldenSeeds(f)
	for _, seq := range []uint32{0, 1, 2, 3} {
		f.Add(withSeq(reply, seq))
		f.Add(withSeq(eperm, seq))
	}
	f.Add(withSeq(econnrefused, 1))
	f.Add(nltest.Datagram(withSeq(reply, 2), withSeq(eperm, 1)))
	f.Add(withSeq(reply, 1)[:47])
	f.Add([]byte{})

	marker := func(seq uint32) []byte {
		return nltest.Message(typeAuditGet, 0, seq, 0, nltest.StatusPayload(0xfeedface, 1, 0, 0, 0, 0, seq, 0))
	}
	markerStatus := func(seq uint32) Status {
		s, _ := parseStatus(nltest.StatusPayload(0xfeedface, 1, 0, 0, 0, 0, seq, 0))
		return s
	}
	f.Fuzz(func(t *testing.T, datagram []byte) {
		var fn nltest.Func
		conn := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) { return fn(req) })
		fn = func(req syscall.NetlinkMessage) ([][]byte, error) {
			if req.Header.Seq == 1 {
				return [][]byte{datagram, marker(1)}, nil
			}
			return [][]byte{marker(req.Header.Seq)}, nil
		}
		c := New(conn, nil)
		defer func() {
			conn.InjectError(syscall.EBADF) // ends the receiver now, not after the fake's 20 ms wait
			c.Close()
		}()

		// The expected answer to query 1: the first seq-1 message that is a
		// status or a failure (ACKs and other types do not answer).
		want, wantErr, fromDatagram := markerStatus(1), error(nil), false
		msgs, _ := parseMessages(datagram)
	scan:
		for _, m := range msgs {
			if m.Header.Seq != 1 {
				continue
			}
			switch m.Header.Type {
			case typeAuditGet:
				var err error
				if want, err = parseStatus(m.Data); err != nil {
					wantErr = errMalformed
				}
				fromDatagram = true
				break scan
			case typeError:
				errno, err := parseError(m.Data)
				if err != nil || errno != 0 {
					want, wantErr, fromDatagram = Status{}, errMalformed, true
					if err == nil {
						wantErr = errno
					}
					break scan
				}
			}
		}

		s, err := status(c, 5*time.Second)
		if s != want || (wantErr == nil) != (err == nil) || (wantErr != nil && !errors.Is(err, wantErr)) {
			t.Fatalf("query 1 = %+v, %v; want %+v, %v", s, err, want, wantErr)
		}
		if fromDatagram {
			return // the rest of the datagram may still be in dispatch
		}
		s, err = status(c, 5*time.Second)
		if err != nil || s != markerStatus(2) {
			t.Fatalf("query 2 = %+v, %v; want its own reply %+v", s, err, markerStatus(2))
		}
	})
}
