"""Where staging splits its work so that no history nears Temporal's limits (a warning at 10,240 events, a
termination at 51,200). The staging parents read them when they start their children and pass them down in the
children's inputs (a continued run keeps the split it started with; a test can scale them down)."""

PAGES_PER_RUN = 100
"""Result pages one workflow run stages (about 22 history events each). A request with more hands its pages to
a `StagingPages` child, which continues as new every PAGES_PER_RUN pages."""

ASSETS_PER_CHILD = 500
"""Assets one `Staging` history transfers at most (about 6 events each): a page with more (a CADIP session of
thousands of chunks) is transferred in parts, each by a `Staging` child of the page's."""
