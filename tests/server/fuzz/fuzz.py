#!/usr/bin/env python3
"""tests/server/fuzz/fuzz.py - seeded request fuzzer for mesad.

Sends N requests (default 3000) to a running mesad on a loopback address and
checks docs/PROTOCOL.md's promise "bad input is always 4xx; 500 never for bad
input; the server never crashes". The mix (choices come from --seed; ids the
server hands out are used as they come):

  valid      every endpoint of PROTOCOL.md with valid bodies and arguments
  mutate     JSON bodies of every POST/PATCH mutated: type confusion, missing
             required and unknown fields, huge/negative/float mtime_ns, deep
             nesting, duplicate keys, invalid UTF-8, NaN/Infinity, \\u0000,
             empty and very long strings, arrays for objects, 10k-entry files
  paths      odd file paths (.., //, %2e%2e, NUL, .git variants, 5000 bytes,
             control characters, trailing slashes) in files[], resolutions,
             ?path= and URL segments
  query      odd limit/cursor/depth/change_id/commit/after/wait/glob values
  headers    Range, If-None-Match, Accept, Last-Event-ID, Content-Type variants
  raw        malformed HTTP over a raw socket: bad request lines, huge
             headers, chunked garbage, Content-Length lies, partial requests
  methods    wrong and unknown methods on every route
  names      bookmark, merge and repo names with odd characters
  tokens     garbage credentials and HS256 tokens signed with the real key
             around odd headers and claims

A finding is: a 5xx other than 503; a failed connection or a timeout on a
request that should be answered; a 2xx for a request that is invalid by the
contract (bad path, unknown field, bad base64, ...); a 201 bookmark that
cannot be read back; a sanitizer report in --log; the server dying. Every
100 requests GET /healthz must answer and --pid must be alive.
Prints "requests N, statuses {...}, findings K"; exit 1 on any finding.
Only the Python 3 standard library is used. Refuses non-loopback URLs.

usage: fuzz.py --url http://127.0.0.1:PORT --key mesa_... [--seed S] [-n N]
               [--org acme] [--pid PID] [--log FILE] [--save DIR] [-v]
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import re
import socket
import sys
import time
import urllib.parse

ROOT = "z" * 32
SANITIZER_RE = re.compile(rb"AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer")


# ------------------------------------------------------------------ HTTP


class Resp:
    def __init__(self):
        self.status = None  # int, or None when no status line came back
        self.headers = {}
        self.body = b""
        self.error = None  # "timeout", "closed", "refused", ...
        self.secs = 0.0

    def json(self):
        try:
            return json.loads(self.body)
        except Exception:
            return None


def _read_response(sock, head_only=False, stream=False):
    r = Resp()
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                r.error = "closed" if not buf else "truncated-headers"
                return r
            buf += chunk
            if len(buf) > 1 << 20:
                r.error = "huge-headers"
                return r
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/\d\.\d (\d{3})", lines[0])
        if not m:
            r.error = "bad-status-line"
            return r
        r.status = int(m.group(1))
        r.headers = {}
        for ln in lines[1:]:
            if b":" in ln:
                k, v = ln.split(b":", 1)
                r.headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        if r.status == 100:
            continue
        break
    if head_only or r.status in (204, 304) or stream and "event-stream" in r.headers.get(
            "content-type", ""):
        return r
    if "content-length" in r.headers:
        try:
            n = int(r.headers["content-length"])
        except ValueError:
            n = -1
        while n >= 0 and len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                r.error = "truncated-body"
                break
            buf += chunk
        r.body = buf
        return r
    if "chunked" in r.headers.get("transfer-encoding", "").lower():
        out = b""
        while True:
            while b"\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    r.error = "truncated-chunks"
                    r.body = out
                    return r
                buf += chunk
            line, buf = buf.split(b"\r\n", 1)
            try:
                n = int(line.split(b";")[0], 16)
            except ValueError:
                r.error = "bad-chunk"
                r.body = out
                return r
            while len(buf) < n + 2:
                chunk = sock.recv(65536)
                if not chunk:
                    r.error = "truncated-chunks"
                    r.body = out + buf
                    return r
                buf += chunk
            out += buf[:n]
            buf = buf[n + 2:]
            if n == 0:
                r.body = out
                return r
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    r.body = buf
    return r


def http_raw(host, port, data, timeout, head_only=False, stream=False, parts=None, pause=0.0,
             half_close=False):
    """Send data (or each of parts with pause between) and read one response."""
    r = Resp()
    t0 = time.monotonic()
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        r.error = "refused: %s" % e
        return r
    try:
        s.settimeout(timeout)
        if parts is None:
            s.sendall(data)
        else:
            for p in parts:
                s.sendall(p)
                time.sleep(pause)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        r = _read_response(s, head_only=head_only, stream=stream)
    except socket.timeout:
        r.error = "timeout"
    except (ConnectionResetError, BrokenPipeError) as e:
        r.error = "reset: %s" % e.__class__.__name__
    except OSError as e:
        r.error = "oserror: %s" % e
    finally:
        try:
            s.close()
        except OSError:
            pass
    r.secs = time.monotonic() - t0
    return r


# ------------------------------------------------------------------ requests


def b(x):
    return x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass")


class Req:
    """One request. target is the request-target (bytes or str, sent as is)."""

    def __init__(self, method, target, body=None, headers=None, kind="valid", ep=None,
                 expect=None, auth=True, raw=None, tolerant=False, ctype="application/json",
                 note=""):
        self.method = method
        self.target = target
        self.body = b(body) if body is not None else None
        self.headers = list(headers or [])
        self.kind = kind  # category, for the summary
        self.ep = ep or target  # endpoint template, for de-duplication
        self.expect = expect  # None or "4xx": the request is invalid by contract
        self.auth = auth  # True: the admin key; a str: that Authorization value; None: none
        self.raw = raw  # dict for raw-socket requests
        self.tolerant = tolerant  # no answer / timeout is acceptable
        self.ctype = ctype
        self.note = note
        self.after = None  # callback(resp) -> finding text or None
        self.ok5xx = ()  # 5xx statuses that are the right answer (505 for HTTP/9.9)

    def header_names(self):
        return {h[0].lower() for h in self.headers}

    def wire(self, host, port, key):
        if self.raw and "bytes" in self.raw:
            return self.raw["bytes"]
        lines = [b(self.method) + b" " + b(self.target) + b" HTTP/1.1",
                 b"Host: %s:%d" % (host.encode(), port), b"Connection: close"]
        names = self.header_names()
        if self.auth is True:
            lines.append(b"Authorization: Bearer " + key.encode())
        elif isinstance(self.auth, (str, bytes)):
            lines.append(b"Authorization: " + b(self.auth))
        if self.body is not None:
            if "content-type" not in names and self.ctype:
                lines.append(b"Content-Type: " + b(self.ctype))
            if "content-length" not in names and "transfer-encoding" not in names:
                lines.append(b"Content-Length: %d" % len(self.body))
        for k, v in self.headers:
            lines.append(b(k) + b": " + b(v))
        return b"\r\n".join(lines) + b"\r\n\r\n" + (self.body or b"")

    def curl(self, url, key, save_dir=None, idx=0):
        """A shell command reproducing the request (the admin key as $KEY)."""
        if self.raw:
            data = self.wire("127.0.0.1", 0, "$KEY")
            if save_dir:
                p = os.path.join(save_dir, "finding-%d.http" % idx)
                with open(p, "wb") as f:
                    f.write(data)
                return "nc -q 5 HOST PORT < %s   # raw HTTP request" % p
            return "printf %s | nc -q 5 HOST PORT" % shq(data[:600])
        parts = ["curl -sS -g --path-as-is -i -X %s" % shq(b(self.method))]
        if self.auth is True:
            parts.append('-H "Authorization: Bearer $KEY"')
        elif isinstance(self.auth, (str, bytes)):
            parts.append("-H %s" % shq(b"Authorization: " + b(self.auth)))
        for k, v in self.headers:
            parts.append("-H %s" % shq(b(k) + b": " + b(v)))
        if self.body is not None:
            if self.ctype and "content-type" not in self.header_names():
                parts.append("-H %s" % shq(b"Content-Type: " + b(self.ctype)))
            if len(self.body) <= 400:
                parts.append("--data-binary %s" % shq(self.body))
            elif save_dir:
                p = os.path.join(save_dir, "finding-%d.body" % idx)
                with open(p, "wb") as f:
                    f.write(self.body)
                parts.append("--data-binary @%s" % p)
            else:
                parts.append("--data-binary %s...(%d bytes)" % (shq(self.body[:200]),
                                                                len(self.body)))
        parts.append(shq(b(url) + b(self.target)))
        return " ".join(parts)


def shq(data):
    """Shell-quote bytes: '...' when printable ASCII, else $'...' with \\x escapes."""
    data = b(data)
    if all(32 <= c < 127 for c in data) and b"'" not in data:
        return "'" + data.decode() + "'"
    out = []
    for c in data:
        if 32 <= c < 127 and c not in (0x27, 0x5C):
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "$'" + "".join(out) + "'"


def q(s):
    """Percent-encode a query value or path segment (all reserved characters)."""
    return urllib.parse.quote(b(s), safe="")


def qs(pairs):
    return "&".join("%s=%s" % (q(k), q(v)) for k, v in pairs)


def b64(data):
    return base64.b64encode(b(data)).decode()


def b64url(data):
    return base64.urlsafe_b64encode(b(data)).rstrip(b"=").decode()


# ------------------------------------------------------------------ odd values

WEIRD_SCALARS = [
    0, -1, 1, 1.5, -0.0, 2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, -(2 ** 63), 1e308, -1e-308,
    "", " ", "0", "-1", "NaN", "Infinity", "null", "true", "\u0000", "a\u0000b",
    "\u00e9", "\U0001F600", "\u202e", "\ufeff", "\\", "\"", "%00", "%2e%2e", "../",
    "x" * 300, "é" * 700, True, False, None,
]

ODD_PATHS = [
    "..", "../x", "a/../b", "a/..", "./a", "a/.", ".", "/a", "/", "a//b", "a/", "a///",
    "", " ", ".git", ".GIT", ".Git/config", "a/.git", "a/.gIt/b", ".git/", ".git/hooks/pre-commit",
    "a\u0000b", "\u0000", "%2e%2e", "%2e%2e/x", "..%2fx", "a\\..\\b", "..\\x",
    "a\u0001b", "\t", "a\nb", "a\rb", "\u007f", "x/\u001f", ".gitmodules", ".git ", ".git.",
    "git~1", ".git\u200c", "a" * 255, "a" * 256, "b/" + "c" * 256, ("d" * 200 + "/") * 20 + "e",
    ("f" * 100 + "/") * 40 + "g" * 95, ("h" * 100 + "/") * 41, "i" * 5000, "é" * 128,
    "é" * 2500, "\U0001F600/x", "\ud800", "con", "aux.txt", "a:b", "a*b?", "~", "-",
    "dir/", "dir//", "dir/b.txt/", "a.txt/x", "a/git~1/b", "GIT~1/x", ".git::$DATA/x",
    "a/.git /b", ".git./x", "a/.git\u200c/b", ".gitmodules/x",
]

ODD_SEGMENTS = [
    "..", ".", "%2e%2e", "%2E%2e", "%00", "%ff", "%fe%ff", "%c3", "%c3%28", "%e2%82",
    "%ed%a0%80", "%f4%90%80%80", "\xff", "\xc3\xa9", "%20", "%0a", "%0d%0a", "%7f", "%",
    "%zz", "%%", "a%2fb", "a%5cb", ".git", "HEAD", "refs%2fheads%2fmain", "x" * 300,
    "y" * 5000, "%c3%a9" * 600, "z" * 31, "z" * 32, "z" * 33, "0" * 40, "g" * 40, "F" * 40,
    "merge", "batch", "-", "~", "*", "?", "[", "@{0}", "main@{1}", "main~1", "main^",
]

ODD_NAMES = [
    "a..b", "a~b", "a^b", "a:b", "a?b", "a*b", "a[b", "a\\b", "a b", "-a", ".a", "a.",
    "a.lock", "a/", "/a", "a//b", "@", "a@{b", "HEAD", "refs/heads/x", "b" * 200, "c" * 201,
    "d" * 1000, "é", "\U0001F600", "a\u0000b", "a\u0001b", "a\tb", "merge", "main/sub",
    "main", "feat", "x/y/z", "x", "", " ", "a/.b", "a/b.lock", "a/.lock", "..", "a/..",
    "\u202emain", "%00", "a%2Fb", "ma" * 60, "-", "_", "a.git", "A" * 100, "A" * 101,
]


def invalid_path(p):
    """Does the contract (PROTOCOL.md, file paths) reject path p?"""
    try:
        raw = p.encode("utf-8")
    except UnicodeEncodeError:
        return True
    if not raw or len(raw) > 4096 or b"\0" in raw or raw.startswith(b"/"):
        return True
    for seg in raw.split(b"/"):
        if not seg or len(seg) > 255 or seg in (b".", b"..") or seg.lower() == b".git":
            return True
    return False


# ------------------------------------------------------------------ the fuzzer


class Fuzzer:
    def __init__(self, args):
        self.a = args
        u = urllib.parse.urlsplit(args.url)
        if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("fuzz.py: only http:// loopback URLs are allowed: %s" % args.url)
        self.host = "127.0.0.1" if u.hostname == "localhost" else u.hostname
        self.port = u.port or 80
        self.url = "%s://%s" % (u.scheme, u.netloc)
        self.key = args.key
        self.org = args.org
        self.rnd = random.Random(args.seed)
        self.statuses = {}
        self.kinds = {}
        self.findings = {}  # dedupe key -> [count, text]
        self.nreq = 0
        self.dead = False
        self.log_off = os.path.getsize(args.log) if args.log and os.path.exists(args.log) else 0
        self.sanitizer = None
        self.scratch = 0
        # server-side state, filled by setup() and refreshed by batches
        self.changes = []
        self.commits = []
        self.bookmarks = ["main"]
        self.blobs = []
        self.paths = []
        self.cursors = []
        self.scratch_repos = []
        self.my_bookmarks = []

    # ---------------------------------------------------------- plumbing

    def send(self, req, timeout=None):
        timeout = timeout or self.a.timeout
        raw = req.raw or {}
        data = req.wire(self.host, self.port, self.key)
        r = http_raw(self.host, self.port, data, raw.get("timeout", timeout),
                     head_only=req.method == "HEAD", stream=True, parts=raw.get("parts"),
                     pause=raw.get("pause", 0.0), half_close=raw.get("half_close", False))
        return r

    def api(self, method, path, body=None, headers=None, auth=True):
        """A setup/bookkeeping request (not counted, not judged)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        r = self.send(Req(method, "/v1" + path, body=body, headers=headers, auth=auth))
        return r

    def finding(self, key, text):
        if key in self.findings:
            self.findings[key][0] += 1
        else:
            self.findings[key] = [1, text]
            if self.a.verbose:
                print("FINDING: " + text, file=sys.stderr)

    def check_log(self, req):
        """New sanitizer output in the server log since the last request?"""
        if not self.a.log:
            return
        try:
            size = os.path.getsize(self.a.log)
        except OSError:
            return
        if size <= self.log_off:
            return
        with open(self.a.log, "rb") as f:
            f.seek(self.log_off)
            new = f.read()
        self.log_off = size
        if SANITIZER_RE.search(new) and not self.sanitizer:
            self.sanitizer = new[:4000].decode("utf-8", "replace")
            self.finding(("sanitizer",), "sanitizer report in the server log after %s %s\n"
                         "  reproducer: %s\n  log excerpt:\n%s" % (
                             req.method, req.ep, self.repro(req),
                             "\n".join("    " + ln for ln in self.sanitizer.splitlines()[:40])))

    def proc_alive(self):
        if not self.a.pid:
            return True
        try:
            with open("/proc/%d/stat" % self.a.pid) as f:
                st = f.read()
            return st[st.rindex(")") + 2] not in "ZX"
        except (OSError, ValueError, IndexError):
            try:
                os.kill(self.a.pid, 0)
                return True
            except OSError:
                return False

    def healthy(self):
        for _ in range(3):
            r = http_raw(self.host, self.port,
                         b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 10)
            if r.status == 200 and r.json() == {"ok": True}:
                return self.proc_alive()
            if not self.proc_alive():
                return False
            time.sleep(0.5)
        return False

    def repro(self, req):
        self._saved = getattr(self, "_saved", 0) + 1
        return req.curl(self.url, self.key, self.a.save, self._saved)

    def judge(self, req, r):
        """Record the status; note findings."""
        st = r.status if r.status is not None else (r.error or "none").split(":")[0]
        self.statuses[st] = self.statuses.get(st, 0) + 1
        self.kinds[req.kind] = self.kinds.get(req.kind, 0) + 1
        code, msg = "", ""
        j = r.json() if r.body[:1] == b"{" else None
        if isinstance(j, dict) and isinstance(j.get("error"), dict):
            code = j["error"].get("code", "")
            # the message without its variable parts tells causes apart
            msg = re.sub(r"'.*'|[0-9a-f]{8,}|\d+", "_", str(j["error"].get("message", "")))[:60]
        if r.status is not None and r.status >= 500 and r.status != 503 and \
                r.status not in req.ok5xx:
            self.finding(("5xx", req.method, req.ep, r.status, code, msg),
                         "HTTP %d %s on %s %s [%s]\n  reproducer: %s\n  answer: %s" % (
                             r.status, code, req.method, req.ep, req.kind, self.repro(req),
                             r.body[:300]))
        elif r.status is None and not req.tolerant:
            self.finding(("noanswer", req.method, req.ep, r.error.split(":")[0]),
                         "no answer (%s) to %s %s [%s]\n  reproducer: %s" % (
                             r.error, req.method, req.ep, req.kind, self.repro(req)))
        elif req.expect == "4xx" and r.status is not None and 200 <= r.status < 300:
            self.finding(("accepted", req.method, req.ep, re.split("['\"]", req.note)[0]),
                         "HTTP %d for invalid input (%s) on %s %s [%s]\n  reproducer: %s\n"
                         "  answer: %s" % (r.status, req.note, req.method, req.ep, req.kind,
                                           self.repro(req), r.body[:300]))
        if req.after and r.status is not None:
            msg = req.after(r)
            if msg:
                self.finding(("after", req.method, req.ep, msg.split(":")[0]),
                             "%s\n  reproducer: %s" % (msg, self.repro(req)))
        self.check_log(req)

    # ---------------------------------------------------------- state

    def rp(self, repo=None):
        return "/%s/%s" % (self.org, repo or self.repo)

    def setup(self):
        r = self.api("GET", "/whoami")
        if r.status != 200:
            raise SystemExit("fuzz.py: GET /v1/whoami answered %s %s %s" % (
                r.status, r.error, r.body[:200]))
        who = r.json()
        self.key_id = who["key_id"]
        self.org = who["org"]["slug"]
        self.secret = b64url(hashlib.sha256(self.key.encode()).digest())
        self.repo = "fz%s" % self.a.seed
        self.repo2 = "fz%sb" % self.a.seed
        for name in (self.repo, self.repo2):
            r = self.api("POST", "/%s/repos" % self.org, {"name": name})
            if r.status not in (201, 409):
                raise SystemExit("fuzz.py: cannot create repo %s: %s %s" % (
                    name, r.status, r.body[:200]))
        files = [{"path": "a.txt", "content": b64("hello\n")},
                 {"path": "dir/b.txt", "content": b64("b" * 100), "mtime_ns": 1},
                 {"path": "dir/sub/c.bin", "content": b64(bytes(range(256)))},
                 {"path": "link", "content": b64("a.txt"), "mode": "120000"},
                 {"path": "exe.sh", "content": b64("#!/bin/sh\n"), "mode": "100755"},
                 {"path": "empty", "action": "mkdir"}]
        c1 = self.new_change("main", files)
        c2 = self.new_change(c1, [{"path": "a.txt", "content": b64("two\n")}])
        c3 = self.new_change(c1, [{"path": "side.txt", "content": b64("side\n")}])
        if not (c1 and c2 and c3):
            raise SystemExit("fuzz.py: cannot create the seed changes")
        self.api("PATCH", self.rp() + "/bookmarks/main", {"change_id": c2})
        self.api("POST", self.rp() + "/bookmarks", {"name": "feat", "change_id": c3})
        r = self.api("POST", self.rp() + "/blobs", body=b"blob-data\n" * 10,
                     headers=[("Content-Type", "application/octet-stream")])
        if r.status == 201:
            self.blobs.append(r.json()["oid"])
        self.paths = ["a.txt", "dir", "dir/b.txt", "dir/sub", "dir/sub/c.bin", "link", "exe.sh",
                      "empty"]
        self.refresh()

    def new_change(self, base, files, repo=None):
        r = self.api("POST", self.rp(repo) + "/changes",
                     {"base_change_id": base, "message": "fuzz", "files": files})
        if r.status != 201:
            return None
        j = r.json()
        self.changes.append(j["id"])
        self.commits.append(j["current_commit_oid"])
        return j["id"]

    def refresh(self):
        r = self.api("GET", self.rp() + "/changes?limit=100")
        if r.status == 200:
            for c in r.json()["changes"]:
                if c["id"] not in self.changes:
                    self.changes.append(c["id"])
                if c["current_commit_oid"] not in self.commits:
                    self.commits.append(c["current_commit_oid"])
        r = self.api("GET", self.rp() + "/bookmarks?limit=100")
        if r.status == 200:
            self.bookmarks = [x["name"] for x in r.json()["bookmarks"]] or ["main"]
            if "feat" not in self.bookmarks and len(self.changes) > 2:
                self.api("POST", self.rp() + "/bookmarks",
                         {"name": "feat", "change_id": self.rnd.choice(self.changes[-5:])})
        r = self.api("GET", self.rp() + "/tree")
        if r.status == 200:
            self.paths = [e["path"] for e in r.json()["entries"]][:200] or self.paths
            for e in r.json()["entries"]:
                if e["type"] != "dir" and e["oid"] not in self.blobs and len(self.blobs) < 50:
                    self.blobs.append(e["oid"])
        self.changes = self.changes[-200:]
        self.commits = self.commits[-200:]

    # ---------------------------------------------------------- choices

    def ch(self, seq):
        return self.rnd.choice(seq)

    def chance(self, p):
        return self.rnd.random() < p

    def change(self):
        return self.ch(self.changes) if self.changes else ROOT

    def rev(self):
        return self.ch([self.change(), self.ch(self.bookmarks), ROOT])

    def valid_path(self):
        pool = ["p%d.txt" % self.rnd.randrange(30), "d%d/f%d" % (self.rnd.randrange(5),
                                                                 self.rnd.randrange(5)),
                "deep/a/b/c/d/e%d" % self.rnd.randrange(3), "é/ü%d" % self.rnd.randrange(3),
                "sp ace %d" % self.rnd.randrange(3), "a.txt", "dir/b.txt"]
        return self.ch(pool)

    def valid_entry(self):
        k = self.rnd.random()
        p = self.valid_path()
        if k < 0.6:
            e = {"path": p, "content": b64(bytes(
                self.rnd.randrange(256) for _ in range(self.rnd.randrange(64))))}
            if self.chance(0.3):
                e["mode"] = self.ch(["100644", "100755", "120000"])
            if self.chance(0.3):
                e["mtime_ns"] = self.ch([0, 1, 10 ** 18, 2 ** 63 - 1, 1700000000123456789])
            if self.chance(0.2):
                e["encoding"] = "base64"
            if self.chance(0.1):
                e["action"] = "upsert"
            return e
        if k < 0.7 and self.blobs:
            return {"path": p, "blob_oid": self.ch(self.blobs)}
        if k < 0.85:
            return {"path": self.ch([p] + self.paths), "action": "delete"}
        e = {"path": "m%d/n%d" % (self.rnd.randrange(5), self.rnd.randrange(3)), "action": "mkdir"}
        if self.chance(0.3):
            e["mtime_ns"] = self.rnd.randrange(2 ** 62)
        return e

    def sig(self):
        s = {"name": self.ch(["Fuzz", "Zoë", "a b"]), "email": "f@x"}
        if self.chance(0.5):
            s["date"] = self.ch(["2024-01-02T03:04:05.678Z", "2024-01-02T03:04:05+02:00",
                                 "1970-01-01T00:00:00Z", "2099-12-31T23:59:59-05:30"])
        return s

    # ---------------------------------------------------------- valid requests

    def valid(self):
        """A valid request to a random endpoint of PROTOCOL.md."""
        o, rp = self.org, self.rp()
        R = []
        R.append(lambda: Req("GET", "/v1/whoami", ep="/whoami"))
        R.append(lambda: Req("GET", "/v1/%s" % o, ep="/{org}"))
        R.append(lambda: Req("GET", "/v1/%s/repos?%s" % (o, qs(
            [("limit", str(self.rnd.randint(1, 100)))] + (
                [("cursor", self.ch(self.cursors))] if self.cursors and self.chance(0.5) else []))),
            ep="/{org}/repos"))
        R.append(self.v_repo_create)
        R.append(lambda: Req("GET", "/v1" + rp, ep="/{org}/{repo}"))
        R.append(self.v_repo_patch)
        R.append(self.v_repo_delete)
        R.append(lambda: Req("GET", "/v1%s/changes?%s" % (rp, qs(
            ([("bookmark", self.ch(self.bookmarks))] if self.chance(0.5) else []) +
            [("limit", str(self.rnd.randint(1, 100)))])), ep="/changes"))
        R.append(self.v_change_create)
        R.append(lambda: Req("GET", "/v1%s/changes/%s" % (rp, q(self.rev())), ep="/changes/{id}"))
        R.append(self.v_change_patch)
        R.append(lambda: Req("GET", "/v1%s/bookmarks?%s" % (rp, qs(
            [("limit", str(self.rnd.randint(1, 100)))] +
            ([("glob", self.ch(["*", "m*", "f?at", "[a-m]*", "*/*"]))] if self.chance(0.5)
             else []))), ep="/bookmarks"))
        R.append(self.v_bookmark_create)
        R.append(lambda: Req("GET", "/v1%s/bookmarks/%s" % (rp, self.ch(self.bookmarks)),
                             ep="/bookmarks/{name}"))
        R.append(self.v_bookmark_patch)
        R.append(self.v_bookmark_delete)
        R.append(self.v_merge)
        R.append(self.v_content)
        R.append(lambda: Req("GET", "/v1%s/tree?%s" % (rp, qs(
            [("change_id", self.rev())] if self.chance(0.6) else
            [("commit", self.ch(self.commits))] if self.commits else [])), ep="/tree"))
        R.append(self.v_blob_get)
        R.append(lambda: Req("POST", "/v1%s/blobs/batch" % rp, json.dumps(
            {"oids": [self.ch(self.blobs + ["0" * 40]) for _ in range(self.rnd.randrange(5))]}),
            ep="/blobs/batch"))
        R.append(lambda: Req("POST", "/v1%s/blobs" % rp, bytes(
            self.rnd.randrange(256) for _ in range(self.rnd.randrange(2000))),
            ctype="application/octet-stream", ep="/blobs"))
        R.append(self.v_events)
        R.append(lambda: Req("GET", "/healthz", auth=self.ch([True, None]), ep="/healthz"))
        return self.ch(R)()

    def v_repo_create(self):
        self.scratch += 1
        name = "fzs%s_%d" % (self.a.seed, self.scratch)
        body = {"name": name}
        if self.chance(0.3):
            body["default_bookmark"] = self.ch(["main", "trunk", "dev/x"])
        if self.chance(0.3):
            body["tags"] = {"k": "v", "é": "ü"}
        req = Req("POST", "/v1/%s/repos" % self.org, json.dumps(body), ep="/{org}/repos")

        def after(r, name=name):
            if r.status == 201:
                self.scratch_repos.append(name)
        req.after = lambda r: after(r)
        return req

    def v_repo_patch(self):
        if self.scratch_repos and self.chance(0.5):
            name = self.ch(self.scratch_repos)
            body = {"tags": {"t": self.ch(["x", None])}}
            if self.chance(0.5):
                self.scratch += 1
                new = "fzs%s_%d" % (self.a.seed, self.scratch)
                body["name"] = new

                def after(r, old=name, new=new):
                    if r.status == 200 and old in self.scratch_repos:
                        self.scratch_repos[self.scratch_repos.index(old)] = new
            else:
                after = None
            req = Req("PATCH", "/v1/%s/%s" % (self.org, name), json.dumps(body), ep="/{org}/{repo}")
            req.after = after
            return req
        body = {"tags": {"fuzz": str(self.rnd.randrange(100))}}
        if self.chance(0.3):
            body["default_bookmark"] = "main"
        if self.chance(0.2):
            body["upstream"] = None
        return Req("PATCH", "/v1" + self.rp(), json.dumps(body), ep="/{org}/{repo}")

    def v_repo_delete(self):
        if not self.scratch_repos:
            return self.v_repo_create()
        name = self.scratch_repos.pop(self.rnd.randrange(len(self.scratch_repos)))
        return Req("DELETE", "/v1/%s/%s" % (self.org, name), ep="/{org}/{repo}")

    def v_change_create(self):
        body = {"base_change_id": self.rev()}
        if self.chance(0.7):
            body["files"] = [self.valid_entry() for _ in range(self.rnd.randrange(6))]
        if self.chance(0.5):
            body["message"] = self.ch(["m", "", "multi\nline", "ünïcode ✓"])
        if self.chance(0.3):
            body["author"] = self.sig()
        if self.chance(0.2):
            body["committer"] = self.sig()
        req = Req("POST", "/v1%s/changes" % self.rp(), json.dumps(body), ep="/changes")

        def after(r):
            if r.status == 201:
                j = r.json()
                self.changes.append(j["id"])
                self.commits.append(j["current_commit_oid"])
        req.after = after
        return req

    def v_change_patch(self):
        body = {}
        if self.chance(0.8):
            body["files"] = [self.valid_entry() for _ in range(self.rnd.randrange(1, 5))]
        if self.chance(0.4):
            body["message"] = "patched"
        if self.chance(0.3) and self.commits:
            body["base_commit_oid"] = self.ch(self.commits)
        if self.chance(0.2):
            body["author"] = self.sig()
        cid = self.ch([self.change(), self.change(), self.ch(self.bookmarks)])
        req = Req("PATCH", "/v1%s/changes/%s" % (self.rp(), q(cid)), json.dumps(body),
                  ep="/changes/{id}")

        def after(r):
            if r.status == 200:
                self.commits.append(r.json()["current_commit_oid"])
        req.after = after
        return req

    def bookmark_readback(self, name):
        def after(r):
            if r.status != 201:
                return None
            if name not in self.bookmarks:
                self.bookmarks.append(name)
                self.my_bookmarks.append(name)
            g = self.api("GET", self.rp() + "/bookmarks/" + "/".join(
                q(s) for s in name.split("/")))
            if g.status != 200:
                return ("bookmark acknowledged but missing: POST bookmarks name %r answered "
                        "201, GET answers %s %s" % (name, g.status, g.body[:150]))
            return None
        return after

    def v_bookmark_create(self):
        name = self.ch(["fz%d" % self.rnd.randrange(50), "fz/%d" % self.rnd.randrange(10),
                        "fz-%d.x" % self.rnd.randrange(10), "feat", "main/sub%d" % self.rnd.randrange(3),
                        "fz%d/deeper" % self.rnd.randrange(50)])
        req = Req("POST", "/v1%s/bookmarks" % self.rp(),
                  json.dumps({"name": name, "change_id": self.change()}), ep="/bookmarks")
        req.after = self.bookmark_readback(name)
        return req

    def v_bookmark_patch(self):
        name = self.ch(self.bookmarks)
        return Req("PATCH", "/v1%s/bookmarks/%s" % (self.rp(), name),
                   json.dumps({"change_id": self.ch([self.change(), ROOT])}),
                   ep="/bookmarks/{name}")

    def v_bookmark_delete(self):
        cand = [x for x in self.bookmarks if x not in ("main", "feat")]
        name = self.ch(cand) if cand else "main"
        if name in self.bookmarks and name != "main":
            self.bookmarks.remove(name)
        return Req("DELETE", "/v1%s/bookmarks/%s" % (self.rp(), name), ep="/bookmarks/{name}")

    def v_merge(self):
        if self.chance(0.5):
            # fresh diverging changes so the merge does real work
            base = self.change()
            a = self.new_change(base, [{"path": "m.txt", "content": b64("A%d\n" % self.nreq)}])
            c = self.new_change(base, [{"path": self.ch(["m.txt", "n.txt"]),
                                        "content": b64("B%d\n" % self.nreq)}])
            t, s = "fzm%d" % self.nreq, "fzn%d" % self.nreq
            self.api("POST", self.rp() + "/bookmarks", {"name": t, "change_id": a or ROOT})
            self.api("POST", self.rp() + "/bookmarks", {"name": s, "change_id": c or ROOT})
            self.bookmarks += [t, s]
        else:
            t, s = self.ch(self.bookmarks), self.ch(self.bookmarks)
        body = {"target": t, "source": s}
        if self.chance(0.5):
            body["allow_conflicted"] = self.ch([True, False])
        if self.chance(0.3):
            body["delete_source"] = self.ch([True, False])
        if self.chance(0.3):
            body["message"] = "merge!"
        if self.chance(0.4):
            body["resolutions"] = [self.ch([{"path": "m.txt", "take": self.ch(["target", "source"])},
                                            {"path": "m.txt", "content": b64("resolved\n")}])]
        return Req("POST", "/v1%s/bookmarks/merge" % self.rp(), json.dumps(body),
                   ep="/bookmarks/merge")

    def v_content(self):
        args = []
        if self.chance(0.6):
            args.append(("change_id", self.rev()))
        if self.chance(0.8):
            args.append(("path", self.ch(self.paths + ["", "dir/"])))
        if self.chance(0.3):
            args.append(("depth", str(self.ch([1, 2, 5, 1000]))))
        hdr = [("Accept", "application/octet-stream")] if self.chance(0.2) else []
        return Req("GET", "/v1%s/content?%s" % (self.rp(), qs(args)), headers=hdr, ep="/content")

    def v_blob_get(self):
        oid = self.ch(self.blobs) if self.blobs else "0" * 40
        hdr = []
        if self.chance(0.4):
            hdr.append(("Range", self.ch(["bytes=0-0", "bytes=2-5", "bytes=-3", "bytes=3-",
                                          "bytes=0-999999"])))
        if self.chance(0.2):
            hdr.append(("If-None-Match", '"%s"' % oid))
        return Req("GET", "/v1%s/blobs/%s" % (self.rp(), oid), headers=hdr, ep="/blobs/{oid}")

    def v_events(self):
        args = [("after", self.ch(["0", "1", "now", "5"])), ("wait", self.ch(["0", "0", "1"]))]
        if self.chance(0.2):
            # SSE: only the status and headers are read
            return Req("GET", "/v1%s/events?after=0" % self.rp(),
                       headers=[("Accept", "text/event-stream")], ep="/events(sse)")
        return Req("GET", "/v1%s/events?%s" % (self.rp(), qs(args)), ep="/events")

    # ---------------------------------------------------------- mutations

    BODY_EPS = ["changes.create", "changes.patch", "repos.create", "repos.patch", "bookmarks.create",
                "bookmarks.patch", "merge", "batch"]

    def body_for(self, ep):
        """(method, target, valid body dict, schema) for a JSON endpoint."""
        rp = self.rp()
        if ep == "changes.create":
            b_ = {"base_change_id": self.rev(), "message": "m", "author": self.sig(),
                  "files": [self.valid_entry() for _ in range(self.rnd.randrange(1, 4))]}
            return "POST", "/v1%s/changes" % rp, b_, "/changes"
        if ep == "changes.patch":
            b_ = {"message": "m", "files": [self.valid_entry() for _ in range(self.rnd.randrange(1, 4))]}
            if self.commits and self.chance(0.3):
                b_["base_commit_oid"] = self.ch(self.commits)
            return "PATCH", "/v1%s/changes/%s" % (rp, self.change()), b_, "/changes/{id}"
        if ep == "repos.create":
            self.scratch += 1
            b_ = {"name": "fzx%s_%d" % (self.a.seed, self.scratch), "default_bookmark": "main",
                  "tags": {"a": "b"}}
            return "POST", "/v1/%s/repos" % self.org, b_, "/{org}/repos"
        if ep == "repos.patch":
            # only scratch repos are renamed; the main fuzz repo only gets tags
            target = self.ch(self.scratch_repos) if self.scratch_repos else None
            if target:
                b_ = {"name": target, "default_bookmark": "main", "tags": {"x": None}}
                return "PATCH", "/v1/%s/%s" % (self.org, target), b_, "/{org}/{repo}"
            b_ = {"tags": {"x": "y"}}
            return "PATCH", "/v1%s" % self.rp(self.repo2), b_, "/{org}/{repo}"
        if ep == "bookmarks.create":
            b_ = {"name": "fzmut%d" % self.rnd.randrange(100), "change_id": self.change()}
            return "POST", "/v1%s/bookmarks" % rp, b_, "/bookmarks"
        if ep == "bookmarks.patch":
            b_ = {"change_id": self.change()}
            return "PATCH", "/v1%s/bookmarks/%s" % (rp, self.ch(self.bookmarks)), b_, \
                "/bookmarks/{name}"
        if ep == "merge":
            b_ = {"target": self.ch(self.bookmarks), "source": self.ch(self.bookmarks),
                  "allow_conflicted": True, "delete_source": False, "message": "x",
                  "resolutions": [{"path": "m.txt", "take": "source"}]}
            return "POST", "/v1%s/bookmarks/merge" % rp, b_, "/bookmarks/merge"
        b_ = {"oids": list(self.blobs[:3])}
        return "POST", "/v1%s/blobs/batch" % rp, b_, "/blobs/batch"

    # fields each endpoint requires, and the JSON type of each known field
    REQUIRED = {"changes.create": ["base_change_id"], "repos.create": ["name"],
                "bookmarks.create": ["name", "change_id"], "bookmarks.patch": ["change_id"],
                "merge": ["target", "source"], "batch": ["oids"]}
    TYPES = {"base_change_id": str, "message": str, "author": dict, "committer": dict,
             "files": list, "base_commit_oid": str, "name": str, "default_bookmark": str,
             "tags": dict, "change_id": str, "target": str, "source": str, "delete_source": bool,
             "allow_conflicted": bool, "resolutions": list, "oids": list}

    def wrong_type(self, t):
        vals = [0, 1.5, "s", True, [], {}, [1], {"a": 1}, None, 2 ** 63 - 1]
        return self.ch([v for v in vals if not (type(v) is t or (t is dict and isinstance(v, dict))
                                                or (t is list and isinstance(v, list)))])

    def weird(self, depth=0):
        k = self.rnd.random()
        if k < 0.6 or depth > 2:
            return self.ch(WEIRD_SCALARS)
        if k < 0.75:
            return [self.weird(depth + 1) for _ in range(self.rnd.randrange(4))]
        if k < 0.9:
            return {self.ch(["path", "a", "", "é", "\u0000"]): self.weird(depth + 1)}
        n = self.ch([10, 100, 1000])
        return json.loads("[" * n + "]" * n) if n < 500 else [[[]]]

    def mutate(self):
        ep = self.ch(self.BODY_EPS)
        method, target, body, tmpl = self.body_for(ep)
        ops = ["unknown_field", "drop_required", "type_confuse", "random_node", "files_bad",
               "text", "text", "deep", "big_array", "long_string", "nul", "dup_key", "array_top",
               "mtime"]
        op = self.ch(ops)
        expect, note = None, op
        text = None
        if op == "unknown_field":
            where = self.ch(["top", "entry", "sig"])
            key = self.ch(["bogus", "Files", "path ", "é" * self.ch([1, 10, 600]), "x" * 2000,
                           "\u0000", "", "__proto__"])
            if where == "entry" and isinstance(body.get("files"), list) and body["files"]:
                body["files"][0][key] = 1
            elif where == "sig" and isinstance(body.get("author"), dict):
                body["author"][key] = "x"
            else:
                body[key] = self.weird()
            expect = "4xx"
        elif op == "drop_required" and self.REQUIRED.get(ep):
            body.pop(self.ch(self.REQUIRED[ep]), None)
            expect = "4xx"
        elif op == "type_confuse":
            keys = [k for k in body if k in self.TYPES]
            if keys:
                k = self.ch(keys)
                body[k] = self.wrong_type(self.TYPES[k])
                # null is allowed for upstream; nothing else we mutate here
                expect = "4xx"
                note = "type_confuse:" + k
        elif op == "random_node":
            self.replace_random(body)
        elif op == "files_bad" and ep in ("changes.create", "changes.patch", "merge"):
            key = "resolutions" if ep == "merge" else "files"
            entry, note = self.bad_entry(key)
            lst = body.setdefault(key, [])
            lst.insert(self.rnd.randrange(len(lst) + 1), entry)
            expect = "4xx"
        elif op == "text":
            text, note = self.text_mutation(body)
            expect = "4xx"
        elif op == "deep":
            n = self.ch([100, 2000, 2100, 50000])
            k = self.ch(list(body) or ["x"])
            inner = self.ch(['"x"', "1", "{}"])
            nest = self.ch([("[", "]"), ('{"a":', "}")])
            text = json.dumps(body)[:-1] + (", " if body else "") + json.dumps(k + "_deep") + ":" \
                + nest[0] * n + inner + nest[1] * n + "}"
            expect = "4xx"
        elif op == "big_array" and ep in ("changes.create", "changes.patch", "batch"):
            n = self.ch([1001, 10000]) if ep == "batch" else self.ch([2000, 10000])
            if ep == "batch":
                body["oids"] = [self.ch(self.blobs + ["f" * 40]) for _ in range(n)]
                expect = "4xx" if n > 1000 else None
            else:
                kind = self.ch(["delete", "mkdir", "upsert", "badlast"])
                if kind == "delete":
                    body["files"] = [{"path": "big/%d" % i, "action": "delete"} for i in range(n)]
                elif kind == "mkdir":
                    body["files"] = [{"path": "bigdir%d/d%d" % (self.nreq, i), "action": "mkdir"}
                                     for i in range(min(n, 2000))]
                elif kind == "upsert":
                    body["files"] = [{"path": "big%d/f%d" % (self.nreq % 3, i), "content": "QQ=="}
                                     for i in range(min(n, 2000))]
                else:
                    body["files"] = [{"path": "big/%d" % i, "action": "delete"} for i in range(n)]
                    body["files"].append({"path": "../x", "content": "QQ=="})
                    expect = "4xx"
                note = "big_array:" + kind
        elif op == "long_string":
            keys = [k for k in body if isinstance(body[k], str)]
            if keys:
                k = self.ch(keys)
                body[k] = self.ch(["x", "é", "\U0001F600", "\\"]) * self.ch([1000, 100000, 1000000])
        elif op == "nul":
            keys = [k for k in body if isinstance(body[k], str)]
            if keys:
                k = self.ch(keys)
                body[k] = self.ch(["\u0000", body[k] + "\u0000junk", "\u0000" + body[k]])
                note = "nul:" + k
        elif op == "dup_key":
            k = self.ch(list(body) or ["x"])
            text = json.dumps(body)[:-1] + (", " if body else "") + json.dumps(k) + ": " + \
                json.dumps(body.get(k, 1)) + "}"
            expect = "4xx"
        elif op == "array_top":
            text = self.ch([json.dumps([body]), "[]", '"str"', "42", "null", "true", "{}"])
            expect = None if text == "{}" and ep in ("changes.patch", "repos.patch") else "4xx"
        elif op == "mtime" and ep in ("changes.create", "changes.patch"):
            v = self.ch(["-1", "-9223372036854775808", "1.5", "1e19", "9223372036854775808",
                         "18446744073709551616", "1e999", '"123"', "NaN", "-0.0", "[]", "{}",
                         "true", "null", "100000000000000000000000000000"])
            entry = {"path": self.valid_path(), "content": "QQ==", "mtime_ns": 0}
            text = json.dumps(dict(body, files=[entry])).replace('"mtime_ns": 0', '"mtime_ns": ' + v)
            expect = "4xx"
            note = "mtime=" + v
        if text is None:
            try:
                text = json.dumps(body, ensure_ascii=self.chance(0.5))
            except (ValueError, RecursionError):
                text = json.dumps(body)
        return Req(method, target, b(text), kind="mutate:" + op, ep=tmpl, expect=expect, note=note)

    def replace_random(self, node, depth=0):
        if isinstance(node, dict) and node:
            k = self.ch(list(node))
            if depth > 0 and self.chance(0.4) or not isinstance(node[k], (dict, list)) or \
                    not node[k]:
                node[k] = self.weird()
            else:
                self.replace_random(node[k], depth + 1)
        elif isinstance(node, list) and node:
            i = self.rnd.randrange(len(node))
            if self.chance(0.4) or not isinstance(node[i], (dict, list)) or not node[i]:
                node[i] = self.weird()
            else:
                self.replace_random(node[i], depth + 1)

    def bad_entry(self, key):
        """An entry that the contract rejects, and a note saying why."""
        k = self.rnd.random()
        if key == "resolutions":
            p = self.ch(ODD_PATHS)
            if invalid_path(p):
                return {"path": p, "content": "QQ=="}, "resolution path %r" % p[:40]
            return {"path": "m.txt", "content": self.ch(["QQ", "Q===", "@@@@", "QQ==QQ==x"])}, \
                "resolution base64"
        if k < 0.45:
            p = self.ch(ODD_PATHS)
            while not invalid_path(p):
                p = self.ch(ODD_PATHS)
            e = {"path": p}
            e.update(self.ch([{"content": "QQ=="}, {"action": "delete"}, {"action": "mkdir"},
                              {"blob_oid": self.blobs[0] if self.blobs else "0" * 40}]))
            return e, "path %r" % p[:40]
        if k < 0.65:
            c = self.ch(["QQ", "QQ=", "Q===", "====", "QQ==\n", " QQ==", "QQ==QQ==x", "@@@@",
                         "QR==", "QUJD\u0000", "-_-_", "QUJ\u00e9", "QQ" * 10001 + "="])
            return {"path": self.valid_path(), "content": c}, "base64 %r" % c[:20]
        if k < 0.75:
            m = self.ch(["100600", "040000", "160000", "644", "", "100644 ", 100644, None])
            return {"path": self.valid_path(), "content": "QQ==", "mode": m}, "mode %r" % (m,)
        if k < 0.85:
            e = self.ch([{"path": "x", "action": "frobnicate"}, {"path": "x", "action": 1},
                         {"path": "x", "action": "delete", "content": "QQ=="},
                         {"path": "x", "action": "delete", "mtime_ns": 1},
                         {"path": "x", "action": "mkdir", "mode": "100644"},
                         {"path": "x", "content": "QQ==", "blob_oid": "0" * 40},
                         {"path": "x", "blob_oid": "0" * 40}, {"path": "x", "blob_oid": "zz"},
                         {"path": "x", "content": "QQ==", "encoding": "utf-8"},
                         {"path": "x"}, {"content": "QQ=="}, {}])
            return e, "entry %s" % json.dumps(e)[:60]
        e = self.ch([[], "a.txt", 5, None, {"path": ["a"], "content": "QQ=="},
                     {"path": 5, "content": "QQ=="}, {"path": "x", "content": 5}])
        return e, "entry %s" % json.dumps(e)[:60]

    def text_mutation(self, body):
        """Make the JSON text itself invalid."""
        t = json.dumps(body)
        k = self.ch(["utf8", "utf8key", "nan", "trailing", "truncate", "bom", "comment", "single",
                     "bigexp", "ctrl", "surrogate", "empty"])
        bad = self.ch([b"\xff", b"\xfe\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                       b"\xe2\x82", b"\x80"])
        if k == "utf8":
            m = re.search(r'": "', t)
            if m:
                bt = b(t)
                i = bt.index(b'": "') + 4
                return bt[:i] + bad + bt[i:], "invalid UTF-8 in a string"
            return b(t[:-1]) + b', "s": "' + bad + b'"}', "invalid UTF-8 in a string"
        if k == "utf8key":
            return b(t[:-1]) + (b", " if body else b"") + b'"k' + bad + b'": 1}', "invalid UTF-8 key"
        if k == "nan":
            return t[:-1] + (", " if body else "") + '"n": ' + self.ch(["NaN", "Infinity", "-Infinity",
                                                                      "nan", "0x10", "+1", "01",
                                                                      ".5", "1."]) + "}", "bad number"
        if k == "trailing":
            return t + self.ch([" x", "{}", ",", "]", "\u0000", "}"]), "trailing garbage"
        if k == "truncate":
            return t[:self.rnd.randrange(max(1, len(t) - 1))], "truncated"
        if k == "bom":
            return b"\xef\xbb\xbf" + b(t), "BOM"
        if k == "comment":
            return "/* c */" + t, "comment"
        if k == "single":
            return t.replace('"', "'"), "single quotes"
        if k == "bigexp":
            return t[:-1] + (", " if body else "") + '"n": 1e99999}', "number overflow"
        if k == "ctrl":
            m = t.find('": "')
            if m >= 0:
                return t[:m + 4] + "\x01\n\t" + t[m + 4:], "raw control characters in a string"
            return t[:-1] + (", " if body else "") + '"c": "\x01"}', "raw control characters"
        if k == "surrogate":
            return t[:-1] + (", " if body else "") + '"s": "' + self.ch(["\\ud800", "\\udc00x",
                                                                       "\\uZZZZ", "\\u12"]) + '"}', \
                "bad \\u escape"
        return "", "empty body"

    # ---------------------------------------------------------- paths, names, queries

    def paths_req(self):
        p = self.ch(ODD_PATHS)
        where = self.ch(["files", "files", "content", "segment", "segment", "raw8bit"])
        rp = self.rp()
        if where == "files":
            e = {"path": p}
            e.update(self.ch([{"content": "QQ=="}, {"action": "delete"}, {"action": "mkdir"}]))
            if self.chance(0.5):
                body = {"base_change_id": self.rev(), "files": [e]}
                m, t, tmpl = "POST", "/v1%s/changes" % rp, "/changes"
            else:
                body = {"files": [e]}
                m, t, tmpl = "PATCH", "/v1%s/changes/%s" % (rp, self.change()), "/changes/{id}"
            return Req(m, t, json.dumps(body, ensure_ascii=self.chance(0.5)), kind="paths",
                       ep=tmpl, expect="4xx" if invalid_path(p) else None,
                       note="path %r" % p[:40])
        if where == "content":
            # mostly percent-encoded; sometimes as is when that is still a valid request-target
            raw_ok = all(33 <= ord(c) < 127 for c in p) and not set(p) & set("#&+%")
            enc = p if raw_ok and self.chance(0.3) else q(p)
            qv = self.ch(["path=" + enc, "path=" + enc + "&depth=" + self.ch(["1", "3"]),
                          "change_id=" + q(self.rev()) + "&path=" + enc])
            # the server drops one trailing '/', and an empty path is the root
            stripped = p[:-1] if p.endswith("/") else p
            inv = stripped != "" and invalid_path(stripped)
            hdr = [("Accept", "application/octet-stream")] if self.chance(0.2) else []
            return Req("GET", "/v1%s/content?%s" % (rp, qv), headers=hdr, kind="paths",
                       ep="/content?path", expect="4xx" if inv else None,
                       note="query path %r" % p[:40])
        seg = self.ch(ODD_SEGMENTS)
        if where == "raw8bit":
            seg = self.ch(["\xff", "\xc3\xa9", "a\x80b", "%c3%28"])
            seg_b = seg.encode("latin-1")
        else:
            seg_b = seg.encode("latin-1") if all(ord(c) < 256 for c in seg) else b(seg)
        tmpl, tgt = self.ch([
            ("/changes/{x}", b"/v1" + b(rp) + b"/changes/" + seg_b),
            ("PATCH /changes/{x}", b"/v1" + b(rp) + b"/changes/" + seg_b),
            ("/bookmarks/{x}", b"/v1" + b(rp) + b"/bookmarks/" + seg_b),
            ("/bookmarks/{x}/{x}", b"/v1" + b(rp) + b"/bookmarks/" + seg_b + b"/" + seg_b),
            ("/blobs/{x}", b"/v1" + b(rp) + b"/blobs/" + seg_b),
            ("/{org}/{x}", b"/v1/" + b(self.org) + b"/" + seg_b),
            ("/{x}", b"/v1/" + seg_b),
            ("/{x}/repos", b"/v1/" + seg_b + b"/repos"),
            ("/{repo}/{x}", b"/v1" + b(rp) + b"/" + seg_b),
            ("/v1{x}", b"/v1" + seg_b),
            ("/{x}/../", b"/v1/" + seg_b + b"/../" + b(self.org)),
            ("many segments", b"/v1" + b(rp) + b"/bookmarks" + (b"/" + seg_b) * 70),
            ("//", b"/v1//" + b(self.org) + b"//" + b(self.repo) + b"//changes"),
            ("/content?change_id={x}", b"/v1" + b(rp) + b"/content?change_id=" + seg_b),
            ("/tree?change_id={x}", b"/v1" + b(rp) + b"/tree?change_id=" + seg_b),
            ("/tree?commit={x}", b"/v1" + b(rp) + b"/tree?commit=" + seg_b),
            ("/changes?bookmark={x}", b"/v1" + b(rp) + b"/changes?bookmark=" + seg_b),
        ])
        method = "GET"
        body = None
        if tmpl.startswith("PATCH"):
            method, body = "PATCH", json.dumps({"message": "x"})
        elif tmpl.startswith("/bookmarks/") and self.chance(0.4):
            method = self.ch(["PATCH", "DELETE"])
            body = json.dumps({"change_id": self.change()}) if method == "PATCH" else None
        return Req(method, tgt, body, kind="segment", ep=tmpl, note="segment %r" % seg[:30])

    def names_req(self):
        n = self.ch(ODD_NAMES)
        rp = self.rp()
        k = self.ch(["bookmark", "bookmark", "merge", "repo", "repo_patch", "default_bookmark",
                     "url"])
        if k == "bookmark":
            req = Req("POST", "/v1%s/bookmarks" % rp, json.dumps(
                {"name": n, "change_id": self.change()}, ensure_ascii=self.chance(0.5)),
                kind="names", ep="/bookmarks", note="bookmark name %r" % n[:40])
            req.after = self.bookmark_readback(n)
            if len(n.encode()) > 200 or "\u0000" in n or ".." in n or n == "" or " " in n:
                req.expect = "4xx"
            return req
        if k == "merge":
            t, s = self.ch([(n, "main"), ("main", n), (n, n + "x"), ("feat", n)])
            body = {"target": t, "source": s}
            if self.chance(0.5):
                body["delete_source"] = True
            return Req("POST", "/v1%s/bookmarks/merge" % rp, json.dumps(body), kind="names",
                       ep="/bookmarks/merge", note="merge names %r %r" % (t[:30], s[:30]))
        if k == "repo":
            req = Req("POST", "/v1/%s/repos" % self.org, json.dumps({"name": n}), kind="names",
                      ep="/{org}/repos", note="repo name %r" % n[:40])

            def after(r, n=n):
                if r.status == 201:
                    self.scratch_repos.append(r.json()["name"])
            req.after = after
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", n) or n[0] in ".-" or \
                    n.endswith(".git"):
                req.expect = "4xx"
            return req
        if k == "repo_patch":
            if not self.scratch_repos:
                return self.v_repo_create()
            old = self.ch(self.scratch_repos)
            req = Req("PATCH", "/v1/%s/%s" % (self.org, old), json.dumps({"name": n}),
                      kind="names", ep="/{org}/{repo}", note="repo rename %r" % n[:40])

            def after(r, old=old):
                if r.status == 200 and old in self.scratch_repos:
                    self.scratch_repos[self.scratch_repos.index(old)] = r.json()["name"]
            req.after = after
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", n) or n[0] in ".-" or \
                    n.endswith(".git"):
                req.expect = "4xx"
            return req
        if k == "default_bookmark":
            if self.chance(0.5):
                self.scratch += 1
                return Req("POST", "/v1/%s/repos" % self.org, json.dumps(
                    {"name": "fzd%s_%d" % (self.a.seed, self.scratch), "default_bookmark": n}),
                    kind="names", ep="/{org}/repos", note="default_bookmark %r" % n[:40])
            return Req("PATCH", "/v1%s" % self.rp(self.repo2), json.dumps({"default_bookmark": n}),
                       kind="names", ep="/{org}/{repo}", note="default_bookmark %r" % n[:40])
        path = "/".join(q(s) for s in n.split("/")) if n else ""
        m = self.ch(["GET", "PATCH", "DELETE"])
        body = json.dumps({"change_id": self.change()}) if m == "PATCH" else None
        if m == "DELETE" and n in ("main", "feat"):
            m = "GET"
        return Req(m, "/v1%s/bookmarks/%s" % (rp, path), body, kind="names",
                   ep="/bookmarks/{name}", note="bookmark url %r" % n[:40])

    def query_req(self):
        rp = self.rp()
        lim = ["-1", "0", "101", "1e9", "99999999999999999999", "abc", "", "1 ", " 1", "0x10",
               "+5", "1.5", "%00", "100", "1"]
        cur = [b64url("o-1"), b64url("o9223372036854775807"), b64url("o99999999999999999999"),
               b64url("o"), b64url("x1"), b64url("o1\u0000"), b64url("o 1"), "A" * 30, "A" * 31,
               "====", "%00", "", "!!!!", b64url("o1") + "=", "a", b64url("o%d" % 2 ** 40),
               "\u00e9" * 10, b64url("o0") * 5]
        k = self.ch(["list", "list", "content", "tree", "events", "bookmarks", "changes", "dup",
                     "noeq", "badpct", "long"])
        if k == "list":
            ep = self.ch(["/%s/repos" % self.org, rp + "/changes", rp + "/bookmarks"])
            args = [("limit", self.ch(lim))] if self.chance(0.7) else []
            if self.chance(0.6):
                args.append(("cursor", self.ch(cur)))
            return Req("GET", "/v1%s?%s" % (ep, qs(args)), kind="query",
                       ep=ep.replace(self.repo, "{repo}").replace("/" + self.org, "/{org}") + "?")
        if k == "content":
            args = [("depth", self.ch(["0", "-1", "999999", "1000", "1001", "abc", "", "2 ",
                                       "99999999999999999999", "1e3"]))]
            if self.chance(0.5):
                args.append(("change_id", self.ch(["", "x", "z" * 32, "z" * 33, "main..feat",
                                                   "main~1", "HEAD", "0" * 40, "é", "\u0000"])))
            return Req("GET", "/v1%s/content?%s" % (rp, qs(args)), kind="query", ep="/content?")
        if k == "tree":
            v = self.ch(["", "0" * 40, "z" * 40, "g" * 40, "0" * 39, "0" * 41, "\u00e9" * 20,
                         self.commits[0] if self.commits else "x", "main", "%00"])
            return Req("GET", "/v1%s/tree?%s" % (rp, qs([(self.ch(["commit", "change_id"]), v)])),
                       kind="query", ep="/tree?")
        if k == "events":
            args = [("after", self.ch(["garbage", "-1", "now", "NOW", "", "9223372036854775807",
                                       "99999999999999999999", "1.5", "0x1", " 1", "100000"]))]
            args.append(("wait", self.ch(["61", "-1", "abc", "", "0", "1e3",
                                          "99999999999999999999", "0x1"])))
            hdr = []
            if self.chance(0.3):
                hdr.append(("Last-Event-ID", self.ch(["abc", "-5", "", "99999999999999999999",
                                                      "1", "\u00e9"])))
            if self.chance(0.2):
                hdr.append(("Accept", "text/event-stream"))
            return Req("GET", "/v1%s/events?%s" % (rp, qs(args)), headers=hdr, kind="query",
                       ep="/events?")
        if k == "bookmarks":
            g = self.ch(["[", "[!", "*[a-", "\\", "**/**", "*" * 1000, "[[:alpha:]]*",
                         "[[:bogus:]]", "a" * 5000, "\u00e9*", "%00", ""])
            return Req("GET", "/v1%s/bookmarks?%s" % (rp, qs([("glob", g)])), kind="query",
                       ep="/bookmarks?glob")
        if k == "changes":
            v = self.ch(["", "x", "main..x", "refs/heads/main", "a" * 300, "\u00e9", "..",
                         "main/../feat", "z" * 32, "@"])
            return Req("GET", "/v1%s/changes?%s" % (rp, qs([("bookmark", v)])), kind="query",
                       ep="/changes?bookmark")
        if k == "dup":
            return Req("GET", "/v1%s/changes?limit=1&limit=200&cursor=a&cursor=%s" % (
                rp, b64url("o1")), kind="query", ep="/changes?dup")
        if k == "noeq":
            return Req("GET", "/v1%s/content?path&depth&change_id" % rp, kind="query",
                       ep="/content?noeq")
        if k == "badpct":
            return Req("GET", "/v1%s/content?path=%%&depth=%%zz&change_id=%%e9" % rp,
                       kind="query", ep="/content?badpct")
        return Req("GET", "/v1%s/content?path=%s" % (rp, "a" * self.ch([4096, 4097, 20000])),
                   kind="query", ep="/content?long")

    def header_req(self):
        rp = self.rp()
        oid = self.ch(self.blobs) if self.blobs else "0" * 40
        k = self.ch(["range", "range", "inm", "accept", "ctype", "misc"])
        if k == "range":
            v = self.ch(["bytes=5-2", "bytes=-0", "bytes=abc", "bytes=0-1,3-4", "bytes=0-0,-1",
                         "bytes=", "bytes=-", "bytes=--1", "bytes=1--2", "bytes=-99999999999",
                         "bytes=18446744073709551615-", "bytes=0-18446744073709551615",
                         "bytes=18446744073709551616-1", "bytes=99999999999999999999-",
                         "items=0-1", "bytes = 0-1", "bytes=0-1 ", "bytes=1-1", "bytes=0-",
                         "bytes=9999-", "bytes=-1", "BYTES=0-1", "bytes=\u00e9", ""])
            return Req("GET", "/v1%s/blobs/%s" % (rp, oid), headers=[("Range", v)], kind="headers",
                       ep="/blobs/{oid} Range", note=v)
        if k == "inm":
            v = self.ch(['"' + oid + '"', "*", "", "garbage", 'W/"%s"' % oid, '"a", "b"',
                         "\u00e9", '"' * 1000, oid])
            return Req("GET", "/v1%s/blobs/%s" % (rp, oid), headers=[("If-None-Match", v)],
                       kind="headers", ep="/blobs/{oid} If-None-Match")
        if k == "accept":
            v = self.ch(["application/octet-stream", "*/*", "", "text/event-stream",
                         "application/octet-stream;q=0", "application/json, application/octet-stream",
                         "x" * 5000, "\u00e9"])
            tgt = self.ch(["/v1%s/content?path=a.txt" % rp, "/v1%s/content?path=dir" % rp,
                           "/v1%s/content" % rp, "/v1%s/content?path=link" % rp,
                           "/v1%s/events?after=0&wait=0" % rp])
            return Req("GET", tgt, headers=[("Accept", v)], kind="headers", ep="Accept:" + tgt.split(
                "?")[0].replace(rp, "/{repo}"))
        if k == "ctype":
            v = self.ch(["text/plain", "", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", "application/json; charset=latin1"])
            body = self.ch(['{"base_change_id":"main"}', "a=b&c=d", "--x\r\n\r\n--x--"])
            return Req("POST", "/v1%s/changes" % rp, body, headers=[("Content-Type", v)],
                       kind="headers", ep="/changes Content-Type", ctype=None)
        hdrs = self.ch([[("Expect", "100-continue")], [("X-Long", "x" * 6000)],
                        [("Authorization", "Bearer " + self.key)] * 2,
                        [("Host", "")], [("Connection", "keep-alive, Upgrade"), ("Upgrade", "websocket")],
                        [("Content-Length", "0")], [("Transfer-Encoding", "identity")]])
        req = Req("GET", "/v1/whoami", headers=hdrs, kind="headers", ep="/whoami misc")
        if hdrs[0][0] == "Transfer-Encoding":
            # libmicrohttpd then reads a body until the client closes: no answer is fine
            req.raw, req.tolerant = {"timeout": 1.0}, True
        return req

    def method_req(self):
        rp = self.rp()
        m = self.ch(["PUT", "HEAD", "OPTIONS", "TRACE", "DELETE", "PATCH", "POST", "GET", "FOO",
                     "get", "M" * 300, "CONNECT"])
        t = self.ch(["/v1/whoami", "/v1/%s" % self.org, "/v1/%s/repos" % self.org,
                     "/v1%s/changes" % rp, "/v1%s/changes/%s" % (rp, self.change()),
                     "/v1%s/bookmarks" % rp, "/v1%s/bookmarks/merge" % rp,
                     "/v1%s/content" % rp, "/v1%s/tree" % rp, "/v1%s/blobs" % rp,
                     "/v1%s/blobs/batch" % rp, "/v1%s/events?wait=0" % rp, "/healthz", "/",
                     "/v1", "/v1/", "/v2/whoami"])
        if m == "DELETE" and t in ("/v1%s" % rp,):
            m = "GET"
        body = None
        if m in ("PUT", "POST", "PATCH", "FOO") and self.chance(0.7):
            body = "{}"
        return Req(m, t, body, kind="methods", ep="%s %s" % (m[:10], t.replace(rp, "/{repo}")),
                   tolerant=m == "CONNECT" or len(m) > 100)

    def token_req(self):
        k = self.ch(["garbage", "garbage", "signed", "signed", "signed", "header"])
        now = int(time.time())
        if k == "garbage":
            v = self.ch(["Bearer a.b.c", "Bearer ...", "Bearer ..", "Bearer .", "Bearer a.b.c.d",
                         "Bearer " + "A" * 8000 + ".B.C", "Bearer " + "A" * 9000,
                         "Bearer " + b64url("not json") + "." + b64url("{}") + ".sig",
                         "Bearer " + b64url("[]") + "." + b64url("{}") + "." + b64url("x"),
                         "Bearer mesa_" + "A" * 40, "Bearer mesa_", "Bearer mesa_" + "A" * 10000,
                         "Bearer mesa_x.y", "Basic " + b64("a:b"), "bearer " + self.key,
                         "Bearer", "Bearer ", "Bearer  " + self.key, "Bearer\t" + self.key,
                         self.key, "Bearer " + self.key + " ", "Bearer " + self.key + "x",
                         "Bearer \u00e9\u00e9", "Bearer " + "." * 5000, "Bearer ==.==.==",
                         "Bearer a\u0000b"])
            return Req("GET", "/v1/whoami", auth=v, kind="tokens", ep="/whoami token-garbage",
                       note=v[:30])
        header = {"alg": "HS256", "typ": "mesa-at+jwt", "kid": self.key_id + ".v1"}
        payload = {"scopes": ["read", "write", "admin"], "iss": self.key_id, "aud": "mesa-api",
                   "iat": now, "exp": now + 3600, "jti": "j"}
        if k == "header":
            header = self.ch([{"alg": "none", "kid": self.key_id + ".v1"},
                              {"alg": "HS512", "kid": self.key_id + ".v1"},
                              {"alg": "HS256"}, {"alg": "HS256", "kid": 5},
                              {"alg": "HS256", "kid": "x" * 5000},
                              {"alg": "HS256", "kid": self.key_id},
                              {"alg": "HS256", "kid": self.key_id + ".v2"},
                              {"alg": "HS256", "kid": "\u00e9.v1"},
                              {"alg": ["HS256"], "kid": self.key_id + ".v1"},
                              {"alg": "HS256", "kid": self.key_id + ".v1", "crit": ["x"]},
                              {"alg": "HS256", "kid": "\u0000.v1"},
                              {"alg": "HS256", "kid": self.key_id + ".v1", "alg2": 1}, [], "x"])
        else:
            field = self.ch(["scopes", "repos", "ro_repos", "iss", "aud", "iat", "exp", "jti",
                             "extra", "drop"])
            vals = {"scopes": [[], ["read"], "read", [1], ["admin", "admin"], ["x" * 5000],
                               None, [["read"]], ["\u00e9"]],
                    "repos": [[], ["%s/%s" % (self.org, self.repo)], "x", [1], [None],
                              ["%s/%s" % (self.org, "x" * 300)], ["a" * 10000], [""] * 1000,
                              ["%s/%s" % (self.org, self.repo)] * 500],
                    "ro_repos": [["%s/%s" % (self.org, self.repo)], ["other/x"], "x", [5]],
                    "iss": ["", "other", 5, None, self.key_id + "x"],
                    "aud": ["", "x", ["mesa-api"], 5, None],
                    "iat": [now + 3600, -1, -(2 ** 63), 2 ** 63 - 1, 1.5, "now", None, 0,
                            now - 86401, 2 ** 64],
                    "exp": [now - 3600, now + 86401, 2 ** 63 - 1, -(2 ** 63), 1e30, "x", None,
                            now - 59, 0],
                    "jti": [5, None, "x" * 10000, ""],
                    "extra": [1], "drop": [None]}
            v = self.ch(vals[field])
            if field == "extra":
                payload["nbf"] = now
            elif field == "drop":
                payload.pop(self.ch(list(payload)))
            else:
                payload[field] = v
        try:
            hj = json.dumps(header)
            pj = json.dumps(payload)
        except ValueError:
            hj, pj = "{}", "{}"
        signing = b64url(hj) + "." + b64url(pj)
        sig = b64url(hmac.new(self.secret.encode(), signing.encode(), hashlib.sha256).digest())
        if self.chance(0.1):
            sig = sig[:-1] + ("A" if sig[-1] != "A" else "B")
        tok = signing + "." + sig
        rp = self.rp()
        t, m, body = self.ch([("/v1/whoami", "GET", None), ("/v1%s" % rp, "GET", None),
                              ("/v1%s/changes?limit=1" % rp, "GET", None),
                              ("/v1%s/blobs" % rp, "POST", "x")])
        return Req(m, t, body, auth="Bearer " + tok, kind="tokens", ep="token %s %s" % (
            k, t.split("?")[0].replace(rp, "/{repo}")), ctype="application/octet-stream",
            note=k)

    def raw_req(self):
        host = b"Host: x\r\n"
        auth = b"Authorization: Bearer " + self.key.encode() + b"\r\n"
        rp = b(self.rp())
        k = self.ch(list(range(22)))
        tol = True
        raw = {}
        if k == 0:
            data = b"GARBAGE\r\n\r\n"
        elif k == 1:
            data = b"GET /healthz HTTP/9.9\r\n" + host + b"\r\n"
        elif k == 2:
            data = b"GET /healthz\r\n\r\n"
        elif k == 3:
            data = b"GET  HTTP/1.1\r\n" + host + b"\r\n"
        elif k == 4:
            data = b"GET /v1/" + b"a" * self.ch([8000, 100000]) + b" HTTP/1.1\r\n" + host + b"\r\n"
        elif k == 5:
            data = b"GET /v1/whoami HTTP/1.1\r\n" + host + auth + b"X-Big: " + b"x" * \
                self.ch([8000, 100000]) + b"\r\n\r\n"
        elif k == 6:
            data = b"GET /v1/whoami HTTP/1.1\r\n" + host + auth + b"".join(
                b"X-H%d: v\r\n" % i for i in range(self.ch([100, 2000]))) + b"\r\n"
        elif k == 7:
            chunk = self.ch([b"zz\r\nabc\r\n0\r\n\r\n", b"ffffffffffffffff\r\nabc\r\n",
                             b"-1\r\nabc\r\n0\r\n\r\n", b"3\r\nabcdef\r\n0\r\n\r\n",
                             b"3;ext=\x01\r\nabc\r\n0\r\n\r\n", b"0\r\nX-Trailer: " + b"y" * 9000 +
                             b"\r\n\r\n", b"100000000\r\n" + b"a" * 100 + b"\r\n",
                             b"2\r\n{}\r\n0\r\n\r\n"])
            data = b"POST /v1" + rp + b"/changes HTTP/1.1\r\n" + host + auth + \
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk
        elif k == 8:
            data = b"POST /v1" + rp + b"/changes HTTP/1.1\r\n" + host + auth + \
                b"Content-Length: " + self.ch([b"-1", b"abc", b"99999999999999999999",
                                               b"1, 2", b"18446744073709551615", b"0x10",
                                               b" 5", b"5 "]) + b"\r\n\r\n{}"
        elif k == 9:
            data = b"POST /v1" + rp + b"/changes HTTP/1.1\r\n" + host + auth + \
                b"Content-Length: 2\r\nContent-Length: 5\r\n\r\n{}abc"
        elif k == 10:
            # Content-Length larger than the body: the server waits for the rest
            data = b"POST /v1" + rp + b"/changes HTTP/1.1\r\n" + host + auth + \
                b"Content-Length: 100\r\n\r\n{\"base"
            raw = {"timeout": 0.5, "half_close": self.chance(0.5)}
        elif k == 11:
            # Content-Length smaller than the body: the rest is a second "request"
            data = b"POST /v1" + rp + b"/changes HTTP/1.1\r\n" + host + auth + \
                b"Content-Length: 2\r\n\r\n{}GARBAGE / HTTP/1.1\r\n\r\n"
        elif k == 12:
            # slowloris-like: a partial request, then nothing
            data = b"GET /v1/whoami HTTP/1.1\r\n" + host + b"X-Slow: "
            raw = {"parts": [data[:10], data[10:]], "pause": 0.1, "timeout": 0.4}
        elif k == 13:
            data = b"GET /v1" + rp + b"/changes/\xff\xfe HTTP/1.1\r\n" + host + auth + b"\r\n"
        elif k == 14:
            data = b"GET /v1/whoami HTTP/1.1\r\n" + host + auth + b"X-Nul: a\x00b\r\n\r\n"
        elif k == 15:
            data = b"GET /v1/whoami HTTP/1.1\r\n" + host + auth + b"NoColonHere\r\n\r\n"
        elif k == 16:
            data = b"GET /v1/whoami HTTP/1.1\n" + b"Host: x\n" + auth.replace(b"\r\n", b"\n") + b"\n"
        elif k == 17:
            data = b"GET http://x/v1/whoami HTTP/1.1\r\n" + host + auth + b"\r\n"
        elif k == 18:
            data = b"POST /v1" + rp + b"/blobs HTTP/1.1\r\n" + host + auth + \
                b"Expect: 100-continue\r\nContent-Length: 4\r\n\r\nabcd"
        elif k == 19:
            # huge declared body, none sent: 413 or a wait
            data = b"POST /v1" + rp + b"/blobs HTTP/1.1\r\n" + host + auth + \
                b"Content-Length: 1000000000000\r\n\r\n"
            raw = {"timeout": 0.5}
        elif k == 20:
            data = b"OPTIONS * HTTP/1.1\r\n" + host + b"\r\n"
        else:
            data = b"GET /v1" + rp + b"/changes/%ff HTTP/1.1\r\n" + host + b"Authorization: Bearer " + \
                b"\xff" * 20 + b"\r\n\r\n"
        raw["bytes"] = data
        raw.setdefault("timeout", 2.0)  # a server waiting for the rest of a lie is fine
        req = Req("RAW", "raw#%d" % k, kind="raw", ep="raw#%d" % k, raw=raw, tolerant=tol)
        if k == 1:
            req.ok5xx = (505,)  # HTTP Version Not Supported is the right answer
        return req

    def huge_req(self):
        rp = self.rp()
        n = self.ch([1 << 20, 2 << 20, 3 << 20])
        k = self.ch(["garbage", "content", "blob", "batch"])
        if k == "garbage":
            body = b"{" * n
            return Req("POST", "/v1%s/changes" % rp, body, kind="huge", ep="/changes huge",
                       expect="4xx")
        if k == "content":
            body = json.dumps({"base_change_id": self.rev(), "files": [
                {"path": "huge.bin", "content": b64(b"\0" * (n * 3 // 4))}]})
            return Req("POST", "/v1%s/changes" % rp, body, kind="huge", ep="/changes huge-file")
        if k == "blob":
            return Req("POST", "/v1%s/blobs" % rp, b"\x00" * n, ctype="application/octet-stream",
                       kind="huge", ep="/blobs huge")
        return Req("POST", "/v1%s/blobs/batch" % rp, json.dumps(
            {"oids": ["0" * 40] * (n // 44)}), kind="huge", ep="/blobs/batch huge", expect="4xx")

    # ---------------------------------------------------------- main loop

    MIX = [("valid", 26), ("mutate", 26), ("paths", 10), ("query", 9), ("headers", 6),
           ("raw", 4), ("methods", 5), ("names", 6), ("tokens", 7), ("huge", 1)]

    def pick(self):
        total = sum(w for _, w in self.MIX)
        x = self.rnd.uniform(0, total)
        for name, w in self.MIX:
            x -= w
            if x <= 0:
                break
        return {"valid": self.valid, "mutate": self.mutate, "paths": self.paths_req,
                "query": self.query_req, "headers": self.header_req, "raw": self.raw_req,
                "methods": self.method_req, "names": self.names_req, "tokens": self.token_req,
                "huge": self.huge_req}[name]()

    def run(self):
        self.setup()
        t0 = time.monotonic()
        for i in range(self.a.n):
            self.nreq = i + 1
            req = self.pick()
            r = self.send(req)
            if self.a.verbose > 1:
                print("%5d %s %5.2fs %-8s %s %s" % (i, r.status or r.error, r.secs, req.kind,
                                                 req.method, str(req.target)[:100]),
                  file=sys.stderr)
            self.judge(req, r)
            if r.status == 200 and req.ep == "/{org}/repos" and req.method == "GET":
                j = r.json()
                if j and j.get("next_cursor"):
                    self.cursors = (self.cursors + [j["next_cursor"]])[-5:]
            if r.status is None and not req.tolerant and not self.healthy():
                self.dead = True
                break
            if (i + 1) % 100 == 0:
                if not self.healthy():
                    self.dead = True
                    break
                self.refresh()
        if not self.dead and not self.healthy():
            self.dead = True
        if self.dead:
            self.finding(("dead",), "the server died or stopped answering /healthz after %d "
                         "requests" % self.nreq)
            time.sleep(0.5)
            self.check_log(req)
        secs = time.monotonic() - t0
        nfind = len(self.findings)
        for key, (count, text) in self.findings.items():
            print("FINDING (x%d): %s" % (count, text))
        sts = ", ".join("%s: %d" % (k, v) for k, v in sorted(
            self.statuses.items(), key=lambda kv: str(kv[0])))
        kinds = ", ".join("%s: %d" % kv for kv in sorted(self._kind_totals().items()))
        print("seed %s, %.1f s, kinds {%s}" % (self.a.seed, secs, kinds))
        print("requests %d, statuses {%s}, findings %d%s" % (
            self.nreq, sts, nfind, ", SERVER DIED" if self.dead else ""))
        return 1 if nfind or self.dead else 0

    def _kind_totals(self):
        t = {}
        for k, v in self.kinds.items():
            k = k.split(":")[0]
            t[k] = t.get(k, 0) + v
        return t


def main():
    ap = argparse.ArgumentParser(description="seeded request fuzzer for mesad (loopback only)")
    ap.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--key", required=True, help="an admin API key")
    ap.add_argument("--org", default="acme")
    ap.add_argument("--seed", default="1")
    ap.add_argument("-n", type=int, default=3000, help="requests (1..1000000)")
    ap.add_argument("--pid", type=int, help="server pid: checked alive every 100 requests")
    ap.add_argument("--log", help="server log: any sanitizer report in it is a finding")
    ap.add_argument("--save", help="directory for reproducer bodies over 400 bytes")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per request")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    a = ap.parse_args()
    if not 1 <= a.n <= 1000000:
        ap.error("-n must be 1..1000000")
    if a.save:
        os.makedirs(a.save, exist_ok=True)
    sys.exit(Fuzzer(a).run())


if __name__ == "__main__":
    main()
