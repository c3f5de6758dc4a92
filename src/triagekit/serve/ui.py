"""The ``/ui`` review page of ``triagekit serve``: queue, keyboard review, overview, login and reviewer admin.

Server-rendered (Jinja2 with autoescape on, so ticket text is always escaped) with one small script for the
keyboard flow; templates and static files ship in the package, nothing is fetched from elsewhere. Saving a review
writes the same ``feedback`` rows as ``POST /feedback`` (plus the reviewer's name and note), which removes the
ticket from the queue. See ``docs/serving.md`` ("Review page").

Security: when the service has an API key or reviewer accounts exist, every page needs a login (the key gives an
admin session; an account its own role). The session cookie is ``HttpOnly``, ``SameSite=Strict``, ``Secure`` over
HTTPS and scoped to ``/ui``, so it never authenticates the JSON API (which keeps requiring ``X-API-Key``). Every
POST carries the session's CSRF token; wrong passwords are throttled per name and per address; the pages send a
Content-Security-Policy that allows only the page's own script and styles.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from triagekit.serve import accounts, overview, reviewstore
from triagekit.serve.accounts import Principal
from triagekit.serve.charts import bar_chart, line_chart
from triagekit.serve.db import utcnow
from triagekit.serve.reviewstore import Heads, QueueFilter
from triagekit.serve.schemas import clean_text

__all__ = ["mount_ui", "UISettings", "SESSION_COOKIE"]

log = logging.getLogger("triagekit.serve")

HERE = Path(__file__).parent
SESSION_COOKIE = "triagekit_session"
LOGIN_CSRF_COOKIE = "triagekit_login_csrf"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class UISettings:
    """Knobs of the review page (class attributes: tests and deployments may override them)."""

    session_ttl = timedelta(hours=12)
    max_user_failures = 5
    """Wrong passwords for one name within ``failure_window`` before logins under that name are refused."""
    max_ip_failures = 20
    """Wrong passwords from one address within ``failure_window`` before its logins are refused."""
    failure_window = timedelta(minutes=15)
    per_page = 25
    max_note_chars = 2000


class UIError(Exception):
    """An HTML error page with ``status``."""

    def __init__(self, status: int, message: str, headers: Optional[dict[str, str]] = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class LoginRequired(Exception):
    def __init__(self, next_url: str):
        super().__init__(next_url)
        self.next_url = next_url


def _templates():
    from jinja2 import Environment, FileSystemLoader

    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["age"] = _age
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.0f}\u00a0%"  # no break inside "17 %"
    env.filters["short"] = lambda s, n=160: s if len(s) <= n else s[: n - 1] + "…"
    return env


def _age(value: Optional[datetime]) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:  # SQLite gives naive UTC back
        value = value.replace(tzinfo=timezone.utc)
    seconds = max(0, (utcnow() - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return "just now"


async def _run(fn, *args):
    return await asyncio.to_thread(fn, *args)


class ReviewUI:
    """The routes of the review page, bound to one app's ``Service``."""

    def __init__(self, service, api_key: Optional[str], settings: type[UISettings] = UISettings):
        self.service, self.api_key, self.s = service, api_key, settings
        self.env = _templates()

    # -- plumbing ------------------------------------------------------------------------------------------------
    @property
    def engine(self):
        if self.service.store is None:
            raise UIError(503, "the service is starting; reload in a moment")
        return self.service.store.engine

    def heads(self) -> Heads:
        router = self.router()
        return Heads([h.name for h in router.heads if not h.multilabel], [h.name for h in router.heads if h.multilabel])

    def router(self):
        router = self.service.router
        if router is None:
            reason = self.service.load_error or "the model is still loading"
            raise UIError(503, f"no model to review against: {reason}")
        return router

    def page(
        self, name: str, request: Request, status: int = 200, user: Optional[Principal] = None, **ctx: Any
    ) -> HTMLResponse:
        html = self.env.get_template(name).render(user=user, path=request.url.path, **ctx)
        return HTMLResponse(html, status_code=status, headers=_security_headers())

    def set_cookie(self, response: Response, request: Request, name: str, value: str, path: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    async def login_required(self) -> bool:
        return self.api_key is not None or await _run(accounts.has_reviewers, self.engine)

    async def principal(self, request: Request) -> Principal:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            user = await _run(accounts.read_session, self.engine, token)
            if user is not None:
                return user
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target if request.method == "GET" else "/ui/queue")

    @staticmethod
    def check_csrf(form, user: Principal, request: Request) -> None:
        sent = form.get("csrf_token") or request.headers.get("x-csrf-token") or ""
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), user.csrf.encode()):
            raise UIError(403, "this form is missing its CSRF token or it has expired: reload the page and retry")

    async def admin(self, request: Request) -> Principal:
        user = await self.principal(request)
        if not user.is_admin:
            raise UIError(403, f"{user.name} is a reviewer; this page is for admins")
        return user

    # -- login -----------------------------------------------------------------------------------------------
    async def login_form(self, request: Request) -> HTMLResponse:
        return await self._login_page(request)

    async def _login_page(
        self, request: Request, error: str = "", status: int = 200, headers: Optional[dict] = None
    ) -> HTMLResponse:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        open_mode = not await self.login_required()
        resp = self.page(
            "login.html",
            request,
            status,
            csrf=token,
            error=error,
            open_mode=open_mode,
            next=_safe_next(request.query_params.get("next")),
        )
        resp.headers.update(headers or {})
        self.set_cookie(resp, request, LOGIN_CSRF_COOKIE, token, "/ui/login", 3600)
        return resp

    async def login(self, request: Request) -> Response:
        form = await request.form()
        cookie, sent = request.cookies.get(LOGIN_CSRF_COOKIE, ""), form.get("csrf_token", "")
        if not cookie or not isinstance(sent, str) or not hmac.compare_digest(cookie.encode(), sent.encode()):
            raise UIError(403, "the login form is missing its CSRF token or it has expired: reload the page")
        name = _text(form.get("name"), 200).strip()
        password = _text(form.get("password"), 1000)
        engine, window = self.engine, self.s.failure_window
        user_key, ip_key = f"user:{name.casefold()}", f"ip:{request.client.host if request.client else '?'}"
        for key, limit in ((user_key, self.s.max_user_failures), (ip_key, self.s.max_ip_failures)):
            n, oldest = await _run(accounts.failures, engine, [key], window)
            if n >= limit:
                wait = max(1, math.ceil((oldest + window - utcnow()).total_seconds())) if oldest else 60
                return await self._login_page(
                    request, f"too many wrong passwords: try again in {wait} s", 429, {"Retry-After": str(wait)}
                )
        role = await self._check(name, password)
        if role is None:
            await _run(accounts.record_failure, engine, [user_key, ip_key], window)
            return await self._login_page(request, "wrong name or password", 401)
        await _run(accounts.clear_failures, engine, [user_key])
        token, _ = await _run(accounts.open_session, engine, name or "admin", role, self.s.session_ttl)
        resp = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        self.set_cookie(resp, request, SESSION_COOKIE, token, "/ui", int(self.s.session_ttl.total_seconds()))
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/login")
        return resp

    async def _check(self, name: str, password: str) -> Optional[str]:
        """The role a name/password pair logs in as, or None."""
        engine = self.engine
        if not await self.login_required():  # no key, no accounts: anyone may review, under the name they give
            return "reviewer" if name else None
        if name and await _run(accounts.reviewer_exists, engine, name):
            return await _run(accounts.check_reviewer, engine, name, password)
        if self.api_key is not None and hmac.compare_digest(password.encode(), self.api_key.encode()):
            return "admin"
        await _run(accounts.check_reviewer, engine, name, password)  # same cost as a known name
        return None

    async def logout(self, request: Request) -> Response:
        user = await self.principal(request)
        self.check_csrf(await request.form(), user, request)
        await _run(accounts.close_session, self.engine, request.cookies[SESSION_COOKIE])
        resp = RedirectResponse("/ui/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/ui")
        return resp

    # -- queue -----------------------------------------------------------------------------------------------
    async def queue(self, request: Request) -> HTMLResponse:
        user = await self.principal(request)
        heads, f = self.heads(), _filter(request)
        if self.service.writer is not None:
            await self.service.writer.flush()  # include what was predicted a moment ago
        total = await _run(reviewstore.queue_count, self.engine, QueueFilter(), heads)
        n = await _run(reviewstore.queue_count, self.engine, f, heads) if f.params() else total
        pages = max(1, math.ceil(n / self.s.per_page))
        page = min(max(1, _int(request.query_params.get("page"), 1)), pages)
        items = await _run(reviewstore.queue_page, self.engine, f, heads, (page - 1) * self.s.per_page, self.s.per_page)
        facets = await _run(reviewstore.queue_facets, self.engine)
        router = self.router()
        label_heads = [h for h in router.heads if not h.multilabel and (not f.head or h.name == f.head)]
        labels = sorted({lab for h in label_heads for lab in h.labels})
        return self.page(
            "queue.html",
            request,
            user=user,
            items=items,
            total=total,
            count=n,
            page=page,
            pages=pages,
            per_page=self.s.per_page,
            f=f,
            q=urlencode(f.params()),
            head_names=heads.all,
            labels=labels,
            facets=facets,
            page_links=_page_links(page, pages),
            empty=request.query_params.get("empty"),
        )

    # -- review ----------------------------------------------------------------------------------------------
    async def next_item(self, request: Request) -> Response:
        await self.principal(request)
        f, params = _filter(request), request.query_params
        if self.service.writer is not None:
            await self.service.writer.flush()
        after, back = params.get("after") or None, params.get("back") == "1"
        pid = await _run(reviewstore.neighbour, self.engine, f, self.heads(), after, back)
        if pid is None and after is not None and not back:  # the end of the queue: wrap around to its start
            pid = await _run(reviewstore.neighbour, self.engine, f, self.heads(), None)
        q = urlencode(f.params())
        if pid is None:
            return RedirectResponse(f"/ui/queue?{urlencode({**f.params(), 'empty': '1'})}", status_code=303)
        return RedirectResponse(f"/ui/review/{pid}" + (f"?{q}" if q else ""), status_code=303)

    async def review(self, request: Request, prediction_id: str) -> HTMLResponse:
        return await self._review_page(request, prediction_id)

    async def _review_page(
        self, request: Request, prediction_id: str, error: str = "", status: int = 200
    ) -> HTMLResponse:
        user = await self.principal(request)
        engine, f, heads = self.engine, _filter(request), self.heads()
        item = await _run(reviewstore.get_prediction, engine, prediction_id)
        if item is None:
            raise UIError(404, "no such ticket in the prediction log")
        done = await _run(reviewstore.reviewed_by, engine, prediction_id)
        count = await _run(reviewstore.queue_count, engine, f, heads)
        last = await _run(reviewstore.last_action, engine, user.name)
        return self.page(
            "review.html",
            request,
            status,
            user=user,
            item=item,
            heads=self._head_views(item),
            done=done,
            count=count,
            f=f,
            q=urlencode(f.params()),
            last=last,
            error=error,
            labels={h.name: list(h.labels) for h in self.router().heads},
            text_fields=[(k, v) for k, v in item["inputs"].items() if k != "language"],
        )

    def _head_views(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for head in self.router().heads:
            pred = item["heads"].get(head.name)
            if pred is None:
                continue
            if head.multilabel:
                chosen = list(pred.get("labels") or [])
                scores = sorted((pred.get("scores") or {}).items(), key=lambda kv: -kv[1])
                options = [(lab, p) for lab, p in scores[:9]]
                options += [(lab, None) for lab in chosen if lab not in dict(options)]
            else:
                chosen = [pred.get("label")]
                options = [(x["label"], x["p"]) for x in (pred.get("top_k") or [])][:9]
                if pred.get("label") not in dict(options):
                    options.insert(0, (pred.get("label"), pred.get("confidence")))
            out.append(
                {
                    "name": head.name,
                    "multilabel": head.multilabel,
                    "chosen": chosen,
                    "options": options,
                    "confidence": pred.get("confidence"),
                    "requires_review": bool(pred.get("requires_review")),
                }
            )
        return out

    async def save(self, request: Request, prediction_id: str) -> Response:
        user = await self.principal(request)
        form = await request.form()
        self.check_csrf(form, user, request)
        engine = self.engine
        item = await _run(reviewstore.get_prediction, engine, prediction_id)
        if item is None:
            raise UIError(404, "no such ticket in the prediction log")
        try:
            labels = self._labels(form, item)
        except HTTPException as exc:
            return await self._review_page(request, prediction_id, error=str(exc.detail), status=422)
        note = _text(form.get("note"), self.s.max_note_chars).strip() or None
        try:
            await _run(reviewstore.save_review, engine, prediction_id, labels, user.name, note)
        except reviewstore.AlreadyReviewed:
            done = await _run(reviewstore.reviewed_by, engine, prediction_id)
            who = done["reviewer"] if done else "someone"
            return await self._review_page(
                request, prediction_id, status=409, error=f"{who} reviewed this ticket already; nothing was saved"
            )
        for head in labels:
            self.service.metrics.feedback.labels(head).inc()
        return self._to_next(request, prediction_id)

    def _labels(self, form, item: dict[str, Any]) -> dict[str, Any]:
        labels = {}
        for head in self.router().heads:
            if head.name not in item["heads"]:
                continue
            values = [v for v in form.getlist(f"h:{head.name}") if isinstance(v, str) and v]
            if head.multilabel:
                labels[head.name] = self.service.check_label(head.name, values)
            elif not values:
                raise HTTPException(422, f"choose a label for {head.name}")
            else:
                labels[head.name] = self.service.check_label(head.name, values[-1])
        if not labels:
            raise HTTPException(422, "this ticket has none of the current model's heads; review it via the API")
        return labels

    def _to_next(self, request: Request, after: str) -> RedirectResponse:
        q = urlencode({**_filter(request).params(), "after": after})
        return RedirectResponse(f"/ui/review/next?{q}", status_code=303)

    async def skip(self, request: Request, prediction_id: str) -> Response:
        user = await self.principal(request)
        self.check_csrf(await request.form(), user, request)
        if await _run(reviewstore.get_prediction, self.engine, prediction_id) is None:
            raise UIError(404, "no such ticket in the prediction log")
        await _run(reviewstore.record_skip, self.engine, prediction_id, user.name)
        return self._to_next(request, prediction_id)

    async def undo(self, request: Request) -> Response:
        user = await self.principal(request)
        self.check_csrf(await request.form(), user, request)
        action = await _run(reviewstore.undo_last, self.engine, user.name)
        if action is None:
            raise UIError(409, "nothing to undo")
        q = urlencode(_filter(request).params())
        return RedirectResponse(f"/ui/review/{action['prediction_id']}" + (f"?{q}" if q else ""), status_code=303)

    # -- overview --------------------------------------------------------------------------------------------
    async def overview_page(self, request: Request) -> HTMLResponse:
        user = await self.principal(request)
        engine, heads, now = self.engine, self.heads(), utcnow()
        today, week = overview.day_starts(now)
        since = now - timedelta(days=30)
        agree = await _run(overview.agreement, engine, heads.single, heads.multi, since)
        # the end of each of the last 13 days (just before midnight), and now
        times = [today - timedelta(days=d, microseconds=1) for d in range(12, -1, -1)] + [now]
        series = await _run(overview.queue_size_series, engine, times)
        drift = await overview.drift_status(self.service)
        head_rows = [
            (h, a["rate"], f"{a['agreed']}/{a['n']}" if a["n"] else "no reviews") for h, a in agree["heads"].items()
        ]
        worst = [x for x in agree["labels"] if x["n"] > x["agreed"]][:10]
        label_rows = [
            (f"{x['head']}: {x['label']}", 1 - x["rate"], f"{x['n'] - x['agreed']} of {x['n']} corrected")
            for x in worst
        ]
        return self.page(
            "overview.html",
            request,
            user=user,
            today=await _run(overview.reviewed_since, engine, today),
            week=await _run(overview.reviewed_since, engine, week),
            waiting=series[-1][1],
            agree=agree,
            worst=worst,
            head_chart=bar_chart(head_rows, "Agreement per head (last 30 days)"),
            label_chart=bar_chart(label_rows, "Share corrected per predicted label (last 30 days)", high_is_good=False)
            if label_rows
            else None,
            queue_chart=line_chart(series, "Tickets waiting for review at the end of each day, and now"),
            drift=drift,
        )

    # -- admin -----------------------------------------------------------------------------------------------
    async def admin_page(self, request: Request) -> HTMLResponse:
        return await self._admin_page(request)

    async def _admin_page(self, request: Request, error: str = "", status: int = 200) -> HTMLResponse:
        user = await self.admin(request)
        people = await _run(accounts.list_reviewers, self.engine)
        return self.page("admin.html", request, status, user=user, people=people, error=error, roles=accounts.ROLES)

    async def add_reviewer(self, request: Request) -> Response:
        user = await self.admin(request)
        form = await request.form()
        self.check_csrf(form, user, request)
        try:
            await _run(
                accounts.add_reviewer,
                self.engine,
                _text(form.get("name"), 200),
                _text(form.get("password"), 1000),
                _text(form.get("role"), 20) or "reviewer",
            )
        except ValueError as exc:
            return await self._admin_page(request, str(exc), 422)
        return RedirectResponse("/ui/admin", status_code=303)

    async def remove_reviewer(self, request: Request) -> Response:
        user = await self.admin(request)
        form = await request.form()
        self.check_csrf(form, user, request)
        await _run(accounts.remove_reviewer, self.engine, _text(form.get("name"), 200))
        return RedirectResponse("/ui/admin", status_code=303)


def _security_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def _text(value: Any, limit: int) -> str:
    """A form or query value as clean text (NULs dropped, lone surrogates escaped), at most ``limit`` characters."""
    if not isinstance(value, str):
        return ""
    try:
        return clean_text(value[:limit])
    except ValueError:
        return value[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def _int(value: Optional[str], default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _filter(request: Request) -> QueueFilter:
    p = request.query_params
    return QueueFilter(**{k: _text(p.get(k), 500) for k in ("head", "label", "language", "model_version")})


def _safe_next(value: Any) -> str:
    """Only a path on this page may be a login's destination (no open redirect)."""
    if isinstance(value, str) and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/queue"


def _page_links(page: int, pages: int) -> list[Optional[int]]:
    """Page numbers to show: first, last and two around the current one; None marks a gap."""
    keep = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    out: list[Optional[int]] = []
    for p in keep:
        if out and p - out[-1] > 1:
            out.append(None)
        out.append(p)
    return out


def mount_ui(app: FastAPI, service, api_key: Optional[str], settings: type[UISettings] = UISettings) -> bool:
    """Add the ``/ui`` routes and static files to ``app``; False (and a warning) when Jinja2 or python-multipart
    is missing, in which case the JSON API runs without the page."""
    from importlib.util import find_spec

    missing = [m for m in ("jinja2", "multipart") if find_spec(m) is None]
    if missing:
        log.warning("the /ui review page needs %s: pip install 'triagekit[serve]'", ", ".join(missing))
        return False
    from fastapi.staticfiles import StaticFiles

    ui = ReviewUI(service, api_key, settings)
    app.state.review_ui = ui
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")
    routes = [
        ("GET", "/ui", lambda: RedirectResponse("/ui/queue", status_code=303)),
        ("GET", "/ui/login", ui.login_form),
        ("POST", "/ui/login", ui.login),
        ("POST", "/ui/logout", ui.logout),
        ("GET", "/ui/queue", ui.queue),
        ("GET", "/ui/review/next", ui.next_item),
        ("GET", "/ui/review/{prediction_id}", ui.review),
        ("POST", "/ui/review/{prediction_id}", ui.save),
        ("POST", "/ui/review/{prediction_id}/skip", ui.skip),
        ("POST", "/ui/undo", ui.undo),
        ("GET", "/ui/overview", ui.overview_page),
        ("GET", "/ui/admin", ui.admin_page),
        ("POST", "/ui/admin/reviewers", ui.add_reviewer),
        ("POST", "/ui/admin/reviewers/remove", ui.remove_reviewer),
    ]
    for method, path, handler in routes:
        app.add_api_route(path, handler, methods=[method], include_in_schema=False)

    @app.exception_handler(UIError)
    async def _ui_error(request: Request, exc: UIError) -> HTMLResponse:
        resp = ui.page("error.html", request, exc.status, message=exc.message)
        resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/ui/login?{urlencode({'next': exc.next_url})}", status_code=303)

    return True
