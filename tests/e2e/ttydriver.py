#!/usr/bin/env python3
"""ttydriver: plays an administrator's interactive root shell on a real pty.

    ttydriver.py TRANSCRIPT STEP...

Starts `bash --norc --noprofile -i` as the session leader of a new pty
(its controlling terminal) and runs the steps in order:

    send:TEXT      type TEXT (backslash escapes such as \\r and \\x03)
    wait:REGEX     read output until REGEX matches after the previous
                   match (20 s), else fail
    sleep:SECONDS  keep reading output for that long

Everything the terminal showed is written to TRANSCRIPT. Exits 0 when
every wait matched, 1 otherwise (naming the step on stderr)."""
import os
import pty
import re
import select
import sys
import time

transcript, steps = sys.argv[1], sys.argv[2:]
env = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "TERM": "dumb",
    "PS1": "ADMIN# ",
}
pid, fd = pty.fork()
if pid == 0:
    os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"], env)

out = bytearray()
seen = 0


def read_for(seconds, until=None):
    """Reads output for `seconds`, or until `until` matches; True on a match."""
    global seen
    end = time.time() + seconds
    while True:
        if until is not None:
            m = until.search(out.decode("utf-8", "replace"), seen)
            if m:
                seen = m.end()
                return True
        left = end - time.time()
        if left <= 0:
            return False
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            return False
        out.extend(data)


rc = 0
for step in steps:
    kind, _, arg = step.partition(":")
    if kind == "send":
        os.write(fd, arg.encode().decode("unicode_escape").encode("latin-1"))
    elif kind == "wait":
        if not read_for(20, re.compile(arg)):
            print(f"ttydriver: timed out waiting for {arg!r}", file=sys.stderr)
            rc = 1
            break
    elif kind == "sleep":
        read_for(float(arg))
    else:
        print(f"ttydriver: unknown step {step!r}", file=sys.stderr)
        rc = 2
        break

try:
    os.write(fd, b"exit\r")
except OSError:
    pass
read_for(1)
try:
    os.kill(pid, 9)
except ProcessLookupError:
    pass
os.waitpid(pid, 0)
with open(transcript, "wb") as f:
    f.write(bytes(out))
sys.exit(rc)
