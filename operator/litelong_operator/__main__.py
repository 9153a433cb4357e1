"""`litelong-operator [kopf run options]`: `kopf run -m litelong_operator`, one command.

litelong-operator --all-namespaces --peering=litelong --liveness=http://0.0.0.0:8080/healthz
"""

from __future__ import annotations

import sys

from kopf import cli


def main() -> None:
    cli.main(args=["run", "--module", "litelong_operator", *sys.argv[1:]])


if __name__ == "__main__":
    main()
