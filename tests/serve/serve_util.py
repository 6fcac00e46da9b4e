"""Helpers shared by the serve test scripts in this folder (hostile.py, monitor_check.py, web_check.py)."""
import socket


def free_port():
    """A loopback TCP port free at the time of the call."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
