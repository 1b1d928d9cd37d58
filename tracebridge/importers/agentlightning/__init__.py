"""Agent Lightning (``agentlightning>=0.2,<1``, extra ``agentlightning``): the runtime hook that runs
an agent under its in-memory tracer and store and records the spans as a schema-v2 run
(``hook``), the importer of spans its stores hold, dumped as JSONL (``importer``, reading in
``stored``), the span → event mapping both use (``spans``) and the run writing they share
(``runs``), the export of our views to its message and triplet formats (``formats``) and the
end-to-end smoke (``smoke``).

``agentlightning`` is imported lazily, inside the functions that need it (it costs seconds);
``spans`` and the span-building half of ``formats`` are pure and need no import of it.
"""
