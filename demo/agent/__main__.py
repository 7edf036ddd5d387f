"""python -m demo.agent --service agent-infer --env staging --version v1.1.0 [--port 0 | --listen-fd N] [--supervise]

Options fall back to AGENT_SERVICE, AGENT_ENV, AGENT_VERSION, AGENT_PORT, AGENT_HOST, AGENT_CONFIG, AGENT_PROFILE.
With --supervise the process only watches a child agent on the same listening socket: it restarts the child after
an abnormal exit (backoff 0.2 s doubling to 5 s) and tells it how many crashes came before (AGENT_CRASHES), the way
a kubelet restarts a container. SIGTERM/SIGINT stop the agent (and the supervisor) cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from .behaviour import BehaviourError, behaviour_for, load_config
from .registry import RegistryHeartbeat
from .server import Agent, AgentServer

PACKAGE = __package__ or "demo.agent"


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog=f"python -m {PACKAGE}", description="Demo LLM agent for Rollgate.")
    parser.add_argument("--service", default=env("AGENT_SERVICE", "agent-infer"))
    parser.add_argument("--env", default=env("AGENT_ENV", "dev"))
    parser.add_argument("--version", default=env("AGENT_VERSION", "v1.0.0"))
    parser.add_argument("--host", default=env("AGENT_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("AGENT_PORT", "0")))
    parser.add_argument("--listen-fd", type=int, default=None, help="serve on this already bound socket")
    parser.add_argument("--config", default=env("AGENT_CONFIG") or None, help="versions.yaml (default: bundled)")
    parser.add_argument("--profile", default=env("AGENT_PROFILE") or None, help="override the version's profile")
    parser.add_argument("--seed", type=int, default=None, help="random seed (tests)")
    parser.add_argument("--supervise", action="store_true", help="restart the agent when it crashes")
    return parser


def _listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def supervise(args: argparse.Namespace, log: logging.Logger) -> int:
    sock = socket.socket(fileno=args.listen_fd) if args.listen_fd is not None else _listening_socket(args.host,
                                                                                                     args.port)
    fd = sock.fileno()
    print(f"agent {args.service} {args.env} {args.version} listening on http://{args.host}:{sock.getsockname()[1]}/"
          " (supervised)", flush=True)
    child_argv = [sys.executable, "-m", PACKAGE, "--service", args.service, "--env", args.env,
                  "--version", args.version, "--host", args.host, "--listen-fd", str(fd)]
    for flag, value in (("--config", args.config), ("--profile", args.profile), ("--seed", args.seed)):
        if value is not None:
            child_argv += [flag, str(value)]
    crashes = int(os.environ.get("AGENT_CRASHES", "0"))
    stopping = threading.Event()
    child: subprocess.Popen | None = None

    def on_signal(signum, frame):
        stopping.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    backoff = 0.2
    while not stopping.is_set():
        started = time.monotonic()
        child = subprocess.Popen(child_argv, pass_fds=(fd,), env={**os.environ, "AGENT_CRASHES": str(crashes)})
        code = child.wait()
        if stopping.is_set() or code in (0, -signal.SIGTERM, -signal.SIGINT):
            return 0
        crashes += 1
        if time.monotonic() - started > 30:
            backoff = 0.2
        log.error("agent %s exited with %s (crash %d); restarting in %.1f s", args.version, code, crashes, backoff)
        stopping.wait(backoff)
        backoff = min(backoff * 2, 5.0)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format=f"%(asctime)s %(levelname)s agent {args.version} pid %(process)d: %(message)s")
    log = logging.getLogger("demo.agent")
    try:
        config = load_config(args.config)
        behaviour = behaviour_for(args.version, config=config, profile=args.profile)
    except BehaviourError as error:
        print(f"demo agent: {error}", file=sys.stderr)
        return 2
    if args.supervise:
        return supervise(args, log)

    agent = Agent(service=args.service, env=args.env, version=args.version, behaviour=behaviour,
                  crashes_before=int(os.environ.get("AGENT_CRASHES", "0")), seed=args.seed)
    server = AgentServer(agent, host=args.host, port=args.port, listen_fd=args.listen_fd,
                         config=config)

    def on_signal(signum, frame):
        # shutdown() blocks until serve_forever returns, so it must run on another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.listen_fd is None:
        print(f"agent {args.service} {args.env} {args.version} listening on http://{args.host}:{server.port}/",
              flush=True)
    log.info("serving with profile %r (crashes before: %s)", behaviour.profile, os.environ.get("AGENT_CRASHES", "0"))
    heartbeat = RegistryHeartbeat.from_environment(service=args.service, env=args.env, version=args.version)
    if heartbeat is not None:
        heartbeat.start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        server.server_close()
        agent.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
