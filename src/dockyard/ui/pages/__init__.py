"""One module per kind of page; each handler is ``(request, ui, viewer) -> response``."""
