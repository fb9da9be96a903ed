"""What a type checker sees of zjobs: the clients' real signatures, and the Job's slots.

mypy checks a user's script against a copy of zjobs installed as pip installs it (the
editable install's package-dir mapping is not something mypy can follow), so this is what
a user's IDE and CI see, py.typed included.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging import build_wheel
from zjobs.broker.wire import jobs
from zjobs.broker.wire.schema import STORED

ROOT = Path(__file__).resolve().parent.parent

USER_SCRIPT = '''\
from contextlib import aclosing, closing

from zjobs import AsyncClient, Client


def square(x: int) -> float:
    return x * 1.5


client = Client()
reveal_type(Client.submit)
reveal_type(client.submit("add", 1, 2, queue="q"))
reveal_type(Client.result)
reveal_type(client.run("add", 1, 2))
reveal_type(client.map(square, [1, 2]))
with closing(client.events()) as events:  # a stream ended early, its socket closed now
    for event in events:
        reveal_type(event)
reveal_type(AsyncClient.submit)
reveal_type(AsyncClient.result)


async def main() -> None:
    async with AsyncClient() as aclient:
        reveal_type(await aclient.submit("add", 1))
        async with aclosing(aclient.events()) as stream:
            async for event in stream:
                reveal_type(event)

client.submit(1)
client.result("id", timeout="soon")
client.map(square, ["a"])
'''

OPTIONS = ("queue: str =, priority: int =, timeout_s: float | None =, max_retries: int =, "
           "retry_backoff_s: float =, run_at: Any =, idempotency_key: str | None =, "
           "depends_on: list[str] | None =, **kwargs: Any)")
METHODS = "zjobs.broker.client.methods"
REVEALED = [
    f"def (self: {METHODS}.ClientMethods, task: str, *args: Any, {OPTIONS} -> str",
    "str",
    f"def (self: {METHODS}.ClientMethods, job_id: str, timeout: float | None =) -> Any",
    "Any",  # a task's result: whatever it returned
    "list[float]",
    "dict[str, Any]",
    f"def (self: {METHODS}.AsyncClientMethods, task: str, *args: Any, {OPTIONS} -> "
    "typing.Coroutine[Any, Any, str]",
    f"def (self: {METHODS}.AsyncClientMethods, job_id: str, timeout: float | None =) -> "
    "typing.Coroutine[Any, Any, Any]",
    "str",
    "dict[str, Any]",
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zjobs installed from this checkout into a directory of its own, as pip installs it."""
    site = tmp_path_factory.mktemp("site")
    wheel = build_wheel(tmp_path_factory.mktemp("wheel"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-compile", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, cwd=site)
    return site


def _mypy(script: Path, site: Path) -> list[str]:
    """mypy's messages on `script`, with zjobs importable from `site` as from site-packages."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
         "--cache-dir", str(script.parent / ".mypy_cache"), str(script.name)],
        capture_output=True, text=True, cwd=script.parent,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert done.stderr == "", done.stderr
    return done.stdout.splitlines()


def test_mypy_sees_the_clients_signatures_and_what_they_return(installed: Path,
                                                                 tmp_path: Path) -> None:
    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT)
    lines = _mypy(script, installed)
    revealed = [m.group(1) for m in map(re.compile(r'.*Revealed type is "(.*)"$').match, lines)
                if m]
    assert revealed == REVEALED
    errors = [line.split(": error: ")[1] for line in lines if ": error: " in line]
    assert [e.rsplit("  [", 1)[1] for e in errors] == ["arg-type]"] * 3, errors
    assert 'Argument 1 to "submit" of "ClientMethods" has incompatible type "int"' in errors[0]
    assert 'Argument "timeout" to "result" of "ClientMethods" has incompatible type "str"' \
        in errors[1]
    assert '"map" of "ClientMethods" has incompatible type "Callable[[int], float]"' in errors[2]


def test_the_client_and_the_wire_contract_type_check(installed: Path, tmp_path: Path) -> None:
    """The rooms a user's code meets, on their own (scripts/typecheck checks the package)."""
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir",
         str(tmp_path / ".mypy_cache"), "-p", "zjobs.broker.client", "-p", "zjobs.broker.wire"],
        capture_output=True, text=True, cwd=tmp_path,
        env={"MYPYPATH": str(installed), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr


def _declared_slots() -> list[tuple[str, str]]:
    """The `name: type` lines of Job's `if TYPE_CHECKING:` block, as written."""
    tree = ast.parse(Path(jobs.__file__).read_text())
    job = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Job")
    block = next(n for n in job.body if isinstance(n, ast.If)
                 and ast.unparse(n.test) == "TYPE_CHECKING")
    return [(ast.unparse(n.target), ast.unparse(n.annotation)) for n in block.body
            if isinstance(n, ast.AnnAssign)]


def test_the_job_slots_type_checkers_see_are_the_schemas_stored_fields() -> None:
    expected = [(f.name, jobs.STORED_TYPES[f.sql] + (" | None" if f.nullable else ""))
                for f in STORED if f.sql is not None]
    assert _declared_slots() == expected
    assert list(jobs.Job.__slots__) == [name for name, _ in expected]
