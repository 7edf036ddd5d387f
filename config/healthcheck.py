"""Container health check of the web process: `python -m config.healthcheck` (Dockerfile HEALTHCHECK, compose).

Standard library only and no Django set-up, so it is cheap every few seconds. It asks /api/health/live on this
container's port with a Host header Django accepts (the first concrete name in ALLOWED_HOSTS), exit 0 or 1.
`--ready` asks /api/health/ready instead (database and Redis); `--url URL` asks another Rollgate (the demo's helper
containers check that the web service they drive answers).
"""
import os
import sys
import urllib.error
import urllib.request


def allowed_host() -> str:
    for host in os.environ.get("ALLOWED_HOSTS", "127.0.0.1").split(","):
        host = host.strip().lstrip(".")
        if host and host != "*":
            return host
    return "127.0.0.1"


def main(argv: list[str]) -> int:
    path = "/api/health/ready" if "--ready" in argv else "/api/health/live"
    port = os.environ.get("PORT", "8000")
    url = argv[argv.index("--url") + 1] if "--url" in argv[:-1] else f"http://127.0.0.1:{port}{path}"
    headers = {} if "--url" in argv else {"Host": allowed_host()}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
