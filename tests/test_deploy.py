"""deploy/: the container and KubeRay files parse and carry what the tools need."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def load_all(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def test_dockerfile_installs_the_project_and_runs_the_server() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert lines[0].startswith("FROM ")
    assert any(l.startswith("EXPOSE") and "50051" in l for l in lines)
    assert any(re.match(r"RUN .*pip install .*\.\[ray\]", l) for l in lines)
    assert 'ENTRYPOINT ["tz-server"]' in lines
    for pkg in ("torchzero", "tz_client", "tz_server", "proto"):
        assert any(l.startswith("COPY") and pkg in l for l in lines), pkg
        assert (DEPLOY.parent / pkg).exists(), pkg


def test_compose_file() -> None:
    (doc,) = load_all("docker-compose.yml")
    svc = doc["services"]["tz-server"]
    assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "50051:50051" in svc["ports"]
    assert "--state-dir" in svc["command"]


def test_raycluster_manifest() -> None:
    (rc,) = load_all("kuberay/raycluster.yaml")
    assert rc["apiVersion"] == "ray.io/v1" and rc["kind"] == "RayCluster"
    spec = rc["spec"]
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    container = head["template"]["spec"]["containers"][0]
    assert container["image"]
    ports = {p["containerPort"] for p in container["ports"]}
    assert {6379, 50051} <= ports
    start = " ".join(container["lifecycle"]["postStart"]["exec"]["command"])
    assert "tz-server --backend ray" in start and "--port 50051" in start
    for group in spec["workerGroupSpecs"]:
        assert {"groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template"} <= set(group)
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert group["template"]["spec"]["containers"][0]["image"]
    claim = head["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in load_all("kuberay/storage.yaml")}
    assert ("PersistentVolumeClaim", claim) in kinds
    assert ("Secret", container["env"][0]["valueFrom"]["secretKeyRef"]["name"]) in kinds


def test_service_selects_the_head_pod() -> None:
    (svc,) = load_all("kuberay/service.yaml")
    (rc,) = load_all("kuberay/raycluster.yaml")
    assert svc["kind"] == "Service"
    assert svc["spec"]["selector"] == {"ray.io/cluster": rc["metadata"]["name"], "ray.io/node-type": "head"}
    assert {p["port"] for p in svc["spec"]["ports"]} >= {50051}


def test_server_command_lines_parse_with_the_real_cli() -> None:
    """The flags in the manifest and the image exist (the CLI's own parser reads them)."""
    import shlex

    from tz_server.cli import parser

    (rc,) = load_all("kuberay/raycluster.yaml")
    start = rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["lifecycle"]["postStart"]["exec"]["command"][-1]
    words = shlex.split(start.split("nohup", 1)[1].split(">", 1)[0])
    assert words[0] == "tz-server"
    args = parser().parse_args(words[1:])
    assert args.backend == "ray" and args.ray_address == "auto" and args.shards >= 1
    for obj in args.objective:
        from tz_server.backends.ray.objectives import parse_objective, resolve
        resolve(parse_objective(obj)[1])
    cmd = re.search(r"^CMD (\[.*\])", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert cmd is not None
    parser().parse_args(__import__("json").loads(cmd.group(1)))
