package netlink

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// Netlink and audit message types we send or expect.
const (
	typeAuditGet = 1000 // AUDIT_GET, request and reply
	typeError    = syscall.NLMSG_ERROR
	typeDone     = syscall.NLMSG_DONE
	headerSize   = syscall.NLMSG_HDRLEN
)

// parseMessages splits one datagram into netlink messages. It is the parser
// applied to every datagram the socket receives, so framing is ours,
// not the library's. A message whose length is shorter than its header or
// overruns the datagram is malformed.
func parseMessages(b []byte) ([]syscall.NetlinkMessage, error) {
	var msgs []syscall.NetlinkMessage
	for len(b) > 0 {
		if len(b) < headerSize {
			return msgs, fmt.Errorf("%w: %d trailing bytes, shorter than a netlink header", errMalformed, len(b))
		}
		h := syscall.NlMsghdr{
			Len:   binary.NativeEndian.Uint32(b[0:4]),
			Type:  binary.NativeEndian.Uint16(b[4:6]),
			Flags: binary.NativeEndian.Uint16(b[6:8]),
			Seq:   binary.NativeEndian.Uint32(b[8:12]),
			Pid:   binary.NativeEndian.Uint32(b[12:16]),
		}
		// Compare unsigned: on 32-bit targets int(h.Len) can be negative.
		if h.Len < headerSize || uint64(h.Len) > uint64(len(b)) {
			return msgs, fmt.Errorf("%w: message length %d in a %d-byte datagram", errMalformed, h.Len, len(b))
		}
		msgs = append(msgs, syscall.NetlinkMessage{Header: h, Data: b[headerSize:h.Len:h.Len]})
		next := align4(int(h.Len))
		if next >= len(b) {
			break
		}
		b = b[next:]
	}
	return msgs, nil
}

func align4(n int) int { return (n + 3) &^ 3 }

// parseError decodes an NLMSG_ERROR payload: errno 0 is an ACK.
func parseError(data []byte) (syscall.Errno, error) {
	if len(data) < 4 {
		return 0, fmt.Errorf("%w: NLMSG_ERROR payload of %d bytes", errMalformed, len(data))
	}
	code := int32(binary.NativeEndian.Uint32(data))
	if code > 0 {
		return 0, fmt.Errorf("%w: NLMSG_ERROR with positive code %d", errMalformed, code)
	}
	return syscall.Errno(-code), nil
}

// statusRequest is the AUDIT_GET request numbered seq; the kernel fills in
// our port id.
func statusRequest(seq uint32) syscall.NetlinkMessage {
	return syscall.NetlinkMessage{Header: syscall.NlMsghdr{
		Len: headerSize, Type: typeAuditGet, Flags: syscall.NLM_F_REQUEST, Seq: seq}}
}

// encodeRequest lays out a request (header and payload, padded to 4 bytes)
// as the kernel reads it; the length is computed, not taken from req.
func encodeRequest(req syscall.NetlinkMessage) []byte {
	n := headerSize + len(req.Data)
	b := make([]byte, align4(n))
	binary.NativeEndian.PutUint32(b[0:4], uint32(n))
	binary.NativeEndian.PutUint16(b[4:6], req.Header.Type)
	binary.NativeEndian.PutUint16(b[6:8], req.Header.Flags)
	binary.NativeEndian.PutUint32(b[8:12], req.Header.Seq)
	binary.NativeEndian.PutUint32(b[12:16], req.Header.Pid)
	copy(b[headerSize:], req.Data)
	return b
}
