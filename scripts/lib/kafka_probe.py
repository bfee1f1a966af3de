#!/usr/bin/env python3
"""Tiny Kafka wire-protocol probe used by scripts/stack (stdlib only).

Why not Kafka's own CLI tools? Each of them starts a JVM (~1 s), and `status`
and the readiness loop of `up` call this many times. A raw Metadata request
answers in milliseconds and proves the broker really serves clients (not just
that its port is open).

Usage:
  kafka_probe.py HOST:PORT brokers   -> prints the number of registered brokers
  kafka_probe.py HOST:PORT ids       -> prints their node ids, one per line
  kafka_probe.py HOST:PORT topics    -> prints "name partitions replicas" lines
Exit status 0 on success, 1 if the broker does not answer properly.
"""
import socket
import struct
import sys

API_VERSIONS = 18
METADATA = 3
# Metadata v4..v8 share the non-flexible ("classic") encoding parsed below.
# Kafka 4.x removed v0-v3 (KIP-896) but keeps these.
METADATA_MIN, METADATA_MAX = 4, 8
CLIENT_ID = b"sluice-stack-probe"


class Reader:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        (val,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return val

    def i8(self):
        return self.take(">b")

    def i16(self):
        return self.take(">h")

    def i32(self):
        return self.take(">i")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.buf[self.pos:self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return s

    def i32_array(self):
        return [self.i32() for _ in range(max(self.i32(), 0))]


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        out += chunk
    return out


def call(sock, api_key, version, body, corr):
    # Request header v1: api_key, api_version, correlation_id, client_id.
    header = struct.pack(">hhih", api_key, version, corr, len(CLIENT_ID)) + CLIENT_ID
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    resp = Reader(recv_exact(sock, size))
    if resp.i32() != corr:  # response header v0: correlation_id
        raise ValueError("correlation id mismatch")
    return resp


def metadata_version(sock):
    # ApiVersions v0 is answered by every broker version.
    r = call(sock, API_VERSIONS, 0, b"", 1)
    err = r.i16()
    if err != 0:
        raise ValueError("ApiVersions error %d" % err)
    for _ in range(r.i32()):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        if key == METADATA:
            v = min(hi, METADATA_MAX)
            if v < max(lo, METADATA_MIN):
                raise ValueError("no common Metadata version (%d-%d)" % (lo, hi))
            return v
    raise ValueError("broker does not list the Metadata API")


def metadata(addr):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3) as sock:
        sock.settimeout(5)
        v = metadata_version(sock)
        # topics = null (all topics), allow_auto_topic_creation = false
        body = struct.pack(">i", -1) + b"\x00"
        if v >= 8:
            body += b"\x00\x00"  # include_{cluster,topic}_authorized_operations
        r = call(sock, METADATA, v, body, 2)
    r.i32()  # throttle_time_ms (v3+)
    brokers = []
    for _ in range(r.i32()):
        node_id, host_, port_ = r.i32(), r.string(), r.i32()
        r.string()  # rack
        brokers.append((node_id, host_, port_))
    r.string()  # cluster_id
    r.i32()  # controller_id
    topics = []
    for _ in range(r.i32()):
        r.i16()  # error_code
        name = r.string()
        r.i8()  # is_internal
        parts = []
        for _ in range(r.i32()):
            r.i16()  # error_code
            r.i32()  # partition_index
            r.i32()  # leader_id
            if v >= 7:
                r.i32()  # leader_epoch
            replicas = r.i32_array()
            r.i32_array()  # isr_nodes
            if v >= 5:
                r.i32_array()  # offline_replicas
            parts.append(len(replicas))
        if v >= 8:
            r.i32()  # topic_authorized_operations
        topics.append((name, len(parts), max(parts) if parts else 0))
    return brokers, topics


def main(argv):
    if len(argv) != 3 or argv[2] not in ("brokers", "ids", "topics"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        brokers, topics = metadata(argv[1])
    except (OSError, ValueError, struct.error) as exc:
        print("kafka_probe: %s: %s" % (argv[1], exc), file=sys.stderr)
        return 1
    if argv[2] == "brokers":
        print(len(brokers))
    elif argv[2] == "ids":
        for node_id in sorted(b[0] for b in brokers):
            print(node_id)
    else:
        for name, nparts, rf in sorted(topics):
            print(name, nparts, rf)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
