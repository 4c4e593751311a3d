"""Alerts: an outbox in the lake (`ops.alerts`) and the channels that deliver it.

- outbox.py: the table's rows and states, deterministic alert ids, enqueueing.
- channels.py: Telegram, Discord, Slack and the signed generic webhook.
- delivery.py: claiming, sending, retries, dead-lettering; the one deliverer's lock.
- signing.py: the webhook's HMAC signature (and its check, for receivers).
"""
