"""Child process of the detect tests: build Luigi tasks with every network call made to fail.

The guard is installed before anything else is imported (Ultralytics probes the network at import time
unless told otherwise), records every attempt, and raises, so a library that swallows the error still
leaves a trace. Usage: ``python offline_run.py SETTINGS.json`` with keys input, work, profile,
shard_size, config_dir, tasks (a list of ``[task name, {params}]``), report (where the JSON report goes).
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
import urllib.request

ATTEMPTS: list[str] = []


def _deny(name):
    def refuse(*args, **kwargs):
        ATTEMPTS.append(f"{name}{args[:2]!r}"[:300])
        raise OSError(f"network access attempted ({name}) in an offline test")

    return refuse


def _deny_inet(name, original):
    refuse = _deny(name)

    def connect(sock, *args, **kwargs):
        if sock.family == getattr(socket, "AF_UNIX", None):  # local IPC is not the network
            return original(sock, *args, **kwargs)
        return refuse(sock, *args, **kwargs)

    return connect


def install_guard() -> None:
    socket.socket.connect = _deny_inet("socket.connect", socket.socket.connect)
    socket.socket.connect_ex = _deny_inet("socket.connect_ex", socket.socket.connect_ex)
    socket.create_connection = _deny("socket.create_connection")
    socket.getaddrinfo = _deny("socket.getaddrinfo")
    socket.gethostbyname = _deny("socket.gethostbyname")
    socket.gethostbyname_ex = _deny("socket.gethostbyname_ex")
    http.client.HTTPConnection.connect = _deny("http.client.connect")
    urllib.request.urlopen = _deny("urllib.request.urlopen")


def main(settings_file: str) -> int:
    install_guard()
    settings = json.loads(open(settings_file).read())
    started = time.time()

    import luigi
    import luigi.configuration

    config = luigi.configuration.get_config()
    for section, values in (
        ("pipeline", {key: settings[key] for key in ("input", "work", "profile", "shard_size")}),
        ("detector", {"device": "cpu", "workers": 0, "config_dir": settings["config_dir"]}),
    ):
        if not config.has_section(section):
            config.add_section(section)
        for key, value in values.items():
            config.set(section, key, str(value))

    from stages.tasking import task_class

    tasks = [task_class(name)(**params) for name, params in settings["tasks"]]
    ok = luigi.build(tasks, local_scheduler=True, workers=1, log_level="WARNING")
    report = {"ok": bool(ok), "attempts": ATTEMPTS, "seconds": time.time() - started,
              "ultralytics_online": bool(sys.modules["ultralytics.utils"].ONLINE)
              if "ultralytics.utils" in sys.modules else None}
    with open(settings["report"], "w") as handle:
        json.dump(report, handle)
    return 0 if ok and not ATTEMPTS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
