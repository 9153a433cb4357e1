"""litelong's Kubernetes operator: kopf reconciles the four litelong.io kinds into children.

`render` turns a resource into manifests (pure); `reconcile` applies them and derives status;
`handlers` wires both to kopf. Importing the package registers the handlers, so every way of
starting it runs the same operator: `litelong-operator`, `kopf run -m litelong_operator`,
`python -m litelong_operator`. Never named `operator`: that would shadow the standard module.
"""

from . import handlers

__all__ = ["handlers"]
