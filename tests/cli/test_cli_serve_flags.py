"""`imagegen serve` refuses an address it cannot listen on at once, in one line."""

from __future__ import annotations

import socket

from cli_helpers import error_line, run_process


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_process("serve", "--engine", "placeholder", "--port", str(port), timeout=30)
    assert result.returncode == 2
    line = error_line(result)
    assert line.startswith(f"Error: --port {port}: 127.0.0.1:{port} is already in use")
    assert "--port 0" in line


def test_an_address_of_another_machine_is_refused() -> None:
    # 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
    result = run_process(
        "serve", "--host", "192.0.2.1", "--port", "8000", "--allow-no-auth", timeout=30
    )
    assert result.returncode == 2
    assert error_line(result).startswith("Error: --host/--port: cannot listen on 192.0.2.1:8000")
