"""``flask`` commands: API keys, the sweeper and the scheduler."""

from __future__ import annotations

import threading

import click
from flask import Flask, current_app

from app.auth.services import create_application_key
from app.errors import DomainError
from app.extensions import db
from app.runs.sweeper import start_sweeper, sweep_once
from app.schedules.firing import start_scheduler, tick


def register_commands(app: Flask) -> None:
    app.cli.add_command(create_key_command)
    app.cli.add_command(sweep_command)
    app.cli.add_command(schedule_command)


@click.command("create-application-key")
@click.option("-n", "--name", required=True, help="Who or what the key is for.")
@click.option("-p", "--permission", required=True, help="PIPELINES_CLIENT or PIPELINES_WORKER.")
def create_key_command(name: str, permission: str) -> None:
    """Create an API key and print it once as API_TOKEN=<key>."""
    try:
        _, token = create_application_key(db.session, name, permission)
    except DomainError as error:
        raise click.BadParameter(f"{error.message}: {error.errors}") from None
    db.session.commit()
    click.echo(f"API_TOKEN={token}")


@click.command("sweep")
@click.option("--loop", is_flag=True, help="Keep sweeping every SWEEP_INTERVAL_SECONDS.")
def sweep_command(loop: bool) -> None:
    """Recover lost runs, enforce timeouts and publish waiting runs."""
    if not loop:
        click.echo(sweep_once(db.session, current_app.config["SETTINGS"]))
        return
    start_sweeper(current_app._get_current_object()).join()  # type: ignore[attr-defined]
    threading.Event().wait()


@click.command("schedule")
@click.option("--loop", is_flag=True, help="Keep ticking every SCHEDULE_TICK_SECONDS.")
def schedule_command(loop: bool) -> None:
    """Start the runs of due schedules (any number of schedulers may run at once)."""
    if not loop:
        click.echo({"started": tick(db.session, current_app.config["SETTINGS"])})
        return
    start_scheduler(current_app._get_current_object()).join()  # type: ignore[attr-defined]
