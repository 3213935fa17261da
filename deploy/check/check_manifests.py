#!/usr/bin/env python3
"""Validates the Kubernetes manifests under deploy/kubernetes/.

    check_manifests.py [--kpipe PATH] [FILE...]

- Every YAML document against the API schemas of the oldest Kubernetes version the manifests
  support and of the newest one kubernetes-validate knows, in strict mode (an unknown field is
  an error, as `kubectl apply --validate=strict` makes it). A kind without a schema is an error.
- An Indexed Job's `--shards N` equals its `completions`: pod K is shard K of N.
- Every `${NAME}` of a kpipe.toml held in a ConfigMap is a key of the Secret the file says to
  create (`kubectl create secret ... --from-literal=NAME=...`) or defines.
- With --kpipe: kpipe loads each such kpipe.toml (`kpipe plan`, which calls no API), with its
  output replaced by a local directory and a placeholder for each `${NAME}`, so that a key kpipe
  does not know fails here rather than in the first night's pods.

Exit code 0 when all of that holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from kubernetes_validate import utils as kv

MANIFESTS = Path(__file__).resolve().parent.parent / "kubernetes"
OLDEST_SUPPORTED = "1.31.0"

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_LITERAL = re.compile(r"--from-literal=([A-Za-z_][A-Za-z0-9_]*)=")


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def name_of(doc: dict) -> str:
    return f"{doc.get('kind', '?')}/{doc.get('metadata', {}).get('name', '?')}"


def schema_errors(path: Path, doc: dict, versions: list[str]) -> list[str]:
    errors = []
    for version in versions:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as e:
            at = ".".join(str(p) for p in e.path) or "(document)"
            errors.append(f"{path.name}: {name_of(doc)} (Kubernetes {e.version}): {at}: {e.message}")
        except kv.SchemaNotFoundError as e:
            errors.append(f"{path.name}: {name_of(doc)}: {e.message}")
    return errors


def job_specs(doc: dict) -> list[dict]:
    if doc.get("kind") == "Job":
        return [doc.get("spec", {})]
    if doc.get("kind") == "CronJob":
        return [doc.get("spec", {}).get("jobTemplate", {}).get("spec", {})]
    return []


def shard_errors(path: Path, doc: dict) -> list[str]:
    errors = []
    for spec in job_specs(doc):
        if spec.get("completionMode") != "Indexed":
            continue
        for container in spec.get("template", {}).get("spec", {}).get("containers", []):
            args = [str(a) for a in container.get("command", []) + container.get("args", [])]
            if "--shards" not in args:
                continue
            at = args.index("--shards") + 1
            shards = args[at] if at < len(args) else None
            if shards != str(spec.get("completions")):
                errors.append(
                    f"{path.name}: {name_of(doc)}: container {container.get('name')} runs --shards {shards} "
                    f"but the Job has completions: {spec.get('completions')}"
                )
    return errors


def kpipe_configs(doc: dict) -> dict[str, str]:
    if doc.get("kind") != "ConfigMap":
        return {}
    return {key: text for key, text in (doc.get("data") or {}).items() if key.endswith(".toml")}


def secret_keys(path: Path, docs: list[dict]) -> set[str]:
    keys = set(SECRET_LITERAL.findall(path.read_text()))
    for doc in docs:
        if doc.get("kind") == "Secret":
            keys |= set(doc.get("data") or {}) | set(doc.get("stringData") or {})
    return keys


def load_with_kpipe(kpipe: Path, where: str, text: str) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="kpipe-manifest-") as tmp:
        local, count = re.subn(r'(?m)^output = ".*"$', 'output = "out"', text, count=1)
        if count != 1:
            return [f'{where}: no `output = "..."` line in [pipeline]']
        config = Path(tmp) / "kpipe.toml"
        config.write_text(local)
        # The configuration's variables alone: none of this machine's (AWS_*, say) reach kpipe.
        env = {name: "placeholder" for name in VARIABLE.findall(text)}
        result = subprocess.run(
            [str(kpipe), "plan", "-c", str(config)], capture_output=True, text=True, env=env, timeout=120
        )
        if result.returncode != 0:
            return [f"{where}: kpipe plan exited {result.returncode}:\n{result.stderr.strip()}"]
    return []


def check(path: Path, versions: list[str], kpipe: Path | None) -> tuple[int, list[str]]:
    docs = documents(path)
    errors = []
    keys = secret_keys(path, docs)
    for doc in docs:
        errors += schema_errors(path, doc, versions)
        errors += shard_errors(path, doc)
        for key, text in kpipe_configs(doc).items():
            where = f"{path.name}: {name_of(doc)} {key}"
            missing = sorted(set(VARIABLE.findall(text)) - keys)
            if missing:
                errors.append(f"{where}: ${{NAME}}s the Secret does not have: {', '.join(missing)}")
            if kpipe:
                errors += load_with_kpipe(kpipe, where, text)
    return len(docs), errors


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kpipe", type=Path, help="a kpipe binary, to load the kpipe.toml of each ConfigMap")
    parser.add_argument("files", nargs="*", type=Path, help=f"default: every *.yaml under {MANIFESTS}")
    args = parser.parse_args()
    files = args.files or sorted(MANIFESTS.glob("*.yaml")) + sorted(MANIFESTS.glob("*.yml"))
    if not files:
        print(f"check_manifests: no manifest under {MANIFESTS}")
        return 1
    versions = [OLDEST_SUPPORTED, kv.latest_version()]
    problems = []
    for path in files:
        count, errors = check(path, versions, args.kpipe)
        print(f"  {path.name}: {count} document(s), {'ok' if not errors else f'{len(errors)} error(s)'}")
        problems += errors
    for problem in problems:
        print(f"  ERROR {problem}")
    checked = f"Kubernetes {' and '.join(v.rsplit('.', 1)[0] for v in versions)}, strict"
    print(f"check_manifests: {len(files)} file(s) against {checked}: " + ("ok" if not problems else "failed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
