"""The only module that speaks HTTP: a thin httpx wrapper that turns Rollgate's error shape into ApiError."""
import os

import httpx

USER_AGENT = "rollgate-cli/0.1"


class ApiError(Exception):
    """The API refused (4xx) or failed (5xx). `detail` is the rule in words, `body` the answer as it came."""

    def __init__(self, status: int, detail: str, body, method: str, path: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.body = body
        self.method = method
        self.path = path


class Unreachable(Exception):
    pass


def _detail(response: httpx.Response):
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:300] or response.reason_phrase), text
    if isinstance(body, dict):
        detail = str(body.get("detail") or "")
        errors = body.get("errors")
        if isinstance(errors, dict):
            named = "; ".join(f"{field}: {' '.join(map(str, messages)) if isinstance(messages, list) else messages}"
                              for field, messages in errors.items())
            if named and named not in detail:
                detail = f"{detail} ({named})" if detail else named
        return detail or response.reason_phrase, body
    return response.reason_phrase, body


def accept_language(environ=os.environ) -> str:
    """The Accept-Language the server's refusals should come in, from the locale the shell runs in (LC_ALL, then
    LC_MESSAGES, then LANG, as POSIX reads them): zh_CN.UTF-8 -> zh-hans, en_US -> en-us; "" for C/POSIX or unset
    (the server then answers in English)."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            break
    tag = value.split(".")[0].split("@")[0].replace("_", "-").lower()
    if tag in ("", "c", "posix"):
        return ""
    if tag == "zh" or tag.startswith(("zh-cn", "zh-sg", "zh-hans")):
        return "zh-hans"
    return tag


class RollgateApi:
    def __init__(self, url: str, token: str = "", timeout: float = 30.0):
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        language = accept_language()
        if language:
            headers["Accept-Language"] = language
        if token:
            headers["Authorization"] = f"Token {token}"
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self):
        self._http.close()

    def request(self, method: str, path: str, body: dict | None = None, params: dict | None = None):
        try:
            response = self._http.request(method, path, json=body, params=params)
        except httpx.HTTPError as error:
            raise Unreachable(f"cannot reach {self.url}: {error}") from error
        if response.status_code >= 400:
            detail, parsed = _detail(response)
            raise ApiError(response.status_code, detail, parsed, method, path)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as error:
            raise Unreachable(f"{self.url}{path} answered something that is not JSON: is this Rollgate?") from error

    def get(self, path: str, **params):
        return self.request("GET", path, params={k: v for k, v in params.items() if v not in (None, "")})

    def post(self, path: str, body: dict | None = None):
        return self.request("POST", path, body=body or {})
