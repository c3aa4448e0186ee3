"""Both shapes of the connection form Airflow's UI renders, built from :mod:`..api.connection_fields`.

Airflow 3.2+ reads the declarative shape from the provider info (``conn-fields`` and
``ui-field-behaviour``) without importing the hook. Airflow 3.0 and 3.1 call the hook's
``get_connection_form_widgets`` / ``get_ui_field_behaviour`` instead, and only when ``wtforms`` is
installed; their UI turns the wtforms fields back into the same JSON-schema shape.

The legacy path has no number field (Airflow accepts only wtforms' String, Integer, Password and
Boolean fields), so there ``number`` extras are text fields; the parser reads numeric text the same
way and applies the same bound (the legacy fields validate with the parser's own rule).

Example::

    conn_fields()["timeout"]["schema"]  # -> {"type": ["number", "null"], "minimum": 0.1, "default": 30.0}
"""

from __future__ import annotations

from typing import Any

from airflow_provider_coinstats.api.connection_fields import (
    FIELDS,
    HIDDEN_FIELDS,
    PLACEHOLDERS,
    RELABELING,
    ConnectionField,
)


def json_schema(field: ConnectionField) -> dict[str, Any]:
    """The field's JSON schema; ``null`` (left empty) is always allowed and means the default."""
    schema: dict[str, Any] = {"type": [field.type, "null"]}
    if field.minimum is not None:
        schema["minimum"] = field.minimum
    if field.default is not None:
        schema["default"] = field.default
    if field.enum:
        schema["enum"] = [*field.enum, None]
    return schema


def conn_fields() -> dict[str, Any]:
    """The provider info's ``conn-fields`` (Airflow 3.2+)."""
    return {
        field.name: {"label": field.label, "description": field.description, "schema": json_schema(field)}
        for field in FIELDS.values()
    }


def ui_field_behaviour() -> dict[str, Any]:
    """The provider info's ``ui-field-behaviour`` (Airflow 3.2+; kebab-case keys)."""
    return {
        "hidden-fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        "placeholders": dict(PLACEHOLDERS),
    }


def legacy_ui_field_behaviour() -> dict[str, Any]:
    """What ``get_ui_field_behaviour`` returns (Airflow 3.0/3.1): the same, with snake_case keys."""
    return {key.replace("-", "_"): value for key, value in ui_field_behaviour().items()}


def legacy_form_widgets() -> dict[str, Any]:
    """What ``get_connection_form_widgets`` returns (Airflow 3.0/3.1): unbound wtforms fields.

    ``{}`` without ``wtforms`` (Airflow then shows no extra fields, and never calls this anyway).
    Names are looked up at call time on purpose: Airflow's UI swaps ``wtforms.StringField``,
    ``IntegerField``, ``validators.Optional`` and ``validators.any_of`` for stand-ins that record
    type, default and enum, so those are the names used.
    """
    try:
        import wtforms
        from wtforms import validators
    except ImportError:
        return {}
    return {field.name: _legacy_field(field, wtforms, validators) for field in FIELDS.values()}


def _legacy_field(field: ConnectionField, wtforms: Any, validators: Any) -> Any:
    # The parser's own rule validates the form, so the form accepts exactly what a task accepts.
    checks: list[Any] = [validators.Optional(), _ParsedAs(field, validators.ValidationError)]
    if field.enum:
        checks.append(validators.any_of(list(field.enum)))  # shown as the field's choices
    kind = wtforms.IntegerField if field.type == "integer" else wtforms.StringField
    # A number field is text here, so its default is text too.
    default = f"{field.default:g}" if field.type == "number" and field.default is not None else field.default
    return kind(field.label, validators=checks, description=field.description, default=default)


class _ParsedAs:
    """wtforms validator: the value must pass :func:`~airflow_provider_coinstats.api.settings.parse_extra`."""

    def __init__(self, field: ConnectionField, error: type[Exception]) -> None:
        self.field = field
        self.error = error

    def __call__(self, form: Any, wtf_field: Any) -> None:
        # Imported here: the provider info imports this module in every Airflow process, the
        # parser only matters when a legacy form is validated.
        from airflow_provider_coinstats.api.settings import parse_extra

        try:
            parse_extra(self.field, wtf_field.data)
        except ValueError as err:
            raise self.error(str(err)) from None
