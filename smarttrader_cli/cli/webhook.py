"""`st webhook`: the receiver for Helius webhooks."""

from __future__ import annotations

from typing import Annotated

import typer

from smarttrader_cli.cli.options import app_context

app = typer.Typer(
    help="Receive Helius webhooks and publish them to the stream.", no_args_is_help=True
)


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Bind address (webhook.host).")] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Port (webhook.port).")
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Accept requests without an Authorization check (only for local testing).",
        ),
    ] = False,
) -> None:
    """Serve POST /webhooks, /health, /webhooks/status and /metrics until stopped.

    Needs ST_WEBHOOK_AUTH_TOKEN (the webhook's authHeader) unless --insecure-no-auth.
    Events are answered 200 only once durable: acknowledged by the broker (acks=all)
    or fsynced to the local log or the spool, each event stored as the bytes it was sent.
    Slow clients are cut off (webhook.header_timeout_seconds, webhook.body_timeout_seconds)
    and past webhook.max_connections requests get 503. SIGTERM flushes in-flight events
    and exits.

    Example: ST_WEBHOOK_AUTH_TOKEN=secret st webhook serve --port 8000
    """
    from smarttrader_cli.config import load_config
    from smarttrader_cli.errors import ConfigError
    from smarttrader_cli.stream.server import serve as run_server

    app_ctx = app_context(ctx)
    options = {"webhook.host": host, "webhook.port": port}
    overrides = {key: value for key, value in options.items() if value is not None}
    loaded = load_config(app_ctx.config_path, overrides=overrides)
    token = loaded.secrets.webhook_auth_token
    if not token and not insecure_no_auth:
        raise ConfigError(
            "ST_WEBHOOK_AUTH_TOKEN is not set; set it to the webhook's authHeader "
            "(or pass --insecure-no-auth for local testing)"
        )
    config = loaded.config
    level = "info" if app_ctx.verbose else "warning"
    typer.echo(
        f"st webhook serve: http://{config.webhook.host}:{config.webhook.port}/webhooks "
        f"→ {config.stream.backend} backend",
        err=True,
    )
    run_server(config, token or None, log_level=level)
