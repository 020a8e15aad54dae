"""Run a command in a pseudo-terminal of a given size and read the screen a person would see (pyte emulates the
terminal: cursor moves, line clears and redraws included). Tests only."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import pyte


def screen_of(args: list[str], *, columns: int = 80, rows: int = 200, env: dict[str, str] | None = None,
              timeout: float = 600) -> tuple[int, list[str]]:
    """The exit code and the screen's lines (trailing blanks removed) once `mlxclaude ARGS` has ended."""
    leader, follower = pty.openpty()
    environ = {**os.environ, **(env or {}), "COLUMNS": str(columns), "LINES": str(rows), "TERM": "xterm-256color"}
    code = "import sys; sys.argv[0] = 'mlxclaude'; from mlxclaude.cli.main import main; sys.exit(main())"
    import fcntl
    import struct
    import termios

    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdin=follower, stdout=follower, stderr=follower,
                            env=environ, close_fds=True)
    os.close(follower)
    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], timeout)
            if not ready:
                proc.kill()
                raise TimeoutError(f"{args} printed nothing for {timeout} s")
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            stream.feed(data)
    finally:
        os.close(leader)
    code = proc.wait(timeout=60)
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return code, lines
