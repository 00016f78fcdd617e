"""One request, end to end, with no server in sight.

Request decoding (:mod:`~bridge.job.request`), the musician's material (:mod:`~bridge.job.material`),
the pipeline that runs a generator per section (:mod:`~bridge.job.pipeline`), takes and
regeneration bases (:mod:`~bridge.job.takes`), stem placement (:mod:`~bridge.job.placement`), the
typed manifest v1 (:mod:`~bridge.job.manifest`) and where files live in a project, job ids and take
file names (:mod:`~bridge.job.layout`). The CLI's ``generate`` and the server's
worker process both call :func:`bridge.job.pipeline.run_request`.
"""
