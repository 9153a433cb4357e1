"""The kopf handlers: importing this package registers them (`kopf run -m` does)."""

from . import bm25index, children, runtime, synthesisrun, topicdebate, trainingjob

__all__ = ["bm25index", "children", "runtime", "synthesisrun", "topicdebate", "trainingjob"]
