"""The connection form, as Airflow's UI shows it, and the parser accept the one declared field table.

The UI side runs Airflow's own ``HookMetaService`` (what the API server's ``/ui/connections/hook_meta``
returns to the React form) in a fresh interpreter: on 3.2+ it reads the provider info's
``conn-fields``; on 3.0/3.1 it calls the hook's legacy ``get_connection_form_widgets`` under its
stand-ins for wtforms. The legacy fields are also validated as real wtforms fields (nothing in
Airflow 3 validates them for real, the React form does that from the schema) to show they accept
no value the parser refuses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import airflow
import pytest
from packaging.version import Version
from wtforms import Form, IntegerField, StringField

from airflow_provider_coinstats.api.catalog import BASE_URL
from airflow_provider_coinstats.api.connection_fields import FIELDS, HIDDEN_FIELDS, PLACEHOLDERS, RELABELING
from airflow_provider_coinstats.api.settings import ClientSettings, RetrySettings, parse_extra, read_extras
from airflow_provider_coinstats.exceptions import CoinStatsConfigError
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

DECLARATIVE = Version(airflow.__version__) >= Version("3.2")

_HOOK_META = """
import json
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
(meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "coinstats"]
print(json.dumps(meta.model_dump(mode="json")))
"""


@pytest.fixture(scope="module")
def ui_form() -> dict[str, Any]:
    """The coinstats form as Airflow's UI service builds it (a fresh process: it resets ProvidersManager)."""
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run(
        [sys.executable, "-c", _HOOK_META], check=True, capture_output=True, text=True, env=env, timeout=240
    ).stdout
    form: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return form


def test_the_ui_shows_every_declared_field_with_its_label_description_and_default(ui_form: dict[str, Any]) -> None:
    extra = ui_form["extra_fields"]
    assert list(extra) == list(FIELDS)
    for name, field in FIELDS.items():
        shown = extra[name]
        assert shown["schema"]["title"] == field.label, name
        assert shown["description"] == field.description, name
        if field.type == "number" and field.default is not None and not DECLARATIVE:
            assert float(shown["value"]) == field.default, name  # text on the legacy path
        else:
            assert shown["value"] == field.default, name


def test_the_ui_shows_the_declared_types_bounds_and_choices(ui_form: dict[str, Any]) -> None:
    extra = ui_form["extra_fields"]
    for name, field in FIELDS.items():
        schema = extra[name]["schema"]
        if DECLARATIVE:
            assert schema["type"] == [field.type, "null"], name
            assert schema.get("minimum") == field.minimum, name
        else:  # Airflow 3.0/3.1 offer no number field: numbers are text there
            assert schema["type"] == ["integer" if field.type == "integer" else "string", "null"], name
        if field.enum:
            assert [v for v in schema["enum"] if v is not None] == list(field.enum), name
        else:
            assert "enum" not in schema, name
    # The disagreement issue 9 found: the form said integer >= 1, the parser took 0.5 s.
    assert FIELDS["timeout"].type == "number"
    assert parse_extra(FIELDS["timeout"], "0.5") == 0.5
    if DECLARATIVE:
        assert extra["timeout"]["schema"]["type"] == ["number", "null"]


def test_the_host_placeholder_is_the_public_api() -> None:
    """Written out in the field table so the provider info does not import the endpoint catalog."""
    assert PLACEHOLDERS["host"] == BASE_URL


def test_the_ui_hides_and_relabels_the_standard_fields(ui_form: dict[str, Any]) -> None:
    standard = ui_form["standard_fields"]
    for name in HIDDEN_FIELDS:
        assert standard["url_schema" if name == "schema" else name]["hidden"] is True, name
    for name, title in RELABELING.items():
        assert standard[name]["title"] == title
        assert standard[name]["hidden"] is False
    for name, placeholder in PLACEHOLDERS.items():
        assert standard[name]["placeholder"] == placeholder


# --- the legacy (Airflow 3.0/3.1) fields as real wtforms fields ------------------------------------

CANDIDATES = ["", "  ", "0", "0.05", "0.1", "1", "2.5", "5", "-1", "1e3", "abc", "nan", "inf", "Bearer", "bearer"]
CANDIDATES += ["x-api-key", "basic", "https://app.example/p/{portfolio_id}"]


def _parser_accepts(name: str, raw: str) -> bool:
    try:
        parse_extra(FIELDS[name], raw)
    except ValueError:
        return False
    return True


def _legacy_form_accepts(name: str, raw: str) -> bool:
    form_class = type("LegacyForm", (Form,), {name: CoinStatsHook.get_connection_form_widgets()[name]})

    class FormData(dict[str, list[str]]):
        def getlist(self, key: str) -> list[str]:
            return self.get(key, [])

    return bool(form_class(formdata=FormData({name: [raw]})).validate())


def test_the_legacy_fields_are_the_declared_fields() -> None:
    widgets = CoinStatsHook.get_connection_form_widgets()
    assert list(widgets) == list(FIELDS)
    for name, field in FIELDS.items():
        unbound = widgets[name]
        assert unbound.field_class is (IntegerField if field.type == "integer" else StringField), name
        assert unbound.args[0] == field.label
        assert unbound.kwargs["description"] == field.description
    assert CoinStatsHook.get_ui_field_behaviour() == {
        "hidden_fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        "placeholders": dict(PLACEHOLDERS),
    }


@pytest.mark.parametrize("name", list(FIELDS))
def test_the_legacy_form_accepts_nothing_the_parser_refuses(name: str) -> None:
    form_ok = {raw for raw in CANDIDATES if _legacy_form_accepts(name, raw)}
    parser_ok = {raw for raw in CANDIDATES if _parser_accepts(name, raw)}
    assert form_ok  # the form is not simply refusing everything
    # The one difference: wtforms' choice check is case-sensitive, the parser is not.
    case_variants = {raw for raw in CANDIDATES if raw.lower() in FIELDS[name].enum and raw not in FIELDS[name].enum}
    assert form_ok == parser_ok - case_variants


# --- the parser reads exactly the declared fields ---------------------------------------------------


def test_the_parser_reads_every_declared_field_and_defaults_to_the_declared_default() -> None:
    assert read_extras({}, "c") == {name: field.default for name, field in FIELDS.items()}
    settings = ClientSettings.from_connection(host=None, password="k", extra={})
    retry = RetrySettings()
    assert settings.timeout == FIELDS["timeout"].default
    assert settings.auth_type == FIELDS["auth_type"].default
    for name in ("max_attempts", "backoff_base", "backoff_max", "retry_after_max", "max_retry_time"):
        assert getattr(retry, name) == FIELDS[name].default, name
        assert getattr(settings.retry, name) == FIELDS[name].default, name


def test_every_declared_field_reaches_the_settings() -> None:
    chosen = {
        "timeout": "2.5",
        "max_attempts": "7",
        "auth_type": "bearer",
        "backoff_base": 0.25,
        "backoff_max": 3,
        "retry_after_max": "9",
        "max_retry_time": 42,
        "portfolio_url_template": "https://app.example/p/{portfolio_id}",
        "max_credits_per_task": "120",
    }
    assert set(chosen) == set(FIELDS)  # a new field must be added here too
    s = ClientSettings.from_connection(host=None, password="k", extra=chosen)
    assert (s.timeout, s.auth_type, s.portfolio_url_template) == (2.5, "bearer", chosen["portfolio_url_template"])
    assert (s.retry.max_attempts, s.retry.backoff_base, s.retry.backoff_max) == (7, 0.25, 3.0)
    assert (s.retry.retry_after_max, s.retry.max_retry_time) == (9.0, 42.0)
    assert s.max_credits_per_task == 120


@pytest.mark.parametrize("name", [n for n, f in FIELDS.items() if f.minimum is not None])
def test_each_declared_minimum_is_the_parsers_bound(name: str) -> None:
    field = FIELDS[name]
    assert field.minimum is not None
    assert parse_extra(field, field.minimum) == field.minimum
    below = field.minimum - (1 if field.type == "integer" else 0.01)
    with pytest.raises(CoinStatsConfigError, match=f"'{name}' must be >= {field.minimum:g}"):
        read_extras({name: below}, "c")
    for bad in ("soon", float("nan"), float("inf"), True):
        with pytest.raises(CoinStatsConfigError, match=f"'{name}' must be a"):
            read_extras({name: bad}, "c")


def test_integer_fields_refuse_fractions_and_number_fields_take_them() -> None:
    with pytest.raises(CoinStatsConfigError, match="'max_attempts' must be a whole number"):
        read_extras({"max_attempts": "2.5"}, "c")
    assert read_extras({"max_attempts": 3.0}, "c")["max_attempts"] == 3  # JSON 3.0
    assert read_extras({"timeout": "0.25", "backoff_base": "0.5"}, "c")["timeout"] == 0.25


def test_choices_are_the_declared_enum() -> None:
    field = FIELDS["auth_type"]
    assert {parse_extra(field, value.upper()) for value in field.enum} == set(field.enum)
    with pytest.raises(CoinStatsConfigError, match="'auth_type' must be one of 'x-api-key', 'bearer'"):
        read_extras({"auth_type": "basic"}, "c")


def test_an_undeclared_extra_is_refused_naming_the_key_never_the_value() -> None:
    secret = "sk-live-0123456789abcdef"
    with pytest.raises(CoinStatsConfigError) as err:
        ClientSettings.from_connection(host=None, password="k", extra={"max_attemps": 3, "api_key": secret})
    message = str(err.value)
    assert "'api_key', 'max_attemps'" in message
    assert "max_attempts" in message  # lists what is read, so the typo is visible
    assert secret not in message
