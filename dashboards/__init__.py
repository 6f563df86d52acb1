"""dashboards: driftscope's Grafana dashboards as code over the Prometheus metrics it exports.

Built with grafana-foundation-sdk (``overview``, ``service_drift``, ``investigations``),
rendered by ``generate`` into ``generated/*.json`` plus Grafana provisioning files;
``python -m dashboards`` regenerates them. Imports none of driftscope's other packages:
it only needs metric names (``dashboards.metrics``).
"""
