"""Every setting is validated when the settings load: one line naming the variable, its value
and what is allowed, before anything runs (the CLI, and the code location Dagster loads)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ai_assets.settings import SettingsError, load_settings, unknown_variables

BAD_SETTINGS = [
    # (environment, the whole error line)
    (
        {"AI_ASSETS_CHUNK_MAX_TOKENS": "10", "AI_ASSETS_CHUNK_OVERLAP_TOKENS": "500"},
        "AI_ASSETS_CHUNK_MAX_TOKENS=10: must be greater than or equal to 16",
    ),
    (
        {"AI_ASSETS_CHUNK_MAX_TOKENS": "100", "AI_ASSETS_CHUNK_OVERLAP_TOKENS": "51"},
        "AI_ASSETS_CHUNK_OVERLAP_TOKENS=51: must be between 0 and half of AI_ASSETS_CHUNK_MAX_TOKENS=100 (50)",
    ),
    (
        {"AI_ASSETS_CHUNK_MAX_TOKENS": "300"},
        "AI_ASSETS_CHUNK_MAX_TOKENS=300: must be between 16 and 254, the smallest enabled model window",
    ),
    (
        {"AI_ASSETS_CHUNK_OVERLAP_TOKENS": "-1"},
        "AI_ASSETS_CHUNK_OVERLAP_TOKENS=-1: must be greater than or equal to 0",
    ),
    (
        {"AI_ASSETS_REFRESH_CRON": "not a cron"},
        (
            "AI_ASSETS_REFRESH_CRON='not a cron': must be a cron expression of 5 fields (minute hour day-of-month "
            "month day-of-week, e.g. '0 3 * * *') or @hourly/@daily/@weekly/@monthly"
        ),
    ),
    (
        {"AI_ASSETS_REFRESH_CRON": "61 3 * * *"},
        (
            "AI_ASSETS_REFRESH_CRON='61 3 * * *': must be a cron expression of 5 fields (minute hour day-of-month "
            "month day-of-week, e.g. '0 3 * * *') or @hourly/@daily/@weekly/@monthly"
        ),
    ),
    ({"AI_ASSETS_EMBED_BATCH_SIZE": "0"}, "AI_ASSETS_EMBED_BATCH_SIZE=0: must be greater than 0"),
    (
        {"AI_ASSETS_MAX_DOCUMENT_BYTES": "lots"},
        "AI_ASSETS_MAX_DOCUMENT_BYTES=lots: must be a valid integer, unable to parse string as an integer",
    ),
    (
        {"AI_ASSETS_LOCAL_PRECISION": "fp8"},
        "AI_ASSETS_LOCAL_PRECISION=fp8: must be 'auto', 'fp32', 'fp32-onnx', 'bf16', 'bf16-autocast' or 'int8'",
    ),
    (
        {"AI_ASSETS_EMBEDDERS": "minilm,nonsense"},
        "AI_ASSETS_EMBEDDERS=minilm,nonsense: unknown embedder(s) nonsense; known: minilm, openai-small",
    ),
    (
        {"AI_ASSETS_EMBEDDERS": "openai-small"},
        "AI_ASSETS_EMBEDDERS=openai-small: openai-small needs OPENAI_API_KEY or OPENAI_BASE_URL to be set",
    ),
    (
        {"AI_ASSETS_FRESHNESS_FAIL_MINUTES": "60", "AI_ASSETS_FRESHNESS_WARN_MINUTES": "60"},
        "AI_ASSETS_FRESHNESS_WARN_MINUTES=60: must be less than AI_ASSETS_FRESHNESS_FAIL_MINUTES=60 (0: no warning)",
    ),
    (
        {"AI_ASSETS_QUALITY_MIN_NDCG_AT_10": "1.5"},
        "AI_ASSETS_QUALITY_MIN_NDCG_AT_10=1.5: must be less than or equal to 1",
    ),
    ({"AI_ASSETS_SENSOR_INTERVAL_SECONDS": "0"}, "AI_ASSETS_SENSOR_INTERVAL_SECONDS=0: must be greater than or equal to 1"),
    (
        {"AI_ASSETS_AUTOMATION_INTERVAL_SECONDS": "0"},
        "AI_ASSETS_AUTOMATION_INTERVAL_SECONDS=0: must be greater than or equal to 1",
    ),
    ({"AI_ASSETS_ANN_MIN_ROWS": "0"}, "AI_ASSETS_ANN_MIN_ROWS=0: must be greater than or equal to 1"),
    ({"AI_ASSETS_ANN_MIN_RECALL": "-0.1"}, "AI_ASSETS_ANN_MIN_RECALL=-0.1: must be greater than or equal to 0"),
    (
        {"OPENAI_BASE_URL": "localhost:8000"},
        "OPENAI_BASE_URL=localhost:8000: must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/v1",
    ),
    (
        {"AI_ASSETS_DAGSTER_UI_URL": "ftp://ui"},
        "AI_ASSETS_DAGSTER_UI_URL=ftp://ui: must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/v1",
    ),
    ({"AI_ASSETS_CHAT_MODEL": ""}, "AI_ASSETS_CHAT_MODEL='': must have at least 1 character"),
    (
        {"OPENAI_API_KEY": "sk-x", "AI_ASSETS_OPENAI_EMBEDDING_DIMENSIONS": "2000"},
        "AI_ASSETS_OPENAI_EMBEDDING_DIMENSIONS=2000: must be less than or equal to 1536",
    ),
    (
        {"AI_ASSETS_OPENAI_TIMEOUT_SECONDS": "0"},
        "AI_ASSETS_OPENAI_TIMEOUT_SECONDS=0: must be greater than 0",
    ),
    ({"AI_ASSETS_OPENAI_MAX_RETRIES": "-1"}, "AI_ASSETS_OPENAI_MAX_RETRIES=-1: must be greater than or equal to 0"),
    (
        {"AI_ASSETS_OPENAI_REQUESTS_PER_MINUTE": "0"},
        "AI_ASSETS_OPENAI_REQUESTS_PER_MINUTE=0: must be greater than 0",
    ),
    ({"AI_ASSETS_OPENAI_TOKENS_PER_MINUTE": "0"}, "AI_ASSETS_OPENAI_TOKENS_PER_MINUTE=0: must be greater than 0"),
    (
        {"AI_ASSETS_OPENAI_PRICES": "cheap"},
        'AI_ASSETS_OPENAI_PRICES=cheap: must be a JSON object, e.g. {"key": "value"}',
    ),
    (
        {"AI_ASSETS_OPENAI_PRICES": '{"text-embedding-3-small": -1}'},
        (
            "AI_ASSETS_OPENAI_PRICES='{\"text-embedding-3-small\": -1}': prices must be >= 0 USD per million tokens "
            "(negative: text-embedding-3-small)"
        ),
    ),
    # Storage options may carry credentials: the variable is named, its value is not shown.
    (
        {"AI_ASSETS_LANCEDB_STORAGE_OPTIONS": "aws_secret_access_key=hunter2"},
        'AI_ASSETS_LANCEDB_STORAGE_OPTIONS=<not shown>: must be a JSON object, e.g. {"key": "value"}',
    ),
]


@pytest.mark.parametrize(("environment", "line"), BAD_SETTINGS, ids=[line.split("=")[0] for _, line in BAD_SETTINGS])
def test_each_bad_setting_is_one_line_naming_the_variable_value_and_range(
    environment: dict[str, str], line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value) == f"invalid setting {line}"


def test_good_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AI_ASSETS_CHUNK_MAX_TOKENS": "100", "AI_ASSETS_CHUNK_OVERLAP_TOKENS": "50",
        "AI_ASSETS_REFRESH_CRON": "@daily", "AI_ASSETS_FRESHNESS_WARN_MINUTES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert (settings.chunk_max_tokens, settings.chunk_overlap_tokens, settings.refresh_cron) == (100, 50, "@daily")


def test_a_misspelt_variable_is_named_with_the_closest_setting() -> None:
    assert unknown_variables({"AI_ASSETS_CHUNK_MAX_TOKEN": "10", "AI_ASSETS_DATA_DIR": "x", "HOME": "/"}) == [
        "AI_ASSETS_CHUNK_MAX_TOKEN is not a setting (did you mean AI_ASSETS_CHUNK_MAX_TOKENS?); it is ignored"
    ]


def clean_environment(**settings: str) -> dict[str, str]:
    import os

    base = {key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "OPENAI_"))}
    return {**base, **settings}


def test_the_cli_rejects_a_bad_setting_at_start_up_with_exit_2_and_no_traceback(tmp_path) -> None:
    from ai_assets_tests.test_cli import ai_assets

    env = clean_environment(
        AI_ASSETS_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "home"),
        AI_ASSETS_CHUNK_MAX_TOKENS="10", AI_ASSETS_CHUNK_OVERLAP_TOKENS="500",
    )
    result = ai_assets("build", env=env, check=False)
    assert result.returncode == 2
    assert result.stderr == "ai-assets: error: invalid setting AI_ASSETS_CHUNK_MAX_TOKENS=10: must be greater than or equal to 16\n"
    # What it starts to do is said at once, before the settings are read; then nothing ran.
    assert result.stdout == "ai-assets build: loading the knowledge base's settings and the Dagster instance ...\n"
    assert not (tmp_path / "home").exists() and not (tmp_path / "data").exists()  # nothing ran, nothing made


def test_the_code_location_rejects_a_bad_setting_as_it_loads(tmp_path) -> None:
    """What `dagster dev` and the daemon (schedule, sensors) load: the module fails with the same line."""
    env = clean_environment(AI_ASSETS_DATA_DIR=str(tmp_path), AI_ASSETS_REFRESH_CRON="not a cron")
    result = subprocess.run(
        [sys.executable, "-c", "import ai_assets.definitions"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "ai_assets.settings.SettingsError: invalid setting AI_ASSETS_REFRESH_CRON='not a cron': must be a cron "
        "expression of 5 fields (minute hour day-of-month month day-of-week, e.g. '0 3 * * *') or "
        "@hourly/@daily/@weekly/@monthly"
    )
