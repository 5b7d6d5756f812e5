"""The web UI: server-rendered pages (Jinja2) with htmx for interaction, no build step.

Mounted at ``/`` when ``auth.builtin`` is on and ``ui.enabled`` (see :func:`routes`); its
paths never shadow ``/v2/``, ``/token``, ``/api/`` or ``/debug``. Pages read content
through the registry core, decide who may see what through the identity ``Authority``, and
change things through the hub's services, as the management API does.
"""
