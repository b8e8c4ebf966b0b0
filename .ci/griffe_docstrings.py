"""Griffe extension for the docs build (`make docs`): adapts the package's docstrings to mkdocstrings.

* Doctests headed ``Example:`` (singular, as Napoleon accepts) become an ``Examples:`` section: griffe only
  knows the plural and would render the doctest lines as prose.
* Sphinx roles (``:func:`~cancerllm.metrics.evaluate```, ``:class:`Scores```) become links to the API
  reference: optional cross-references, so a target that is not documented (a private class) stays plain
  code instead of failing the strict build.  Names without a module are looked up next to the object.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|exc|obj):`(~?)([\w.]+)(\(\))?`")


def _resolve(name: str, obj: griffe.Object) -> str:
    """The full path of a name written in ``obj``'s docstring: as is when qualified, else looked up in the
    enclosing class, then the module (following imports), then the module's classes; else assumed to live in
    the module (an optional reference: unresolved, it stays plain code)."""
    if name.startswith("cancerllm"):
        return name
    head, _, rest = name.partition(".")
    scopes = [o for o in (obj, obj.parent) if o is not None and o.is_class] + [obj.module]
    scopes += [c for c in obj.module.classes.values() if c not in scopes]  # methods named in module docs
    for scope in scopes:
        member = scope.members.get(head)
        if member is None:
            continue
        try:
            path = member.target_path if member.is_alias else member.path
        except Exception:  # an import griffe cannot follow
            path = member.path
        return f"{path}.{rest}" if rest else path
    return f"{obj.module.path}.{name}"


def _roles(text: str, obj: griffe.Object) -> str:
    def link(m: re.Match[str]) -> str:
        short, name = m.group(1) == "~", m.group(2)
        title = (name.rsplit(".", 1)[-1] if short else name) + (m.group(3) or "")
        return f'<autoref identifier="{_resolve(name, obj)}" optional><code>{title}</code></autoref>'

    return _ROLE.sub(link, text)


class ProjectDocstrings(griffe.Extension):
    """Rewrite ``Example:`` headers and Sphinx roles before docstrings are parsed."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Runs once the object tree is complete, so names can be looked up; idempotent."""
        if obj.docstring is not None:
            obj.docstring.value = _roles(_EXAMPLE.sub(r"\1Examples:", obj.docstring.value), obj)
