"""Write `methods.py`: the typed methods of `Client` and `AsyncClient`, one per plan.

Each plan of `Plans` (plans.py) is the single definition of an operation: its name,
parameters, defaults, docstring and, in its annotation, what it gives back (`Plan[T]`
returns a T, `Stream[T]` yields Ts). This script turns each into a real method, so that
type checkers and IDEs see the signatures: a thin call of the plan through the client's
driver (`self._run(self._plans.<name>(...))`), `async def` on AsyncClient, a generator or
an async generator for a stream. Run it after changing a plan:

    python -m zjobs.broker.client.methods_gen

tests/broker/test_client_methods.py fails while `methods.py` differs from its output.
"""

from __future__ import annotations

import builtins
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zjobs.broker.client import plans

TARGET = Path(__file__).with_name("methods.py")
WIDTH = 100
# Where the names an annotation may use come from (the plans' own names are found there).
IMPORTS = {"Any": "typing", "TYPE_CHECKING": "typing",
           **dict.fromkeys(["AsyncGenerator", "Callable", "Generator", "Iterable", "Iterator",
                            "Sequence"],
                           "collections.abc")}
PLANS_MODULE = plans.__name__
STARS: dict[Any, str] = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
RETURNS = re.compile(r"^(Plan|Stream)\[(.*)\]$")

HEADER = '''"""The public methods of `Client` and `AsyncClient`: one per plan of `Plans` (plans.py).

Generated from the plans by `python -m zjobs.broker.client.methods_gen`: do not edit, change
the plan and run it again (tests/broker/test_client_methods.py fails while this file differs).
Each method is one call of its plan through the client's driver: `_run` for a call, `_stream`
for a stream.
"""

from __future__ import annotations
'''

PREAMBLE = {
    "ClientMethods": '''

class ClientMethods:
    """The operations of the blocking `Client`: each returns the plan's value."""

    if TYPE_CHECKING:  # what Client provides
        _plans: Plans

        def _run(self, plan: Plan[T]) -> T: ...

        def _stream(self, plan: Stream[T]) -> Iterator[T]: ...
''',
    "AsyncClientMethods": '''

class AsyncClientMethods:
    """The operations of `AsyncClient`: coroutines, and async iterators for streams."""

    if TYPE_CHECKING:  # what AsyncClient provides
        _plans: Plans

        async def _run(self, plan: Plan[T]) -> T: ...

        def _stream(self, plan: Stream[T]) -> AsyncGenerator[T, None]: ...
''',
}


class PlanError(Exception):
    """A plan this script cannot turn into a method; the message says what to change."""


def _literal(value: object) -> str:
    """`value` as source, strings in double quotes (as ruff and the tests spell them)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        items = [_literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise PlanError(f"a default of {value!r}: give plans plain literal defaults")


def _parameter(param: inspect.Parameter) -> tuple[str, str]:
    """The parameter as declared, and as passed on to the plan."""
    if param.annotation is param.empty:
        raise PlanError(f"a plan's parameter {param.name} has no annotation")
    prefix = STARS.get(param.kind, "")
    declared = f"{prefix}{param.name}: {param.annotation}"
    if param.default is not param.empty:
        declared += f" = {_literal(param.default)}"
    passed = (f"{param.name}={param.name}" if param.kind is param.KEYWORD_ONLY
              else f"{prefix}{param.name}")
    return declared, passed


def _declared(signature: inspect.Signature) -> list[str]:
    """The parameters of `signature` as source, with the bare `*` before keyword-only ones."""
    out, star = ["self"], False
    for param in list(signature.parameters.values())[1:]:
        if param.kind is param.KEYWORD_ONLY and not star:
            out.append("*")
        star = star or param.kind in (param.VAR_POSITIONAL, param.KEYWORD_ONLY)
        out.append(_parameter(param)[0])
    return out


def _wrapped(head: str, parts: list[str], tail: str, indent: int) -> list[str]:
    """`head(parts...)tail` over as many lines as WIDTH needs, continuations under `(`; a
    `)tail` that does not fit after the last part goes on a line of its own."""
    lines, line = [], " " * indent + head + "("
    hang = " " * len(line)
    close = ")" + tail
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        piece = part + (close if last else ", ")
        if last and len(hang) + len(piece) > WIDTH:
            piece, close = part + ",", hang + close
        if len(line) + len(piece.rstrip()) > WIDTH and line.strip() != head + "(":
            lines.append(line.rstrip())
            line = hang
        line += piece
    if not parts:
        line += close
    return [*lines, line] if close.startswith(")") else [*lines, line, close]


def _docstring(plan: Callable[..., Any]) -> list[str]:
    doc = inspect.cleandoc(plan.__doc__ or "")
    if not doc or '"""' in doc or "\\" in doc:
        raise PlanError(f"plan {plan.__name__}: it needs a docstring without quotes or \\")
    lines = doc.splitlines()
    if len(lines) == 1:
        return [f'        """{doc}"""']
    return [f'        """{lines[0]}', *[("        " + s).rstrip() for s in lines[1:]],
            '        """']


def _returns(name: str, plan: Callable[..., Any], kind: str) -> str:
    """The value type T of the plan's `Plan[T]`, or the item type of its `Stream[T]`."""
    match = RETURNS.match(str(inspect.signature(plan).return_annotation))
    if match is None or match.group(1) != {"call": "Plan", "stream": "Stream"}[kind]:
        raise PlanError(f"plan {name}: annotate a @call plan `-> Plan[T]`, a @stream one "
                        "`-> Stream[T]`")
    return match.group(2)


def method(name: str, plan: Callable[..., Any], kind: str, awaited: bool) -> list[str]:
    """The source of one method of ClientMethods (or of AsyncClientMethods if `awaited`)."""
    signature = inspect.signature(plan)
    value = _returns(name, plan, kind)
    passed = [_parameter(p)[1] for p in list(signature.parameters.values())[1:]]
    if kind == "stream":
        # generators, not just iterators: `closing()` / `aclosing()` end a stream early
        returns = f"AsyncGenerator[{value}, None]" if awaited else f"Generator[{value}, None, None]"
    else:
        returns = value
    head = f"async def {name}" if awaited else f"def {name}"
    lines = ["", *_wrapped(head, _declared(signature), f" -> {returns}:", 4),
             *_docstring(plan)]
    if kind == "stream" and awaited:
        lines += _wrapped(f"async with aclosing(self._stream(self._plans.{name}", passed,
                          ")) as items:", 8)
        lines += ["            async for item in items:", "                yield item"]
    elif kind == "stream":
        lines += _wrapped(f"yield from self._stream(self._plans.{name}", passed, ")", 8)
    else:
        lines += _wrapped(f"return {'await ' if awaited else ''}self._run(self._plans.{name}",
                          passed, ")", 8)
    return lines


def _names() -> set[str]:
    """The names the generated classes use: the plans' annotations and the preambles'."""
    used = {"TYPE_CHECKING", "Plans", "Plan", "Stream", "T", "Iterator", "AsyncGenerator",
            "Generator"}
    for name, plan, _ in plans.operations():
        signature = inspect.signature(plan)
        params = list(signature.parameters.values())[1:]  # not self
        texts = [signature.return_annotation, *(p.annotation for p in params)]
        for text in (t for t in texts if t is not inspect.Signature.empty):
            for found in re.findall(r"[A-Za-z_]\w*", str(text)):
                if hasattr(builtins, found) or found in ("Plan", "Stream"):
                    continue
                if found not in IMPORTS and not hasattr(plans, found):
                    raise PlanError(f"plan {name} uses {found}: import it in plans.py")
                used.add(found)
    return used


def _import_key(name: str) -> tuple[int, str]:
    """isort's order of names in one import: CONSTANTS, Classes, then the rest."""
    if len(name) > 1 and name.isupper():
        return 0, name
    return (1 if name[0].isupper() else 2), name


def _imports(names: set[str]) -> list[str]:
    """The import lines for `names`: the standard library, then zjobs (isort's order)."""
    modules: dict[str, list[str]] = {}
    for name in names:
        modules.setdefault(IMPORTS.get(name, PLANS_MODULE), []).append(name)
    modules.setdefault("contextlib", []).append("aclosing")
    lines = []
    for module in sorted(modules, key=lambda m: (m == PLANS_MODULE, m)):
        if module == PLANS_MODULE:
            lines.append("")
        members = ", ".join(sorted(modules[module], key=_import_key))
        lines.append(f"from {module} import {members}")
    return lines


def _body() -> Iterator[str]:
    for cls, awaited in (("ClientMethods", False), ("AsyncClientMethods", True)):
        yield PREAMBLE[cls]
        for name, plan, kind in plans.operations():
            yield "\n".join(method(name, plan, kind, awaited)) + "\n"


def generate() -> str:
    """The text `methods.py` must hold for the plans as they are now."""
    return HEADER + "\n" + "\n".join(_imports(_names())) + "\n" + "".join(_body())


def main() -> int:
    try:
        text = generate()
    except PlanError as exc:
        print(f"methods_gen: {exc}", file=sys.stderr)
        return 1
    if TARGET.exists() and TARGET.read_text() == text:
        print(f"{TARGET} is up to date")
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
