#!/usr/bin/env python3
"""Runs a command on a fresh pseudo-terminal, as a person at a terminal would.

Usage: run-in-pty.py COMMAND [ARGS...] < answers

Each line of stdin is typed, followed by Enter, when the command next shows a prompt (output
ending in ": "). Everything the terminal showed is printed to stdout; the exit status is the
command's. Gives up after 30 seconds.
"""
import os
import pty
import select
import sys
import time

answers = sys.stdin.read().splitlines()
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])

shown = b""
pending = b""
deadline = time.time() + 30
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if not ready:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    shown += chunk
    pending += chunk
    if pending.rstrip(b" ").endswith(b":") and pending.endswith(b" ") and answers:
        os.write(fd, answers.pop(0).encode() + b"\n")
        pending = b""
else:
    os.kill(pid, 9)
    sys.stdout.write(shown.decode(errors="replace") + "\n[run-in-pty: timed out]\n")
    sys.exit(124)

_, status = os.waitpid(pid, 0)
sys.stdout.write(shown.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
