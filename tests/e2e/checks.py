"""Named checks for the e2e tests: every check is evaluated, and a failure names each failed one.

Example::

    checks = Checks()
    checks.expect("every run succeeded", not failed_runs, f"failed: {failed_runs}")
    checks.expect("no secret in any log", not leaks, f"found in: {leaks}")
    checks.raise_if_failed()  # AssertionError: "2 of 2 e2e checks failed: every run succeeded ..."
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Checks:
    """Collects pass/fail per named check, printing each as it is evaluated."""

    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def expect(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, ok, detail))
        print(f"[e2e] check {'PASS' if ok else 'FAIL'}: {name}" + ("" if ok else f"\n{detail}"), flush=True)
        return ok

    @property
    def failed(self) -> list[tuple[str, bool, str]]:
        return [r for r in self.results if not r[1]]

    def raise_if_failed(self) -> None:
        if self.failed:
            lines = [f"{len(self.failed)} of {len(self.results)} e2e checks failed:"]
            lines += [f"- {name}: {detail}" for name, _, detail in self.failed]
            raise AssertionError("\n".join(lines))


def find_secrets(secrets: Sequence[str], texts: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Where each secret occurs: ``{secret label: [source names]}`` over ``(source, text)`` pairs.

    Labels are the secret's index, so the report itself never repeats a secret.
    """
    hits: dict[str, list[str]] = {}
    for source, text in texts:
        for index, secret in enumerate(secrets):
            if secret and secret in text:
                hits.setdefault(f"secret #{index}", []).append(source)
    return hits


def read_texts(paths: Iterable[Path]) -> list[tuple[str, str]]:
    """``(path, text)`` for each readable file."""
    texts = []
    for path in paths:
        try:
            texts.append((str(path), path.read_text(errors="replace")))
        except OSError:
            continue
    return texts
