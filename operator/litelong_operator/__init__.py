"""litelong's Kubernetes operator: kopf reconciles the four litelong.io kinds into children.

`render` turns a resource into manifests (pure); `reconcile` applies them and derives status;
`handlers` wires both to kopf. Never named `operator`: that would shadow the standard module.
"""
