"""Where `rollgate login` keeps the server address and the API token: a JSON file only its owner may read.

ROLLGATE_URL and ROLLGATE_TOKEN (CI variables) win over the file; ROLLGATE_CONFIG names another file.
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path


class NotLoggedIn(Exception):
    pass


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str
    username: str = ""


def credentials_path() -> Path:
    configured = os.environ.get("ROLLGATE_CONFIG", "")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rollgate" / "credentials.json"


def credentials_save(credentials: Credentials, path: Path | None = None) -> Path:
    """Write the file with mode 0600 from the first byte (never world-readable, not even for a moment)."""
    path = path or credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    if temporary.exists():
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"url": credentials.url, "token": credentials.token, "username": credentials.username}, handle)
    os.chmod(temporary, 0o600)  # in case the umask took bits away from what we asked: exactly 0600
    os.replace(temporary, path)
    return path


def credentials_load(url_override: str = "") -> Credentials:
    url = url_override or os.environ.get("ROLLGATE_URL", "")
    token = os.environ.get("ROLLGATE_TOKEN", "")
    stored: dict = {}
    path = credentials_path()
    if not (url and token) and path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise NotLoggedIn(f"cannot read {path}: {error}; run `rollgate login` again") from error
    url = url or stored.get("url", "")
    token = token or stored.get("token", "")
    if not url:
        raise NotLoggedIn("no server: run `rollgate login --url https://rollgate.example.com`, or set ROLLGATE_URL")
    if not token:
        raise NotLoggedIn("not logged in: run `rollgate login`, or set ROLLGATE_TOKEN")
    return Credentials(url=url.rstrip("/"), token=token, username=stored.get("username", ""))
