#!/usr/bin/env python3
"""Registers N OAuth clients (default 10 000) through a running server's admin socket, each
with its own private_key_jwt key (a JWK Set of one ES256 public key, all the same bytes),
scopes and an audience, then prints the server's RSS after it has been idle for a few
seconds. Usage: scripts/oauth-clients-memory.py ADMIN_SOCKET SERVER_PID [N]
(docs/benchmarks.md, "idle memory with 10 000 registered clients")."""
import http.client, json, socket, sys, time

class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))

sock, pid = sys.argv[1], int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
key = {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
       "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
       "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
before = rss_kib(pid)
conn = UnixConnection(sock)
for i in range(n):
    body = json.dumps({"client_id": f"spiffe://example.org/ns/bench/sa/client-{i}",
                       "auth_methods": ["private_key_jwt", "spiffe_jwt"],
                       "spiffe_ids": [f"spiffe://example.org/ns/bench/sa/client-{i}"],
                       "jwks": {"keys": [dict(key, kid=f"k{i}")]},
                       "scopes": ["read", "write"], "audiences": ["https://api.example.test"],
                       "grant_types": ["client_credentials"]})
    conn.request("POST", "/v1/oauth/clients", body, {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status not in (200, 201):
        sys.exit(f"client {i}: HTTP {response.status}")
time.sleep(5)
print(json.dumps({"clients": n, "rss_kib_before": before, "rss_kib_after_idle": rss_kib(pid)}))
