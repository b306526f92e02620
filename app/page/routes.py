"""The page's routes: sign-in, the runs list, and each run's page with its live JSON.

Plain Flask views (not in the OpenAPI spec: they serve HTML and the page's own polling),
guarded by the cookie session of session.py. The run routes are generic: they load the
run from the shared table and hand its kind's template and fields to the registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException

from app.errors import DomainError, ValidationFailed, error_response
from app.extensions import db
from app.page import plot, queries, registry
from app.page.session import (
    NotSignedIn,
    check_csrf,
    csrf_token,
    poll_seconds,
    sign_in,
    sign_out,
    signed_in,
)
from app.pagination import decode_cursor
from app.runs import queries as run_queries
from app.runs.client_routes import cancel_run, send_artifact
from app.runs.states import RunState
from app.storage.extension import store

blp = Blueprint(
    "page",
    __name__,
    url_prefix="/page",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
PAGE_SIZE = 50
LOG_PAGE = 500
#: The most a page form without files may send: its fields are far smaller.
FORM_BYTES = 1_000_000
FORM_FIELD_BYTES = 200_000  # parameters or input lists of a few thousand lines
FORM_PARTS = 100


@blp.app_context_processor
def _page_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "poll_seconds": poll_seconds, "kinds": registry.kinds}


@blp.app_template_filter("bytes")
def _bytes(size: int) -> str:
    """``5482`` as ``5.5 kB`` (the script's ``size`` says the same)."""
    value, unit = float(size), 0
    units = ("B", "kB", "MB", "GB", "TB")
    while value >= 1000 and unit < len(units) - 1:
        value, unit = value / 1000, unit + 1
    return f"{value:.1f} {units[unit]}" if unit else f"{int(value)} B"


@blp.before_request
def _limit_forms() -> None:
    """A page form is small: no POST is read (or spooled to disk) past FORM_BYTES, but for
    a form of files (start_routes.py raises its limit to the API's upload limit)."""
    request.max_content_length = FORM_BYTES
    request.max_form_memory_size = FORM_FIELD_BYTES  # a text field, held in memory
    request.max_form_parts = FORM_PARTS


@blp.after_request
def _headers(response: Response) -> Response:
    """No page or its data in a shared cache; no framing; scripts only from this app."""
    response.headers.setdefault("Cache-Control", "no-cache, private")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"
    )
    return response


def _wants_json() -> bool:
    return request.path.endswith(".json")


@blp.errorhandler(DomainError)
def _domain_error(error: DomainError) -> Any:
    db.session.rollback()
    if _wants_json():
        return error_response(error.status, error.message, error.errors, error.code)
    if isinstance(error, NotSignedIn) and request.method == "GET":
        return redirect(url_for("page.signin", next=request.full_path.rstrip("?")), 303)
    return render_template("page/error.html", error=error), error.status


@blp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    db.session.rollback()
    if _wants_json():
        return error_response(error.code or 500, error.description or error.name)
    wrapped = DomainError(error.description or error.name)
    wrapped.status = error.code or 500
    return render_template("page/error.html", error=wrapped), error.code


# --- sign-in ------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path of this page after sign-in: never another site (an open redirect)."""
    home = url_for("page.runs")  # "/page/", after any mount prefix
    if target and target.startswith(home) and not target.startswith("//"):
        return target
    return home


@blp.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    """The sign-in form: an API key, POSTed (never in a URL), checked, then a session."""
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("page/signin.html", next_url=next_url)
    try:
        check_csrf()
        sign_in(request.form.get("key", ""))
    except DomainError as error:
        db.session.rollback()
        return render_template("page/signin.html", next_url=next_url, error=error), error.status
    return redirect(next_url, 303)


@blp.route("/signout", methods=["POST"])
def signout() -> Any:
    check_csrf()
    sign_out()
    return redirect(url_for("page.signin"), 303)


# --- the runs list ------------------------------------------------------------------


def _list_args() -> dict[str, Any]:
    """``kind``, ``state``, ``cursor`` of the runs list, each checked (422 naming it)."""
    args = request.args
    kind = args.get("kind") or None
    if kind and registry.for_kind(kind) is None:
        known = ", ".join(page.kind for page in registry.kinds())
        raise ValidationFailed("Unknown kind", {"kind": [f"Not one of: {known}"]})
    state = args.get("state") or None
    if state and state not in RunState.__members__:
        raise ValidationFailed(
            "Unknown state", {"state": [f"Not one of: {', '.join(RunState.__members__)}"]}
        )
    cursor = args.get("cursor") or None
    if cursor:
        decode_cursor(cursor)
    return {"kind": kind, "state": RunState(state) if state else None, "cursor": cursor}


@blp.route("/")
@signed_in
def runs() -> Any:
    """Every run of every kind, newest first."""
    args = _list_args()
    rows, next_cursor = queries.list_runs(
        db.session, args["kind"], args["state"], PAGE_SIZE, args["cursor"]
    )
    return render_template(
        "page/runs.html",
        rows=rows,
        next_cursor=next_cursor,
        kind=args["kind"] or "",
        state=args["state"].value if args["state"] else "",
        cursor=args["cursor"] or "",
        states=list(RunState.__members__),
    )


@blp.route("/runs.json")
@signed_in
def runs_json() -> Any:
    """The same page of runs as JSON, for the list's polling (ETag: 304 if unchanged)."""
    args = _list_args()
    rows, next_cursor = queries.list_runs(
        db.session, args["kind"], args["state"], PAGE_SIZE, args["cursor"]
    )
    return _conditional({"items": rows, "next_cursor": next_cursor})


def _conditional(body: dict[str, Any]) -> Response:
    """A JSON answer with an ETag of its content: a poll of an unchanged view gets a
    bodiless 304, so 50 open pages cost little more than their queries."""
    data = json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()
    response = current_app.response_class(data, mimetype="application/json")
    response.set_etag(hashlib.sha256(data).hexdigest()[:32])
    return response.make_conditional(request)


# --- one run, any kind --------------------------------------------------------------


@blp.route("/runs/<run_id>")
@signed_in
def run(run_id: str) -> Any:
    """A run's page: the template its kind registered, with its live view rendered in."""
    found = queries.get_run(db.session, run_id)
    page = registry.for_kind(found.kind)
    if page is None:
        raise ValidationFailed("No page for this kind of run", {"kind": [found.kind]})
    live = queries.live_view(db.session, found)
    return render_template(
        page.template,
        run=found,
        kind=page,
        live=live,
        live_json=json.dumps(live, default=str).replace("<", "\\u003c"),
        **page.context(db.session, found),
    )


@blp.route("/runs/<run_id>/live.json")
@signed_in
def run_live(run_id: str) -> Any:
    """What the run page polls (ETag: 304 while nothing changed)."""
    return _conditional(queries.live_view(db.session, queries.get_run(db.session, run_id)))


@blp.route("/runs/<run_id>/logs.json")
@signed_in
def run_logs(run_id: str) -> Any:
    """Log lines after sequence number ``after``: the page's tail reads on from its cursor."""
    raw = request.args.get("after", "0")
    if not raw.isdigit() or len(raw) > 12:
        raise ValidationFailed("Bad cursor", {"after": ["Must be a whole number >= 0"]})
    after = int(raw)
    found = queries.get_run(db.session, run_id)
    lines = run_queries.list_log_lines(db.session, found.id, after, LOG_PAGE)
    next_after = lines[-1].seq if lines else after
    return jsonify(
        {
            "lines": [line.line for line in lines],
            "next_after": next_after,
            "complete": found.state.is_final and next_after >= found.next_log_seq - 1,
        }
    )


@blp.route("/runs/<run_id>/artifacts/<filename:name>")
@signed_in
def artifact(run_id: str, name: str) -> Any:
    """Download an artifact (the bytes, or a redirect to a presigned S3 URL)."""
    return send_artifact(queries.get_run(db.session, run_id), name)


@blp.route("/runs/<run_id>/plot.json")
@signed_in
def run_plot(run_id: str) -> Any:
    """A CSV artifact downsampled for the plot: ``artifact``, ``x``, ``y`` (repeatable)."""
    found = queries.get_run(db.session, run_id)
    name = request.args.get("artifact", "")
    if not name.lower().endswith(".csv"):
        raise ValidationFailed("Not a CSV artifact", {"artifact": ["Name must end in .csv"]})
    record = run_queries.get_artifact(db.session, found.id, name)
    buckets = request.args.get("buckets", "1000")
    if not buckets.isdigit() or not 10 <= int(buckets) <= 5000:
        raise ValidationFailed("Bad bucket count", {"buckets": ["A whole number, 10 to 5000"]})
    limit = current_app.config["SETTINGS"].PAGE_PLOT_MAX_BYTES
    if record.size > limit:
        raise ValidationFailed(
            "This artifact is too large to plot", {"artifact": [f"Over {limit} bytes"]}
        )
    with contextlib.closing(store().open(record.storage_key)) as stream:
        text = plot.read_text(stream, limit)
    result = plot.downsample(
        record.storage_key,
        text,
        request.args.get("x") or None,
        request.args.getlist("y"),
        int(buckets),
    )
    return _conditional(result)


@blp.route("/runs/<run_id>/cancel", methods=["POST"])
@signed_in
def run_cancel(run_id: str) -> Any:
    """Cancel from the page (CSRF-checked by ``signed_in``), then show the run again."""
    cancel_run(queries.get_run(db.session, run_id).id)
    return redirect(url_for("page.run", run_id=run_id), 303)


@blp.route("/runs/<run_id>/actions/<action>", methods=["POST"])
@signed_in
def run_action(run_id: str, action: str) -> Any:
    """One of the kind's actions (re-run, retry); shows the run it returns."""
    found = queries.get_run(db.session, run_id)
    page = registry.for_kind(found.kind)
    chosen = page.actions.get(action) if page else None
    if chosen is None or not chosen.offered(found):
        raise ValidationFailed("No such action for this run", {"action": [action]})
    target = chosen.perform(db.session, found)
    return redirect(url_for("page.run", run_id=target), 303)


# The start page's routes share this blueprint (its own module: forms, not run views).
from app.page import start_routes  # noqa: E402, F401
