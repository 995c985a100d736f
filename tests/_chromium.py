"""Headless Chromium for tests, driven over the DevTools protocol on a pipe.

Chromium's ``--remote-debugging-pipe`` speaks the DevTools protocol (CDP) on file descriptors 3
(commands in) and 4 (answers and events out), one JSON message per NUL-terminated chunk. That
needs no websocket library and no downloaded browser build: Debian's ``chromium`` package is
enough (``scripts/ci_chromium.sh`` installs it).

:meth:`Chromium.visit` opens a URL in a fresh tab and reports what a person would have seen
go wrong: console errors (``console.error``, ``console.assert``), uncaught exceptions, browser
log errors (failed resource loads, CSP violations), and every JavaScript dialog that opened
(``alert``, ``confirm``, ``prompt``; each is dismissed so the page goes on). It also returns
the page's visible text and a PNG screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BINARY_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    """Path of a Chromium binary (``$CHROMIUM`` first), or None."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in BINARY_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class DevToolsError(RuntimeError):
    """A DevTools command failed, timed out, or the browser went away."""


@dataclass
class Visit:
    """What one page visit showed."""

    url: str
    status: int | None
    text: str
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    location: str = ""
    """Where the tab was at the end (after ``then``, the page it led to)."""

    def save_screenshot(self, path: Path) -> Path:
        path.write_bytes(self.screenshot)
        return path


class Chromium:
    """One headless browser process; use as a context manager."""

    def __init__(
        self, binary: str, *, window: tuple[int, int] = (1280, 1000), log_dir: Path | None = None
    ) -> None:
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        log_dir = Path(log_dir or self._profile)
        self.log_path = log_dir / "chromium.log"
        args = [
            binary,
            *FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={window[0]},{window[1]}",
            "about:blank",
        ]
        # fd 3 <- our stdin pipe, fd 4 -> our stdout pipe; Chromium's own stdio goes elsewhere.
        shell = 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null'
        self._log = open(self.log_path, "wb")  # noqa: SIM115  # closed in close()
        self._proc = subprocess.Popen(
            ["sh", "-c", shell, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self._write_lock = threading.Lock()
        self._cond = threading.Condition()
        self._next_id = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.version = self.send("Browser.getVersion", timeout=30)

    # --- transport -------------------------------------------------------------------------
    def _read_loop(self) -> None:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        buf = b""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                self._dispatch(json.loads(raw))
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("method") == "Page.javascriptDialogOpening":
            # Dismiss at once, or the page (and our later commands to it) would hang.
            self._post("Page.handleJavaScriptDialog", {"accept": False}, message.get("sessionId"))
        with self._cond:
            if "id" in message:
                self._answers[message["id"]] = message
            else:
                self._events.append(message)
            self._cond.notify_all()

    def _post(self, method: str, params: dict[str, Any] | None, session_id: str | None) -> int:
        with self._write_lock:
            self._next_id += 1
            message: dict[str, Any] = {"id": self._next_id, "method": method}
            message["params"] = params or {}
            if session_id:
                message["sessionId"] = session_id
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps(message).encode() + b"\0")
                self._proc.stdin.flush()
            except (BrokenPipeError, ValueError) as exc:
                raise DevToolsError(f"Chromium is gone ({exc}); log: {self.log_tail()}") from None
            return self._next_id

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Run one DevTools command and return its result."""
        msg_id = self._post(method, params, session_id)
        deadline = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self._answers:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    why = "closed" if self._closed else f"no answer after {timeout:g} s"
                    raise DevToolsError(f"{method}: {why}; log: {self.log_tail()}")
                self._cond.wait(left)
            answer = self._answers.pop(msg_id)
        if "error" in answer:
            raise DevToolsError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def _wait_event(self, method: str, session_id: str, timeout: float) -> dict[str, Any]:
        """The next event ``method`` of the session, taken off the queue."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self._events:
                    if event.get("method") == method and event.get("sessionId") == session_id:
                        self._events.remove(event)
                        return event
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise DevToolsError(f"no {method} within {timeout:g} s; log: {self.log_tail()}")
                self._cond.wait(left)

    def _take_events(self, session_id: str) -> list[dict[str, Any]]:
        with self._cond:
            mine = [e for e in self._events if e.get("sessionId") == session_id]
            self._events = [e for e in self._events if e.get("sessionId") != session_id]
        return mine

    # --- pages -----------------------------------------------------------------------------
    def visit(
        self, url: str, *, then: str | None = None, settle_s: float = 0.3, timeout: float = 30.0
    ) -> Visit:
        """Load ``url`` in a new tab; return its text, problems and a full-page screenshot.

        ``then``: a script run once the page has loaded that leads to another page (submits a
        form, follows a link); the visit waits for that page and reports on it, with the
        problems of both. A navigation the page's policy refuses fails the visit (no load).
        """
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.send(f"{domain}.enable", session_id=session)
            self._take_events(session)  # drop what about:blank said
            self.send("Page.navigate", {"url": url}, session_id=session)
            self._wait_event("Page.loadEventFired", session, timeout)
            if then is not None:
                self.send("Runtime.evaluate", {"expression": then}, session_id=session)
                self._wait_event("Page.loadEventFired", session, timeout)
            time.sleep(settle_s)  # late console messages and timers
            text = self._evaluate("document.body ? document.body.innerText : ''", session)
            location = self._evaluate("location.href", session)
            shot = self.send(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True},
                session_id=session,
                timeout=timeout,
            )
            visit = Visit(
                url=url,
                status=None,
                text=text,
                screenshot=base64.b64decode(shot["data"]),
                location=location,
            )
            for event in self._take_events(session):
                _record(visit, event)
            return visit
        finally:
            try:
                self.send("Target.closeTarget", {"targetId": target})
            except DevToolsError:
                pass

    def _evaluate(self, expression: str, session_id: str) -> Any:
        answer = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True},
            session_id=session_id,
        )
        return answer["result"].get("value", "")

    # --- life ------------------------------------------------------------------------------
    def log_tail(self, n: int = 20) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def close(self) -> None:
        try:
            if self._proc.poll() is None:
                try:
                    self._post("Browser.close", None, None)
                    self._proc.wait(timeout=10)
                except (DevToolsError, subprocess.TimeoutExpired):
                    pass
            if self._proc.poll() is None:
                os.killpg(self._proc.pid, 9)
                self._proc.wait(timeout=10)
        finally:
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _record(visit: Visit, event: dict[str, Any]) -> None:
    method = event.get("method")
    params = event.get("params", {})
    if method == "Page.javascriptDialogOpening":
        visit.dialogs.append(f"{params.get('type')}: {params.get('message')}")
    elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        args = params.get("args", [])
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
        visit.console_errors.append(f"console.{params['type']}: {text}")
    elif method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        description = details.get("exception", {}).get("description") or details.get("text")
        visit.console_errors.append(f"exception: {description}")
    elif method == "Log.entryAdded":
        entry = params.get("entry", {})
        if entry.get("level") == "error":
            visit.console_errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
    elif method == "Network.responseReceived" and params.get("type") == "Document":
        if visit.status is None:
            visit.status = params.get("response", {}).get("status")
