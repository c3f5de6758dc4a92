"""The deployment files: every Kubernetes manifest validates offline against the Kubernetes schemas
(``kubernetes-validate``), the manifests and the Containerfile pass the ``checkov`` policy checks, the commands in
them parse with triagekit's own CLI, and compose wires the service to PostgreSQL with the key from an env file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")
KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _resources() -> dict[str, dict]:
    return {d["kind"]: d for p in MANIFESTS for d in _docs(p)}


def _parse_cli(args: list[str], env: dict[str, str] | None = None):
    """``args`` as ``triagekit`` would parse them, $(VAR) expanded from ``env`` as Kubernetes does."""
    from triagekit.cli import ALIASES, TABLE
    from triagekit.core.cli import build_parser, resolve

    env = env or {}
    expanded = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in args]
    return build_parser(TABLE).parse_args(resolve(expanded, TABLE, ALIASES))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_validates_against_the_kubernetes_schema(path):
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (the test extra)")
    for doc in _docs(path):
        kv.validate(doc, "1.33.0", strict=True)  # strict: unknown fields are errors, not silently dropped


def test_schema_validation_can_fail():
    kv = pytest.importorskip("kubernetes_validate")
    bad = _resources()["Deployment"]
    bad = json.loads(json.dumps(bad))
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/ready"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, "1.33.0", strict=True)


def test_kustomizations_point_at_existing_files():
    assert KUSTOMIZATIONS, "no kustomization.yaml under deploy/k8s"
    for k in KUSTOMIZATIONS:
        doc = yaml.safe_load(k.read_text())
        assert doc["kind"] == "Kustomization"
        for res in doc.get("resources", []):
            target = (k.parent / res).resolve()
            assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{k}: {res} does not exist"
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    listed = {(K8S / "base" / r).resolve() for r in base["resources"]}
    unlisted = {p.name for p in (K8S / "base").glob("*.yaml")} - {p.name for p in listed} - {"kustomization.yaml"}
    assert unlisted == {"secret.example.yaml"}  # the only file kept out on purpose (no secrets in git)
    namespaces = {d["metadata"].get("namespace") for p in MANIFESTS for d in _docs(p) if d["kind"] != "Namespace"}
    assert namespaces == {base["namespace"]}


def test_deployment_probes_security_and_config():
    res = _resources()
    pod = res["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    config = res["ConfigMap"]["data"]
    for c in pod["containers"] + pod["initContainers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"] and c["resources"]["limits"] and c["resources"]["requests"]
    (main,) = pod["containers"]
    assert main["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert main["livenessProbe"]["httpGet"]["path"] == "/health"
    # The Secret is mounted as files; the service reads NAME_FILE when NAME is unset (settings.env_or_file).
    env = {e["name"]: e["value"] for e in main["env"]}
    (secret_volume,) = [v for v in pod["volumes"] if "secret" in v]
    (mount,) = [m for m in main["volumeMounts"] if m["name"] == secret_volume["name"]]
    assert mount["readOnly"] is True and secret_volume["secret"]["secretName"] == "triagekit"
    keys = {
        Path(env[f"{name}_FILE"]).relative_to(mount["mountPath"]).as_posix()
        for name in ("TRIAGEKIT_API_KEY", "TRIAGEKIT_DB_URL")
    }
    assert keys == set(_docs(K8S / "base" / "secret.example.yaml")[0]["stringData"])
    # The arguments are real `triagekit` arguments once Kubernetes expands the ConfigMap values.
    args = _parse_cli(main["args"], config)
    assert args.command_0 == "serve" and args.backend == "onnx" and args.api_key_env == "TRIAGEKIT_API_KEY"
    assert args.port == main["ports"][0]["containerPort"] and args.threads == int(config["TRIAGEKIT_THREADS"])
    export = _parse_cli(pod["initContainers"][0]["args"])
    assert (
        (export.command_0, export.command_1) == ("route", "export")
        and export.quantize == "int8"
        and export.out == args.model
    )
    mounts = {m["mountPath"] for m in main["volumeMounts"]}
    assert {"/data", "/tmp"} <= mounts  # the only writable paths under a read-only root filesystem
    assert res["Service"]["spec"]["ports"][0]["targetPort"] == main["ports"][0]["name"]
    assert res["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == res["Deployment"]["metadata"]["name"]
    selector = res["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= res["Deployment"]["spec"]["template"]["metadata"]["labels"].items()


def test_compose_serves_with_postgres_and_the_key_from_an_env_file():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    svc, pg = compose["services"]["triagekit"], compose["services"]["postgres"]
    assert svc["env_file"] == [".env"] and "TRIAGEKIT_API_KEY" in (ROOT / "deploy" / "compose.env.example").read_text()
    assert (
        svc["environment"]["TRIAGEKIT_DB_URL"].startswith("postgresql+psycopg://")
        and "@postgres:5432/" in svc["environment"]["TRIAGEKIT_DB_URL"]
    )
    assert svc["depends_on"]["postgres"]["condition"] == "service_healthy" and pg["healthcheck"]["test"]
    assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
    assert any(v.endswith(":/data") for v in svc["volumes"]) and "postgres-data" in compose["volumes"]
    args = _parse_cli(svc["command"])
    assert args.command_0 == "serve" and args.api_key_env == "TRIAGEKIT_API_KEY" and args.host == "0.0.0.0"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_containerfile_defaults_parse_and_dockerfile_is_the_same_file():
    text = (ROOT / "Containerfile").read_text()
    assert (ROOT / "Dockerfile").resolve() == (ROOT / "Containerfile").resolve()
    cmd = json.loads(re.search(r"^CMD (\[.*?\])\s*$", text.replace("\\\n", ""), re.M | re.S).group(1))
    args = _parse_cli(cmd)
    assert args.command_0 == "serve" and args.backend == "onnx" and args.port == 8000
    assert 'ENTRYPOINT ["triagekit"]' in text and re.search(r"^USER \$\{UID\}", text, re.M)
    assert "HEALTHCHECK" in text and "/health" in text


def _checkov() -> str:
    found = os.environ.get("TRIAGEKIT_CHECKOV") or shutil.which("checkov")
    local = ROOT / ".venv-checkov" / "bin" / "checkov"
    if not found and local.exists():
        found = str(local)
    if not found:
        pytest.skip(
            "checkov not installed: `make install` puts it in .venv-checkov (its pins, e.g. packaging<24, "
            "clash with pytest's, so it gets a venv of its own); or set TRIAGEKIT_CHECKOV"
        )
    return found


# checkov finds Dockerfiles by name, so the Containerfile is scanned through its Dockerfile link.
@pytest.mark.parametrize("target", ["deploy/k8s", "Dockerfile"])
def test_checkov_policies_pass(target):
    checkov = _checkov()
    framework = "dockerfile" if target == "Dockerfile" else "kubernetes"
    flag = "-f" if target == "Dockerfile" else "-d"
    proc = subprocess.run(
        [
            checkov,
            flag,
            str(ROOT / target),
            "--framework",
            framework,
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['check_name']} ({c.get('file_path')}: {c.get('resource')})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert not failed, "\n".join(failed)
    assert passed >= (10 if framework == "kubernetes" else 3)  # it really ran its checks


def test_secrets_from_files(tmp_path, monkeypatch):
    from triagekit.serve.settings import ServeSettings

    key_file, url_file = tmp_path / "api-key", tmp_path / "database-url"
    key_file.write_text("from-a-file\n")
    url_file.write_text("postgresql+psycopg://u:p@db:5432/x\n")
    monkeypatch.delenv("TK_KEY", raising=False)
    monkeypatch.delenv("TRIAGEKIT_DB_URL", raising=False)
    monkeypatch.setenv("TK_KEY_FILE", str(key_file))
    monkeypatch.setenv("TRIAGEKIT_DB_URL_FILE", str(url_file))
    settings = ServeSettings(api_key_env="TK_KEY")
    assert settings.api_key() == "from-a-file" and settings.db_url(tmp_path) == "postgresql+psycopg://u:p@db:5432/x"
    monkeypatch.setenv("TK_KEY", "from-the-env")  # the variable wins over the file
    assert settings.api_key() == "from-the-env"
    monkeypatch.setenv("TRIAGEKIT_DB_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="TRIAGEKIT_DB_URL_FILE"):
        settings.db_url(tmp_path)
    monkeypatch.delenv("TRIAGEKIT_DB_URL_FILE")
    assert ServeSettings(db="sqlite:///x.db").db_url(tmp_path) == "sqlite:///x.db"  # --db wins over both
    assert settings.db_url(tmp_path).startswith("sqlite:///")
