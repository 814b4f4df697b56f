from golden_case import GoldenCase

# The golden problems are deterministic (every closure call sees the full objective), so the SVRG
# gradient equals the true gradient; the cases check the phase bookkeeping (steps where the full
# gradient is accumulated do not move the parameters) and the reported SVRG loss.
CASES = [
    GoldenCase("SVRG", "tz.m.SVRG(5), tz.m.LR(1e-3)", "rosenbrock"),
    GoldenCase("SVRG-accum", "tz.m.SVRG(4, accum_steps=2, alpha=0.5), tz.m.Adam(), tz.m.LR(0.05)", "mixed", rtol=1e-4, atol=1e-5),  # Adam eps placement (see core.py) after each reset
    GoldenCase("SVRG-noloss", "tz.m.SVRG(3, svrg_loss=False, reset_before_accum=False), tz.m.Adam(), tz.m.LR(0.05)", "quadratic", rtol=1e-5, atol=1e-7),
]
