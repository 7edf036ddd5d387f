"""`rollgate`: the command line for CI jobs and terminals (login, releases, wait, promote, approvals, SLA verdict).

Talks to Rollgate's HTTP API only (httpx), so it needs no Django and no database: `pip install rollgate` in a CI
image is enough. Entry point: ``rollgate_cli.main:main`` (``python -m rollgate_cli`` works the same).
"""
