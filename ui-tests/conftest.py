"""Browser tests: Playwright drives Debian's Chromium against a real ``jupyter lab``.

One ``jupyter lab`` (with the cellops server extension, a token and XSRF left on)
serves the whole session. The session logs in once by visiting ``/lab?token=…``;
every test then gets a fresh browser context carrying that login cookie and opens
its own workspace (``/lab/workspaces/<unique>?reset``) so it never sees the tabs
of an earlier test. Console errors and uncaught page errors fail the test.
Screenshots of what each test checks go to ``ui-tests/artifacts/``.

Chromium missing (``/usr/bin/chromium``, or ``CELLOPS_CHROMIUM``): the tests skip,
unless ``CELLOPS_REQUIRE_BROWSER`` is set (CI), then they fail.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    WebError,
    expect,
)

# ui-tests is not a package: make `tests.support` importable from the repo root.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support import JupyterServer, TeamBackend, free_port  # noqa: E402
from tests.xdist_groups import pytest_itemcollected  # noqa: E402, F401 - a hook

# Debian's Chromium (a Playwright browser download is impossible here); another path can be
# given with CELLOPS_CHROMIUM.
CHROMIUM = Path(os.environ.get("CELLOPS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
KERNEL = "Python 3 (ipykernel)"
TIMEOUT_MS = 20_000

# Console messages of type "error" that are NOT a failure. Each entry must say why.
# Empty on purpose: a clean JupyterLab with cellops logs no error here (the only
# messages seen are "debug" ones such as 'Starting application in workspace').
BENIGN_CONSOLE_ERRORS: list[re.Pattern[str]] = []

expect.set_options(timeout=TIMEOUT_MS)


# -- browser -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"no Chromium at {CHROMIUM} (install it: apt-get install -y chromium)"
        if os.environ.get("CELLOPS_REQUIRE_BROWSER"):
            pytest.fail(f"CELLOPS_REQUIRE_BROWSER is set but there is {reason}")
        pytest.skip(f"browser tests need Chromium: {reason}")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def browser_type_launch_args(
    browser_type_launch_args: dict[str, Any], chromium: str
) -> dict[str, Any]:
    # pytest-playwright's --browser-channel does not find Debian's Chromium; point at it.
    return {**browser_type_launch_args, "executable_path": chromium, "args": CHROMIUM_ARGS}


# -- the server --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jupyter(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[JupyterServer]:
    """One real `jupyter lab` for the session: token and XSRF on, cellops enabled."""
    tmp = tmp_path_factory.mktemp("ui")
    settings = tmp / "lab-settings"
    # No "get Jupyter news?" toast over the notebook (and no request to the internet).
    notification = (
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    )
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    server = JupyterServer(
        tmp,
        app="lab",
        # Settings and workspaces in the temp dir: nothing read from or left in ~/.jupyter.
        env={
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        },
        # window.jupyterapp, so tests can read what JupyterLab itself holds (cell ids, kernel);
        # a serving port of its own, so deployments never collide with another server's.
        extra_args=[
            "--LabApp.expose_app_in_browser=True",
            f"--CellopsConfig.serving_port={free_port()}",
            # Webhook tests deliver to a receiver on loopback (refused without this).
            "--CellopsConfig.webhook_allow_private_targets=True",
        ],
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def login_state(browser: Browser, jupyter: JupyterServer) -> dict[str, Any]:
    """Log in once, as a person does (``/lab?token=…``), and keep the cookies."""
    # Auth really is on: no token, no access.
    r = requests.get(f"{jupyter.url}/api/contents", timeout=10)
    assert r.status_code == 403, f"the server answers without a token: {r.status_code}"
    context = browser.new_context()
    console = ConsoleWatcher(context)
    try:
        page = context.new_page()
        # The answer to this request sets the login and _xsrf cookies; the app need not load.
        page.goto(f"{jupyter.url}/lab?token={jupyter.token}", wait_until="domcontentloaded")
        assert page.url.startswith(f"{jupyter.url}/lab"), f"login failed: landed on {page.url}"
        # XSRF really is on: the login cookie alone does not let a POST through.
        r2 = context.request.post(f"{jupyter.url}/api/contents", data="{}")
        assert r2.status == 403 and "_xsrf" in r2.text(), f"XSRF is off: {r2.status} {r2.text()}"
        console.check("logging in")
        cookies = context.storage_state()["cookies"]
    finally:
        context.close()
    assert any(c["name"].startswith("username-") for c in cookies), cookies
    return {"cookies": cookies, "origins": []}


@pytest.fixture(scope="session")
def browser_context_args(
    browser_context_args: dict[str, Any], login_state: dict[str, Any]
) -> dict[str, Any]:
    return {
        **browser_context_args,
        "viewport": {"width": 1400, "height": 900},
        "storage_state": login_state,
    }


# -- console errors ----------------------------------------------------------------------------


class ConsoleWatcher:
    """Collects console.error messages and uncaught errors of every page in a context."""

    def __init__(self, context: BrowserContext) -> None:
        self.errors: list[str] = []
        self.reported = 0
        context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)

    def _on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        text = msg.text
        if any(p.search(text) for p in BENIGN_CONSOLE_ERRORS):
            return
        where = msg.location or {}
        self.errors.append(
            f"console.error at {where.get('url', '?')}:{where.get('lineNumber', '?')}: {text}"
        )

    def _on_web_error(self, error: WebError) -> None:
        self.errors.append(f"uncaught error in the page: {error.error}")

    def check(self, when: str) -> None:
        new = self.errors[self.reported :]
        self.reported = len(self.errors)
        if new:
            raise AssertionError(f"browser console errors while {when}:\n" + "\n".join(new))


CONSOLE = pytest.StashKey[ConsoleWatcher]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    result = yield
    # The test body passed: any console error makes it fail (not merely error in teardown).
    watcher = item.stash.get(CONSOLE, None)
    if watcher is not None:
        watcher.check("the test ran")
    return result


# -- driving JupyterLab ---------------------------------------------------------------------


def wait_for_app(page: Page) -> None:
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=TIMEOUT_MS)
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")


class Lab:
    """What a test does in JupyterLab, through its UI; reads what JupyterLab holds."""

    def __init__(self, page: Page, server: JupyterServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name

    # navigation

    def open(self, path: str | None = None, page: Page | None = None) -> None:
        """A fresh workspace (nothing restored from earlier tests), optionally opening a file."""
        if page is not None:
            self.page = page
        self.page.set_default_timeout(TIMEOUT_MS)
        workspace = f"{re.sub(r'[^a-zA-Z0-9]+', '-', self.name)[:40]}-{uuid.uuid4().hex[:8]}"
        tree = f"/tree/{quote(path)}" if path else ""
        self.page.goto(f"{self.server.url}/lab/workspaces/{workspace}{tree}?reset")
        wait_for_app(self.page)
        expect(self.page.locator("#jp-main-dock-panel")).to_be_visible()

    def new_notebook(self) -> str:
        """File > New > Notebook, pick the Python 3 kernel; answers the notebook's path."""
        page = self.page
        page.locator("#jp-menu-panel").get_by_role("menuitem", name="File", exact=True).click()
        page.locator(".lm-Menu-item[data-type='submenu']", has_text="New").first.hover()
        page.get_by_role("menuitem", name="Notebook", exact=True).click()
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("Select Kernel")
        dialog.get_by_role("combobox").select_option(label=KERNEL)
        self.accept(dialog, "Select")
        self.wait_for_kernel()
        path = self.page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path")
        assert path.endswith(".ipynb"), path
        return path

    def wait_for_kernel(self) -> None:
        """Kernel-ready race: the notebook may look idle before its kernel is attached, and a
        Shift+Enter then does nothing. Wait for "<kernel> | Idle" in the status bar and for
        JupyterLab's own kernel connection to be connected and idle."""
        status = self.page.locator("#jp-main-statusbar").get_by_text(f"{KERNEL} | Idle", exact=True)
        expect(status).to_be_visible()
        self.page.wait_for_function(
            """() => {
                const k = window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel;
                return k?.connectionStatus === 'connected' && k?.status === 'idle';
            }"""
        )

    # cells

    @property
    def cells(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")

    def run_cell(self, index: int, code: str, count: int, *, replace: bool = False) -> None:
        """Type ``code`` into cell ``index`` and press Shift+Enter; wait for prompt ``[count]:``."""
        editor = self.cells.nth(index).locator(".cm-content")
        editor.click()
        if replace:
            self.page.keyboard.press("Control+a")
        self.page.keyboard.type(code)
        assert self.sources()[index] == code, self.sources()
        self.page.keyboard.press("Shift+Enter")
        # The prompt number is the kernel's execution count: proof the cell really ran.
        expect(self.cells.nth(index).locator(".jp-InputPrompt")).to_have_text(f"[{count}]:")

    def output(self, index: int) -> Locator:
        return self.cells.nth(index).locator(".jp-OutputArea-output")

    def sources(self) -> list[str]:
        return self._cells_model("c.sharedModel.getSource()")

    def cell_ids(self) -> list[str]:
        """The ids JupyterLab gave the cells (what it sends as cellId with each request)."""
        return self._cells_model("c.id")

    def _cells_model(self, expression: str) -> list[Any]:
        return self.page.evaluate(
            f"""() => {{
                const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
                return Array.from({{length: cells.length}}, (_, i) => cells.get(i)).map(c => {expression});
            }}"""
        )

    def kernel_id(self) -> str:
        return self.page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id"
        )

    # menus and dialogs

    def restart_kernel(self) -> None:
        """Kernel > Restart Kernel…, confirm; wait until the new kernel process is idle."""
        page = self.page
        page.evaluate(
            """() => {
                const ctx = window.jupyterapp.shell.currentWidget.sessionContext;
                window.cellopsTestStatuses = [];
                ctx.statusChanged.connect((_, status) => window.cellopsTestStatuses.push(status));
            }"""
        )
        page.locator("#jp-menu-panel").get_by_role("menuitem", name="Kernel", exact=True).click()
        page.locator(".lm-Menu").get_by_text("Restart Kernel…", exact=True).click()
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("Restart Kernel?")
        self.screenshot("restart-dialog")
        self.accept(dialog, "Restart")
        page.wait_for_function(
            """() => {
                const s = window.cellopsTestStatuses;
                const i = s.findIndex(x => x === 'restarting' || x === 'autorestarting');
                return i >= 0 && s.slice(i + 1).includes('idle');
            }"""
        )
        self.wait_for_kernel()

    def save(self, rename_to: str | None = None) -> str:
        """Ctrl+S. JupyterLab asks to rename an untitled notebook on its first save:
        keep the name (default) or give ``rename_to``. Answers the path after saving."""
        page = self.page
        before = page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path")
        page.keyboard.press("Control+s")
        dialog = page.locator(".jp-Dialog")
        if posixpath.basename(before).startswith("Untitled"):
            expect(dialog).to_contain_text("Rename file")
            dialog.get_by_role("textbox").fill(rename_to or posixpath.basename(before))
            self.accept(dialog, "Rename and Save")
        want = posixpath.join(posixpath.dirname(before), rename_to) if rename_to else before
        page.wait_for_function(
            """want => {
                const context = window.jupyterapp.shell.currentWidget.context;
                return context.path === want && !context.model.dirty;
            }""",
            arg=want,
        )
        return want

    @staticmethod
    def accept(dialog: Locator, label: str) -> None:
        """Click a dialog's main button, checking it says what we expect."""
        button = dialog.locator("button.jp-mod-accept")
        expect(button).to_have_text(label)
        button.click()
        expect(dialog).to_be_hidden()

    # the cellops sidebar

    @property
    def sidebar(self) -> Locator:
        return self.page.locator("#cellops-sidebar")

    def open_sidebar(self) -> Locator:
        """Click cellops' tab in the right sidebar (as a person does), unless it is open."""
        if not self.sidebar.is_visible():
            self.page.locator(
                ".jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id='cellops-sidebar']"
            ).click()
        expect(self.sidebar).to_be_visible()
        return self.sidebar

    def sidebar_tab(self, tab: str) -> None:
        self.sidebar.locator(f"button.cellops-tab[data-tab='{tab}']").click()

    def open_run(self, index: int = 0) -> Locator:
        """Click the index-th run (newest first); answers its timeline."""
        self.sidebar_tab("runs")
        self.sidebar.locator(".cellops-run").nth(index).click()
        timeline = self.sidebar.locator(".cellops-timeline")
        expect(timeline).to_be_visible()
        return timeline

    def command(self, command_id: str, args: dict[str, Any] | None = None) -> None:
        """Run a JupyterLab command and wait for it. Its result (often a widget) stays in the
        page: Playwright cannot serialize a widget's object graph and fails now and then."""
        self.page.evaluate(
            "async ([id, args]) => { await window.jupyterapp.commands.execute(id, args); }",
            [command_id, args or {}],
        )

    def set_theme(self, theme: str) -> None:
        self.command("apputils:change-theme", {"theme": theme})
        self.page.wait_for_function("t => document.body.dataset.jpThemeName === t", arg=theme)
        # JupyterLab shows its splash screen while the theme's CSS loads.
        expect(self.page.locator("#jupyterlab-splash")).to_have_count(0)

    def screenshot(self, step: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{step}.png"
        self.page.screenshot(path=path)
        return path


@pytest.fixture
def lab(page: Page, jupyter: JupyterServer, request: pytest.FixtureRequest) -> Iterator[Lab]:
    watcher = ConsoleWatcher(page.context)
    request.node.stash[CONSOLE] = watcher
    name = request.node.originalname.removeprefix("test_")
    lab = Lab(page, jupyter, name)
    lab.open()
    yield lab
    # Errors logged after the test body (e.g. while pages close) are reported here.
    watcher.check("the test finished")


@contextmanager
def member_lab(
    tmp: Path, db_url: str, user: str, role: str = "editor"
) -> Iterator[tuple[TeamBackend, JupyterServer, str]]:
    """A team backend on ``db_url`` and the JupyterLab of ``user`` (with ``role``) pointed
    at it with their token; answers both and the token."""
    backend = TeamBackend(db_url, tmp / "artifacts")
    token = backend.add_user(user, role)
    backend.start()
    settings = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No "get Jupyter news?" toast (and no request to the internet): only cellops' toasts.
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    lab = JupyterServer(
        tmp / user,
        app="lab",
        env={
            "CELLOPS_BACKEND_URL": backend.url,
            "CELLOPS_TOKEN": token,
            "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        },
        extra_args=["--LabApp.expose_app_in_browser=True"],
    ).start()
    try:
        yield backend, lab, token
    finally:
        lab.stop()
        backend.stop()
