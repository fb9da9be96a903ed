"""The clients' methods are generated from the plans (methods_gen.py): never out of date."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from zjobs import AsyncClient, Client
from zjobs.broker.client import methods_gen
from zjobs.broker.client.plans import operations


def test_methods_py_is_what_the_plans_generate_now() -> None:
    assert methods_gen.TARGET.read_text() == methods_gen.generate(), (
        "broker/client/methods.py is stale: run `python -m zjobs.broker.client.methods_gen`")


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_each_method_has_its_plans_parameters_docstring_and_value(cls: type) -> None:
    for name, plan, kind in operations():
        method, planned = inspect.signature(getattr(cls, name)), inspect.signature(plan)
        assert method.parameters == planned.parameters, name
        assert inspect.getdoc(getattr(cls, name)) == inspect.getdoc(plan), name
        value = planned.return_annotation.partition("[")[2][:-1]  # Plan[T] / Stream[T]: T
        if kind == "call":
            assert method.return_annotation == value, name
        elif cls is AsyncClient:
            assert method.return_annotation == f"AsyncGenerator[{value}, None]", name
        else:
            assert method.return_annotation == f"Generator[{value}, None, None]", name


def test_a_plan_without_its_value_type_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from zjobs.broker.client.plans import Plans

    def untyped(self: Plans, job_id: str):  # noqa: ANN202 (the case tested)
        """A plan with no annotation."""
        yield

    untyped.__plan__ = "call"  # as @call marks it
    monkeypatch.setattr(Plans, "untyped", untyped, raising=False)
    with pytest.raises(methods_gen.PlanError, match=r"plan untyped: annotate a @call plan"):
        methods_gen.generate()


def test_a_stale_file_is_rewritten_and_a_fresh_one_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "methods.py"
    target.write_text("# stale\n")
    monkeypatch.setattr(methods_gen, "TARGET", target)
    assert methods_gen.main() == 0 and target.read_text() == methods_gen.generate()
    assert methods_gen.main() == 0
    assert capsys.readouterr().out.splitlines() == [f"wrote {target}", f"{target} is up to date"]
