"""The generated code committed in tz_client/_proto matches proto/."""
from __future__ import annotations

import importlib.util

from tzsvc_support import REPO


def test_generated_code_matches_proto(tmp_path):
    spec = importlib.util.spec_from_file_location("proto_generate", REPO / "proto" / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.generate(tmp_path)
    committed = REPO / "tz_client" / "_proto"
    fresh = {p.relative_to(tmp_path): p.read_text() for p in tmp_path.rglob("*.py*") if p.suffix in (".py", ".pyi")}
    have = {p.relative_to(committed): p.read_text() for p in committed.rglob("*.py*") if p.suffix in (".py", ".pyi")}
    assert sorted(fresh) == sorted(have), "generated files differ; run .venv/bin/python proto/generate.py"
    stale = [str(k) for k in fresh if fresh[k] != have[k]]
    assert not stale, f"stale generated code {stale}; run .venv/bin/python proto/generate.py"
