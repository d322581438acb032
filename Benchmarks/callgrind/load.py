#!/usr/bin/env python3
"""Keep-alive load for callgrind counts: load.py PORT N [CONNS=8]: N requests in all, sent round-robin over CONNS
connections, one in flight on each; every response must be a 200 with its Content-Length."""
import socket, sys
port, total, conns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 8
REQ = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
bufs = [b""] * conns
done = 0
def one(i):
    s = socks[i]
    while True:
        b = bufs[i]
        h = b.find(b"\r\n\r\n")
        if h >= 0:
            head = b[:h].lower()
            cl = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
            if len(b) >= h + 4 + cl:
                assert b.startswith(b"HTTP/1.1 200"), b[:100]
                bufs[i] = b[h + 4 + cl:]
                return
        d = s.recv(65536)
        if not d: raise SystemExit("closed")
        bufs[i] = b + d
while done < total:
    k = min(conns, total - done)
    for i in range(k): socks[i].sendall(REQ)
    for i in range(k): one(i)
    done += k
for s in socks: s.close()
print("ok", done)
