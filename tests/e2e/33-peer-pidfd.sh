#!/usr/bin/env bash
# Needs root. A caged process gets no usable descriptor of an uncaged peer
# (issue 7, defect 12): an uncaged process of alice (no PAM, setpriv)
# connects to a unix socket that a caged process of alice listens on; the
# caged side gets the peer's pidfd (SO_PEERPIDFD) but pidfd_getfd of the
# peer's directory descriptor of the host's / fails with EPERM, with
# `landlock = yes` (Landlock's ptrace restriction) and with `landlock = no`
# (the seccomp rule). The same server run uncaged takes the descriptor and
# lists the host's / (so the check can fail).
source "$(dirname "$0")/../lib.sh"

rshared_root
cage_env
make_user alice
"$CAGE_ADMIN" --config "$T_CONF" user enable alice >/dev/null
H=/home/alice
PY=/usr/bin/python3

cat >"$H/server.py" <<'PY'
import ctypes, os, socket, sys
path = sys.argv[1]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(1)
c, _ = s.accept()
n = int(c.recv(16))
try:
    pidfd = c.getsockopt(socket.SOL_SOCKET, 77)  # SO_PEERPIDFD
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(438, pidfd, n, 0)  # pidfd_getfd
    if fd < 0:
        print("pidfd yes, pidfd_getfd errno", ctypes.get_errno())
    else:
        print("pidfd yes, pidfd_getfd ok:", "etc" in os.listdir(fd) and "home" in os.listdir(fd))
except OSError as e:
    print("no pidfd", e.errno)
c.send(b"x")
PY
cat >"$H/client.py" <<'PY'
import os, socket, sys, time
d = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
for _ in range(200):
    try:
        s.connect(sys.argv[1])
        break
    except OSError:
        time.sleep(0.05)
s.send(str(d).encode())
s.recv(1)
PY
chown alice: "$H/server.py" "$H/client.py"

# run_pair WHERE: the server (caged via enter, or uncaged) against the
# uncaged client; prints the server's verdict.
run_pair() {
    rm -f "$H/peer.sock"
    if [ "$1" = caged ]; then
        "$CAGE_ADMIN" --config "$T_CONF" enter alice -- python3 "$H/server.py" "$H/peer.sock" >"$T_TMP/server.out" 2>&1 </dev/null &
    else
        setpriv --reuid=alice --regid=alice --init-groups "$PY" "$H/server.py" "$H/peer.sock" >"$T_TMP/server.out" 2>&1 </dev/null &
    fi
    local srv=$!
    for _ in $(seq 100); do [ -S "$H/peer.sock" ] && break; sleep 0.1; done
    (cd / && timeout 20 setpriv --reuid=alice --regid=alice --init-groups "$PY" "$H/client.py" "$H/peer.sock")
    wait "$srv"
    cat "$T_TMP/server.out"
}

echo "# control: an uncaged server takes the peer's descriptor"
check_eq "uncaged: pidfd_getfd works and lists the host's /" "pidfd yes, pidfd_getfd ok: True" "$(run_pair uncaged)"

echo "# landlock = yes (default)"
check_eq "caged: the pidfd is there, pidfd_getfd fails with EPERM" "pidfd yes, pidfd_getfd errno 1" "$(run_pair caged)"

echo "# landlock = no"
printf 'landlock = no\n' >>"$T_CONF/cage.ini"
check_eq "caged, no Landlock: pidfd_getfd fails with EPERM (seccomp)" "pidfd yes, pidfd_getfd errno 1" "$(run_pair caged)"
check_eq "caged, no Landlock: PTRACE_ATTACH and process_vm_readv fail with EPERM" "1 1" \
    "$("$CAGE_ADMIN" --config "$T_CONF" enter alice -- python3 -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
ctypes.set_errno(0); libc.ptrace(16, os.getppid(), 0, 0); a = ctypes.get_errno()
ctypes.set_errno(0); libc.syscall(310, os.getpid(), 0, 0, 0, 0, 0); b = ctypes.get_errno()
print(a, b)' 2>&1 </dev/null)"

finish
