"""Static checks of the stage images: docker-bake.hcl, images/*/Dockerfile, requirements, digest lock.

No Docker engine is needed (or available here): the bake file is parsed with python-hcl2 and evaluated by
the small evaluator below (plain strings, variable references, "${...}" interpolation, `inherits`), the
Dockerfiles with dockerfile-parse. Every check returns a list of problems (strings), empty when clean,
so the tests can also feed it bad input and see it flagged.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path

import hcl2
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[2]
BAKE_FILE = REPO / "docker-bake.hcl"
LOCK_FILE = REPO / "images" / "digests.hcl"
IMAGES = REPO / "images"
BASE_IMAGE_DIR = "base"  # images/base: the shared base Dockerfile, not a stage
# images/local-test: stand-ins for the upstream bases, built only by images/local-test/run.py, never pushed
LOCAL_TEST_DIR = "local-test"
ENTRYPOINT = ["python3", "-m", "stages.runstage"]
ROOT_USERS = {"root", "0"}

HEX40 = re.compile(r"^[0-9a-f]{40}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")
PINNED_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?:\[[A-Za-z0-9._,-]+\])?"
    r"==(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)$"
)
GITHUB_REFS = [
    re.compile(r"github\.com/[\w.-]+/[\w.-]+/archive/(?:refs/(?:heads|tags)/)?(?P<ref>[^\s\"'/]+?)\.(?:tar\.gz|zip)"),
    re.compile(r"codeload\.github\.com/[\w.-]+/[\w.-]+/(?:tar\.gz|zip|legacy\.tar\.gz)/(?P<ref>[^\s\"']+)"),
    re.compile(r"github\.com/[\w.-]+/[\w.-]+?(?:\.git)?@(?P<ref>[^\s\"'#]+)"),
    re.compile(r"github\.com/[\w.-]+/[\w.-]+?\.git#(?P<ref>[^\s\"':]+)"),
    re.compile(r"raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/(?P<ref>[^\s\"'/]+)/"),
]
GITHUB_URL = re.compile(r"(?:https?://|git\+https://|git@)(?:[\w-]+\.)?github(?:usercontent)?\.com[^\s\"']*")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- stages and image folders


def stage_names() -> set[str]:
    """Stages as the code declares them: the stage registry."""
    from stages.registry import STAGES

    return {stage.name for stage in STAGES}


def stage_tasks(stage: str) -> set[str]:
    """The tasks a stage's image can run (``stages.runstage`` runs declared tasks, not wrappers)."""
    from stages.registry import stage as declared

    return {spec.name for spec in declared(stage).tasks}


def image_dirs(repo: Path = REPO) -> set[str]:
    """Stage image folders: images/<name>/Dockerfile, less the shared base."""
    return {path.parent.name for path in (repo / "images").glob("*/Dockerfile")} - {BASE_IMAGE_DIR}


def dockerfiles(repo: Path = REPO) -> list[Path]:
    """Every image's Dockerfile: images/<name>/Dockerfile and the variants beside it, <variant>.Dockerfile."""
    found = [*(repo / "images").glob("*/Dockerfile"), *(repo / "images").glob("*/*.Dockerfile")]
    return sorted(path for path in found if path.parent.name != LOCAL_TEST_DIR)


def image_name(dockerfile: Path) -> str:
    """images/classify/Dockerfile -> classify; images/classify/jax-cuda.Dockerfile -> classify-jax-cuda."""
    if dockerfile.name == "Dockerfile":
        return dockerfile.parent.name
    return f"{dockerfile.parent.name}-{dockerfile.name.removesuffix('.Dockerfile')}"


def own_requirements(dockerfile: Path) -> Path:
    """requirements.txt beside a Dockerfile, requirements-<variant>.txt beside <variant>.Dockerfile."""
    if dockerfile.name == "Dockerfile":
        return dockerfile.with_name("requirements.txt")
    return dockerfile.with_name(f"requirements-{dockerfile.name.removesuffix('.Dockerfile')}.txt")


def dockerignore(dockerfile: Path) -> Path:
    """BuildKit reads <Dockerfile name>.dockerignore beside the Dockerfile instead of the context's own."""
    return dockerfile.with_name(f"{dockerfile.name}.dockerignore")


# ---------------------------------------------------------------- bake file


class UnsupportedExpression(ValueError):
    pass


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


class Bake:
    """docker-bake.hcl, evaluated the way `docker buildx bake` would for the forms this project uses.

    `overrides` are attribute assignments of further files given with -f (the digest lock).
    """

    IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
    INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
    MAP_ATTRIBUTES = ("args", "labels", "contexts")

    def __init__(self, text: str, overrides: dict[str, str] | None = None):
        data = hcl2.load(io.StringIO(text))
        self.variables: dict[str, object] = {}
        for block in data.get("variable", []):
            for name, body in block.items():
                self.variables[_unquote(name)] = body.get("default", '""')
        self.targets: dict[str, dict] = {}
        for block in data.get("target", []):
            for name, body in block.items():
                self.targets[_unquote(name)] = {k: v for k, v in body.items() if not k.startswith("__")}
        self.groups: dict[str, list[str]] = {}
        for block in data.get("group", []):
            for name, body in block.items():
                self.groups[_unquote(name)] = [_unquote(t) for t in body.get("targets", [])]
        self.overrides = dict(overrides or {})
        unknown = set(self.overrides) - set(self.variables)
        if unknown:
            raise UnsupportedExpression(f"overrides set undeclared variables: {sorted(unknown)}")

    @classmethod
    def load(cls, path: Path = BAKE_FILE, lock: Path | None = None) -> "Bake":
        return cls(path.read_text(), read_lock(lock) if lock else None)

    def variable(self, name: str, _stack: tuple = ()) -> str:
        if name in self.overrides:
            return self.overrides[name]
        if name not in self.variables:
            raise UnsupportedExpression(f"undefined variable {name}")
        if name in _stack:
            raise UnsupportedExpression(f"variable cycle {_stack + (name,)}")
        return self.evaluate(self.variables[name], _stack + (name,))

    def evaluate(self, value, _stack: tuple = ()):
        if isinstance(value, bool) or isinstance(value, (int, float)):
            return value
        if isinstance(value, list):
            return [self.evaluate(item, _stack) for item in value]
        if isinstance(value, dict):
            return {_unquote(k): self.evaluate(v, _stack) for k, v in value.items() if not k.startswith("__")}
        if isinstance(value, str):
            if len(value) >= 2 and value[0] == value[-1] == '"':
                def interpolate(match):
                    expression = match.group(1).strip()
                    if not self.IDENTIFIER.match(expression):
                        raise UnsupportedExpression(f"interpolation ${{{expression}}} is more than a variable")
                    return str(self.variable(expression, _stack))

                return self.INTERPOLATION.sub(interpolate, value[1:-1])
            if self.IDENTIFIER.match(value):
                return self.variable(value, _stack)
        raise UnsupportedExpression(f"expression {value!r} is outside what the static tests evaluate")

    def target(self, name: str, _stack: tuple = ()) -> dict:
        """A target with its `inherits` merged (maps key by key, other attributes replaced) and evaluated."""
        if name not in self.targets:
            raise KeyError(f"no target {name!r} in the bake file")
        if name in _stack:
            raise UnsupportedExpression(f"inherits cycle {_stack + (name,)}")
        raw = self.targets[name]
        merged: dict = {}
        for parent in self.evaluate(raw.get("inherits", []), ()):
            self._merge(merged, self.target(parent, _stack + (name,)))
        own = {k: self.evaluate(v) for k, v in raw.items() if k != "inherits"}
        self._merge(merged, own)
        merged.setdefault("context", ".")
        merged.setdefault("dockerfile", "Dockerfile")
        return merged

    def _merge(self, into: dict, attributes: dict) -> None:
        for key, value in attributes.items():
            if key in self.MAP_ATTRIBUTES:
                into[key] = {**into.get(key, {}), **value}
            else:
                into[key] = value

    def base_variables(self) -> dict[str, str]:
        """The *_BASE_IMAGE variables (defaults, without the lock): the upstream images pin-digests pins."""
        return {
            name: self.evaluate(value)
            for name, value in self.variables.items()
            if name.endswith("_BASE_IMAGE")
        }


def read_lock(path: Path = LOCK_FILE) -> dict[str, str]:
    data = hcl2.load(io.StringIO(path.read_text()))
    lock = {}
    for name, value in data.items():
        if name.startswith("__"):
            continue
        if not (isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"'):
            raise UnsupportedExpression(f"{path}: {name} is not a plain string")
        lock[name] = value[1:-1]
    return lock


# ---------------------------------------------------------------- Dockerfile parsing


def parse(text: str) -> list[dict]:
    return DockerfileParser(fileobj=io.BytesIO(text.encode())).structure


def _substitute(text: str, values: dict[str, str]) -> str:
    def replace(match):
        name = match.group(1) or match.group(2)
        if name not in values:
            raise UnsupportedExpression(f"${name} has no value (no ARG default, no build arg)")
        return values[name]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", replace, text)


def from_refs(text: str, build_args: dict[str, str] | None = None) -> list[str]:
    """The image every FROM starts from, ARGs resolved (build args over the ARG defaults before the first
    FROM); references to earlier build stages (FROM x AS name ... FROM name) are left out."""
    instructions = parse(text)
    defaults: dict[str, str] = {}
    aliases: set[str] = set()
    refs: list[str] = []
    seen_from = False
    for instruction in instructions:
        kind, value = instruction["instruction"], instruction["value"].strip()
        if kind == "ARG" and not seen_from:
            name, _, default = value.partition("=")
            defaults[name.strip()] = _unquote(default.strip())
        elif kind == "FROM":
            seen_from = True
            words = [w for w in value.split() if not w.startswith("--")]
            if not words:
                raise UnsupportedExpression(f"FROM without an image: {value!r}")
            ref = _substitute(words[0], {**defaults, **(build_args or {})})
            if ref.lower() not in aliases and ref != "scratch":
                refs.append(ref)
            if len(words) >= 3 and words[1].lower() == "as":
                aliases.add(words[2].lower())
    if not seen_from:
        raise UnsupportedExpression("no FROM")
    return refs


def image_ref_problems(ref: str) -> list[str]:
    """An upstream image must name an exact version tag (x.y.z in it), never latest or no tag; a digest,
    where present, must be a sha256 one."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    problems = []
    if ":" not in last:
        problems.append(f"{ref}: no tag (an untagged image means :latest)")
    else:
        tag = last.rsplit(":", 1)[1]
        if tag.lower() == "latest":
            problems.append(f"{ref}: the tag latest is not a version")
        elif not EXACT_VERSION.search(tag):
            problems.append(f"{ref}: tag {tag!r} is not an exact version (x.y.z)")
    if digest and not DIGEST.match(digest):
        problems.append(f"{ref}: {digest!r} is not a sha256 digest")
    return problems


def user_problems(text: str) -> list[str]:
    """The image must not run as root: a USER after the last FROM, and the last one not root or 0."""
    users: list[str] = []
    for instruction in parse(text):
        if instruction["instruction"] == "FROM":
            users = []
        elif instruction["instruction"] == "USER":
            users.append(instruction["value"].strip())
    if not users:
        return ["no USER after the last FROM: the image runs as its base's user (root, for most bases)"]
    user = users[-1].split(":", 1)[0]
    if user in ROOT_USERS:
        return [f"the last USER is {users[-1]!r}: the image runs as root"]
    if "$" in user:
        return [f"USER {users[-1]!r} depends on a variable: cannot tell statically that it is not root"]
    return []


def exec_form(value: str) -> list[str] | None:
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return parsed
    return None


def entrypoint_problems(text: str) -> list[str]:
    """A stage image runs `python3 -m stages.runstage <Task> [--params]`: that ENTRYPOINT in exec form,
    a default CMD naming the task. A stage built FROM an earlier build stage inherits both from it."""
    entrypoint = cmd = name = None
    stages: dict[str, tuple] = {}
    for instruction in parse(text):
        if instruction["instruction"] == "FROM":
            words = [w.lower() for w in instruction["value"].split() if not w.startswith("--")]
            entrypoint, cmd = stages.get(words[0], (None, None))
            name = words[2] if len(words) >= 3 and words[1] == "as" else None
        elif instruction["instruction"] == "ENTRYPOINT":
            entrypoint = instruction["value"]
        elif instruction["instruction"] == "CMD":
            cmd = instruction["value"]
        if name:
            stages[name] = (entrypoint, cmd)
    problems = []
    if entrypoint is None or exec_form(entrypoint) != ENTRYPOINT:
        problems.append(f"ENTRYPOINT is {entrypoint!r}, not the exec form {json.dumps(ENTRYPOINT)}")
    words = exec_form(cmd) if cmd is not None else None
    if not words or not re.match(r"^[A-Z][A-Za-z0-9]*$", words[0]):
        problems.append(f"CMD is {cmd!r}, not an exec-form list starting with the stage's task name")
    return problems


def default_task(text: str) -> str | None:
    for instruction in reversed(parse(text)):
        if instruction["instruction"] == "CMD":
            words = exec_form(instruction["value"])
            return words[0] if words else None
    return None


def copy_sources(text: str) -> list[str]:
    """Build-context paths that COPY instructions read (not COPY --from, not ADD of URLs)."""
    sources = []
    for instruction in parse(text):
        if instruction["instruction"] != "COPY":
            continue
        words = shlex.split(instruction["value"])
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        if words and words[0].startswith("["):
            words = exec_form(instruction["value"]) or []
        sources.extend(words[:-1])
    return sources


def dockerignore_problems(ignore_text: str, sources: list[str]) -> list[str]:
    """<Dockerfile>.dockerignore is an allowlist (`*`, then `!path` per path the image reads), so the
    repository-root context never ships .venv, data or outputs; every COPY source must be let through."""
    patterns = [line.strip() for line in ignore_text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    problems = []
    if not patterns or patterns[0] != "*":
        problems.append("not an allowlist: the first pattern must be *")
    for source in sources:
        if f"!{source.rstrip('/')}" not in patterns:
            problems.append(f"COPY {source}: excluded from the build context (no !{source.rstrip('/')} line)")
    return problems


# ---------------------------------------------------------------- pip installs and requirements

# pip install options that take a value as the next word
PIP_OPTIONS_WITH_VALUE = {
    "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
    "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root", "--platform",
    "--python-version", "--implementation", "--abi", "--src", "--upgrade-strategy", "--progress-bar",
    "--report", "--log", "--cache-dir", "--trusted-host", "--proxy", "--retries", "--timeout",
    "--exists-action", "--cert", "--client-cert", "-C", "--config-settings", "--global-option",
    "--no-binary", "--only-binary",
}
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", "(", ")", ";;"}


def shell_commands(command: str) -> list[list[str]]:
    """A RUN line cut into simple commands (quotes respected), each a list of words."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current = [], []
    for token in lexer:
        if token in SHELL_OPERATORS or set(token) <= set("&|;()"):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


def pip_install_arguments(words: list[str]) -> tuple[list[str], list[str], list[str]] | None:
    """(requirement words, requirement files, flags) of a `pip install` / `python -m pip install`
    command, or None when the command is not one."""
    index = None
    for i, word in enumerate(words):
        base = word.rsplit("/", 1)[-1]
        if re.match(r"^pip(3(\.\d+)?)?$", base) and (i == 0 or words[i - 1] == "-m" or "=" in words[i - 1]
                                                       or words[i - 1] in ("exec", "sudo", "env")):
            index = i
            break
    if index is None:
        return None
    rest = words[index + 1:]
    while rest and rest[0].startswith("-"):
        rest = rest[1:]  # global options before the subcommand
    if not rest or rest[0] != "install":
        return None
    requirements, files, flags = [], [], []
    args = iter(rest[1:])
    for word in args:
        if word in PIP_OPTIONS_WITH_VALUE:
            value = next(args, "")
            if word in ("-r", "--requirement"):
                files.append(value)
            elif word in ("-e", "--editable"):
                requirements.append(value)
            flags.append(word)
        elif word.startswith("-"):
            flags.append(word.split("=", 1)[0])
            if word.startswith(("--requirement=", "-r=")):
                files.append(word.split("=", 1)[1])
        else:
            requirements.append(word)
    return requirements, files, flags


def github_problems(text: str) -> list[str]:
    """Every GitHub source (archive, codeload, git URL, raw file) must be pinned to a full 40-hex commit."""
    problems = []
    for match in GITHUB_URL.finditer(text):
        url = match.group(0)
        refs = [m.group("ref") for pattern in GITHUB_REFS for m in [pattern.search(url)] if m]
        if not refs:
            problems.append(f"{url}: a GitHub source without a commit (pin an archive of a 40-hex commit)")
        elif not HEX40.match(refs[0]):
            problems.append(f"{url}: {refs[0]!r} is not a full 40-hex commit hash")
    return problems


def requirement_problems(spec: str, no_deps: bool) -> list[str]:
    if spec == "." or spec.startswith(("/", "./", "../")):
        return [] if no_deps else [f"{spec}: a local project installed without --no-deps pulls unpinned dependencies"]
    if "://" in spec or spec.startswith("git+"):
        url = spec.split("@", 1)[1].strip() if " @ " in spec else spec
        problems = github_problems(url) if "github" in url else [f"{spec}: a URL other than a pinned GitHub archive"]
        if not no_deps:
            problems.append(f"{spec}: installed from a URL without --no-deps pulls unpinned dependencies")
        return problems
    if not PINNED_REQUIREMENT.match(spec.split(";", 1)[0].strip()):
        return [f"{spec!r} is not pinned with == to one version"]
    return []


def pip_problems(text: str) -> list[str]:
    """Every `pip install` of every RUN installs pinned packages only."""
    problems = []
    for instruction in parse(text):
        if instruction["instruction"] != "RUN":
            continue
        for words in shell_commands(instruction["value"]):
            parsed = pip_install_arguments(words)
            if parsed is None:
                continue
            requirements, files, flags = parsed
            if not requirements and not files:
                problems.append(f"pip install with nothing to install: {' '.join(words)!r}")
            for flag in ("-U", "--upgrade", "--pre", "--force-reinstall"):
                if flag in flags:
                    problems.append(f"pip install {flag}: versions must come from the pins, not the index")
            for spec in requirements:
                problems.extend(requirement_problems(spec, "--no-deps" in flags))
    return problems


def requirements_files_installed(text: str) -> list[str]:
    files = []
    for instruction in parse(text):
        if instruction["instruction"] == "RUN":
            for words in shell_commands(instruction["value"]):
                parsed = pip_install_arguments(words)
                if parsed:
                    files.extend(parsed[1])
    return files


def requirements_lines(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            lines.append(line)
    return lines


def requirements_problems(text: str) -> list[str]:
    """A per-image requirements file: one `name==version` per line, nothing looser, no options."""
    problems = []
    for line in requirements_lines(text):
        if line.startswith("-"):
            problems.append(f"{line!r}: options in a requirements file (index, includes) are not allowed here")
        else:
            problems.extend(requirement_problems(line, no_deps=True))
    return problems


def requirements_pins(text: str) -> dict[str, str]:
    pins = {}
    for line in requirements_lines(text):
        match = PINNED_REQUIREMENT.match(line.split(";", 1)[0].strip())
        if match:
            pins[canonical(match["name"])] = match["version"]
    return pins


def dockerfile_problems(text: str) -> list[str]:
    """Everything checked on one Dockerfile's text, bake aside (FROM tags need the bake contexts)."""
    return user_problems(text) + pip_problems(text) + github_problems(text)


# ---------------------------------------------------------------- bake-level checks


def external_bases(bake: Bake, target_name: str, repo: Path = REPO, _stack: tuple = ()) -> list[str]:
    """The upstream images a target is built from, following `contexts` ("target:x" builds another target,
    "docker-image://ref" names an image) the way bake hands them to the Dockerfile's FROM."""
    if target_name in _stack:
        raise UnsupportedExpression(f"context cycle {_stack + (target_name,)}")
    target = bake.target(target_name)
    dockerfile = repo / target["context"] / target["dockerfile"]
    bases = []
    for ref in from_refs(dockerfile.read_text(), target.get("args", {})):
        context = target.get("contexts", {}).get(ref)
        if context is None:
            bases.append(ref)
        elif context.startswith("target:"):
            bases.extend(external_bases(bake, context[len("target:"):], repo, _stack + (target_name,)))
        elif context.startswith("docker-image://"):
            bases.append(context[len("docker-image://"):])
        else:
            raise UnsupportedExpression(f"{target_name}: context {ref} = {context!r} is neither a target nor an image")
    return bases


def bake_problems(bake: Bake, stages: set[str], images: set[str], repo: Path = REPO) -> list[str]:
    """Coverage: every stage has an image folder and a target in the default group, every image folder
    is a default target, every target's Dockerfile exists, every upstream base is an exact tag that the
    *_BASE_IMAGE variables (hence the digest lock) name."""
    problems = []
    default = set(bake.groups.get("default", []))
    if not default:
        problems.append("no default group")
    for stage in sorted(stages - default):
        problems.append(f"stage {stage} (stages/{stage}/stage.py) has no target in the default group")
    for stage in sorted(stages - images):
        problems.append(f"stage {stage} has no images/{stage}/Dockerfile")
    for image in sorted(images - default):
        problems.append(f"images/{image}/Dockerfile is not a target of the default group")
    for name in sorted(default - set(bake.targets)):
        problems.append(f"the default group names {name}, which is no target")
    base_values = set(bake.base_variables().values())
    for name in sorted(bake.targets):
        if name.startswith("_"):
            continue  # abstract targets, only inherited
        target = bake.target(name)
        dockerfile = repo / target["context"] / target["dockerfile"]
        if not dockerfile.is_file():
            problems.append(f"target {name}: {dockerfile.relative_to(repo)} does not exist")
            continue
        for ref in external_bases(bake, name, repo):
            problems.extend(f"target {name}: {problem}" for problem in image_ref_problems(ref))
            if ref.partition("@")[0] not in {value.partition("@")[0] for value in base_values}:
                problems.append(f"target {name}: base {ref} is not a *_BASE_IMAGE variable, so no lock covers it")
    return problems


def lock_problems(bake: Bake, lock: dict[str, str]) -> list[str]:
    """The lock sets exactly the *_BASE_IMAGE variables, each to its bake tag or tag@sha256:<digest>."""
    bases = bake.base_variables()
    problems = [f"{name}: in the lock but no *_BASE_IMAGE variable of the bake file" for name in sorted(set(lock) - set(bases))]
    for name, tag in sorted(bases.items()):
        if name not in lock:
            problems.append(f"{name} ({tag}): missing from the lock")
            continue
        ref, _, digest = lock[name].partition("@")
        if ref != tag:
            problems.append(f"{name}: the lock pins {lock[name]!r} but the bake tag is {tag!r}")
        if digest and not DIGEST.match(digest):
            problems.append(f"{name}: {digest!r} is not a sha256 digest")
    return problems
