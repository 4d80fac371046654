"""`python -m bench` runs every scenario; `python -m bench register state` runs the named ones.

Each scenario gets a fresh database and server process, measures its physical limit in the same
run, and prints one markdown table (paste into bench/RESULTS.md)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import time
import traceback

SCENARIOS = {
    "register": "bench.s_register",
    "fanout": "bench.s_fanout",
    "churn": "bench.s_churn",
    "topology": "bench.s_topology",
    "state": "bench.s_state",
    "rotation": "bench.s_rotation",
    "scaling": "bench.s_scaling",
    "nat": "bench.s_nat",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], metavar="SCENARIO",
                        help=f"any of: {', '.join(SCENARIOS)} (default: all)")
    args = parser.parse_args(argv)
    names = args.scenarios or list(SCENARIOS)

    from bench import harness

    harness.raise_fd_limit()
    try:
        import uvloop

        uvloop.install()  # the load generator's own overhead is part of what we must keep small
    except ImportError:
        pass
    machine = harness.machine_description()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
    pg = harness.Postgres()
    print(f"database: {pg.description}", flush=True)
    failed = []
    started = time.perf_counter()
    try:
        for name in names:
            t0 = time.perf_counter()
            print(f"\n== {name} ==", flush=True)
            try:
                module = importlib.import_module(SCENARIOS[name])
                asyncio.run(module.run(pg))
            except Exception:
                traceback.print_exc()
                failed.append(name)
            print(f"({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        pg.close()
    print(f"\ntotal {time.perf_counter() - started:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
