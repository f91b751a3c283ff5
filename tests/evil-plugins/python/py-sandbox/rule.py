"""`py-sandbox`: probes a capability the host must deny, per `probe`, and
counts what happened instead of failing: `denied:WHAT` when every attempt
was refused, `LEAK:WHAT:DETAIL` for anything that got through, and
`why:...` keys naming the refusals (for a human reading a failure).

probe=file    open/read files, list directories (/, ., /etc, /proc)
probe=env     os.environ, os.getenv, the command line
probe=socket  TCP and UDP to 127.0.0.1:`port`
probe=clock   time.time(): frozen at the epoch by the host
Other rows are counted as text.split(" ")."""

import os
import sys
import time

from wc_plugin import Counter, Param, PluginError

PROBES = ("file", "env", "socket", "clock")


def _why(e):
    return f"why:{type(e).__name__}:{getattr(e, 'errno', '')}"


def probe_file(out):
    for path in ("/etc/passwd", "/etc/hostname", "/proc/self/environ", "Cargo.toml", "plugin.wit"):
        try:
            with open(path, "rb") as f:
                data = f.read(64)
            out.add(f"LEAK:file:{path}:{len(data)}")
        except Exception as e:
            out.add(_why(e))
    for path in ("/", ".", "/etc", "/proc", "/tmp"):
        try:
            names = os.listdir(path)
            # An empty listing of "/" in an empty virtual root is no leak.
            if names:
                out.add(f"LEAK:file:listdir:{path}:{','.join(sorted(names)[:5])}")
        except Exception as e:
            out.add(_why(e))
    try:
        with open("/tmp/py-sandbox-was-here", "w") as f:
            f.write("x")
        out.add("LEAK:file:write")
    except Exception as e:
        out.add(_why(e))
    return "file"


def probe_env(out):
    for k in os.environ:
        out.add(f"LEAK:env:{k}")
    for k in ("HOME", "PATH", "USER", "REDIS_URL", "WC_PY_SECRET"):
        if os.getenv(k) is not None:
            out.add(f"LEAK:env:getenv:{k}")
    # The command line: nothing but maybe a program name.
    for a in sys.argv[1:]:
        out.add(f"LEAK:env:argv:{a}")
    return "env"


def probe_socket(out, port):
    try:
        import socket
    except Exception as e:
        out.add(_why(e))
        return "net"
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        try:
            s = socket.socket(socket.AF_INET, kind)
        except Exception as e:
            out.add(_why(e))
            continue
        try:
            s.settimeout(1)
            s.connect(("127.0.0.1", port))
            s.send(b"py-sandbox was here")
            out.add(f"LEAK:net:{kind}")
        except Exception as e:
            out.add(_why(e))
        finally:
            s.close()
    return "net"


def probe_clock(out):
    now = time.time()
    if now > 1_000_000:
        out.add(f"LEAK:clock:{int(now)}")
    return "clock"


class Rule(Counter):
    name = "py-sandbox"
    description = "evil: tries files, environment, sockets and the clock (see `probe`)"
    params = [
        Param("probe", help="file, env, socket or clock; none counts text.split(\" \")"),
        Param("port", default="9", help="the port probe=socket tries on 127.0.0.1"),
    ]

    def __init__(self, params):
        params.check_known()
        self.probe = params.get("probe")
        if self.probe is not None and self.probe not in PROBES:
            raise PluginError(f"parameter `probe` must be one of {', '.join(PROBES)}, got `{self.probe}`")
        self.port = params.int("port", minimum=1)

    def count_row(self, row, counts):
        if self.probe is None:
            counts.update(row[0].split(" "))
            return
        if self.probe == "file":
            what = probe_file(counts)
        elif self.probe == "env":
            what = probe_env(counts)
        elif self.probe == "socket":
            what = probe_socket(counts, self.port)
        else:
            what = probe_clock(counts)
        if not any(k.startswith("LEAK:") for k in counts):
            counts.add(f"denied:{what}")
