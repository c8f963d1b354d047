"""The Dagster UI in a real headless Chromium: the asset graph, search_index's partitions and
metadata, and what issue 34 promises: a green first screen when everything is built, tables
rather than JSON on the evaluations' overviews, one served version on every page and in
`ai-assets promote --list`, a run list of one tag a run.

Needs Debian's `chromium` package and the `playwright` Python package (the test extra); no
browser is downloaded. Screenshots go to $AI_ASSETS_SCREENSHOTS, or the test's temp dir.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ai_assets_tests.system import free_port, missing_system_package
from ai_assets_tests.test_cli import ai_assets

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
LOCATION = "__repository__@ai_assets.definitions"  # `-m ai_assets.definitions` names the code location
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
# JSON as the UI prints a JSON metadata value: an object or a list of objects, keys quoted.
RAW_JSON = re.compile(r'[\[{]\s*"[^"\n]+"\s*:')


def chromium_executable() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    missing_system_package("Chromium not found: install Debian's package (`apt-get install -y chromium`); .ci/run does")


@pytest.fixture
def ui_env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "DAGSTER_", "OPENAI_"))}
    env.update(
        AI_ASSETS_DATA_DIR=str(data_dir), DAGSTER_HOME=str(tmp_path / "dagster_home"), FRESHNESS_DAEMON_INTERVAL_SECONDS="2"
    )
    return env


@pytest.fixture
def webserver(tmp_path: Path, ui_env: dict[str, str]) -> Iterator[str]:
    env = ui_env
    ai_assets("build", env=env)
    port = free_port()
    log_path = tmp_path / "webserver.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            # `dagster dev`: the webserver and the daemon, which evaluates the freshness policies.
            [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
             "-m", "ai_assets.definitions"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/server_info", timeout=2):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"dagster-webserver did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
                    time.sleep(1)
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


def metadata_value(page, key: str) -> str:  # noqa: ANN001 (playwright's Page, imported lazily)
    """The value cell of the metadata row ``key`` on an asset's page."""
    row = page.get_by_role("row").filter(has=page.get_by_text(key, exact=True)).first
    return row.get_by_role("cell").last.inner_text().strip()


def test_the_ui_shows_the_graph_partitions_and_metadata(webserver: str, ui_env: dict[str, str], tmp_path: Path) -> None:
    executable = chromium_executable()
    try:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[test]'")
    screenshots = Path(os.environ.get("AI_ASSETS_SCREENSHOTS") or tmp_path / "screenshots")
    screenshots.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)

        # The global asset graph shows the four layers; each group's graph shows its assets.
        page.goto(f"{webserver}/asset-groups")
        # A fresh instance greets the first visitor with a newsletter dialog; dismiss it.
        try:
            page.get_by_role("button", name="Skip").click(timeout=10_000)
        except PlaywrightTimeout:
            pass
        for group in ("ingestion", "embeddings", "index", "evaluation"):
            expect(page.get_by_text(group, exact=True).first).to_be_visible()
        # A green first screen: each group's count says its assets are materialized (source_files:
        # observed), none "never materialized". The counts' meaning is in their tooltips.
        counts = page.locator("foreignObject").get_by_text(re.compile(r"^\d+$"))
        expect(counts).to_have_count(4)  # one count a group: all of one status
        expect(page.get_by_text("(fetching statuses)")).to_have_count(0)
        page.screenshot(path=screenshots / "asset_graph.png")
        total = 0
        for count in counts.all():
            number = int(count.inner_text())
            count.hover()
            materialized = re.compile(rf"^{number} materialized assets?$")
            expect(page.get_by_role("tooltip").filter(has_text=materialized).first).to_be_visible()
            page.mouse.move(0, 0)
            total += number
        assert total == 11  # every asset of the graph, source_files included
        groups = {
            "ingestion": ("source_files", "source_documents", "document_chunks"),
            "embeddings": ("chunk_embeddings",),
            "index": ("search_index", "served_index"),
            "evaluation": ("retrieval_evaluation", "answer_evaluation", "model_leaderboard"),
        }
        for group, assets in groups.items():
            page.goto(f"{webserver}/locations/{LOCATION}/asset-groups/{group}")
            for asset in assets:
                expect(page.get_by_text(asset, exact=True).first).to_be_visible()
            expect(page.get_by_text("Loading...")).to_have_count(0)
            page.screenshot(path=screenshots / f"group_{group}.png")

        # search_index: its embedder partition and a metadata value of the latest materialization.
        page.goto(f"{webserver}/assets/search_index?view=partitions")
        expect(page.get_by_text("minilm").first).to_be_visible()
        page.screenshot(path=screenshots / "search_index_partitions.png")
        page.goto(f"{webserver}/assets/search_index?view=events&partition=minilm")
        expect(page.get_by_text("table_version").first).to_be_visible()
        expect(page.get_by_text("rows_by_source").first).to_be_visible()
        page.screenshot(path=screenshots / "search_index_events.png")

        # Its checks, and its overview with the freshness policy.
        page.goto(f"{webserver}/assets/search_index?view=checks")
        expect(page.get_by_text("index_rows_match_chunks").first).to_be_visible()
        page.screenshot(path=screenshots / "search_index_checks.png")
        page.goto(f"{webserver}/assets/search_index")
        expect(page.get_by_text("Fails if more than 26 hours since last materialization").first).to_be_visible()
        # The daemon evaluates the policy within seconds: the index was just built, so it passes.
        for _ in range(30):
            if page.get_by_text("Not evaluated").count() == 0:
                break
            page.wait_for_timeout(2000)
            page.reload()
        expect(page.get_by_text("Passing").first).to_be_visible()
        page.screenshot(path=screenshots / "search_index_overview.png", full_page=True)

        # served_index: what is served, the candidate, the gate's result, sample answers.
        page.goto(f"{webserver}/assets/served_index?view=events&partition=minilm")
        for key in ("served_version", "candidate_version", "decision", "sample_answers"):
            expect(page.get_by_text(key).first).to_be_visible()
        page.screenshot(path=screenshots / "served_index_events.png")

        # The overviews show tables, never a JSON copy of them; each says which partition it shows.
        overviews = {
            "retrieval_evaluation": "scores", "served_index": "served_scores", "answer_evaluation": "results",
            "model_leaderboard": "leaderboard",
        }
        for asset, table in overviews.items():
            page.goto(f"{webserver}/assets/{asset}")
            expect(page.get_by_text(table, exact=True).first).to_be_visible()
            expect(page.get_by_text("Show schema").first).to_be_visible()
            text = page.locator("body").inner_text()
            assert not RAW_JSON.search(text), f"{asset}: {RAW_JSON.search(text).group()!r}"
            if asset != "model_leaderboard":
                assert metadata_value(page, "partition") == "minilm (1 of 1)"
            if asset in ("retrieval_evaluation", "served_index"):
                page.screenshot(path=screenshots / f"{asset}.png")

        # One served version: served_index says it, the answer evaluation read it, the CLI agrees,
        # and search_index (which records its candidate before the evaluation) does not say one.
        page.goto(f"{webserver}/assets/served_index")
        served = metadata_value(page, "served_version")
        assert served.isdigit() and metadata_value(page, "candidate_version") == "none"
        page.goto(f"{webserver}/assets/answer_evaluation")
        assert metadata_value(page, "index_version") == served
        page.goto(f"{webserver}/assets/search_index")
        expect(page.get_by_text("rows_by_source", exact=True).first).to_be_visible()
        expect(page.get_by_text("served_version", exact=True)).to_have_count(0)
        assert f"serving v{served}," in ai_assets("promote", "--list", env=ui_env).stdout

        # The run list: one tag a run besides its partition, which says that `ai-assets build` ran it.
        page.goto(f"{webserver}/runs")
        expect(page.get_by_text("index_and_evaluate_job").first).to_be_visible()
        build_tags = page.get_by_text(re.compile(r"^ai_assets/build: "))
        expect(build_tags).to_have_count(5)  # 2 sources ingested and embedded, 1 index
        assert page.get_by_text(re.compile(r"^ai_assets/(?!build: )")).count() == 0
        page.screenshot(path=screenshots / "runs.png")

        # source_documents: a source partition.
        page.goto(f"{webserver}/assets/source_documents?view=partitions")
        expect(page.get_by_text("alpha").first).to_be_visible()
        page.screenshot(path=screenshots / "source_documents_partitions.png")
        browser.close()
    print(f"screenshots: {sorted(str(path) for path in screenshots.glob('*.png'))}")
