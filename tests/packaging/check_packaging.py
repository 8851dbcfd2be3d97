#!/usr/bin/python3
"""Checks what users copy or run without building previewdb themselves: action.yml, workflows/,
netlify.toml, the Dockerfile and the runtime package list.

- action.yml and every workflow parse as YAML, netlify.toml as TOML;
- every previewdb command line in them (run: steps, netlify.toml commands, `npx previewdb`) is
  accepted by the real CLI: PREVIEWDB_CHECK_ARGS=1 makes previewdb parse its options and exit
  before reading configuration or touching a database;
- action.yml is a composite action: install/action.yml's steps (resolve, actions/cache, install)
  then a run step whose one env block maps every input; scripts/action-run.sh is run with that
  env (inputs empty and set) through the real CLI; every env name is one previewdb reads or a
  flag of action-run.sh's table; no expression inside a run: script; the declared outputs are
  the run step's and exactly the keys a real `previewdb ci --dry-run` writes to $GITHUB_OUTPUT;
- no workflow uses docker build/run;
- workflows use only the action's declared inputs and outputs;
- the Dockerfile builds with scripts/install-deps.sh and its runtime stage installs the
  --runtime list, which provides every library the built binary links.

Run by ctest (tests/CMakeLists.txt) with Debian's /usr/bin/python3, which has python3-yaml.
Prints one line per check that failed and ends with `packaging: N passed, M failed`.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

EXPECTED_OUTPUTS = {"preview", "reason", "database-name", "database-url", "created", "reset",
                    "migrations-applied", "snapshot", "behind", "behind-migrations",
                    "snapshots-pruned"}
# Written only when a run fails after its decision.
FAILURE_OUTPUTS = {"error", "exit-code"}
# Written by `command: safe-migrate` (workflows/deploy-migrate.yml).
SAFE_MIGRATE_OUTPUTS = {"backup", "restored"}
# Libraries every debian:12-slim image already has (Essential or apt's own dependencies).
BASE_IMAGE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1", "zlib1g"}
# Plausible values for ${{ ... }} expressions in run: steps, by what they mention.
EXPRESSION_VALUES = [("number", "12"), ("sha", "0123456789abcdef0123456789abcdef01234567"),
                     ("ref", "main")]
# Plausible values for action inputs when "set"; anything else gets a word.
INPUT_VALUES = {"pr": "12", "migrations-path": "migrations/schema/,db/extra/",
                "dir": "migrations/schema", "config": "previewdb.json",
                "database-url": "postgresql://app:secret@db.example:5432/app", "command": "ci"}
SHELL_SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", "()", "{", "}", ";;", "then", "do", "else",
                    "elif", "if", "while", "until", "!"}


class Checker:
    def __init__(self, previewdb: str, root: Path):
        self.previewdb = previewdb
        self.root = root
        self.passed = 0
        self.failed = 0
        self.tmp = tempfile.TemporaryDirectory(prefix="previewdb-packaging-")
        self.work = Path(self.tmp.name)

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}" + (f"\n      {detail}" if detail else ""))
        return ok

    # --- the real CLI -------------------------------------------------------------------------

    def cli_env(self, check_args: bool) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GITHUB_", "PREVIEWDB_", "PG", "NETLIFY", "INPUT_"))
               and k not in ("DATABASE_URL", "DIRECT_URL", "CONTEXT", "REVIEW_ID", "CI")}
        # If the parse-only mode ever stopped working, fail fast on an unreachable server
        # instead of starting a local one or reaching a real database.
        env["DATABASE_URL"] = "postgresql://check@127.0.0.1:1/none?connect_timeout=1"
        env["PREVIEWDB_HOME"] = str(self.work / "home")
        if check_args:
            env["PREVIEWDB_CHECK_ARGS"] = "1"
        return env

    def accepted(self, argv: list, where: str) -> bool:
        """argv starts with 'previewdb'; True when the real CLI parses it."""
        try:
            r = subprocess.run([self.previewdb] + argv[1:], cwd=self.work, capture_output=True,
                               text=True, timeout=30, env=self.cli_env(True))
        except subprocess.TimeoutExpired:
            return self.check(False, f"{where}: {shlex.join(argv)}", "timed out in parse-only mode")
        return self.check(r.returncode == 0, f"{where}: {shlex.join(argv)} is accepted",
                          f"exit {r.returncode}: {r.stderr.strip()}")

    def check_parse_only_mode(self):
        """The checks below mean something only if the parse-only mode rejects bad flags."""
        env = self.cli_env(True)
        bad = subprocess.run([self.previewdb, "ci", "--no-such-flag"], cwd=self.work,
                             capture_output=True, text=True, timeout=30, env=env)
        self.check(bad.returncode == 2 and "no-such-flag" in bad.stderr,
                   "PREVIEWDB_CHECK_ARGS=1 previewdb ci --no-such-flag exits 2 naming the flag",
                   f"exit {bad.returncode}: {bad.stderr.strip()}")
        good = subprocess.run([self.previewdb, "migrate", "--dry-run"], cwd=self.work,
                              capture_output=True, text=True, timeout=30, env=env)
        self.check(good.returncode == 0 and good.stdout == "",
                   "PREVIEWDB_CHECK_ARGS=1 previewdb migrate --dry-run exits 0 without output",
                   f"exit {good.returncode}: {good.stdout.strip()} {good.stderr.strip()}")

    # --- extracting command lines -------------------------------------------------------------

    @staticmethod
    def substitute_expressions(text: str) -> str:
        def value(m):
            for word, v in EXPRESSION_VALUES:
                if word in m.group(1):
                    return v
            return "x"
        return re.sub(r"\$\{\{(.*?)\}\}", value, text, flags=re.S)

    @staticmethod
    def previewdb_commands(script: str) -> list:
        """The previewdb invocations in a shell script, one logical line at a time (not function
        definitions, not words inside quotes or comments)."""
        commands = []
        for line in re.sub(r"\\\n", " ", script).splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens = list(lexer)
            current = []
            for i, tok in enumerate(tokens + [";"]):
                if tok not in SHELL_SEPARATORS:
                    current.append(tok)
                    continue
                words = [w for w in current if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w)]
                if words[:2] == ["npx", "previewdb"]:  # the npm package's launcher
                    words = words[1:]
                # `previewdb() { ...; }` defines a function (punctuation groups "()").
                is_definition = tok == "()" or (tok == "(" and tokens[i + 1:i + 2] == [")"])
                if words and os.path.basename(words[0]) == "previewdb" and not is_definition:
                    commands.append(["previewdb"] + words[1:])
                current = []
        return commands

    # --- action.yml ---------------------------------------------------------------------------

    def check_action(self) -> dict:
        path = self.root / "action.yml"
        try:
            action = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            self.check(False, "action.yml parses as YAML", str(e))
            return {}
        self.check(True, "action.yml parses as YAML")
        inputs = action.get("inputs") or {}
        outputs = action.get("outputs") or {}
        runs = action.get("runs") or {}
        steps = runs.get("steps") or []
        self.check(runs.get("using") == "composite",
                   "action.yml is a composite action (it runs on the runner, no Docker image)",
                   f"runs.using={runs.get('using')!r}")
        run_step = next((s for s in steps if s.get("id") == "run"), {})
        self.check(bool(run_step), "action.yml has the step id 'run' that runs previewdb")
        env = {str(k): str(v) for k, v in (run_step.get("env") or {}).items()}
        self.check(str(run_step.get("run", "")).strip() ==
                   'bash "$ACTION_PATH/scripts/action-run.sh"',
                   "the run step runs scripts/action-run.sh", str(run_step.get("run")))
        self.check_install_steps(steps, self.root / "install/action.yml")
        self.check(env.get("INPUT_COMMAND") == "${{ inputs.command }}",
                   "the run step passes the command input (ci or safe-migrate) to action-run.sh",
                   str(env.get("INPUT_COMMAND")))

        step_text = json.dumps(steps)
        referenced = set(re.findall(r"inputs\.([A-Za-z0-9_-]+)", step_text))
        for name in inputs:
            self.check(name in referenced, f"action input '{name}' is used by a step")
        for name in sorted(referenced - set(inputs)):
            self.check(False, f"runs refers to inputs.{name}, which action.yml does not declare")

        # Inputs reach scripts only through env: an expression inside run: text would be pasted
        # into the script (logged, and injectable).
        for step in steps:
            if "run" in step:
                self.check("${{" not in str(step["run"]), "no expression inside a run: script",
                           str(step["run"]))
        # Flag inputs (INPUT_*) are exactly action-run.sh's table; the rest are variables
        # previewdb reads (a typo would silently do nothing).
        run_script = (self.root / "scripts/action-run.sh").read_text()
        table = set()
        for arr in ("value_flags", "switches"):
            m = re.search(arr + r"=\((.*?)\)", run_script)
            table |= set(m.group(1).split()) if m else set()
        flag_vars = {"INPUT_" + n.upper().replace("-", "_") for n in table}
        sources = "\n".join(p.read_text(errors="replace") for p in (self.root / "src").rglob("*.cpp"))
        for name in env:
            if name == "INPUT_COMMAND":
                continue
            if name.startswith("INPUT_"):
                self.check(name in flag_vars, f"run step env {name} is a flag in action-run.sh")
            elif name not in ("PREVIEWDB_BIN", "ACTION_PATH"):
                self.check(f'"{name}"' in sources, f"run step env {name} is a variable previewdb reads")
        for var in sorted(flag_vars - set(env)):
            self.check(False, f"action-run.sh's flag {var} is set by the run step's env")

        self.check(set(outputs) == EXPECTED_OUTPUTS | FAILURE_OUTPUTS | SAFE_MIGRATE_OUTPUTS,
                   "action outputs are exactly the ci outputs",
                   f"declared {sorted(outputs)}, expected "
                   f"{sorted(EXPECTED_OUTPUTS | FAILURE_OUTPUTS | SAFE_MIGRATE_OUTPUTS)}")
        for name, out in outputs.items():
            self.check(str((out or {}).get("value", "")).replace(" ", "") ==
                       "${{steps.run.outputs.%s}}" % name,
                       f"action output {name} is the run step's output of that name")
        db_url = str((outputs.get("database-url") or {}).get("description", "")).lower()
        self.check("password" in db_url, "the database-url output says it carries no password")

        # The run step as the runner evaluates it: every input empty (defaults), then every input
        # set; its command line goes through a wrapper that records the arguments.
        defaults = {k: str((v or {}).get("default", "")) for k, v in inputs.items()}
        set_values = {k: ("true" if defaults[k] in ("true", "false") else INPUT_VALUES.get(k, "x"))
                      for k in inputs}
        for label, values in (("inputs at their defaults", defaults), ("every input set", set_values)):
            context = {"inputs": values, "github": {"action_path": str(self.root)},
                       "steps": {"install": {"outputs": {"path": ""}}}}
            try:
                step_env = {k: evaluate(v, context) for k, v in env.items()}
            except ExpressionError as e:
                self.check(False, f"action run step env evaluates ({label})", str(e))
                continue
            argv = self.run_action_step(step_env, label)
            if argv is not None and label == "every input set":
                self.check("" not in argv, "with every input set, no argument is empty",
                           shlex.join(argv))
                for flag in sorted(table):
                    self.check(any(a == f"--{flag}" or a.startswith(f"--{flag}=") for a in argv),
                               f"input {flag} becomes --{flag}", shlex.join(argv))
        return action

    def run_action_step(self, step_env: dict, label: str):
        """Runs scripts/action-run.sh with the step's env through the real CLI (parse-only);
        returns the argv it ran, or None when it failed."""
        record = self.work / "argv"
        wrapper = self.work / "previewdb-wrapper"
        wrapper.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{record}'\n"
                           f"exec '{self.previewdb}' \"$@\"\n")
        wrapper.chmod(0o755)
        env = self.cli_env(True)
        env.update({k: v for k, v in step_env.items() if v != ""})
        env["PREVIEWDB_BIN"] = str(wrapper)
        r = subprocess.run(["bash", str(self.root / "scripts/action-run.sh")], cwd=self.work,
                           capture_output=True, text=True, timeout=30, env=env)
        argv = ["previewdb"] + record.read_text().splitlines() if record.exists() else []
        record.unlink(missing_ok=True)
        ok = self.check(r.returncode == 0 and argv[1:2] == ["ci"],
                        f"action.yml run step, {label}: {shlex.join(argv)} is accepted",
                        f"exit {r.returncode}: {r.stderr.strip()}")
        return argv if ok else None

    def check_install_steps(self, steps: list, install_action: Path):
        """action.yml's install steps and install/action.yml's are the same steps."""
        try:
            sub = yaml.safe_load(install_action.read_text())
        except (OSError, yaml.YAMLError) as e:
            self.check(False, f"{install_action.name} parses as YAML", str(e))
            return
        sub_steps = (sub.get("runs") or {}).get("steps") or []
        self.check((sub.get("runs") or {}).get("using") == "composite",
                   "install/action.yml is a composite action")

        def norm(step_list):
            return json.dumps(step_list).replace("${{ github.action_path }}/..",
                                                 "${{ github.action_path }}")
        self.check(norm(sub_steps) == norm(steps[:len(sub_steps)]) and len(sub_steps) == 3,
                   "action.yml starts with install/action.yml's three steps (resolve, cache, "
                   "install)")
        uses = [s.get("uses", "") for s in steps]
        self.check(any(str(u).startswith("actions/cache@") for u in uses),
                   "the action caches the installed binary with actions/cache")
        self.check(all("docker" not in json.dumps(s) for s in steps),
                   "the action's steps use no Docker")

    def check_outputs_written(self):
        """The keys a real `previewdb ci --dry-run` writes to $GITHUB_OUTPUT (closed event)."""
        fixture = self.root / "tests/fixtures/github/pull_request/closed.payload.json"
        event = self.work / "event.json"
        event.write_text(fixture.read_text())
        out = self.work / "github_output"
        out.write_text("")
        env = self.cli_env(False)
        env.update({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request",
                    "GITHUB_EVENT_PATH": str(event), "GITHUB_OUTPUT": str(out),
                    "GITHUB_REPOSITORY": "acme/shop"})
        r = subprocess.run([self.previewdb, "ci", "--dry-run"], cwd=self.work, capture_output=True,
                           text=True, timeout=60, env=env)
        if not self.check(r.returncode == 0, "previewdb ci --dry-run on a closed event succeeds",
                          f"exit {r.returncode}: {r.stderr.strip()}"):
            return
        keys, lines = set(), out.read_text().split("\n")
        i = 0
        while i < len(lines):
            line = lines[i]
            if "<<" in line:
                key, delim = line.split("<<", 1)
                keys.add(key)
                i += 1
                while i < len(lines) and lines[i] != delim:
                    i += 1
            elif "=" in line:
                keys.add(line.split("=", 1)[0])
            i += 1
        self.check(keys == EXPECTED_OUTPUTS, "previewdb ci writes exactly the declared outputs",
                   f"wrote {sorted(keys)}")

    # --- workflows ----------------------------------------------------------------------------

    def check_workflows(self, action: dict) -> int:
        inputs = set((action.get("inputs") or {}))
        required = {k for k, v in (action.get("inputs") or {}).items() if (v or {}).get("required")}
        outputs = set((action.get("outputs") or {}))
        files = sorted((self.root / "workflows").glob("*.y*ml"))
        self.check(len(files) >= 3, "workflows/ holds the workflows", str(files))
        commands = 0
        for path in files:
            name = path.name
            try:
                wf = yaml.safe_load(path.read_text())
            except yaml.YAMLError as e:
                self.check(False, f"{name} parses as YAML", str(e))
                continue
            self.check(isinstance(wf, dict) and "jobs" in wf, f"{name} parses as a workflow")
            on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as true
            self.check(on is not None, f"{name} has triggers")
            expect_triggers(self, name, on, wf)
            step_ids_using_action = set()
            # pull_request_target runs a fork's migrations with the base repository's secrets:
            # they must run as the separate migration login (issue 7 item 2b), and nothing from
            # the pull request may run or receive the CI role's URL.
            untrusted = "pull_request_target" in (on if isinstance(on, (dict, list)) else [on])
            for job_name, job in (wf.get("jobs") or {}).items():
                if untrusted:
                    for step in job.get("steps") or []:
                        uses = str(step.get("uses", ""))
                        with_ = step.get("with") or {}
                        if re.search(r"(^|/)previewdb(@|$)", uses) or uses == "./":
                            self.check("migrate-url" in with_,
                                       f"{name}: an untrusted (pull_request_target) run passes "
                                       "migrate-url to the action")
                            for key in ("migrate-command", "export-env", "env-file"):
                                self.check(key not in with_,
                                           f"{name}: an untrusted run does not set {key}")
                        if uses.startswith("actions/checkout"):
                            self.check(with_.get("persist-credentials") is False,
                                       f"{name}: the untrusted checkout keeps no credentials")
                        if "run" in step:
                            self.check("DATABASE_URL" not in str(step["run"]) and
                                       "database-url" not in str(step.get("env", "")),
                                       f"{name}: no run step of an untrusted run gets the "
                                       "database URL")
                self.check("runs-on" in job, f"{name}: job {job_name} has runs-on")
                self.check(not re.search(r"docker (build|run)", json.dumps(job)),
                           f"{name}: job {job_name} uses no docker build/run (the install step "
                           "installs previewdb)")
                for step in job.get("steps") or []:
                    self.check(("uses" in step) != ("run" in step),
                               f"{name}: every step has exactly one of uses/run", str(step))
                    uses = str(step.get("uses", ""))
                    if re.search(r"(^|/)previewdb(@|$)", uses) or uses == "./":
                        with_keys = set((step.get("with") or {}))
                        for key in sorted(with_keys - inputs):
                            self.check(False, f"{name}: input '{key}' is declared by action.yml")
                        self.check(required <= with_keys,
                                   f"{name}: the action step sets the required inputs",
                                   f"missing {sorted(required - with_keys)}")
                        if "id" in step:
                            step_ids_using_action.add(step["id"])
                    if "run" in step:
                        script = self.substitute_expressions(str(step["run"]))
                        syntax = subprocess.run(["bash", "-n"], input=script, text=True,
                                                capture_output=True)
                        self.check(syntax.returncode == 0, f"{name}: run step is valid bash",
                                   syntax.stderr.strip())
                        for argv in self.previewdb_commands(script):
                            commands += 1
                            self.accepted(argv, name)
            text = path.read_text()
            for step_id, key in re.findall(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)", text):
                if step_id in step_ids_using_action:
                    self.check(key in outputs, f"{name}: output '{key}' is declared by action.yml")
        return commands

    def check_netlify(self) -> int:
        path = self.root / "workflows/netlify.toml"
        try:
            conf = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            self.check(False, "netlify.toml parses as TOML", str(e))
            return 0
        self.check(True, "netlify.toml parses as TOML")
        scripts = [conf.get("build", {}).get("command", "")]
        scripts += [c.get("command", "") for c in conf.get("context", {}).values()]
        commands = 0
        for script in filter(None, scripts):
            for argv in self.previewdb_commands(script):
                commands += 1
                self.accepted(argv, "netlify.toml")
                self.check("--" in argv[2:] and argv[1] == "ci",
                           "netlify.toml runs the build through 'previewdb ci -- CMD'",
                           shlex.join(argv))
        self.check(commands > 0, "netlify.toml runs previewdb")
        return commands

    # --- Dockerfile and runtime packages ------------------------------------------------------

    def check_dockerfile(self):
        text = (self.root / "Dockerfile").read_text()
        logical = re.sub(r"\\\n", " ", text)
        stages = re.findall(r"^FROM\s+(\S+)", logical, flags=re.M)
        self.check(len(stages) >= 2 and all(s in ("debian:12-slim", "debian:bookworm",
                                                  "debian:bookworm-slim") for s in stages),
                   "Dockerfile is a multi-stage Debian 12 build", str(stages))
        runs = re.findall(r"^RUN\s+(.*)$", logical, flags=re.M)
        self.check(any(re.search(r"install-deps\.sh(\s*&&|\s*$)", r) for r in runs),
                   "the build stage runs install-deps.sh (build mode)")
        self.check(any("install-deps.sh --runtime" in r for r in runs),
                   "the runtime stage runs install-deps.sh --runtime")
        cmake = " ".join(r for r in runs if "cmake" in r)
        for flag in ("-DCMAKE_BUILD_TYPE=Release", "-DPREVIEWDB_BUILD_TESTS=OFF",
                     "-DPREVIEWDB_BUILD_BENCH=OFF"):
            self.check(flag in cmake, f"the Dockerfile configures with {flag}")
        self.check(re.search(r'^ENTRYPOINT\s+\["previewdb"\]', logical, flags=re.M) is not None,
                   'ENTRYPOINT ["previewdb"]')
        # libgit2 1.5 refuses a workspace owned by another user and ignores safe.directory '*'.
        self.check("safe.directory /github/workspace" in logical,
                   "the image marks the action's /github/workspace as a safe git directory")
        ignore = [line.strip() for line in (self.root / ".dockerignore").read_text().splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
        for src in re.findall(r"^COPY\s+(?!--from)(\S+)", logical, flags=re.M):
            self.check((self.root / src).exists(), f"COPY source {src} exists")
            self.check(not any(src.startswith(p.rstrip("/*")) for p in ignore if p),
                       f".dockerignore keeps {src}")

        # The runtime list provides every library the binary links directly (apt pulls in the
        # rest), and names packages that exist: here they are installed by the build mode.
        script = (self.root / "scripts/install-deps.sh").read_text()
        m = re.search(r"runtime_pkgs=\((.*?)\)", script, flags=re.S)
        runtime = set(re.sub(r"#.*", "", m.group(1)).split()) if m else set()
        self.check({"postgresql-client", "git", "ca-certificates"} <= runtime,
                   "the runtime list has postgresql-client, git and ca-certificates",
                   str(sorted(runtime)))
        self.check("postgresql" not in runtime, "the runtime image has no PostgreSQL server")
        for pkg in sorted(runtime):
            st = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True,
                                text=True)
            self.check("install ok installed" in st.stdout,
                       f"runtime package {pkg} exists (installed here by install-deps.sh)")
        dyn = subprocess.run(["readelf", "-d", self.previewdb], capture_output=True, text=True)
        needed = re.findall(r"\(NEEDED\).*\[(.+?)\]", dyn.stdout)
        self.check(bool(needed), "readelf lists the binary's libraries", dyn.stderr.strip())
        ldd = subprocess.run(["ldd", self.previewdb], capture_output=True, text=True).stdout
        for lib in needed:
            # The dynamic loader (named by a binary that links only glibc, like the portable one)
            # is listed by its path alone.
            m = re.search(rf"^\s*{re.escape(lib)} => (\S+)", ldd, flags=re.M) or \
                re.search(rf"^\s*(/\S*/{re.escape(lib)}) \(", ldd, flags=re.M)
            if not self.check(m is not None, f"{lib} resolves"):
                continue
            real = os.path.realpath(m.group(1))
            owner = ""
            for candidate in (m.group(1), real, real.replace("/usr/lib/", "/lib/", 1),
                              real.replace("/lib/", "/usr/lib/", 1)):
                r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
                if r.returncode == 0:
                    owner = r.stdout.split(":")[0]
                    break
            self.check(owner in runtime or owner in BASE_IMAGE_PACKAGES,
                       f"{lib} (package {owner or '?'}) is in the runtime image")


class ExpressionError(Exception):
    pass


def evaluate(text: str, context: dict) -> str:
    """Evaluates the ${{ }} parts of a string with the subset of GitHub's expression language
    that action.yml uses: property access, '...' literals, ==, !=, &&, ||, !, format()."""
    def repl(m):
        return to_string(Expr(m.group(1), context).parse())
    return re.sub(r"\$\{\{(.*?)\}\}", repl, text, flags=re.S)


def to_string(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Expr:
    TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>&&|\|\||==|!=|[!(),])|"
                       r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*))")

    def __init__(self, text: str, context: dict):
        self.tokens, pos = [], 0
        text = text.strip()
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ExpressionError(f"cannot read expression at {text[pos:]!r}")
            self.tokens.append(m)
            pos = m.end()
        self.i = 0
        self.context = context

    def peek(self):
        return self.tokens[self.i].group(0).strip() if self.i < len(self.tokens) else None

    def take(self):
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self):
        v = self.or_expr()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()!r}")
        return v

    def or_expr(self):
        v = self.and_expr()
        while self.peek() == "||":
            self.take()
            rhs = self.and_expr()
            v = v if truthy(v) else rhs
        return v

    def and_expr(self):
        v = self.cmp_expr()
        while self.peek() == "&&":
            self.take()
            rhs = self.cmp_expr()
            v = rhs if truthy(v) else v
        return v

    def cmp_expr(self):
        v = self.unary()
        while self.peek() in ("==", "!="):
            op = self.take().group(0).strip()
            rhs = self.unary()
            equal = to_string(v).lower() == to_string(rhs).lower()
            v = equal if op == "==" else not equal
        return v

    def unary(self):
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        if self.peek() == "(":
            self.take()
            v = self.or_expr()
            self.expect(")")
            return v
        tok = self.take()
        if tok.group("str"):
            return tok.group("str")[1:-1].replace("''", "'")
        name = tok.group("name")
        if name is None:
            raise ExpressionError(f"unexpected {tok.group(0)!r}")
        if self.peek() == "(":
            self.take()
            args = [self.or_expr()]
            while self.peek() == ",":
                self.take()
                args.append(self.or_expr())
            self.expect(")")
            if name != "format":
                raise ExpressionError(f"function {name}() is not supported by this checker")
            return re.sub(r"\{(\d+)\}", lambda m: to_string(args[1 + int(m.group(1))]),
                          to_string(args[0]))
        if name in ("true", "false"):
            return name == "true"
        value = self.context
        for part in name.split("."):
            if not isinstance(value, dict) or part not in value:
                raise ExpressionError(f"unknown {name}")
            value = value[part]
        return value

    def expect(self, op):
        if self.peek() != op:
            raise ExpressionError(f"expected {op!r}, got {self.peek()!r}")
        self.take()


def truthy(v) -> bool:
    return bool(v) and v != 0


def expect_triggers(c: Checker, name: str, on, wf: dict):
    """What issue #4 asks of each workflow."""
    text = json.dumps(wf)
    if name == "preview-database.yml":
        types = set(((on or {}).get("pull_request") or {}).get("types") or [])
        c.check({"opened", "synchronize", "reopened", "labeled"} <= types,
                f"{name} runs on pull_request opened, synchronize, reopened, labeled", str(types))
        c.check('"fetch-depth": 0' in text, f"{name} checks out with fetch-depth: 0")
    elif name == "cleanup-on-close.yml":
        types = set(((on or {}).get("pull_request") or {}).get("types") or [])
        c.check(types == {"closed"}, f"{name} runs on pull_request closed", str(types))
    elif name == "cleanup-stale.yml":
        crons = [s.get("cron") for s in (on or {}).get("schedule") or []]
        c.check("0 2 * * *" in crons, f"{name} runs daily at 02:00 UTC", str(crons))
        c.check("--older-than 7d" in text, f"{name} drops databases older than 7 days")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--previewdb", required=True, help="the built previewdb binary")
    ap.add_argument("--root", required=True, type=Path, help="the repository root")
    a = ap.parse_args()
    c = Checker(os.path.abspath(a.previewdb), a.root.resolve())
    c.check_parse_only_mode()
    action = c.check_action()
    c.check_outputs_written()
    commands = c.check_workflows(action)
    c.check(commands > 0, "the workflows run previewdb command lines")
    commands += c.check_netlify()
    c.check_dockerfile()
    c.tmp.cleanup()
    print(f"packaging: {c.passed} passed, {c.failed} failed ({commands} previewdb command lines "
          f"from workflows/ and netlify.toml, plus action.yml's args)")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
