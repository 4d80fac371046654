#!/usr/bin/env bash
# Removes whatever the end-to-end tests left behind (called by .ci/run on exit, and safe to run by
# hand): processes they recorded, their `pxe2e-*` namespaces, veths and wireguard-go sockets, and
# the host's original net.ipv4.ip_forward value.
set -u
run_dir=/tmp/plexsphere-e2e
# Wait for a running e2e session (tests/e2e/conftest.py holds this lock) instead of pulling its lab away.
exec 9>/tmp/plexsphere-e2e.lock
flock 9

if [ -d "$run_dir/pids" ]; then
  for pidfile in "$run_dir"/pids/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # Only a process that is still one of ours (pids get reused).
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qE 'plexd|wireguard-go|plexsphere'; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
fi

# wireguard-go started by plexd runs detached; its pid is in the agent's state dir.
for pidfile in "$run_dir"/*/*/wireguard-go.pid "$run_dir"/*/wireguard-go.pid; do
  [ -e "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'wireguard-go pxe2e-'; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
done

for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^pxe2e-' || true); do
  ip netns del "$ns" 2>/dev/null || true
done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^pxe2e-' || true); do
  ip link del "$link" 2>/dev/null || true
done
rm -f /var/run/wireguard/pxe2e-*.sock

if [ -f "$run_dir/ip_forward.saved" ]; then
  cat "$run_dir/ip_forward.saved" > /proc/sys/net/ipv4/ip_forward 2>/dev/null || true
  rm -f "$run_dir/ip_forward.saved"
fi
# Agent state dirs hold test NSKs and keys; nothing in them is needed after the run.
rm -rf "$run_dir"/mesh-* "$run_dir"/smoke
exit 0
