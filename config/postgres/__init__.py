"""Rollgate's PostgreSQL backend: Django's, plus a commit whose outcome is checked when the connection drops
(config/postgres/base.py)."""
