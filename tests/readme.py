"""The README as a program: its blocks, their commands, and a session that runs them in order
against a live zjobs, the way a reader following it would.

How each block runs (the convention the README keeps; README.md "This README runs"):

- ```sh and ```console: each command runs in bash, in a scratch directory that
  holds the files the README writes, with `zjobs` on the PATH. In a block with
  `$ ` prompts, the lines after a command are its output, compared line by
  line (a number stands for any number, `...` or `…` for anything); a command
  with no output shown is not compared. A command must succeed (exit 0, and no
  `{"error": ...}` body from curl) unless the output shown is its failure.
- ```python: run as a script in which `client` is a Client of the running
  zjobs. A block whose first line is `# some/path.py` is that file: written,
  not run.
- `zjobs up ...` (re)starts zjobs with those options; it serves the blocks
  after it, until the next `zjobs up`.
- `zjobs tail` (every event) and `curl -N .../events` follow forever: they
  must still be following after a few seconds, and are then stopped. A command
  ending in `&` runs in the background until the end.
- `bash scripts/install` and `bash scripts/test` are what runs this: done.
- `JOB_ID` (and `$ID` in a shell command) is the first job id the latest
  command printed (a follower's output aside), else the newest job.
- `<!-- readme-test: skip (why) -->` on the line before a block skips it.

The default ports (5555, 5556, 5557, 8000) become free ones, and `Client()`
the running zjobs', so the run never meets another zjobs on the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.up import session_processes
from tests.waiting import free_port, holds_for, wait_until

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RUN_LANGS = frozenset({"sh", "console", "python"})
GIVEN = ("bash scripts/install", "bash scripts/test")  # what runs this test
FOLLOWERS = (re.compile(r"\bzjobs tail\s*(#|$)"), re.compile(r"\bcurl -N \S*/events\b"))
BACKGROUND = re.compile(r"(?<!&)&\s*(#.*)?$")  # `cmd &`, `cmd &   # a comment`
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((.+)\)\s*-->")
JOB_ID_RE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\b")
DEFAULT_PORTS = ("5555", "5556", "5557", "8000")
COMMAND_TIMEOUT_S = 120
FOLLOW_S = 2.0
UP_TIMEOUT_S = 90


@dataclass
class Block:
    line: int
    lang: str
    text: str
    skip: str | None = None

    @property
    def file(self) -> str | None:
        """The path a python block is the content of (`# myapp/tasks.py`), if it is one."""
        first = self.text.split("\n", 1)[0]
        found = re.fullmatch(r"#\s*([\w./-]+\.py)", first.strip())
        return found.group(1) if self.lang == "python" and found else None


@dataclass
class Command:
    line: int
    text: str
    expected: list[str] | None = None  # the output shown; None: not shown, not compared


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, with its line and the skip directive on the line before it."""
    found = []
    for match in re.finditer(r"^```(\S*)\n(.*?)^```\s*$", markdown, flags=re.M | re.S):
        before = markdown[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        found.append(Block(markdown.count("\n", 0, match.start()) + 1, match.group(1),
                           match.group(2), skip.group(1) if skip else None))
    return found


def commands(block: Block) -> list[Command]:
    """The commands of a shell block, with the output shown after each in a transcript."""
    lines = block.text.splitlines()
    transcript = any(line.startswith("$ ") for line in lines)
    found: list[Command] = []
    pending: Command | None = None  # a command continued with a trailing backslash
    for number, line in enumerate(lines, block.line + 1):
        if pending is not None:
            pending.text += "\n" + line
            pending = pending if line.endswith("\\") else None
            continue
        if transcript and not line.startswith("$ "):
            if found and line.strip():
                found[-1].expected = [*(found[-1].expected or []), line.rstrip()]
            continue
        text = line[2:] if transcript else line
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        found.append(Command(number, text))
        pending = found[-1] if text.endswith("\\") else None
    return found


def output_matches(expected: list[str], actual: str) -> bool:
    """Line by line; a number in `expected` stands for any number, `...` or `…` for anything."""
    lines = [line.rstrip() for line in actual.strip("\n").splitlines()]
    return len(lines) == len(expected) and all(
        re.fullmatch(_pattern(want), got) for want, got in zip(expected, lines, strict=True))


def _pattern(line: str) -> str:
    parts = re.split(r"(\.\.\.|…|\d+(?:\.\d+)?)", line.rstrip())
    return "".join(".*" if part in ("...", "…") else r"\d+(?:\.\d+)?"
                   if re.fullmatch(r"\d+(?:\.\d+)?", part) else re.escape(part)
                   for part in parts)


@dataclass
class Session:
    """The scratch directory, the running `zjobs up`, and what the README's commands left."""

    workdir: Path
    ports: dict[str, int] = field(
        default_factory=lambda: {p: free_port() for p in DEFAULT_PORTS})
    up: subprocess.Popen | None = None
    up_log: Path | None = None
    curve_dir: str | None = None
    job_id: str | None = None
    background: list[subprocess.Popen] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / ".venv").symlink_to(ROOT / ".venv")
        shutil.copytree(ROOT / "examples", self.workdir / "examples",
                        ignore=shutil.ignore_patterns("zjobs_client", "zjobs_worker", "*.o"))

    # ------------------------------------------------------------ what commands see

    @property
    def frontend(self) -> str:
        return f"tcp://127.0.0.1:{self.ports['5555']}"

    def env(self, *, client: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ZJOBS_") and k != "PYTHONPATH"}
        env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1",
                   ZJOBS_FRONTEND=self.frontend,
                   ZJOBS_BACKEND=f"tcp://127.0.0.1:{self.ports['5556']}",
                   ZJOBS_EVENTS=f"tcp://127.0.0.1:{self.ports['5557']}",
                   ZJOBS_PORT=str(self.ports["8000"]))
        if client and self.curve_dir:
            env["ZJOBS_CURVE_DIR"] = self.curve_dir
        if client and self.job_id:
            env["ID"] = self.job_id
        return env

    def localised(self, text: str) -> str:
        """The default ports as this session's, `Client()` as a client of it, JOB_ID filled."""
        text = text.replace("Client()", 'Client("tcp://127.0.0.1:5555")')
        text = re.sub(r"(?<=:)(5555|5556|5557|8000)\b",
                      lambda m: str(self.ports[m.group(1)]), text)
        if "JOB_ID" in text:
            text = re.sub(r"\bJOB_ID(\.\.\.)?", self.current_job(), text)
        return text

    def current_job(self) -> str:
        if self.job_id is None:
            from zjobs import Client
            from zjobs.broker.wire.curve import client_curve

            curve = client_curve(str(self.workdir / self.curve_dir)) if self.curve_dir else None
            with Client(self.frontend, curve=curve, timeout=30) as client:
                self.job_id = client.list(limit=1)[0]["id"]
        return self.job_id

    # ------------------------------------------------------------ blocks

    def run(self, block: Block) -> None:
        if block.file is not None:
            path = self.workdir / block.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text)
        elif block.lang == "python":
            self._python(block)
        else:
            for command in commands(block):
                self._command(command)

    def _python(self, block: Block) -> None:
        curve = repr(str(self.workdir / self.curve_dir)) if self.curve_dir else "None"
        prelude = ("from zjobs import Client as _Client\n"
                   "from zjobs.broker.wire.curve import client_curve as _curve\n"
                   f"client = _Client({self.frontend!r}, timeout=30,\n"
                   f"                 curve=_curve({curve}) if {curve} else None)\n")
        script = self.workdir / f".readme-{block.line}.py"
        script.write_text(prelude + self.localised(block.text))
        done = subprocess.run([sys.executable, str(script)], cwd=self.workdir, env=self.env(),
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        if done.returncode != 0:
            self.fail(block.line, "the python block", done.stdout + done.stderr)
        self.job_id = None

    def _command(self, command: Command) -> None:
        parts = [p for p in command.text.split(" && ") if p.strip() not in GIVEN]
        text = self.localised(" && ".join(parts))
        if not text.strip():
            return
        if re.match(r"(\S*/)?zjobs up\b", text.strip()):
            self.start_up(command.line, text)
        elif BACKGROUND.search(text):
            self._background(command.line, BACKGROUND.sub("", text))
        elif any(f.search(text) for f in FOLLOWERS):
            self._follow(command.line, text)
        else:
            self._once(command, text)

    def _once(self, command: Command, text: str) -> None:
        try:
            done = subprocess.run(["bash", "-c", text], cwd=self.workdir, env=self.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            self.fail(command.line, text, f"still running after {exc.timeout} s")
            return
        out = done.stdout
        found = JOB_ID_RE.search(out)
        if found:
            self.job_id = found.group(0)
        if command.expected is not None:
            if not output_matches(command.expected, out):
                self.fail(command.line, text, "printed:\n" + out + "\nthe README shows:\n" +
                          "\n".join(command.expected))
            return  # what it printed is what the README says, failure or not
        if done.returncode != 0 or '{"error":{"code"' in out:
            self.fail(command.line, text, f"exit status {done.returncode}:\n{out}")

    def _spawn(self, text: str, log: Path, client: bool = True) -> subprocess.Popen:
        with open(log, "wb") as out:
            return subprocess.Popen(["bash", "-c", f"exec {text}"], cwd=self.workdir,
                                    env=self.env(client=client), stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def _follow(self, line: int, text: str) -> None:
        log = self.workdir / f".readme-{line}.log"
        proc = self._spawn(text, log)
        try:
            holds_for(lambda: proc.poll() is None, FOLLOW_S, message=f"line {line} following")
        except AssertionError:
            self.fail(line, text, "stopped following:\n" + log.read_text(errors="replace"))
        finally:
            _stop(proc, signal.SIGINT)

    def _background(self, line: int, text: str) -> None:
        log = self.workdir / f".readme-{line}.log"
        proc = self._spawn(text, log)
        self.background.append(proc)
        try:
            holds_for(lambda: proc.poll() is None, 1.0, message=f"line {line} running")
        except AssertionError:
            self.fail(line, text, "exited:\n" + log.read_text(errors="replace"))

    # ------------------------------------------------------------ zjobs up

    def start_up(self, line: int, text: str) -> None:
        """`zjobs up ...` replaces the running one; returns once it says it is up."""
        self.stop_up()
        found = re.search(r"--curve-dir[ =](\S+)", text)
        self.curve_dir = found.group(1) if found else None
        self.up_log = self.workdir / f".readme-up-{line}.log"
        self.up = self._spawn(text, self.up_log, client=False)
        try:
            wait_until(lambda: "zjobs is up" in self._up_log() or self.up.poll() is not None,
                       UP_TIMEOUT_S, message=f"line {line}: {text} to say it is up")
        except AssertionError:
            self.fail(line, text, "never said it was up:\n" + self._up_log())
            return
        if self.up.poll() is not None:
            self.fail(line, text, f"exited with {self.up.returncode}:\n" + self._up_log())

    def _up_log(self) -> str:
        return self.up_log.read_text(errors="replace") if self.up_log else ""

    def stop_up(self) -> None:
        if self.up is not None:
            _stop(self.up, signal.SIGTERM)
            self.up = None

    def close(self) -> None:
        for proc in self.background:
            _stop(proc, signal.SIGTERM)
        self.stop_up()

    def fail(self, line: int, what: str, why: str) -> None:
        self.failures.append(f"README.md:{line}: {what.strip()}\n{why.strip()}")


def _stop(proc: subprocess.Popen, sig: int) -> None:
    """Signal the process, wait for it, then leave nothing of its session behind."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in session_processes(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def runnable(markdown: str) -> Iterator[Block]:
    """The blocks a run goes through: those not skipped."""
    return (block for block in blocks(markdown) if block.skip is None)
