"""Auth, TLS, health, reflection, metrics, the command line, and what imports what."""
from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import grpc
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import torchzero as tz
import tz_client
import tz_server
from tz_client import Unauthenticated

from tzsvc_support import REPO, ServerProcess, tz_server_command


@pytest.fixture(params=["embedded", "subprocess"])
def token_server(request, tmp_path):
    if request.param == "embedded":
        srv = tz_server.serve(token="s3cret")
        yield srv.address
        srv.stop()
    else:
        (tmp_path / "token").write_text("s3cret\n")
        proc = ServerProcess("--token-file", str(tmp_path / "token"))
        yield proc.address
        proc.stop()


def test_token_auth(token_server):
    for token in (None, "wrong"):
        c = tz_client.Client(token_server, token=token, retry_timeout=1)
        with pytest.raises(Unauthenticated):
            c.list_sessions()
        c.close()
    c = tz_client.Client(token_server, token="s3cret")
    study = c.create_study("authed", torch.zeros(2), [tz.m.Adam()])
    assert study.ask().id == "0:0"
    p = torch.nn.Parameter(torch.ones(2))
    opt = tz_client.RemoteOptimizer([p], tz.m.LR(1.0), address=token_server, token="s3cret")
    p.grad = torch.ones(2)
    opt.step()
    assert p.tolist() == [0.0, 0.0]
    # health stays open for load balancers
    with grpc.insecure_channel(token_server) as ch:
        rep = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""))
        assert rep.status == health_pb2.HealthCheckResponse.SERVING


def test_tls(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                        "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"openssl cannot make a certificate: {r.stderr.decode()[:200]}")
    with tz_server.serve(tls_cert=str(cert), tls_key=str(key)) as srv:
        c = tz_client.Client(srv.address, root_certificates=cert)
        assert c.list_sessions() == []
        c.close()
        plain = tz_client.Client(srv.address, retry_timeout=0.5)
        with pytest.raises(tz_client.ServiceError):
            plain.list_sessions()
        plain.close()


def test_health_and_reflection(deployment):
    with grpc.insecure_channel(deployment.address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("", "torchzero_service.v1.TorchZero"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        replies = list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in replies[0].list_services_response.service}
        assert {"torchzero_service.v1.TorchZero", "grpc.health.v1.Health"} <= names


def test_metrics_endpoint():
    with tz_server.serve(metrics_port=0) as srv:
        c = tz_client.Client(srv.address)
        study = c.create_study("m", torch.zeros(2), [tz.m.Adam()])
        t = study.ask()
        study.tell(t, 1.0, torch.ones(2))
        text = urllib.request.urlopen(f"http://127.0.0.1:{srv.metrics_port}/metrics", timeout=5).read().decode()
        assert 'tz_sessions{kind="study"} 1.0' in text
        assert 'tz_evaluations{kind="study"} 1.0' in text
        assert 'tz_rpc_latency_seconds_count{method="Tell"} 1.0' in text
        c.close()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*tz_server_command(), "--port", "0", *args], capture_output=True, text=True, timeout=60)


def test_ray_options_are_checked_before_ray_starts():
    """The Ray backend itself is tested in tests/ray; here only its command-line checks."""
    r = run_cli("--shards", "2")
    assert r.returncode == 2 and "--shards need(s) --backend ray" in r.stderr
    r = run_cli("--backend", "ray", "--objective", "no-equals-sign")
    assert r.returncode == 2 and "expected NAME=package.module:function" in r.stderr
    r = run_cli("--backend", "ray", "--objective", "f=not_a_module_xyz:f")
    assert r.returncode == 2 and "cannot be imported" in r.stderr


def test_device_is_validated():
    r = run_cli("--device", "gpu0")
    assert r.returncode == 2 and "invalid device" in r.stderr
    if not torch.cuda.is_available():
        r = run_cli("--device", "cuda")
        assert r.returncode == 2 and "CUDA is not available" in r.stderr


def test_cpus_are_parsed_and_checked():
    from tz_server.affinity import parse_cpus
    assert parse_cpus("0") == {0} and parse_cpus("0-3") == {0, 1, 2, 3} and parse_cpus("1, 4-5") == {1, 4, 5}
    for bad in ("", "x", "1-", "-1", "3-1", "0,,1"):
        with pytest.raises(ValueError, match="--cpus"):
            parse_cpus(bad)
    r = run_cli("--cpus", "0-x")
    assert r.returncode == 2 and "expected CPU numbers and ranges" in r.stderr
    if hasattr(os, "sched_getaffinity"):
        r = run_cli("--cpus", str(max(os.sched_getaffinity(0)) + 1))
        assert r.returncode == 2 and "not available to this process" in r.stderr


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="needs sched_setaffinity (Linux)")
def test_a_pinned_server_runs_every_thread_on_its_cpus():
    cpu = min(os.sched_getaffinity(0))
    proc = ServerProcess("--cpus", str(cpu))
    try:
        c = tz_client.Client(proc.address)
        study = c.create_study("pinned", torch.zeros(3), [tz.m.SPSA(), tz.m.LR(0.1)], seed=0)
        study.tell(study.ask(n=2), [1.0, 2.0])  # a step on the study's own thread, after the pin
        assert len(study.ask(n=2, wait=30)) == 2  # (the next step's trials: that step is done)
        assert study.info().step == 1
        tids = os.listdir(f"/proc/{proc.proc.pid}/task")
        assert len(tids) > 5  # gRPC's threads, the study's, torch's...
        for tid in tids:
            assert os.sched_getaffinity(int(tid)) == {cpu}, tid
        c.close()
    finally:
        proc.stop()


def test_session_device_is_validated(client, name):
    with pytest.raises(tz_client.InvalidArgument, match="invalid device"):
        client.create_study(name, torch.zeros(2), [tz.m.Adam()], device="tpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_session_matches_local():
    with tz_server.serve(device="cuda") as srv:
        p = torch.nn.Parameter(torch.linspace(-1, 1, 1000))
        opt = tz_client.RemoteOptimizer([p], tz.m.Adam(), tz.m.LR(0.1), address=srv.address)
        local_p = torch.nn.Parameter(torch.linspace(-1, 1, 1000, device="cuda"))
        local = tz.Optimizer([local_p], tz.m.Adam(), tz.m.LR(0.1))
        for s in range(3):
            g = torch.randn(1000, generator=torch.Generator().manual_seed(s))
            p.grad, local_p.grad = g.clone(), g.cuda()
            opt.step()
            local.step()
        assert torch.equal(p.detach(), local_p.detach().cpu())
        assert srv.backend.get(opt.session).params[0].device.type == "cuda"


def test_tz_client_imports_without_tz_server_or_ray():
    code = ("import sys, tz_client; "
            "bad = [m for m in ('tz_server', 'ray') if m in sys.modules]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
