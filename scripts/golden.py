"""Records golden trajectories of the reference implementation (torchzero 0.4.4).

Usage::

    python scripts/golden.py record FAMILY   # writes tests/golden/data/FAMILY.json
    python scripts/golden.py list            # lists case files

The reference is installed into the git-ignored folder ``.reference/`` on first use
(``pip install --no-deps --target .reference torchzero==0.4.4``). It is an oracle for numbers
only: no code of it is used by the project.

A case file ``tests/golden/cases/FAMILY.py`` defines ``CASES``, a list of
``GoldenCase(name, build, problem, steps, closure=True)``. ``build`` is Python source for the
module list, evaluated with ``tz`` bound to the library under test, e.g.
``"tz.m.Adam(beta1=0.8), tz.m.LR(0.1)"``. ``problem`` names one of ``tests/golden/problems.py``.
The same case file drives the replay in ``tests/test_golden.py``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / ".reference"
CASES_DIR = ROOT / "tests" / "golden" / "cases"
DATA_DIR = ROOT / "tests" / "golden" / "data"


def load_cases(family: str) -> list:
    sys.path.insert(0, str(ROOT / "tests" / "golden"))
    spec = importlib.util.spec_from_file_location(f"golden_cases_{family}", CASES_DIR / f"{family}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.CASES


REFERENCE_PACKAGES = ("torchzero==0.4.4", "opt_einsum==3.4.0")
"""The reference and what its modules import beyond torch (its PSGD Kron modules need opt_einsum)."""


def ensure_reference() -> None:
    if not (REF / "torchzero").exists() or not (REF / "opt_einsum").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(REF),
                        *REFERENCE_PACKAGES], check=True)


def _record_in_this_process(family: str) -> None:
    sys.path.insert(0, str(REF))
    import torchzero as tz  # the reference
    assert str(REF) in tz.__file__, tz.__file__
    sys.path.insert(0, str(ROOT / "tests" / "golden"))
    from problems import run  # type: ignore
    out = {}
    for case in load_cases(family):
        build = lambda params, c=case: tz.Optimizer(params, *eval(f"[{c.build}]", {"tz": tz, "torch": __import__("torch")}))
        try:
            out[case.name] = run(build, case.problem, case.steps, case.closure)
        except Exception as e:  # the reference cannot run this case: record why
            out[case.name] = {"error": f"{type(e).__name__}: {e}"}
        print(f"{case.name}: {'error ' + out[case.name]['error'] if 'error' in out[case.name] else 'ok'}")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    (DATA_DIR / f"{family}.json").write_text(json.dumps(out, indent=0, sort_keys=True))


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "list":
        print("\n".join(sorted(p.stem for p in CASES_DIR.glob("*.py"))))
        return
    if len(sys.argv) != 3 or sys.argv[1] != "record":
        print(__doc__)
        sys.exit(2)
    family = sys.argv[2]
    if os.environ.get("TZ_GOLDEN_CHILD"):
        _record_in_this_process(family)
        return
    ensure_reference()
    env = dict(os.environ, TZ_GOLDEN_CHILD="1")
    # a clean interpreter whose first torchzero on the path is the reference
    subprocess.run([sys.executable, "-I", str(Path(__file__).resolve()), "record", family], check=True, env=env, cwd=str(REF))


if __name__ == "__main__":
    main()
