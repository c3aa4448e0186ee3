"""Exchange credentials for ``ConnectExchangeOperator``, kept away from everything Airflow stores.

Airflow renders a task's template fields before ``execute`` and keeps the result: the worker
uploads it as the task's rendered fields (the UI's "Rendered Template"), and Airflow 3.0 logs that
upload at debug level. Overriding ``render_template_fields`` is not enough: a mapped task
(``partial().expand()``, ``expand_kwargs``) renders through ``MappedOperator.render_template_fields``,
which calls the unmapped operator's ``_do_render_template_fields`` directly, and an ``expand`` over
an XComArg hands the operator values that are already resolved. Airflow 3.1+ redacts the upload
only for values the masker already knows or field names it deems sensitive (``apiKey`` yes,
``uid`` or ``privateKey`` no).

So Airflow never renders the credentials at all. ``connection_fields`` stays a template field (for
XComArg upstream dependencies and the UI), but once rendering starts Airflow is shown only its field
names (:func:`shown`). The value as written in the DAG is rendered and resolved in ``execute``
(:func:`render_connection_fields`), and every credential value is registered with the secrets
masker before anything can log it (:func:`mask_values`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_coinstats._compat import BaseHook, mask_secret
from airflow_provider_coinstats.exceptions import CoinStatsValidationError

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

#: What stands in for every credential value in what Airflow stores and shows.
HIDDEN = "***"

#: Name of the operator argument, in error messages.
FIELD = "connection_fields"


def shown(value: Any) -> Any:
    """What Airflow may store and display for ``connection_fields``: its field names, never a value.

    Example::

        shown({"apiKey": "{{ conn.x.login }}", "uid": "42"})  # -> {"apiKey": "***", "uid": "***"}
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict.fromkeys(map(str, value), HIDDEN)
    return HIDDEN


def mask_values(fields: Mapping[str, Any]) -> None:
    """Register every value with Airflow's secrets masker, whatever its field name."""
    for value in fields.values():
        if isinstance(value, str) and value:
            mask_secret(value)


def render_connection_fields(operator: BaseOperator, source: Any, context: Context) -> dict[str, Any] | None:
    """Render and resolve ``connection_fields`` as written in the DAG; every value is masked.

    ``source`` may be a mapping (its values Jinja strings or XComArgs), an XComArg, or one Jinja
    string rendering to a mapping (with ``render_template_as_native_obj=True``) or to a JSON object
    (e.g. ``"{{ conn.x.extra_dejson | tojson }}"``). Errors name what is wrong, never a value.

    Example::

        render_connection_fields(op, {"apiKey": "{{ conn.binance.login }}"}, context)  # -> {"apiKey": "..."}
    """
    if source is None:
        return None
    rendered = operator.render_template(source, context)
    if isinstance(rendered, str):
        rendered = _json_object(rendered)
    if not isinstance(rendered, Mapping):
        raise CoinStatsValidationError(
            FIELD, f"must be, or render to, a mapping of field name to string; got {type(rendered).__name__}"
        )
    fields = {key: _as_text(value) for key, value in rendered.items()}
    mask_values(fields)
    return fields


def connection_credentials(conn_id: str) -> dict[str, Any]:
    """The fields an Airflow connection holds: login is ``apiKey``, password ``apiSecret``, extra keys by name.

    Airflow masks a connection's password and the extra keys it deems sensitive; the login and the
    other extra values are masked here.
    """
    conn = BaseHook.get_connection(conn_id)
    fields: dict[str, Any] = {}
    if conn.login:
        fields["apiKey"] = conn.login
    if conn.password:
        fields["apiSecret"] = conn.password
    fields.update(conn.extra_dejson or {})
    mask_values(fields)
    return fields


def _json_object(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        # No chaining and no excerpt: the text holds the credentials.
        raise CoinStatsValidationError(
            FIELD,
            "rendered to a string that is not a JSON object; render it with the tojson filter "
            "(e.g. '{{ conn.x.extra_dejson | tojson }}') or set render_template_as_native_obj=True on the DAG",
        ) from None
    if not isinstance(value, dict):
        raise CoinStatsValidationError(FIELD, f"rendered to JSON {type(value).__name__}, not an object")
    return value


def _as_text(value: Any) -> Any:
    # With render_template_as_native_obj=True, Jinja turns a numeric-looking value (a uid, say) into
    # an int; the exchange wants the text. Anything else that is not a string is left for the
    # request builder to refuse by type.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value
