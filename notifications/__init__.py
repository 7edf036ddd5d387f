"""Notifications for the events release managers act on: subscriptions per environment and event, deliveries to
Slack, Feishu, DingTalk, WeCom and generic webhooks (channels.py), retried with backoff, never posted twice."""
