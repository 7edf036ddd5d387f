"""Secret shapes that must never reach a log line, a notification or an audit row: one place, every app.

Each shape has a test (tests/pipelines/test_redaction.py). A match keeps what names the secret (the key, the flag,
the scheme) and replaces only the secret itself.
"""
import re
from urllib.parse import urlsplit

_KEY = r"[\w-]*(?:token|secret|password|passwd|pwd|api[_-]?key|access[_-]?key|private[_-]?key)[\w-]*"

SECRET_SHAPES: list[tuple[str, re.Pattern, str]] = [
    # {"password": "hunter2"}, 'api_key': 'x' (JSON / Python dict quoting)
    ("json-quoted", re.compile(rf"""(?i)(["'](?:{_KEY})["']\s*:\s*)("(?:[^"\\]|\\.)*"|'[^']*')"""),
     r'\1"[redacted]"'),
    # password=x, TOKEN: x, --password=x, api-key="x y"
    ("key=value", re.compile(rf"""(?i)\b({_KEY})(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&"']+)"""),
     r"\1\2[redacted]"),
    # --password x, --token x (a flag, then the secret as the next word)
    ("--flag value", re.compile(rf"""(?i)(--{_KEY})(\s+)(?!-)("[^"]*"|'[^']*'|\S+)"""), r"\1\2[redacted]"),
    # mysql -p<password> / -p <password>
    ("-p password", re.compile(r"""(?<![\w-])(-p)(\s*)(?![0-9]+(?::[0-9]+)*\b)(?!-)("[^"]*"|'[^']*'|\S+)"""),
     r"\1\2[redacted]"),
    # Authorization: Bearer x / Basic x / Token x, and a bare "Bearer x"
    ("authorization", re.compile(r"(?i)\b(authorization\s*[:=]\s*[\"']?)(bearer|basic|token)\s+[^\s\"',]+"),
     r"\1\2 [redacted]"),
    ("bearer", re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    ("url credentials", re.compile(r"(?i)(https?://)[^/\s:@]+:[^/\s@]+@"), r"\1[redacted]@"),
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
     "[redacted private key]"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), "[redacted]"),
    # Well-known token prefixes: GitLab, GitHub, Slack, AWS access key ids, OpenAI-style, Rollgate agent tokens
    ("token prefix", re.compile(r"\b(?:gl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}"
                                r"|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}"
                                r"|sk-[A-Za-z0-9_-]{20,}|rgat_[A-Za-z0-9_-]{20,})"), "[redacted]"),
]


def redact(text: str) -> str:
    for _name, pattern, replacement in SECRET_SHAPES:
        text = pattern.sub(replacement, text)
    return text


def mask_url(url: str) -> str:
    """scheme://host[:port]/… — enough to recognise a webhook endpoint, nothing of its user, path or query (where
    tokens live: a DingTalk access_token, a WeCom key, a Slack path)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    rest = "/…" if (parts.path.strip("/") or parts.query) else "/"
    return f"{parts.scheme}://{host}{rest}"
