"""Top-10 parity of the Manticore and tantivy backends over 200 queries (issue 8: >= 0.80).

The measurement lives in bench/manticore.py, which builds both indexes from the same corpus in
the same run; this entry point is the same script under the name the issue asks for:

    LITELONG_MANTICORE_URL=http://127.0.0.1:9308 python bench/parity.py --queries 200
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.argv[0] = str(Path(__file__).with_name("manticore.py"))
    runpy.run_path(sys.argv[0], run_name="__main__")
