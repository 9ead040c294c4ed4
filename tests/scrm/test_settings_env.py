"""A missing or bad setting stops start-up with a message that names the variable."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(tmp_path, **env):
    environment = {
        key: value for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY"}
    }
    environment.update(DJANGO_SETTINGS_MODULE="scrm.settings", SCRM_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
    )


def last_line(result):
    return result.stderr.strip().splitlines()[-1]


def test_it_starts_with_no_settings_at_all(tmp_path):
    result = start(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DATABASE_URL", "mysql://x", "DATABASE_URL must be a URL with scheme"),
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("BULK_MAX_ITEMS", "lots", "BULK_MAX_ITEMS='lots' is not an integer"),
        ("BULK_MAX_ITEMS", "0", "BULK_MAX_ITEMS=0 must be at least 1"),
        ("REDIS_URL", "http://127.0.0.1:6379", "REDIS_URL must be a URL with scheme"),
        ("LANGUAGE_CODE", "fr", "LANGUAGE_CODE must be one of"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, variable, value, says):
    result = start(tmp_path, **{variable: value})
    assert result.returncode != 0
    line = last_line(result)
    assert line.startswith("django.core.exceptions.ImproperlyConfigured: "), line
    assert says in line
    assert "started" not in result.stdout


def test_production_without_a_secret_key_refuses_to_start(tmp_path):
    result = start(tmp_path, SCRM_REQUIRE_SECRET_KEY="1")
    assert result.returncode != 0
    assert "SECRET_KEY" in last_line(result)
