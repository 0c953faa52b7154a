#!/usr/bin/env bash
# Needs root. `cage-admin enter` never gives the caged user the admin's
# terminal (issue 7, defect 9). A python pty driver (ttydriver.py) plays the
# admin's interactive root shell:
#   - a program run by `enter USER -- CMD` (stdin a terminal, or only
#     stdout/stderr one) pushes `touch PROOF` with TIOCSTI into /dev/tty and
#     fds 0-2: it lands in the user's own pty, never in the admin's shell;
#   - with all of fds 0-2 redirected, the user's program has no controlling
#     terminal at all (its own session);
#   - a background process from the user's ~/.profile tries the same after
#     a delay, and a `setsid -f` reader started inside tries to read what
#     the admin types after `enter` returned: neither gets anything;
#   - the interactive shell works: `id -un; tty` show the user and a pty of
#     the cage, ^C interrupts the user's foreground command.
# TIOCSTI is enabled for the test (dev.tty.legacy_tiocsti=1); the seccomp
# filter of every caged process refuses it anyway (EPERM, where no
# controlling terminal would give ENXIO on /dev/tty), and the pty stands
# in its way as well.
source "$(dirname "$0")/../lib.sh"

rshared_root
cage_env
make_user alice
"$CAGE_ADMIN" --config "$T_CONF" user enable alice >/dev/null
if [ -e /proc/sys/dev/tty/legacy_tiocsti ]; then
    old=$(cat /proc/sys/dev/tty/legacy_tiocsti)
    echo 1 >/proc/sys/dev/tty/legacy_tiocsti
    cleanup_add "echo $old >/proc/sys/dev/tty/legacy_tiocsti"
fi
CA="$CAGE_ADMIN --config $T_CONF"
H=/home/alice

cat >"$H/inject.py" <<'PY'
import fcntl, os, sys, termios
name, proof = sys.argv[1], sys.argv[2]
payload = ("touch " + proof + "\n").encode()
with open(os.path.expanduser("~/inject-" + name + ".log"), "w") as log:
    for target in ("/dev/tty", 0, 1, 2):
        try:
            fd = os.open(target, os.O_RDWR) if target == "/dev/tty" else target
            for b in payload:
                fcntl.ioctl(fd, termios.TIOCSTI, bytes([b]))
            log.write(f"{target} ok\n")
        except OSError as e:
            log.write(f"{target} errno {e.errno}\n")
print("INJECTOR", name, "finished", flush=True)
PY
cat >"$H/notty.py" <<'PY'
import os
try:
    os.close(os.open("/dev/tty", os.O_RDWR))
    print("ctty yes")
except OSError as e:
    print("ctty no errno", e.errno)
print("own session", os.getsid(0) == os.getpid())
PY
# Fires once the login shell is gone, i.e. after `enter` returned.
cat >"$H/.profile" <<PROFILE
( trap '' HUP; while kill -0 \$\$ 2>/dev/null; do sleep 0.2; done; sleep 1
  python3 $H/inject.py profile $T_TMP/proof-profile ) &
PROFILE
chown alice: "$H/inject.py" "$H/notty.py" "$H/.profile"
rm -f "$H/.bash_profile" "$H/.bash_login"

echo "# the admin's shell on a pty (ttydriver.py)"
python3 "$REPO/tests/e2e/ttydriver.py" "$T_TMP/transcript" \
    'wait:ADMIN# ' \
    "send:$CA enter alice -- python3 $H/notty.py </dev/null >$T_TMP/notty.out 2>&1; echo RC\$((40+2))\\r" \
    'wait:RC42' \
    "send:$CA enter alice -- python3 $H/inject.py cmd $T_TMP/proof-cmd\\r" \
    'wait:INJECTOR cmd finished' 'wait:ADMIN# ' \
    'send:echo AFTER$((1+1))\r' 'wait:AFTER2' 'sleep:1' \
    "send:true | $CA enter alice -- python3 $H/inject.py mixed $T_TMP/proof-mixed\\r" \
    'wait:INJECTOR mixed finished' 'wait:ADMIN# ' \
    'send:echo AFTER$((2+2))\r' 'wait:AFTER4' 'sleep:1' \
    "send:$CA enter alice\\r" 'sleep:1' \
    'send:id -un; tty; echo IN$((3+3))\r' 'wait:IN6' \
    'send:sleep 30\r' 'sleep:0.5' 'send:\x03' \
    'send:echo INT$((5+5))\r' 'wait:INT10' \
    "send:setsid -f sh -c 'trap \"\" HUP; sleep 2; exec cat >$H/stolen 2>/dev/null'; exit\\r" \
    'wait:ADMIN# ' 'sleep:3' \
    'send:echo secret-typed-$((6+6))\r' 'wait:secret-typed-12' \
    'send:echo two-$((7+7)) secret-typed\r' 'wait:two-14' \
    'sleep:2' \
    'send:echo END$((8+8))\r' 'wait:END16' 'sleep:1' \
    2>"$T_TMP/driver.err"
rc=$?
[ "$rc" = 0 ] || tr -d '\r' <"$T_TMP/transcript" | sed 's/^/    | /'
check_eq "the driver saw every expected output ($(cat "$T_TMP/driver.err"))" "0" "$rc"
transcript=$(tr -d '\r' <"$T_TMP/transcript")

echo "# no terminal: the user's program has none"
check_eq "fds 0-2 redirected: no controlling terminal, a session of its own" \
    "$(printf 'ctty no errno 6\nown session True')" "$(cat "$T_TMP/notty.out")"

echo "# enter USER -- CMD"
check_contains "TIOCSTI is refused even into the user's own /dev/tty (seccomp)" \
    "/dev/tty errno 1" "$(cat "$H/inject-cmd.log" 2>&1)"
check "the admin's shell never ran the injected command (enter -- CMD)" test ! -e "$T_TMP/proof-cmd"
check_contains "with only stdout a terminal, the program still has a controlling tty (its own)" \
    "/dev/tty errno 1" "$(cat "$H/inject-mixed.log" 2>&1)"
check "the admin's shell never ran the injected command (stdin a pipe)" test ! -e "$T_TMP/proof-mixed"

echo "# interactive enter"
check_contains "id -un in the interactive shell is alice" "$(printf 'alice\n/dev/pts/')" "$transcript"
check_contains "^C interrupted the user's sleep, the shell went on" "INT10" "$transcript"
check_eq "the ~/.profile injector ran after enter returned, and every TIOCSTI failed" \
    "4 0" "$(wc -l <"$H/inject-profile.log" 2>/dev/null | tr -d ' ') $(grep -c ' ok' "$H/inject-profile.log" 2>/dev/null)"
check "the admin's shell never ran the ~/.profile injection" test ! -e "$T_TMP/proof-profile"
check "the setsid -f reader was started inside (its file exists)" test -e "$H/stolen"
check_lacks "the setsid -f reader read nothing the admin typed after enter returned" \
    "secret-typed" "$(cat "$H/stolen" 2>/dev/null)"
check_contains "the admin's shell got those lines itself" "two-14 secret-typed" "$transcript"
check_lacks "the reader is gone" "stolen" "$(pgrep -u alice -a cat)"

echo "# pipes stay pipes"
check_eq "echo piped | enter alice -- cat" "piped" "$(echo piped | $CA enter alice -- cat 2>&1)"
check_eq "exit status passes through" "7" "$($CA enter alice -- sh -c 'exit 7' </dev/null >/dev/null 2>&1; echo $?)"

finish
