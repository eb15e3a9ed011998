"""Settings: read once, typed, frozen; unknown or invalid variables named; secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tickstock.core.errors import ConfigurationError
from tickstock.ops.settings import Settings, load_settings, variable_name

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_defaults_need_no_configuration() -> None:
    settings = load_settings({})
    assert settings.embedded_database and settings.embedded_redis
    assert settings.effective_provider == "synthetic"


def test_real_servers_and_key_switch_everything() -> None:
    settings = load_settings(
        {
            "TICKSTOCK_DATABASE_URL": "postgresql://u:p@db:5432/t",
            "TICKSTOCK_REDIS_URL": "redis://r:6379/0",
            "MASSIVE_API_KEY": "k",
        }
    )
    assert not settings.embedded_database and not settings.embedded_redis
    assert settings.effective_provider == "massive"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TICKSTOCK_WEB_PORT": "http"}, "TICKSTOCK_WEB_PORT"),
        ({"TICKSTOCK_WEB_PORT": "70000"}, "TICKSTOCK_WEB_PORT"),
        ({"TICKSTOCK_LOG_LEVEL": "LOUD"}, "TICKSTOCK_LOG_LEVEL"),
        ({"TICKSTOCK_PROVDER": "files"}, "TICKSTOCK_PROVDER"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        load_settings(env)


def test_secrets_are_masked_everywhere() -> None:
    env = {"TICKSTOCK_DATABASE_URL": "postgresql://u:hunter2@db/t", "MASSIVE_API_KEY": "sekrit"}
    settings = load_settings(env)
    assert "hunter2" not in str(settings.masked()) + repr(settings)
    assert "sekrit" not in str(settings.masked()) + repr(settings)
    with pytest.raises(ConfigurationError) as err:
        load_settings({**env, "TICKSTOCK_REDIS_URL": "x" * 0, "TICKSTOCK_WORKERS": "-1"})
    assert "hunter2" not in str(err.value)


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(ValidationError):
        settings.web_port = 1  # type: ignore[misc]


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("TICKSTOCK_WEB_PORT=9000\nTICKSTOCK_API_PORT=9001\n")
    settings = load_settings({"TICKSTOCK_API_PORT": "9002"}, env_file=dotenv)
    assert (settings.web_port, settings.api_port) == (9000, 9002)


def test_configuration_reference_lists_every_setting() -> None:
    text = DOCS.read_text()
    missing = [
        variable_name(name) for name in Settings.model_fields if f"`{variable_name(name)}`" not in text
    ]
    assert not missing, f"docs/configuration.md lacks {missing}"
