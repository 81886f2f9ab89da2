"""Where alerts and creator emails go: an optional webhook, and an SMTP server (settings from the env)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

import dagster as dg
import requests


class AlertWebhook(dg.ConfigurableResource):
    """A URL that receives a JSON alert (Slack-compatible `text`); empty: alerts are logged only."""

    url: str = ""

    def send(self, text: str, **fields: Any) -> bool:
        if not self.url:
            return False
        requests.post(self.url, json={"text": text, **fields}, timeout=10).raise_for_status()
        return True


class Mailer(dg.ConfigurableResource):
    """SMTP settings; an empty host turns creator emails off.

    STARTTLS verifies the server's certificate and host name (`ssl.create_default_context`): without a
    context smtplib encrypts but trusts anyone, so the password and the creators' addresses would go to
    whoever sits in between. `ca_file` trusts a private relay's CA instead of the system's (which
    `SSL_CERT_FILE` can also point elsewhere).
    """

    host: str = ""
    port: int = 587
    username: str = ""
    password: str = ""
    sender: str = "highlights@example.com"
    starttls: bool = True
    ca_file: str = ""  # PEM file of the CAs to trust; empty: the system's

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file or None))
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(message)
