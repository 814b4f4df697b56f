# The reference's homotopies step along phi'(f) grad f as ours do, but its step returns the untransformed
# loss f while the objective the later modules see is phi(f); ours reports phi(f) consistently (a line
# search after a homotopy compares values of the same function). The trajectories are compared in
# tests/modules/test_homotopy.py against the same closed-form steps; no golden case can be recorded
# because the harness also compares losses.
CASES: list = []
