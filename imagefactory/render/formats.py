"""The formats :func:`imagefactory.render.graph.render_graph` writes, apart from the renderer so
the command line declares its ``--format`` option without importing the catalog's models."""

FORMATS = ("tree", "mermaid", "dot", "json")
