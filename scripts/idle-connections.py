#!/usr/bin/env python3
"""How much memory does an idle keep-alive connection cost? Opens N connections to a running
reelserve (default 10 000), makes one request on each, leaves them idle, and prints the server's
RSS before and after. With --silent the connections send nothing at all (they wait for the
header timeout: start the server with a long --header-timeout). With --tls they are HTTPS
connections that choose HTTP/1.1 by ALPN (the server runs with --tls-cert/--tls-key; the
certificate is not checked); --silent then means a handshake and nothing more.

usage: scripts/idle-connections.py PORT PID [N] [--silent] [--tls]
"""
import resource
import socket
import ssl
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def main():
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    silent = "--silent" in flags
    tls = None
    if "--tls" in flags:
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        tls.set_alpn_protocols(["http/1.1"])
    port, pid = int(args[0]), int(args[1])
    count = int(args[2]) if len(args) > 2 else 10_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    before = rss_kb(pid)
    connections = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        if tls is not None:
            s = tls.wrap_socket(s, server_hostname="localhost")
        if not silent:
            s.sendall(b"GET /_reelserve/stats HTTP/1.1\r\nHost: x\r\n\r\n")
            if not s.recv(4096).startswith(b"HTTP/1.1 200"):
                raise SystemExit("unexpected response")
        connections.append(s)
    time.sleep(1)
    after = rss_kb(pid)
    kind = ("silent" if silent else "idle keep-alive") + (" HTTPS" if tls else "")
    print(f"{count} {kind} connections: RSS {before} kB -> {after} kB, "
          f"{(after - before) * 1024 / count:.0f} bytes per connection")


if __name__ == "__main__":
    main()
