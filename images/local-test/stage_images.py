"""Every target of docker-bake.hcl built with the project's own Dockerfiles on the local test bases.

There is no buildx here, so bake itself cannot run: its file is evaluated by the same evaluator the static
image tests use (tests/images/image_checks.py), and each target becomes one `docker build` on the
daemon's BuildKit. A named context "target:X" is resolved the way the classic route allows: X is built
first and tagged with the context's name, which the stage Dockerfile's FROM then finds locally.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from engine import REPO, docker, image_size

sys.path.insert(0, str(REPO / "tests" / "images"))
import image_checks  # noqa: E402 -- the bake evaluator of the static tests, not a package

# Build stage of a Dockerfile to stop at, by target: the part that needs a source this machine cannot reach.
# segment's last stage adds hpacellseg from GitHub archives (no GitHub here): its "classic" stage runs
# the classic backend, which is the one the demo uses.
LOCAL_BUILD_STAGE = {"segment": "classic"}


@dataclasses.dataclass(frozen=True)
class Built:
    target: str
    image: str
    seconds: float
    size: int
    note: str = ""


class StageImages:
    def __init__(self, base_overrides: dict[str, str], log_dir: Path):
        self.bake = image_checks.Bake(image_checks.BAKE_FILE.read_text(), base_overrides)
        self.log_dir = log_dir
        self.built: dict[str, Built] = {}

    def targets(self, *groups: str) -> list[str]:
        return [name for group in groups for name in self.bake.groups[group]]

    def build(self, name: str) -> Built:
        if name in self.built:
            return self.built[name]
        target = self.bake.target(name)
        command = ["build", "--network", "host", "--progress", "plain",
                   "-f", str(REPO / target["context"] / target["dockerfile"])]
        for context_name, source in target.get("contexts", {}).items():
            if not source.startswith("target:"):
                raise ValueError(f"{name}: context {context_name}={source}: only target: contexts are resolved here")
            docker("tag", self.build(source[len("target:"):]).image, context_name)
        for key, value in target.get("args", {}).items():
            command += ["--build-arg", f"{key}={value}"]
        for key, value in target.get("labels", {}).items():
            command += ["--label", f"{key}={value}"]
        for platform in target.get("platforms", []):
            command += ["--platform", platform]
        for tag in target["tags"]:
            command += ["-t", tag]
        note = ""
        if name in LOCAL_BUILD_STAGE:
            command += ["--target", LOCAL_BUILD_STAGE[name]]
            note = f"build stage {LOCAL_BUILD_STAGE[name]!r} only"
        command.append(str(REPO / target["context"]))
        print(f"building {name} ...", flush=True)
        started = time.monotonic()
        with open(self.log_dir / f"build-{name}.log", "w") as log:
            try:
                docker(*command, stdout=log, stderr=log)
            except Exception:
                print(f"{name}: build failed, see {self.log_dir / f'build-{name}.log'}", file=sys.stderr)
                raise
        image = target["tags"][0]
        self.built[name] = Built(name, image, time.monotonic() - started, image_size(image), note)
        return self.built[name]


def table(built: list[Built]) -> str:
    lines = [f"{'target':<22} {'image':<40} {'size':>9} {'build':>8}"]
    for item in built:
        lines.append(f"{item.target:<22} {item.image:<40} {item.size / 1e9:>7.2f}GB {item.seconds:>7.0f}s"
                     + (f"  ({item.note})" if item.note else ""))
    return "\n".join(lines)
